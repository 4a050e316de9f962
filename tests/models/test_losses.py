"""Class weights by behaviour: single-label "balanced" weights (scikit-learn's n / (k x count)) make the
head's training loss the mean over classes, so a rare class's mistakes cost more; multi-label
positive weights are sqrt(negatives / positives) and stay finite for a class with no positive."""

from __future__ import annotations

import numpy as np
import pytest

from kagglekit.core.config import TrainConfig
from kagglekit.learners.head import HeadClassifier
from kagglekit.models.losses import MultiLabelLoss, balanced_class_weights, positive_weights
from kagglekit.pipelines import hyperparameters

#: six of class 0, three of class 1, one of class 2, none of class 3 (a fourth output nobody has)
LABELS = np.array([0] * 6 + [1] * 3 + [2])
CLASSES = 4


#: constant predictors: one that favours the common class (what an unweighted head drifts to), and one
#: that gives the common class 0 and the rare class 2 the same wrong 0.1
FAVOURS_COMMON, FAVOURS_ONE = np.array([0.7, 0.1, 0.1, 0.1]), np.array([0.1, 0.7, 0.1, 0.1])


class ConstantHead(HeadClassifier):
    """The run's softmax head, fed all-zero features: whatever the image it predicts softmax(bias), and
    the bias starts at log(prior), so its first training loss is that of a known constant predictor."""

    def __init__(self, prior: np.ndarray, *args, **params):
        super().__init__(*args, **params)
        self.prior = prior

    def build(self):
        model = super().build()
        model.get_layer("classes").bias.assign(np.log(self.prior).astype(np.float32))
        return model


def first_loss(prior: np.ndarray, labels: np.ndarray, class_weight: dict | None, workdir) -> float:
    """The loss Keras reports for the head's first step (one batch holds every example, so it is the
    loss of the predictor before any update), trained the way the pipelines train it."""
    config = TrainConfig(head_epochs=1, batch_size=64)
    head = ConstantHead(prior, 8, CLASSES, workdir, seed=0, **hyperparameters.head(config))
    x = np.zeros((len(labels), 8), dtype=np.float32)
    head.fit(x, labels, x, labels, class_weight=class_weight)
    return head.history["loss"][0]


def cross_entropy(prior: np.ndarray, label: int) -> float:
    """Hand-computed label-smoothed cross-entropy of the constant ``prior`` for an example of ``label``."""
    smoothing = TrainConfig().label_smoothing
    target = np.full(CLASSES, smoothing / CLASSES) + (1 - smoothing) * np.eye(CLASSES)[label]
    return float(-(target * np.log(prior)).sum())


def test_balanced_weights_are_n_over_k_times_count_of_the_classes_present():
    weights = balanced_class_weights(LABELS)
    assert weights == pytest.approx({0: 10 / (3 * 6), 1: 10 / (3 * 3), 2: 10 / (3 * 1)})  # class 3 absent: no key
    assert sum(weights[y] for y in LABELS) == pytest.approx(len(LABELS))  # the weights keep the loss's scale


def test_balanced_weights_make_the_head_loss_a_mean_over_classes(tmp_path):
    """Unweighted, the constant predictor's loss is the mean over examples; weighted, the weighted mean,
    which with balanced weights is the plain mean of the three classes' losses."""
    per_example = np.array([cross_entropy(FAVOURS_COMMON, y) for y in LABELS])
    weights = balanced_class_weights(LABELS)
    w = np.array([weights[y] for y in LABELS])
    weighted = first_loss(FAVOURS_COMMON, LABELS, weights, tmp_path / "weighted")
    assert weighted == pytest.approx((w * per_example).sum() / w.sum(), rel=1e-5)
    assert weighted == pytest.approx(np.mean([cross_entropy(FAVOURS_COMMON, c) for c in (0, 1, 2)]), rel=1e-5)
    unweighted = first_loss(FAVOURS_COMMON, LABELS, None, tmp_path / "unweighted")
    assert unweighted == pytest.approx(per_example.mean(), rel=1e-5)
    assert weighted > unweighted + 0.3  # favouring the common class no longer pays: the rare classes weigh as much


def test_a_rare_class_mistake_costs_more_than_a_common_one(tmp_path):
    """Classes 0 (common) and 2 (rare) get the same 0.1 from the predictor, both wrong (it says 1): alone,
    each example's weighted loss is its weight times the same cross-entropy, so the rare one costs
    count(0) / count(2) = 6 times the common one."""
    weights = balanced_class_weights(LABELS)
    common = first_loss(FAVOURS_ONE, np.array([0]), weights, tmp_path / "common")
    rare = first_loss(FAVOURS_ONE, np.array([2]), weights, tmp_path / "rare")
    assert cross_entropy(FAVOURS_ONE, 0) == pytest.approx(cross_entropy(FAVOURS_ONE, 2))
    assert common == pytest.approx(weights[0] * cross_entropy(FAVOURS_ONE, 0), rel=1e-5)
    assert rare == pytest.approx(6 * common, rel=1e-5)


def test_multilabel_positive_weights_by_hand_and_finite_for_a_class_without_positives():
    labels = np.zeros((10, 4), dtype=np.int64)
    labels[:1, 0] = 1  # 1 positive, 9 negatives
    labels[:5, 1] = 1  # 5 and 5
    labels[:, 3] = 1  # every image: no negative; class 2 has no positive
    weights = positive_weights(labels)
    np.testing.assert_allclose(weights, [3.0, 1.0, np.sqrt(10 / 1), np.sqrt(1 / 10)], rtol=1e-6)  # counts floored at 1
    assert np.isfinite(weights).all() and weights.dtype == np.float32

    # and the loss they weigh stays finite and as hand-computed on those labels
    proba = np.full((10, 4), 0.25, dtype=np.float32)
    loss = np.asarray(MultiLabelLoss(pos_weight=weights)(labels.astype(np.float32), proba))
    per_cell = np.where(labels == 1, -np.log(0.25) * weights, -np.log(0.75))
    assert np.isfinite(loss) and loss == pytest.approx(per_cell.mean(), rel=1e-5)
