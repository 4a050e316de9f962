"""Rebuild a finished run's submission from its run directory alone (saved config and models).

This is what a Kaggle notebook runs with the internet off: the same prediction path as the run itself,
so the notebook's ``submission.csv`` is the run's ``submission.csv``.
"""

from __future__ import annotations

from pathlib import Path

from kagglekit.competition import get_competition
from kagglekit.config import RunConfig
from kagglekit.errors import ConfigError
from kagglekit.pipelines import get_predictor
from kagglekit.submission import validate_submission, write_submission


def predict_run(run_dir: Path, data_dir: Path, output: Path, weights_dir: str | None = None) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    config = RunConfig.load(run_dir / "config.yaml", data=str(data_dir), weights_dir=weights_dir)
    competition = get_competition(config.competition)
    frame = get_predictor(competition.task)(competition, config, run_dir, Path(data_dir))
    path = write_submission(frame, Path(output))
    validate_submission(competition, path, competition.sample_submission_path(data_dir)).raise_if_invalid()
    return path
