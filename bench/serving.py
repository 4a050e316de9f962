"""Benchmark: a trained run served over loopback HTTP, and its exports' parity.

Trains a tiny real Seedlings run (or takes RUN_DIR), serves it with ``kagglekit.serving.api`` on
127.0.0.1, and sends a bounded number of single-image ``POST /predict`` requests at concurrency 1 and
8: prints p50/p95 latency, images/s and how many model calls served them (concurrent requests share
calls: ``serving.batching``). Then exports every format and prints each model's max abs difference
from the run's own predictions. A segmentation run works too (pass RUN_DIR and --images).

    .venv/bin/python bench/serving.py [RUN_DIR] [--requests 64] [--formats keras savedmodel onnx tflite]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "plant-seedlings"
TINY = ("backbones: [efficientnet_lite0]\nimage_size: 64\nfolds: 2\ntta: [identity, hflip]\n"
        "train: {learner: head, views: [identity], head_epochs: 3, patience: 2}\n")


def tiny_run(work: Path) -> tuple[Path, Path]:
    from kagglekit.cli import main
    from kagglekit.competitions.builders import build_class_folder_competition

    data = build_class_folder_competition(SOURCE, work / "data", per_class=20, test_fraction=0.25)
    (work / "tiny.yaml").write_text(TINY)
    if main(["run", "seedlings", "--data", data, "--config", work / "tiny.yaml", "--output-dir", work / "out"]) != 0:
        sys.exit("the run failed")
    (run_dir,) = (work / "out" / "seedlings").iterdir()
    return run_dir, data / "test"


def load(url: str, app, images: list[bytes], requests_: int, concurrency: int) -> dict:
    import requests

    session_per_thread = {}

    def one(i: int) -> float:
        session = session_per_thread.setdefault(threading.get_ident(), requests.Session())
        started = time.perf_counter()
        reply = session.post(f"{url}/predict", files=[("files", (f"{i}.png", images[i % len(images)], "image/png"))],
                             timeout=120)
        reply.raise_for_status()
        return time.perf_counter() - started

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(concurrency)))  # warm-up: every thread's connection, the traced functions
        calls = app.state.batcher.calls
        started = time.perf_counter()
        latencies = list(pool.map(one, range(requests_)))
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": requests_, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "images_per_s": requests_ / wall,
            "model_calls": app.state.batcher.calls - calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="?", type=Path, help="a finished run (default: train a tiny classification run)")
    parser.add_argument("--images", type=Path, help="folder of images to send (default: the tiny run's test images)")
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency level")
    parser.add_argument("--formats", nargs="*", default=["keras", "savedmodel", "onnx", "tflite"])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kagglekit-bench-serving-"))
    os.environ.setdefault("KAGGLEKIT_CACHE", str(work / "cache"))
    os.environ.setdefault("KAGGLEKIT_LEDGER", str(work / "ledger.sqlite"))
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    run_dir, folder = (args.run_dir, args.images) if args.run_dir else tiny_run(work)
    if folder is None:
        sys.exit("pass --images with a folder of images to send")

    from kagglekit.cli import main as cli
    from kagglekit.data.images import scan_folder
    from kagglekit.serving.api import create_app, serving_in_background
    from kagglekit.serving.predictor import load_predictor

    images = [p.read_bytes() for p in scan_folder(folder, look_inside=False).images[:16]]
    results = []
    app = create_app(load_predictor(run_dir))
    with serving_in_background(app) as url:
        for concurrency in (1, 8):
            results.append(load(url, app, images, args.requests, concurrency))
    for r in results:
        print(f"concurrency {r['concurrency']}: {r['requests']} requests, p50 {r['p50_ms']:.1f} ms, "
              f"p95 {r['p95_ms']:.1f} ms, {r['images_per_s']:.1f} images/s, {r['model_calls']} model calls")
    if args.formats:
        out = work / "export"
        cli(["export", run_dir, "--format", *args.formats, "--out", out, "--check-images", folder])
        for name, model in json.loads((out / "export.json").read_text())["models"].items():
            for fmt, e in model["exports"].items():
                print(f"export {name} {fmt}: max abs difference from the run {e['max_abs_difference']:.2e}")


if __name__ == "__main__":
    main()
