"""Folders kagglekit writes list what it wrote there, so it never overwrites or deletes anything else.

A command that fills a folder (``prepare``, ``download``, ``serve``) first claims it: a new or empty
folder, or one holding kagglekit's manifest (``.kagglekit-manifest.json``: who wrote it, with which
options, and every file written). Any other non-empty folder is refused. Replacing a build (``--force``)
deletes only the files the manifest lists, and refuses to write over a file it does not list, so the
user's own files in the folder survive. The manifest is written before the files (marked incomplete)
and again after them (complete), so a build that was killed halfway is recognised and redone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json

MANIFEST = ".kagglekit-manifest.json"


@dataclass(frozen=True)
class Manifest:
    made_by: str
    options: dict = field(default_factory=dict)
    files: tuple[str, ...] = ()  # relative POSIX paths
    complete: bool = False


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest of ``folder``; None when it has none. A manifest kagglekit cannot use is refused."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest(str(raw["made_by"]), dict(raw["options"]), tuple(raw["files"]), raw["complete"] is True)
        unsafe = [name for name in manifest.files if not _is_inside(name)]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{path}: not a manifest kagglekit can read ({type(exc).__name__}: {exc}); "
                          "kagglekit cannot tell its files from yours there, so pass an empty or new folder") from None
    if unsafe:
        raise ConfigError(f"{path}: lists paths outside its folder ({', '.join(unsafe[:3])}); "
                          "pass an empty or new folder")
    return manifest


def _is_inside(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and name != MANIFEST


def overlap(path: Path, other: Path) -> str | None:
    """How ``path`` and ``other`` overlap ("is", "is inside", "contains"), or None when they are apart."""
    path, other = Path(path).resolve(), Path(other).resolve()
    if path == other:
        return "is"
    if other in path.parents:
        return "is inside"
    if path in other.parents:
        return "contains"
    return None


def refuse_overlap(path: Path, inputs: dict[str, Path]) -> None:
    """A ConfigError when ``path`` (an output) is, is inside or contains one of the named ``inputs``."""
    for name, other in inputs.items():
        relation = overlap(path, other)
        if relation is not None:
            path, other = Path(path).resolve(), Path(other).resolve()
            advice = "that does not contain it" if relation == "contains" else "outside it"
            raise ConfigError(f"{path} {relation} {name} {other}: kagglekit never writes its outputs among its "
                              f"inputs (they would be read back, or overwritten); choose a path {advice}")


def refuse_used_folder(out: Path, advice: str = "pass a new or empty folder") -> None:
    """A ConfigError when the output folder ``out`` exists and is a file or holds anything: a command
    writing many files never mixes them with someone else's."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} exists and is not an empty folder; {advice}")


class OwnedFolder:
    """An output folder claimed by one command: new, empty, or written by kagglekit before.

    ``inputs`` (name → folder) are folders the output must not overlap.
    """

    def __init__(self, folder: Path, made_by: str, inputs: dict[str, Path] | None = None):
        self.folder = Path(folder)
        self.made_by = made_by
        refuse_overlap(self.folder, inputs or {})
        if self.folder.exists() and not self.folder.is_dir():
            raise ConfigError(f"{self.folder} is a file; pass a new or empty folder")
        self.previous = read_manifest(self.folder)
        if self.previous is None and self.folder.is_dir():
            theirs = sorted(p.name for p in self.folder.iterdir())
            if theirs:
                raise ConfigError(
                    f"{self.folder} already holds files that kagglekit did not write ({', '.join(theirs[:3])}"
                    f"{', ...' if len(theirs) > 3 else ''}); pass an empty or new folder (nothing there is "
                    "deleted or overwritten)")
        self.files: list[str] = []
        self.options: dict = {}

    def holds(self, options: dict) -> bool:
        """True when the folder holds a complete build by the same command with the same ``options``."""
        previous = self.previous
        return (previous is not None and previous.complete and previous.made_by == self.made_by
                and previous.options == _as_json(options))

    def reusable(self, options: dict, force: bool) -> bool:
        """Whether to keep the complete build there; a different complete build needs ``force``."""
        if force or self.previous is None or not self.previous.complete:
            return False
        if self.holds(options):
            return True
        previous, asked = self.previous, _as_json(options)
        changed = sorted(key for key in set(previous.options) | set(asked)
                         if previous.options.get(key) != asked.get(key))
        what = (f"with other options ({', '.join(f'{k} {previous.options.get(k)!r}, now {asked.get(k)!r}' for k in changed)})"
                if previous.made_by == self.made_by else f"by `{previous.made_by}`")
        if previous.made_by != self.made_by and "competition" in previous.options:
            what += f" for the competition {previous.options['competition']}"
        raise ConfigError(f"{self.folder} holds a build made {what}; pass --force to replace the files that build "
                          "wrote (anything else there is kept), or choose another folder")

    def replace(self, files: Iterable[str], options: dict) -> None:
        """Make way for ``files`` (relative POSIX paths): delete what the previous build listed, never more.

        Refuses before deleting anything if one of ``files`` exists and the previous build did not write it.
        """
        self.files = sorted(set(files))
        self.options = _as_json(options)
        ours = set(self.previous.files) if self.previous else set()
        outside = [name for name in self.files if not _is_inside(name)]
        if outside:
            raise ValueError(f"cannot write outside {self.folder}: {outside[:3]}")
        theirs = [name for name in self.files if name not in ours and os.path.lexists(self.folder / name)]
        if theirs:
            raise ConfigError(f"{self.folder}: {', '.join(theirs[:3])} {'is' if len(theirs) == 1 else 'are'} not "
                              "kagglekit's and would be overwritten; move them away or choose another folder")
        self._write(sorted(ours | set(self.files)), complete=False)  # a crash from here on leaves all of it listed
        for name in ours:
            path = self.folder / name
            path.unlink(missing_ok=True)
            for parent in path.parents:
                if parent == self.folder or not _remove_if_empty(parent):
                    break
        self.previous = None

    def finish(self) -> None:
        """Record the files written by ``replace``'s build as complete."""
        self._write(self.files, complete=True)

    def _write(self, files: list[str], complete: bool) -> None:
        atomic_write_json(self.folder / MANIFEST, {"made_by": self.made_by, "options": self.options,
                                                   "files": files, "complete": complete})


def _remove_if_empty(folder: Path) -> bool:
    try:
        folder.rmdir()
    except OSError:  # not empty (or gone): leave it
        return False
    return True


def _as_json(options: dict) -> dict:
    """``options`` as they read back from the manifest (paths as strings, tuples as lists)."""
    return json.loads(json.dumps(options, default=str))
