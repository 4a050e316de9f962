"""A leak detector for everything fitted on out-of-fold predictions: thresholds, blends, stacking.

The members here are random probabilities and the labels are drawn independently of them (the
"permuted labels" of a leak test): nothing can be learnt, so an honest nested CV scores at chance,
whatever it fits. The same fit scored on the rows it was fitted on (the deliberately non-nested
version) must score clearly above chance, or the test could not see a leak. Margins are 3 standard
errors of the score at chance, from the number of rows (accuracy) or of classes (F1). No training.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from kagglekit.learners.blending import make_blend, nested_multilabel, nested_proba
from kagglekit.learners.thresholds import ThresholdTuner
from kagglekit.pipelines.multilabel_classification import nested_labels

FOLDS = 3


def accuracy(labels: np.ndarray, proba: np.ndarray) -> float:
    """What the single-label blends are scored by (micro-F1 of the argmax is accuracy)."""
    return float((proba.argmax(1) == labels).mean())


def blind_single_label(seed: int, rows: int, classes: int, members: int):
    """(members' probabilities, labels independent of them, fold of each row)."""
    rng = np.random.default_rng(seed)
    proba = [rng.dirichlet(np.ones(classes), rows) for _ in range(members)]
    return proba, rng.integers(classes, size=rows), np.arange(rows) % FOLDS


def blind_multilabel(seed: int, rows: int, classes: int, members: int):
    """(members' probabilities, 0/1 labels independent of them at prevalences 5-30%, fold of each row)."""
    rng = np.random.default_rng(seed)
    prevalence = rng.uniform(0.05, 0.3, classes)
    labels = (rng.random((rows, classes)) < prevalence).astype(np.int64)
    return [rng.random((rows, classes)) for _ in range(members)], labels, np.arange(rows) % FOLDS


def f1_over_blind(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per class: F1 minus 2p/(1+p), the most a label-blind rule can expect (every row positive; p the
    class's prevalence). Positive on average only if the predictions know something about the labels."""
    labels, predicted = labels.astype(bool), predicted.astype(bool)
    tp = (labels & predicted).sum(axis=0)
    f1 = 2 * tp / np.maximum(labels.sum(axis=0) + predicted.sum(axis=0), 1)
    p = labels.mean(axis=0)
    return f1 - 2 * p / (1 + p)


def mean_and_se(values: list[np.ndarray]) -> tuple[float, float]:
    """Mean of the per-class values pooled over seeds, and its standard error (classes are independent)."""
    pooled = np.concatenate(values)
    return float(pooled.mean()), float(pooled.std(ddof=1) / np.sqrt(len(pooled)))


@pytest.mark.parametrize("method, seeds, rows, classes, members", [
    ("mean", range(4), 120, 4, 40),
    ("hill", range(6), 120, 4, 40),
    # LogisticRegressionCV is the costly one: one seed, enough members (48 features) that the
    # regularisation its inner CV picks still lets it fit noise on the rows it saw (measured 0.42 vs 0.25)
    ("stack", [0], 180, 4, 12),
])
def test_a_nested_blend_of_label_blind_members_scores_at_chance(method, seeds, rows, classes, members):
    nested, refit = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn's notices about its future defaults
        for seed in seeds:
            proba, labels, fold_of = blind_single_label(seed, rows, classes, members)
            nested.append(accuracy(labels, nested_proba(method, proba, labels, fold_of, accuracy)))
            refit.append(accuracy(labels, make_blend(method).fit(proba, labels, accuracy).predict_proba(proba)))
    chance = 1 / classes
    margin = 3 * np.sqrt(chance * (1 - chance) / (len(seeds) * rows))
    assert np.mean(nested) < chance + margin, (nested, chance, margin)
    if method == "mean":  # nothing fitted, nothing to leak: scored on its own rows it is the same blend
        assert refit == nested
    else:
        assert np.mean(refit) > chance + margin, (refit, chance, margin)  # the detector sees a real leak


def test_nested_thresholds_of_label_blind_probabilities_score_at_chance():
    """Per-class F1 thresholds tuned on the other folds (``nested_labels``, a multi-label run's CV) do no
    better than labelling every row; tuned on the scored rows themselves they do."""
    nested, tuned_on_itself = [], []
    for seed in range(2):
        (proba,), labels, fold_of = blind_multilabel(seed, 150, 30, members=1)
        folds = [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(FOLDS)]
        nested.append(f1_over_blind(labels, nested_labels(proba, labels, folds, ThresholdTuner(top1_fallback=False))))
        tuner = ThresholdTuner(top1_fallback=False).fit(proba, labels)
        tuned_on_itself.append(f1_over_blind(labels, tuner.predict(proba)))
    mean, se = mean_and_se(nested)
    assert mean < 3 * se, (mean, se)
    mean, se = mean_and_se(tuned_on_itself)
    assert mean > 3 * se, (mean, se)


@pytest.mark.parametrize("method", ["mean", "hill"])  # stacking: a LogisticRegressionCV per class, too slow here
def test_a_nested_multilabel_blend_of_label_blind_members_scores_at_chance(method):
    """``nested_multilabel`` (per-class blend and its thresholds, both fitted without the scored fold)
    does no better than labelling every row; the same blend and thresholds fitted on all rows do."""
    nested, refit = [], []
    for seed in range(2):
        proba, labels, fold_of = blind_multilabel(seed, 150, 30, members=8)
        nested.append(f1_over_blind(labels, nested_multilabel(method, proba, labels, fold_of, ThresholdTuner(top1_fallback=False))[1]))
        blended = make_blend(method, multilabel=True).fit(proba, labels).predict_proba(proba)
        refit.append(f1_over_blind(labels, ThresholdTuner(top1_fallback=False).fit(blended, labels).predict(blended)))
    mean, se = mean_and_se(nested)
    assert mean < 3 * se, (mean, se)
    mean, se = mean_and_se(refit)
    assert mean > 3 * se, (mean, se)
