"""Blends of several runs' class probabilities, fitted on out-of-fold predictions.

Three kinds, each ``fit(members, labels, score)`` / ``predict_proba(members)`` where ``members`` is a list
of (n, classes) probability arrays, one per run, and ``score(labels, proba)`` is higher for better:

- ``mean``: equal weights; nothing to fit.
- ``hill``: Caruana et al.'s ensemble selection (2004): start from the best single run and add, with
  replacement, whichever run most improves the metric of the running mean; weights are the counts.
  It cannot do worse on the rows it is fitted on than the best run, and rarely overfits with few runs.
- ``stack``: a multinomial logistic regression (scikit-learn) on every run's probabilities, its
  regularisation chosen by an inner CV.

Multi-label runs are blended per class (``PerClassBlend``): each class's blend sees only the members'
probabilities of that class, as a two-class problem (absent, present), hill climbing scored by that
class's F1 at its best threshold, stacking as one logistic regression per class.

Members too large to hold at once (segmentation maps: megabytes per image) are ``Chunked``: read a chunk of
rows at a time, fitted by ``fit_chunked`` on a score that is a mean over rows, summed chunk by chunk (equal
to scoring every row at once). Every blend mixes its members one at a time (``weighted_sum``), never a stack
of them all.

A fitted blend must be scored on rows it was not fitted on: ``nested_proba`` predicts each fold with a
blend fitted on the other folds' out-of-fold rows (``nested_multilabel``: and, for a multi-label blend,
labels them with thresholds tuned on those other rows only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from kagglekit.core.registry import Registry
from kagglekit.learners.thresholds import ThresholdTuner

Score = Callable[[np.ndarray, np.ndarray], float]  # (labels, probabilities) -> higher is better
BLENDS: Registry = Registry("blend method")
HILL_STEPS = 40  # additions; with a handful of runs the weights settle long before


RowScore = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rows, their probabilities) -> each row's score(s)
Evaluate = Callable[[list[np.ndarray]], list[float]]  # weightings (member counts) -> the score of each one's mix


@dataclass
class Chunked:
    """Members' probabilities of ``rows``, read ``chunk`` rows at a time: ``read(rows)`` gives each of the
    ``count`` members' probabilities of those rows."""

    read: Callable[[np.ndarray], list[np.ndarray]]
    count: int
    rows: np.ndarray
    chunk: int

    def __iter__(self) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
        for start in range(0, len(self.rows), self.chunk):
            part = self.rows[start:start + self.chunk]
            yield part, self.read(part)

    def subset(self, keep: np.ndarray) -> "Chunked":
        return Chunked(self.read, self.count, self.rows[keep], self.chunk)


def weighted_sum(weights: np.ndarray, members: list[np.ndarray]) -> np.ndarray:
    """The sum of each member times its weight, in float64 as a product with a stack of them all was, but
    added one member at a time (a stack would hold every member twice; float16 saved maps, four times)."""
    total = np.zeros(np.shape(members[0]), np.float64)
    for weight, member in zip(weights, members):
        if weight:
            total += np.multiply(member, float(weight), dtype=np.float64)
    return total


class MeanBlend:
    def fit(self, members: list[np.ndarray], labels: np.ndarray, score: Score) -> "MeanBlend":
        return self.fit_weightings(len(members), lambda weightings: [
            score(labels, weighted_sum(w, members) / w.sum()) for w in weightings])

    def fit_chunked(self, members: Chunked, row_score: RowScore) -> "MeanBlend":
        """``fit`` on members read a chunk at a time, the score of a mix being the mean of ``row_score`` over
        every row (each chunk is read once per round of weightings)."""
        def evaluate(weightings: list[np.ndarray]) -> list[float]:
            scores = [[] for _ in weightings]
            for rows, chunk in members:
                for kept, w in zip(scores, weightings):
                    kept.append(row_score(rows, weighted_sum(w, chunk) / w.sum()))
            return [float(np.mean(np.concatenate(s))) for s in scores]

        return self.fit_weightings(members.count, evaluate)

    def fit_weightings(self, count: int, evaluate: Evaluate) -> "MeanBlend":
        self.weights_ = np.full(count, 1 / count)
        return self

    def predict_proba(self, members: list[np.ndarray]) -> np.ndarray:
        return weighted_sum(self.weights_, members)


class HillClimbBlend(MeanBlend):
    def fit_weightings(self, count: int, evaluate: Evaluate) -> "HillClimbBlend":
        step = list(np.eye(count))
        single = evaluate(step)
        counts = np.zeros(count)
        counts[int(np.argmax(single))] = 1
        best = max(single)
        for _ in range(HILL_STEPS):
            trials = evaluate([counts + e for e in step])
            j = int(np.argmax(trials))
            if trials[j] < best:  # ties are taken: a flatter mix generalises better than a lone run
                break
            counts[j] += 1
            best = trials[j]
        self.weights_ = counts / counts.sum()
        return self


class StackingBlend:
    def __init__(self, scoring: str = "accuracy"):
        self.scoring = scoring  # how the inner CV picks the regularisation (always given: 1.11 defaults to log loss)

    def fit(self, members: list[np.ndarray], labels: np.ndarray, score: Score) -> "StackingBlend":
        # probabilities, not log-probabilities, as features: on 540 seedlings images (bench/blend.py)
        # log-probabilities overfit (nested CV 0.69 against 0.79 for the mean); the regularisation is
        # chosen by an inner CV on the rows being fitted, so the nested score stays honest
        folds = max(2, min(3, int(np.bincount(labels).min())))
        self.model_ = logistic_regression_cv(folds, self.scoring).fit(np.concatenate(members, axis=1), labels)
        return self

    def predict_proba(self, members: list[np.ndarray]) -> np.ndarray:
        proba = np.zeros((len(members[0]), members[0].shape[1]))
        proba[:, self.model_.classes_] = self.model_.predict_proba(np.concatenate(members, axis=1))
        return proba  # a class absent from the fitted rows keeps probability 0


