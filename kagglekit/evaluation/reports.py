"""Reports of what a model got right, per class: multi-label F1 / AP, segmentation IoU and Dice."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, f1_score

from kagglekit.evaluation.segmentation import ConfusionMatrix, mask_dice


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


def segmentation_report(truths: list[np.ndarray], predicted: list[np.ndarray], classes: list[str], void: int | None) -> dict:
    """mIoU and per-class IoU over the whole split, and the competition's mean Dice over (image, class) rows."""
    confusion = ConfusionMatrix(len(classes), void)
    for truth, pred in zip(truths, predicted):
        confusion.update(truth, pred)
    iou = confusion.iou()
    dice = np.mean([mask_dice(t, p, len(classes)) for t, p in zip(truths, predicted)])
    return {
        "miou": confusion.miou(), "dice": float(dice), "pixel_accuracy": confusion.pixel_accuracy(),
        "iou": {c: (None if np.isnan(v) else float(v)) for c, v in zip(classes, iou)},
    }
