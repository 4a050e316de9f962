"""Grad-CAM and Grad-CAM++: where in an image a classifier looks when it predicts a class.

Selvaraju et al. (2017) weight a convolutional layer's feature maps by the spatial mean of the class
score's gradient with respect to them; Chattopadhyay et al. (2018, "++") weight each position's
gradient instead, which separates several instances of a class better. The score differentiated is
the class's log-probability (a softmax's, or one sigmoid's for a multi-label head; the log keeps the
gradient from vanishing on confident predictions).

The model comes split at the target layer (``models.composition``): ``features`` (image -> feature
maps) and ``head`` ([feature maps, image] -> probabilities; the image feeds what does not pass the
layer, such as a head-based run's earlier pooled stages), so the gradient is taken with respect to the
head's *input*, a plain tensor. That one gradient is the only backend-specific step
(``models.gradients``: TensorFlow's GradientTape, ``jax.grad`` or PyTorch's autograd); everything else
is ``keras.ops`` / NumPy.
"""

from __future__ import annotations

import keras
import numpy as np

from kagglekit.models.gradients import gradient


def _head_gradients(head: keras.Model, maps: np.ndarray, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """d log p(class) / d maps for each image's class."""
    pick = keras.ops.convert_to_tensor(np.eye(head.output.shape[-1], dtype=np.float32)[classes])
    images = keras.ops.convert_to_tensor(images)
    return gradient(lambda x: keras.ops.sum(
        keras.ops.log(keras.ops.clip(head([x, images], training=False), 1e-7, 1.0)) * pick), maps)


def class_activation_maps(features: keras.Model, head: keras.Model, images: np.ndarray, classes: np.ndarray,
                          plus_plus: bool = False) -> np.ndarray:
    """(n, H, W) maps in [0, 1] at the images' size: where the model split into ``features`` and ``head``
    sees evidence of ``classes[i]`` in ``images[i]`` ((n, H, W, 3) float32, as the model takes them)."""
    images = np.asarray(images, dtype=np.float32)
    maps = np.asarray(features.predict(images, verbose=0), dtype=np.float32)
    grads = _head_gradients(head, maps, images, np.asarray(classes))
    if plus_plus:
        g2, g3 = grads ** 2, grads ** 3
        denominator = 2 * g2 + (maps.sum(axis=(1, 2), keepdims=True) * g3)
        alpha = g2 / np.where(denominator != 0, denominator, 1.0)
        weights = (alpha * np.maximum(grads, 0)).sum(axis=(1, 2))
    else:
        weights = grads.mean(axis=(1, 2))
    cams = np.maximum(np.einsum("nhwc,nc->nhw", maps, weights), 0)
    peak = cams.max(axis=(1, 2), keepdims=True)
    cams = cams / np.where(peak > 0, peak, 1.0)
    height, width = images.shape[1:3]
    return np.asarray(keras.ops.image.resize(cams[..., None], (height, width), interpolation="bilinear"))[..., 0]


def averaged_maps(parts: list[tuple[keras.Model, keras.Model]], images: np.ndarray, classes: np.ndarray,
                  plus_plus: bool = False) -> np.ndarray:
    """``class_activation_maps`` averaged over several split models (a run's fold networks)."""
    return np.mean([class_activation_maps(features, head, images, classes, plus_plus) for features, head in parts], axis=0)
