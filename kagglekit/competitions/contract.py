"""What a competition is: one typed contract per task, and the image tables adapters return.

An adapter *declares* a competition (files, labels, metric, submission format); everything that says
*how* (loading, training, CV, writing the submission) lives in the shared parts and is picked by the
adapter's ``task``. Each task has its own contract with exactly one ``submission_frame`` signature, so a
pipeline knows what it may call. Adapters are immutable: everything a check needs (the test images'
sizes included) is passed in, never left on an adapter by an earlier call.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Mapping

import numpy as np
import pandas as pd

from kagglekit.core.errors import ConfigError, DataError
from kagglekit.data.masks import image_size
from kagglekit.evaluation.metrics import METRICS, aligned_rows
from kagglekit.submission.rle import RLEFormat
from kagglekit.submission.validator import ValidationReport, validate_submission

#: (height, width) of each test image, by image id: what per-image RLE bounds are checked against.
ImageSizes = Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class ImageTable:
    """Images of one split: submission ids, where each image lives, and labels if known."""

    ids: list[str]
    paths: list[Path]
    labels: np.ndarray | None = None  # (n,) class indices, or (n, k) 0/1 for multi-label
    masks: list[Path] | None = None  # per-image label maps, for segmentation

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index) -> "ImageTable":
        index = np.asarray(index, dtype=np.int64)
        return ImageTable(
            ids=[self.ids[i] for i in index],
            paths=[self.paths[i] for i in index],
            labels=None if self.labels is None else self.labels[index],
            masks=None if self.masks is None else [self.masks[i] for i in index],
        )

    def image_sizes(self) -> dict[str, tuple[int, int]]:
        """(height, width) per id, read from each file's header only."""
        return {id_: image_size(path) for id_, path in zip(self.ids, self.paths)}


class Competition(ABC):
    """What every competition declares, whatever its task. Subclass one of the task contracts below."""

    name: str  # registry name, as typed on the command line
    slug: str  # Kaggle's competition slug, as used by the Kaggle API
    title: str
    task: ClassVar[str]  # which shared pipeline runs it
    metric: str  # a name in kagglekit.evaluation.metrics.METRICS
    id_column: str
    sample_submission: str = "sample_submission.csv"
    #: Run-config defaults for this competition (merged under the user's config file and flags).
    run_defaults: Mapping = {}
    #: Whether ``check_cell`` needs the test images' sizes (RLE bounds): validators read them only then.
    needs_image_sizes: ClassVar[bool] = False

    @property
    @abstractmethod
    def classes(self) -> list[str]:
        """The label vocabulary, in the order models predict it."""

    def resolve(self, data_dir: Path) -> "Competition":
        """This competition with everything the data decides filled in (e.g. classes found in the train
        folder). Commands call it once; adapters that declare everything return themselves."""
        return self

    @abstractmethod
    def load_train(self, data_dir: Path) -> ImageTable:
        """Labelled training images. Raise DataError naming the file or folder at fault."""

    @abstractmethod
    def load_test(self, data_dir: Path) -> ImageTable:
        """Unlabelled test images, with the ids the submission uses, in the sample submission's order."""

    @abstractmethod
    def check_cell(self, row_id: str, column: str, value: str, sizes: ImageSizes | None = None) -> str | None:
        """Why ``value`` is not allowed in ``column`` of row ``row_id``, or None if it is fine. ``sizes``
        are the test images' (height, width) by image id, for checks that depend on them."""

    @property
    @abstractmethod
    def value_column(self) -> str:
        """The submission column the metric scores."""

    def metric_options(self) -> dict:
        """Keyword arguments the competition's metric needs besides the two columns (e.g. an RLE format)."""
        return {}

    def score(self, solution: pd.DataFrame, submission: pd.DataFrame) -> float:
        """Kaggle-style scoring of a submission against the hidden solution, row by row id."""
        truth, predicted = aligned_rows(solution, submission, self.id_column, self.value_column, self.name)
        return METRICS.get(self.metric)(truth, predicted, **self.metric_options())

    def groups(self, ids: list[str]) -> np.ndarray:
        """Fold group of each training image: related images (frames of one video) share one, so a
        validation split never holds a near-copy of a training image. By default each is its own."""
        return np.arange(len(ids))

    def sample_submission_path(self, data_dir: Path) -> Path:
        path = Path(data_dir) / self.sample_submission
        if not path.is_file():
            raise DataError(f"{path}: sample submission not found; the competition folder needs it")
        return path

    def test_image_sizes(self, data_dir: Path) -> ImageSizes | None:
        """The sizes ``check_cell`` needs, read from the test images (None when it needs none)."""
        return self.load_test(data_dir).image_sizes() if self.needs_image_sizes else None

    def validate(self, path: Path, data_dir: Path) -> ValidationReport:
        """Check a submission file exactly as a run checks its own: against the sample submission and,
        for RLE cells, against each test image's real size."""
        return validate_submission(self, path, self.sample_submission_path(data_dir), self.test_image_sizes(data_dir))

    def describe(self) -> str:
        return f"{self.title} ({self.slug}): task {self.task}, metric {self.metric}"


