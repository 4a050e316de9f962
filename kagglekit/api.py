"""The Python API, for notebooks and scripts: what ``kagglekit run``, ``predict --images`` and ``blend`` do, as
calls that return a ``Run`` instead of printing (``import kagglekit`` loads this module on first use only).

    run = kagglekit.run("seedlings", preset="fast")      # trained, recorded in the score ledger
    kagglekit.load_run(run.path).predict(["photo.jpg"])  # a DataFrame: one row per image
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kagglekit.core.errors import ConfigError
from kagglekit.runs.layout import RUN_FILES
from kagglekit.usecases.blend import blend as blend_runs
from kagglekit.usecases.config import resolve_run
from kagglekit.usecases.predict import prediction_frame
from kagglekit.usecases.run import record_and_submit, train


class Run:
    """A run directory (a run or a blend of runs): its scores, its submission, and predictions from its saved
    models for any images (its models are loaded on the first ``predict``, then kept)."""

    def __init__(self, path: str | Path, weights_dir: str | Path | None = None):
        self.path = Path(path).absolute()  # where the run is, wherever the caller moves to
        if not self.path.is_dir():
            raise ConfigError(f"{self.path}: not a run directory (no such folder)")
        self.weights_dir = None if weights_dir is None else str(weights_dir)
        self._predictor = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def metrics(self) -> dict:
        """The run's ``metrics.json``: the metric, ``cv_mean``, ``cv_std``, ``fold_scores``, seconds, and what its
        pipeline added."""
        path = self.path / RUN_FILES.metrics
        if not path.is_file():
            raise ConfigError(f"{self.path}: no {RUN_FILES.metrics} (not a finished run)")
        return json.loads(path.read_text(encoding="utf-8"))

    @property
    def submission(self) -> pd.DataFrame:
        """The run's validated ``submission.csv``, as written (every column a string)."""
        path = self.path / RUN_FILES.submission
        if not path.is_file():
            raise ConfigError(f"{self.path}: no {RUN_FILES.submission} (not a finished run)")
        return pd.read_csv(path, dtype=str, keep_default_na=False)

    def predict(self, images: Sequence[str | Path | np.ndarray] | np.ndarray) -> pd.DataFrame:
        """One row per image, as ``kagglekit predict --images`` writes them: a classifier's class (or a multi-label
        run's labels) and each class's probability; a segmenter's mask (an (H, W) array of mask class indices),
        size and pixel shares. ``images``: image files or folders of them, decoded (H, W, 3) uint8 RGB arrays, or
        one (n, H, W, 3) array."""
        if self._predictor is None:
            from kagglekit.serving.predictor import load_predictor

            self._predictor = load_predictor(self.path, self.weights_dir)
        return prediction_frame(self._predictor, list(images) if isinstance(images, np.ndarray) else images)


def run(competition: str, *, preset: str | None = None, config: str | Path | Mapping | None = None,
        data: str | Path | None = None, backbone: str | list[str] | None = None, folds: int | None = None,
        image_size: int | None = None, seed: int | None = None, weights_dir: str | Path | None = None,
        output_dir: str | Path | None = None, time_budget: str | None = None, submit: bool = False,
        message: str | None = None) -> Run:
    """``kagglekit run``: train with cross-validation, predict, write a validated submission in a new run directory
    and record it in the score ledger; with ``submit``, send it to Kaggle. ``competition``: a name or a YAML file;
    ``config``: a run config YAML file or a mapping of its fields; the other options as the command's flags
    (``None``: the preset's, config's or competition's value)."""
    found, frozen = resolve_run(competition, preset=preset, config=config, data=data, backbone=backbone, folds=folds,
                                image_size=image_size, seed=seed, weights_dir=weights_dir, output_dir=output_dir,
                                time_budget=time_budget)
    result = train(found, frozen)
    record_and_submit(result, frozen, found, submit=submit, message=message)
    return Run(result.run_dir, weights_dir)


def load_run(path: str | Path, weights_dir: str | Path | None = None) -> Run:
    """A finished run directory (``submissions/<competition>/<run>``), to read or predict with."""
    return Run(path, weights_dir)


def blend(runs: Sequence[Run | str | Path], method: str = "hill", *, data: str | Path | None = None,
          output_dir: str | Path | None = None, submit: bool = False, message: str | None = None) -> Run:
    """``kagglekit blend``: two or more runs of a competition (same folds and seed) combined into a new run
    directory, scored by nested CV, recorded in the ledger (``submit``: sent to Kaggle). ``method``: ``mean``,
    ``hill`` (ensemble selection on out-of-fold rows) or ``stack``."""
    paths = [r.path if isinstance(r, Run) else Path(r) for r in runs]
    result, config, competition = blend_runs(paths, method, None if data is None else Path(data),
                                             None if output_dir is None else Path(output_dir))
    record_and_submit(result, config, competition, submit=submit, message=message)
    return Run(result.run_dir)
