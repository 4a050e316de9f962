"""Per-image class-probability maps a segmentation run keeps so that ``kagglekit blend`` can combine runs.

A blend needs each member's probabilities, not its label maps (argmax throws away how sure it was), for
the images it scored (the hold-out) and the test images. They are kept at the model's input size, where
the run predicted them (the run itself resizes only the argmax to each image's size, and so does a blend),
as float16, one ``.npz`` per split holding each image's map compressed on its own (a member per image,
named by its position in ``ids``) with the ids, classes and size. Not uint8: a weak run's
softmax is nearly flat, and 1/255 steps tied the top two classes in a third of a 2-epoch CamVid run's
pixels, moving its hold-out Dice by 0.01; float16 keeps the argmax and the score.

Disk cost: 2 x height x width x classes bytes per image before compression (CamVid at the default
160 x 224 input, 11 classes: 788 kB; PASCAL VOC at 192 x 256, 21 classes with background: 2.1 MB),
about half that compressed for a weak run whose softmax is nearly flat (a 2-epoch CamVid run at 64 x 96:
135 kB raw, 67 kB saved), far less for a confident one, whose near-zero probabilities are saved as 0
(``compact``). A segmentation run keeps its hold-out and test images' maps; a PASCAL VOC run every
scored fold's images' (out of fold) and the test images'; a blend of either keeps the same files, its
scored images' maps each from a blend not fitted on them, so it can be blended again.

A split is never held whole: a run writes each chunk's maps as it is predicted (``maps_writer``) and a blend
reads a chunk of images at a time (``ProbabilityMaps.rows``), so memory holds a chunk whatever the number
of images. Runs saved before (one ``proba`` array of every image in the ``.npz``) are still read, whole,
as they were then. The files are named in ``runs/layout.py``.
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from kagglekit.core.errors import DataError
from kagglekit.core.fileio import atomic_open

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


class ProbabilityMaps:
    """The saved (height, width, classes) float16 maps of images ``ids``, read ``rows`` at a time."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._saved = np.load(self.path, allow_pickle=False)
            self.ids = [str(i) for i in self._saved["ids"]]
            self.classes = [str(c) for c in self._saved["classes"]]
            # a run saved before maps were kept per image: one array of them all, read whole as then
            self._whole = self._saved["proba"] if "proba" in self._saved.files else None
            self.size = tuple(int(v) for v in (self._saved["size"] if self._whole is None else self._whole.shape[1:3]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.path}: not a readable probability maps file ({exc}); run the run again "
                            "(kagglekit run --resume RUN_DIR recomputes it from the saved models)") from None

    def rows(self, index: Sequence[int] | None = None) -> np.ndarray:
        """(len(index), height, width, classes) float16 maps of the images at positions ``index`` (None: every
        image, for a few images only)."""
        index = np.arange(len(self.ids)) if index is None else np.asarray(index, dtype=int)
        if self._whole is not None:
            return self._whole[index]
        out = np.empty((len(index), *self.size, len(self.classes)), dtype=np.float16)
        for k, i in enumerate(index):
            out[k] = self._saved[str(i)]
        return out


class MapsWriter:
    """Writes a split's maps into an open archive image by image: ``writer(proba)`` the next chunk of
    images in the order of ``ids`` (``predict_label_maps``' ``on_proba``), ``writer.put(rows, proba)``
    a chunk at positions ``rows``; each made float16 (``compact``) and compressed at once."""

    def __init__(self, archive: zipfile.ZipFile, count: int):
        self.archive, self.written, self.size = archive, np.zeros(count, dtype=bool), (0, 0)
        self.next = 0

    def __call__(self, proba: np.ndarray) -> None:
        self.put(range(self.next, self.next + len(proba)), proba)
        self.next += len(proba)

    def put(self, rows: Sequence[int], proba: np.ndarray) -> None:
        for row, maps in zip(rows, proba):
            self.member(str(row), compact(maps))
            self.written[row] = True
            self.size = maps.shape[:2]

    def member(self, name: str, array: np.ndarray) -> None:
        with self.archive.open(f"{name}.npy", "w", force_zip64=True) as handle:
            np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)


@contextlib.contextmanager
def maps_writer(path: Path, ids: list[str], classes: list[str]) -> Iterator[MapsWriter]:
    """A ``MapsWriter`` for images ``ids``; ``path`` appears, complete, when the block ends without error
    and every image was written."""
    with atomic_open(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        writer = MapsWriter(archive, len(ids))
        yield writer
        if not writer.written.all():
            raise ValueError(f"{path}: the maps of {int((~writer.written).sum())} of {len(ids)} images were not "
                             "written")
        for name, array in (("ids", np.array(ids)), ("classes", np.array(classes)), ("size", np.array(writer.size))):
            writer.member(name, array)


def save_maps(path: Path, ids: list[str], classes: list[str], proba: np.ndarray) -> None:
    """Every image's maps at once (a few images' only: a blend's nested maps are written chunk by chunk)."""
    with maps_writer(path, ids, classes) as writer:
        writer(proba)
