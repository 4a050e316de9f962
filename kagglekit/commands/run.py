"""``kagglekit run COMPETITION``: train with cross-validation, predict, write a validated submission.

The competition and the run config are resolved once, here, and passed down frozen; the run is
recorded in the ledger here too, after its outputs are safe on disk.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from kagglekit.commands.options import InputPath, competition_ref, run_folder, weights_folder
from kagglekit.competitions.contract import Competition
from kagglekit.competitions.discovery import get_competition
from kagglekit.core.config import PRESETS, RunConfig, from_dict, merge, preset_file, read_config_file
from kagglekit.core.errors import ConfigError
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.download import cached_competition_data
from kagglekit.kaggle.submit import describe, submit_file
from kagglekit.learners.devices import is_chief, multi_worker, scratch, start_workers
from kagglekit.models.weights import weight_dirs
from kagglekit.pipelines import get_pipeline, resolve_learner
from kagglekit.pipelines.rebuild import load_run_config, run_competition
from kagglekit.runs.ledger import Ledger, LedgerError, default_ledger_path
from kagglekit.runs.result import RunResult
from kagglekit.runs.rundir import COMPETITION_FILE, new_run_dir

log = logging.getLogger(__name__)


def add_config_options(parser) -> None:
    """The competition and the options that make a run config: shared by run, compare and tune."""
    parser.add_argument("competition", type=competition_ref,
                        help="competition name (see competitions/) or a competition YAML file")
    parser.add_argument("--data", type=InputPath("folder", "a competition folder (Kaggle layout)", returns=str),
                        help="competition folder in Kaggle layout (default: the data cache)")
    parser.add_argument("--preset", choices=PRESETS,
                        help="a named config: fast (heads on cached features), accurate (fine-tuning, the best "
                             "a 2-core CPU does in 30 minutes), gpu (fine-tuning sized for Kaggle's GPUs/TPU)")
    parser.add_argument("--config", type=InputPath("file", "a run config YAML file"),
                        help="run config YAML (any subset of fields; over the preset)")
    parser.add_argument("--folds", type=int, help="number of cross-validation folds")
    parser.add_argument("--image-size", type=int, help="input size in pixels")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--weights-dir", type=weights_folder,
                        help="folder with pretrained weight files (offline / Kaggle notebooks)")
    parser.add_argument("--output-dir", help="where run directories go (default: submissions/)")
    parser.add_argument("--time-budget", metavar="DURATION",
                        help="the run's wall time, e.g. 30m or 1.5h: fine-tuning and segmentation fit their epochs "
                             "(at most the config's) and scored folds to it (default 30m; none: the config's epochs)")


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="train, cross-validate, predict and write a submission")
    add_config_options(parser)
    parser.add_argument("--resume", type=run_folder, metavar="RUN_DIR",
                        help="continue a killed run in RUN_DIR with its saved config, from its last finished "
                             "fold and epoch")
    parser.add_argument("--backbone", help="backbone name(s), comma separated (see `kagglekit backbones`)")
    parser.add_argument("--submit", action="store_true", help="submit the run's submission.csv to Kaggle")
    parser.add_argument("-m", "--message", help="extra text for the submission description")
    parser.add_argument("--force", action="store_true", help="submit even if these bytes were submitted before")
    parser.set_defaults(func=main)


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


def main(args) -> int:
    if args.resume:
        competition, config, run_dir = resume_run(args)
        if multi_worker(config.device):  # the other workers' copies (their checkpoints) are gone
            raise ConfigError(f"--resume {run_dir}: a run on several workers (TF_CONFIG) cannot resume; start it "
                              "again, or resume it on one worker (device.strategy: none, without TF_CONFIG)")
        log.info("resuming %s", run_dir)
    else:
        competition, config = resolve_run(args)
        start_workers(config.device)  # before anything else runs TensorFlow
        if not is_chief(config.device):  # the chief writes the run; the others their own scratch copy of it
            config = config.model_copy(update={"output_dir": scratch()})
        run_dir = new_run_dir(config, competition.name)
        if Path(config.competition).suffix in (".yaml", ".yml"):  # the run directory must explain itself
            shutil.copyfile(config.competition, run_dir / COMPETITION_FILE)
    log.info("%s → %s", competition.describe(), run_dir)
    result = get_pipeline(competition.task, config.train.learner)(competition, config, run_dir)
    print(f"CV {result.metric}: {result.cv_mean:.4f} ± {result.cv_std:.4f} "
          f"(folds: {', '.join(f'{s:.4f}' for s in result.fold_scores)}) in {result.seconds:.0f} s")
    if not is_chief(config.device):
        shutil.rmtree(config.output_dir, ignore_errors=True)
        print("worker done: the chief wrote the run")
        return 0
    print(f"submission: {result.submission}")
    print(summary_table(result))
    record_and_submit(result, config, competition, submit=args.submit, message=args.message, force=args.force)
    return 0


def summary_table(result: RunResult) -> str:
    """The end-of-run summary: the CV beside the best constant answer's, the time of each stage (where the
    pipeline timed them), the outputs."""
    from tabulate import tabulate

    rows = [[f"CV {result.metric}", f"{result.cv_mean:.4f} ± {result.cv_std:.4f}"]]
    constant = result.extra.get("baseline")
    if constant:
        rows += [[f"constant baseline{f' ({part})' if part else ''}",
                  f"{c['score']:.4f}{'' if c['beaten'] else ' NOT BEATEN'}: {c['name']}"]
                 for part, c in [("", constant), *constant.get("parts", {}).items()]]
    rows += [[stage, f"{seconds:.0f} s"] for stage, seconds in result.extra.get("stages", {}).items()]
    rows += [["total", f"{result.seconds:.0f} s"], ["run directory", str(result.run_dir)]]
    return tabulate(rows, tablefmt="simple_outline")


def record_and_submit(result: RunResult, config: RunConfig, competition: Competition, submit: bool = False,
                      message: str | None = None, force: bool = False,
                      service: KaggleService | None = None) -> dict | None:
    """Record the finished run in the user's ledger; with ``submit``, send its submission.csv once.

    The run's outputs are already safe in its directory: a ledger that cannot be written only costs the
    record (a warning naming the ledger file), unless the submission, which needs it, was asked for.
    """
    try:
        ledger = Ledger(default_ledger_path())
        run_id = ledger.record_run(result, config)
    except LedgerError as exc:
        if submit:
            raise
        log.warning("the run is not recorded in the score ledger (its outputs are safe in %s): %s",
                    result.run_dir, exc)
        return None
    if not submit:
        return None
    text = f"{run_id}: CV {result.metric} {result.cv_mean:.4f} ± {result.cv_std:.4f}"
    row = submit_file(service or KaggleService(), ledger, competition, Path(result.submission),
                      f"{text} - {message}" if message else text, Path(config.data), run_id=run_id, force=force)
    print(f"submitted {result.submission}: {describe(row)}")
    return row
