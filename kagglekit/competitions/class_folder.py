"""The generic single-label image competition: ``train/<label>/*.img``, ``test/*.img``, a sample CSV.

Plant Seedlings is one; so is almost every "classify these photos" Kaggle competition. A YAML file
with ``kind: class-folder`` defines a new one without any Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import (
    ClassesFromData,
    ClassificationCompetition,
    ImageSizes,
    ImageTable,
    Named,
)
from kagglekit.core.errors import ConfigError, DataError
from kagglekit.data.images import (
    FolderScan,
    list_images,
    scan_folder,
    unique_ids,
    warn_ignored,
)
from kagglekit.evaluation.metrics import METRICS
from kagglekit.submission.validator import read_sample


@dataclass(frozen=True)
class ClassFolderCompetition(Named, ClassesFromData, ClassificationCompetition):
    id_column: str = "file"
    label_column: str = "label"
    metric: str = "accuracy"
    declared_classes: list[str] | None = None  # None: the train subfolders, sorted
    train_dir: str = "train"
    test_dir: str = "test"
    sample_submission: str = "sample_submission.csv"
    id_from: str = "name"  # submission id of a test image: its file "name" or "stem"
    run_defaults: dict = field(default_factory=dict)
    classes_source: ClassVar[str] = "the train folder's subfolders"

    def __post_init__(self):
        METRICS.get(self.metric)  # fail early on a typo
        if self.id_from not in ("name", "stem"):
            raise ConfigError(f"{self.name}: id_from must be 'name' or 'stem', not {self.id_from!r}")
        self._freeze_classes()

    def discover_classes(self, data_dir: Path) -> list[str]:
        """Undeclared classes are the train folder's subfolders, sorted."""
        return self._class_folders(Path(data_dir) / self.train_dir)

    @staticmethod
    def _class_folders(root: Path) -> list[str]:
        if not root.is_dir():
            raise DataError(f"{root}: train folder not found (expected <label>/<image> inside it)")
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def load_train(self, data_dir: Path) -> ImageTable:
        root = Path(data_dir) / self.train_dir
        if not root.is_dir():
            raise DataError(f"{root}: train folder not found (expected {self.train_dir}/<label>/<image>)")
        top = scan_folder(root, look_inside=False)  # its subfolders are the classes, listed below
        if top.images:
            raise DataError(
                f"{root}: images lie directly in the train folder ({', '.join(p.name for p in top.images[:3])}...); "
                f"expected one subfolder per label"
            )
        found = self._class_folders(root)
        classes = self.classes
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DataError(f"{root}: folder(s) {', '.join(unknown)} are not labels of {self.name}: {classes}")
        ids, paths, labels, scans = [], [], [], [FolderScan(root, dangling=top.dangling)]
        for index, label in enumerate(classes):
            folder = root / label
            if not folder.is_dir():
                raise DataError(f"{folder}: class folder missing (every label needs training images)")
            scan = list_images(folder, "class folder")
            scans.append(scan)
            ids += [self._id(p) for p in scan.images]
            paths += scan.images
            labels += [index] * len(scan.images)
        warn_ignored(scans, root)
        return ImageTable(ids, paths, np.asarray(labels, dtype=np.int64))

    def load_test(self, data_dir: Path) -> ImageTable:
        root = Path(data_dir) / self.test_dir
        scan = list_images(root, "test folder")
        warn_ignored([scan], root)
        images = scan.images
        ids = unique_ids(images, self._id)
        sample = read_sample(self.sample_submission_path(data_dir), self.id_column, self.value_column)
        expected, present = set(sample[self.id_column]), set(ids)
        if expected != present:
            missing, extra = sorted(expected - present), sorted(present - expected)
            raise DataError(
                f"{root} does not match {self.sample_submission}: "
                f"{len(missing)} id(s) in the sample have no image ({', '.join(missing[:5])}), "
                f"{len(extra)} image(s) are not in the sample ({', '.join(extra[:5])})"
            )
        order = {id_: i for i, id_ in enumerate(sample[self.id_column])}
        rank = np.argsort([order[i] for i in ids], kind="stable")
        return ImageTable([ids[i] for i in rank], [images[i] for i in rank])

    def _id(self, path: Path) -> str:
        return path.name if self.id_from == "name" else path.stem

    def check_cell(self, row_id: str, column: str, value: str, sizes: ImageSizes | None = None) -> str | None:
        if column == self.label_column and value not in self.classes:
            return f"{value!r} is not a label of {self.name}"
        return None

    def submission_frame(self, ids: list[str], predicted: np.ndarray) -> pd.DataFrame:
        classes = self.classes
        return pd.DataFrame({self.id_column: ids, self.label_column: [classes[i] for i in predicted]})

    @property
    def value_column(self) -> str:
        return self.label_column

