"""Task pipelines: the shared "how" behind a competition's ``task``, one module per task.

Each module defines ``run(competition, config, run_dir) -> RunResult``, which trains with honest
cross-validation, predicts the test set and writes a validated submission plus everything that
explains the run into ``run_dir``; and ``predict(competition, config, run_dir, data_dir) -> DataFrame``,
which rebuilds that submission from the saved models alone (``kagglekit predict``, generated notebooks).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from kagglekit.core.errors import ConfigError

#: Task name -> the module that runs it (imported on first use: TensorFlow is slow to load).
TASK_MODULES = {
    "classification": "kagglekit.pipelines.classification",
    "segmentation": "kagglekit.pipelines.segmentation",
    "multilabel-segmentation": "kagglekit.pipelines.multilabel_segmentation",
}


def pipeline_module(task: str) -> ModuleType:
    if task not in TASK_MODULES:
        raise ConfigError(f"no pipeline runs task {task!r}; known tasks: {', '.join(TASK_MODULES)}")
    return importlib.import_module(TASK_MODULES[task])


def get_pipeline(task: str):
    return pipeline_module(task).run


def get_predictor(task: str):
    return pipeline_module(task).predict
