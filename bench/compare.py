"""Benchmark: ``kagglekit compare`` on all of ../shared/data/plant-seedlings: every offline backbone and the
from-scratch CNN, each with several optimizers, fine-tuned whole for the same short budget. What transfer
learning buys shows as the gap between the pretrained rows and ``scratch_cnn``; the cost column prices each
cell's wall time at ``--price-per-hour``. Prints the table (Markdown) and the ratios measured in this one run.

    PYTHONPATH=. .venv/bin/python bench/compare.py                            # the default matrix
    PYTHONPATH=. .venv/bin/python bench/compare.py --per-class 20 --epochs 2  # a quick check
    PYTHONPATH=. .venv/bin/python bench/compare.py --work /tmp/kagglekit-bench-compare-XXXX  # continue one
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "plant-seedlings"
BACKBONES = "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,scratch_cnn"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default=BACKBONES)
    parser.add_argument("--optimizers", default="adamw,sgd,rmsprop")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs per cell (1 of them the head alone)")
    parser.add_argument("--per-class", type=int, help="use only this many images per species (quick checks)")
    parser.add_argument("--price-per-hour", type=float, default=0.10,
                        help="price of one device-hour (default 0.10: a 2-vCPU cloud machine)")
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--work", type=Path, help="continue the bench in this folder (finished cells are kept: "
                                                  "delete a cell's folder under comparison/cells to measure it again)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="kagglekit-bench-compare-"))
    env = {**os.environ, "KAGGLEKIT_CACHE": str(work / "cache"), "KAGGLEKIT_LEDGER": str(work / "ledger.sqlite")}
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    weights = Path(os.environ.get("KAGGLEKIT_CACHE", Path.home() / ".cache" / "kagglekit")) / "weights"
    if weights.is_dir():  # converted ImageNet weights are not what is measured: reuse them
        env.setdefault("KAGGLEKIT_WEIGHTS_DIR", str(weights))
    from kagglekit.competitions.builders import build_class_folder_competition

    data = work / "competition"
    if not (data / "sample_submission.csv").is_file():
        data = build_class_folder_competition(args.source, data, per_class=args.per_class)
    config = work / "cell.yaml"
    config.write_text(
        f"image_size: {args.image_size}\nfolds: 5\ntta: [identity, hflip]\ntrain: {{learner: finetune}}\n"
        f"finetune: {{epochs: {args.epochs}, head_epochs: 1, top_epochs: 1, batch_size: 32, scored_folds: 1}}\n")
    out = work / "comparison"
    code = subprocess.call([sys.executable, "-m", "kagglekit", "compare", "seedlings", "--data", str(data),
                            "--config", str(config), "--backbones", args.backbones, "--optimizers", args.optimizers,
                            "--price-per-hour", str(args.price_per_hour), "--out", str(out)], env=env, cwd=REPO)
    table = pd.read_csv(out / "comparison.csv")
    done = table[table.status == "done"]
    print(f"\nconfig: {config.read_text()}")
    if not done.empty:
        best = done.loc[done.cv_mean.idxmax()]
        print(f"best cell: {best.backbone} + {best.optimizer}, CV {best.cv_mean:.4f}")
        by_backbone = done.groupby("backbone").cv_mean.max()
        if "scratch_cnn" in by_backbone and len(by_backbone) > 1:
            pretrained = by_backbone.drop("scratch_cnn")
            print(f"transfer learning: best pretrained CV {pretrained.max():.4f} vs from scratch "
                  f"{by_backbone['scratch_cnn']:.4f} (x{pretrained.max() / max(by_backbone['scratch_cnn'], 1e-9):.2f}) "
                  "for the same epochs")
        print("s/epoch relative to the fastest cell:\n" +
              (done.set_index(done.backbone + " + " + done.optimizer).seconds_per_epoch
               / done.seconds_per_epoch.min()).round(2).to_string())
    print(f"comparison folder: {out}")
    sys.exit(code)


if __name__ == "__main__":
    main()
