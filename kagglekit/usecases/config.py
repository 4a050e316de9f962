"""A run's competition and frozen config, from a competition name and options: the config precedence, the data
found (downloaded if need be), a killed run's saved config to resume it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from kagglekit.competitions.contract import Competition
from kagglekit.competitions.discovery import get_competition
from kagglekit.competitions.reference import is_competition_file
from kagglekit.core.config import RunConfig, from_dict, merge, preset_file, read_config_file
from kagglekit.core.errors import ConfigError
from kagglekit.data.images import native_size
from kagglekit.kaggle.download import cached_competition_data
from kagglekit.models.weights import weight_dirs
from kagglekit.pipelines import resolve_learner
from kagglekit.pipelines.rebuild import load_run_config, run_competition

log = logging.getLogger(__name__)


def resolve_run(competition: str, *, preset: str | None = None, config: str | Path | Mapping | None = None,
                data: str | Path | None = None, backbone: str | list[str] | None = None, folds: int | None = None,
                image_size: int | None = None, seed: int | None = None, weights_dir: str | Path | None = None,
                output_dir: str | Path | None = None, time_budget: str | None = None) -> tuple[Competition, RunConfig]:
    """The competition (its data folder found, downloaded if need be) and the frozen run config.

    Defaults < the competition's run defaults < the preset < ``config`` (a YAML file, or a mapping of the same
    fields) < the options given here (``None``: not given).
    """
    found = get_competition(competition)
    reference = str(Path(competition).resolve()) if is_competition_file(competition) else found.name
    raw = merge(dict(found.run_defaults), {"competition": reference})
    if preset:
        raw = merge(raw, read_config_file(preset_file(preset)), nulls=True)
    if config:
        # only the keys the file sets: its defaults must not undo the competition's run defaults
        given = dict(config) if isinstance(config, Mapping) else read_config_file(config)
        raw = merge(raw, given | {"competition": reference}, nulls=True)
    if time_budget is not None:  # "none" must reach the config as null, which merge() would take for "not given"
        raw["time_budget"] = None if time_budget.strip().lower() in ("none", "off") else time_budget
    raw = merge(raw, {
        "data": _text(data), "backbones": backbone, "folds": folds, "image_size": image_size, "seed": seed,
        "weights_dir": _text(weights_dir), "output_dir": _text(output_dir),
    })
    from_dict(RunConfig, raw, where="run config")  # every option is checked before the data is looked for
    weight_dirs(raw.get("weights_dir"))  # and a weights folder (or $KAGGLEKIT_WEIGHTS_DIR) that is not there
    folder = raw.get("data") or str(cached_competition_data(found))
    resolved = found.resolve(Path(folder))
    if raw.get("image_size") is None:  # chosen by nobody: the images say how many pixels they hold
        ceiling = RunConfig.model_fields["image_size"].default
        raw["image_size"] = native_size(resolved.load_train(Path(folder)).paths, ceiling)
        if raw["image_size"] < ceiling:
            log.info("image_size %d: the training images' median shorter side (set image_size to choose)",
                     raw["image_size"])
    learner = resolve_learner(found.task, raw.get("train", {}).get("learner", "auto"))
    frozen = from_dict(RunConfig, merge(raw, {"data": folder, "train": {"learner": learner}}), where="run config")
    return resolved, frozen


def resume_run(run_dir: Path, competition: str, data: str | Path | None = None,
               weights_dir: str | Path | None = None) -> tuple[Competition, RunConfig]:
    """A killed run's competition and saved config, to continue it in ``run_dir``: only where the data and
    weights are may differ from when it started."""
    config = load_run_config(run_dir, data=_text(data), weights_dir=_text(weights_dir))
    weight_dirs(config.weights_dir)
    found = run_competition(run_dir)
    if found.name != competition_name(competition, found):
        raise ConfigError(f"{run_dir} is a run of {found.name}, not of {competition}")
    folder = config.data if config.data and Path(config.data).is_dir() else str(cached_competition_data(found))
    config = config.model_copy(update={"data": folder})
    return found.resolve(Path(folder)), config


def competition_name(given: str, competition: Competition) -> str:
    """The name ``given`` refers to (a YAML path names the competition inside it)."""
    return competition.name if is_competition_file(given) else given


def _text(path: str | Path | None) -> str | None:
    """A path as the run config holds it."""
    return None if path is None else str(path)
