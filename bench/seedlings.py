"""Benchmark: the default ``kagglekit run seedlings`` on all of ../shared/data/plant-seedlings.

Builds the Kaggle-layout competition (80% train, 20% held-out labelled test), runs the default
configuration from a cold cache (feature extraction included), and prints wall time and scores
against the targets: <= 20 minutes on this 2-core machine, CV micro-F1 >= 0.90.

    .venv/bin/python bench/seedlings.py [--config FILE] [--rerun]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "plant-seedlings"
TIME_BUDGET_S, CV_TARGET = 20 * 60, 0.90


def timed_run(data: Path, output: Path, config: Path | None) -> tuple[float, Path]:
    from kagglekit.cli import main

    argv = ["run", "seedlings", "--data", str(data), "--output-dir", str(output)]
    if config:
        argv += ["--config", str(config)]
    started = time.perf_counter()
    if main(argv) != 0:
        sys.exit("the run failed")
    seconds = time.perf_counter() - started
    runs = sorted((output / "seedlings").iterdir(), key=lambda p: p.stat().st_mtime)
    return seconds, runs[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="run config to benchmark instead of the default")
    parser.add_argument("--rerun", action="store_true", help="also time a second run on the warm feature cache")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kagglekit-bench-"))
    os.environ["KAGGLEKIT_CACHE"] = str(work / "cache")  # cold: nothing cached but nothing downloaded either
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from kagglekit.competitions.builders import build_class_folder_competition
    from kagglekit.competitions.discovery import get_competition
    from kagglekit.submission.writer import read_csv_strings

    data = build_class_folder_competition(SOURCE, work / "competition")
    seconds, run_dir = timed_run(data, work / "runs", args.config)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    held_out = get_competition("seedlings").score(read_csv_strings(data / "solution.csv"),
                                                  read_csv_strings(run_dir / "submission.csv"))
    images = metrics["train_images"] + metrics["test_images"]
    print("\n=== kagglekit run seedlings (default config, cold cache) ===")
    print(f"images            {metrics['train_images']} train + {metrics['test_images']} test")
    print(f"wall time         {seconds:.0f} s  ({seconds / TIME_BUDGET_S:.2f} of the {TIME_BUDGET_S // 60}-minute budget; "
          f"{images / seconds:.1f} images/s end to end)")
    print(f"CV micro-F1       {metrics['cv_mean']:.4f} ± {metrics['cv_std']:.4f}  "
          f"(folds {', '.join(f'{s:.4f}' for s in metrics['fold_scores'])}; {metrics['cv_mean'] / CV_TARGET:.3f} of the "
          f"{CV_TARGET} target)")
    print(f"held-out test     {held_out:.4f} micro-F1 on {metrics['test_images']} labelled images")
    print(f"run directory     {run_dir}")
    if args.rerun:
        warm, _ = timed_run(data, work / "runs", args.config)
        print(f"warm rerun        {warm:.0f} s  ({seconds / warm:.1f}x faster: features come from the cache)")


if __name__ == "__main__":
    main()
