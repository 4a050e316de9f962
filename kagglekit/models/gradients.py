"""The gradient of a scalar function of one tensor, on whichever Keras backend is in use.

Keras 3 has no backend-neutral ``grad``; this is the one place that differs per backend (TensorFlow's
GradientTape, ``jax.grad``, PyTorch's autograd). Grad-CAM and the adversarial attacks build on it.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np


def gradient(fn: Callable, x: np.ndarray) -> np.ndarray:
    """d fn(x) / d x as a NumPy array; ``fn`` maps a backend tensor to a scalar with ``keras.ops``."""
    backend = keras.backend.backend()
    x = np.asarray(x, dtype=np.float32)
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = fn(tensor)
        return tape.gradient(value, tensor).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    if backend == "torch":
        import torch

        tensor = torch.tensor(x, requires_grad=True)
        fn(tensor).backward()
        return tensor.grad.detach().cpu().numpy()
    raise NotImplementedError(f"no gradient for the {backend} backend")
