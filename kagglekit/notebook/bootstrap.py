"""Find a notebook's inputs and install the bundled kagglekit, with the standard library alone.

Generated notebooks carry a verbatim copy of kagglekit/notebook/bootstrap.py (it runs before
kagglekit is installed); the module itself is tested like any other code. Inputs are found, in
order: an explicit path (a papermill parameter or an environment variable), then Kaggle's attached
inputs under ``/kaggle/input/<dataset>/`` (``$KAGGLE_INPUT_ROOT`` moves that root: the local Kaggle
service runs notebooks in a sandbox folder, not at /kaggle).
"""

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

BUNDLE_MANIFEST = "kagglekit-bundle.json"
KAGGLE_INPUT = Path(os.environ.get("KAGGLE_INPUT_ROOT") or "/kaggle/input")
PACKAGES = ("kagglekit", "kagglekit_competitions")


class InputNotFound(FileNotFoundError):
    """An attached input is missing; the message says what was searched and how to attach it."""


def find_bundle(run: str, explicit=None, roots=(KAGGLE_INPUT,)) -> Path:
    """The inputs folder of ``run``: ``explicit`` if given, else the attached dataset whose manifest names it."""
    if explicit:
        folder = Path(explicit)
        if not (folder / BUNDLE_MANIFEST).is_file():
            raise InputNotFound(f"{folder}: no {BUNDLE_MANIFEST}; point it at the generated <name>-inputs folder")
        return folder
    searched = []
    for root in map(Path, roots):
        # Kaggle mounts a dataset at <root>/<slug>/; some uploads add one folder level.
        for manifest in sorted(root.glob(f"*/{BUNDLE_MANIFEST}")) + sorted(root.glob(f"*/*/{BUNDLE_MANIFEST}")):
            searched.append(manifest.parent)
            if json.loads(manifest.read_text(encoding="utf-8"))["run"] == run:
                return manifest.parent
    found = ", ".join(map(str, searched)) or "no kagglekit bundle at all"
    raise InputNotFound(
        f"the inputs of run {run} are not attached (searched {', '.join(map(str, roots))}: {found}); "
        f"attach the <name>-inputs dataset, or set BUNDLE_DIR / $KAGGLEKIT_BUNDLE"
    )


def find_data(slug: str, marker: str, explicit=None, roots=(KAGGLE_INPUT,)) -> Path:
    """The competition folder: ``explicit``, else ``<root>/<slug>``, else the one input holding ``marker``."""
    if explicit:
        folder = Path(explicit)
        if not (folder / marker).is_file():
            raise InputNotFound(f"{folder}: no {marker}; point it at the competition folder")
        return folder
    for root in map(Path, roots):
        candidates = [root / slug] + sorted(p.parent for p in root.glob(f"*/{marker}"))
        for folder in candidates:
            if (folder / marker).is_file():
                return folder
    raise InputNotFound(
        f"competition data not found: no {marker} in {', '.join(f'{r}/{slug}' for r in roots)} "
        f"or beside it; add the competition {slug} as an input, or set DATA_DIR / $KAGGLEKIT_DATA"
    )


def verify_bundle(bundle: Path) -> dict:
    """The bundle's manifest, after checking every file it lists is there with the same bytes (an
    upload that lost or unpacked files differently fails here, naming them)."""
    manifest = json.loads((Path(bundle) / BUNDLE_MANIFEST).read_text(encoding="utf-8"))
    problems = []
    for name, digest in manifest["files"].items():
        path = Path(bundle) / name
        if not path.is_file():
            problems.append(f"missing {name}")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"changed {name}")
    if problems:
        raise InputNotFound(f"{bundle} is not the bundle that was generated: {'; '.join(problems[:10])}")
    return manifest


class BundledOnly(importlib.abc.MetaPathFinder):
    """Import kagglekit and its shipped competitions from ``folder`` alone: a module missing from the bundle is an
    error, never filled in from another kagglekit installed in the environment (an editable install's
    finder would otherwise serve it)."""

    def __init__(self, folder: Path):
        self.folder = str(folder)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, [self.folder] if path is None else path, target)
        if spec is None:
            raise ModuleNotFoundError(f"{name} is not part of the bundled kagglekit in {self.folder}", name=name)
        return spec


def install_bundled_kagglekit(bundle: Path, target: Path) -> str:
    """pip-install the bundle's wheel into ``target`` (offline, no dependencies) and import it from there."""
    manifest = verify_bundle(bundle)
    wheel = Path(bundle) / manifest["wheel"]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--disable-pip-version-check", "--target", str(target), str(wheel)],
        check=True,
    )
    sys.path.insert(0, str(target))
    sys.meta_path.insert(0, BundledOnly(target))
    for name in [m for m in sys.modules if m.split(".")[0] in PACKAGES]:
        del sys.modules[name]  # an installed kagglekit must not shadow the bundled one
    importlib.invalidate_caches()
    kagglekit = importlib.import_module("kagglekit")
    if not Path(kagglekit.__file__).resolve().is_relative_to(Path(target).resolve()):
        raise ImportError(f"kagglekit was imported from {kagglekit.__file__}, not from the bundle in {target}")
    return manifest["kagglekit_version"]
