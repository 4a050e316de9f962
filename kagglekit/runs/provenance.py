"""Which kagglekit code made a run: a digest of the shipped source files, recorded in the run directory.

A notebook that reproduces a run must ship the code that made it; the digest is how the notebook
generator knows that the code it packages is that code.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import kagglekit
from kagglekit.core.fileio import atomic_write_json
from kagglekit.runs.layout import FORMAT_KEY, FORMAT_VERSION, RUN_FILES

#: The top-level packages the distribution ships (pyproject.toml: kagglekit, and competitions/ as
#: kagglekit_competitions).
PACKAGES = ("kagglekit", "kagglekit_competitions")


def package_files() -> dict[str, Path]:
    """Archive name → file, for every file of the shipped packages (no caches, no hidden files)."""
    files = {}
    for name in PACKAGES:
        root = Path(importlib.import_module(name).__file__).parent
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)  # archived under the import name, wherever the folder lives
            if path.is_file() and "__pycache__" not in relative.parts and not any(
                    part.startswith(".") for part in relative.parts):
                files[f"{name}/{relative.as_posix()}"] = path
    return files


def source_digest(files: dict[str, Path] | None = None) -> str:
    files = package_files() if files is None else files
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name].read_bytes()).digest())
    return digest.hexdigest()


def write_provenance(run_dir: Path) -> None:
    """The code that makes the run, and the layout it writes the run in (``runs/layout.py``)."""
    atomic_write_json(Path(run_dir) / RUN_FILES.provenance, {"kagglekit_version": kagglekit.__version__,
                                                             "source_sha256": source_digest(),
                                                             FORMAT_KEY: FORMAT_VERSION})
