"""Every image form Kaggle ships decodes to RGB uint8; anything else is named with its reason."""

import numpy as np
import pytest
from PIL import Image

from kagglekit.data.images import UnreadableImage, find_unreadable, read_rgb
from kagglekit.data.loaders import image_batches


def save(tmp_path, name, image, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def test_rgba_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (5, 4), (255, 0, 0, 0))
    out = read_rgb(save(tmp_path, "a.png", rgba))
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert (out == 255).all()  # fully transparent red → white


def test_grayscale_palette_and_16bit(tmp_path):
    gray = read_rgb(save(tmp_path, "g.png", Image.new("L", (3, 3), 77)))
    assert (gray == 77).all() and gray.shape == (3, 3, 3)
    palette = Image.new("P", (4, 4))
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.putpixel((1, 1), 1)
    out = read_rgb(save(tmp_path, "p.png", palette))
    assert tuple(out[1, 1]) == (10, 200, 30) and tuple(out[0, 0]) == (0, 0, 0)
    deep = Image.fromarray(np.full((2, 2), 65535, dtype=np.uint16))
    assert (read_rgb(save(tmp_path, "d.png", deep)) == 255).all()


def test_jpeg_of_odd_size(tmp_path):
    out = read_rgb(save(tmp_path, "j.jpg", Image.new("RGB", (1001, 7), (0, 128, 255)), quality=95))
    assert out.shape == (7, 1001, 3)


def test_truncated_and_non_images_are_named(tmp_path):
    good = save(tmp_path, "ok.png", Image.new("RGB", (64, 64), (1, 2, 3)))
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good.read_bytes()[:40])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(UnreadableImage, match="cut.png"):
        read_rgb(truncated)
    assert set(find_unreadable([good, truncated, text])) == {truncated, text}


def test_the_quick_check_of_a_jpeg_finds_what_a_full_decode_finds(tmp_path):
    """``find_unreadable`` decodes a JPEG at 1/8 scale: a file cut short, even by its last tenth, still fails,
    named."""
    noisy = np.random.default_rng(0).integers(0, 256, (192, 256, 3), dtype=np.uint8)
    good = save(tmp_path, "good.jpg", Image.fromarray(noisy), quality=90)
    data = good.read_bytes()
    cuts = [tmp_path / f"cut{tenths}.jpg" for tenths in (5, 9)]
    for tenths, cut in zip((5, 9), cuts):
        cut.write_bytes(data[:len(data) * tenths // 10])
        with pytest.raises(UnreadableImage, match=cut.name):
            read_rgb(cut)
    reasons = find_unreadable([good, *cuts])
    assert set(reasons) == set(cuts) and all(path.name in reasons[path] for path in reasons)


def test_image_batches_resize_and_keep_order(tmp_path):
    paths = [save(tmp_path, f"{i}.png", Image.new("RGB", (10 + i, 20), (i * 50, 0, 0))) for i in range(5)]
    batches = list(image_batches(paths, image_size=16, batch_size=2))
    assert [b.shape for b in batches] == [(2, 16, 16, 3), (2, 16, 16, 3), (1, 16, 16, 3)]
    reds = np.concatenate(batches)[:, 8, 8, 0]
    np.testing.assert_allclose(reds, [0, 50, 100, 150, 200], atol=1)


def test_native_size_is_the_median_shorter_side_rounded_up_to_32_within_bounds(tmp_path):
    from kagglekit.data.images import native_size

    def images(sizes, name):
        paths = []
        for i, (w, h) in enumerate(sizes):
            paths.append(tmp_path / f"{name}{i}.png")
            Image.new("RGB", (w, h)).save(paths[-1])
        return paths

    small = images([(150, 150)] * 3 + [(400, 90)], "small")  # median shorter side 150
    assert native_size(small, ceiling=224) == 160
    assert native_size(images([(640, 480)] * 3, "large"), ceiling=224) == 224
    assert native_size(images([(20, 30)] * 3, "tiny"), ceiling=224) == 64
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert native_size([tmp_path / "broken.png", *small], ceiling=224) == 160  # unreadable files do not decide
    assert native_size([], ceiling=224) == 224
