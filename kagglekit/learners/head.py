"""A softmax head on cached frozen features: a regularised multinomial logistic regression in Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kagglekit.core.config import TrainConfig
from kagglekit.learners.classifier import KerasClassifier


def build_head(input_dim: int, n_classes: int, dropout: float, name: str = "head", activation: str = "softmax"):
    import keras

    inputs = keras.Input((input_dim,), name="features")
    x = keras.layers.Normalization(name="standardize")(inputs)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation=activation, name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


class HeadClassifier(KerasClassifier):
    """Standardize → dropout → softmax on frozen features (a regularised multinomial logistic regression)."""

    def __init__(self, input_dim: int, n_classes: int, config: TrainConfig, seed: int, workdir: Path):
        super().__init__(n_classes, config, seed, workdir)
        self.input_dim, self.learning_rate, self.epochs = input_dim, config.head_lr, config.head_epochs

    def build(self):
        return build_head(self.input_dim, self.n_classes, self.config.head_dropout)

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
