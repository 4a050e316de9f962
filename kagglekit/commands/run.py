"""``kagglekit run COMPETITION``: train with cross-validation, predict, write a validated submission.

The options become a run config in ``usecases.config``; the run is trained, recorded and submitted in
``usecases.run``.
"""

from __future__ import annotations

from kagglekit.commands.options import add_config_options, config_options, run_folder
from kagglekit.core.errors import ConfigError
from kagglekit.usecases.config import resolve_run, resume_run
from kagglekit.learners.devices import is_chief
from kagglekit.usecases.run import record_and_submit, summary_table, train


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


def main(args) -> int:
    if args.resume:
        refuse_changes(args)
        competition, config = resume_run(args.resume, args.competition, data=args.data, weights_dir=args.weights_dir)
    else:
        competition, config = resolve_run(**config_options(args))
    result = train(competition, config, args.resume)
    print(f"CV {result.metric}: {result.cv_mean:.4f} ± {result.cv_std:.4f} "
          f"(folds: {', '.join(f'{s:.4f}' for s in result.fold_scores)}) in {result.seconds:.0f} s")
    if not is_chief(config.device):  # its copy of the run (in a scratch folder) is gone: the chief wrote the run
        print("worker done: the chief wrote the run")
        return 0
    print(f"submission: {result.submission}")
    print(summary_table(result))
    record_and_submit(result, config, competition, submit=args.submit, message=args.message, force=args.force)
    return 0


def refuse_changes(args) -> None:
    """``--resume`` continues a run with its saved config: options that would change what it computes are refused."""
    changes = [f"--{name.replace('_', '-')}" for name in ("preset", "config", "backbone", "folds", "image_size", "seed",
                                                              "time_budget")
               if getattr(args, name) is not None]
    if changes:
        raise ConfigError(f"--resume continues {args.resume} with its saved config; drop {', '.join(changes)}")
