"""GPU throughput of fine-tuning: EfficientNet at 224 px, mixed precision against float32 in one run, and
whether kagglekit's input pipeline keeps the device fed.

For each precision it times training steps on a batch already on the device (the model's ceiling) and
on ``data.streams.training_stream`` (640x480 JPEGs streamed from shards, decoded, cropped and augmented on
the CPU): if the stream is much slower than the ceiling, the input pipeline, not the GPU, sets the pace.

    python bench/gpu_throughput.py                 # H200-class GPU: batch 128, 30 timed steps
    python bench/gpu_throughput.py --tiny          # any CPU: tiny sizes, the same code paths
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def photos(folder: Path, n: int) -> list[Path]:
    """``n`` 640x480 JPEGs (smooth colour fields with noise: about a photo's size on disk)."""
    from PIL import Image

    def write(i: int) -> Path:
        rng = np.random.default_rng(i)
        rows, cols = np.mgrid[0:480, 0:640]
        fields = np.stack([rows / 4, cols / 5, (rows + cols) / 9], -1)
        base = rng.uniform(0, 255, 3) * 0.5 + fields * rng.uniform(0.2, 1)
        pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        return path

    with ThreadPoolExecutor() as pool:
        return list(pool.map(write, range(n)))


def measure(precision: str, size: int, batch: int, steps: int, backbone: str, rows) -> dict:
    import keras
    import tensorflow as tf

    from kagglekit.core.config import AugmentConfig, DeviceConfig
    from kagglekit.data.streams import training_stream
    from kagglekit.learners.devices import resolve_devices
    from kagglekit.learners.finetune import FineTunedClassifier

    devices = resolve_devices(DeviceConfig(precision=precision, strategy="none"))
    learner = FineTunedClassifier(backbone, size, 12, "/tmp/kagglekit-gpu-bench", epochs=1, head_epochs=0, top_epochs=0,
                                  batch_size=batch, freeze_stem=False, train_batchnorm=True, devices=devices)
    learner.model = learner.build()
    stage = learner.stages(learner.model)[-1]
    learner._compile(stage, batch * steps)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch * steps, size, size, 3), dtype=np.uint8)
    targets = np.eye(12, dtype=np.float32)[rng.integers(0, 12, batch * steps)]
    on_device = tf.data.Dataset.from_tensors((tf.constant(images[:batch], tf.float32), targets[:batch])).repeat(steps)
    stream = training_stream(rows, targets, size, batch, 0, 0, AugmentConfig())
    out = {"precision": devices.precision, "xla": devices.jit_compile}
    for name, data in (("device_batch", on_device), ("kagglekit_stream", stream)):
        learner.model.fit(data.take(3), verbose=0, shuffle=False)  # build, trace, warm up
        started = time.perf_counter()
        learner.model.fit(data, verbose=0, shuffle=False)
        out[f"{name}_images_per_s"] = round(batch * steps / (time.perf_counter() - started), 1)
    started = time.perf_counter()
    learner.model.predict(images.astype(np.float32), batch_size=batch, verbose=0)
    out["inference_images_per_s"] = round(len(images) / (time.perf_counter() - started), 1)
    keras.backend.clear_session()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes for a CPU check of the same code")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    args = parser.parse_args()
    size, batch, steps = (64, 8, 4) if args.tiny else (224, 128, 30)
    from kagglekit.learners.devices import accelerators

    kind, count = accelerators()
    print(f"device: {count} x {kind}; {args.backbone} at {size} px, batch {batch}, {steps} timed steps")
    from kagglekit.core.config import StreamConfig
    from kagglekit.data.shards import build_shards
    from kagglekit.data.streams import ImageRows

    with tempfile.TemporaryDirectory() as work:
        files = photos(Path(work), batch * steps)
        rows = ImageRows.every(build_shards(files, StreamConfig(), root=Path(work) / "shards"))
        # mixed_float16 named, not "auto" (which it is on a GPU): --tiny then runs float16's code path on a CPU too
        results = [measure(p, size, batch, steps, args.backbone, rows) for p in ("float32", "mixed_float16")]
    for r in results:
        fed = r["kagglekit_stream_images_per_s"] / r["device_batch_images_per_s"]
        print(f"{r['precision']:>15} (XLA {'on' if r['xla'] else 'off'}): train {r['device_batch_images_per_s']:8.1f} img/s "
              f"on a device batch, {r['kagglekit_stream_images_per_s']:8.1f} img/s from the stream "
              f"({fed:.2f} of it: {'fed' if fed > 0.9 else 'input-bound'}); inference {r['inference_images_per_s']:8.1f} img/s")
    speedup = results[1]["device_batch_images_per_s"] / results[0]["device_batch_images_per_s"]
    print(f"mixed precision vs float32: {speedup:.2f}x training throughput")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
