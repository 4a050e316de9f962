"""The best constant answer of each kind of task, on arrays small enough to score by hand, and the warning
a run gets when it does not beat it."""

import logging

import numpy as np
import pytest

from kagglekit.evaluation import baseline
from kagglekit.evaluation.metrics import accuracy, macro_f1
from kagglekit.evaluation.reports import label_dice

TWO_FOLDS = [np.arange(3), np.arange(3, 6)]


def test_single_label_constant_is_the_class_with_the_best_cv():
    """Accuracy of "a" for every image: 3/3 in fold 0, 0/3 in fold 1; "b": 0 and 2/3; "c": 0 and 1/3."""
    labels = np.array([0, 0, 0, 1, 2, 1])
    found = baseline.single_label(labels, TWO_FOLDS, ["a", "b", "c"], accuracy)
    assert found == baseline.Baseline("a for every image", [1.0, 0.0]) and found.score == 0.5
    # macro F1 of one fold [0, 0, 1]: "a" scores F1 4/5 on a and 0 on b (0.4); "b" 0 and 1/2 (0.25)
    assert baseline.single_label(np.array([0, 0, 1]), [np.arange(3)], ["a", "b"], macro_f1).fold_scores == \
        pytest.approx([0.4])


def test_single_label_ties_go_to_the_most_frequent_class():
    """Folds a a b | b b b a c c: "a" (3 images) scores 2/3 and 1/6, "b" (4 images) 1/3 and 1/2: both 5/12 over
    the folds, and the more frequent "b" wins the tie."""
    labels = np.array([0, 0, 1, 1, 1, 1, 0, 2, 2])
    found = baseline.single_label(labels, [np.arange(3), np.arange(3, 9)], ["a", "b", "c"], accuracy)
    assert found.name == "b for every image" and found.fold_scores == pytest.approx([1 / 3, 1 / 2])


def test_multi_label_constant_grows_the_label_set_while_the_cv_rises():
    """Rows a, ab, b | ab, a, c with per-row Dice. Greedy: {a} 5/9 (b 7/18, c 1/6), then {a, b} 2/3 ({a, c} 1/2),
    and {a, b, c} 0.6 stops it. The most frequent set ({a} before {a, b} in a tie) scores 5/9 only."""
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 1, 0], [1, 0, 0], [0, 0, 1]])
    found = baseline.multi_label(labels, TWO_FOLDS, ["a", "b", "c"], lambda t, p: float(label_dice(t, p).mean()))
    assert found.name == "the greedy label set {a, b} for every image"
    assert found.fold_scores == pytest.approx([7 / 9, 5 / 9])


def test_multi_label_constant_is_the_most_frequent_set_where_greedy_is_no_better():
    """Every row {a}: the most frequent set scores 1 and greedy finds the same set: the first candidate is kept.
    With no label anywhere (and a metric scoring empty vs empty 1) the best constant is no label at all."""
    dice = lambda t, p: float(label_dice(t, p).mean())  # noqa: E731
    found = baseline.multi_label(np.array([[1, 0]] * 4), [np.arange(2), np.arange(2, 4)], ["a", "b"], dice)
    assert found == baseline.Baseline("the most frequent label set {a} for every image", [1.0, 1.0])
    nothing = baseline.multi_label(np.zeros((2, 2), int), [np.arange(2)], ["a", "b"], dice)
    assert nothing == baseline.Baseline("no label for any image", [1.0])


def test_mask_constant_is_the_best_of_empty_majority_and_per_pixel_majority():
    """Three 2x2 maps (classes bg, x, y; 255 void), scored as a row per image and class (mean Dice):
    empty masks 1/3; bg everywhere (5/9 + 2/15 + 20/21) / 3; the per-pixel majority [[bg, x], [bg, x]]
    (x wins the bottom-right tie with y: the first class) (1 + 4/9 + 3/5) / 3 = 92/135."""
    truths = [np.array(m, np.uint8) for m in ([[0, 1], [0, 1]], [[0, 1], [2, 2]], [[0, 0], [0, 255]])]
    found = baseline.per_class_masks(truths, [np.arange(3)], ["bg", "x", "y"])
    assert found.name == "the per-pixel majority mask (mostly bg, x)"
    assert found.fold_scores == pytest.approx([92 / 135])
    # the same images, only the all-bg one scored: bg everywhere (2 of 3 classes absent) beats the per-pixel mask
    one = baseline.per_class_masks(truths, [np.array([2])], ["bg", "x", "y"])
    assert one.name == "bg on every pixel" and one.fold_scores == pytest.approx([(6 / 7 + 2) / 3])


