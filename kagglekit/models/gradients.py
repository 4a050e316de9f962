"""The gradient of a scalar function of one tensor, on whichever Keras backend is in use.

Keras 3 has no backend-neutral ``grad``; this is the one place that differs per backend (TensorFlow's
GradientTape, ``jax.grad``, PyTorch's autograd). Grad-CAM and the adversarial attacks build on it: Grad-CAM
takes one gradient eagerly (``gradient``), an attack thousands of the same function (``CompiledGradient``).
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np


def _tape_gradient(fn: Callable, x, *args):
    """TensorFlow: d fn(x, *args) / d x as a tensor (eager, or traced inside a ``tf.function``)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = fn(x, *args)
    return tape.gradient(value, x)


def gradient(fn: Callable, x: np.ndarray, *args) -> np.ndarray:
    """d fn(x, *args) / d x as a NumPy array, computed eagerly; ``fn`` maps a backend tensor (and ``args``) to a
    scalar with ``keras.ops``."""
    backend = keras.backend.backend()
    x = np.asarray(x, dtype=np.float32)
    if backend == "tensorflow":
        return _tape_gradient(fn, x, *args).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x, *args))
    if backend == "torch":
        import torch

        tensor = torch.tensor(x, requires_grad=True)
        fn(tensor, *[torch.as_tensor(a) for a in args]).backward()
        return tensor.grad.detach().cpu().numpy()
    raise NotImplementedError(f"no gradient for the {backend} backend")


class CompiledGradient:
    """``x, *args -> d fn(x, *args) / d x`` (NumPy), ``fn`` compiled once and reused for every call (a
    ``tf.function`` that relaxes the batch dimension, ``jax.jit``; PyTorch runs eagerly). Eager TensorFlow spent
    6 s a gradient on 20 images of a head run's composed network (TTA, several extractors) at 64 px: most of an
    attack's time."""

    def __init__(self, fn: Callable):
        self.fn, backend = fn, keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            self._compiled = tf.function(lambda x, *args: _tape_gradient(fn, x, *args), reduce_retracing=True)
        elif backend == "jax":
            import jax

            self._compiled = jax.jit(jax.grad(fn))
        else:
            self._compiled = None

    def __call__(self, x: np.ndarray, *args) -> np.ndarray:
        if self._compiled is None:
            return gradient(self.fn, x, *args)
        return np.asarray(self._compiled(np.asarray(x, dtype=np.float32), *args))
