"""Segmentation metrics on label maps: mean IoU (the field's yardstick) and Kaggle's Dice.

Void pixels (an adapter setting: VOC 255, CamVid 11) are left out of everything. Scores are
accumulated over a whole split (IoU) or averaged over images and classes as Kaggle rows (Dice).
"""

from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """Pixel counts of (true class, predicted class), accumulated image by image."""

    def __init__(self, n_classes: int, void_label: int | None = None):
        self.n_classes, self.void_label = n_classes, void_label
        self.counts = np.zeros((n_classes, n_classes), dtype=np.int64)

    def update(self, truth: np.ndarray, predicted: np.ndarray) -> "ConfusionMatrix":
        truth, predicted = np.asarray(truth).ravel(), np.asarray(predicted).ravel()
        keep = truth < self.n_classes if self.void_label is None else (truth != self.void_label) & (truth < self.n_classes)
        index = truth[keep].astype(np.int64) * self.n_classes + predicted[keep].astype(np.int64)
        self.counts += np.bincount(index, minlength=self.n_classes ** 2).reshape(self.n_classes, self.n_classes)
        return self

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class absent from both truth and predictions."""
        tp = np.diag(self.counts).astype(np.float64)
        union = self.counts.sum(0) + self.counts.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        return float(np.nanmean(self.iou()))

    def pixel_accuracy(self) -> float:
        return float(np.diag(self.counts).sum() / max(self.counts.sum(), 1))


def stack_dice(truth: np.ndarray, predicted: np.ndarray, classes, void_label: int | None = None) -> float:
    """Dice of the stacked binary masks of ``classes`` (the VOC course's segmentation row).

    Equal to decoding both submissions' RLE stacks and comparing them, without building the stacks.
    Void pixels belong to no true mask; a prediction there counts against it, as Kaggle scores it.
    """
    classes = np.asarray(classes)
    truth = np.asarray(truth)
    if void_label is not None:
        truth = np.where(truth == void_label, -1, truth)
    in_truth, in_pred = np.isin(truth, classes), np.isin(predicted, classes)
    total = int(in_truth.sum() + in_pred.sum())
    if total == 0:
        return 1.0
    return 2 * int((in_truth & (truth == predicted)).sum()) / total


def mask_dice(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes,) Dice of each class's binary mask in one image (the rows of a per-class submission).

    As in the solution file, void pixels (any value >= n_classes) are in no true mask, while a
    prediction there counts against the predicted class.
    """
    classes = np.arange(n_classes)[:, None, None]
    t, p = np.asarray(truth)[None] == classes, np.asarray(predicted)[None] == classes
    total = t.sum((1, 2)) + p.sum((1, 2))
    return np.where(total == 0, 1.0, 2 * (t & p).sum((1, 2)) / np.maximum(total, 1))


def mean_mask_dice(truths: list[np.ndarray], predicted: list[np.ndarray], n_classes: int) -> float:
    """Kaggle's mean Dice over the (image, class) rows of a per-class submission (``mask_dice``'s rows)."""
    return float(np.mean([mask_dice(t, p, n_classes) for t, p in zip(truths, predicted)]))
