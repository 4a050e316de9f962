"""Blend benchmark: two different Plant Seedlings runs, then their blends, each scored by nested CV.

Builds a seedlings competition from ../shared/data/plant-seedlings (``--per-class`` images per species,
a quarter held out with labels), runs two different configurations with the same folds and seed, blends
them with each method, and prints every member's and blend's CV, their held-out test accuracy/micro-F1
(from the hidden solution), and the blend's weights.

    PYTHONPATH=. .venv/bin/python bench/blend.py                       # 60 images per species
    PYTHONPATH=. .venv/bin/python bench/blend.py --per-class 0         # all 3324 images (about 30 min)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from kagglekit.competitions.builders import build_class_folder_competition
from kagglekit.competitions.discovery import get_competition

REPO = Path(__file__).resolve().parents[1]
SEEDLINGS = REPO.parent / "shared" / "data" / "plant-seedlings"
#: Two members that differ in backbone, input size and views: diversity is what a blend feeds on.
MEMBERS = {
    "lite0-224": {"backbones": ["efficientnet_lite0"], "image_size": 224},
    "lite2-260": {"backbones": ["efficientnet_lite2"], "image_size": 260},
}
SHARED = {"folds": 5, "seed": 42, "tta": ["identity", "hflip"],
          "train": {"learner": "head", "views": ["identity", "hflip"]}}


def kagglekit(*argv) -> None:
    subprocess.run([sys.executable, "-m", "kagglekit", *map(str, argv)], check=True, cwd=REPO)


def held_out(run_dir: Path, data: Path) -> float:
    competition = get_competition("seedlings")
    solution = pd.read_csv(data / "solution.csv", dtype=str)
    return competition.score(solution, pd.read_csv(run_dir / "submission.csv", dtype=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=60, help="images per species (0: all)")
    parser.add_argument("--work", type=Path, help="folder for data and runs (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="blend-bench-"))
    data = build_class_folder_competition(SEEDLINGS, work / "data", per_class=args.per_class or None, test_fraction=0.25)
    runs = {}
    for name, config in MEMBERS.items():
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**SHARED, **config}))
        kagglekit("run", "seedlings", "--data", data, "--config", path, "--output-dir", work / name)
        (runs[name],) = (work / name / "seedlings").iterdir()
    rows = []
    for name, run_dir in runs.items():
        metrics = json.loads((run_dir / "metrics.json").read_text())
        rows.append({"model": name, "cv": metrics["cv_mean"], "cv_std": metrics["cv_std"],
                     "held_out": held_out(run_dir, data), "weights": ""})
    for method in ("mean", "hill", "stack"):
        out = work / f"blend-{method}"
        kagglekit("blend", *runs.values(), "--method", method, "--output-dir", out)
        (blend_dir,) = (out / "seedlings").iterdir()
        metrics = json.loads((blend_dir / "metrics.json").read_text())
        weights = json.loads((blend_dir / "blend.json").read_text())["weights"]
        rows.append({"model": f"blend: {method} (nested CV)", "cv": metrics["cv_mean"], "cv_std": metrics["cv_std"],
                     "held_out": held_out(blend_dir, data),
                     "weights": "" if weights is None else ", ".join(f"{w:.2f}" for w in weights)})
    table = pd.DataFrame(rows)
    print(f"\nseedlings, {args.per_class or 'all'} images per species, micro-F1 (work: {work})")
    print(table.to_markdown(index=False, floatfmt=".4f"))
    best_member = table.cv[:len(runs)].max()
    for row in rows[len(runs):]:
        print(f"{row['model']}: CV {row['cv']:.4f} vs best member {best_member:.4f} "
              f"({'at least' if row['cv'] >= best_member else 'below'} it)")


if __name__ == "__main__":
    main()
