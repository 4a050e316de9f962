"""PASCAL VOC 2009 course competition (KU Leuven H02A5a): multi-label classification + segmentation.

749 training and 750 test images, shipped as NumPy arrays; 20 binary labels and a per-pixel class
map (0 background, 1..20 the VOC classes, 255 void) per training image. The submission has two rows
per test image, both run-length encoded *row-major* (C order), 1-based, empty string for nothing:

- ``{Id}_classification``: the 20-vector of 0/1 class predictions;
- ``{Id}_segmentation``: the 20 x H x W stack of binary masks (mask j = pixels of class j + 1) at the
  image's original size.

Each row is scored with the Dice coefficient (empty vs empty = 1) and the rows are averaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import (
    ImageSizes,
    ImageTable,
    MultiLabelSegmentationCompetition,
)
from kagglekit.competitions.discovery import COMPETITIONS
from kagglekit.core.errors import DataError, SubmissionError
from kagglekit.data.masks import class_masks
from kagglekit.submission import rle
from kagglekit.submission.validator import read_table

VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
]
CLASSIFICATION, SEGMENTATION = "_classification", "_segmentation"


class PascalVOCCompetition(MultiLabelSegmentationCompetition):
    name = "pascal-voc"
    slug = "kul-h02a5a-pascal-voc-2009"  # the course's Kaggle slug; set it to your edition's
    title = "PASCAL VOC 2009 classification + segmentation (KU Leuven H02A5a)"
    metric = "dice"
    id_column = "Id"
    value_column = "Predicted"
    rle_format = rle.ROW_MAJOR
    void_label = 255  # ignored by losses and metrics
    max_side = 500  # VOC images are at most 500 pixels on a side
    run_defaults = {  # photographs: left-right flips only; landscape 4:3 is the common shape
        "image_size": 224, "folds": 5, "tta": ["identity", "hflip"],
        "train": {"views": ["identity", "hflip"], "top_blocks": False},
        # CamVid's measured defaults (bench/camvid.py) at VOC's scale (500 x 375 photos): the encoder fine-tuned,
        # one segmenter trained longer rather than five short ones (bench/voc.py has the figures)
        "segmentation": {"input_size": [320, 448], "freeze_encoder": False, "epochs": 12, "scored_folds": 1},
    }

    @property
    def classes(self) -> list[str]:
        return list(VOC_CLASSES)

    def load_train(self, data_dir: Path) -> ImageTable:
        path = Path(data_dir) / "train" / "train_set.csv"
        table, lines = self._read_table(path)
        ids = list(table.index)
        paths = self._existing([path.parent / "img" / f"train_{i}.npy" for i in ids])
        masks = self._existing([path.parent / "seg" / f"train_{i}.npy" for i in ids])
        labels = table.apply(pd.to_numeric, errors="coerce").to_numpy()
        bad = ~np.isin(labels, (0, 1))
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise DataError(f"{path}, line {lines[row]}: class columns must hold 0 or 1, found "
                            f"{table.iat[row, column]!r} for {VOC_CLASSES[column]}")
        return ImageTable(ids, paths, labels.astype(np.int64), masks)

    def load_test(self, data_dir: Path) -> ImageTable:
        table, _ = self._read_table(Path(data_dir) / "test" / "test_set.csv")
        ids = list(table.index)
        return ImageTable(ids, self._existing([Path(data_dir) / "test" / "img" / f"test_{i}.npy" for i in ids]))

    def _read_table(self, path: Path) -> tuple[pd.DataFrame, list[int]]:
        """The class columns by image id (the strings written), and the CSV line of each row."""
        if not path.is_file():
            raise DataError(f"{path}: not found (expected train/train_set.csv and test/test_set.csv)")
        try:
            table, lines = read_table(path)
        except SubmissionError as exc:  # the strict CSV reader submissions use; this file is competition data
            raise DataError(str(exc)) from None
        if list(table.columns) != [self.id_column, *VOC_CLASSES]:
            raise DataError(f"{path}: columns must be {self.id_column} and the 20 VOC classes in order, "
                            f"found {list(table.columns)}")
        if table.empty:
            raise DataError(f"{path}: no rows; every image needs one")
        repeated = table[self.id_column].duplicated().to_numpy()
        if repeated.any():
            row = int(np.argmax(repeated))
            raise DataError(f"{path}, line {lines[row]}: id {table.iat[row, 0]!r} appears more than once")
        return table.set_index(self.id_column), lines

    @staticmethod
    def _existing(paths: list[Path]) -> list[Path]:
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DataError(f"{len(missing)} file(s) missing: {', '.join(missing[:5])}")
        return paths

    def submission_frame(self, ids: list[str], labels: np.ndarray, label_maps: Iterable[np.ndarray]) -> pd.DataFrame:
        """Two rows per image: its 0/1 class vector and its label map (original size) as 20 masks."""
        classes = np.arange(1, len(VOC_CLASSES) + 1)
        rows = []
        for id_, vector, label_map in zip(ids, labels, label_maps):
            rows.append((f"{id_}{CLASSIFICATION}", rle.encode(np.asarray(vector, bool), self.rle_format)))
            rows.append((f"{id_}{SEGMENTATION}", rle.encode(class_masks(label_map, classes), self.rle_format)))
        return pd.DataFrame(rows, columns=[self.id_column, self.value_column])

    def check_cell(self, row_id: str, column: str, value: str, sizes: ImageSizes | None = None) -> str | None:
        if column != self.value_column:
            return None
        if row_id.endswith(CLASSIFICATION):
            size = len(VOC_CLASSES)
        else:  # a mask stack at the image's size; the largest VOC image where the size is not given
            height, width = (sizes or {}).get(row_id[: -len(SEGMENTATION)], (self.max_side, self.max_side))
            size = len(VOC_CLASSES) * height * width
        return rle.check(value, self.rle_format, size)



COMPETITIONS.register("pascal-voc", PascalVOCCompetition())
