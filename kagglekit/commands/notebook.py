"""``kagglekit notebook COMPETITION --run RUN_DIR``: a Kaggle notebook that reports and reproduces a run."""

from __future__ import annotations

import os
from pathlib import Path

from kagglekit.commands.options import competition_ref, run_folder, weights_folder
from kagglekit.competitions.discovery import get_competition
from kagglekit.runs.ledger import default_ledger_path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "notebook", help="write a self-contained notebook (report + offline submission) and its Kaggle inputs")
    parser.add_argument("competition", type=competition_ref, help="competition name (see competitions/)")
    parser.add_argument("--run", type=run_folder, required=True,
                        help="the run directory (submissions/<competition>/<run>)")
    parser.add_argument("--out", type=Path, default=Path("notebooks"), help="output folder (default: notebooks/)")
    parser.add_argument("--weights-dir", type=weights_folder,
                        help="pretrained backbone weights (default: the run's, else $KAGGLEKIT_CACHE/weights)")
    parser.add_argument("--ledger", type=Path, help="score ledger for the history section "
                        "(default: $KAGGLEKIT_LEDGER, else the per-user ledger)")
    parser.add_argument("--kernel-metadata", action="store_true",
                        help="also write kernel-metadata.json and dataset-metadata.json for the kaggle CLI")
    parser.add_argument("--owner", default=os.environ.get("KAGGLE_USERNAME"),
                        help="Kaggle user owning the notebook and dataset (default: $KAGGLE_USERNAME)")
    parser.add_argument("--allow-code-change", action="store_true",
                        help="ship the kagglekit code checked out now even if it is not the code that made the run")
    parser.set_defaults(func=main)


def main(args) -> int:
    from kagglekit.notebook.generate import generate_notebook

    competition = get_competition(args.competition)
    ledger = args.ledger or default_ledger_path()
    made = generate_notebook(competition, args.run, args.out, args.weights_dir, ledger,
                             args.kernel_metadata, args.owner, args.allow_code_change)
    print(f"notebook: {made.notebook}")
    print(f"inputs:   {made.bundle}   (kaggle datasets create -p {made.bundle} --dir-mode zip)")
    if made.kernel_dir:
        print(f"kernel:   {made.kernel_dir}   (kaggle kernels push -p {made.kernel_dir})")
    return 0
