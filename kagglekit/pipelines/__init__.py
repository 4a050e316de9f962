"""Task pipelines: the shared "how" behind a competition's ``task``, one module per task.

Each module defines ``run(competition, config, run_dir, on_fold=None) -> RunResult``, which trains with
honest cross-validation, predicts the test set and writes a validated submission plus everything that
explains the run into ``run_dir`` (``on_fold(k, score)`` hears each fold's score as soon as it is known:
``kagglekit tune`` prunes trials on them); and ``predict(competition, config, run_dir, data_dir) -> DataFrame``,
which rebuilds that submission from the saved models alone (``kagglekit predict``, generated notebooks).
"""

from __future__ import annotations

from types import ModuleType
from typing import Callable

from kagglekit.core.errors import ConfigError
from kagglekit.tasks import TASKS, resolve

#: ``on_fold(fold, score)``: told each fold's score as it is known.
FoldHook = Callable[[int, float], None]


def resolve_learner(task: str, learner: str) -> str:
    """The concrete learner ``learner`` means for ``task`` (``auto``: the task's first; ConfigError naming the
    known tasks for an unknown one)."""
    modules = TASKS.get(task).pipelines
    if learner == "auto":
        return next(iter(modules))
    if learner not in modules:
        raise ConfigError(f"train.learner: {learner} is not available for task {task!r}; "
                          f"set one of: auto, {', '.join(modules)}")
    return learner


def pipeline_module(task: str, learner: str = "auto") -> ModuleType:
    """The module that runs ``task`` with ``learner`` (imported on first use: TensorFlow is slow to load)."""
    return resolve(TASKS.get(task).pipelines[resolve_learner(task, learner)])


def blend_module(task: str) -> ModuleType:
    """The module that blends finished runs of ``task`` (``read_member``, ``run``)."""
    return resolve(TASKS.get(task).blend)


def get_pipeline(task: str, learner: str = "auto"):
    return pipeline_module(task, learner).run


def get_predictor(task: str, learner: str = "auto"):
    return pipeline_module(task, learner).predict