@dataclass(frozen=True)
class Named:
    """The identity every configured (dataclass) competition starts with, in this order."""

    name: str
    slug: str
    title: str


class ClassesFromData:
    """For dataclass adapters whose classes may be left undeclared: ``resolve`` reads them from the data
    (a frozen copy), and asking for them before is an error that says so."""

    declared_classes: list[str] | None
    classes_source: ClassVar[str]  # where undeclared classes come from, for messages

    def _freeze_classes(self) -> None:
        if self.declared_classes is not None:
            object.__setattr__(self, "declared_classes", list(self.declared_classes))

    @property
    def classes(self) -> list[str]:
        if self.declared_classes is None:
            raise ConfigError(f"{self.name}: its classes are {self.classes_source}; resolve it with the "
                              "competition folder first")
        return list(self.declared_classes)

    def resolve(self, data_dir: Path):
        if self.declared_classes is not None:
            return self
        return dataclasses.replace(self, declared_classes=self.discover_classes(Path(data_dir)))

    @abstractmethod
    def discover_classes(self, data_dir: Path) -> list[str]:
        """The classes the data holds, in the order models predict them."""


class ClassificationCompetition(Competition):
    """One label per image, one submission row per test image."""

    task: ClassVar[str] = "classification"

    @abstractmethod
    def submission_frame(self, ids: list[str], predicted: np.ndarray) -> pd.DataFrame:
        """The submission for test ``ids`` given their predicted class indices."""


class MultiLabelClassificationCompetition(Competition):
    """A set of labels per image (a 0/1 vector, possibly all 0), one submission row per test image."""

    task: ClassVar[str] = "multilabel-classification"

    @abstractmethod
    def label_cells(self, labels: np.ndarray) -> list[str]:
        """Each (classes,) 0/1 row as the submission cell that holds it (what the metric scores)."""

    @abstractmethod
    def submission_frame(self, ids: list[str], labels: np.ndarray) -> pd.DataFrame:
        """The submission for test ``ids`` given their 0/1 label vectors."""


class RLEMasksCompetition(Competition):
    """Masks submitted run-length encoded: checked against each test image's size, scored by RLE Dice."""

    needs_image_sizes: ClassVar[bool] = True
    rle_format: RLEFormat
    void_label: int | None = None  # label-map value ignored by losses and metrics

    def metric_options(self) -> dict:
        return {"fmt": self.rle_format}


class SegmentationCompetition(RLEMasksCompetition):
    """A label map per image, submitted as run-length-encoded masks."""

    task: ClassVar[str] = "segmentation"

    @abstractmethod
    def submission_frame(self, ids: list[str], label_maps: Iterable[np.ndarray]) -> pd.DataFrame:
        """The submission for test ``ids`` given one label map per image at its original size, encoded one
        at a time as ``label_maps`` yields them (a generator: only the rows are kept, never every map)."""


class MultiLabelSegmentationCompetition(RLEMasksCompetition):
    """Several labels per image (a 0/1 vector) and a label map per image (the PASCAL VOC course)."""

    task: ClassVar[str] = "multilabel-segmentation"

    @abstractmethod
    def submission_frame(self, ids: list[str], labels: np.ndarray, label_maps: Iterable[np.ndarray]) -> pd.DataFrame:
        """The submission for test ``ids`` given their 0/1 label vectors and label maps (original size; encoded
        one at a time as ``label_maps`` yields them)."""
