"""Per-class decision thresholds for multi-label predictions, tuned on out-of-fold probabilities.

A 0.5 cut-off is wrong for most labels of an imbalanced multi-label problem; the F1-optimal threshold
of each class is found on out-of-fold predictions (never on the data it is scored on) and applied to
the test set. An image left with no label gets its likeliest one (every VOC image shows an object).
"""

from __future__ import annotations

import numpy as np


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
        best = f1.argmax(axis=0)  # first (lowest) threshold reaching the best F1
        self.thresholds_ = self.grid[best]
        self.oof_f1_ = f1[best, np.arange(y.shape[1])]
        return self

    @classmethod
    def from_thresholds(cls, thresholds, top1_fallback: bool = True) -> "ThresholdTuner":
        """A tuner fitted earlier, from the thresholds a run saved."""
        tuner = cls(top1_fallback)
        tuner.thresholds_ = np.asarray(thresholds, dtype=np.float64)
        return tuner

    def predict(self, proba: np.ndarray) -> np.ndarray:
        proba = np.asarray(proba)
        labels = (proba >= self.thresholds_).astype(np.int64)
        if self.top1_fallback:
            empty = labels.sum(axis=1) == 0
            labels[empty, proba[empty].argmax(axis=1)] = 1
        return labels
