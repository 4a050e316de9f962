"""Image competitions whose labels are in a CSV, every training image in one folder (Aerial Cactus,
Dog Breed, Planet: most Kaggle ones).

The CSV names each training image (its file name or stem) and gives its labels in one of two ways:
a label column (``id,label``; for a multi-label competition several labels in one cell, ``id,labels``
with ``"cat dog"``), or one 0/1 column per class (``label_columns``). ``LabelsCsvCompetition``
(``kind: labels-csv``) is single-label: one class per image; ``MultiLabelCsvCompetition``
(``kind: multilabel-csv``) is multi-label: a set of classes per image, submitted as one cell of
labels joined by ``separator``.

The test side (``test/*.img`` in the sample submission's order, one row per image) is exactly a
class-folder competition's, so it is delegated to one. ``kagglekit new`` writes these YAML files.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from kagglekit.competitions.class_folder import ClassFolderCompetition
from kagglekit.competitions.contract import (
    ClassesFromData,
    ClassificationCompetition,
    ImageSizes,
    ImageTable,
    MultiLabelClassificationCompetition,
    Named,
)
from kagglekit.core.errors import ConfigError, DataError, SubmissionError
from kagglekit.data.images import list_images, unique_ids, warn_ignored
from kagglekit.evaluation.metrics import METRICS
from kagglekit.submission.writer import read_csv_strings


@dataclass(frozen=True)
class LabelsCsv(Named, ClassesFromData):
    """Reading the labels CSV and finding its images: what both kinds share."""

    labels_csv: str = "train.csv"
    id_column: str = "id"  # the submission's; also the labels CSV's unless labels_id_column says otherwise
    label_column: str = "label"  # the submission's value column
    labels_id_column: str | None = None
    labels_label_column: str | None = None
    label_columns: list[str] | None = None  # one 0/1 column per class, instead of a label column
    declared_classes: list[str] | None = None  # None: the labels found in the CSV, sorted
    train_dir: str = "train"
    test_dir: str = "test"
    sample_submission: str = "sample_submission.csv"
    id_from: str = "name"  # an image's id is its file "name" or "stem" (in the labels CSV and the submission)
    run_defaults: dict = dataclasses.field(default_factory=dict)
    classes_source: ClassVar[str] = "the labels found in the labels CSV"

    def __post_init__(self):
        if self.label_columns is not None:
            object.__setattr__(self, "label_columns", list(self.label_columns))
            if not self.label_columns:
                raise ConfigError(f"{self.name}: label_columns is empty; list the CSV's 0/1 columns, one per class")
            if self.declared_classes is None:  # the columns are the classes
                object.__setattr__(self, "declared_classes", list(self.label_columns))
        self._freeze_classes()
        METRICS.get(self.metric)  # fail early on a typo
        _ = self._test_side  # id_from is checked now

    @cached_property
    def _test_side(self) -> ClassFolderCompetition:
        return ClassFolderCompetition(
            self.name, self.slug, self.title, id_column=self.id_column, label_column=self.label_column,
            metric="accuracy", declared_classes=self.declared_classes, test_dir=self.test_dir,
            sample_submission=self.sample_submission, id_from=self.id_from)

    def split_cell(self, cell: str) -> list[str]:
        """The labels of one label-column cell (one label, for a single-label competition)."""
        return [cell] if cell else []

    def discover_classes(self, data_dir: Path) -> list[str]:
        """Undeclared classes are the labels the CSV holds, sorted."""
        return sorted({label for labels in self._label_sets(data_dir)[1] for label in labels})

    def _label_sets(self, data_dir: Path) -> tuple[list[str], list[list[str]]]:
        """(ids, each image's labels) from the labels CSV, every row checked."""
        path = Path(data_dir) / self.labels_csv
        wanted = [self._id_key, *(self.label_columns or [self._label_key])]
        if not path.is_file():
            raise DataError(f"{path}: labels CSV not found (expected columns {', '.join(wanted)})")
        try:
            table = read_csv_strings(path)
        except SubmissionError as exc:  # the strict CSV reader is the submissions', but this is training data
            raise DataError(str(exc)) from None
        absent = [c for c in wanted if c not in table.columns]
        if absent:
            raise DataError(f"{path}: no column {', '.join(map(repr, absent))} (it has {list(table.columns)})")
        blank = table.index[table[self._id_key] == ""]
        if len(blank):
            raise DataError(f"{path}, line {int(blank[0]) + 2}: an empty id ({len(blank)} such row(s))")
        repeated = table[self._id_key][table[self._id_key].duplicated()]
        if len(repeated):
            raise DataError(f"{path}: id(s) {', '.join(repeated.head(3))} have more than one row")
        if self.label_columns is None:
            return table[self._id_key].tolist(), [self.split_cell(cell) for cell in table[self._label_key]]
        cells = table[self.label_columns]
        odd = cells.index[~cells.isin(["0", "1"]).all(axis=1)]
        if len(odd):
            row = cells.loc[odd[0]]
            column = next(c for c in self.label_columns if row[c] not in ("0", "1"))
            raise DataError(f"{path}, line {int(odd[0]) + 2}, column {column!r}: {row[column]!r} is not 0 or 1 "
                            f"({len(odd)} such row(s))")
        return table[self._id_key].tolist(), [[c for c, on in zip(self.label_columns, row) if on]
                                               for row in cells.to_numpy() == "1"]

    @property
    def _id_key(self) -> str:
        return self.labels_id_column or self.id_column

    @property
    def _label_key(self) -> str:
        return self.labels_label_column or self.label_column

    def _train_images(self, data_dir: Path, ids: list[str]) -> list[Path]:
        """The image of every id, from the train folder."""
        root = Path(data_dir) / self.train_dir
        scan = list_images(root, "train folder")
        warn_ignored([scan], root)
        by_id = dict(zip(unique_ids(scan.images, lambda p: p.name if self.id_from == "name" else p.stem), scan.images))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise DataError(f"{len(missing)} id(s) of {Path(data_dir) / self.labels_csv} have no image in {root} "
                            f"(e.g. {', '.join(missing[:3])}; an id is the image's file {self.id_from})")
        return [by_id[i] for i in ids]

    def _check_known(self, data_dir: Path, label_sets: list[list[str]]) -> dict[str, int]:
        """Each class's index; DataError naming labels that are not classes."""
        classes = self.classes
        unknown = sorted({label for labels in label_sets for label in labels} - set(classes))
        if unknown:
            raise DataError(f"{Path(data_dir) / self.labels_csv}: label(s) {', '.join(unknown[:5])} are not labels "
                            f"of {self.name}: {classes}")
        return {label: k for k, label in enumerate(classes)}

    def load_test(self, data_dir: Path) -> ImageTable:
        return self._test_side.load_test(data_dir)

    @property
    def value_column(self) -> str:
        return self.label_column


@dataclass(frozen=True)
class LabelsCsvCompetition(LabelsCsv, ClassificationCompetition):
    """One class per image: a label column, or 0/1 columns with exactly one 1 per row (one-hot)."""

    metric: str = "accuracy"

    def load_train(self, data_dir: Path) -> ImageTable:
        ids, label_sets = self._label_sets(data_dir)
        wrong = [k for k, labels in enumerate(label_sets) if len(labels) != 1]
        if wrong:
            what = "an empty label" if self.label_columns is None else "not exactly one 1 in the label columns"
            raise DataError(f"{Path(data_dir) / self.labels_csv}, line {wrong[0] + 2} (id {ids[wrong[0]]}): {what} "
                            f"({len(wrong)} such row(s)); a single-label competition needs one class per image")
        index = self._check_known(data_dir, label_sets)
        return ImageTable(ids, self._train_images(data_dir, ids),
                          np.asarray([index[labels[0]] for labels in label_sets], dtype=np.int64))

    def check_cell(self, row_id: str, column: str, value: str, sizes: ImageSizes | None = None) -> str | None:
        return self._test_side.check_cell(row_id, column, value, sizes)

    def submission_frame(self, ids: list[str], predicted: np.ndarray) -> pd.DataFrame:
        return self._test_side.submission_frame(ids, predicted)


@dataclass(frozen=True)
class MultiLabelCsvCompetition(LabelsCsv, MultiLabelClassificationCompetition):
    """A set of classes per image (possibly empty); submitted as the labels joined by ``separator``."""

    label_column: str = "labels"
    separator: str = " "  # between labels in a cell, in the labels CSV and in the submission
    metric: str = "mean_f1"

    def __post_init__(self):
        if not self.separator:
            raise ConfigError(f"{self.name}: separator is empty; labels in one cell need one, e.g. ' '")
        super().__post_init__()

    def metric_options(self) -> dict:
        return {"separator": self.separator} if self.metric in ("mean_f1", "mean_f2") else {}

    def split_cell(self, cell: str) -> list[str]:
        return [label for label in re.split(f"(?:{re.escape(self.separator)})+", cell.strip()) if label]

    def load_train(self, data_dir: Path) -> ImageTable:
        ids, label_sets = self._label_sets(data_dir)
        index = self._check_known(data_dir, label_sets)
        labels = np.zeros((len(ids), len(index)), dtype=np.int64)
        for row, names in enumerate(label_sets):
            labels[row, [index[n] for n in names]] = 1
        return ImageTable(ids, self._train_images(data_dir, ids), labels)

    def check_cell(self, row_id: str, column: str, value: str, sizes: ImageSizes | None = None) -> str | None:
        if column != self.label_column:
            return None
        unknown = [label for label in self.split_cell(value) if label not in self.classes]
        if unknown:
            return f"{', '.join(map(repr, unknown[:3]))} {'is not a label' if len(unknown) == 1 else 'are not labels'} of {self.name}"
        return None

    def label_cells(self, labels: np.ndarray) -> list[str]:
        """Each 0/1 label row as a submission cell: its classes joined by the separator."""
        classes = self.classes
        return [self.separator.join(c for c, on in zip(classes, row) if on) for row in np.asarray(labels)]

    def submission_frame(self, ids: list[str], labels: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({self.id_column: ids, self.label_column: self.label_cells(labels)})
