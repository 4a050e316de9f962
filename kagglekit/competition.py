"""What a competition is: the adapter interface and the registry that finds adapters by name.

An adapter *declares* a competition (files, labels, metric, submission format). Everything that
says *how* (loading, training, CV, submission writing) lives in shared parts of kagglekit and is
picked by the adapter's ``task``. Adapters live in ``competitions/``: a Python module that
registers a ``Competition``, or a YAML file that configures a generic one (no Python needed).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

from kagglekit.errors import ConfigError, DataError
from kagglekit.registry import Registry

COMPETITIONS: Registry["Competition"] = Registry("competition")
#: Generic competition kinds that a YAML file can instantiate: ``kind: class-folder`` etc.
COMPETITION_KINDS: Registry[Callable[[dict], "Competition"]] = Registry("competition kind")


@dataclass(frozen=True)
class ImageTable:
    """Images of one split: submission ids, where each image lives, and labels if known."""

    ids: list[str]
    paths: list[Path]
    labels: np.ndarray | None = None  # (n,) class indices, or (n, k) 0/1 for multi-label
    masks: list[Path] | None = None  # per-image label maps, for segmentation

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index) -> "ImageTable":
        index = np.asarray(index)
        return ImageTable(
            ids=[self.ids[i] for i in index],
            paths=[self.paths[i] for i in index],
            labels=None if self.labels is None else self.labels[index],
            masks=None if self.masks is None else [self.masks[i] for i in index],
        )


class Competition(ABC):
    """Declares one competition. Subclass it (or use a generic kind from YAML) and register it."""

    name: str  # registry name, as typed on the command line
    slug: str  # Kaggle's competition slug, as used by the Kaggle API
    title: str
    task: str  # which shared pipeline runs it, e.g. "classification"
    metric: str  # a name in kagglekit.metrics.METRICS
    id_column: str
    sample_submission: str = "sample_submission.csv"

    #: Run-config defaults for this competition (merged under the user's config file and flags).
    run_defaults: dict = {}

    @property
    @abstractmethod
    def classes(self) -> list[str]:
        """The label vocabulary, in the order models predict it."""

    @abstractmethod
    def load_train(self, data_dir: Path) -> ImageTable:
        """Labelled training images. Raise DataError naming the file or folder at fault."""

    @abstractmethod
    def load_test(self, data_dir: Path) -> ImageTable:
        """Unlabelled test images, with the ids the submission uses."""

    @abstractmethod
    def check_value(self, column: str, value: str) -> str | None:
        """Why ``value`` is not allowed in submission ``column``, or None if it is fine."""

    def check_cell(self, row_id: str, column: str, value: str) -> str | None:
        """Like ``check_value``, for values whose validity depends on their row (e.g. an RLE's range
        depends on that image's size). The validator calls this; override it only when needed."""
        return self.check_value(column, value)

    @abstractmethod
    def score(self, solution: pd.DataFrame, submission: pd.DataFrame) -> float:
        """Kaggle-style scoring of a submission against the hidden solution (same ids)."""

    def sample_submission_path(self, data_dir: Path) -> Path:
        path = Path(data_dir) / self.sample_submission
        if not path.is_file():
            raise DataError(f"{path}: sample submission not found; the competition folder needs it")
        return path

    def describe(self) -> str:
        return f"{self.title} ({self.slug}): task {self.task}, metric {self.metric}"


def config_kind(cls: type) -> Callable[[dict], "Competition"]:
    """A YAML kind for a dataclass competition; the file's ``classes:`` is its ``declared_classes``."""

    def build(raw: dict) -> Competition:
        raw = dict(raw)
        if "classes" in raw:
            raw["declared_classes"] = raw.pop("classes")
        return cls(**raw)

    return build


def get_competition(name_or_path: str) -> Competition:
    """Find an adapter by registry name, or load a YAML competition file given by path."""
    if name_or_path.endswith((".yaml", ".yml")) and Path(name_or_path).is_file():
        return competition_from_yaml(Path(name_or_path))
    _discover()
    return COMPETITIONS.get(name_or_path)


def competition_from_yaml(path: Path) -> Competition:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read competition file {path}: {exc}") from exc
    if not isinstance(raw, dict) or "kind" not in raw:
        raise ConfigError(f"{path}: a competition file is a mapping with a 'kind' (e.g. kind: class-folder)")
    raw = dict(raw)
    builder = COMPETITION_KINDS.get(raw.pop("kind"))
    try:
        return builder(raw)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


_discovered = False
#: Modules that register generic competition kinds (the shared "how" a YAML file can pick).
KIND_MODULES = ("kagglekit.class_folder", "kagglekit.segmentation_folder")


def _discover() -> None:
    """Import every adapter module and YAML file in ``competitions/`` and $KAGGLEKIT_COMPETITIONS."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    import competitions

    for module in KIND_MODULES:
        importlib.import_module(module)

    for module in pkgutil.iter_modules(competitions.__path__):
        importlib.import_module(f"competitions.{module.name}")
    folders = [Path(p) for p in competitions.__path__]
    folders += [Path(p) for p in os.environ.get("KAGGLEKIT_COMPETITIONS", "").split(os.pathsep) if p]
    for folder in folders:
        for path in sorted(folder.glob("*.y*ml")):
            competition = competition_from_yaml(path)
            if competition.name not in COMPETITIONS:
                COMPETITIONS.register(competition.name, competition)
