"""A finished classification run, loaded once, that predicts any images: files, or decoded uploads.

The backbones and every fold's models are built once; each call runs the run's own prediction path
(``pipelines.classification``: the same extractors, float16 features, fold ensemble and TTA views,
only without the on-disk feature cache, which is keyed by image content and pointless for uploads; or
``pipelines.finetuning``: the saved fine-tuned networks and TTA views).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from kagglekit.core.errors import ConfigError
from kagglekit.data.loaders import image_batches, resized_batch
from kagglekit.data.streams import to_uint8
from kagglekit.pipelines.classification import (
    ensemble_proba,
    input_extractors,
    load_fold_models,
)
from kagglekit.pipelines import finetuning, resolve_learner
from kagglekit.pipelines.inputs import require_readable
from kagglekit.pipelines.rebuild import load_run_config, run_competition

BATCH = 32  # images per backbone call: bounds memory for any number of files


def read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the run's {what} ({exc}); is the run finished?") from None


class RunPredictor:
    """Class probabilities for RGB images from a run directory's saved fold models.

    Safe to share between threads: model calls are serialised by a lock (TensorFlow runs each call on
    all cores anyway); decoding and resizing happen outside it, in the caller's thread.
    """

    def __init__(self, run_dir: Path, weights_dir: str | None = None):
        self.run_dir = Path(run_dir)
        self.config = load_run_config(self.run_dir, weights_dir=weights_dir)
        self.competition = run_competition(self.run_dir)
        if self.competition.task != "classification":
            raise ConfigError(f"{self.run_dir}: a {self.competition.task} run; predicting arbitrary images, "
                              "serving and exporting work for classification runs only (so far)")
        self.classes: list[str] = read_json(self.run_dir / "classes.json", "classes")
        if resolve_learner(self.competition.task, self.config.train.learner) == "finetune":
            self.networks, self.extractors = finetuning.predictors(self.config, self.run_dir, len(self.classes)), []
        else:
            self.networks, self.extractors = [], input_extractors(self.config)
            feature_dim = sum(int(e.model.output.shape[-1]) for e in self.extractors[0])
            self.folds = load_fold_models(self.config, self.run_dir, feature_dim, len(self.classes))
        self._lock = threading.Lock()

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(n, classes) probabilities for (n, S, S, 3) float32 RGB in [0, 255] at the run's image size."""
        with self._lock:
            if self.networks:  # fine-tuned networks see the pixels themselves, as bytes (like the run)
                pixels = to_uint8(batch)
                return np.mean([m.predict_proba(pixels, self.config.tta) for m in self.networks], axis=0).astype(np.float32)
            inputs = [np.concatenate([np.stack([e.features(view, batch) for view in self.config.tta])
                                      for e in group], axis=-1)
                      for group in self.extractors]
            return ensemble_proba(self.folds, inputs).astype(np.float32)

    def predict_images(self, images: list[np.ndarray]) -> np.ndarray:
        """(n, classes) probabilities for decoded (H, W, 3) uint8 images of any sizes."""
        if not images:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return np.concatenate([self.predict_batch(resized_batch(images[i:i + BATCH], self.image_size))
                               for i in range(0, len(images), BATCH)])

    def predict_files(self, paths: list[Path]) -> np.ndarray:
        """(n, classes) probabilities for image files; DataError naming every one that cannot be read."""
        require_readable(paths, "image(s)")
        batches = [self.predict_batch(b) for b in image_batches(paths, self.image_size, BATCH)]
        return np.concatenate(batches) if batches else np.zeros((0, len(self.classes)), dtype=np.float32)

    def metadata(self) -> dict:
        """What a client needs to trust and use the model: competition, classes, input, CV, provenance."""
        metrics = read_json(self.run_dir / "metrics.json", "metrics")
        provenance = self.run_dir / "provenance.json"
        config = self.config
        return {
            "run": self.run_dir.name, "competition": self.competition.name, "task": self.competition.task,
            "classes": self.classes, "image_size": config.image_size, "backbones": list(config.backbones),
            "folds": config.folds, "tta": list(config.tta),
            "cv": {key: metrics.get(key) for key in ("metric", "cv_mean", "cv_std", "fold_scores")},
            "provenance": read_json(provenance, "provenance") if provenance.is_file() else None,
        }
