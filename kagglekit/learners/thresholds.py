"""Per-class decision thresholds for multi-label predictions, tuned on out-of-fold probabilities.

A 0.5 cut-off is wrong for most labels of an imbalanced multi-label problem; the F1-optimal threshold
of each class is found on out-of-fold predictions (never on the data it is scored on) and applied to
the test set. An image left with no label gets its likeliest one (every VOC image shows an object).

A tuner never invents a class: one without a positive example in the rows it is fitted on (a class absent
from the training labels, or from a fold's) gets no threshold (``NEVER``) and is never predicted, not even
by the fallback; and where several thresholds reach the best F1, the one with the fewest false positives
wins (with F1 0 everywhere, the lowest threshold would have labelled every image).
"""

from __future__ import annotations

import numpy as np

#: The threshold of a class never to predict: no probability reaches it. Saved as ``null`` in JSON.
NEVER = np.inf


class ThresholdTuner:
    """Per-class probability thresholds maximising F1 on OOF predictions (scikit-learn style)."""

    def __init__(self, top1_fallback: bool = True, grid: np.ndarray | None = None):
        self.top1_fallback = top1_fallback
        self.grid = np.round(np.arange(0.02, 0.99, 0.01), 2) if grid is None else np.asarray(grid)

    def fit(self, proba: np.ndarray, y: np.ndarray) -> "ThresholdTuner":
        proba, y = np.asarray(proba), np.asarray(y).astype(bool)
        predicted = proba[None] >= self.grid[:, None, None]  # (thresholds, images, classes)
        tp = (predicted & y).sum(axis=1)
        fp = (predicted & ~y).sum(axis=1)
        fn = (~predicted & y).sum(axis=1)
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        # among the thresholds reaching the best F1, the fewest false positives: false positives only fall as
        # the threshold rises, so the last (highest) of the ties
        best = len(self.grid) - 1 - np.flip(f1, axis=0).argmax(axis=0)
        self.thresholds_ = np.where(y.any(axis=0), self.grid[best], NEVER)
        self.oof_f1_ = f1[best, np.arange(y.shape[1])]
        return self

    def saved_thresholds(self) -> list[float | None]:
        """The thresholds as JSON can hold them: ``None`` for a class that is never predicted."""
        return [None if t == NEVER else float(t) for t in self.thresholds_]

    @classmethod
    def from_thresholds(cls, thresholds, top1_fallback: bool = True) -> "ThresholdTuner":
        """A tuner fitted earlier, from the thresholds a run saved."""
        tuner = cls(top1_fallback)
        tuner.thresholds_ = np.array([NEVER if t is None else t for t in thresholds], dtype=np.float64)
        return tuner

    def predict(self, proba: np.ndarray) -> np.ndarray:
        proba = np.asarray(proba)
        labels = (proba >= self.thresholds_).astype(np.int64)
        allowed = self.thresholds_ != NEVER
        if self.top1_fallback and allowed.any():
            empty = labels.sum(axis=1) == 0
            likeliest = np.where(allowed, proba[empty], -np.inf).argmax(axis=1)  # never a class it must not invent
            labels[empty, likeliest] = 1
        return labels