def logistic_regression_cv(folds: int, scoring: str):
    """An L2 logistic regression over four strengths, its strength picked by a ``folds``-fold CV on ``scoring``.
    scikit-learn 1.8 and 1.9 raise FutureWarnings unless ``l1_ratios`` ((0.0,): the L2 penalty None means)
    and ``use_legacy_attributes`` (only the shapes of ``C_``, ``scores_``...; kagglekit reads ``classes_``
    and ``predict_proba``) are given. Older releases lack both, and from 1.10 they have settled defaults, so
    each is passed only where its default is still ``"warn"``: the fit is the same either way."""
    from sklearn.linear_model import LogisticRegressionCV

    defaults = LogisticRegressionCV().get_params()
    transitional = {name: value for name, value in {"l1_ratios": (0.0,), "use_legacy_attributes": False}.items()
                    if isinstance(defaults.get(name), str) and defaults[name] == "warn"}
    return LogisticRegressionCV(Cs=[0.01, 0.1, 1.0, 10.0], cv=folds, max_iter=3000, scoring=scoring, **transitional)


BLENDS.register("mean", MeanBlend)
BLENDS.register("hill", HillClimbBlend)
BLENDS.register("stack", StackingBlend)


class PerClassBlend:
    """A multi-label blend: per class, a ``method`` blend of the members' probabilities of that class
    (two columns: absent, present) fitted on its 0/1 labels; a class all one way in the fitted rows
    gets the members' mean."""

    def __init__(self, method: str):
        self.method = method

    def fit(self, members: list[np.ndarray], labels: np.ndarray, score: Score | None = None) -> "PerClassBlend":
        self.blends_ = []
        for j in range(labels.shape[1]):
            y = labels[:, j].astype(np.int64)
            self.blends_.append(self.binary(y).fit(two_columns(members, j), y, class_f1))
        return self

    def binary(self, y: np.ndarray):
        """A fresh blend for one class's 0/1 labels ``y``."""
        if len(np.unique(y)) < 2:
            return MeanBlend()
        if self.method == "stack":
            # by log loss: on a rare class, accuracy picks the strongest regularisation (the prior for
            # every image), which squeezes the probabilities out of the thresholds' reach
            return StackingBlend(scoring="neg_log_loss")
        return BLENDS.get(self.method)()

    def predict_proba(self, members: list[np.ndarray]) -> np.ndarray:
        return np.stack([b.predict_proba(two_columns(members, j))[:, 1] for j, b in enumerate(self.blends_)], axis=1)

    @property
    def weights_(self) -> list | None:
        """Per class, the members' weights (None for stacking, which has coefficients instead)."""
        weights = [getattr(b, "weights_", None) for b in self.blends_]
        return None if any(w is None for w in weights) else [w.tolist() for w in weights]


def two_columns(members: list[np.ndarray], j: int) -> list[np.ndarray]:
    return [np.stack([1 - m[:, j], m[:, j]], axis=1) for m in members]


def class_f1(labels: np.ndarray, proba: np.ndarray) -> float:
    """One class's F1 at its best threshold (``proba``: absent, present columns)."""
    return float(ThresholdTuner(top1_fallback=False).fit(proba[:, 1:], labels[:, None]).oof_f1_[0])


def make_blend(method: str, multilabel: bool = False):
    BLENDS.get(method)  # a typo fails here
    return PerClassBlend(method) if multilabel else BLENDS.get(method)()


def nested_proba(method: str, members: list[np.ndarray], labels: np.ndarray, fold_of: np.ndarray,
                 score: Score) -> np.ndarray:
    """Out-of-fold blend probabilities: each fold's rows predicted by a blend fitted on the other folds'
    rows only (scoring these is an honest CV of the blend). Float32 members (segmentation maps, large)
    stay float32."""
    out = np.zeros(members[0].shape, dtype=np.result_type(members[0], np.float32))
    for fold in np.unique(fold_of):
        held = fold_of == fold
        blend = make_blend(method).fit([m[~held] for m in members], labels[~held], score)
        out[held] = blend.predict_proba([m[held] for m in members])
    return out


def nested_multilabel(method: str, members: list[np.ndarray], labels: np.ndarray, fold_of: np.ndarray,
                  tuner: ThresholdTuner) -> tuple[np.ndarray, np.ndarray]:
    """A multi-label blend out of fold: (probabilities, 0/1 labels) of each fold's rows from a per-class
    blend fitted on the other folds' rows, at thresholds tuned on its predictions of those rows: the
    scored fold is seen by neither."""
    proba, out = np.zeros_like(members[0], dtype=np.float64), np.zeros(labels.shape, dtype=np.int64)
    for fold in np.unique(fold_of):
        held = fold_of == fold
        blend = make_blend(method, multilabel=True).fit([m[~held] for m in members], labels[~held])
        fitted = tuner.clone().fit(blend.predict_proba([m[~held] for m in members]), labels[~held])
        proba[held] = blend.predict_proba([m[held] for m in members])
        out[held] = fitted.predict(proba[held])
    return proba, out
