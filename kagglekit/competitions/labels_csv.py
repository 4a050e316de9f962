"""The single-label image competition whose labels are in a CSV: ``train.csv`` of ``id,label`` and every
training image in one folder (Aerial Cactus, Histopathologic Cancer, Dog Breed: most Kaggle ones).

The test side (``test/*.img`` in the sample submission's order, one ``id,label`` row per image) is
exactly a class-folder competition's, so it is delegated to one. A YAML file with ``kind: labels-csv``
defines a competition (``kagglekit new`` writes one).
"""

from __future__ import annotations

import dataclasses
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
    Named,
)
from kagglekit.core.errors import DataError
from kagglekit.data.images import list_images, unique_ids, warn_ignored
from kagglekit.submission.writer import read_csv_strings


@dataclass(frozen=True)
class LabelsCsvCompetition(Named, ClassesFromData, ClassificationCompetition):
    labels_csv: str = "train.csv"
    id_column: str = "id"  # the submission's; also the labels CSV's unless labels_id_column says otherwise
    label_column: str = "label"
    labels_id_column: str | None = None
    labels_label_column: str | None = None
    metric: str = "accuracy"
    declared_classes: list[str] | None = None  # None: the label column's values, sorted
    train_dir: str = "train"
    test_dir: str = "test"
    sample_submission: str = "sample_submission.csv"
    id_from: str = "name"  # an image's id is its file "name" or "stem" (in the labels CSV and the submission)
    run_defaults: dict = dataclasses.field(default_factory=dict)
    classes_source: ClassVar[str] = "the values of the labels CSV's label column"

    def __post_init__(self):
        self._freeze_classes()
        _ = self._test_side  # the metric and id_from are checked now

    @cached_property
    def _test_side(self) -> ClassFolderCompetition:
        return ClassFolderCompetition(
            self.name, self.slug, self.title, id_column=self.id_column, label_column=self.label_column,
            metric=self.metric, declared_classes=self.declared_classes, test_dir=self.test_dir,
            sample_submission=self.sample_submission, id_from=self.id_from)

    def discover_classes(self, data_dir: Path) -> list[str]:
        """Undeclared classes are the label column's distinct values, sorted."""
        return sorted(set(self._labels(data_dir)[1]))

    def _labels(self, data_dir: Path) -> tuple[list[str], list[str]]:
        """(ids, labels) of the labels CSV, every row checked to have both."""
        path = Path(data_dir) / self.labels_csv
        if not path.is_file():
            raise DataError(f"{path}: labels CSV not found (expected columns {self._id_key}, {self._label_key})")
        table = read_csv_strings(path)
        absent = [c for c in (self._id_key, self._label_key) if c not in table.columns]
        if absent:
            raise DataError(f"{path}: no column {', '.join(map(repr, absent))} (it has {list(table.columns)})")
        blank = table.index[(table[self._id_key] == "") | (table[self._label_key] == "")]
        if len(blank):
            raise DataError(f"{path}, line {int(blank[0]) + 2}: an empty id or label ({len(blank)} such row(s))")
        repeated = table[self._id_key][table[self._id_key].duplicated()]
        if len(repeated):
            raise DataError(f"{path}: id(s) {', '.join(repeated.head(3))} have more than one row")
        return table[self._id_key].tolist(), table[self._label_key].tolist()

    @property
    def _id_key(self) -> str:
        return self.labels_id_column or self.id_column

    @property
    def _label_key(self) -> str:
        return self.labels_label_column or self.label_column

    def load_train(self, data_dir: Path) -> ImageTable:
        ids, labels = self._labels(data_dir)
        root = Path(data_dir) / self.train_dir
        scan = list_images(root, "train folder")
        warn_ignored([scan], root)
        by_id = dict(zip(unique_ids(scan.images, lambda p: p.name if self.id_from == "name" else p.stem), scan.images))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise DataError(f"{len(missing)} id(s) of {Path(data_dir) / self.labels_csv} have no image in {root} "
                            f"(e.g. {', '.join(missing[:3])}; an id is the image's file {self.id_from})")
        classes = self.classes
        index = {label: k for k, label in enumerate(classes)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise DataError(f"{Path(data_dir) / self.labels_csv}: label(s) {', '.join(unknown[:5])} are not labels "
                            f"of {self.name}: {classes}")
        return ImageTable(ids, [by_id[i] for i in ids], np.asarray([index[label] for label in labels], dtype=np.int64))

    def load_test(self, data_dir: Path) -> ImageTable:
        return self._test_side.load_test(data_dir)

    def check_cell(self, row_id: str, column: str, value: str, sizes: ImageSizes | None = None) -> str | None:
        return self._test_side.check_cell(row_id, column, value, sizes)

    def submission_frame(self, ids: list[str], predicted: np.ndarray) -> pd.DataFrame:
        return self._test_side.submission_frame(ids, predicted)

    @property
    def value_column(self) -> str:
        return self.label_column
