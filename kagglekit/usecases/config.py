"""A run's competition and frozen config, from a competition name and options: the config precedence, the data
found (downloaded if need be), a killed run's saved config to resume it."""

from __future__ import annotations

from pathlib import Path

from kagglekit.competitions.contract import Competition
from kagglekit.competitions.discovery import get_competition
from kagglekit.core.config import RunConfig, from_dict, merge, preset_file, read_config_file
from kagglekit.core.errors import ConfigError
from kagglekit.kaggle.download import cached_competition_data
from kagglekit.models.weights import weight_dirs
from kagglekit.pipelines import resolve_learner
from kagglekit.pipelines.rebuild import load_run_config, run_competition


def resolve_run(args) -> tuple[Competition, RunConfig]:
    """The competition (its data folder found, downloaded if need be) and the frozen run config.

    Defaults < the competition's run defaults < the config file < command-line options.
    """
    competition = get_competition(args.competition)
    reference = str(Path(args.competition).resolve()) if Path(args.competition).suffix in (".yaml", ".yml") \
        else competition.name
    raw = merge(dict(competition.run_defaults), {"competition": reference})
    if args.preset:
        raw = merge(raw, read_config_file(preset_file(args.preset)), nulls=True)
    if args.config:
        # only the keys the file sets: its defaults must not undo the competition's run defaults
        raw = merge(raw, read_config_file(args.config) | {"competition": reference}, nulls=True)
    budget = getattr(args, "time_budget", None)
    if budget is not None:  # "none" must reach the config as null, which merge() would take for "not given"
        raw["time_budget"] = None if budget.strip().lower() in ("none", "off") else budget
    raw = merge(raw, {
        "data": args.data, "backbones": getattr(args, "backbone", None), "folds": args.folds,
        "image_size": args.image_size, "seed": args.seed, "weights_dir": args.weights_dir, "output_dir": args.output_dir,
    })
    from_dict(RunConfig, raw, where="run config")  # every option is checked before the data is looked for
    weight_dirs(raw.get("weights_dir"))  # and a weights folder (or $KAGGLEKIT_WEIGHTS_DIR) that is not there
    data = raw.get("data") or str(cached_competition_data(competition))
    learner = resolve_learner(competition.task, raw.get("train", {}).get("learner", "auto"))
    config = from_dict(RunConfig, merge(raw, {"data": data, "train": {"learner": learner}}), where="run config")
    return competition.resolve(Path(data)), config


def resume_run(args) -> tuple[Competition, RunConfig, Path]:
    """A killed run's competition, saved config and directory; options that would change what it
    computes are refused (only where the data and weights are may differ)."""
    run_dir = args.resume
    changes = [f"--{name.replace('_', '-')}" for name in ("preset", "config", "backbone", "folds", "image_size", "seed",
                                                              "time_budget")
               if getattr(args, name) is not None]
    if changes:
        raise ConfigError(f"--resume continues {run_dir} with its saved config; drop {', '.join(changes)}")
    config = load_run_config(run_dir, data=args.data, weights_dir=args.weights_dir)
    weight_dirs(config.weights_dir)
    competition = run_competition(run_dir)
    if competition.name != competition_name(args.competition, competition):
        raise ConfigError(f"{run_dir} is a run of {competition.name}, not of {args.competition}")
    data = config.data if config.data and Path(config.data).is_dir() else str(cached_competition_data(competition))
    config = config.model_copy(update={"data": data})
    return competition.resolve(Path(data)), config, run_dir


def competition_name(given: str, competition: Competition) -> str:
    """The name ``given`` refers to (a YAML path names the competition inside it)."""
    return competition.name if Path(given).suffix in (".yaml", ".yml") else given
