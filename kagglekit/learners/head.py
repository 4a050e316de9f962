"""A softmax head on cached frozen features: a regularised multinomial logistic regression in Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kagglekit.learners.classifier import KerasClassifier
from kagglekit.learners.devices import ONE_DEVICE, Devices


def build_head(input_dim: int, n_classes: int, dropout: float, name: str = "head", activation: str = "softmax"):
    import keras

    inputs = keras.Input((input_dim,), name="features")
    x = keras.layers.Normalization(name="standardize")(inputs)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation=activation, dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


class HeadClassifier(KerasClassifier):
    """Standardize → dropout → softmax on frozen features (a regularised multinomial logistic regression)."""

    def __init__(self, input_dim: int, n_classes: int, workdir: Path, *, epochs: int = 60, learning_rate: float = 2e-3,
                 dropout: float = 0.3, optimizer: str = "adam", batch_size: int = 64, patience: int = 8,
                 label_smoothing: float = 0.1, seed: int = 0, devices: Devices = ONE_DEVICE):
        super().__init__(n_classes, workdir, epochs=epochs, learning_rate=learning_rate, optimizer=optimizer,
                         batch_size=batch_size, patience=patience, label_smoothing=label_smoothing, seed=seed,
                         devices=devices)
        self.input_dim, self.dropout = input_dim, dropout

    def build(self):
        return build_head(self.input_dim, self.n_classes, self.dropout)

    def prepare(self, x: np.ndarray) -> None:
        """Standardize with the training features' mean and variance, the variance floored at its median
        over features. A feature that is (nearly) constant on a small training set (a ReLU channel
        never active on it) would otherwise be divided by ~0: its weight never trains (its input is 0
        on every training image), and an image where it fires gets a huge, random logit."""
        layer = self.model.get_layer("standardize")
        layer.adapt(x.astype(np.float32))
        variance = np.asarray(layer.adapt_variance)
        layer.adapt_variance.assign(np.maximum(variance, np.median(variance)))  # saved with the weights
        layer.finalize_state()
