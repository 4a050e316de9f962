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


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Features, converted weights and data land in a per-session cache, never in ~/.cache."""
    if "KAGGLEKIT_CACHE" not in os.environ:
        os.environ["KAGGLEKIT_CACHE"] = str(tmp_path_factory.mktemp("kagglekit-cache"))
    return Path(os.environ["KAGGLEKIT_CACHE"])


@pytest.fixture(scope="session")
def tiny_run_config(tmp_path_factory) -> Path:
    """A small but real training config: one real backbone, small images, both training stages."""
    path = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    path.write_text(
        "backbones: [efficientnet_lite0]\nimage_size: 128\nfolds: 3\ntta: [identity, hflip]\n"
        "train: {head_epochs: 40, views: [identity, hflip, rot90, augment1], finetune: true, finetune_epochs: 2, patience: 5}\n"
    )
    return path
