"""Competition metrics by name. Each takes (y_true, y_pred) arrays, higher is better."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from kagglekit.core.registry import Registry

METRICS: Registry = Registry("metric")


@METRICS.decorator("micro_f1")
def micro_f1(y_true, y_pred) -> float:
    return float(f1_score(np.asarray(y_true), np.asarray(y_pred), average="micro"))


@METRICS.decorator("macro_f1")
def macro_f1(y_true, y_pred) -> float:
    return float(f1_score(np.asarray(y_true), np.asarray(y_pred), average="macro"))


@METRICS.decorator("accuracy")
def accuracy(y_true, y_pred) -> float:
    return float(accuracy_score(np.asarray(y_true), np.asarray(y_pred)))


@METRICS.decorator("dice")
def mean_rle_dice(y_true, y_pred) -> float:
    """Mean Dice over rows of run-length-encoded masks (empty vs empty counts as 1)."""
    from kagglekit.submission import rle

    return float(np.mean([rle.dice(t, p) for t, p in zip(y_true, y_pred)]))
