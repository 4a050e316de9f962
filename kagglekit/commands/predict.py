"""``kagglekit predict RUN_DIR``: the run's submission, recomputed from its saved models."""

from __future__ import annotations

from pathlib import Path

from kagglekit.pipelines.rebuild import predict_run


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="rebuild a run's submission from its saved models")
    parser.add_argument("run_dir", type=Path, help="a run directory (submissions/<competition>/<run>)")
    parser.add_argument("--data", type=Path, required=True, help="competition folder with the test images")
    parser.add_argument("--out", type=Path, required=True, help="where to write the submission CSV")
    parser.add_argument("--weights-dir", help="folder with pretrained weight files (offline / Kaggle notebooks)")
    parser.set_defaults(func=main)


def main(args) -> int:
    path = predict_run(args.run_dir, args.data, args.out, args.weights_dir)
    print(f"submission: {path}")
    return 0
