"""The generic single-label image competition: ``train/<label>/*.img``, ``test/*.img``, a sample CSV.

Plant Seedlings is one; so is almost every "classify these photos" Kaggle competition. A YAML file
with ``kind: class-folder`` defines a new one without any Python.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import (
    ClassificationCompetition,
    ImageSizes,
    ImageTable,
)
from kagglekit.core.errors import ConfigError, DataError
from kagglekit.data.images import is_image_file
from kagglekit.evaluation.metrics import METRICS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassFolderCompetition(ClassificationCompetition):
    name: str
    slug: str
    title: str
    id_column: str = "file"
    label_column: str = "label"
    metric: str = "accuracy"
    declared_classes: list[str] | None = None  # None: the train subfolders, sorted
    train_dir: str = "train"
    test_dir: str = "test"
    sample_submission: str = "sample_submission.csv"
    id_from: str = "name"  # submission id of a test image: its file "name" or "stem"
    run_defaults: dict = field(default_factory=dict)

    def __post_init__(self):
        METRICS.get(self.metric)  # fail early on a typo
        if self.id_from not in ("name", "stem"):
            raise ConfigError(f"{self.name}: id_from must be 'name' or 'stem', not {self.id_from!r}")
        if self.declared_classes is not None:
            object.__setattr__(self, "declared_classes", list(self.declared_classes))

    @property
    def classes(self) -> list[str]:
        if self.declared_classes is None:
            raise ConfigError(f"{self.name}: its classes are the train folder's subfolders; resolve it with "
                              "the competition folder first")
        return list(self.declared_classes)

    def resolve(self, data_dir: Path) -> "ClassFolderCompetition":
        """Undeclared classes become the train folder's subfolders, sorted."""
        if self.declared_classes is not None:
            return self
        return dataclasses.replace(self, declared_classes=self._class_folders(Path(data_dir) / self.train_dir))

    @staticmethod
    def _class_folders(root: Path) -> list[str]:
        if not root.is_dir():
            raise DataError(f"{root}: train folder not found (expected <label>/<image> inside it)")
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def load_train(self, data_dir: Path) -> ImageTable:
        root = Path(data_dir) / self.train_dir
        if not root.is_dir():
            raise DataError(f"{root}: train folder not found (expected {self.train_dir}/<label>/<image>)")
        loose = sorted(p.name for p in root.iterdir() if p.is_file() and is_image_file(p))
        if loose:
            raise DataError(
                f"{root}: images lie directly in the train folder ({', '.join(loose[:3])}...); "
                f"expected one subfolder per label"
            )
        found = self._class_folders(root)
        classes = self.classes
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DataError(f"{root}: folder(s) {', '.join(unknown)} are not labels of {self.name}: {classes}")
        ids, paths, labels, skipped = [], [], [], []
        for index, label in enumerate(classes):
            folder = root / label
            if not folder.is_dir():
                raise DataError(f"{folder}: class folder missing (every label needs training images)")
            files = sorted(folder.iterdir())
            images = [p for p in files if is_image_file(p)]
            skipped += [p for p in files if p.is_file() and not is_image_file(p)]
            if not images:
                raise DataError(f"{folder}: class folder has no images")
            ids += [self._id(p) for p in images]
            paths += images
            labels += [index] * len(images)
        if skipped:
            log.warning("skipped %d non-image file(s) in %s: %s", len(skipped), root,
                        ", ".join(str(p.relative_to(root)) for p in skipped[:5]))
        return ImageTable(ids, paths, np.asarray(labels, dtype=np.int64))

    def load_test(self, data_dir: Path) -> ImageTable:
        root = Path(data_dir) / self.test_dir
        if not root.is_dir():
            raise DataError(f"{root}: test folder not found")
        images = sorted(p for p in root.iterdir() if is_image_file(p))
        skipped = sorted(p.name for p in root.iterdir() if p.is_file() and not is_image_file(p))
        if skipped:
            log.warning("skipped %d non-image file(s) in %s: %s", len(skipped), root, ", ".join(skipped[:5]))
        ids = [self._id(p) for p in images]
        sample = pd.read_csv(self.sample_submission_path(data_dir), dtype=str, keep_default_na=False)
        if self.id_column not in sample.columns:
            raise DataError(f"{self.sample_submission_path(data_dir)}: no {self.id_column!r} column")
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

    def score(self, solution: pd.DataFrame, submission: pd.DataFrame) -> float:
        merged = solution.merge(submission, on=self.id_column, suffixes=("_true", "_pred"))
        if len(merged) != len(solution):
            raise DataError(f"{self.name}: submission ids do not match the solution")
        col = self.label_column
        return METRICS.get(self.metric)(merged[f"{col}_true"], merged[f"{col}_pred"])

