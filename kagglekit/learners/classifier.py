"""The shared Keras training loop of every classifier learner (scikit-learn shaped: ``fit`` / ``predict_proba`` / ``load``).

Keras inside, so the same code runs on the TensorFlow, JAX and PyTorch backends. Subclasses say which
network to build (``head.HeadClassifier``, ``top_blocks.TopBlocksClassifier``, ``multilabel_head.MultiLabelHead``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kagglekit.learners.devices import Devices
from kagglekit.learners.params import Params
from kagglekit.learners.usage import TrainingTime, epoch_timer


def fit_callbacks(patience: int, epochs: int, weights_path: Path, log_path: Path, desc: str) -> list:
    """Early stopping (best weights restored), LR on plateau, best checkpoint, CSV log, progress bar."""
    import keras

    from kagglekit.core.progress import epoch_bar

    return [
        keras.callbacks.EarlyStopping("val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.3, patience=max(2, patience // 3)),
        keras.callbacks.ModelCheckpoint(weights_path, "val_loss", save_best_only=True, save_weights_only=True),
        keras.callbacks.CSVLogger(log_path),
        epoch_bar(epochs, desc=desc),
    ]


class KerasClassifier(Params):
    """Label-smoothed cross-entropy with class weights, early-stopped on a validation fold; the network is
    built, compiled and loaded under ``devices.scope()``.

    Subclasses set ``stage`` (file names) and ``build()``, and keep their own constructor arguments; a
    different task changes ``loss()``, ``metrics()`` and ``targets()`` (multi-label: kagglekit.learners.thresholds).
    """

    stage = "head"

    def __init__(self, n_classes: int, workdir: Path, *, epochs: int, learning_rate: float, optimizer: str,
                 batch_size: int, patience: int, label_smoothing: float, seed: int, devices: Devices):
        self.n_classes, self.workdir = n_classes, Path(workdir)
        self.epochs, self.learning_rate, self.optimizer = epochs, learning_rate, optimizer
        self.batch_size, self.patience, self.label_smoothing = batch_size, patience, label_smoothing
        self.seed, self.devices = seed, devices
        self.model = None
        self.history: dict[str, list[float]] = {}
        self.time = TrainingTime()

    @property
    def weights_path(self) -> Path:
        return self.workdir / f"{self.stage}.weights.h5"

    def build(self):
        raise NotImplementedError

    def prepare(self, x: np.ndarray) -> None:
        """Fit data-dependent layers (e.g. standardisation) before training."""

    def fit(self, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
            class_weight: dict[int, float] | None = None):
        import keras

        from kagglekit.models.optimizers import make_optimizer

        keras.utils.set_random_seed(self.seed)
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.devices.scope():
            self.model = self.build()
            self.prepare(x)
            self.model.compile(
                optimizer=make_optimizer(self.optimizer, self.learning_rate),
                loss=self.loss(), metrics=self.metrics(),
            )
        callbacks = fit_callbacks(self.patience, self.epochs, self.weights_path,
                                  self.workdir / f"{self.stage}_log.csv", f"{self.workdir.name} {self.stage}")
        callbacks.append(epoch_timer(self.time, len(x)))
        history = self.model.fit(
            x.astype(np.float32), self.targets(y), batch_size=self.batch_size, epochs=self.epochs,
            validation_data=(x_valid.astype(np.float32), self.targets(y_valid)), class_weight=class_weight,
            callbacks=callbacks, verbose=0, shuffle=True,
        )
        self.history = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        self.model.save_weights(self.weights_path)  # the restored best weights
        return self

    def loss(self):
        import keras

        return keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing)

    def metrics(self) -> list:
        return ["accuracy"]

    def targets(self, y: np.ndarray) -> np.ndarray:
        return np.eye(self.n_classes, dtype=np.float32)[y]

    def predict_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, self.n_classes), np.float32)
        return self.devices.predict(self.model, x.astype(np.float32), batch_size)

    def load(self):
        with self.devices.scope():
            self.model = self.build()
            self.model.load_weights(self.weights_path)
        return self
