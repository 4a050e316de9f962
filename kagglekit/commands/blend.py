"""``kagglekit blend RUN RUN ... [--method mean|hill|stack] [--submit]``: several finished runs combined
into a new run directory, with a nested-CV score, a validated submission and a ledger row (``usecases.blend``)."""

from __future__ import annotations

from pathlib import Path

from kagglekit.commands.options import data_folder, run_folder
from kagglekit.usecases.blend import METHODS, blend
from kagglekit.usecases.run import record_and_submit, summary_table


def register(subparsers) -> None:
    parser = subparsers.add_parser("blend", help="blend finished classification (single- or multi-label), segmentation or PASCAL VOC (labels + masks) "
                                               "runs (nested-CV scored) into a new run")
    parser.add_argument("runs", type=run_folder, nargs="+", metavar="RUN_DIR", help="two or more run directories")
    parser.add_argument("--method", choices=METHODS, default="hill",
                        help="mean: equal weights; hill: weights by ensemble selection on OOF (default); "
                             "stack: logistic regression on OOF (multi-label: each per class; not for masks)")
    parser.add_argument("--data", type=data_folder, help="the competition folder (default: the first run's)")
    parser.add_argument("--output-dir", type=Path, help="where the blend's run directory goes "
                                                        "(default: beside the first run's)")
    parser.add_argument("--submit", action="store_true", help="submit the blend's submission.csv to Kaggle")
    parser.add_argument("-m", "--message", help="submission description")
    parser.add_argument("--force", action="store_true", help="submit even if these bytes were submitted before")
    parser.set_defaults(func=main)


def main(args) -> int:
    result, config, competition = blend(args.runs, args.method, args.data, args.output_dir)
    for member, scores in result.extra["members"].items():
        print(f"member {Path(member).name}: CV {result.metric} {scores['cv_mean']:.4f} ± {scores['cv_std']:.4f}")
    print(f"blend ({args.method}, nested CV): {result.metric} {result.cv_mean:.4f} ± {result.cv_std:.4f}")
    print(summary_table(result))
    record_and_submit(result, config, competition, submit=args.submit, message=args.message, force=args.force)
    return 0
