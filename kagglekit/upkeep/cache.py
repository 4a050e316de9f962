"""What kagglekit's cache holds, and pruning it without ever touching anything else.

The cache (``kagglekit.core.paths``) has six parts, each of which a run can make again:

- ``data/<slug>``: competition folders (downloaded or built by ``prepare``); one per competition;
- ``downloads/<slug>.zip``: archives being downloaded (a finished download removes its archive);
- ``weights/<file>``: converted pretrained weights;
- ``features/<backbone>-<size>-<hash>``: cached backbone features, keyed by backbone, weights and image
  size and shared by every competition (so pruning "a competition" leaves them alone);
- ``shards/<what>-<n>-<hash>``: images encoded into TFRecord shards, keyed by the files and encoding
  options (``kagglekit.data.shards``);
- ``crash-logs/<time>-<pid>.log``: tracebacks of internal errors.

Pruning deletes whole entries of these parts and nothing else: other files at the cache root are listed
but never deleted, a symbolic link is removed as a link (its target is kept), and a data folder is
emptied only of the files its kagglekit manifest lists (a folder without one was put there by hand).
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from kagglekit.core.errors import ConfigError
from kagglekit.core.manifest import MANIFEST, read_manifest
from kagglekit.core.paths import cache_root

#: The cache's parts, in the order they are shown.
PARTS = ("data", "downloads", "weights", "features", "shards", "crash-logs")
DAY = 86400


@dataclass(frozen=True)
class Entry:
    """One thing in the cache: a competition's data folder, a weights file, a feature set, ..."""

    part: str  # one of PARTS, or "other" for anything kagglekit did not put there
    name: str
    path: Path
    size: int  # bytes, links not followed
    last_used: float  # newest file access or modification inside (access times where the disk keeps them)

    def age_days(self, now: float | None = None) -> float:
        return ((now if now is not None else time.time()) - self.last_used) / DAY


def inventory(root: Path | None = None) -> list[Entry]:
    """Every entry of every part, then anything else at the cache root (as part ``other``)."""
    root = Path(root) if root is not None else cache_root()
    if not root.is_dir():
        return []
    entries = []
    for part in PARTS:
        folder = root / part
        if folder.is_dir() and not folder.is_symlink():
            entries += [_entry(part, path) for path in sorted(folder.iterdir())]
    entries += [_entry("other", path) for path in sorted(root.iterdir()) if path.name not in PARTS]
    return entries


def _entry(part: str, path: Path) -> Entry:
    size, last_used = 0, 0.0
    for file in _walk(path):
        info = file.lstat()
        size += info.st_size
        # a file's access time says when a run last read it; a folder's or link's only when someone listed or
        # followed it (as this does)
        used = max(info.st_atime, info.st_mtime) if stat.S_ISREG(info.st_mode) else info.st_mtime
        last_used = max(last_used, used)
    return Entry(part, path.name, path, size, last_used)


def _walk(path: Path):
    """``path`` and, for a real folder (not a link to one), everything inside it."""
    yield path
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                yield Path(folder) / name


def total_size(entries: list[Entry]) -> int:
    return sum(e.size for e in entries)


def select(entries: list[Entry], older_than_days: float | None = None, slug: str | None = None,
           parts: tuple[str, ...] = PARTS) -> list[Entry]:
    """The prunable entries of ``parts`` last used over ``older_than_days`` ago and/or of competition ``slug``
    (its data folder and download archives)."""
    now = time.time()
    chosen = []
    for entry in entries:
        if entry.part not in parts or entry.part == "other":
            continue
        if older_than_days is not None and entry.age_days(now) < older_than_days:
            continue
        if slug is not None and not _belongs_to(entry, slug):
            continue
        chosen.append(entry)
    return chosen


def _belongs_to(entry: Entry, slug: str) -> bool:
    if entry.part == "data":
        return entry.name == slug
    if entry.part == "downloads":
        return entry.name.split(".", 1)[0] == slug  # <slug>.zip and the client's partial <slug>.zip.*
    return False


def prune(entries: list[Entry], root: Path | None = None) -> list[str]:
    """Delete ``entries`` (from ``select``); returns what was kept and why, one line each."""
    root = (Path(root) if root is not None else cache_root()).resolve()
    kept = []
    for entry in entries:
        if entry.path.parent.resolve().parent != root or entry.part not in PARTS:
            raise ValueError(f"{entry.path} is not an entry of the cache {root}")  # a bug, never a user's error
        if entry.path.is_symlink() or not entry.path.is_dir():
            entry.path.unlink(missing_ok=True)
        elif entry.part == "data":
            kept += _empty_data_folder(entry.path)
        else:
            shutil.rmtree(entry.path)
    return kept


def _empty_data_folder(folder: Path) -> list[str]:
    """Delete the files kagglekit's manifest lists there, then the folder if nothing else is left."""
    try:
        manifest = read_manifest(folder)
    except ConfigError as exc:
        return [f"{folder}: kept, {exc}"]
    if manifest is None:
        return [f"{folder}: kept, kagglekit did not make it (no {MANIFEST}); delete it yourself if you wish"]
    for name in manifest.files:
        (folder / name).unlink(missing_ok=True)
    (folder / MANIFEST).unlink()
    for parent, _, _ in os.walk(folder, topdown=False):  # innermost first, so emptied parents go too
        if not any(Path(parent).iterdir()):
            Path(parent).rmdir()
    if folder.exists():
        left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())
        return [f"{folder}: kept {len(left)} file(s) kagglekit did not write ({', '.join(left[:3])})"]
    return []
