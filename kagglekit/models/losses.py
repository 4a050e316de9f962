"""Losses the shared heads and segmentation models train with, in backend-agnostic ``keras.ops``.

Keras' own losses do the cross-entropy; what is written here is only what Keras lacks:

- single-label: balanced class weights (``balanced_class_weights``), passed to Keras' ``class_weight``;
- multi-label: binary cross-entropy or focal loss on sigmoid outputs, with a weight per class for
  its positives (rare labels would otherwise be learnt as "always 0");
- segmentation: sparse cross-entropy + soft Dice on softmax outputs, with the void label (VOC 255,
  CamVid 11) left out of both.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops
from sklearn.utils.class_weight import compute_class_weight


def balanced_class_weights(labels: np.ndarray) -> dict[int, float]:
    """Keras ``class_weight`` of single-label training: scikit-learn's "balanced", n / (k x count), over
    the k classes present (an absent class has no example to weigh). The weights of the n examples sum
    to n, so the weighted loss is the mean over classes of each class's mean loss."""
    present = np.unique(labels)
    return dict(zip(present.tolist(), compute_class_weight("balanced", classes=present, y=labels).tolist()))


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
        loss = ops.binary_crossentropy(y_true, y_pred)  # per class, before Keras' losses average over classes
        if self.gamma:  # Keras' BinaryFocalCrossentropy averages over classes before a per-class weight could apply
            p_true = y_true * y_pred + (1 - y_true) * (1 - y_pred)
            loss = loss * ops.power(1 - p_true, self.gamma)
        if self.pos_weight is not None:  # Keras has no per-class positive weight (its alpha is one for all classes)
            weight = ops.convert_to_tensor(self.pos_weight, y_pred.dtype)
            loss = loss * (1 + (weight - 1) * y_true)
        return ops.mean(loss, axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight, "gamma": self.gamma}


@keras.saving.register_keras_serializable("kagglekit")
class SegmentationLoss(keras.losses.Loss):
    """Per image: sparse cross-entropy + ``dice_weight`` x (1 - soft Dice over classes), each over the
    pixels labelled with a class (void, and any value that is no class, count for nothing).

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
        is_class = ops.logical_and(ops.greater_equal(y_true, 0), ops.less(y_true, self.n_classes))
        if self.void_label is not None:
            is_class = ops.logical_and(is_class, ops.not_equal(y_true, self.void_label))
        # the void label, and any value that is no class, become one label the cross-entropy ignores
        per_pixel = keras.losses.sparse_categorical_crossentropy(
            ops.where(is_class, y_true, self.n_classes), y_pred, ignore_class=self.n_classes)
        valid = ops.cast(is_class, y_pred.dtype)
        cross_entropy = ops.sum(per_pixel, axis=(1, 2)) / ops.maximum(ops.sum(valid, axis=(1, 2)), 1.0)
        if not self.dice_weight:
            return cross_entropy
        # soft Dice per class, smoothed: keras.losses.dice has no ignored class and scores a class absent
        # from both the truth and the prediction 0 instead of 1
        labels = ops.where(is_class, y_true, ops.zeros_like(y_true))
        one_hot = ops.one_hot(labels, self.n_classes, dtype=y_pred.dtype) * valid[..., None]
        probs = y_pred * valid[..., None]
        overlap = ops.sum(probs * one_hot, axis=(1, 2))
        total = ops.sum(probs, axis=(1, 2)) + ops.sum(one_hot, axis=(1, 2))
        soft_dice = ops.mean((2 * overlap + 1.0) / (total + 1.0), axis=-1)
        return cross_entropy + self.dice_weight * (1 - soft_dice)

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes, "void_label": self.void_label,
                "dice_weight": self.dice_weight}
