"""``kagglekit blend`` on segmentation runs: two real tiny CamVid runs (the session's shared run, seed 0, and
the same config with seed 1) and their maps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import (CAMVID_RUN, BlendSpy, assert_blend_refuses_unlike_members, blend_with_itself, finished_runs,
                      nested_floor, only_run_dir)

from kagglekit.cli import main as run_cli
from kagglekit.competitions.discovery import get_competition
from kagglekit.data.masks import image_size, read_label_map
from kagglekit.evaluation.reports import segmentation_report
from kagglekit.learners.blending import Chunked, nested_proba
from kagglekit.learners.segmenter import label_maps
from kagglekit.pipelines.blend_segmentation import blend_maps
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.probability_maps import ProbabilityMaps, expand
from kagglekit.submission import rle


@pytest.fixture(scope="module")
def two_camvid_runs(camvid_run, camvid_small, tmp_path_factory) -> list[Path]:
    """The shared CamVid run (``CAMVID_RUN``, seed 0) and the same config with seed 1 (the same hold-out), its
    4 epochs without the budget's timing (a second segmenter traced: 19 s of the suite)."""
    seed1 = {**CAMVID_RUN, "seed": 1, "time_budget": None}
    return [camvid_run, *finished_runs("camvid", camvid_small, {"seed1": seed1}, tmp_path_factory.mktemp("blend-camvid"))]


def blend_dir(out: Path) -> Path:
    return only_run_dir(out / "camvid")


@pytest.mark.parametrize("method", ["hill", "mean"])
def test_maps_blended_a_chunk_at_a_time_are_those_blended_whole(method):
    """``blend_maps`` (members read, scored and blended 2 images at a time) gives each block's nested maps and the
    final weights that blending the members held whole in memory gives (``nested_proba``)."""
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 4, (9, 5, 7))
    members = []
    for noise in (1.0, 1.6, 2.5):
        logits = rng.normal(size=(9, 5, 7, 4)) * noise + np.eye(4)[truth]
        members.append((np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float16))
    block, rows = np.arange(9) % 3, np.arange(9)

    def row_score(at: np.ndarray, proba: np.ndarray) -> np.ndarray:
        return (proba.argmax(-1) == truth[at]).mean((1, 2))

    nested = np.full((9, 5, 7, 4), np.nan, dtype=np.float32)

    def on_held(at: np.ndarray, proba: np.ndarray) -> None:
        assert len(at) <= 2
        nested[at] = proba

    chunks = Chunked(lambda at: [m[at] for m in members], 3, rows, 2)
    blend = blend_maps(method, chunks, block, row_score, on_held)
    whole = [expand(m) for m in members]

    def score(at: np.ndarray, proba: np.ndarray) -> float:
        return float(np.mean(row_score(at, proba)))

    np.testing.assert_array_equal(nested, nested_proba(method, whole, rows, block, score))
    np.testing.assert_array_equal(blend.weights_, type(blend)().fit(whole, rows, score).weights_)


@pytest.mark.slow
def test_runs_keep_their_maps_and_score_the_same_from_them(two_camvid_runs, camvid_small):
    run_dir = two_camvid_runs[0]
    holdout, test = ProbabilityMaps(run_dir / RUN_FILES.holdout_maps), ProbabilityMaps(run_dir / RUN_FILES.test_maps)
    folds = json.loads((run_dir / "folds.json").read_text())
    assert holdout.ids == [i for i, f in zip(folds["ids"], folds["fold_of"]) if f == 0]
    assert holdout.size == test.size == (64, 96) and holdout.rows([0]).dtype == np.float16 and len(test.ids) == 6
    assert holdout.classes == list(get_competition("camvid").classes)
    # the kept maps are the run's: its own hold-out Dice, up to float16 rounding's rare flipped argmax
    truths = [read_label_map(camvid_small / "train" / "masks" / f"{i}.png") for i in holdout.ids]
    dice = segmentation_report(truths, label_maps(expand(holdout.rows()), [t.shape for t in truths]),
                               holdout.classes, 11)["dice"]
    assert dice == pytest.approx(json.loads((run_dir / "metrics.json").read_text())["dice"], abs=2e-3)


