"""What each task is, in one place: ``TASKS``, a registry of ``TaskSpec`` by task name.

A competition declares its ``task``; everything that behaves differently per task looks the task up here
instead of comparing names: its contract, the pipeline module of each learner, the module that blends its
runs, the predictor that serves them and its capabilities (what a run predicts: labels, masks). Adding a
task (detection, say) is one ``TaskSpec`` here plus the modules it names.

This package sits just above ``competitions`` (it holds the contracts) and below every layer that asks it,
so pipelines, serving, inspection, experiments and commands all import it downward. The modules a spec
names live in higher layers, so a spec holds their dotted names only, never imports them: each is resolved
(``resolve``) by the layer it belongs to, which imports its own code: ``pipelines`` its pipelines and
blends, ``serving`` its predictors. ``tests/test_common.py`` checks that every name resolves and lies in
that layer.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal, Mapping

from kagglekit.competitions.contract import (
    ClassificationCompetition,
    Competition,
    MultiLabelClassificationCompetition,
    MultiLabelSegmentationCompetition,
    SegmentationCompetition,
)
from kagglekit.core.registry import Registry


@dataclass(frozen=True)
class TaskSpec:
    """A task: its contract, the modules that run it (by dotted name) and what its runs predict."""

    contract: type[Competition]
    #: ``train.learner`` -> the pipeline module that trains it and rebuilds its submission (``run``,
    #: ``predict``); the first is what ``learner: auto`` means.
    pipelines: Mapping[str, str]
    blend: str  # the module whose ``read_member`` and ``run`` blend finished runs of the task
    predictor: str  # ``module:Class``: a finished run, loaded once, predicting any images
    labels: Literal["single", "multi"] | None  # per image: one class, a 0/1 label vector, or none
    masks: bool = False  # a label map per image
    mask_background: bool = False  # the masks hold a background class (0) before the task's classes

    @property
    def name(self) -> str:
        return self.contract.task

    @property
    def differentiable(self) -> bool:
        """Its runs hold an image classifier gradients go through (Grad-CAM, attacks on labels)."""
        return self.labels is not None

    def mask_classes(self, classes: list[str]) -> list[str]:
        """The classes a run's masks hold, in pixel-value order, for a competition's ``classes``."""
        return ["background", *classes] if self.mask_background else list(classes)


def resolve(path: str):
    """The module named ``path``, or the attribute ``name`` of the module for ``module:name``."""
    module, _, attribute = path.partition(":")
    found = importlib.import_module(module)
    return getattr(found, attribute) if attribute else found


TASKS: Registry[TaskSpec] = Registry("task")


def register(spec: TaskSpec) -> TaskSpec:
    """Adds ``spec`` under its contract's task name."""
    return TASKS.register(spec.name, spec)


register(TaskSpec(ClassificationCompetition,
                  {"finetune": "kagglekit.pipelines.finetuning", "head": "kagglekit.pipelines.classification"},
                  blend="kagglekit.pipelines.blend", predictor="kagglekit.serving.predictor:ClassifierPredictor",
                  labels="single"))
register(TaskSpec(MultiLabelClassificationCompetition, {"head": "kagglekit.pipelines.multilabel_classification"},
                  blend="kagglekit.pipelines.blend", predictor="kagglekit.serving.predictor:LabelPredictor",
                  labels="multi"))
register(TaskSpec(SegmentationCompetition, {"head": "kagglekit.pipelines.segmentation"},
                  blend="kagglekit.pipelines.blend_segmentation",
                  predictor="kagglekit.serving.predictor:SegmenterPredictor", labels=None, masks=True))
register(TaskSpec(MultiLabelSegmentationCompetition, {"head": "kagglekit.pipelines.multilabel_segmentation"},
                  blend="kagglekit.pipelines.blend_multilabel_segmentation",
                  predictor="kagglekit.serving.predictor:SegmenterPredictor", labels="multi", masks=True,
                  mask_background=True))
