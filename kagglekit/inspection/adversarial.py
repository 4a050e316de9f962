"""Adversarial robustness: FGSM and PGD perturbations within an L-infinity ball, for classifiers
(single- and multi-label) and segmenters.

FGSM (Goodfellow et al., 2015) moves every pixel by ``eps`` in the direction that raises the loss;
PGD (Madry et al., 2018) takes ``steps`` smaller such steps, projecting back into the ``eps`` ball
(and the valid pixel range) after each. Untargeted attacks raise the loss of the true labels; targeted
ones lower the loss of chosen wrong ones. Pixels are in [0, 255], as the run's models take them, and
so is ``eps``. The loss is the mean cross-entropy over images (for a segmenter, over non-void pixels;
for a multi-label classifier, the binary cross-entropy of every label); its gradient comes from
``models.gradients`` (the only backend-specific step).

The models attacked are the run's own prediction path, TTA included: a fold's fine-tuned network, or
a head-based run's frozen backbone under that fold's fitted heads (``pipelines.differentiable``), on
that fold's held-out images; a segmenter on its held-out images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import pandas as pd

from kagglekit.core.errors import ConfigError
from kagglekit.core.progress import progress
from kagglekit.learners.thresholds import ThresholdTuner
from kagglekit.models.gradients import CompiledGradient
from kagglekit.runs.layout import RUN_FILES
from kagglekit.tasks import TASKS

#: Pixels attacked at a time (four 224 x 224 images): a gradient holds every activation of its batch (a head
#: run's composed Lite0 at 224 px: about 0.37 GB an image), so memory follows this, never ``--count``.
CHUNK_PIXELS = 4 * 224 * 224
SHOWN = 4  # images in the examples picture


def cross_entropy(model: keras.Model, n_classes: int, void: int | None = None):
    """(x, targets) -> mean cross-entropy of ``model(x)`` against ``targets`` (class indices per image, or per
    pixel for a segmenter; ``void`` pixels left out)."""

    def loss(x, targets):
        targets = keras.ops.cast(targets, "int32")
        if void is None:
            weight = keras.ops.ones(keras.ops.shape(targets), "float32")
        else:
            weight = keras.ops.cast(keras.ops.not_equal(targets, void), "float32")
            targets = keras.ops.where(keras.ops.equal(targets, void), 0, targets)
        p = keras.ops.clip(model(x, training=False), 1e-7, 1.0)
        per_item = -keras.ops.sum(keras.ops.one_hot(targets, n_classes) * keras.ops.log(p), axis=-1)
        return keras.ops.sum(per_item * weight) / keras.ops.maximum(keras.ops.sum(weight), 1.0)

    return loss


def binary_cross_entropy(model: keras.Model):
    """(x, targets) -> mean binary cross-entropy of a multi-label ``model(x)`` (per-class sigmoids) against 0/1
    ``targets``."""

    def loss(x, targets):
        y = keras.ops.cast(targets, "float32")
        p = keras.ops.clip(model(x, training=False), 1e-7, 1 - 1e-7)
        return -keras.ops.mean(y * keras.ops.log(p) + (1 - y) * keras.ops.log(1 - p))

    return loss


def loss_gradient(model: keras.Model, void: int | None = None, multilabel: bool = False) -> CompiledGradient:
    """(x, targets) -> the gradient of ``model``'s attack loss at ``x``, compiled once for every chunk and eps."""
    loss = binary_cross_entropy(model) if multilabel else cross_entropy(model, int(model.output_shape[-1]), void)
    return CompiledGradient(loss)


def attack(model: keras.Model, images: np.ndarray, targets: np.ndarray, eps: float, method: str = "fgsm",
           targeted: bool = False, steps: int = 10, void: int | None = None, multilabel: bool = False,
           grad: CompiledGradient | None = None) -> np.ndarray:
    """Perturbed copies of ``images`` ((n, H, W, 3) float32 in [0, 255]), each pixel within ``eps`` of
    the original. ``targets``: the true labels (untargeted) or the labels to steer towards (targeted):
    class indices (per image or per pixel), or 0/1 rows with ``multilabel``. ``grad``: the model's
    ``loss_gradient``, when many attacks share it."""
    images = np.asarray(images, dtype=np.float32)
    if eps <= 0:
        return images.copy()
    if method not in ("fgsm", "pgd"):
        raise ValueError(f"unknown attack {method!r}; use fgsm or pgd")
    grad = grad or loss_gradient(model, void, multilabel)
    targets = np.asarray(targets, dtype=np.float32 if multilabel else np.int32)
    direction = -1.0 if targeted else 1.0
    if method == "fgsm":
        return np.clip(images + direction * eps * np.sign(grad(images, targets)), 0, 255)
    step = 2.5 * eps / steps  # Madry et al.'s step: the ball can be crossed within the steps
    x = images.copy()
    for _ in range(steps):
        x = x + direction * step * np.sign(grad(x, targets))
        x = np.clip(np.clip(x, images - eps, images + eps), 0, 255)
    return x