def test_mask_constant_scores_empty_masks_at_each_image_size():
    """One class-x pixel in three maps of three sizes, every other pixel void: empty masks miss only that row
    (2/3, then 1 and 1: 8/9); x everywhere (the majority, and the per-pixel majority) scores x's row 2/5 in the
    first and 0 in the others ((0.8 + 2/3 + 2/3) / 3). Maps of other sizes are resized, not refused."""
    truths = [np.full((2, 2), 255, np.uint8), np.full((4, 2), 255, np.uint8), np.full((1, 3), 255, np.uint8)]
    truths[0][0, 0] = 1
    found = baseline.per_class_masks(truths, [np.arange(3)], ["bg", "x", "y"])
    assert found == baseline.Baseline("empty masks", [pytest.approx(8 / 9)])
    assert baseline.per_class_masks(truths, [np.array([0])], ["bg", "x", "y"]) == \
        baseline.Baseline("x on every pixel", [pytest.approx(0.8)])


def test_joint_constant_averages_its_parts_fold_by_fold():
    labels, masks = baseline.Baseline("L", [1.0, 0.5]), baseline.Baseline("M", [0.0, 0.25])
    found = baseline.joint({"label rows": labels, "mask rows": masks})
    assert found.name == "L; M" and found.fold_scores == [0.5, 0.375] and found.parts["mask rows"] is masks


def test_a_run_no_better_than_the_constant_is_warned(caplog):
    """A CV equal to the constant's does not beat it; a part that loses is named even when the whole wins."""
    constant = baseline.Baseline("a for every image", [0.5, 0.7])
    with caplog.at_level(logging.WARNING, logger="kagglekit.evaluation.baseline"):
        recorded = baseline.record(constant, 0.6, "micro_f1")
    assert recorded == {"name": "a for every image", "score": 0.6, "fold_scores": [0.5, 0.7], "beaten": False}
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert "CV micro_f1 0.6000 does not beat the best constant answer (a for every image): 0.6000" in warning.message

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kagglekit.evaluation.baseline"):
        assert baseline.record(constant, 0.61, "micro_f1")["beaten"]
    assert not caplog.records

    joint = baseline.joint({"label rows": baseline.Baseline("L", [0.9]), "mask rows": baseline.Baseline("M", [0.1])})
    with caplog.at_level(logging.WARNING, logger="kagglekit.evaluation.baseline"):
        recorded = baseline.record(joint, 0.6, "dice", {"label rows": 0.85, "mask rows": 0.35})
    parts = recorded["parts"]
    assert recorded["beaten"] and not parts["label rows"]["beaten"] and parts["mask rows"]["beaten"]
    (warning,) = caplog.records
    assert "CV dice of its label rows 0.8500 does not beat the best constant answer (L): 0.9000" in warning.message


def test_the_summary_table_shows_the_constant_beside_the_cv(tmp_path):
    from kagglekit.usecases.run import summary_table
    from kagglekit.runs.result import RunResult

    recorded = baseline.record(baseline.Baseline("L; M", [0.5], {"label rows": baseline.Baseline("L", [0.9])}), 0.45,
                               "dice", {"label rows": 0.8})
    table = summary_table(RunResult(tmp_path, "voc", "dice", 0.45, 0.0, [0.45], tmp_path / "s.csv", 1.0,
                                    {"baseline": recorded}))
    assert "constant baseline" in table and "0.5000 NOT BEATEN: L; M" in table
    assert "constant baseline (label rows)" in table and "0.9000 NOT BEATEN: L" in table
