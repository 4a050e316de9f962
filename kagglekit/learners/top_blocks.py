"""Fine-tune a backbone's top blocks at a low learning rate, on cached lower-block activations.

On a CPU, fine-tuning a whole network per fold is out of reach; but everything below the backbone's
``finetune_cut`` stays frozen, so its activations are computed once per image and view (and cached
like features). Only the top blocks and a new softmax layer train, with BatchNorm statistics kept
frozen (the usual transfer-learning practice: small batches would wreck them).
"""

from __future__ import annotations

from pathlib import Path

from kagglekit.core.errors import ConfigError
from kagglekit.learners.classifier import KerasClassifier
from kagglekit.learners.devices import ONE_DEVICE, Devices


def top_blocks(backbone: str, image_size: int, weights_dir: str | None):
    """The pretrained Keras model from the backbone's cut activation to its pooled features."""
    import keras

    from kagglekit.models.backbones import get_backbone

    spec = get_backbone(backbone)
    if spec.finetune_cut is None:
        raise ConfigError(f"backbone {backbone} has no fine-tuning cut point; fine-tune another or set train.top_blocks: false")
    net = spec.build(image_size, weights_dir=weights_dir, pooling="avg")
    upper = keras.Model(net.get_layer(spec.finetune_cut).output, net.output, name=f"{backbone}_top")
    for layer in upper.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return upper


class TopBlocksClassifier(KerasClassifier):
    """Pretrained top blocks + dropout + softmax, trained on cut activations at a low learning rate."""

    stage = "top_blocks"

    def __init__(self, backbone: str, image_size: int, n_classes: int, workdir: Path, *, epochs: int = 8,
                 learning_rate: float = 3e-4, dropout: float = 0.3, optimizer: str = "adam", batch_size: int = 64,
                 patience: int = 8, label_smoothing: float = 0.1, seed: int = 0, weights_dir: str | None = None,
                 devices: Devices = ONE_DEVICE):
        super().__init__(n_classes, workdir, epochs=epochs, learning_rate=learning_rate, optimizer=optimizer,
                         batch_size=batch_size, patience=patience, label_smoothing=label_smoothing, seed=seed,
                         devices=devices)
        self.backbone, self.image_size, self.weights_dir, self.dropout = backbone, image_size, weights_dir, dropout

    def build(self):
        import keras

        upper = top_blocks(self.backbone, self.image_size, self.weights_dir)
        x = keras.layers.Dropout(self.dropout, name="finetune_dropout")(upper.output)
        outputs = keras.layers.Dense(self.n_classes, activation="softmax", dtype="float32", name="finetune_classes")(x)
        return keras.Model(upper.input, outputs, name="finetuned")
