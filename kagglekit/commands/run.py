"""``kagglekit run COMPETITION``: train with cross-validation, predict, write a validated submission.

The competition and the run config are resolved once, here, and passed down frozen; the run is
recorded in the ledger here too, after its outputs are safe on disk.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from kagglekit.commands.options import add_config_options, run_folder
from kagglekit.pipelines import get_pipeline
from kagglekit.runs.rundir import COMPETITION_FILE, new_run_dir
from kagglekit.usecases.config import resolve_run, resume_run
from kagglekit.usecases.run import record_and_submit, summary_table

log = logging.getLogger(__name__)


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
        competition, config, run_dir = resume_run(args)
        log.info("resuming %s", run_dir)
    else:
        competition, config = resolve_run(args)
        run_dir = new_run_dir(config, competition.name)
        if Path(config.competition).suffix in (".yaml", ".yml"):  # the run directory must explain itself
            shutil.copyfile(config.competition, run_dir / COMPETITION_FILE)
    log.info("%s → %s", competition.describe(), run_dir)
    result = get_pipeline(competition.task, config.train.learner)(competition, config, run_dir)
    print(f"CV {result.metric}: {result.cv_mean:.4f} ± {result.cv_std:.4f} "
          f"(folds: {', '.join(f'{s:.4f}' for s in result.fold_scores)}) in {result.seconds:.0f} s")
    print(f"submission: {result.submission}")
    print(summary_table(result))
    record_and_submit(result, config, competition, submit=args.submit, message=args.message, force=args.force)
    return 0
