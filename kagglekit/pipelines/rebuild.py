"""Rebuild a finished run's submission from its run directory alone (saved config and models).

This is what a Kaggle notebook runs with the internet off: the same prediction path as the run itself,
so the notebook's ``submission.csv`` is the run's ``submission.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path

from kagglekit.competitions.contract import Competition
from kagglekit.competitions.discovery import competition_from_yaml, get_competition
from kagglekit.core.config import RunConfig, read_config_file
from kagglekit.core.errors import ConfigError
from kagglekit.pipelines import get_predictor
from kagglekit.runs.layout import RUN_FILES, check_format
from kagglekit.submission.writer import write_submission


def load_run_config(run_dir: Path, **overrides) -> RunConfig:
    """The config a finished run saved, with ``overrides`` (e.g. where the data and weights are now)."""
    if not (Path(run_dir) / RUN_FILES.config).is_file():
        if (Path(run_dir) / RUN_FILES.blend_config).is_file():
            members = json.loads((Path(run_dir) / RUN_FILES.blend_config).read_text())["members"]
            raise ConfigError(f"{run_dir}: a blend of runs ({RUN_FILES.blend_config}), with its blended probabilities "
                              "and submission but no models or run config of its own: it can be blended again, "
                              f"not predicted, served, exported or resumed; use its members ({', '.join(members)})")
        raise ConfigError(f"{run_dir}: not a run directory (no {RUN_FILES.config})")
    return RunConfig.load(Path(run_dir) / RUN_FILES.config, **overrides)


def predict_run(run_dir: Path, data_dir: Path, output: Path, weights_dir: str | None = None) -> Path:
    run_dir = Path(run_dir)
    config = load_run_config(run_dir, data=str(data_dir), weights_dir=weights_dir)
    competition = run_competition(run_dir).resolve(Path(data_dir))
    frame = get_predictor(competition.task, config.train.learner)(competition, config, run_dir, Path(data_dir))
    path = write_submission(frame, Path(output))
    competition.validate(path, data_dir).raise_if_invalid()
    return path


def run_competition(run_dir: Path) -> Competition:
    """The competition a run (or a blend of runs) was made for: its saved YAML file if it was passed by path,
    else by name. A DataError for a run written by a newer kagglekit (``runs.layout.check_format``)."""
    check_format(run_dir)
    saved = Path(run_dir) / RUN_FILES.competition
    if saved.is_file():
        return competition_from_yaml(saved)
    blend = Path(run_dir) / RUN_FILES.blend_config
    if blend.is_file() and not (Path(run_dir) / RUN_FILES.config).is_file():
        return get_competition(json.loads(blend.read_text())["competition"])
    return get_competition(read_config_file(Path(run_dir) / RUN_FILES.config)["competition"])
