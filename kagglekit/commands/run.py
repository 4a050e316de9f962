"""``kagglekit run COMPETITION``: train with cross-validation, predict, write a validated submission."""

from __future__ import annotations

import logging
from pathlib import Path

from kagglekit.competition import get_competition
from kagglekit.config import RunConfig, from_dict, merge
from kagglekit.kaggle.submit import record_and_submit
from kagglekit.pipelines import get_pipeline
from kagglekit.rundir import new_run_dir

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="train, cross-validate, predict and write a submission")
    parser.add_argument("competition", help="competition name (see competitions/) or a competition YAML file")
    parser.add_argument("--data", help="competition folder in Kaggle layout (default: the data cache)")
    parser.add_argument("--config", type=Path, help="run config YAML (any subset of fields)")
    parser.add_argument("--backbone", help="backbone name(s), comma separated (see `kagglekit backbones`)")
    parser.add_argument("--folds", type=int, help="number of cross-validation folds")
    parser.add_argument("--image-size", type=int, help="input size in pixels")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--weights-dir", help="folder with pretrained weight files (offline / Kaggle notebooks)")
    parser.add_argument("--output-dir", help="where run directories go (default: submissions/)")
    parser.add_argument("--submit", action="store_true", help="submit the run's submission.csv to Kaggle")
    parser.add_argument("-m", "--message", help="extra text for the submission description")
    parser.add_argument("--force", action="store_true", help="submit even if these bytes were submitted before")
    parser.set_defaults(func=main)


def resolve_config(args) -> RunConfig:
    """Defaults < the competition's run defaults < the config file < command-line options."""
    competition = get_competition(args.competition)
    raw = merge(dict(competition.run_defaults), {"competition": args.competition})
    if args.config:
        raw = merge(raw, RunConfig.load(args.config).to_dict() | {"competition": args.competition})
    raw = merge(raw, {
        "data": args.data, "backbones": args.backbone, "folds": args.folds, "image_size": args.image_size,
        "seed": args.seed, "weights_dir": args.weights_dir, "output_dir": args.output_dir,
    })
    return from_dict(RunConfig, raw, where="run config")


def main(args) -> int:
    config = resolve_config(args)
    competition = get_competition(config.competition)
    if config.data is None:
        from kagglekit.datacache import cached_competition_data

        config.data = str(cached_competition_data(competition))
    run_dir = new_run_dir(config)
    log.info("%s → %s", competition.describe(), run_dir)
    result = get_pipeline(competition.task)(competition, config, run_dir)
    print(f"CV {result.metric}: {result.cv_mean:.4f} ± {result.cv_std:.4f} "
          f"(folds: {', '.join(f'{s:.4f}' for s in result.fold_scores)}) in {result.seconds:.0f} s")
    print(f"submission: {result.submission}")
    record_and_submit(result, config, submit=args.submit, message=args.message, force=args.force)
    return 0
