"""``kagglekit blend`` on PASCAL VOC runs: two real tiny runs (Lite0, the session's shared VOC run, and Lite1 with
the same config: same folds), labels and masks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import (VOC_RUN, BlendSpy, assert_blend_refuses_unlike_members, assert_label_blends_nested,
                      blend_with_itself, finished_runs, nested_floor, only_run_dir, scored_folds)

from kagglekit.cli import main as run_cli
from kagglekit.competitions.discovery import get_competition
from kagglekit.learners.segmenter import label_maps
from kagglekit.learners.thresholds import ThresholdTuner
from kagglekit.pipelines.multilabel_segmentation import allowed_classes
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.probability_maps import ProbabilityMaps, expand


@pytest.fixture(scope="module")
def two_voc_runs(voc_run, voc_small, tmp_path_factory) -> list[Path]:
    """Masks limited to labels ("consistency: on"), segmenters on 2 of the 3 folds (``VOC_RUN``): the shared
    Lite0 run, and a Lite1 run of the same config."""
    lite1 = {**VOC_RUN, "backbones": ["efficientnet_lite1"]}
    return [voc_run, *finished_runs("pascal-voc", voc_small, {"lite1": lite1}, tmp_path_factory.mktemp("blend-voc"))]


def blend_dir(out: Path) -> Path:
    return only_run_dir(out / "pascal-voc")


@pytest.mark.slow
def test_hill_blend_of_labels_and_masks_is_nested_scored_and_validates(two_voc_runs, voc_small, tmp_path, monkeypatch):
    """Each fold's labels (the blend's OOF probabilities) and each scored fold's masks come from a blend
    fitted on the other folds' rows only."""
    run_dir = two_voc_runs[0]
    folds = json.loads((run_dir / "folds.json").read_text())
    oof_maps, test_maps = ProbabilityMaps(run_dir / RUN_FILES.oof_maps), ProbabilityMaps(run_dir / RUN_FILES.test_maps)
    scored_count = scored_folds(run_dir)  # segmenters on the first 2 of the 3 folds
    assert 2 <= scored_count < len(set(folds["fold_of"]))  # a mask blend needs 2 folds; one fold left unscored
    assert oof_maps.ids == [i for f in range(scored_count) for i, k in zip(folds["ids"], folds["fold_of"]) if k == f]
    assert oof_maps.classes == ["background", *get_competition("pascal-voc").classes] and len(test_maps.ids) == 12

    spy = BlendSpy(monkeypatch)
    assert run_cli(["blend", *two_voc_runs, "--method", "hill", "--output-dir", tmp_path]) == 0
    found = blend_dir(tmp_path)
    metrics = json.loads((found / "metrics.json").read_text())
    fold_of = dict(zip(folds["ids"], folds["fold_of"]))

    # labels: fold k's blended probabilities (the blend's oof.csv) are the prediction of a blend fitted on the
    # other two folds' rows
    assert_label_blends_nested(spy, two_voc_runs, found, get_competition("pascal-voc").classes)

    # masks: the images of the segmenters' scored folds, each fold's from a blend fitted on the others'
    scored = [i for i in folds["ids"] if i in set(oof_maps.ids)]
    mask_blends = spy.nested_maps()
    assert len(mask_blends) == len(metrics["fold_scores"]) == scored_count  # the scored folds
    for k, (fitted, held, _) in enumerate(mask_blends):
        assert [scored[r] for r in sorted(held)] == [i for i in scored if fold_of[i] == k], (k, held)
        assert [scored[r] for r in sorted(fitted)] == [i for i in scored if fold_of[i] != k], (k, fitted & held)

    # out of fold it may trail its best member a little. Measured (VOC_RUN, Lite0 and Lite1): its CV leads by
    # 0.009 (floor: 0.029 under the best, the runs disagreeing by 0.059 on one of 2 folds); its label rows lead
    # by 0.016 and its mask rows trail by 0.001, each within one image's row (1/24 = 0.042 on the 24 scored images)
    best = max(m["cv_mean"] for m in metrics["members"].values())
    assert metrics["cv_mean"] >= max(nested_floor(metrics), best - 0.03), (metrics["cv_mean"], metrics["members"])
    for part in ("classification_rows_dice", "segmentation_rows_dice"):
        best = max(m[part] for m in metrics["members"].values())
        assert metrics[part] >= best - 0.03, (part, metrics[part], metrics["members"])
    for member in two_voc_runs:  # each member scored from what it saved as it scored itself
        own = json.loads((member / "metrics.json").read_text())
        assert metrics["members"][str(member)]["cv_mean"] == pytest.approx(own["cv_mean"], abs=0.01)
    weights = json.loads((found / "blend.json").read_text())["weights"]
    assert len(weights["labels"]) == 20 and sum(weights["masks"]) == pytest.approx(1)
    assert json.loads((found / "postprocess.json").read_text())["consistency"] is True
    assert run_cli(["validate", "pascal-voc", found / "submission.csv", "--data", voc_small]) == 0


