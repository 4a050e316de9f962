"""Adversarial robustness: FGSM and PGD perturbations within an L-infinity ball, for classifiers and segmenters.

FGSM (Goodfellow et al., 2015) moves every pixel by ``eps`` in the direction that raises the loss;
PGD (Madry et al., 2018) takes ``steps`` smaller such steps, projecting back into the ``eps`` ball
(and the valid pixel range) after each. Untargeted attacks raise the loss of the true label; targeted
ones lower the loss of a chosen wrong label. Pixels are in [0, 255], as the run's models take them, and
so is ``eps``. The loss is the mean cross-entropy over images (and, for a segmenter, over non-void
pixels); its gradient comes from ``models.gradients`` (the only backend-specific step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from kagglekit.core.errors import ConfigError
from kagglekit.models.gradients import gradient


def cross_entropy(model: keras.Model, targets: np.ndarray, n_classes: int, void: int | None = None):
    """x -> mean cross-entropy of ``model(x)`` against ``targets`` (class indices per image, or per
    pixel for a segmenter; ``void`` pixels left out)."""
    onehot = np.eye(n_classes, dtype=np.float32)[np.where(targets == void, 0, targets) if void is not None else targets]
    weight = np.ones(targets.shape, np.float32) if void is None else (targets != void).astype(np.float32)
    onehot, weight = keras.ops.convert_to_tensor(onehot), keras.ops.convert_to_tensor(weight)

    def loss(x):
        p = keras.ops.clip(model(x, training=False), 1e-7, 1.0)
        per_item = -keras.ops.sum(onehot * keras.ops.log(p), axis=-1)
        return keras.ops.sum(per_item * weight) / keras.ops.maximum(keras.ops.sum(weight), 1.0)

    return loss


def attack(model: keras.Model, images: np.ndarray, targets: np.ndarray, eps: float, method: str = "fgsm",
           targeted: bool = False, steps: int = 10, void: int | None = None) -> np.ndarray:
    """Perturbed copies of ``images`` ((n, H, W, 3) float32 in [0, 255]), each pixel within ``eps`` of
    the original. ``targets``: the true labels (untargeted) or the labels to steer towards (targeted)."""
    images = np.asarray(images, dtype=np.float32)
    if eps <= 0:
        return images.copy()
    n_classes = int(np.asarray(model.predict(images[:1], verbose=0)).shape[-1])
    loss = cross_entropy(model, np.asarray(targets), n_classes, void)
    direction = -1.0 if targeted else 1.0
    if method == "fgsm":
        return np.clip(images + direction * eps * np.sign(gradient(loss, images)), 0, 255)
    if method != "pgd":
        raise ValueError(f"unknown attack {method!r}; use fgsm or pgd")
    step = 2.5 * eps / steps  # Madry et al.'s step: the ball can be crossed within the steps
    x = images.copy()
    for _ in range(steps):
        x = x + direction * step * np.sign(gradient(loss, x))
        x = np.clip(np.clip(x, images - eps, images + eps), 0, 255)
    return x


@dataclass
class AttackSet:
    """What a run is attacked on: a model it did not train on these images, the images (float32 pixels
    at the model's input size) and their true labels (per image, or per pixel), and how to score."""

    model: keras.Model
    ids: list[str]
    images: np.ndarray
    truth: np.ndarray
    classes: list[str]
    void: int | None = None

    @property
    def dense(self) -> bool:
        return self.truth.ndim == 3

    def score(self, images: np.ndarray) -> dict[str, float]:
        """Accuracy (of images, or of non-void pixels) and, for a segmenter, mIoU."""
        predicted = np.asarray(self.model.predict(images, verbose=0)).argmax(-1)
        if not self.dense:
            return {"accuracy": float((predicted == self.truth).mean())}
        from kagglekit.evaluation.segmentation import ConfusionMatrix

        confusion = ConfusionMatrix(len(self.classes), self.void)
        for truth, pred in zip(self.truth, predicted):
            confusion.update(truth, pred)
        return {"accuracy": confusion.pixel_accuracy(), "miou": confusion.miou()}

    def likeliest_wrong(self) -> np.ndarray:
        """Each image's likeliest wrong class (a targeted attack's default goal); per pixel for a segmenter."""
        proba = np.asarray(self.model.predict(self.images, verbose=0))
        truth = np.where(self.truth == self.void, 0, self.truth) if self.void is not None else self.truth
        proba = proba.copy()
        np.put_along_axis(proba, truth[..., None], -1.0, axis=-1)
        return proba.argmax(-1)


def attack_set(run_dir: Path, count: int, weights_dir: str | None = None) -> AttackSet:
    """The images a run can be attacked on honestly: for a fine-tuned classification run, its first
    scored fold's out-of-fold images with that fold's network; for a segmentation run, its held-out
    drive with its segmenter."""
    from kagglekit.pipelines import finetuning
    from kagglekit.pipelines.rebuild import load_run_config, run_competition

    config = load_run_config(run_dir, weights_dir=weights_dir)
    competition = run_competition(run_dir)
    data = Path(config.data or "")
    if not data.is_dir():
        raise ConfigError(f"the run's data folder {data} is gone: its held-out images are what is attacked")
    competition = competition.resolve(data)
    if competition.task == "classification":
        finetuning.require_networks(run_dir, config, competition.task, "attacks need a network trained end to end")
        folds = json.loads((run_dir / "folds.json").read_text())
        held = [i for i, fold in zip(folds["ids"], folds["fold_of"]) if fold == 0][:count]
        train = competition.load_train(data)
        where = {id_: k for k, id_ in enumerate(train.ids)}
        from kagglekit.data.streams import decode_images

        paths = [train.paths[where[i]] for i in held]
        network = finetuning.network(config, run_dir, "fold0", len(competition.classes)).load()
        return AttackSet(network.model, held, decode_images(paths, config.image_size, "attack").astype(np.float32),
                         np.array([train.labels[where[i]] for i in held]), list(competition.classes))
    if competition.task == "segmentation":
        from kagglekit.learners.segmenter import load_resized, saved_segmenters

        train = competition.load_train(data)
        where = {id_: k for k, id_ in enumerate(train.ids)}
        held = json.loads((run_dir / "data_report.json").read_text())["valid_ids"][:count]
        (segmenter,) = saved_segmenters(len(competition.classes), competition.void_label, config, run_dir / "segmenter")
        images = load_resized([train.paths[where[i]] for i in held], segmenter.size).astype(np.float32)
        masks = load_resized([train.masks[where[i]] for i in held], segmenter.size, masks=True).astype(np.int64)
        return AttackSet(segmenter.model, held, images, masks, list(competition.classes), competition.void_label)
    raise ConfigError(f"{run_dir}: attacks cover classification (fine-tuned) and segmentation runs, not {competition.task}")


def robustness(target: AttackSet, methods: list[str], eps_values: list[float], targeted: bool,
               steps: int = 10) -> tuple[pd.DataFrame, dict]:
    """Scores against eps for each method (a row per method and eps) and, per method, the perturbed
    images at the largest eps (for the examples picture)."""
    goal = target.likeliest_wrong() if targeted else target.truth
    rows, examples = [], {}
    for method in methods:
        for eps in eps_values:
            perturbed = attack(target.model, target.images, goal, eps, method, targeted, steps, target.void)
            scores = target.score(perturbed)
            if targeted:
                predicted = np.asarray(target.model.predict(perturbed, verbose=0)).argmax(-1)
                valid = np.ones(goal.shape, bool) if target.void is None else target.truth != target.void
                scores["target_hit_rate"] = float((predicted == goal)[valid].mean())
            rows.append({"method": method, "targeted": targeted, "eps": eps, **scores,
                         "max_abs_perturbation": float(np.abs(perturbed - target.images).max())})
            examples[method] = perturbed
    return pd.DataFrame(rows), examples
