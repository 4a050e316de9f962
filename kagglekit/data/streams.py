"""Streamed training batches for whole-network fine-tuning: decoded once, augmented afresh every epoch.

Images are decoded and resized once into memory (uint8; decoding large PNGs every epoch would cost
more than training on a CPU); each epoch is then a ``tf.data`` pipeline over that array: a shuffled
order, Keras augmentation layers (and optionally RandAugment, MixUp, CutMix) drawn per batch, and
prefetching so augmentation overlaps training. Every epoch's order and draws are a function of
``(seed, epoch)`` alone, which is what makes a resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from kagglekit.core.config import AugmentConfig
from kagglekit.core.progress import progress
from kagglekit.data.augment import build_augmenter
from kagglekit.data.loaders import image_batches


def decode_images(paths: list[Path], image_size: int, desc: str = "decode") -> np.ndarray:
    """(n, S, S, 3) uint8: every image read, resized as everywhere else (``resize_rgb``), in order."""
    out = np.empty((len(paths), image_size, image_size, 3), dtype=np.uint8)
    done = 0
    with progress(len(paths), f"{desc} @{image_size}px") as bar:
        for batch in image_batches(paths, image_size):
            out[done:done + len(batch)] = to_uint8(batch)
            done += len(batch)
            bar.update(len(batch))
    return out


def to_uint8(batch: np.ndarray) -> np.ndarray:
    """Resized float pixels as the fine-tuned networks see them (rounded to bytes, as stored in memory):
    what serving must apply too, to give the run's own numbers."""
    return np.clip(np.rint(batch), 0, 255).astype(np.uint8)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Whole batches per epoch (at least one): what every epoch's stream yields."""
    return max(1, n // batch_size)


def epoch_order(n: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """The images of one epoch, shuffled by ``(seed, epoch)``; whole batches only (the tail of one
    epoch's shuffle is in the next's), so every step sees a full batch."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return np.resize(order, steps_per_epoch(n, batch_size) * batch_size)  # n < batch_size: repeat to fill one batch


def training_stream(images, targets: np.ndarray, batch_size: int, seed: int, epoch: int, augment: AugmentConfig):
    """One epoch of ``(float32 images in [0, 255], float32 targets)`` batches, augmented.

    ``images`` is a ``tf.Tensor`` made once from ``decode_images`` (so each epoch does not copy it).
    """
    import keras
    import tensorflow as tf

    draw = seed * 1009 + epoch * 7919  # distinct, reproducible layer seeds per (run, epoch)
    layers = build_augmenter(augment, draw)
    randaugment = keras.layers.RandAugment(value_range=(0, 255), seed=draw + 11) if augment.randaugment else None
    mixers = [mixer(alpha, seed=draw + 13 + i) for i, (mixer, alpha) in
              enumerate(((keras.layers.MixUp, augment.mixup), (keras.layers.CutMix, augment.cutmix))) if alpha > 0]
    targets = tf.constant(targets, dtype=tf.float32)

    def batch(indices):
        x = tf.cast(tf.gather(images, indices), tf.float32)
        if layers.layers:  # every augmentation may be switched off
            x = layers(x, training=True)
        if randaugment is not None:
            x = randaugment(x, training=True)
        y = tf.gather(targets, indices)
        for mix in mixers:
            mixed = mix({"images": x, "labels": y}, training=True)
            x, y = mixed["images"], mixed["labels"]
        return x, y

    order = epoch_order(int(images.shape[0]), batch_size, seed, epoch)
    return (tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True)
            .map(batch)  # sequential: parallel calls would consume the random draws in a racy order
            .prefetch(tf.data.AUTOTUNE))
