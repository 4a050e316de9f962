"""tf.data input pipelines: parallel decode (any image format, via ``read_rgb``), resize, prefetch.

This is the only place kagglekit uses TensorFlow directly; models see NumPy batches of raw RGB
values in [0, 255], float32, so every Keras backend can consume them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from kagglekit.data.images import UnreadableImage, read_rgb

#: What a file that cannot be decoded becomes inside TensorFlow (never seen by a model: see below).
_PLACEHOLDER = np.zeros((1, 1, 3), dtype=np.uint8)


def _decode(path: bytes) -> tuple[np.ndarray, bytes]:
    """(image, b"") or (placeholder, reason): a decode error must never be raised inside TensorFlow,
    where it would surface as an opaque op failure; the reason travels out with the batch instead."""
    try:
        return read_rgb(os.fsdecode(path)), b""
    except UnreadableImage as exc:
        return _PLACEHOLDER, str(exc).encode("utf-8", "replace")


def image_batches(paths: list[Path], image_size: int, batch_size: int = 64) -> Iterator[np.ndarray]:
    """Yield (b, S, S, 3) float32 batches in ``paths`` order; an unreadable file raises UnreadableImage
    (naming it) when its batch comes up."""
    if not paths:
        return
    import tensorflow as tf

    def decode(path):
        image, reason = tf.numpy_function(_decode, [path], (tf.uint8, tf.string), stateful=False)
        image.set_shape([None, None, 3])
        reason.set_shape([])
        return resize_rgb(image, image_size), reason

    dataset = (
        tf.data.Dataset.from_tensor_slices(tf.constant([os.fsencode(p) for p in paths], dtype=tf.string))
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    for batch, reasons in dataset.as_numpy_iterator():
        failed = [r for r in reasons if r]
        if failed:
            raise UnreadableImage(failed[0].decode("utf-8", "replace"))
        yield batch


def resize_rgb(image, image_size: int):
    """The one resize in front of every classifier: bilinear, antialiased, to (S, S), float32. Used
    inside ``image_batches`` and on decoded uploads (``resized_batch``), so both give the same pixels."""
    import tensorflow as tf

    return tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)


def resized_batch(images: list[np.ndarray], image_size: int) -> np.ndarray:
    """(n, S, S, 3) float32 from decoded (H, W, 3) uint8 images of any sizes."""
    return np.stack([np.asarray(resize_rgb(image, image_size), dtype=np.float32) for image in images])
