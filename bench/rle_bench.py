"""Time the RLE codecs at the VOC competition's scale: 750 test images x 20 x 500 x 375 masks.

Label maps are the real VOC masks (../shared/data/voc-masks) resized to 500 x 375, so the runs are
as many and as long as in real submissions. Prints seconds and images per second.

    PYTHONPATH=. .venv/bin/python bench/rle_bench.py [--images 750]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from kagglekit.data.masks import class_masks, read_label_map, resize_labels
from kagglekit.submission import rle

MASKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "voc-masks" / "masks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=750)
    parser.add_argument("--masks", type=Path, default=MASKS)
    args = parser.parse_args()
    files = sorted(args.masks.glob("*.png"))[: args.images]
    label_maps = [resize_labels(read_label_map(p), (500, 375)) for p in files]
    label_maps = [label_maps[i % len(label_maps)] for i in range(args.images)]
    classes = np.arange(1, 21)

    started = time.perf_counter()
    texts = [rle.encode(class_masks(m, classes), rle.ROW_MAJOR) for m in label_maps]
    encoded = time.perf_counter() - started

    started = time.perf_counter()
    decoded = [rle.decode(t, (20, 500, 375), rle.ROW_MAJOR) for t in texts]
    decoded_s = time.perf_counter() - started

    started = time.perf_counter()
    scores = [rle.dice(t, t, rle.ROW_MAJOR) for t in texts]
    dice_s = time.perf_counter() - started

    assert all(np.array_equal(d, class_masks(m, classes)) for d, m in zip(decoded, label_maps))
    assert all(s == 1.0 for s in scores)
    n = len(texts)
    runs = sum(len(t.split()) // 2 for t in texts)
    print(f"{n} images of 20x500x375 masks, {runs / n:.0f} runs per image on average")
    for name, seconds in (("encode", encoded), ("decode", decoded_s), ("dice from RLE", dice_s)):
        print(f"{name:>14}: {seconds:6.2f} s  {n / seconds:8.1f} images/s")


if __name__ == "__main__":
    main()
