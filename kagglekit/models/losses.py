"""Losses the shared heads and segmentation models train with, in backend-agnostic ``keras.ops``.

- multi-label: binary cross-entropy or focal loss on sigmoid outputs, with a weight per class for
  its positives (rare labels would otherwise be learnt as "always 0");
- segmentation: sparse cross-entropy + soft Dice on softmax outputs, with the void label (VOC 255,
  CamVid 11) left out of both.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

EPSILON = 1e-7


def positive_weights(labels: np.ndarray) -> np.ndarray:
    """Per-class weight of positives, sqrt(negatives / positives): softened inverse frequency."""
    positives = labels.sum(axis=0).astype(np.float64)
    negatives = len(labels) - positives
    return np.sqrt(np.maximum(negatives, 1) / np.maximum(positives, 1)).astype(np.float32)


@keras.saving.register_keras_serializable("kagglekit")
class MultiLabelLoss(keras.losses.Loss):
    """Mean over classes of (focal) binary cross-entropy; positives of class j weigh ``pos_weight[j]``."""

    def __init__(self, pos_weight=None, gamma: float = 0.0, name: str = "multilabel_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = None if pos_weight is None else [float(w) for w in pos_weight]
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, EPSILON, 1 - EPSILON)
        weight = 1.0 if self.pos_weight is None else ops.convert_to_tensor(self.pos_weight, y_pred.dtype)
        loss = -(weight * y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p))
        if self.gamma:
            p_true = y_true * p + (1 - y_true) * (1 - p)
            loss = loss * ops.power(1 - p_true, self.gamma)
        return ops.mean(loss, axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight, "gamma": self.gamma}


@keras.saving.register_keras_serializable("kagglekit")
class SegmentationLoss(keras.losses.Loss):
    """Sparse cross-entropy + ``dice_weight`` x (1 - soft Dice over classes); void pixels count for nothing.

    ``y_true``: (b, h, w) class indices; ``y_pred``: (b, h, w, classes) softmax probabilities.
    """

    def __init__(self, n_classes: int, void_label: int | None, dice_weight: float = 1.0,
                 name: str = "segmentation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.n_classes, self.void_label, self.dice_weight = int(n_classes), void_label, float(dice_weight)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == 4:  # (b, h, w, 1) as some loaders give it
            y_true = ops.squeeze(y_true, -1)
        valid = ops.ones_like(y_true, dtype=y_pred.dtype) if self.void_label is None else \
            ops.cast(ops.not_equal(y_true, self.void_label), y_pred.dtype)
        labels = ops.where(ops.cast(valid, "bool"), y_true, ops.zeros_like(y_true))
        one_hot = ops.one_hot(labels, self.n_classes, dtype=y_pred.dtype) * valid[..., None]
        p = ops.clip(y_pred, EPSILON, 1.0)
        pixels = ops.maximum(ops.sum(valid, axis=(1, 2)), 1.0)
        cross_entropy = -ops.sum(one_hot * ops.log(p), axis=(1, 2, 3)) / pixels
        if not self.dice_weight:
            return cross_entropy
        probs = y_pred * valid[..., None]
        overlap = ops.sum(probs * one_hot, axis=(1, 2))
        total = ops.sum(probs, axis=(1, 2)) + ops.sum(one_hot, axis=(1, 2))
        soft_dice = ops.mean((2 * overlap + 1.0) / (total + 1.0), axis=-1)
        return cross_entropy + self.dice_weight * (1 - soft_dice)

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes, "void_label": self.void_label,
                "dice_weight": self.dice_weight}
