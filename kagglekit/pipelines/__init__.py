"""Task pipelines: the shared "how" behind a competition's ``task`` (classification, ...).

A pipeline is a function ``run(competition, config, run_dir) -> RunResult`` registered in
``PIPELINES`` under the task name. It trains with honest cross-validation, predicts the test set and
writes a validated submission plus everything that explains the run into ``run_dir``.

Its partner in ``PREDICTORS``, ``predict(competition, config, run_dir, data_dir) -> DataFrame``,
rebuilds the submission from the saved models alone (``kagglekit predict``, generated notebooks).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from kagglekit.registry import Registry

PIPELINES: Registry = Registry("task pipeline")
PREDICTORS: Registry = Registry("task predictor")
#: Modules that register pipelines; imported on first lookup.
PIPELINE_MODULES = ("kagglekit.pipelines.classification",)


@dataclass
class RunResult:
    run_dir: Path
    competition: str
    metric: str
    cv_mean: float
    cv_std: float
    fold_scores: list[float]
    submission: Path
    seconds: float
    extra: dict = field(default_factory=dict)


def _import_pipelines() -> None:
    for module in PIPELINE_MODULES:
        importlib.import_module(module)


def get_pipeline(task: str):
    _import_pipelines()
    return PIPELINES.get(task)


def get_predictor(task: str):
    _import_pipelines()
    return PREDICTORS.get(task)