@dataclass
class AttackSet:
    """What a run is attacked on: a model that did not train on these images, the images' ids, and
    ``load(rows)``: those rows' images (float32 pixels at the model's input size) and true labels: a class
    per image, a class per pixel (a segmenter, ``dense``; ``void`` pixels left out) or a 0/1 row per image
    (multi-label, labelled by ``tuner``). Images are loaded a chunk at a time, never all at once."""

    model: keras.Model
    ids: list[str]
    load: Callable[[list[int]], tuple[np.ndarray, np.ndarray]]
    classes: list[str]
    void: int | None = None
    tuner: ThresholdTuner | None = None
    dense: bool = False

    @property
    def multilabel(self) -> bool:
        return self.tuner is not None

    @property
    def metric(self) -> str:
        """The score the robustness curve follows."""
        return "miou" if self.dense else "mean_f1" if self.multilabel else "accuracy"

    def proba(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(images, verbose=0))

    def likeliest_wrong(self, proba: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """A targeted attack's goal, from the clean images' ``proba``: each image's (pixel's) likeliest wrong
        class; for a multi-label classifier, the true labels with the likeliest wrong one flipped (the label
        whose wrong state has the highest probability: p for an absent label, 1 - p for a present one)."""
        if self.multilabel:
            wrong = np.where(truth == 1, 1 - proba, proba).argmax(-1)
            goal = truth.copy()
            goal[np.arange(len(goal)), wrong] = 1 - goal[np.arange(len(goal)), wrong]
            return goal
        truth = np.where(truth == self.void, 0, truth) if self.void is not None else truth
        proba = proba.copy()
        np.put_along_axis(proba, truth[..., None], -1.0, axis=-1)
        return proba.argmax(-1)


class Tally:
    """A score summed chunk by chunk from counts alone: accuracy (of images, or of non-void pixels) and, for
    a segmenter, mIoU; for a multi-label classifier the mean per-image F1 of its labels at the run's
    thresholds; with a targeted attack's goals, how often the goal was reached (the goal class, or the
    flipped label's predicted state)."""

    def __init__(self, target: AttackSet):
        from kagglekit.evaluation.segmentation import ConfusionMatrix

        self.target = target
        self.confusion = ConfusionMatrix(len(target.classes), target.void)
        self.right = self.seen = self.hits = self.goals = 0.0

    def add(self, proba: np.ndarray, truth: np.ndarray, goal: np.ndarray | None = None) -> None:
        """One chunk's predicted ``proba``, its ``truth`` and (targeted) its ``goal``."""
        from kagglekit.evaluation.reports import label_dice

        target = self.target
        predicted = target.tuner.predict(proba) if target.multilabel else proba.argmax(-1)
        if target.dense:
            for true_map, predicted_map in zip(truth, predicted):
                self.confusion.update(true_map, predicted_map)
        else:
            right = label_dice(truth, predicted) if target.multilabel else predicted == truth
            self.right, self.seen = self.right + float(right.sum()), self.seen + len(truth)
        if goal is None:
            return
        if target.multilabel:
            counted = goal != truth  # the flipped label
        else:
            counted = np.ones(truth.shape, bool) if target.void is None else truth != target.void
        self.hits, self.goals = self.hits + float((predicted == goal)[counted].sum()), self.goals + float(counted.sum())

    def scores(self, targeted: bool) -> dict[str, float]:
        if self.target.dense:
            out = {"accuracy": self.confusion.pixel_accuracy(), "miou": self.confusion.miou()}
        else:
            out = {"mean_f1" if self.target.multilabel else "accuracy": self.right / max(self.seen, 1)}
        if targeted:
            out["target_hit_rate"] = self.hits / max(self.goals, 1)
        return out


def attack_sets(run_dir: Path, count: int, weights_dir: str | None = None) -> dict[str, AttackSet]:
    """The images a run can be attacked on honestly, by part: a classifier's (``labels``) first
    fold's held-out images with that fold's models; a segmenter's (``masks``) held-out images (a
    multi-label + segmentation run such as PASCAL VOC has both)."""
    from kagglekit.learners.devices import resolve_devices
    from kagglekit.pipelines import hyperparameters
    from kagglekit.pipelines.rebuild import load_run_config, run_competition

    config = load_run_config(run_dir, weights_dir=weights_dir)
    data = Path(config.data or "")
    if not data.is_dir():
        raise ConfigError(f"the run's data folder {data} is gone: its held-out images are what is attacked")
    competition = run_competition(run_dir).resolve(data)
    train = competition.load_train(data)
    where = {id_: k for k, id_ in enumerate(train.ids)}
    task, sets = TASKS.get(competition.task), {}
    if task.differentiable:
        from kagglekit.pipelines.differentiable import load_classifier

        folds = run_dir / RUN_FILES.folds_file
        if not folds.is_file():
            raise ConfigError(f"{run_dir}: no {RUN_FILES.folds_file} (a run from before attacks covered it); "
                              "run it again")
        assignment = json.loads(folds.read_text())
        rows = [where[i] for i, fold in zip(assignment["ids"], assignment["fold_of"]) if fold == 0][:count]
        classifier = load_classifier(run_dir, weights_dir)
        paths, labels = [train.paths[r] for r in rows], np.asarray(train.labels[rows])

        def load(chunk: list[int]) -> tuple[np.ndarray, np.ndarray]:
            return classifier.pixels([paths[i] for i in chunk]), labels[chunk]

        sets["labels"] = AttackSet(classifier.model(["fold0"]), [train.ids[r] for r in rows], load,
                                   classifier.classes, tuner=classifier.tuner)
    else:  # a segmentation run: its segmenter's own hold-out
        rows = [where[i] for i in json.loads((run_dir / RUN_FILES.data_report).read_text())["valid_ids"][:count]]
    if task.masks:
        from kagglekit.learners.segmenter import saved_segmenters

        classes = task.mask_classes(list(competition.classes))
        segmenters = saved_segmenters(run_dir / RUN_FILES.segmenter, len(classes), competition.void_label,
                                      devices=resolve_devices(config.device), **hyperparameters.segmenter(config))
        sets["masks"] = segmenter_set(segmenters[0], train, rows, classes, competition.void_label)
    return sets


def segmenter_set(segmenter, train, rows: list[int], classes: list[str], void: int | None) -> AttackSet:
    """A segmenter's attack set: the ``rows`` of ``train`` it never trained on, at its input size."""
    from kagglekit.learners.segmenter import load_resized

    paths, masks = [train.paths[r] for r in rows], [train.masks[r] for r in rows]

    def load(chunk: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return (load_resized([paths[i] for i in chunk], segmenter.input_size).astype(np.float32),
                load_resized([masks[i] for i in chunk], segmenter.input_size, masks=True).astype(np.int64))

    return AttackSet(segmenter.model, [train.ids[r] for r in rows], load, classes, void, dense=True)


def chunk_size(model: keras.Model) -> int:
    """Images of ``model``'s input size in ``CHUNK_PIXELS`` (at least one)."""
    height, width = model.input_shape[1:3]
    return max(1, CHUNK_PIXELS // (height * width))


def robustness(target: AttackSet, methods: list[str], eps_values: list[float], targeted: bool,
               steps: int = 10) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """Scores against eps for each method (a row per method and eps), the first ``SHOWN`` original images
    and, per method, their perturbed copies at the largest eps (for the examples picture). A ``chunk_size``
    of images is loaded and attacked at a time; only counts are kept between chunks."""
    runs = [(method, eps) for method in methods for eps in eps_values]
    tallies, moved = {run: Tally(target) for run in runs}, dict.fromkeys(runs, 0.0)
    originals, examples = [], {method: [] for method in methods}
    chunk, grad = chunk_size(target.model), loss_gradient(target.model, target.void, target.multilabel)
    with progress(len(target.ids), f"attack ({', '.join(methods)}, {len(eps_values)} eps)", unit="img") as bar:
        for start in range(0, len(target.ids), chunk):
            images, truth = target.load(list(range(start, min(start + chunk, len(target.ids)))))
            goal = target.likeliest_wrong(target.proba(images), truth) if targeted else truth
            shown = max(SHOWN - start, 0)
            originals.append(images[:shown])
            for method, eps in runs:
                perturbed = attack(target.model, images, goal, eps, method, targeted, steps, target.void,
                                   target.multilabel, grad)
                tallies[method, eps].add(target.proba(perturbed), truth, goal if targeted else None)
                moved[method, eps] = max(moved[method, eps], float(np.abs(perturbed - images).max()))
                if eps == max(eps_values):
                    examples[method].append(perturbed[:shown])
            bar.update(len(images))
    rows = [{"method": method, "targeted": targeted, "eps": eps, **tallies[method, eps].scores(targeted),
             "max_abs_perturbation": moved[method, eps]} for method, eps in runs]
    return (pd.DataFrame(rows), np.concatenate(originals),
            {method: np.concatenate(parts) for method, parts in examples.items()})
