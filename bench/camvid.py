"""CamVid segmentation benchmark: the default CPU run, scored on the standard SegNet val split.

Builds the ``camvid`` competition folder from ../shared/data/camvid (SegNet train = training data,
SegNet val = hidden test set), runs ``kagglekit run camvid`` (which also scores a held-out drive),
then decodes the written submission's RLE rows back into label maps and scores them against
the true masks: mIoU over the 11 classes (void ignored) and the competition's mean Dice.

    PYTHONPATH=. .venv/bin/python bench/camvid.py                   # the default run (<= 30 min on CPU)
    PYTHONPATH=. .venv/bin/python bench/camvid.py --epochs 2 --max-train-images 120 --test-images 30
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from kagglekit.competitions.builders import build_segmentation_folder_competition
from kagglekit.competitions.discovery import get_competition
from kagglekit.data.masks import read_label_map
from kagglekit.evaluation.segmentation import ConfusionMatrix
from kagglekit.submission import rle

REPO = Path(__file__).resolve().parents[1]
CAMVID = REPO.parent / "shared" / "data" / "camvid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=CAMVID)
    parser.add_argument("--work", type=Path, help="folder for the competition data and runs (default: a temp dir)")
    parser.add_argument("--epochs", type=int, help="override segmentation.epochs")
    parser.add_argument("--head", help="unet or deeplabv3plus")
    parser.add_argument("--input-size", help="HEIGHT,WIDTH, multiples of 32")
    parser.add_argument("--unfreeze", action="store_true", help="fine-tune the encoder too (BatchNorm stays frozen)")
    parser.add_argument("--lr", type=float, help="override segmentation.lr")
    parser.add_argument("--max-train-images", type=int, help="train on an evenly spaced subset")
    parser.add_argument("--test-images", type=int, help="score on an evenly spaced subset of SegNet val")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="camvid-bench-"))
    competition = get_competition("camvid")
    data = build_segmentation_folder_competition(args.source, competition, work / f"data-{args.test_images or 'all'}",
                                                 n_test=args.test_images)
    overrides = {k: v for k, v in {
        "epochs": args.epochs, "head": args.head, "max_train_images": args.max_train_images, "lr": args.lr,
        "freeze_encoder": False if args.unfreeze else None,
        "input_size": [int(v) for v in args.input_size.split(",")] if args.input_size else None,
    }.items() if v is not None}
    config = work / "config.yaml"  # only the overrides: everything else is camvid.yaml's run defaults
    config.write_text(yaml.safe_dump({"segmentation": overrides}))

    started = time.time()
    command = [sys.executable, "-m", "kagglekit", "run", "camvid", "--data", str(data), "--config", str(config),
               "--output-dir", str(work / "runs")]
    subprocess.run(command, check=True, cwd=REPO)
    seconds = time.time() - started
    run_dir = max((work / "runs" / "camvid").iterdir(), key=lambda p: p.stat().st_mtime)

    submission = pd.read_csv(run_dir / "submission.csv", dtype=str, keep_default_na=False)
    solution = pd.read_csv(data / "solution.csv", dtype=str, keep_default_na=False)
    rows = dict(zip(submission[competition.id_column], submission[competition.value_column]))
    n_classes = len(competition.classes)
    confusion = ConfusionMatrix(n_classes, competition.void_label)
    stems = sorted({i.rsplit("_", 1)[0] for i in solution[competition.id_column]})
    for stem in stems:
        truth = read_label_map(args.source / "masks" / f"{stem}.png")
        predicted = np.full(truth.shape, n_classes, dtype=np.uint8)
        for k in range(n_classes):
            predicted[rle.decode(rows[f"{stem}_{k}"], truth.shape, competition.rle_format)] = k
        confusion.update(truth, predicted)
    metrics = yaml.safe_load((run_dir / "metrics.json").read_text())
    print(f"run: {run_dir} ({seconds / 60:.1f} min wall, {metrics['epochs']} epochs)")
    print(f"hold-out drive ({metrics['validation']}): mIoU {metrics['miou']:.4f}, Dice {metrics['dice']:.4f}")
    print(f"SegNet val, {len(stems)} frames, from the decoded submission: mIoU {confusion.miou():.4f}, "
          f"pixel accuracy {confusion.pixel_accuracy():.4f}, Dice {competition.score(solution, submission):.4f}")
    for name, iou in zip(competition.classes, confusion.iou()):
        print(f"  {name:>11}: IoU {iou:.3f}")


if __name__ == "__main__":
    main()