@pytest.mark.slow
def test_hill_blend_is_nested_scored_and_its_submission_decodes(two_camvid_runs, camvid_small, tmp_path, capsys,
                                                                monkeypatch):
    """Each hold-out block is predicted by a blend fitted on the other blocks only, and its reported score is
    the Dice of exactly that prediction; the blend fitted on every image is at least its best member there."""
    spy = BlendSpy(monkeypatch)
    assert run_cli(["blend", *two_camvid_runs, "--method", "hill", "--output-dir", tmp_path]) == 0
    assert "blend (hill, nested CV)" in capsys.readouterr().out
    found = blend_dir(tmp_path)
    metrics = json.loads((found / "metrics.json").read_text())

    holdout = [ProbabilityMaps(r / RUN_FILES.holdout_maps) for r in two_camvid_runs]
    truths = [read_label_map(camvid_small / "train" / "masks" / f"{i}.png") for i in holdout[0].ids]

    def dice(rows: list[int], proba: np.ndarray) -> float:
        """The run's own hold-out Dice of images ``rows`` given their maps."""
        return segmentation_report([truths[i] for i in rows], label_maps(proba, [truths[i].shape for i in rows]),
                                   holdout[0].classes, 11)["dice"]

    nested, every = spy.nested_maps(), set(range(len(truths)))
    assert len(nested) == len(metrics["fold_scores"]) >= 2
    assert sorted(r for _, held, _ in nested for r in held) == sorted(every)  # each image scored once
    for (fitted, held, proba), reported in zip(nested, metrics["fold_scores"]):
        assert not fitted & held and fitted | held == every, (fitted, held)  # fitted on every other image
        assert dice(sorted(held), proba.astype(np.float32)) == reported  # kept as float32, as the pipeline keeps maps

    blend = json.loads((found / "blend.json").read_text())
    weights = blend["weights"]
    maps = [expand(h.rows()) for h in holdout]
    members = [dice(sorted(every), m) for m in maps]
    fitted = dice(sorted(every), np.tensordot(weights, np.stack(maps), axes=1))
    assert all(fitted >= member for member in members), (fitted, members, weights)
    # out of fold it may trail its best member a little: measured 0.0084 (the runs disagree by up to 0.069
    # on one of the 4 one-image blocks: a floor 0.017 under the best)
    best = max(m["cv_mean"] for m in metrics["members"].values())
    assert metrics["cv_mean"] >= max(nested_floor(metrics), best - 0.02), (metrics["cv_mean"], metrics["members"])
    assert blend["members"] == [str(r) for r in two_camvid_runs] and sum(blend["weights"]) == pytest.approx(1)
    assert run_cli(["validate", "camvid", found / "submission.csv", "--data", camvid_small]) == 0
    submission = pd.read_csv(found / "submission.csv", dtype=str, keep_default_na=False)
    for path in sorted((camvid_small / "test" / "images").iterdir()):
        shape = image_size(path)
        masks = np.stack([rle.decode(submission.set_index("Id").EncodedPixels[f"{path.stem}_{k}"], shape,
                                     rle.COLUMN_MAJOR) for k in range(11)])
        assert masks.shape == (11, *shape) and (masks.sum(0) == 1).all()
    assert (found / "provenance.json").is_file()


@pytest.mark.slow
def test_mean_blend_of_a_run_with_itself_is_the_run(two_camvid_runs, camvid_small, tmp_path):
    run_dir = two_camvid_runs[0]
    found = blend_with_itself(run_dir, "camvid", tmp_path)
    test = ProbabilityMaps(run_dir / RUN_FILES.test_maps)
    camvid = get_competition("camvid")
    sizes = camvid.load_test(camvid_small).image_sizes()
    own = camvid.submission_frame(test.ids, label_maps(expand(test.rows()), [sizes[i] for i in test.ids]))
    blended = pd.read_csv(found / "submission.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(blended.set_index("Id").loc[own.Id].reset_index(), own.astype(str))


@pytest.mark.slow
def test_members_that_differ_are_refused_by_name(two_camvid_runs, tmp_path, capsys):
    first = two_camvid_runs[0]
    assert_blend_refuses_unlike_members(first, two_camvid_runs[1], (RUN_FILES.holdout_maps, RUN_FILES.test_maps), "not offered for segmentation", tmp_path, capsys)

    voc = tmp_path / "voc"
    shutil.copytree(first, voc)
    config = yaml.safe_load((voc / "config.yaml").read_text())
    (voc / "config.yaml").write_text(yaml.safe_dump({**config, "competition": "pascal-voc"}))
    assert run_cli(["blend", voc, first, "--output-dir", tmp_path / "out"]) == 2
    assert f"{voc}: not a finished PASCAL VOC run" in capsys.readouterr().err  # a CamVid run renamed


@pytest.mark.slow
def test_a_blend_keeps_its_maps_is_blended_again_and_refuses_to_be_served(camvid_run, camvid_small, tmp_path, capsys):
    """A blend keeps the maps a run keeps (here the run's own: a mean blend of the run with itself), so a blend of
    that blend and the run is the run again; a blend has no models, and predicting from it says so."""
    first = blend_with_itself(camvid_run, "camvid", tmp_path)
    for name in (RUN_FILES.holdout_maps, RUN_FILES.test_maps):
        kept, own = ProbabilityMaps(first / name), ProbabilityMaps(camvid_run / name)
        assert kept.ids == own.ids and kept.classes == own.classes
        np.testing.assert_array_equal(kept.rows(), own.rows())
    assert (first / "folds.json").read_bytes() == (camvid_run / "folds.json").read_bytes()

    assert run_cli(["blend", first, camvid_run, "--method", "hill", "--output-dir", tmp_path / "again"]) == 0
    again = blend_dir(tmp_path / "again")
    metrics = json.loads((again / "metrics.json").read_text())
    own = json.loads((camvid_run / "metrics.json").read_text())
    assert metrics["members"][str(first)]["fold_scores"] == metrics["members"][str(camvid_run)]["fold_scores"]
    assert metrics["fold_scores"] == metrics["members"][str(camvid_run)]["fold_scores"]
    assert metrics["cv_mean"] == pytest.approx(own["cv_mean"], abs=2e-3)  # float16 maps: a rare flipped argmax
    assert (again / "submission.csv").read_bytes() == (first / "submission.csv").read_bytes()
    assert (again / RUN_FILES.holdout_maps).is_file() and (again / RUN_FILES.test_maps).is_file()

    capsys.readouterr()
    assert run_cli(["predict", first, "--data", camvid_small, "--out", tmp_path / "predicted.csv"]) == 2
    assert f"{first}: a blend of runs" in capsys.readouterr().err
