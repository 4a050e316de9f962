"""Every run and every blend records the best constant answer beside its CV: the session's shared runs (read only,
nothing retrained) and a mean blend of each with a copy of itself, their constants recomputed from what the run
directory and the competition folder hold; and PASCAL VOC's constant on arrays small enough to score by hand."""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import blend_with_itself, scored_folds

from kagglekit.competitions.discovery import get_competition
from kagglekit.data.masks import read_label_map
from kagglekit.evaluation import baseline
from kagglekit.pipelines.blend_segmentation import holdout_blocks
from kagglekit.pipelines.multilabel_segmentation import constant_answer


def test_voc_constant_is_a_label_set_and_masks_scored_as_the_run_scores_itself():
    """Two images, one per fold: labels {a} and {a, b}; masks [[a, bg], [bg, bg]] and [[a, b], [bg, void]].
    Labels: {a} scores Dice 1 and 2/3 ({a, b}: 2/3 and 1, no better). Masks: empty ones score 0; the per-pixel
    majority [[a, bg], [bg, bg]] (bg wins the tie with b) scores 1, and 2/3 on the second image (its void pixel
    ignored). Each fold's score is the mean of its label row's and its mask row's."""
    labels = np.array([[1, 0], [1, 1]])
    truths = [np.array([[1, 0], [0, 0]], np.uint8), np.array([[1, 2], [0, 255]], np.uint8)]
    found = constant_answer(labels, truths, [np.array([0]), np.array([1])], ["a", "b"], 255)
    assert found.parts["classification rows"] == baseline.Baseline("the most frequent label set {a} for every image",
                                                                   [1.0, pytest.approx(2 / 3)])
    assert found.parts["segmentation rows"] == baseline.Baseline("the per-pixel majority mask (mostly background, a)",
                                                                 [1.0, pytest.approx(2 / 3)])
    assert found.fold_scores == pytest.approx([1.0, 2 / 3])


