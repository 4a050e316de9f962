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

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import (
    ImageSizes,
    ImageTable,
    MultiLabelSegmentationCompetition,
)
from kagglekit.competitions.discovery import COMPETITIONS
from kagglekit.core.errors import DataError
from kagglekit.data.masks import class_masks
from kagglekit.evaluation.segmentation import rle_dice_score
from kagglekit.submission import rle

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
        "train": {"views": ["identity", "hflip"], "finetune": False},
        "segmentation": {"input_size": [192, 256]},
    }

    @property
    def classes(self) -> list[str]:
        return list(VOC_CLASSES)

    def load_train(self, data_dir: Path) -> ImageTable:
        table = self._read_table(Path(data_dir) / "train" / "train_set.csv")
        ids = [str(i) for i in table.index]
        root = Path(data_dir) / "train"
        paths = self._existing([root / "img" / f"train_{i}.npy" for i in ids])
        masks = self._existing([root / "seg" / f"train_{i}.npy" for i in ids])
        labels = table.to_numpy()
        if not np.isin(labels, (0, 1)).all():
            raise DataError(f"{root / 'train_set.csv'}: class columns must hold 0 or 1")
        return ImageTable(ids, paths, labels.astype(np.int64), masks)

    def load_test(self, data_dir: Path) -> ImageTable:
        table = self._read_table(Path(data_dir) / "test" / "test_set.csv")
        ids = [str(i) for i in table.index]
        return ImageTable(ids, self._existing([Path(data_dir) / "test" / "img" / f"test_{i}.npy" for i in ids]))

    def _read_table(self, path: Path) -> pd.DataFrame:
        if not path.is_file():
            raise DataError(f"{path}: not found (expected train/train_set.csv and test/test_set.csv)")
        table = pd.read_csv(path, index_col=self.id_column)
        if list(table.columns) != VOC_CLASSES:
            raise DataError(f"{path}: columns must be {self.id_column} and the 20 VOC classes in order, "
                            f"found {list(table.columns)}")
        return table

    @staticmethod
    def _existing(paths: list[Path]) -> list[Path]:
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DataError(f"{len(missing)} file(s) missing: {', '.join(missing[:5])}")
        return paths

    def submission_frame(self, ids: list[str], labels: np.ndarray, label_maps: list[np.ndarray]) -> pd.DataFrame:
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

    def score(self, solution: pd.DataFrame, submission: pd.DataFrame) -> float:
        """Mean Dice over rows; both frames have the submission's columns (Id, Predicted)."""
        return rle_dice_score(solution, submission, self.id_column, self.value_column, self.rle_format, self.name)


COMPETITIONS.register("pascal-voc", PascalVOCCompetition())
