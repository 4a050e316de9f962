"""Streamed images for the learners that train on pixels: shards -> tf.data, memory bounded by a window.

Images stay encoded in their shards (``kagglekit.data.shards``) and are decoded in the graph, in parallel,
every time they are used: ``decode_jpeg`` at a DCT scale (``ratio`` 2, 4 or 8) wherever the region to decode
is at least that many times the target size, ``decode_png`` otherwise. A training epoch reads the shards in
a shuffled order (a few interleaved), keeps the fold's rows by index, shuffles windows of ``WINDOW`` encoded
records, and draws a random resized crop of each full-resolution image before it is resized: the
augmentation that needs the full image. Keras layers (flips, rotation, ..., RandAugment, MixUp, CutMix) then
act per batch. Nothing holds more than a window of encoded images and a few batches of pixels, whatever
the number of images. Every draw (shard order, window shuffles, crops, the layers' seeds) is a function of
``(seed, epoch)`` alone, which is what makes a resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kagglekit.core.config import AugmentConfig, StreamConfig
from kagglekit.data.augment import build_augmenter
from kagglekit.data.shards import ImageShards, stored_image

#: Encoded records shuffled together in a training epoch (1,024 JPEGs at 512 px: about 50 MB).
WINDOW = 1024
#: Shards read at once in a training epoch (their records interleaved).
CYCLE = 4
#: DCT scales libjpeg decodes at directly.
RATIOS = (1, 2, 4, 8)


@dataclass(frozen=True)
class ImageRows:
    """Some records of a shard set (their indices, ascending): a fold's training or held-out images."""

    shards: ImageShards
    rows: np.ndarray

    def __post_init__(self):
        rows = np.asarray(self.rows, dtype=np.int64)
        inside = len(rows) == 0 or 0 <= rows[0] <= rows[-1] < self.shards.count
        if rows.ndim != 1 or np.any(np.diff(rows) <= 0) or not inside:
            raise ValueError(f"rows must be ascending record indices below {self.shards.count}")
        object.__setattr__(self, "rows", rows)

    @classmethod
    def every(cls, shards: ImageShards) -> "ImageRows":
        return cls(shards, np.arange(shards.count))

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, positions) -> "ImageRows":
        """The rows at ``positions`` (ascending) of these rows."""
        return ImageRows(self.shards, self.rows[np.asarray(positions, dtype=np.int64)])

    def stream_order(self) -> np.ndarray:
        """The position (in ``rows``) of each image ``eval_stream`` yields, in the order it yields them:
        the shards' storage order."""
        stored = self.shards.order[np.isin(self.shards.order, self.rows)]
        return np.searchsorted(self.rows, stored)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Whole batches per fine-tuning epoch (at least one): the tail of one epoch's shuffle is left out."""
    return max(1, n // batch_size)


def covering_steps(n: int, batch_size: int) -> int:
    """Batches per segmentation epoch: every image at least once, the last batch filled from the epoch's
    start (a few images per batch: dropping the tail would cost a tiny run a third of its steps)."""
    return max(1, -(-n // batch_size))


def finish(pixels):
    """Resized float pixels rounded to bytes, as the fine-tuned networks see them: what serving must apply
    to decoded uploads too, to give the run's own numbers."""
    import tensorflow as tf

    return tf.clip_by_value(tf.round(pixels), 0.0, 255.0)


def to_uint8(batch: np.ndarray) -> np.ndarray:
    """``finish`` for a NumPy batch."""
    return np.clip(np.rint(batch), 0, 255).astype(np.uint8)


def decode_region(data, fmt, box, size: tuple[int, int]):
    """The ``box`` (top, left, height, width, in stored pixels) of an encoded image, resized to ``size``
    (bilinear, antialiased) as float32 in [0, 255]: a JPEG decoded at the largest DCT scale that keeps the
    box at least ``size``."""
    import tensorflow as tf

    height, width = size
    if_jpeg = tf.cast(tf.equal(fmt, "jpeg"), tf.int32)
    level = sum(tf.cast((box[2] >= height * r) & (box[3] >= width * r), tf.int32) for r in RATIOS[1:])
    branch = if_jpeg * (1 + level)  # 0: PNG, 1 + log2(ratio): JPEG

    def jpeg(ratio: int):
        return lambda: tf.io.decode_jpeg(data, channels=3, ratio=ratio, dct_method="INTEGER_ACCURATE")

    image = tf.switch_case(branch, [lambda: tf.io.decode_png(data, channels=3)] + [jpeg(r) for r in RATIOS])
    ratio = tf.gather(tf.constant((1,) + RATIOS, tf.int32), branch)
    crop = _crop(image, box, ratio)
    return tf.image.resize(crop, [height, width], method="bilinear", antialias=True)


def _crop(image, box, ratio):
    """``box`` (in full-size pixels) of ``image`` decoded at 1 / ``ratio`` of its size."""
    import tensorflow as tf

    shape = tf.shape(image)
    top, left = tf.minimum(box[0] // ratio, shape[0] - 1), tf.minimum(box[1] // ratio, shape[1] - 1)
    rows = tf.clip_by_value(box[2] // ratio, 1, shape[0] - top)
    cols = tf.clip_by_value(box[3] // ratio, 1, shape[1] - left)
    return image[top:top + rows, left:left + cols]


def decode_mask(data, box, size: tuple[int, int]):
    """The same ``box`` of a stored label map, resized to ``size`` by nearest neighbour: (H, W, 1) uint8."""
    import tensorflow as tf

    labels = _crop(tf.io.decode_png(data, channels=1), box, 1)
    return tf.cast(tf.image.resize(labels, list(size), method="nearest"), tf.uint8)


def full_box(record):
    import tensorflow as tf

    return tf.stack([0, 0, tf.cast(record["height"], tf.int32), tf.cast(record["width"], tf.int32)])


def crop_box(record, seed, augment: AugmentConfig):
    """A random resized crop's box in the stored image, drawn from ``seed`` (stateless): its area a
    ``crop_scale`` share of the image's, its width / height in ``crop_ratio``."""
    import tensorflow as tf

    if not augment.crop:
        return full_box(record)
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.stack([tf.cast(record["height"], tf.int32), tf.cast(record["width"], tf.int32), 3]),
        bounding_boxes=tf.zeros([1, 0, 4]), seed=seed, min_object_covered=0.0,
        aspect_ratio_range=augment.crop_ratio, area_range=augment.crop_scale, max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    return tf.stack([begin[0], begin[1], extent[0], extent[1]])


def records(shards: ImageShards, files: list[Path], cycle: int = 1):
    """The parsed records of ``files`` (of ``shards``): in file order, or ``cycle`` files interleaved."""
    import tensorflow as tf

    spec = shards.features()
    names = tf.data.Dataset.from_tensor_slices([str(f) for f in files])
    if cycle > 1:
        raw = names.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle, len(files)),
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        raw = tf.data.TFRecordDataset(names)
    return raw.map(lambda r: tf.io.parse_single_example(r, spec), num_parallel_calls=tf.data.AUTOTUNE,
                   deterministic=True)


def _selected(images: ImageRows, dataset):
    import tensorflow as tf

    keep = np.zeros(images.shards.count, dtype=bool)
    keep[images.rows] = True
    keep = tf.constant(keep)
    return dataset.filter(lambda r: tf.gather(keep, r["index"]))


def _table(images: ImageRows, targets: np.ndarray):
    """``targets`` (one row per image of ``images``) looked up by record index."""
    import tensorflow as tf

    targets = np.asarray(targets, dtype=np.float32).reshape(len(images), -1)
    table = np.zeros((images.shards.count, targets.shape[1]), dtype=np.float32)
    table[images.rows] = targets
    return tf.constant(table)


def scaled_box(record, seed, scale: float):
    """A random crop's box keeping the image's shape: each side a fraction in [1 - ``scale``, 1] of the image's."""
    import tensorflow as tf

    height, width = tf.cast(record["height"], tf.float32), tf.cast(record["width"], tf.float32)
    fraction, top, left = tf.unstack(tf.random.stateless_uniform([3], seed))
    fraction = 1.0 - scale * fraction
    rows = tf.maximum(1.0, tf.round(height * fraction))
    cols = tf.maximum(1.0, tf.round(width * fraction))
    return tf.cast(tf.stack([tf.floor(top * (height - rows + 1)), tf.floor(left * (width - cols + 1)), rows, cols]),
                   tf.int32)


def epoch_records(images: ImageRows, steps: int, batch_size: int, seed: int, epoch: int, draw: int):
    """``(position, record)`` of one training epoch's images: the shards in an order drawn from ``(seed,
    epoch)``, ``CYCLE`` of them interleaved, the fold's rows kept, windows of ``WINDOW`` shuffled (``draw``),
    cut (or repeated) to ``steps`` whole batches."""
    import tensorflow as tf

    def shuffle_window(k, window):
        order = tf.argsort(tf.random.stateless_uniform([tf.shape(window["index"])[0]], seed=tf.stack([draw, k])))
        return {key: tf.gather(value, order) for key, value in window.items()}

    files = [images.shards.files[i] for i in np.random.default_rng([seed, epoch]).permutation(len(images.shards.files))]
    return (_selected(images, records(images.shards, files, CYCLE))
            .batch(WINDOW).enumerate().map(shuffle_window).unbatch()
            .repeat().take(steps * batch_size).enumerate())


def epoch_indices(images: ImageRows, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """The record indices a training epoch's batches hold, in order (before MixUp or CutMix mix them)."""
    records_ = epoch_records(images, steps_per_epoch(len(images), batch_size), batch_size, seed, epoch,
                             epoch_draw(seed, epoch))
    return np.fromiter(records_.map(lambda i, record: record["index"]).as_numpy_iterator(), dtype=np.int64)


def epoch_draw(seed: int, epoch: int) -> int:
    """The seed of one epoch's random draws: distinct and reproducible per (run, epoch)."""
    return seed * 1009 + epoch * 7919


def shardable(dataset):
    """``dataset`` sharded by element (``AutoShardPolicy.DATA``) where a strategy spreads it over several
    workers: every worker builds the same stream (its draws are a function of ``(seed, epoch)``) and keeps its
    share of each global batch, so the workers together train on one worker's batches. The default (AUTO)
    shards by file, and a fold reads fewer shards than there may be workers, with unequal rows in each."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def training_stream(images: ImageRows, targets: np.ndarray, image_size: int, batch_size: int, seed: int, epoch: int,
                    augment: AugmentConfig):
    """One epoch of ``(float32 images in [0, 255], float32 targets)`` batches of ``images``, augmented:
    ``steps_per_epoch`` whole batches (the tail of one epoch's shuffle is left out; fewer images than a
    batch are repeated to fill one)."""
    import keras
    import tensorflow as tf

    draw = epoch_draw(seed, epoch)
    # the crop already moves and scales each image, from its full decode: shift and zoom would do it again
    layers = build_augmenter(augment.model_copy(update={"shift": 0.0, "zoom": 0.0}) if augment.crop else augment, draw)
    # float32 whatever the dtype policy, as build_augmenter's: they make the pixels the network casts
    randaugment = keras.layers.RandAugment(value_range=(0, 255), seed=draw + 11, dtype="float32") \
        if augment.randaugment else None
    mixers = [mixer(alpha, seed=draw + 13 + i, dtype="float32") for i, (mixer, alpha) in
              enumerate(((keras.layers.MixUp, augment.mixup), (keras.layers.CutMix, augment.cutmix))) if alpha > 0]
    table = _table(images, targets)
    size = (image_size, image_size)

    def decode(i, record):
        box = crop_box(record, tf.stack([tf.cast(draw, tf.int64) + 1, i]), augment)
        return finish(decode_region(record["image"], record["format"], box, size)), tf.gather(table, record["index"])

    def batch(x, y):
        if layers.layers:  # every augmentation may be switched off
            x = layers(x, training=True)
        if randaugment is not None:
            x = randaugment(x, training=True)
        for mix in mixers:
            mixed = mix({"images": x, "labels": y}, training=True)
            x, y = mixed["images"], mixed["labels"]
        return x, y

    steps = steps_per_epoch(len(images), batch_size)
    return (epoch_records(images, steps, batch_size, seed, epoch, draw)
            .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size, drop_remainder=True)
            .map(batch)  # sequential: parallel calls would consume the layers' random draws in a racy order
            .apply(tf.data.experimental.assert_cardinality(steps))
            .prefetch(tf.data.AUTOTUNE)
            .apply(shardable))


def segmentation_stream(images: ImageRows, size: tuple[int, int], batch_size: int, seed: int, epoch: int,
                        scale: float, hflip: bool):
    """One epoch (``covering_steps``) of ``(float32 images, int32 label maps)`` batches at ``size`` (height,
    width): each image and its mask cut by the same random crop (each side [1 - ``scale``, 1] of the full
    decode's) and flipped together, the image resized bilinearly, the mask by nearest neighbour."""
    import tensorflow as tf

    draw = epoch_draw(seed, epoch)

    def decode(i, record):
        box = scaled_box(record, tf.stack([tf.cast(draw, tf.int64) + 1, i]), scale) if scale > 0 else full_box(record)
        x = finish(decode_region(record["image"], record["format"], box, size))
        y = tf.cast(decode_mask(record["mask"], box, size)[..., 0], tf.int32)
        if hflip:
            flip = tf.random.stateless_uniform([], tf.stack([tf.cast(draw, tf.int64) + 2, i])) < 0.5
            x, y = tf.cond(flip, lambda: (x[:, ::-1], y[:, ::-1]), lambda: (x, y))
        return x, y

    steps = covering_steps(len(images), batch_size)
    return (epoch_records(images, steps, batch_size, seed, epoch, draw)
            .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size, drop_remainder=True)
            .apply(tf.data.experimental.assert_cardinality(steps))
            .prefetch(tf.data.AUTOTUNE)
            .apply(shardable))


def eval_stream(images: ImageRows, image_size: int | tuple[int, int], batch_size: int,
                targets: np.ndarray | None = None, masks: bool = False):
    """Batches of ``images`` in the shards' order (``ImageRows.stream_order``), whole and unaugmented
    (float32 in [0, 255], as ``finish`` rounds them) at ``image_size`` (a side, or (height, width));
    ``(images, targets)`` pairs when ``targets`` (one row per image) are given, ``(images, int32 label
    maps)`` with ``masks``."""
    import tensorflow as tf

    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    table = None if targets is None else _table(images, targets)

    def decode(record):
        box = full_box(record)
        x = finish(decode_region(record["image"], record["format"], box, size))
        if masks:
            return x, tf.cast(decode_mask(record["mask"], box, size)[..., 0], tf.int32)
        return x if table is None else (x, tf.gather(table, record["index"]))

    return (_selected(images, records(images.shards, list(images.shards.files)))
            .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size)
            .apply(tf.data.experimental.assert_cardinality(-(-len(images) // batch_size)))  # Keras reads its end
            .prefetch(tf.data.AUTOTUNE)
            .apply(shardable))


def decode_images(paths: list[Path], image_size: int, cfg: StreamConfig) -> np.ndarray:
    """(n, S, S, 3) float32: image files decoded exactly as ``eval_stream`` decodes their shards (a few
    files, without shards: serving, Grad-CAM, attacks). UnreadableImage names a file that cannot be read."""
    import tensorflow as tf

    if not paths:
        return np.zeros((0, image_size, image_size, 3), np.float32)
    stored = [stored_image(p, cfg) for p in paths]
    return np.stack([
        finish(decode_region(tf.constant(s.data), tf.constant(s.format), tf.constant([0, 0, s.height, s.width]),
                             (image_size, image_size))).numpy()
        for s in stored])
