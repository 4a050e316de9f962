"""``kagglekit publish RUN_DIR [--submit]``: the run's notebook on Kaggle, run there, its output checked;
with ``--submit``, that notebook version submitted to a code competition and its score recorded."""

from __future__ import annotations

import json
from pathlib import Path

from kagglekit.commands.options import competition_ref, number, run_folder, seconds, weights_folder
from kagglekit.competitions.discovery import get_competition
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.submit import SubmitPolicy, describe
from kagglekit.kaggle.submit_code import submit_kernel
from kagglekit.pipelines.rebuild import run_competition
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.ledger import Ledger, default_ledger_path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "publish", help="upload a run's notebook and inputs to Kaggle, run it there, check its output; --submit it")
    parser.add_argument("run", type=run_folder, help="the run directory (submissions/<competition>/<run>)")
    parser.add_argument("--competition", type=competition_ref,
                        help="competition name or YAML file (default: the run's)")
    parser.add_argument("--submit", action="store_true",
                        help="submit the notebook version to the (code) competition and wait for its score")
    parser.add_argument("--accelerator", choices=("none", "gpu"),
                        help="the machine the notebook runs on (default: gpu if the run's config asked for GPUs)")
    parser.add_argument("--timeout", type=seconds, default=3600.0,
                        help="the notebook's run time limit on Kaggle, in seconds (default 3600)")
    parser.add_argument("-m", "--message", help="submission description (after the run's CV)")
    parser.add_argument("--out", type=Path, default=Path("notebooks"), help="where the notebook, its inputs and the "
                                                                           "downloaded output go (default: notebooks/)")
    parser.add_argument("--weights-dir", type=weights_folder,
                        help="pretrained backbone weights (default: the run's, else the cache)")
    parser.add_argument("--allow-code-change", action="store_true",
                        help="ship the kagglekit code checked out now even if it is not the code that made the run")
    parser.add_argument("--force", action="store_true", help="submit even if this notebook version and output were "
                                                             "submitted before")
    parser.add_argument("--wait", type=number(0, include_low=True), default=3600.0,
                        help="seconds to wait for the score (Kaggle reruns the notebook first)")
    parser.add_argument("--ledger", type=Path, default=default_ledger_path(),
                        help="score ledger file (default: $KAGGLEKIT_LEDGER, else the per-user ledger)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from kagglekit.notebook.publish import publish_run

    competition = get_competition(args.competition) if args.competition else run_competition(args.run)
    service = KaggleService()
    published = publish_run(service, competition, args.run, args.out, args.accelerator, args.timeout,
                            args.weights_dir, args.ledger, args.allow_code_change)
    record = published.record
    print(f"dataset:  {record['dataset']} version {record['dataset_version']}")
    print(f"notebook: {published.kernel} ({record['accelerator']}): complete; its {published.output.name} equals "
          f"the run's ({record['output_matches']}); recorded in {args.run / RUN_FILES.publish}")
    if not args.submit:
        return 0
    metrics = json.loads((args.run / RUN_FILES.metrics).read_text(encoding="utf-8"))
    text = f"{args.run.name}: CV {metrics['metric']} {metrics['cv_mean']:.4f} ± {metrics['cv_std']:.4f}"
    row = submit_kernel(service, Ledger(args.ledger), competition, published.kernel, published.output,
                        f"{text} - {args.message}" if args.message else text, run_id=args.run.name,
                        force=args.force, policy=SubmitPolicy(wait=args.wait))
    print(f"submitted notebook {published.kernel}: {describe(row)}")
    return 0 if row["status"] in ("complete", "pending") else 1
