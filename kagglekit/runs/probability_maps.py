"""Per-image class-probability maps a segmentation run keeps so that ``kagglekit blend`` can combine runs.

A blend needs each member's probabilities, not its label maps (argmax throws away how sure it was), for
the images it scored (the hold-out) and the test images. They are kept at the model's input size, where
the run predicted them (the run itself resizes only the argmax to each image's size, and so does a blend),
as float16 in one compressed ``.npz`` per split with the ids and classes. Not uint8: a weak run's
softmax is nearly flat, and 1/255 steps tied the top two classes in a third of a 2-epoch CamVid run's
pixels, moving its hold-out Dice by 0.01; float16 keeps the argmax and the score.

Disk cost: 2 x height x width x classes bytes per image before compression (CamVid at the default
160 x 224 input, 11 classes: 788 kB; PASCAL VOC at 192 x 256, 21 classes with background: 2.1 MB),
about half that compressed for a weak run whose softmax is nearly flat (a 2-epoch CamVid run at 64 x 96:
135 kB raw, 67 kB saved), far less for a confident one, whose near-zero probabilities are saved as 0
(``compact``). A segmentation run keeps its hold-out and test images' maps; a PASCAL VOC run every
scored fold's images' (out of fold) and the test images'; a blend of either keeps the same files, its
scored images' maps each from a blend not fitted on them, so it can be blended again.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kagglekit.core.fileio import atomic_write_bytes

HOLDOUT_MAPS = "holdout_maps.npz"  # the images a segmentation run scored (its hold-out)
OOF_MAPS = "oof_maps.npz"  # a PASCAL VOC run's: every scored fold's images, each by its fold's segmenter
TEST_MAPS = "test_maps.npz"


FLOOR = 2 ** -8  # probabilities below this are kept as 0


def compact(proba: np.ndarray) -> np.ndarray:
    """float16, probabilities under ``FLOOR`` set to 0: no pixel's argmax changes (its top class holds at
    least 1/classes, above the floor up to 256 classes), and the long runs of zeros a confident model
    leaves compress to a fraction (a synthetic peaked 21-class softmax at 192 x 256: 83% of its raw size without the
    floor, 20% with it)."""
    proba = np.asarray(proba, dtype=np.float16)
    return np.where(proba < FLOOR, np.float16(0), proba)


def expand(maps: np.ndarray) -> np.ndarray:
    """float32 probabilities of saved float16 maps (what blends compute with)."""
    return np.asarray(maps, dtype=np.float32)


@dataclass
class ProbabilityMaps:
    """(n, height, width, classes) float16 probabilities of images ``ids``."""

    ids: list[str]
    classes: list[str]
    proba: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.proba.shape[1:3])

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, ids=np.array(self.ids), classes=np.array(self.classes), proba=self.proba)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> "ProbabilityMaps":
        with np.load(path) as saved:
            return cls([str(i) for i in saved["ids"]], [str(c) for c in saved["classes"]], saved["proba"])


class MapsCollector:
    """Collects chunks of float probabilities as they are predicted (``predict_label_maps``'s
    ``on_proba``), made float16 at once so memory holds two bytes per value."""

    def __init__(self):
        self.chunks: list[np.ndarray] = []

    def __call__(self, proba: np.ndarray) -> None:
        self.chunks.append(compact(proba))

    def maps(self, ids: list[str], classes: list[str]) -> ProbabilityMaps:
        return ProbabilityMaps(list(ids), list(classes), np.concatenate(self.chunks))
