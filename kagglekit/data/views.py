"""Test-time (and train-time) views: the dihedral transforms of an NHWC image batch.

Seedlings, cells and satellite tiles are photographed from above, so every flip and quarter turn is
as valid as the original. Views work on NumPy batches so they stay backend-agnostic and cheap.
"""

from __future__ import annotations

import numpy as np

from kagglekit.core.registry import Registry

VIEWS: Registry = Registry("view")

VIEWS.register("identity", lambda x: x)
VIEWS.register("hflip", lambda x: x[:, :, ::-1])
VIEWS.register("vflip", lambda x: x[:, ::-1])
VIEWS.register("rot90", lambda x: np.rot90(x, 1, axes=(1, 2)))
VIEWS.register("rot180", lambda x: np.rot90(x, 2, axes=(1, 2)))
VIEWS.register("rot270", lambda x: np.rot90(x, 3, axes=(1, 2)))
VIEWS.register("transpose", lambda x: np.swapaxes(x, 1, 2))
VIEWS.register("antitranspose", lambda x: np.rot90(np.swapaxes(x, 1, 2), 2, axes=(1, 2)))


def apply_view(name: str, batch: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(VIEWS.get(name)(batch))


def average_views(probabilities: np.ndarray) -> np.ndarray:
    """Mean over the leading view axis: (views, n, classes) -> (n, classes)."""
    return np.asarray(probabilities).mean(axis=0)
