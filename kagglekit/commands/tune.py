"""``kagglekit tune COMPETITION --space SPACE.yaml --trials N``: hyperparameter search with Optuna (TPE, pruning on
fold scores, a resumable study) and trials run by Ray Tune, locally or on a cluster (``--address``)."""

from __future__ import annotations

import time
from pathlib import Path

from kagglekit.commands.options import InputPath, add_config_options, config_options, count, number
from kagglekit.usecases.config import resolve_run


def register(subparsers) -> None:
    parser = subparsers.add_parser("tune", help="hyperparameter search: Optuna proposes, Ray Tune runs the trials")
    add_config_options(parser)
    parser.add_argument("--space", type=InputPath("file", "a search space YAML file"), required=True,
                        help="search space YAML: dotted config key -> {uniform|loguniform|int|logint: [low, high]} "
                             "or {choice: [...]}")
    parser.add_argument("--trials", type=count, default=20, help="trials to run (default 20)")
    parser.add_argument("--address", help="an existing Ray cluster (e.g. HEAD:6379, auto, or ray://HEAD:10001); "
                                          "default: a local Ray started in this process")
    parser.add_argument("--cpus-per-trial", type=number(0),
                        help="CPUs each trial reserves (default: all of them, one trial at a time; with GPUs, "
                             "the CPUs shared among them)")
    parser.add_argument("--gpus-per-trial", type=number(0, include_low=True),
                        help="GPUs each trial reserves (default: 1 where there are GPUs, else 0)")
    parser.add_argument("--out", type=Path,
                        help="the study's folder: new or empty, or an interrupted study to continue "
                             "(default: OUTPUT_DIR/COMPETITION/tune-TIME)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from kagglekit.experiments.space import read_space
    from kagglekit.experiments.tune import Study, run_study, write_best

    competition, config = resolve_run(**config_options(args))
    base = config.to_dict()
    space = read_space(args.space, base)
    out = args.out or Path(config.output_dir) / competition.name / f"tune-{time.strftime('%Y%m%d-%H%M%S')}"
    study = Study(out, base["competition"], competition.name, competition.task, base, space, args.trials, config.seed)
    try:
        table = run_study(study, args.address, args.cpus_per_trial, args.gpus_per_trial)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the study is saved in {out}: run the same command with --out {out} to continue it")
        return 130
    print(table.to_markdown(index=False, floatfmt=".4f"))
    best = write_best(study, table)
    if best is None:
        print(f"no trial finished; see {out / 'trials.csv'}")
        return 1
    print(f"best config: {best}  (kagglekit run {args.competition} --config {best})")
    return 0
