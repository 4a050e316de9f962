"""The classification pipeline end to end on real Plant Seedlings images and real pretrained weights."""

import json

import pandas as pd
import pytest

from kagglekit.cli import main
from kagglekit.competitions.discovery import get_competition

from helpers import assert_usage_recorded, count_backbone_passes


def run_cli(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.mark.slow
def test_seedlings_end_to_end(seedlings_run, seedlings_small, tmp_path, monkeypatch):
    """A tiny real run (the session's ``seedlings_run``: ``tiny_run_config``, made in this process on a feature
    cache of its own): its files, a valid submission far better than chance, every image through a backbone
    once per view, and a rebuild of the submission from the saved models that runs no backbone at all."""
    assert "CV micro_f1" in seedlings_run.printed
    run_dir = seedlings_run.run_dir

    # the run explains itself
    for name in ("config.yaml", "metrics.json", "data_report.json", "oof.csv", "test_probabilities.csv",
                 "submission.csv", "classes.json", "plots/learning_curves.png", "plots/confusion_matrix.png",
                 "folds/fold0/head.weights.h5", "folds/fold0/top_blocks.weights.h5", "folds/fold2/head_log.csv"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["fold_scores"]) == 3
    assert_usage_recorded(metrics, run_dir, "seedlings")

    # a valid submission, far better than chance (1/12) on the held-out labelled test set
    assert run_cli("validate", "seedlings", run_dir / "submission.csv", "--data", seedlings_small) == 0
    competition = get_competition("seedlings")
    solution = pd.read_csv(seedlings_small / "solution.csv", dtype=str)
    submission = pd.read_csv(run_dir / "submission.csv", dtype=str)
    score = competition.score(solution, submission)
    print(f"held-out micro-F1 {score:.3f}, CV {metrics['cv_mean']:.3f}")
    assert score > 0.4 and metrics["cv_mean"] > 0.4  # chance is 1/12

    # features are cached by content: within the run no backbone saw an image in a view twice ...
    passes = seedlings_run.passes
    assert passes and len(set(passes)) == len(passes)

    # ... and rebuilding the submission from the saved models alone (what notebooks do) runs none at all
    monkeypatch.setenv("KAGGLEKIT_CACHE", str(seedlings_run.cache))  # the run's own feature cache
    rebuilt_passes = count_backbone_passes(monkeypatch)
    rebuilt = tmp_path / "rebuilt.csv"
    assert run_cli("predict", run_dir, "--data", seedlings_small, "--out", rebuilt) == 0
    assert rebuilt.read_bytes() == (run_dir / "submission.csv").read_bytes()
    assert rebuilt_passes == []


def test_unknown_backbone_is_a_clear_error(seedlings_small, tmp_path, capsys):
    code = run_cli("run", "seedlings", "--data", seedlings_small, "--backbone", "efficientnet_lite9",
                   "--output-dir", tmp_path)
    assert code == 2
    assert "unknown backbone 'efficientnet_lite9'" in capsys.readouterr().err


def test_unreadable_images(seedlings_small, tmp_path):
    """A corrupt training image is skipped and listed; a corrupt test image stops the run, named."""
    import shutil

    from kagglekit.core.errors import DataError
    from kagglekit.pipelines.classification import read_images

    data = tmp_path / "data"
    shutil.copytree(seedlings_small, data)
    victim = sorted((data / "train" / "Maize").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:100])
    (data / "train" / "Maize" / "notes.txt").write_text("not an image")
    competition = get_competition("seedlings")
    train, test = read_images(competition, data, tmp_path)
    assert victim not in train.paths and len(train) == 12 * 15 - 1
    report = json.loads((tmp_path / "data_report.json").read_text())
    assert str(victim) in report["skipped_unreadable_train"]

    test_victim = sorted((data / "test").iterdir())[0]
    test_victim.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=test_victim.name):
        read_images(competition, data, tmp_path)

