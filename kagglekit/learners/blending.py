"""Blends of several runs' class probabilities, fitted on out-of-fold predictions.

Three kinds, each ``fit(members, labels)`` / ``predict_proba(members)`` where ``members`` is a list of
(n, classes) probability arrays, one per run:

- ``mean``: equal weights; nothing to fit.
- ``hill``: Caruana et al.'s ensemble selection (2004): start from the best single run and add, with
  replacement, whichever run most improves the metric of the running mean; weights are the counts.
  It cannot do worse on the rows it is fitted on than the best run, and rarely overfits with few runs.
- ``stack``: a multinomial logistic regression (scikit-learn) on every run's probabilities, its
  regularisation chosen by an inner CV.

A fitted blend must be scored on rows it was not fitted on: ``nested_proba`` predicts each fold with a
blend fitted on the other folds' out-of-fold rows.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kagglekit.core.registry import Registry

Score = Callable[[np.ndarray, np.ndarray], float]  # (labels, predicted class indices) -> higher is better
BLENDS: Registry = Registry("blend method")
HILL_STEPS = 40  # additions; with a handful of runs the weights settle long before


class MeanBlend:
    def fit(self, members: list[np.ndarray], labels: np.ndarray, score: Score) -> "MeanBlend":
        self.weights_ = np.full(len(members), 1 / len(members))
        return self

    def predict_proba(self, members: list[np.ndarray]) -> np.ndarray:
        return np.tensordot(self.weights_, np.stack(members), axes=1)


class HillClimbBlend(MeanBlend):
    def fit(self, members: list[np.ndarray], labels: np.ndarray, score: Score) -> "HillClimbBlend":
        stacked = np.stack(members)
        single = [score(labels, m.argmax(1)) for m in members]
        counts = np.zeros(len(members))
        counts[int(np.argmax(single))] = 1
        best = max(single)
        for _ in range(HILL_STEPS):
            trials = [score(labels, np.tensordot(counts + np.eye(len(members))[j], stacked, axes=1).argmax(1))
                      for j in range(len(members))]
            j = int(np.argmax(trials))
            if trials[j] < best:  # ties are taken: a flatter mix generalises better than a lone run
                break
            counts[j] += 1
            best = trials[j]
        self.weights_ = counts / counts.sum()
        return self


class StackingBlend:
    def fit(self, members: list[np.ndarray], labels: np.ndarray, score: Score) -> "StackingBlend":
        # probabilities, not log-probabilities, as features: on 540 seedlings images (bench/blend.py)
        # log-probabilities overfit (nested CV 0.69 against 0.79 for the mean); the regularisation is
        # chosen by an inner CV on the rows being fitted, so the nested score stays honest
        from sklearn.linear_model import LogisticRegressionCV

        folds = max(2, min(3, int(np.bincount(labels).min())))
        self.model_ = LogisticRegressionCV(Cs=[0.01, 0.1, 1.0, 10.0], cv=folds, max_iter=3000).fit(
            np.concatenate(members, axis=1), labels)
        return self

    def predict_proba(self, members: list[np.ndarray]) -> np.ndarray:
        proba = np.zeros((len(members[0]), members[0].shape[1]))
        proba[:, self.model_.classes_] = self.model_.predict_proba(np.concatenate(members, axis=1))
        return proba  # a class absent from the fitted rows keeps probability 0


BLENDS.register("mean", MeanBlend)
BLENDS.register("hill", HillClimbBlend)
BLENDS.register("stack", StackingBlend)


def nested_proba(method: str, members: list[np.ndarray], labels: np.ndarray, fold_of: np.ndarray,
                 score: Score) -> np.ndarray:
    """Out-of-fold blend probabilities: each fold's rows predicted by a blend fitted on the other folds'
    rows only (scoring these is an honest CV of the blend)."""
    out = np.zeros_like(members[0], dtype=np.float64)
    for fold in np.unique(fold_of):
        held = fold_of == fold
        blend = BLENDS.get(method)().fit([m[~held] for m in members], labels[~held], score)
        out[held] = blend.predict_proba([m[held] for m in members])
    return out
