"""Multi-label classification: a sigmoid head, per-class thresholds tuned on OOF predictions, a report.

A 0.5 cut-off is wrong for most labels of an imbalanced multi-label problem; the F1-optimal
threshold of each class is found on out-of-fold predictions (never on the data it is scored on)
and applied to the test set. An image left with no label gets its likeliest one (every VOC image
shows at least one object).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, f1_score

from kagglekit.heads import HeadClassifier, build_head
from kagglekit.losses import MultiLabelLoss


class MultiLabelHead(HeadClassifier):
    """The shared head with sigmoid outputs, trained on 0/1 label matrices with BCE or focal loss."""

    def __init__(self, input_dim, n_classes, config, seed, workdir, pos_weight=None, gamma: float = 0.0):
        super().__init__(input_dim, n_classes, config, seed, workdir)
        self.pos_weight, self.gamma = pos_weight, gamma

    def build(self):
        return build_head(self.input_dim, self.n_classes, self.config.head_dropout, activation="sigmoid")

    def loss(self):
        return MultiLabelLoss(self.pos_weight, self.gamma)

    def metrics(self) -> list:
        return ["binary_accuracy"]

    def targets(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float32)


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


def multilabel_report(y: np.ndarray, proba: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
    """Per-class F1 and average precision, mAP, micro/macro F1 and the mean per-image Dice of labels."""
    y, predicted = np.asarray(y), np.asarray(predicted)
    present = y.sum(axis=0) > 0
    ap = [float(average_precision_score(y[:, j], proba[:, j])) if present[j] else None for j in range(len(classes))]
    f1 = f1_score(y, predicted, average=None, zero_division=0)
    overlap = (y & predicted).sum(axis=1)
    total = y.sum(axis=1) + predicted.sum(axis=1)
    dice = np.where(total == 0, 1.0, 2 * overlap / np.maximum(total, 1))
    return {
        "mAP": float(np.mean([a for a in ap if a is not None])),
        "micro_f1": float(f1_score(y, predicted, average="micro", zero_division=0)),
        "macro_f1": float(np.mean(f1)),
        "label_dice": float(dice.mean()),
        "per_class": {c: {"f1": float(f), "ap": a, "positives": int(n)}
                      for c, f, a, n in zip(classes, f1, ap, y.sum(axis=0))},
    }
