"""A finished run's image classifier as differentiable Keras graphs (RGB in [0, 255] -> probabilities):
what Grad-CAM and adversarial attacks take gradients through, for every kind of classification run.

A fine-tuned run saved a network per fold; a head-based run saved heads on frozen features, so its
graphs are composed from the backbones (from the registry, with their preprocessing) and the fitted
heads (``models.composition``). Single-label runs end in a softmax; multi-label runs (and the
classifier half of a multi-label + segmentation run such as PASCAL VOC) in per-class sigmoids, turned
into labels by the run's saved thresholds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError
from kagglekit.data.loaders import image_batches
from kagglekit.data.streams import decode_images
from kagglekit.learners.devices import resolve_devices
from kagglekit.learners.thresholds import ThresholdTuner
from kagglekit.models.backbones import cam_layer
from kagglekit.models.composition import features_cam, features_ensemble, network_cam, networks_ensemble
from kagglekit.pipelines import finetuning, resolve_learner
from kagglekit.pipelines.classification import feature_width, input_extractors, load_fold_models
from kagglekit.pipelines.multilabel_classification import load_label_heads, read_postprocess, saved_tuner
from kagglekit.pipelines.rebuild import load_run_config, run_competition
from kagglekit.runs.layout import RUN_FILES
from kagglekit.tasks import TASKS


@dataclass
class RunClassifier:
    """A run's classifier: its fitted models by member (``fold<k>``, or ``full`` for a refit), which of
    them predict the test set, and (head-based runs) the frozen extractors they read."""

    config: RunConfig
    classes: list[str]
    members: dict[str, list[keras.Model]]  # a fold's heads (+ top blocks), or its one fine-tuned network
    predicting: list[str]
    extractors: list[list[keras.Model]]  # per model input, the extractors concatenated; empty when fine-tuned
    layer: str  # where Grad-CAM looks: the first backbone's last feature map
    tuner: ThresholdTuner | None = None  # a multi-label run's thresholds

    @property
    def multilabel(self) -> bool:
        return self.tuner is not None

    def pixels(self, paths: list[Path]) -> np.ndarray:
        """(n, S, S, 3) float32 images resized as the run resized them (fine-tuned networks saw bytes)."""
        size = self.config.image_size
        if not self.extractors:
            return decode_images(paths, size, self.config.stream)
        return np.concatenate(list(image_batches(paths, size)) or [np.zeros((0, size, size, 3), np.float32)])

    def model(self, members: list[str] | None = None) -> keras.Model:
        """The ``members``' (default: the predicting ones') models over the run's TTA views, averaged:
        the run's own probabilities (a fold alone gives its out-of-fold ones)."""
        names = members or self.predicting
        missing = [n for n in names if n not in self.members]
        if missing:
            raise ConfigError(f"the run has no saved models for {', '.join(missing)} (it has {', '.join(self.members)})")
        size, views = self.config.image_size, self.config.tta
        if not self.extractors:
            return networks_ensemble(size, [m for n in names for m in self.members[n]], views, "classifier")
        return features_ensemble(size, self.extractors, [self.members[n] for n in names], views, "classifier")

    def cam_parts(self) -> list[tuple[keras.Model, keras.Model]]:
        """Grad-CAM's splits (image -> maps, [maps, image] -> probabilities) of the predicting models,
        identity view: one per fine-tuned network, one for the frozen backbone under every fold's heads."""
        if not self.extractors:
            return [network_cam(m, self.layer) for n in self.predicting for m in self.members[n]]
        return [features_cam(self.config.image_size, self.extractors, [self.members[n] for n in self.predicting],
                             self.layer)]

    def labels(self, proba: np.ndarray) -> np.ndarray:
        """Predicted classes (n,), or 0/1 label rows (n, classes) at the run's thresholds."""
        return self.tuner.predict(proba) if self.multilabel else np.asarray(proba).argmax(-1)


def load_classifier(run_dir: Path, weights_dir: str | None = None) -> RunClassifier:
    """The classifier of a finished run of any classifying task; ConfigError for other tasks."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir, weights_dir=weights_dir)
    task = TASKS.get(run_competition(run_dir).task)
    if not task.differentiable:
        classifying = [name for name, spec in TASKS.items() if spec.differentiable]
        raise ConfigError(f"{run_dir}: a {task.name} run has no image classifier; Grad-CAM explains classifiers "
                          f"({', '.join(classifying)} runs)")
    devices = resolve_devices(config.device)
    if task.labels == "single":
        classes = json.loads((run_dir / RUN_FILES.classes).read_text())
        if resolve_learner(task.name, config.train.learner) == "finetune":
            names = [f"fold{k}" for k in range(config.finetune.scored_folds)] + (["full"] if config.finetune.refit else [])
            members = {n: [finetuning.network(config, devices, run_dir, n, len(classes)).load().model] for n in names}
            predicting = ["full"] if config.finetune.refit else names[:config.finetune.scored_folds]
            first = members[names[0]][0]
            return RunClassifier(config, classes, members, predicting, [], cam_layer(config.backbones[0], first))
        groups = input_extractors(config, devices)
        folds = [[m.model for m in models]
                 for models in load_fold_models(config, devices, run_dir, feature_width(groups[0]), len(classes))]
        tuner = None
    else:
        classes = list(run_competition(run_dir).classes)
        groups = input_extractors(config, devices)
        folds = [[h.model] for h in load_label_heads(config, devices, run_dir, feature_width(groups[0]), len(classes))]
        tuner = saved_tuner(read_postprocess(run_dir))
    extractors = [[e.model for e in group] for group in groups]
    members = {f"fold{k}": models for k, models in enumerate(folds)}
    return RunClassifier(config, classes, members, list(members), extractors,
                         cam_layer(config.backbones[0], extractors[0][0]), tuner)
