"""tf.data input pipelines: parallel decode (any image format, via ``read_rgb``), resize, prefetch.

This is the only place kagglekit uses TensorFlow directly; models see NumPy batches of raw RGB
values in [0, 255], float32, so every Keras backend can consume them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from kagglekit.data.images import read_rgb


def image_batches(paths: list[Path], image_size: int, batch_size: int = 64) -> Iterator[np.ndarray]:
    """Yield (b, S, S, 3) float32 batches in ``paths`` order."""
    import tensorflow as tf

    def decode(path):
        image = tf.numpy_function(lambda p: read_rgb(p.decode()), [path], tf.uint8, stateful=False)
        image.set_shape([None, None, 3])
        return tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)

    dataset = (
        tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    for batch in dataset.as_numpy_iterator():
        yield batch
