"""Fine-tune a backbone's top blocks at a low learning rate, on cached lower-block activations.

On a CPU, fine-tuning a whole network per fold is out of reach; but everything below the backbone's
``finetune_cut`` stays frozen, so its activations are computed once per image and view (and cached
like features). Only the top blocks and a new softmax layer train, with BatchNorm statistics kept
frozen (the usual transfer-learning practice: small batches would wreck them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kagglekit.config import TrainConfig
from kagglekit.errors import ConfigError
from kagglekit.heads import fit_callbacks


def top_blocks(backbone: str, image_size: int, weights_dir: str | None):
    """(cut layer name, Keras model from the cut activation to pooled features), pretrained."""
    import keras

    from kagglekit.models.backbones import get_backbone

    spec = get_backbone(backbone)
    if spec.finetune_cut is None:
        raise ConfigError(f"backbone {backbone} has no fine-tuning cut point; fine-tune another or set train.finetune: false")
    net = spec.build(image_size, weights_dir=weights_dir, pooling="avg")
    upper = keras.Model(net.get_layer(spec.finetune_cut).output, net.output, name=f"{backbone}_top")
    for layer in upper.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return spec.finetune_cut, upper


class TopBlocksClassifier:
    """Pretrained top blocks + dropout + softmax, trained on cut activations (scikit-learn shaped)."""

    def __init__(self, backbone: str, image_size: int, n_classes: int, config: TrainConfig, seed: int,
                 workdir: Path, weights_dir: str | None = None):
        self.backbone, self.image_size, self.n_classes = backbone, image_size, n_classes
        self.config, self.seed, self.workdir, self.weights_dir = config, seed, Path(workdir), weights_dir
        self.model = None
        self.history: dict[str, list[float]] = {}

    @property
    def weights_path(self) -> Path:
        return self.workdir / "finetune.weights.h5"

    def build(self):
        import keras

        _, upper = top_blocks(self.backbone, self.image_size, self.weights_dir)
        x = keras.layers.Dropout(self.config.head_dropout, name="finetune_dropout")(upper.output)
        outputs = keras.layers.Dense(self.n_classes, activation="softmax", name="finetune_classes")(x)
        self.model = keras.Model(upper.input, outputs, name="finetuned")
        return self.model

    def fit(self, x, y, x_valid, y_valid, class_weight=None) -> "TopBlocksClassifier":
        import keras

        keras.utils.set_random_seed(self.seed)
        cfg = self.config
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.build().compile(
            optimizer=keras.optimizers.Adam(cfg.finetune_lr),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
            metrics=["accuracy"],
        )
        eye = np.eye(self.n_classes, dtype=np.float32)
        history = self.model.fit(
            x.astype(np.float32), eye[y], batch_size=cfg.batch_size, epochs=cfg.finetune_epochs,
            validation_data=(x_valid.astype(np.float32), eye[y_valid]), class_weight=class_weight,
            callbacks=fit_callbacks(cfg, cfg.finetune_epochs, self.weights_path, self.workdir / "finetune_log.csv",
                                    f"{self.workdir.name} fine-tune"),
            verbose=0, shuffle=True,
        )
        self.history = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        self.model.save_weights(self.weights_path)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(x.astype(np.float32), batch_size=256, verbose=0))

    def load(self) -> "TopBlocksClassifier":
        self.build().load_weights(self.weights_path)
        return self
