"""Multi-label classification head: the shared head with sigmoid outputs, BCE or focal loss, per-class weights."""

from __future__ import annotations

import numpy as np

from kagglekit.learners.head import HeadClassifier, build_head
from kagglekit.models.losses import MultiLabelLoss


class MultiLabelHead(HeadClassifier):
    """The shared head with sigmoid outputs, trained on 0/1 label matrices with BCE or focal loss."""

    def __init__(self, input_dim, n_classes, config, seed, workdir, pos_weight=None, gamma: float = 0.0):
        super().__init__(input_dim, n_classes, config, seed, workdir)
        self.pos_weight, self.gamma = pos_weight, gamma

    def build(self):
        return build_head(self.input_dim, self.n_classes, self.config.head_dropout, activation="sigmoid")

    def loss(self):
        return MultiLabelLoss(self.pos_weight, self.gamma)

    def metrics(self) -> list:
        return ["binary_accuracy"]

    def targets(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float32)
