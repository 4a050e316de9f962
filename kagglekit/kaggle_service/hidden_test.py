"""A code competition's two test sets, as kaggle.com keeps them.

Participants download a few public test images (and a sample submission for them) to develop with;
the rest of the test set stays hidden, and only a submitted notebook, rerun by Kaggle, ever sees it:
the hidden test images and their sample submission are mounted in place of the public ones. Both
views are whole competition folders that share everything else (linked, not copied).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import Competition
from kagglekit.core.errors import ConfigError
from kagglekit.core.manifest import MANIFEST

SOLUTION = "solution.csv"


@dataclass(frozen=True)
class SplitTest:
    public: Path  # what participants download: no solution, a few test images
    hidden: Path  # what a submitted notebook reads at scoring time; holds the hidden solution.csv


def split_hidden_test(competition: Competition, data_dir: Path, out: Path, public_fraction: float = 0.3,
                      seed: int = 0) -> SplitTest:
    """Split the test set of ``data_dir`` (Kaggle layout plus solution.csv) into ``out/public`` and
    ``out/hidden``: a fixed random ``public_fraction`` of the test images (at least one each side)."""
    data_dir, out = Path(data_dir), Path(out)
    test = competition.load_test(data_dir)
    if len(test) < 2:
        raise ConfigError(f"{data_dir}: a code competition needs two or more test images (one public, one hidden)")
    n_public = min(max(1, round(len(test) * public_fraction)), len(test) - 1)
    public_ids = set(np.asarray(test.ids)[np.random.default_rng(seed).permutation(len(test))[:n_public]])
    root = os.path.abspath(data_dir)  # not resolve(): built competitions link their images elsewhere
    test_files = {Path(os.path.relpath(os.path.abspath(p), root)).as_posix(): i for i, p in zip(test.ids, test.paths)}
    sample_name, id_column = competition.sample_submission, competition.id_column
    shared = [p.relative_to(data_dir).as_posix() for p in sorted(data_dir.rglob("*")) if p.is_file()]
    shared = [name for name in shared if name not in test_files and name not in (sample_name, SOLUTION, MANIFEST)]
    tables = {name: pd.read_csv(data_dir / name, dtype=str, keep_default_na=False, na_filter=False)
              for name in (sample_name, SOLUTION)}
    for name, frame in tables.items():
        if not set(frame[id_column]) <= set(test.ids):
            raise ConfigError(f"{data_dir / name}: a code competition here needs one row per test image "
                              f"({id_column} = the image's id); {competition.name}'s rows are not")
    views = {"public": lambda i: i in public_ids, "hidden": lambda i: i not in public_ids}
    for view, keep in views.items():
        folder = out / view
        if folder.exists():
            shutil.rmtree(folder)
        for name in shared + [name for name, i in test_files.items() if keep(i)]:
            _link(data_dir / name, folder / name)
        for name, frame in tables.items():
            if name != SOLUTION or view == "hidden":
                frame[frame[id_column].map(keep)].to_csv(folder / name, index=False)
    return SplitTest(out / "public", out / "hidden")


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, target)
