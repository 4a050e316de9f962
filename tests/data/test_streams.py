"""Streamed images: decoded in the graph like PIL decodes them, and cropped alike in an image and its mask."""

import numpy as np
from helpers import shard_rows
from PIL import Image

from kagglekit.core.config import AugmentConfig, StreamConfig
from kagglekit.data.images import read_rgb
from kagglekit.data.loaders import resized_batch
from kagglekit.data.shards import build_shards
from kagglekit.data.streams import ImageRows, crop_box, decode_images, decode_mask, decode_region, eval_stream, records


def test_streamed_pixels_match_a_pil_decode_and_resize(tmp_path):
    """JPEGs decoded at a DCT scale (a 720 px photo to 64: ratio 8), PNGs whole: within a couple of
    levels of PIL's full decode and the same antialiased resize; the files decoded without shards
    (serving) exactly as streamed."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:540, 0:720]
    photo = np.stack([rows / 2.2, cols / 3, (rows + cols) / 5], -1) + rng.normal(0, 3, (540, 720, 3))
    paths = [tmp_path / "big.jpg", tmp_path / "small.png", tmp_path / "mid.jpg"]
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(paths[0], quality=92)
    Image.fromarray(np.clip(photo[::9, ::9], 0, 255).astype(np.uint8)).save(paths[1])
    Image.fromarray(np.clip(photo[:150, :200], 0, 255).astype(np.uint8)).save(paths[2], quality=92)
    cfg = StreamConfig(max_side=1024, images_per_shard=2)
    images = ImageRows.every(build_shards(paths, cfg, root=tmp_path / "cache"))

    def streamed(rows: ImageRows) -> np.ndarray:
        """The stream's pixels, back in the order of ``rows``."""
        pixels = np.concatenate(list(eval_stream(rows, 64, 2).as_numpy_iterator()))
        return pixels[np.argsort(rows.stream_order())]

    every = streamed(images)
    expected = resized_batch([read_rgb(p) for p in paths], 64)
    assert np.abs(every - expected).mean(axis=(1, 2, 3)).max() < 2.0
    assert np.array_equal(decode_images(paths, 64, cfg), every)
    assert np.array_equal(streamed(images.subset([0, 2])), every[[0, 2]])  # a fold's rows only


def test_a_random_crop_cuts_the_image_and_its_mask_alike(tmp_path):
    """A mask whose class is written in its image's colour (four quadrants of an off-centre cross): after the
    same random resized crop, the image's colour gives the mask's class at every pixel off the borders."""
    import tensorflow as tf

    labels = np.zeros((90, 120), np.uint8)
    labels[:37, 71:], labels[37:, :71], labels[37:, 71:] = 1, 2, 3
    pixels = np.repeat((labels * 80)[..., None], 3, axis=2)
    images = shard_rows(tmp_path / "seg", pixels[None], tmp_path / "cache", masks=labels[None])
    (record,) = records(images.shards, list(images.shards.files))
    augment = AugmentConfig(crop_scale=[0.2, 0.5], crop_ratio=[0.5, 2.0])
    for draw in range(6):
        box = crop_box(record, tf.constant([7, draw], tf.int64), augment)
        assert int(box[2]) * int(box[3]) < 0.55 * 90 * 120  # a real crop, not the whole image
        image = decode_region(record["image"], record["format"], box, (24, 32)).numpy()
        mask = decode_mask(record["mask"], box, (24, 32)).numpy()[..., 0]
        colour_class = np.rint(image[..., 0] / 80)
        assert (colour_class == mask).mean() > 0.9, draw  # bilinear blends only along class borders
