"""Benchmark: ``kagglekit run seedlings`` per preset on ../shared/data/plant-seedlings, from a cold cache.

Each preset runs in its own process (so peak memory is its own), on the Kaggle-layout competition built
from the real images (80% train, 20% held-out labelled test). Printed per preset: wall time against the
30-minute budget, CV micro-F1 against the 0.95 target, the held-out test score, training and inference
images/s, seconds per epoch and peak memory.

    .venv/bin/python bench/train.py                          # the default run and --preset fast
    .venv/bin/python bench/train.py --preset accurate gpu    # any presets ("default": no --preset)
    .venv/bin/python bench/train.py --preset gpu --config tiny.yaml --per-class 10   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "plant-seedlings"
TIME_BUDGET_S, CV_TARGET = 30 * 60, 0.95


def run_preset(preset: str, data: Path, output: Path, config: Path | None, env: dict) -> tuple[float, int, Path]:
    """Wall seconds, peak resident memory (bytes) and run directory of one ``kagglekit run``."""
    argv = [sys.executable, "-m", "kagglekit", "run", "seedlings", "--data", str(data), "--output-dir", str(output)]
    argv += ["--preset", preset] if preset != "default" else []
    argv += ["--config", str(config)] if config else []
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"kagglekit run --preset {preset} failed (exit {done.returncode})")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest child so far (Linux: KiB)
    (run_dir,) = (output / "seedlings").iterdir()
    return seconds, peak, run_dir


def report(preset: str, seconds: float, peak: int, run_dir: Path, data: Path) -> None:
    from kagglekit.competitions.discovery import get_competition
    from kagglekit.submission.writer import read_csv_strings

    metrics = json.loads((run_dir / "metrics.json").read_text())
    held_out = get_competition("seedlings").score(read_csv_strings(data / "solution.csv"),
                                                  read_csv_strings(run_dir / "submission.csv"))
    timing = metrics.get("timing", {})

    def rate(key: str, unit: str) -> str:
        return f"{timing[key]:.1f} {unit}" if key in timing else "n/a (cached features: no training epochs)"

    print(f"\n=== kagglekit run seedlings --preset {preset} ===")
    print(f"images            {metrics['train_images']} train + {metrics['test_images']} test")
    print(f"wall time         {seconds:.0f} s  ({seconds / TIME_BUDGET_S:.2f} of the {TIME_BUDGET_S // 60}-minute budget)")
    scored = metrics.get("scored_images", metrics["train_images"])
    print(f"CV micro-F1       {metrics['cv_mean']:.4f} ± {metrics['cv_std']:.4f} on {scored} held-out-fold images "
          f"({metrics['cv_mean'] / CV_TARGET:.3f} of the {CV_TARGET} target)")
    print(f"held-out test     {held_out:.4f} micro-F1 on {metrics['test_images']} labelled images")
    print(f"training          {rate('train_images_per_s', 'images/s')}, {rate('seconds_per_epoch', 's/epoch')}")
    print(f"inference         {rate('predict_images_per_s', 'images/s (x TTA views)')}")
    print(f"peak memory       {peak / 2**30:.2f} GiB")
    if metrics.get("time_budget"):
        plan = metrics["time_budget"]
        changes = "; ".join(f"after {c['after_folds']} fold(s) ({c['spent_s']:.0f} s) {c['scored_folds']} fold(s), "
                            f"the networks left {c['epochs']} epochs" for c in plan.get("replans", []))
        spare = plan.get("spare_views") or []
        print(f"time plan         {plan['scored_folds']} x {plan['epochs']} epochs from a {plan['step_s']:.2f} s step, "
              f"{'the spare test-time views ' + ', '.join(spare) if spare else 'no spare test-time views'}, estimated "
              f"{plan['estimated_s']:.0f} s, ran {plan['actual_s']:.0f} s; re-planned: {changes or 'no'}")
    print(f"run directory     {run_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", nargs="+", default=["default", "fast"],
                        choices=["default", "fast", "accurate", "gpu"])
    parser.add_argument("--config", type=Path, help="a config file applied over each preset (e.g. a tiny one)")
    parser.add_argument("--per-class", type=int, help="use only this many images per species (quick checks)")
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kagglekit-bench-train-"))
    env = {**os.environ, "KAGGLEKIT_CACHE": str(work / "cache"), "KAGGLEKIT_LEDGER": str(work / "ledger.sqlite")}
    env.setdefault("KERAS_BACKEND", "tensorflow")
    weights = Path(os.environ.get("KAGGLEKIT_CACHE", Path.home() / ".cache" / "kagglekit")) / "weights"
    if weights.is_dir():  # converted ImageNet weights are not what is measured: reuse them
        env.setdefault("KAGGLEKIT_WEIGHTS_DIR", str(weights))
    from kagglekit.competitions.builders import build_class_folder_competition

    data = build_class_folder_competition(args.source, work / "competition", per_class=args.per_class)
    for preset in args.preset:
        seconds, peak, run_dir = run_preset(preset, data, work / "runs" / preset, args.config, env)
        report(preset, seconds, peak, run_dir, data)


if __name__ == "__main__":
    main()
