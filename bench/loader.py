"""Benchmark: images/s of kagglekit's streamed loader against a bare PIL decode + resize loop, same files.

Reads the Plant Seedlings images (or FOLDER's), warms the page cache, then times in one process:

1. a bare loop: ``PIL.Image.open`` -> RGB -> antialiased bilinear resize to SIZE, one image at a time;
2. building the shards (cold, into a temporary cache: paid once per set of files);
3. ``streams.eval_stream`` over the shards: decode in the graph (DCT-scaled JPEG), resize, batches;
4. ``streams.training_stream``: the same plus a random resized crop and the Keras augmentation layers;
5. the old loader, ``loaders.image_batches`` (PIL under ``tf.numpy_function``), for reference.

Prints each one's images/s, the streamed loader's ratio to the bare loop, and the peak RSS after each step.

    .venv/bin/python bench/loader.py [FOLDER] [--size 224] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "plant-seedlings"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def report(name: str, rate: float) -> float:
    print(f"{name:<52} {rate:8.1f} images/s   peak RSS {peak_rss_gib():.2f} GiB", flush=True)
    return rate


def timed(name: str, n: int, work) -> float:
    started = time.perf_counter()
    work()
    return report(name, n / (time.perf_counter() - started))


def timed_batches(name: str, batches) -> float:
    """Images/s of an iterator of batches, from its second batch on (the first pays the graph's tracing)."""
    batches = iter(batches)
    next(batches)
    started, n = time.perf_counter(), 0
    for batch in batches:
        n += len(batch[0] if isinstance(batch, tuple) else batch)
    return report(name, n / (time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=SOURCE)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PIL import Image

    from kagglekit.data.images import is_image_file

    paths = sorted(p for p in args.folder.rglob("*") if is_image_file(p))[:args.limit or None]
    if not paths:
        sys.exit(f"{args.folder}: no images")
    for path in paths:  # the page cache warm for every loader alike
        path.read_bytes()
    size, n = args.size, len(paths)
    print(f"{n} images from {args.folder} at {size} px on {os.cpu_count()} cores")

    def bare_loop():
        for path in paths:
            with Image.open(path) as image:
                np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)

    bare = timed("bare PIL decode + resize loop", n, bare_loop)

    import tensorflow as tf

    from kagglekit.core.config import AugmentConfig, StreamConfig
    from kagglekit.data.loaders import image_batches
    from kagglekit.data.shards import build_shards
    from kagglekit.data.streams import ImageRows, eval_stream, training_stream

    tf.constant(0)  # TensorFlow's start-up is not the loaders' time
    with tempfile.TemporaryDirectory() as cache:
        shards = []
        timed("shard build (once per set of files)", n,
              lambda: shards.append(build_shards(paths, StreamConfig(), root=Path(cache))))
        rows = ImageRows.every(shards[0])

        streamed = timed_batches("streamed loader (eval_stream)",
                                 eval_stream(rows, size, args.batch).as_numpy_iterator())
        targets = np.zeros((n, 1), np.float32)
        timed_batches("streamed + cropped, no Keras layers (training_stream)", training_stream(
            rows, targets, size, args.batch, 0, 0, AugmentConfig(horizontal_flip=False, vertical_flip=False, rotation=0,
                                                                 shift=0, zoom=0, channel_shift=0)).as_numpy_iterator())
        timed_batches("streamed + default augmentation (training_stream)", training_stream(
            rows, targets, size, args.batch, 0, 0, AugmentConfig()).as_numpy_iterator())
    timed_batches("old loader (image_batches: PIL in numpy_function)", image_batches(paths, size, args.batch))
    print(f"streamed loader / bare PIL loop: {streamed / bare:.2f}x")


if __name__ == "__main__":
    main()
