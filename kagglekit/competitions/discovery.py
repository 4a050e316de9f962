"""Finding competitions by name: the registry, YAML competition files, and where adapters come from.

Adapters are never imported by module name. They are found through

- the entry-point group ``kagglekit.competitions``: a module or package (its submodules are imported and
  its ``*.yaml`` files loaded; kagglekit's own ``competitions/`` folder is registered this way) or a
  ``Competition`` object;
- folders named in ``$KAGGLEKIT_COMPETITIONS`` (``os.pathsep``-separated): their ``*.yaml`` and ``*.py`` files;
- a YAML file passed by path (``kagglekit run path/to/comp.yaml``).

A YAML file picks a generic kind (``kind: class-folder``, ``labels-csv``, ``multilabel-csv`` or
``segmentation-folder``) and sets its fields.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import pkgutil
import sys
import typing
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Callable

from pydantic import ConfigDict, ValidationError, create_model

from kagglekit.competitions.class_folder import ClassFolderCompetition
from kagglekit.competitions.contract import Competition
from kagglekit.competitions.labels_csv import LabelsCsvCompetition, MultiLabelCsvCompetition
from kagglekit.competitions.reference import is_competition_file
from kagglekit.competitions.segmentation_folder import SegmentationFolderCompetition
from kagglekit.core.config import describe_errors, read_yaml
from kagglekit.core.errors import ConfigError
from kagglekit.core.registry import Registry

ENTRY_POINT_GROUP = "kagglekit.competitions"
COMPETITIONS: Registry[Competition] = Registry("competition")
#: Generic competition kinds that a YAML file can instantiate.
COMPETITION_KINDS: Registry[Callable[[dict], Competition]] = Registry("competition kind")


def config_kind(cls: type) -> Callable[[dict], Competition]:
    """A YAML kind for a dataclass competition: the file's keys are its fields (``classes:`` is its
    ``declared_classes``), checked strictly against their declared types, so a typo or a list where a
    name belongs fails naming its key instead of breaking whatever first uses the value."""
    renamed = {"declared_classes": "classes"}
    hints = typing.get_type_hints(cls)
    settings = create_model(
        f"{cls.__name__}File", __config__=ConfigDict(extra="forbid", strict=True),
        **{renamed.get(f.name, f.name): (hints[f.name], ... if _required(f) else None)
           for f in dataclasses.fields(cls) if f.init},
    )
    fields = {key: name for name, key in renamed.items()}

    def build(raw: dict) -> Competition:
        try:
            given = settings.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(describe_errors(exc)) from None
        return cls(**{fields.get(key, key): getattr(given, key) for key in given.model_fields_set})

    return build


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


COMPETITION_KINDS.register("class-folder", config_kind(ClassFolderCompetition))
COMPETITION_KINDS.register("segmentation-folder", config_kind(SegmentationFolderCompetition))
COMPETITION_KINDS.register("labels-csv", config_kind(LabelsCsvCompetition))
COMPETITION_KINDS.register("multilabel-csv", config_kind(MultiLabelCsvCompetition))


def get_competition(name_or_path: str) -> Competition:
    """Find an adapter by registry name, or load a YAML competition file given by path."""
    path = Path(name_or_path)
    if is_competition_file(path):
        if not path.is_file():
            raise ConfigError(f"{path}: competition file not found")
        return competition_from_yaml(path)
    discover()
    return COMPETITIONS.get(name_or_path)


def competition_from_yaml(path: Path) -> Competition:
    raw = read_yaml(path, "competition file")
    if not isinstance(raw, dict) or "kind" not in raw:
        raise ConfigError(f"{path}: a competition file is a mapping with a 'kind' (e.g. kind: class-folder)")
    raw = dict(raw)
    kind = raw.pop("kind")
    try:
        return COMPETITION_KINDS.get(str(kind))(raw)
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