@pytest.mark.slow
def test_mean_blend_of_a_run_with_itself_is_the_run(two_voc_runs, voc_small, tmp_path):
    run_dir = two_voc_runs[0]
    found = blend_with_itself(run_dir, "pascal-voc", tmp_path)

    # the member's submission rebuilt from what it saved: thresholds on its OOF probabilities, its test maps
    voc = get_competition("pascal-voc")
    classes = voc.classes
    oof = pd.read_csv(run_dir / "oof.csv")
    tuner = ThresholdTuner.for_metric(voc.metric).fit(oof[classes].to_numpy(), oof[[f"true_{c}" for c in classes]].to_numpy())
    maps = ProbabilityMaps(run_dir / RUN_FILES.test_maps)
    proba = pd.read_csv(run_dir / "test_probabilities.csv", dtype={"id": str}).set_index("id").loc[maps.ids, classes]
    labels = tuner.predict(proba.to_numpy())
    sizes = voc.load_test(voc_small).image_sizes()
    own = voc.submission_frame(maps.ids, labels, label_maps(expand(maps.rows()), [sizes[i] for i in maps.ids],
                                                            allowed_classes(labels)))
    blended = pd.read_csv(found / "submission.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(blended, own.astype(str))


@pytest.mark.slow
def test_members_that_differ_are_refused_by_name(two_voc_runs, tmp_path, capsys):
    first = two_voc_runs[0]
    assert_blend_refuses_unlike_members(first, two_voc_runs[1], (RUN_FILES.oof_maps, RUN_FILES.test_maps), "not offered for the masks of PASCAL VOC runs", tmp_path, capsys)

    old = tmp_path / "old"  # a run made before VOC runs kept their maps
    shutil.copytree(first, old)
    (old / RUN_FILES.oof_maps).unlink()
    assert run_cli(["blend", first, old, "--output-dir", tmp_path / "out"]) == 2
    err = capsys.readouterr().err
    assert f"{old}: not a finished PASCAL VOC run" in err and "run it again" in err


@pytest.mark.slow
def test_a_blend_keeps_labels_and_maps_and_is_blended_again(voc_run, voc_small, tmp_path):
    """A blend keeps what a VOC run keeps for blending (here the run's own: a mean blend of the run with itself),
    so a blend of that blend and the run is the run again."""
    first = blend_with_itself(voc_run, "pascal-voc", tmp_path)
    for name in (RUN_FILES.oof_maps, RUN_FILES.test_maps):
        kept, own = ProbabilityMaps(first / name), ProbabilityMaps(voc_run / name)
        assert sorted(kept.ids) == sorted(own.ids) and kept.classes == own.classes  # the blend's in folds.json's order
        at = {id_: k for k, id_ in enumerate(own.ids)}
        assert (kept.rows() == own.rows([at[i] for i in kept.ids])).all()

    assert run_cli(["blend", first, voc_run, "--method", "hill", "--output-dir", tmp_path / "again"]) == 0
    metrics = json.loads((blend_dir(tmp_path / "again") / "metrics.json").read_text())
    assert metrics["members"][str(first)]["fold_scores"] == metrics["members"][str(voc_run)]["fold_scores"]
    assert metrics["fold_scores"] == metrics["members"][str(voc_run)]["fold_scores"]
    assert (blend_dir(tmp_path / "again") / "submission.csv").read_bytes() == (first / "submission.csv").read_bytes()
