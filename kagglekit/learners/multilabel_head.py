"""Multi-label classification head: the shared head with sigmoid outputs, BCE or focal loss, per-class weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kagglekit.learners.devices import ONE_DEVICE, Devices
from kagglekit.learners.head import HeadClassifier, build_head
from kagglekit.models.losses import MultiLabelLoss


class MultiLabelHead(HeadClassifier):
    """The shared head with sigmoid outputs, trained on 0/1 label matrices with BCE or focal loss."""

    def __init__(self, input_dim: int, n_classes: int, workdir: Path, *, pos_weight: np.ndarray | None = None,
                 gamma: float = 0.0, epochs: int = 60, learning_rate: float = 2e-3, dropout: float = 0.3,
                 optimizer: str = "adam", batch_size: int = 64, patience: int = 8, label_smoothing: float = 0.1,
                 seed: int = 0, devices: Devices = ONE_DEVICE):
        super().__init__(input_dim, n_classes, workdir, epochs=epochs, learning_rate=learning_rate, dropout=dropout,
                         optimizer=optimizer, batch_size=batch_size, patience=patience,
                         label_smoothing=label_smoothing, seed=seed, devices=devices)
        self.pos_weight, self.gamma = pos_weight, gamma

    def build(self):
        return build_head(self.input_dim, self.n_classes, self.dropout, activation="sigmoid")

    def loss(self):
        return MultiLabelLoss(self.pos_weight, self.gamma)

    def metrics(self) -> list:
        return ["binary_accuracy"]

    def targets(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float32)
