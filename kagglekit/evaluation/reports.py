"""Reports of what a model got right, per class, and where it went wrong: single-label precision /
recall / F1, the worst out-of-fold mistakes, calibration; multi-label F1 / AP; segmentation IoU and Dice."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support

from kagglekit.evaluation.segmentation import ConfusionMatrix, mean_mask_dice


def multilabel_report(y: np.ndarray, proba: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
    """Per-class F1 and average precision, mAP, micro/macro F1 and the mean per-image Dice of labels."""
    y, predicted = np.asarray(y), np.asarray(predicted)
    present = y.sum(axis=0) > 0
    ap = [float(average_precision_score(y[:, j], proba[:, j])) if present[j] else None for j in range(len(classes))]
    f1 = f1_score(y, predicted, average=None, zero_division=0)
    dice = label_dice(y, predicted)
    return {
        "mAP": float(np.mean([a for a in ap if a is not None])),
        "micro_f1": float(f1_score(y, predicted, average="micro", zero_division=0)),
        "macro_f1": float(np.mean(f1)),
        "label_dice": float(dice.mean()),
        "per_class": {c: {"f1": float(f), "ap": a, "positives": int(n)}
                      for c, f, a, n in zip(classes, f1, ap, y.sum(axis=0))},
    }


def label_dice(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Each image's F1 (Dice) between its true and predicted 0/1 label rows; 1 where both are empty
    (Kaggle's "mean F1" of label sets, per row)."""
    y, predicted = np.asarray(y).astype(bool), np.asarray(predicted).astype(bool)
    total = y.sum(axis=1) + predicted.sum(axis=1)
    return np.where(total == 0, 1.0, 2 * (y & predicted).sum(axis=1) / np.maximum(total, 1))


def segmentation_report(truths: list[np.ndarray], predicted: list[np.ndarray], classes: list[str], void: int | None) -> dict:
    """mIoU and per-class IoU over the whole split, and the competition's mean Dice over (image, class) rows."""
    confusion = ConfusionMatrix(len(classes), void)
    for truth, pred in zip(truths, predicted):
        confusion.update(truth, pred)
    iou = confusion.iou()
    return {
        "miou": confusion.miou(), "dice": mean_mask_dice(truths, predicted, len(classes)),
        "pixel_accuracy": confusion.pixel_accuracy(),
        "iou": {c: (None if np.isnan(v) else float(v)) for c, v in zip(classes, iou)},
    }


def per_class_table(labels: np.ndarray, predicted: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support of every class (single-label), and the commonest confusion."""
    n = len(classes)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=range(n), zero_division=0)
    confused = []
    for k in range(n):
        wrong = predicted[(labels == k) & (predicted != k)]
        confused.append(f"{classes[np.bincount(wrong, minlength=n).argmax()]} ({np.bincount(wrong).max()})"
                        if len(wrong) else "")
    return pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "f1": f1,
                         "support": support, "most_often_taken_for": confused})


def worst_mistakes(labels: np.ndarray, proba: np.ndarray, limit: int) -> np.ndarray:
    """Rows of the mistakes (predicted class != true class), lowest probability of the true class first."""
    wrong = np.flatnonzero(proba.argmax(1) != labels)
    p_true = proba[wrong, labels[wrong]]
    return wrong[np.argsort(p_true, kind="stable")][:limit]


def expected_calibration_error(correct: np.ndarray, confidence: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by how many rows each holds."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return float(sum(abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if (which == b).any()))
