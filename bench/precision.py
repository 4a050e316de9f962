"""bfloat16 against float32 on this CPU: fine-tuning images/s, inference images/s and a held-out score.

The default backbone (EfficientNet-Lite0) at the default image size (224 px) is fine-tuned by kagglekit's own
learner on real Plant Seedlings images (``--per-class`` of each species, two thirds trained on, one third
held out and scored), once per precision, each in its own process (the dtype policy and oneDNN's settings
are per process), on the same shards, folds and seeds. Printed per precision: training images/s of the last
epoch (the whole network above the stem trainable, as in most of a default run's epochs; the first epochs
of each stage include tracing), of all epochs, inference images/s (the held-out images, one view, second
pass) and the held-out micro-F1; then bfloat16's ratios to float32. TensorFlow's oneDNN kernels (on by
default on x86 Linux) are what use AMX and AVX512-BF16; ``ONEDNN_VERBOSE=1`` names the kernel of each op.

    .venv/bin/python bench/precision.py                        # 30 images per species, 4 epochs
    .venv/bin/python bench/precision.py --per-class 10 --epochs 2 --image-size 96   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "plant-seedlings"
PRECISIONS = ("float32", "mixed_bfloat16")


def sample(source: Path, per_class: int, seed: int = 0) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """``per_class`` images of each species (a fixed random sample), their labels, and the held-out mask
    (every third image of each species)."""
    rng = np.random.default_rng(seed)
    paths, labels, held_out = [], [], []
    for label, species in enumerate(sorted(p for p in (source / "train").iterdir() if p.is_dir())):
        files = sorted(species.iterdir())
        chosen = sorted(rng.choice(len(files), min(per_class, len(files)), replace=False))
        paths += [files[i] for i in chosen]
        labels += [label] * len(chosen)
        held_out += [i % 3 == 2 for i in range(len(chosen))]
    return paths, np.array(labels), np.array(held_out)


def measure(args) -> dict:
    """One precision's figures, in this process (``--measure``)."""
    from kagglekit.core.config import DeviceConfig, StreamConfig
    from kagglekit.data.shards import build_shards
    from kagglekit.data.streams import ImageRows
    from kagglekit.evaluation.metrics import METRICS
    from kagglekit.learners.devices import resolve_devices
    from kagglekit.learners.finetune import FineTunedClassifier

    paths, labels, held_out = sample(args.source, args.per_class)
    rows = ImageRows.every(build_shards(paths, StreamConfig(), root=args.work / "shards"))
    train, test = rows.subset(np.flatnonzero(~held_out)), rows.subset(np.flatnonzero(held_out))
    devices = resolve_devices(DeviceConfig(strategy="none", precision=args.measure))
    learner = FineTunedClassifier("efficientnet_lite0", args.image_size, int(labels.max()) + 1, args.work / args.measure,
                                  epochs=args.epochs, head_epochs=1, top_epochs=1, batch_size=32, lr=args.lr,
                                  devices=devices, weights_dir=os.environ.get("KAGGLEKIT_WEIGHTS_DIR"))
    epoch_seconds, end_epoch = [], learner.end_epoch

    def timed(epoch, stage, logs, seconds, steps):  # each epoch's seconds, not just their sum
        epoch_seconds.append(seconds)
        end_epoch(epoch, stage, logs, seconds, steps)

    learner.end_epoch = timed
    learner.fit(train, labels[~held_out])
    learner.predict_proba(test, ["identity"])  # traced and warmed up
    started = time.perf_counter()
    proba = learner.predict_proba(test, ["identity"])
    inference = len(test) / (time.perf_counter() - started)
    per_epoch = learner.time.images / learner.time.epochs
    return {"precision": devices.precision,
            "train_images_per_s_last_epoch": per_epoch / epoch_seconds[-1],
            "train_images_per_s_all_epochs": learner.time.images / learner.time.seconds,
            "epoch_seconds": [round(s, 1) for s in epoch_seconds],
            "inference_images_per_s": inference,
            "held_out_micro_f1": float(METRICS.get("micro_f1")(labels[held_out], proba.argmax(1))),
            "held_out_images": int(held_out.sum()), "train_images": int((~held_out).sum())}


def child(args, precision: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    argv = [sys.executable, __file__, "--measure", precision, "--work", str(args.work), "--per-class",
            str(args.per_class), "--epochs", str(args.epochs), "--image-size", str(args.image_size),
            "--lr", str(args.lr), "--source", str(args.source)]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{precision} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=30, help="images per species (a third held out)")
    parser.add_argument("--epochs", type=int, default=4, help="head 1, top blocks 1, the rest above the stem")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--lr", type=float, default=3e-4, help="for a few hundred images (1e-3 is for 2,659)")
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--measure", choices=PRECISIONS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args)))
        return
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    print(f"CPU: {os.cpu_count()} cores; bf16 instructions: "
          f"{', '.join(f for f in ('avx512_bf16', 'amx_bf16') if f in flags) or 'none'}")
    with tempfile.TemporaryDirectory(prefix="kagglekit-bench-precision-") as work:
        args.work = Path(work)
        fp32, bf16 = results = [child(args, precision) for precision in PRECISIONS]
    for r in results:
        print(f"{r['precision']:>15}: train {r['train_images_per_s_last_epoch']:6.1f} img/s "
              f"(last epoch; {r['train_images_per_s_all_epochs']:.1f} over all, epochs {r['epoch_seconds']} s), "
              f"inference {r['inference_images_per_s']:6.1f} img/s, held-out micro-F1 {r['held_out_micro_f1']:.3f} "
              f"on {r['held_out_images']} images ({r['train_images']} trained on)")
    print(f"bfloat16 / float32: training "
          f"{bf16['train_images_per_s_last_epoch'] / fp32['train_images_per_s_last_epoch']:.2f}x, inference "
          f"{bf16['inference_images_per_s'] / fp32['inference_images_per_s']:.2f}x, held-out micro-F1 "
          f"{bf16['held_out_micro_f1'] - fp32['held_out_micro_f1']:+.3f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
