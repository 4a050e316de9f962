"""Per-class thresholds never invent a class: absent classes are never predicted, ties go to fewer false
positives, and the nested per-fold tuners behave the same (the VOC run that predicted 19.9 labels per image)."""

import json

import numpy as np
import pytest
from sklearn.metrics import fbeta_score

from kagglekit.learners.thresholds import NEVER, ThresholdTuner
from kagglekit.pipelines.multilabel_classification import nested_labels


def absent_and_rare(seed: int = 0, n: int = 200):
    """Probabilities of 4 classes: 0 and 1 common and informative, 2 rare (3 positives), 3 never present."""
    rng = np.random.default_rng(seed)
    y = np.zeros((n, 4), dtype=int)
    y[:, 0] = rng.random(n) < 0.5
    y[:, 1] = rng.random(n) < 0.3
    y[rng.choice(n, 3, replace=False), 2] = 1
    proba = np.clip(y * 0.5 + rng.random((n, 4)) * 0.45, 0, 1)
    return proba, y


def test_a_class_without_positives_is_never_predicted_not_even_by_the_fallback():
    proba, y = absent_and_rare()
    tuner = ThresholdTuner().fit(proba, y)
    assert tuner.thresholds_[3] == NEVER and np.isfinite(tuner.thresholds_[:3]).all()
    everything_likely = np.full((5, 4), 0.01)
    everything_likely[:, 3] = 0.99  # the absent class is each image's likeliest
    labels = tuner.predict(everything_likely)
    assert labels[:, 3].sum() == 0 and (labels.sum(1) == 1).all()  # the fallback picks a class it may predict
    assert tuner.predict(proba)[:, 3].sum() == 0


def test_a_rare_class_keeps_a_threshold_that_finds_it():
    proba, y = absent_and_rare()
    tuner = ThresholdTuner(top1_fallback=False).fit(proba, y)
    predicted = tuner.predict(proba)
    assert predicted[:, 2].sum() >= 3 and (predicted[:, 2] & y[:, 2]).sum() == 3
    assert predicted[:, 2].sum() < len(y) / 4  # found among few false positives, not by labelling every image


def test_ties_go_to_the_threshold_with_fewer_false_positives():
    # the positive sits at 0.9, the negatives at 0.3: every threshold in (0.3, 0.9] gives F1 1
    proba = np.array([[0.9], [0.3], [0.3], [0.3]])
    y = np.array([[1], [0], [0], [0]])
    tuner = ThresholdTuner(top1_fallback=False).fit(proba, y)
    assert tuner.oof_f1_[0] == 1.0 and tuner.thresholds_[0] == 0.9  # the highest of the tied thresholds
    # no threshold helps (F1 0 everywhere: the positive scores lowest): the fewest false positives, not the lowest cut
    tuner = ThresholdTuner(top1_fallback=False).fit(np.array([[0.01], [0.5], [0.6]]), np.array([[1], [0], [0]]))
    assert tuner.thresholds_[0] == tuner.grid[-1]
    assert tuner.predict(np.array([[0.5], [0.6]])).sum() == 0


def test_saved_thresholds_are_json_and_load_to_the_same_predictions():
    proba, y = absent_and_rare(1)
    tuner = ThresholdTuner().fit(proba, y)
    saved = json.loads(json.dumps(tuner.saved_thresholds(), allow_nan=False))  # strict JSON: no Infinity
    assert saved[3] is None and all(isinstance(t, float) for t in saved[:3])
    again = ThresholdTuner.from_thresholds(saved)
    np.testing.assert_array_equal(again.predict(proba), tuner.predict(proba))


def test_nested_tuners_never_predict_a_class_absent_from_their_training_folds():
    proba, y = absent_and_rare(2, n=120)
    y[:, 2] = 0
    y[:40, 2] = 1  # class 2 only in the first fold's rows
    proba[:, 2] = 0.95  # and every image looks like it
    folds = [(np.arange(40, 120), np.arange(40)), (np.r_[0:40, 80:120], np.arange(40, 80)),
             (np.arange(80), np.arange(80, 120))]
    labels = nested_labels(proba, y, folds, ThresholdTuner(top1_fallback=True))
    assert labels[:40, 2].sum() == 0  # fold 0's tuner never saw class 2: it does not predict it
    assert labels[40:, 2].sum() == 80  # the other folds' tuners saw it (in fold 0's rows) and keep it
    assert labels[:, 3].sum() == 0


def correlated_labels(seed: int = 0, n: int = 400, c: int = 6):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < np.linspace(0.05, 0.6, c)).astype(int)
    y[y.sum(1) == 0, 0] = 1  # every image shows something, as in VOC
    return np.clip(y * 0.35 + rng.random((n, c)) * 0.6, 0, 1), y


@pytest.mark.parametrize("average,beta", [("samples", 1.0), ("samples", 2.0), ("micro", 1.0)])
@pytest.mark.parametrize("fallback", [True, False])
def test_thresholds_for_an_averaged_score_beat_the_per_class_ones_at_it(average, beta, fallback):
    proba, y = correlated_labels()
    scored = lambda labels: fbeta_score(y, labels, beta=beta, average=average, zero_division=1.0)  # noqa: E731
    per_class = ThresholdTuner(fallback).fit(proba, y)
    tuned = ThresholdTuner(fallback, average, beta).fit(proba, y)
    assert scored(tuned.predict(proba)) >= scored(per_class.predict(proba))
    # a local optimum of the real score (scikit-learn's): no single threshold moved anywhere on the grid helps,
    # so the incremental counts the ascent uses agree with the labels predict() gives
    best = scored(tuned.predict(proba))
    for j in range(y.shape[1]):
        for t in tuned.grid[::7]:
            moved = ThresholdTuner.from_thresholds(tuned.saved_thresholds(), fallback)
            moved.thresholds_[j] = t
            assert scored(moved.predict(proba)) <= best + 1e-9


def test_the_metric_picks_the_average_and_an_absent_class_stays_never():
    assert (ThresholdTuner.for_metric("mean_f2").average, ThresholdTuner.for_metric("mean_f2").beta) == ("samples", 2)
    assert ThresholdTuner.for_metric("dice").average == "samples"
    assert ThresholdTuner.for_metric("accuracy").average == "macro"
    proba, y = absent_and_rare()
    tuned = ThresholdTuner(True, "samples").fit(proba, y)
    assert tuned.thresholds_[3] == NEVER and tuned.predict(proba)[:, 3].sum() == 0