def recorded(run_dir) -> tuple[dict, dict]:
    """(metrics.json, its baseline), the baseline checked against the run's CV."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    constant = metrics["baseline"]
    assert constant["score"] == pytest.approx(np.mean(constant["fold_scores"]))
    assert len(constant["fold_scores"]) == len(metrics["fold_scores"])
    assert constant["beaten"] == (metrics["cv_mean"] > constant["score"])
    return metrics, constant


def out_of_fold(run_dir) -> tuple[pd.DataFrame, np.ndarray]:
    """The run's oof.csv by training id, and each of its rows' fold (``folds.json``)."""
    oof = pd.read_csv(run_dir / "oof.csv", dtype={"id": str}).set_index("id")
    folds = json.loads((run_dir / "folds.json").read_text())
    return oof, pd.Series(folds["fold_of"], index=folds["ids"]).loc[oof.index].to_numpy()


def blended_constant(run_dir, tmp_path) -> dict:
    """The baseline of a mean blend of ``run_dir`` with a copy of itself (checked against the blend's CV)."""
    return recorded(blend_with_itself(run_dir, run_dir.parent.name, tmp_path))[1]


@pytest.mark.slow
def test_a_classification_run_records_its_best_class_and_prints_it(seedlings_run, tmp_path):
    """Micro-F1 of one class for every image is that class's share of each fold: the best mean share, printed
    in the summary table; the blend of the run with itself has the same rows and folds, so the same constant."""
    run_dir = seedlings_run.run_dir
    metrics, constant = recorded(run_dir)
    oof, fold_of = out_of_fold(run_dir)
    cv = {c: np.mean([(oof["label"][fold_of == k] == c).mean() for k in np.unique(fold_of)])
          for c in oof["label"].unique()}
    assert constant["score"] == pytest.approx(max(cv.values()))
    assert cv[constant["name"].removesuffix(" for every image")] == pytest.approx(max(cv.values()))
    assert constant["beaten"]  # a real run beats 1/12 (the end-to-end test: above 0.4)
    assert f"{constant['score']:.4f}: {constant['name']}" in seedlings_run.printed
    assert blended_constant(run_dir, tmp_path) == constant


@pytest.mark.slow
def test_a_multilabel_run_records_the_best_label_set(seedlings_tags_run, tmp_path):
    """Each image holds its species and "even" or "odd": {even, odd} scores F1 2/(2+2) = 1/2 on every image, and
    no set does better (one group tag: 2/3 on half the images; adding a species: 0.8 on its twelfth, 0.4 elsewhere)."""
    metrics, constant = recorded(seedlings_tags_run)
    assert constant["name"].startswith("the greedy label set {")
    assert set(constant["name"].split("{")[1].split("}")[0].split(", ")) == {"even", "odd"}
    assert constant["fold_scores"] == pytest.approx([0.5] * len(metrics["fold_scores"]))
    assert blended_constant(seedlings_tags_run, tmp_path) == constant


@pytest.mark.slow
def test_a_voc_run_records_its_constant_labels_and_masks(voc_run, voc_small, tmp_path):
    """The constant recomputed from the run's saved true labels and the competition's masks of its scored folds'
    images; its label part at least the best single label's Dice (computed here); the blend's the same."""
    metrics, constant = recorded(voc_run)
    oof, fold_of = out_of_fold(voc_run)
    classes = get_competition("pascal-voc").classes
    folds = [np.flatnonzero(fold_of == k) for k in range(scored_folds(voc_run))]
    rows = np.concatenate(folds)
    labels = oof[[f"true_{c}" for c in classes]].to_numpy()[rows]
    truths = [read_label_map(voc_small / "train" / "seg" / f"train_{i}.npy") for i in oof.index[rows]]
    positions = np.split(np.arange(len(rows)), np.cumsum([len(f) for f in folds])[:-1])
    expected = constant_answer(labels, truths, positions, classes, 255)
    assert constant["name"] == expected.name and constant["fold_scores"] == pytest.approx(expected.fold_scores)
    parts = constant["parts"]
    assert set(parts) == {"classification rows", "segmentation rows"}
    assert np.mean([parts[p]["fold_scores"] for p in parts], axis=0) == pytest.approx(constant["fold_scores"])
    single = max(np.mean([np.mean(2 * labels[va, c] / (labels[va].sum(1) + 1)) for va in positions])
                 for c in range(len(classes)))
    assert parts["classification rows"]["score"] >= single - 1e-12
    blended = blended_constant(voc_run, tmp_path)
    assert blended["name"] == constant["name"] and blended["fold_scores"] == pytest.approx(constant["fold_scores"])


@pytest.mark.slow
def test_a_camvid_run_records_its_constant_masks(camvid_run, camvid_small, tmp_path):
    """The constant recomputed from the hold-out's masks; at least empty masks' mean Dice over (image, class)
    rows (the share of classes absent from each image, computed here); the blend's scored over its blocks."""
    metrics, constant = recorded(camvid_run)
    classes = get_competition("camvid").classes
    ids = json.loads((camvid_run / "data_report.json").read_text())["valid_ids"]
    truths = [read_label_map(camvid_small / "train" / "masks" / f"{i}.png") for i in ids]
    expected = baseline.per_class_masks(truths, [np.arange(len(ids))], classes)
    assert constant["name"] == expected.name and constant["fold_scores"] == pytest.approx(expected.fold_scores)
    empty = np.mean([1 - len(np.intersect1d(t, np.arange(len(classes)))) / len(classes) for t in truths])
    assert constant["score"] >= empty - 1e-12
    block = holdout_blocks(ids, get_competition("camvid").groups(ids))
    expected = baseline.per_class_masks(truths, [np.flatnonzero(block == k) for k in np.unique(block)], classes)
    blended = blended_constant(camvid_run, tmp_path)
    assert blended["name"] == expected.name and blended["fold_scores"] == pytest.approx(expected.fold_scores)
