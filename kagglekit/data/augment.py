"""Training augmentation with Keras preprocessing layers, materialised as cached views.

The seed notebooks augmented with flips, rotation, shifts, shear, zoom and channel shift. Training
on cached features cannot augment on the fly, so each augmented pass over the images becomes a view
(``augment1``, ``augment2``, ...): one seeded random draw per image, computed once and cached like the
dihedral views. The layers are Keras 3 layers, so the same code runs on every backend.
"""

from __future__ import annotations

import hashlib
import json

import keras
import numpy as np

from kagglekit.core.config import AugmentConfig

PREFIX = "augment"


def is_augmented(view: str) -> bool:
    return view.startswith(PREFIX) and view[len(PREFIX):].isdigit()


def augment_key(cfg: AugmentConfig) -> str:
    """Short hash of the augmentation settings: part of an augmented view's cache identity."""
    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:8]


class ChannelShift(keras.layers.Layer):
    """Add one random offset per image and channel (a fraction of the 0-255 range)."""

    def __init__(self, factor: float, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.factor, self.generator = factor, keras.random.SeedGenerator(seed)

    def call(self, x, training=True):
        if not training:
            return x
        shift = keras.random.uniform((keras.ops.shape(x)[0], 1, 1, 3), -self.factor, self.factor, seed=self.generator)
        return keras.ops.clip(x + 255.0 * shift, 0.0, 255.0)


class RandomTranspose(keras.layers.Layer):
    """Swap rows and columns of a random half of the (square) images: with both flips, each image becomes any of
    the 8 symmetries of the square, exactly (no resampling, no filled corners) and at almost no cost."""

    def __init__(self, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=True):
        if not training:
            return x
        swap = keras.random.uniform((keras.ops.shape(x)[0], 1, 1, 1), seed=self.generator) < 0.5
        return keras.ops.where(swap, keras.ops.transpose(x, (0, 2, 1, 3)), x)


def build_augmenter(cfg: AugmentConfig, seed: int) -> keras.Sequential:
    """The layers of ``cfg``, computing in float32 whatever the global dtype policy: they make the input
    pixels, which the network casts to its own precision (under ``mixed_bfloat16`` they would otherwise
    compute in bfloat16 and ``ChannelShift`` fail on a float32 constant)."""
    f32 = {"dtype": "float32"}
    # one layer per direction: Keras 3's "horizontal_and_vertical" draws one coin for both (an image is kept or
    # turned by 180 degrees, never mirrored); two layers draw them apart, as Keras 2 did
    layers = [keras.layers.RandomFlip(mode, seed=seed + offset, **f32) for mode, offset, on in
              (("horizontal", 0, cfg.horizontal_flip), ("vertical", 7, cfg.vertical_flip)) if on]
    if cfg.transpose:
        layers.append(RandomTranspose(seed + 6, **f32))
    if cfg.rotation:
        layers.append(keras.layers.RandomRotation(cfg.rotation, fill_mode="reflect", seed=seed + 1, **f32))
    if cfg.shift:
        layers.append(keras.layers.RandomTranslation(cfg.shift, cfg.shift, fill_mode="reflect", seed=seed + 2, **f32))
    if cfg.shear:
        layers.append(keras.layers.RandomShear(cfg.shear, cfg.shear, fill_mode="reflect", seed=seed + 3, **f32))
    if cfg.zoom:
        layers.append(keras.layers.RandomZoom(cfg.zoom, fill_mode="reflect", seed=seed + 4, **f32))
    if cfg.channel_shift:
        layers.append(ChannelShift(cfg.channel_shift, seed + 5, **f32))
    return keras.Sequential(layers, name="augment")


class Augmenter:
    """Renders augmented views of NumPy batches: view ``augmentK`` draws from its own seed stream."""

    def __init__(self, cfg: AugmentConfig, seed: int = 0):
        self.cfg, self.seed, self._pipelines = cfg, seed, {}

    def __call__(self, view: str, batch: np.ndarray) -> np.ndarray:
        if view not in self._pipelines:
            self._pipelines[view] = build_augmenter(self.cfg, self.seed + 1000 * int(view[len(PREFIX):]))
        return keras.ops.convert_to_numpy(self._pipelines[view](batch.astype(np.float32), training=True))
