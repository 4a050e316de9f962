"""Image shards: built once from any image form, reused by content, repaired when damaged, and every
unreadable file named."""

import io
import logging

import numpy as np
import pytest
from PIL import Image

from kagglekit.core.config import StreamConfig
from kagglekit.data.images import UnreadableImage, read_rgb
from kagglekit.data.shards import build_shards, placement, stored_image

CFG = StreamConfig(max_side=256, images_per_shard=2)


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth gradient with a little noise: what JPEG keeps well (so tolerances can be tight)."""
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.stack([rows * 255 / height, cols * 255 / width, (rows + cols) * 127 / (height + width)], -1)
    return np.clip(base + np.random.default_rng(seed).normal(0, 4, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def images(tmp_path):
    """One file of each kind a shard stores differently."""
    folder = tmp_path / "images"
    folder.mkdir()
    files = {"kept.jpg": (photo(120, 90), "RGB"), "large.jpg": (photo(300, 500, 1), "RGB"),
             "rgba.png": (photo(40, 60, 2), "RGBA"), "gray.png": (photo(50, 50, 3), "L"),
             "odd.bmp": (photo(30, 20, 4), "RGB")}
    for name, (pixels, mode) in files.items():
        Image.fromarray(pixels).convert(mode).save(folder / name, quality=90)
    return [folder / name for name in files]


def test_each_image_is_stored_as_tensorflow_decodes_it_like_read_rgb(images):
    """Originals TensorFlow decodes as ``read_rgb`` does are kept byte for byte; too large: a JPEG at the
    maximum side; RGBA, BMP: lossless PNG of the composited RGB."""
    stored = {path.name: stored_image(path, CFG) for path in images}
    assert stored["kept.jpg"].data == images[0].read_bytes() and stored["kept.jpg"].format == "jpeg"
    assert stored["gray.png"].data == images[3].read_bytes()
    large = stored["large.jpg"]
    assert (large.format, large.height, large.width) == ("jpeg", 154, 256)
    for name in ("rgba.png", "odd.bmp"):
        path = next(p for p in images if p.name == name)
        assert stored[name].format == "png"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored[name].data))), read_rgb(path))


def test_shards_are_built_once_and_reused_until_a_file_changes(images, tmp_path, monkeypatch):
    import tensorflow as tf

    targets = np.eye(5, dtype=np.float32)
    shards = build_shards(images, CFG, targets=targets, root=tmp_path / "cache")
    assert len(shards.files) == 3 and shards.count == 5  # 2 images per shard
    records = [tf.io.parse_single_example(r, shards.features())
               for r in tf.data.TFRecordDataset([str(f) for f in shards.files])]
    stored = [int(r["index"]) for r in records]
    assert stored == list(shards.order) and sorted(stored) == list(range(5))
    assert [r["id"].numpy().decode() for r in records] == [images[i].name for i in stored]
    assert np.array_equal(np.stack([r["target"].numpy() for r in records]), targets[stored])

    built = [f.stat().st_mtime_ns for f in shards.files]
    monkeypatch.setattr("kagglekit.data.shards._record", lambda *a: pytest.fail("rebuilt intact shards"))
    # reuse trusts the manifest's sizes and times: no shard is read (40,000 images' bytes at every run)
    monkeypatch.setattr(tf.data, "TFRecordDataset", lambda *a: pytest.fail("read a shard the manifest vouches for"))
    assert build_shards(images, CFG, targets=targets, root=tmp_path / "cache") == shards
    assert [f.stat().st_mtime_ns for f in shards.files] == built
    monkeypatch.undo()
    Image.fromarray(photo(20, 20, 9)).save(images[0])  # a changed file is another shard set
    assert build_shards(images, CFG, targets=targets, root=tmp_path / "cache").folder != shards.folder


def test_a_damaged_shard_is_rebuilt_with_a_warning(images, tmp_path, caplog):
    shards = build_shards(images, CFG, root=tmp_path / "cache")
    intact = shards.files[1].read_bytes()
    shards.files[1].write_bytes(intact[:len(intact) // 2])  # half-written
    with caplog.at_level(logging.WARNING, logger="kagglekit.data.shards"):
        assert build_shards(images, CFG, root=tmp_path / "cache") == shards
    assert f"image shard {shards.files[1]} is damaged" in caplog.text
    assert shards.files[1].read_bytes() == intact
    flipped = bytearray(intact)
    flipped[len(flipped) // 2] ^= 0xFF  # same size, one byte changed: its record's CRC fails
    shards.files[1].write_bytes(bytes(flipped))  # written after the manifest: read and checked
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kagglekit.data.shards"):
        build_shards(images, CFG, root=tmp_path / "cache")
    assert "DataLossError" in caplog.text and shards.files[1].read_bytes() == intact
    shards.files[1].write_bytes(bytes(flipped))
    (shards.folder / "manifest.json").unlink()  # and the build was killed before its manifest
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kagglekit.data.shards"):
        build_shards(images, CFG, root=tmp_path / "cache")
    assert "DataLossError" in caplog.text and shards.files[1].read_bytes() == intact


def test_an_unreadable_file_is_named_when_its_shard_is_built(images, tmp_path):
    bad = images[0].with_name("truncated.jpg")
    bad.write_bytes(images[0].read_bytes()[:len(images[0].read_bytes()) * 4 // 5])  # its scan cut short
    with pytest.raises(UnreadableImage, match="truncated.jpg"):
        build_shards([*images, bad], CFG, root=tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.tfrecord.*"))  # no half shard left behind


def test_a_file_tensorflow_cannot_decode_is_stored_as_pil_reads_it(images, monkeypatch):
    """PIL reads some files libjpeg or libpng refuse: those are re-encoded from PIL's pixels, not kept."""
    monkeypatch.setattr("kagglekit.data.shards._tensorflow_decodes", lambda data, height, width: False)
    stored = stored_image(images[0], CFG)
    assert stored.format == "png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored.data))), read_rgb(images[0]))


def test_every_shard_is_a_sample_of_the_whole_list_in_random_order():
    """Class-folder competitions list their images class by class: a shard of consecutive images would
    hold one class, and a shard of sorted ones would hand a training epoch's shuffle windows a few classes at a
    time. Any run of a tenth of a shard's records covers most of the list."""
    shards = placement(1000, 100)
    assert sorted(np.concatenate(shards).tolist()) == list(range(1000))
    for held in shards:
        assert len(held) == 100
        for start in range(0, 100, 25):  # every quarter of the shard, as stored
            assert np.count_nonzero(np.histogram(held[start:start + 25], bins=10, range=(0, 1000))[0]) >= 7


