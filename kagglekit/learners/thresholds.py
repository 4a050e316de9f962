"""Per-class decision thresholds for multi-label predictions, tuned on out-of-fold probabilities.

A 0.5 cut-off is wrong for most labels of an imbalanced multi-label problem; the F1-optimal threshold
of each class is found on out-of-fold predictions (never on the data it is scored on) and applied to
the test set. An image left with no label gets its likeliest one (every VOC image shows an object).

A tuner never invents a class: one without a positive example in the rows it is fitted on (a class absent
from the training labels, or from a fold's) gets no threshold (``NEVER``) and is never predicted, not even
by the fallback; and where several thresholds reach the best F1, the one with the fewest false positives
wins (with F1 0 everywhere, the lowest threshold would have labelled every image).

The F-score a competition averages decides the thresholds (``average``, as scikit-learn's ``f1_score`` names it):
"macro" (each class's F1: the per-class optimum), "samples" (each image's F-beta: the PASCAL VOC course's
classification rows, ``mean_f1`` / ``mean_f2`` competitions) or "micro" (one F-beta over every cell). For the last
two the classes interact (through each image's score and the top-1 fallback), so the per-class optimum is refined
by coordinate ascent: each class's threshold in turn is moved to the grid value that most raises the averaged
score with the others fixed, until no move helps.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

#: The threshold of a class never to predict: no probability reaches it. Saved as ``null`` in JSON.
NEVER = np.inf
Average = Literal["macro", "samples", "micro"]
#: The F-score each multi-label metric averages (``kagglekit.evaluation.metrics``): (average, beta).
METRIC_AVERAGES: dict[str, tuple[Average, float]] = {
    "macro_f1": ("macro", 1.0), "micro_f1": ("micro", 1.0), "mean_f1": ("samples", 1.0),
    "mean_f2": ("samples", 2.0), "dice": ("samples", 1.0),  # a VOC classification row's Dice is its F1
}
#: At most this many passes over the classes (each pass only raises the score; it stops when none does).
MAX_PASSES = 5


class ThresholdTuner:
    """Per-class probability thresholds maximising F1 on OOF predictions (scikit-learn style)."""

    def __init__(self, top1_fallback: bool = True, average: Average = "macro", beta: float = 1.0,
                 grid: np.ndarray | None = None):
        if average not in ("macro", "samples", "micro"):
            raise ValueError(f"average must be macro, samples or micro, not {average!r}")
        self.top1_fallback, self.average, self.beta = top1_fallback, average, float(beta)
        self.grid = np.round(np.arange(0.02, 0.99, 0.01), 2) if grid is None else np.asarray(grid)

    @classmethod
    def for_metric(cls, metric: str, top1_fallback: bool = True) -> "ThresholdTuner":
        """An unfitted tuner for a competition's ``metric`` (macro F1 where it averages no F-score)."""
        average, beta = METRIC_AVERAGES.get(metric, ("macro", 1.0))
        return cls(top1_fallback, average, beta)

    def clone(self) -> "ThresholdTuner":
        """An unfitted tuner with the same settings (one per fold of a nested CV)."""
        return type(self)(self.top1_fallback, self.average, self.beta, self.grid)

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
        if self.average != "macro":
            self._refine(proba, y)
        return self

    def _score(self, proba: np.ndarray, y: np.ndarray) -> float:
        """The "samples" or "micro" F-beta of this tuner's labels of ``proba`` against ``y`` (fallback included)."""
        predicted, y = self.predict(proba).astype(bool), np.asarray(y).astype(bool)
        counts = [(predicted & y).sum(1), (predicted & ~y).sum(1), (~predicted & y).sum(1)]
        return float(self._averaged(*(c[None] for c in counts))[0])

    def _averaged(self, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
        """The averaged F-beta of candidate labellings from their per-image counts, each (candidates, images);
        an image with nothing to find and nothing predicted scores 1 (as an empty VOC row)."""
        b2 = self.beta ** 2
        if self.average == "micro":
            tp, fp, fn = tp.sum(1), fp.sum(1), fn.sum(1)
            return (1 + b2) * tp / np.maximum((1 + b2) * tp + b2 * fn + fp, 1e-12)
        denominator = (1 + b2) * tp + b2 * fn + fp
        return np.where(denominator > 0, (1 + b2) * tp / np.maximum(denominator, 1e-12), 1.0).mean(1)

    def _refine(self, proba: np.ndarray, y: np.ndarray) -> None:
        """Coordinate ascent on the averaged score from the per-class optimum: a class's threshold moves only
        to a strictly better grid value (the highest of ties), so the score rises at every move and stops."""
        allowed = self.thresholds_ != NEVER
        if not allowed.any():
            return
        # the fallback's class for an image left with no label: fixed, as the thresholds do not change it
        fallback = np.where(allowed, proba, -np.inf).argmax(axis=1)
        best = self._score(proba, y)
        for _ in range(MAX_PASSES):
            moved = False
            for j in np.flatnonzero(allowed):
                others = proba >= self.thresholds_
                others[:, j] = False
                tp, fp, fn = ((others & y).sum(1), (others & ~y).sum(1), (~others & y).sum(1))
                fn = fn - y[:, j]  # class j's cell is counted below, per candidate
                mine = proba[:, j][None] >= self.grid[:, None]  # (grid, images)
                if self.top1_fallback:  # an image with no other label and j below its cut gets its fallback
                    falls = (others.sum(1) == 0)[None] & ~mine
                    mine = mine | (falls & (fallback == j)[None])
                    hit = y[np.arange(len(y)), fallback]
                    extra_tp = falls & (fallback != j)[None] & hit[None]
                    extra_fp = falls & (fallback != j)[None] & ~hit[None]
                    fn_fixed = falls & (fallback != j)[None] & hit[None]  # the fallback finds one of fn's cells
                else:
                    extra_tp = extra_fp = fn_fixed = np.zeros_like(mine)
                scores = self._averaged(tp[None] + (mine & y[:, j]) + extra_tp,
                                        fp[None] + (mine & ~y[:, j]) + extra_fp,
                                        fn[None] + (~mine & y[:, j]) - fn_fixed)
                k = len(self.grid) - 1 - np.flip(scores).argmax()
                if scores[k] > best + 1e-12:
                    self.thresholds_[j], best, moved = self.grid[k], float(scores[k]), True
            if not moved:
                break

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
