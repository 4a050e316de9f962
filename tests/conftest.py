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
    from kagglekit.competitions.builders import build_class_folder_competition

    return build_class_folder_competition(
        require(SEEDLINGS), tmp_path_factory.mktemp("seedlings-small"), per_class=20, test_fraction=0.25
    )


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Features, converted weights and data land in a per-session cache, never in ~/.cache."""
    if "KAGGLEKIT_CACHE" not in os.environ:
        os.environ["KAGGLEKIT_CACHE"] = str(tmp_path_factory.mktemp("kagglekit-cache"))
    return Path(os.environ["KAGGLEKIT_CACHE"])


@pytest.fixture(scope="session", autouse=True)
def private_ledger(tmp_path_factory) -> Path:
    """Runs and submissions are recorded in a per-session ledger, never in the user's own."""
    os.environ["KAGGLEKIT_LEDGER"] = str(tmp_path_factory.mktemp("ledger") / "ledger.sqlite")
    return Path(os.environ["KAGGLEKIT_LEDGER"])


@pytest.fixture(scope="session")
def seedlings_tags(seedlings_small, tmp_path_factory) -> tuple[Path, Path]:
    """(adapter YAML, data folder) of a multi-label competition: the small seedlings relabelled ``id,tags``
    (each image's species and "even" or "odd"), its adapter written by ``kagglekit new``."""
    from test_new_competition import flatten, relabelled, tagged

    from kagglekit.cli import main

    work = tmp_path_factory.mktemp("seedlings-tags")
    data, table = flatten(seedlings_small, work / "csv")
    multi = relabelled(data, work / "tags", tagged(table, " "), sample_column="tags")
    assert main(["new", str(multi), "--out", str(work / "tags.yaml")]) == 0
    return work / "tags.yaml", multi


@pytest.fixture(scope="session")
def tiny_run_config(tmp_path_factory) -> Path:
    """A small but real training config: one real backbone, small images, both training stages."""
    path = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    path.write_text(
        "backbones: [efficientnet_lite0]\nimage_size: 128\nfolds: 3\ntta: [identity, hflip]\n"
        "train: {learner: head, head_epochs: 40, views: [identity, hflip, rot90, augment1], top_blocks: true, top_blocks_epochs: 2, patience: 5}\n"
    )
    return path


@pytest.fixture(scope="session")
def voc_masks() -> Path:
    """The 1,400 real PASCAL VOC label masks (no photographs)."""
    return require(VOC_MASKS)


@pytest.fixture(scope="session")
def voc_small(tmp_path_factory, voc_masks) -> Path:
    """The VOC course competition's layout from 36 + 12 real masks (images rendered from the masks)."""
    from kagglekit.competitions.builders import build_voc_competition
    from kagglekit.competitions.discovery import get_competition

    return build_voc_competition(voc_masks, get_competition("pascal-voc"), tmp_path_factory.mktemp("voc-small"),
                                 n_train=36, n_test=12)


@pytest.fixture(scope="session")
def camvid() -> Path:
    """The 468 real CamVid frames and masks (SegNet train + val)."""
    return require(CAMVID)


@pytest.fixture(scope="session")
def camvid_small(tmp_path_factory, camvid) -> Path:
    """CamVid as a segmentation-folder competition: 24 real training frames, 6 held-out test frames."""
    from kagglekit.competitions.builders import build_segmentation_folder_competition
    from kagglekit.competitions.discovery import get_competition

    return build_segmentation_folder_competition(
        camvid, get_competition("camvid"), tmp_path_factory.mktemp("camvid-small"), n_train=24, n_test=6)


def assert_usage_recorded(metrics: dict, run_dir: Path, competition: str) -> None:
    """Every run records what it used (device, speeds, peak memory), and its ledger row carries the same figures."""
    from kagglekit.runs.ledger import Ledger, default_ledger_path

    timing = metrics["timing"]
    assert timing["device"].startswith("tensorflow on") and timing["device_count"] >= 1
    assert timing["seconds_per_epoch"] > 0 and timing["train_images_per_s"] > 0 and timing["predict_images_per_s"] > 0
    assert 0.1 < timing["peak_memory_gib"] < 64
    row = Ledger(default_ledger_path()).history(competition).set_index("run_id").loc[run_dir.name]
    assert row.seconds_per_epoch == timing["seconds_per_epoch"] and row.device == timing["device"]
