"""``kagglekit blend RUN RUN ... [--method mean|hill|stack] [--submit]``: several finished runs combined
into a new run directory, with a nested-CV score, a validated submission and a ledger row
(classification: ``pipelines.blend``; segmentation: ``pipelines.blend_segmentation``; PASCAL VOC's labels and
masks: ``pipelines.blend_multilabel_segmentation``)."""

from __future__ import annotations

import logging
from pathlib import Path

from kagglekit.commands.options import data_folder, run_folder
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_text

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("blend", help="blend finished classification (single- or multi-label), segmentation or PASCAL VOC (labels + masks) "
                                               "runs (nested-CV scored) into a new run")
    parser.add_argument("runs", type=run_folder, nargs="+", metavar="RUN_DIR", help="two or more run directories")
    parser.add_argument("--method", choices=("mean", "hill", "stack"), default="hill",
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
    from kagglekit.pipelines import blend, blend_multilabel_segmentation, blend_segmentation
    from kagglekit.pipelines.blend import BlendConfig
    from kagglekit.pipelines.rebuild import run_competition
    from kagglekit.runs.rundir import BLEND_CONFIG, COMPETITION_FILE, new_run_dir
    from kagglekit.usecases.run import record_and_submit, summary_table

    if len(set(p.resolve() for p in args.runs)) < 2:
        raise ConfigError("a blend needs two or more different run directories")
    competition = run_competition(args.runs[0])
    pipelines = {"segmentation": blend_segmentation, "multilabel-segmentation": blend_multilabel_segmentation}
    pipeline = pipelines.get(competition.task, blend)  # blend.run refuses a task it does not know
    members = [pipeline.read_member(p) for p in args.runs]
    first = members[0]
    data = args.data or Path(first.config.data or "")
    if not data.is_dir():
        raise ConfigError(f"the competition folder {data} is gone; pass --data with it (the submission is validated)")
    competition = competition.resolve(data)
    output = args.output_dir or first.run_dir.parent.parent
    config = BlendConfig(competition=first.config.competition, members=[str(m.run_dir) for m in members],
                         method=args.method, output_dir=str(output), data=str(data))
    run_dir = new_run_dir(config, competition.name)
    atomic_write_text(run_dir / BLEND_CONFIG, config.model_dump_json(indent=1) + "\n")
    if (first.run_dir / COMPETITION_FILE).is_file():  # the blend explains itself like its members
        (run_dir / COMPETITION_FILE).write_bytes((first.run_dir / COMPETITION_FILE).read_bytes())
    result = pipeline.run(competition, members, args.method, run_dir, data)
    for member, scores in result.extra["members"].items():
        print(f"member {Path(member).name}: CV {result.metric} {scores['cv_mean']:.4f} ± {scores['cv_std']:.4f}")
    print(f"blend ({args.method}, nested CV): {result.metric} {result.cv_mean:.4f} ± {result.cv_std:.4f}")
    print(summary_table(result))
    record_and_submit(result, config, competition, submit=args.submit, message=args.message, force=args.force)
    return 0
