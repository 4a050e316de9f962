"""The best constant submission's CV: the bar a run must clear before its own CV means anything.

0.45 Dice is good on one competition and worse than answering the same thing for every image on another
(PASCAL VOC: the frequent labels and empty masks score 0.45). Each function here finds the best constant
answer of one kind of task by a fixed rule, scores it with the run's own metric on the run's own
out-of-fold rows and folds, and returns it as a ``Baseline`` whose ``score`` (the mean over folds, as a
run's CV) ``record`` compares with the run's. The constant is picked with hindsight on the rows it is
scored on: the best a constant could do there, so the bar is, if anything, high.

``metric(truth, predicted)`` scores the rows of one fold (0/1 label rows, class indices or label maps, as
the function says), higher is better like every metric of ``evaluation.metrics``; ``folds`` are the
index arrays of the scored rows, fold by fold.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning

from kagglekit.data.masks import resize_labels
from kagglekit.evaluation.segmentation import mean_mask_dice

log = logging.getLogger(__name__)
#: (height, width) at which the per-pixel majority mask is counted, then resized to each image.
GRID = (96, 128)


@dataclass(frozen=True)
class Baseline:
    """A constant answer (``name`` says which) and its score on each of the run's folds."""

    name: str
    fold_scores: list[float]
    parts: dict[str, "Baseline"] = field(default_factory=dict)  # kinds of row scored apart (PASCAL VOC)

    @property
    def score(self) -> float:
        return float(np.mean(self.fold_scores))


def best_constant(candidates: list[tuple[str, object]], cv: Callable[[object], list[float]]) -> Baseline:
    """The candidate (name, constant) with the best mean of ``cv(constant)``; the first of any tie."""
    with warnings.catch_warnings():  # a constant leaves every other class unpredicted: F1's 0/0, scored 0
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        scored = [Baseline(name, [float(s) for s in cv(constant)]) for name, constant in candidates]
    return max(scored, key=lambda b: b.score)  # max keeps the first of equals


def single_label(labels: np.ndarray, folds: list[np.ndarray], classes: list[str], metric) -> Baseline:
    """One class for every image: each class is tried, the most frequent first (so it wins ties); for
    accuracy and micro-F1 the majority class wins. ``metric`` scores class indices."""
    labels = np.asarray(labels)
    counts = np.bincount(labels[np.concatenate(folds)], minlength=len(classes))
    return best_constant([(f"{classes[k]} for every image", k) for k in np.argsort(-counts, kind="stable")],
                         lambda k: [metric(labels[va], np.full(len(va), k)) for va in folds])


def multi_label(labels: np.ndarray, folds: list[np.ndarray], classes: list[str], metric) -> Baseline:
    """One label set for every image, the better of two: the most frequent label set, and the set grown
    greedily from none (each step adds the class that raises the CV most, until none raises it).
    ``metric`` scores 0/1 label rows."""
    labels = np.asarray(labels)

    def cv(row: np.ndarray) -> list[float]:
        return [metric(labels[va], np.tile(row, (len(va), 1))) for va in folds]

    sets, counts = np.unique(labels[np.concatenate(folds)], axis=0, return_counts=True)
    grown, score = np.zeros(len(classes), dtype=labels.dtype), np.mean(cv(np.zeros(len(classes), labels.dtype)))
    while not grown.all():
        trials = {k: np.mean(cv(np.where(np.arange(len(classes)) == k, 1, grown))) for k in np.flatnonzero(grown == 0)}
        k = max(trials, key=trials.get)
        if trials[k] <= score:
            break
        grown[k], score = 1, trials[k]

    def named(row: np.ndarray, how: str) -> str:
        chosen = [c for c, on in zip(classes, row) if on]
        return f"{how} label set {{{', '.join(chosen)}}} for every image" if chosen else "no label for any image"

    return best_constant([(named(sets[counts.argmax()], "the most frequent"), sets[counts.argmax()]),
                          (named(grown, "the greedy"), grown)], cv)


def segmentation(truths: list[np.ndarray], folds: list[np.ndarray], classes: list[str], metric,
                 empty: int) -> Baseline:
    """One label map for every image (resized to its size), the best of: empty masks (every pixel
    ``empty``: no class's mask, e.g. the background), the majority class on every pixel, and the
    per-pixel majority mask (at each point of a ``GRID`` the class most often there; void and other
    values outside ``classes`` are not counted). ``metric`` scores lists of label maps."""
    counts = np.zeros((len(classes), *GRID), dtype=np.int64)
    for i in np.concatenate(folds):
        small = resize_labels(truths[i], GRID)
        counts += small[None] == np.arange(len(classes), dtype=small.dtype)[:, None, None]
    area = counts.sum((1, 2))
    majority = int(area.argmax())
    per_pixel = np.where(counts.any(0), counts.argmax(0), majority).astype(np.uint8)
    shown = [classes[k] for k in np.argsort(-np.bincount(per_pixel.ravel(), minlength=len(classes)))[:3]
             if (per_pixel == k).any()]
    candidates = [("empty masks", np.full(GRID, empty, np.uint8))]
    if majority != empty:
        candidates.append((f"{classes[majority]} on every pixel", np.full(GRID, majority, np.uint8)))
    candidates.append((f"the per-pixel majority mask (mostly {', '.join(shown)})", per_pixel))
    return best_constant(candidates, lambda template: [
        metric([truths[i] for i in va], [resize_labels(template, truths[i].shape) for i in va]) for va in folds])


def per_class_masks(truths: list[np.ndarray], folds: list[np.ndarray], classes: list[str]) -> Baseline:
    """``segmentation`` for a submission of a mask row per image and class, scored by Kaggle's mean Dice
    over those rows (segmentation-folder competitions); an empty mask is no pixel of any class."""
    return segmentation(truths, folds, classes, lambda t, p: mean_mask_dice(t, p, len(classes)), empty=len(classes))


def joint(parts: dict[str, Baseline]) -> Baseline:
    """Constants for kinds of row scored together, as many rows of each per fold (PASCAL VOC: a label row
    and a mask row per image): each fold's score is the mean of the parts'. Each part's constant is
    chosen alone, which is the best joint one, as every row's score depends on its own part only."""
    return Baseline("; ".join(b.name for b in parts.values()),
                    [float(np.mean(s)) for s in zip(*(b.fold_scores for b in parts.values()))], dict(parts))


def record(constant: Baseline, cv: float, metric: str, part_scores: dict[str, float] | None = None) -> dict:
    """``metrics.json``'s ``baseline``: the constant, its CV and fold scores, and whether the run's ``cv``
    beats it (and, with ``part_scores``, the run's score of each of ``constant.parts``). A run that does not
    says so in a warning: a model no better than a constant answer has learnt nothing worth submitting."""
    beaten = cv > constant.score
    if not beaten:
        log.warning("the run's CV %s %.4f does not beat the best constant answer (%s): %.4f on the same rows; "
                    "what it learnt is worth nothing yet", metric, cv, constant.name, constant.score)
    parts = {name: record(constant.parts[name], score, f"{metric} of its {name}")
             for name, score in (part_scores or {}).items()}
    return {"name": constant.name, "score": constant.score, "fold_scores": constant.fold_scores, "beaten": beaten,
            **({"parts": parts} if parts else {})}
