"""The generic semantic-segmentation competition: an image folder, a mask folder, RLE rows per class.

Most Kaggle segmentation competitions look like this: ``train/images/<stem>.jpg`` with a label map
``train/masks/<stem>.png`` (one class index per pixel), ``test/images/``, and a submission with one
row per test image and class, ``<stem>_<class index>``, holding that class's mask run-length encoded
column-major, 1-based (all RLE settings are adapter settings). A YAML file with
``kind: segmentation-folder`` defines one (competitions/camvid.yaml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import (
    ImageSizes,
    ImageTable,
    Named,
    SegmentationCompetition,
)
from kagglekit.core.errors import ConfigError, DataError
from kagglekit.data.images import list_images, unique_ids, warn_ignored
from kagglekit.submission import rle
from kagglekit.submission.validator import read_sample


@dataclass(frozen=True)
class SegmentationFolderCompetition(Named, SegmentationCompetition):
    declared_classes: list[str]
    void_label: int | None = None  # label-map value ignored by losses and metrics (and in no mask)
    train_images: str = "train/images"
    train_masks: str = "train/masks"
    test_images: str = "test/images"
    mask_suffix: str = ".png"
    id_column: str = "Id"
    value_column: str = "EncodedPixels"
    rle_order: str = "F"
    rle_base: int = 1
    rle_empty: str = ""
    group_pattern: str | None = None  # regex on the image stem; group 1 keeps related images in one fold
    sample_submission: str = "sample_submission.csv"
    metric: str = "dice"
    run_defaults: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "declared_classes", list(self.declared_classes))
        try:
            _ = self.rle_format, self._group  # fail early on a bad RLE setting or pattern
        except (ValueError, re.error) as exc:
            raise ConfigError(f"{self.name}: {exc}") from None

    @cached_property
    def rle_format(self) -> rle.RLEFormat:
        return rle.RLEFormat(self.rle_order, self.rle_base, self.rle_empty)

    @cached_property
    def _group(self) -> re.Pattern | None:
        return re.compile(self.group_pattern) if self.group_pattern else None

    @property
    def classes(self) -> list[str]:
        return list(self.declared_classes)

    def row_id(self, image_id: str, class_index: int) -> str:
        return f"{image_id}_{class_index}"

    def load_train(self, data_dir: Path) -> ImageTable:
        images = self._images(Path(data_dir) / self.train_images)
        masks = [Path(data_dir) / self.train_masks / f"{p.stem}{self.mask_suffix}" for p in images]
        missing = [str(m) for m in masks if not (m.is_file() or m.is_symlink())]  # a dangling one is unreadable
        if missing:
            raise DataError(f"{len(missing)} training image(s) have no mask, e.g. {', '.join(missing[:3])}")
        return ImageTable([p.stem for p in images], images, None, masks)

    def load_test(self, data_dir: Path) -> ImageTable:
        images = self._images(Path(data_dir) / self.test_images)
        sample_path = self.sample_submission_path(data_dir)
        sample = read_sample(sample_path, self.id_column, self.value_column)
        stems = {p.stem: p for p in images}
        expected = {self.row_id(s, k) for s in stems for k in range(len(self.classes))}
        if set(sample[self.id_column]) != expected:
            extra = sorted(set(sample[self.id_column]) - expected)
            absent = sorted(expected - set(sample[self.id_column]))
            raise DataError(f"{sample_path} does not match {self.test_images}: rows without an image "
                            f"({', '.join(extra[:3])}), image rows missing ({', '.join(absent[:3])})")
        order = list(dict.fromkeys(i.rsplit("_", 1)[0] for i in sample[self.id_column]))
        return ImageTable(order, [stems[s] for s in order])

    @staticmethod
    def _images(folder: Path) -> list[Path]:
        scan = list_images(folder, "image folder")
        warn_ignored([scan], folder)
        unique_ids(scan.images, lambda p: p.stem)  # ids, masks and submission rows are keyed by stem
        return scan.images

    def groups(self, ids: list[str]) -> np.ndarray:
        """Fold group of each image: ``group_pattern``'s first group of its id, else the id itself."""
        keys = []
        for id_ in ids:
            match = self._group.search(id_) if self._group else None
            keys.append(match.group(1) if match else id_)
        return np.unique(keys, return_inverse=True)[1]

    def submission_frame(self, ids: list[str], label_maps: Iterable[np.ndarray]) -> pd.DataFrame:
        rows = [(self.row_id(id_, k), rle.encode(label_map == k, self.rle_format))
                for id_, label_map in zip(ids, label_maps) for k in range(len(self.classes))]
        return pd.DataFrame(rows, columns=[self.id_column, self.value_column])

    def check_cell(self, row_id: str, column: str, value: str, sizes: ImageSizes | None = None) -> str | None:
        if column != self.value_column:
            return None
        size = (sizes or {}).get(row_id.rsplit("_", 1)[0])
        return rle.check(value, self.rle_format, None if size is None else size[0] * size[1])


