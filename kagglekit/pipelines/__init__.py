"""Task pipelines: the shared "how" behind a competition's ``task``, one module per task.

Each module defines ``run(competition, config, run_dir, on_fold=None) -> RunResult``, which trains with
honest cross-validation, predicts the test set and writes a validated submission plus everything that
explains the run into ``run_dir`` (``on_fold(k, score)`` hears each fold's score as soon as it is known:
``kagglekit tune`` prunes trials on them); and ``predict(competition, config, run_dir, data_dir) -> DataFrame``,
which rebuilds that submission from the saved models alone (``kagglekit predict``, generated notebooks).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable

from kagglekit.core.errors import ConfigError

#: ``on_fold(fold, score)``: told each fold's score as it is known.
FoldHook = Callable[[int, float], None]

#: Task name -> ``train.learner`` -> the module that runs it (imported on first use: TensorFlow is slow to
#: load). Learners differ in kind (cached features vs streamed images), so each has its own module; the
#: first listed is what ``learner: auto`` means.
TASK_MODULES = {
    "classification": {"finetune": "kagglekit.pipelines.finetuning", "head": "kagglekit.pipelines.classification"},
    "multilabel-classification": {"head": "kagglekit.pipelines.multilabel_classification"},
    "segmentation": {"head": "kagglekit.pipelines.segmentation"},
    "multilabel-segmentation": {"head": "kagglekit.pipelines.multilabel_segmentation"},
}


def resolve_learner(task: str, learner: str) -> str:
    """The concrete learner ``learner`` means for ``task`` (``auto``: the task's first)."""
    if task not in TASK_MODULES:
        raise ConfigError(f"no pipeline runs task {task!r}; known tasks: {', '.join(TASK_MODULES)}")
    modules = TASK_MODULES[task]
    if learner == "auto":
        return next(iter(modules))
    if learner not in modules:
        raise ConfigError(f"train.learner: {learner} is not available for task {task!r}; "
                          f"set one of: auto, {', '.join(modules)}")
    return learner


def pipeline_module(task: str, learner: str = "auto") -> ModuleType:
    return importlib.import_module(TASK_MODULES[task][resolve_learner(task, learner)])


def get_pipeline(task: str, learner: str = "auto"):
    return pipeline_module(task, learner).run


def get_predictor(task: str, learner: str = "auto"):
    return pipeline_module(task, learner).predict
