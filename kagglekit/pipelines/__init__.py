"""Task pipelines: the shared "how" behind a competition's ``task`` (classification, ...).

A pipeline is a function ``run(competition, config, run_dir) -> RunResult`` registered under the
task name. It trains with honest cross-validation, predicts the test set and writes a validated
submission plus everything that explains the run into ``run_dir``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from kagglekit.registry import Registry

PIPELINES: Registry = Registry("task pipeline")
#: Modules that register pipelines; imported on first lookup.
PIPELINE_MODULES = (
    "kagglekit.pipelines.classification",
    "kagglekit.pipelines.segmentation",
    "kagglekit.pipelines.multilabel_segmentation",
)


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


def get_pipeline(task: str):
    for module in PIPELINE_MODULES:
        importlib.import_module(module)
    return PIPELINES.get(task)
