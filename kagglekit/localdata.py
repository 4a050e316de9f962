"""Build Kaggle-layout competition folders from labelled images on disk (tests, benchmarks, courses).

From ``<source>/train/<label>/<image>`` it writes ``train/<label>/``, a held-out labelled ``test/``,
``sample_submission.csv`` and the hidden ``solution.csv`` a local Kaggle service scores against.
Files are hard-linked when possible (nothing is copied into the project: ``out`` lives elsewhere).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pandas as pd

from kagglekit.data.images import is_image_file
from kagglekit.errors import DataError
from kagglekit.fileio import atomic_write_text


def build_class_folder_competition(
    source: Path,
    out: Path,
    id_column: str = "file",
    label_column: str = "species",
    test_fraction: float = 0.2,
    per_class: int | None = None,
    seed: int = 0,
    default_label: str | None = None,
) -> Path:
    """Split each class of ``source/train`` into train and a labelled, hidden test set."""
    source, out = Path(source), Path(out)
    root = source / "train"
    if not root.is_dir():
        raise DataError(f"{root}: expected <source>/train/<label>/<image>")
    if (out / "solution.csv").is_file():
        return out  # complete already: the solution is written last
    rng = random.Random(seed)
    test_rows = []
    labels = sorted(p.name for p in root.iterdir() if p.is_dir())
    for label in labels:
        files = sorted(p for p in (root / label).iterdir() if is_image_file(p))
        rng.shuffle(files)
        if per_class is not None:
            files = files[:per_class]
        n_test = round(len(files) * test_fraction)
        for path in files[n_test:]:
            _link(path, out / "train" / label / path.name)
        for path in files[:n_test]:
            _link(path, out / "test" / path.name)
            test_rows.append((path.name, label))
    test_rows.sort()
    solution = pd.DataFrame(test_rows, columns=[id_column, label_column])
    sample = solution.assign(**{label_column: default_label or labels[0]})
    atomic_write_text(out / "sample_submission.csv", sample.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "solution.csv", solution.to_csv(index=False, lineterminator="\n"))
    return out


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
