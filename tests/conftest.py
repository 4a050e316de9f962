"""Shared fixtures: Kaggle-layout competition folders built from the real data in ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KAGGLEKIT_SHARED", REPO.parent / "shared")) / "data"
SEEDLINGS = SHARED / "plant-seedlings"
VOC_MASKS = SHARED / "voc-masks"
CAMVID = SHARED / "camvid"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read real data from ../shared (see README)")
    return path


@pytest.fixture(scope="session")
def seedlings_small(tmp_path_factory) -> Path:
    """A small real Plant Seedlings competition: 20 images per species, 25% held out as test."""
    from kagglekit.localdata import build_class_folder_competition

    return build_class_folder_competition(
        require(SEEDLINGS), tmp_path_factory.mktemp("seedlings-small"), per_class=20, test_fraction=0.25
    )


@pytest.fixture(scope="session")
def voc_masks() -> Path:
    """The 1,400 real PASCAL VOC label masks (no photographs)."""
    return require(VOC_MASKS)
