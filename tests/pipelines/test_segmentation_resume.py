"""``kagglekit run --resume`` of segmentation and PASCAL VOC runs: copies of the session's shared runs (conftest's
``camvid_run`` and ``voc_run``) "killed" by removing what they had not finished, then resumed: only the unfinished
part trains again, and the resumed run's results are the uninterrupted run's. (A fit killed mid-epoch resuming at
its last checkpoint: ``tests/models/test_segmentation_units.py``.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import scored_folds

from kagglekit.cli import main
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.probability_maps import ProbabilityMaps

#: What a run writes once its segmenters are trained (the outputs a kill before the end leaves missing).
AFTER_TRAINING = ("submission.csv", "metrics.json", RUN_FILES.holdout_maps, RUN_FILES.oof_maps, RUN_FILES.test_maps,
                  "postprocess.json", "oof.csv", "test_probabilities.csv")


def segmenter_fits(monkeypatch) -> list[str]:
    """The work folders of the segmenters trained from now on (a spy on ``Segmenter.fit``)."""
    from kagglekit.learners.segmenter import Segmenter

    trained, fit = [], Segmenter.fit

    def spying(self, *args, **kwargs):
        trained.append(self.workdir.name)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Segmenter, "fit", spying)
    return trained


def killed_copy(run_dir: Path, tmp_path: Path, unfinished: list[str]) -> Path:
    """A copy of a finished run without what a run killed while training ``unfinished`` (folders) lacks."""
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    for name in AFTER_TRAINING:
        (copy / name).unlink(missing_ok=True)
    for folder in unfinished:
        shutil.rmtree(copy / folder)
    return copy


def assert_same_results(resumed: Path, run_dir: Path, maps: tuple[str, ...]) -> None:
    """The same submission, scores, time plan and kept probability maps (only the time taken may differ)."""
    assert (resumed / "submission.csv").read_bytes() == (run_dir / "submission.csv").read_bytes()

    def results(run: Path) -> dict:
        metrics = json.loads((run / "metrics.json").read_text())
        if metrics.get("time_budget"):  # the plan is the run's (reused on resume); the seconds it took are not
            metrics["time_budget"] = {k: v for k, v in metrics["time_budget"].items() if k not in ("actual_s", "kept")}
        return {k: v for k, v in metrics.items() if k not in ("seconds", "timing")}

    assert results(resumed) == results(run_dir)
    for name in maps:
        np.testing.assert_array_equal(ProbabilityMaps(resumed / name).rows(),
                                      ProbabilityMaps(run_dir / name).rows())


@pytest.mark.slow
def test_a_pascal_voc_run_killed_in_its_last_fold_trains_only_that_fold_again(voc_run, voc_small, tmp_path,
                                                                              monkeypatch):
    last = f"fold{scored_folds(voc_run) - 1}"
    copy = killed_copy(voc_run, tmp_path, [f"segmenter/{last}"])
    trained = segmenter_fits(monkeypatch)
    assert main(["run", "pascal-voc", "--resume", str(copy), "--data", str(voc_small)]) == 0
    assert trained == [last]
    assert_same_results(copy, voc_run, (RUN_FILES.oof_maps, RUN_FILES.test_maps))
    assert (copy / "config.yaml").read_bytes() == (voc_run / "config.yaml").read_bytes()


@pytest.mark.slow
def test_a_camvid_run_killed_after_training_is_finished_from_its_saved_segmenter(camvid_run, camvid_small, tmp_path,
                                                                                monkeypatch, capsys):
    copy = killed_copy(camvid_run, tmp_path, [])
    assert main(["run", "camvid", "--resume", str(copy), "--folds", "3"]) == 2  # the saved config is the run's
    assert "drop --folds" in capsys.readouterr().err
    trained = segmenter_fits(monkeypatch)
    assert main(["run", "camvid", "--resume", str(copy), "--data", str(camvid_small)]) == 0
    assert trained == []
    assert_same_results(copy, camvid_run, (RUN_FILES.holdout_maps, RUN_FILES.test_maps))
