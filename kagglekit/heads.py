"""A classification head on cached backbone features, with the callbacks a long run needs.

scikit-learn shaped (``fit`` / ``predict_proba``) so a fold loop reads like one; Keras inside so
the same code runs on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kagglekit.config import TrainConfig


def build_head(input_dim: int, n_classes: int, dropout: float, name: str = "head"):
    import keras

    inputs = keras.Input((input_dim,), name="features")
    x = keras.layers.Normalization(name="standardize")(inputs)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def fit_callbacks(cfg: TrainConfig, epochs: int, weights_path: Path, log_path: Path, desc: str) -> list:
    """Early stopping (best weights restored), LR on plateau, best checkpoint, CSV log, progress bar."""
    import keras

    from kagglekit.progress import EpochBar

    return [
        keras.callbacks.EarlyStopping("val_loss", patience=cfg.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.3, patience=max(2, cfg.patience // 3)),
        keras.callbacks.ModelCheckpoint(weights_path, "val_loss", save_best_only=True, save_weights_only=True),
        keras.callbacks.CSVLogger(log_path),
        EpochBar(epochs, desc=desc),
    ]


class HeadClassifier:
    """Standardize → dropout → softmax on frozen features (a regularised multinomial logistic regression)."""

    def __init__(self, input_dim: int, n_classes: int, config: TrainConfig, seed: int, workdir: Path):
        self.input_dim, self.n_classes, self.config, self.seed = input_dim, n_classes, config, seed
        self.workdir = Path(workdir)
        self.model = None
        self.history: dict[str, list[float]] = {}

    @property
    def weights_path(self) -> Path:
        return self.workdir / "head.weights.h5"

    def fit(self, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
            class_weight: dict[int, float] | None = None) -> "HeadClassifier":
        import keras

        keras.utils.set_random_seed(self.seed)
        cfg = self.config
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.model = build_head(self.input_dim, self.n_classes, cfg.head_dropout)
        self.model.get_layer("standardize").adapt(x.astype(np.float32))
        self.model.compile(
            optimizer=keras.optimizers.Adam(cfg.head_lr),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
            metrics=["accuracy"],
        )
        eye = np.eye(self.n_classes, dtype=np.float32)
        history = self.model.fit(
            x.astype(np.float32), eye[y], batch_size=cfg.batch_size, epochs=cfg.head_epochs,
            validation_data=(x_valid.astype(np.float32), eye[y_valid]), class_weight=class_weight,
            callbacks=fit_callbacks(cfg, cfg.head_epochs, self.weights_path, self.workdir / "log.csv", self.workdir.name),
            verbose=0, shuffle=True,
        )
        self.history = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        self.model.save_weights(self.weights_path)  # the restored best weights
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        import keras

        return keras.ops.convert_to_numpy(self.model(x.astype(np.float32), training=False))

    def load(self) -> "HeadClassifier":
        self.model = build_head(self.input_dim, self.n_classes, self.config.head_dropout)
        self.model.load_weights(self.weights_path)
        return self
