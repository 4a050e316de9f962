"""Finding competitions by name: the registry, YAML competition files, and where adapters come from.

Adapters are never imported by module name. They are found through

- the entry-point group ``kagglekit.competitions``: a module or package (its submodules are imported and
  its ``*.yaml`` files loaded; kagglekit's own ``competitions/`` folder is registered this way) or a
  ``Competition`` object;
- folders named in ``$KAGGLEKIT_COMPETITIONS`` (``os.pathsep``-separated): their ``*.yaml`` and ``*.py`` files;
- a YAML file passed by path (``kagglekit run path/to/comp.yaml``).

A YAML file picks a generic kind (``kind: class-folder`` or ``kind: segmentation-folder``) and sets its fields.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Callable

import yaml

from kagglekit.competitions.class_folder import ClassFolderCompetition
from kagglekit.competitions.contract import Competition
from kagglekit.competitions.segmentation_folder import SegmentationFolderCompetition
from kagglekit.core.errors import ConfigError
from kagglekit.core.registry import Registry

ENTRY_POINT_GROUP = "kagglekit.competitions"
COMPETITIONS: Registry[Competition] = Registry("competition")
#: Generic competition kinds that a YAML file can instantiate.
COMPETITION_KINDS: Registry[Callable[[dict], Competition]] = Registry("competition kind")


def config_kind(cls: type) -> Callable[[dict], Competition]:
    """A YAML kind for a dataclass competition; the file's ``classes:`` is its ``declared_classes``."""

    def build(raw: dict) -> Competition:
        raw = dict(raw)
        if "classes" in raw:
            raw["declared_classes"] = raw.pop("classes")
        return cls(**raw)

    return build


COMPETITION_KINDS.register("class-folder", config_kind(ClassFolderCompetition))
COMPETITION_KINDS.register("segmentation-folder", config_kind(SegmentationFolderCompetition))


def get_competition(name_or_path: str) -> Competition:
    """Find an adapter by registry name, or load a YAML competition file given by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"{path}: competition file not found")
        return competition_from_yaml(path)
    discover()
    return COMPETITIONS.get(name_or_path)


def competition_from_yaml(path: Path) -> Competition:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read competition file {path}: {exc}") from None
    if not isinstance(raw, dict) or "kind" not in raw:
        raise ConfigError(f"{path}: a competition file is a mapping with a 'kind' (e.g. kind: class-folder)")
    raw = dict(raw)
    kind = raw.pop("kind")
    builder = COMPETITION_KINDS.get(str(kind))
    try:
        return builder(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


_discovered = False


def discover() -> None:
    """Register every adapter the entry points and ``$KAGGLEKIT_COMPETITIONS`` provide (once)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            found = entry.load()
        except Exception as exc:  # a broken plug-in must say which one it is
            raise ConfigError(f"competition plug-in {entry.name} ({entry.value}) failed to load: {exc}") from exc
        if isinstance(found, Competition):
            _register(found)
        elif isinstance(found, ModuleType):
            _load_package(found)
        else:
            raise ConfigError(f"competition plug-in {entry.name} ({entry.value}) is neither a module nor a Competition")
    for folder in os.environ.get("KAGGLEKIT_COMPETITIONS", "").split(os.pathsep):
        if folder:
            _load_folder(Path(folder))


def _register(competition: Competition) -> None:
    if competition.name not in COMPETITIONS:
        COMPETITIONS.register(competition.name, competition)


def _load_package(module: ModuleType) -> None:
    """A module registers its adapters when imported; a package's submodules and YAML files too."""
    for sub in pkgutil.iter_modules(getattr(module, "__path__", [])):
        importlib.import_module(f"{module.__name__}.{sub.name}")
    for folder in getattr(module, "__path__", []):
        for path in sorted(Path(folder).glob("*.y*ml")):
            _register(competition_from_yaml(path))


def _load_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ConfigError(f"$KAGGLEKIT_COMPETITIONS names {folder}, which is not a folder")
    for path in sorted(folder.glob("*.py")):
        name = f"kagglekit_user_competitions.{path.stem}"
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise ConfigError(f"competition adapter {path} failed to load: {exc}") from exc
    for path in sorted(folder.glob("*.y*ml")):
        _register(competition_from_yaml(path))
