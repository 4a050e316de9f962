"""A competition defined by a YAML file alone, passed by path, end to end: no Python, not in competitions/."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

SPEC = {  # labels are discovered from the train folder; columns differ from the seedlings adapter's
    "kind": "class-folder", "name": "weeds", "slug": "weeds-by-path", "title": "Weeds (YAML only)",
    "id_column": "image", "label_column": "plant", "metric": "accuracy",
}
TINY = {"backbones": ["efficientnet_lite0"], "image_size": 96, "folds": 3, "tta": ["identity", "hflip"],
        "train": {"learner": "head", "views": ["identity", "hflip"], "head_epochs": 25, "patience": 5}}


def kagglekit(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kagglekit", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.slow
def test_yaml_competition_by_path_runs_end_to_end(tmp_path):
    from helpers import SEEDLINGS, require

    from kagglekit.competitions.builders import build_class_folder_competition

    data = build_class_folder_competition(require(SEEDLINGS), tmp_path / "data", id_column="image",
                                          label_column="plant", per_class=12, test_fraction=0.25)
    spec = tmp_path / "elsewhere" / "weeds.yaml"
    spec.parent.mkdir()
    spec.write_text(yaml.safe_dump(SPEC))
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))

    out = kagglekit("run", spec, "--data", data, "--config", config, "--output-dir", tmp_path / "runs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs" / "weeds").iterdir()  # named by the competition, not by the file's path
    assert yaml.safe_load((run_dir / "competition.yaml").read_text()) == SPEC  # the run explains itself
    classes = json.loads((run_dir / "classes.json").read_text())
    assert classes == sorted(p.name for p in (data / "train").iterdir())

    submission = pd.read_csv(run_dir / "submission.csv", dtype=str)
    solution = pd.read_csv(data / "solution.csv", dtype=str)
    assert list(submission.columns) == ["image", "plant"]
    assert sorted(submission.image) == sorted(solution.image) and set(submission.plant) <= set(classes)
    accuracy = (solution.merge(submission, on="image").pipe(lambda m: (m.plant_x == m.plant_y).mean()))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"held-out accuracy {accuracy:.3f}, CV {metrics['cv_mean']:.3f}")
    assert accuracy > 0.3 and metrics["cv_mean"] > 0.3  # chance is 1/12

    assert kagglekit("validate", spec, run_dir / "submission.csv", "--data", data, cwd=tmp_path).returncode == 0
    spec.unlink()  # the run directory alone must rebuild its submission
    rebuilt = tmp_path / "rebuilt.csv"
    out = kagglekit("predict", run_dir, "--data", data, "--out", rebuilt, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert rebuilt.read_bytes() == (run_dir / "submission.csv").read_bytes()
