"""Benchmark: a 40,000-image class-folder competition at 384 px, from `kagglekit run` to its first training step.

Generates once (cached under ``--cache``, never in the repository) a synthetic class-folder competition of N
640x480 JPEGs in ``--classes`` classes that differ learnably (each class its own hue and shape, on noisy
smooth backgrounds), in 2 processes; then runs ``kagglekit run`` on it at ``--image-size`` (a YAML of a few lines,
with a fresh shard cache unless ``--warm``), watches the resident memory of the whole process tree (psutil) and
the log for the first training step, lets it train ``--after`` seconds more, kills it, and prints: the
generation time, the time to the first training step, the tree's peak RSS and the shard build rate.

    .venv/bin/python bench/scale.py [--images 40000] [--cache /tmp/scale] [--image-size 384] [--warm]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 640, 480
#: The log line the fine-tuning learner writes after a process's first training step.
FIRST_STEP = re.compile(r"first training step")
SHARDS = re.compile(r"shards train \((\d+) images\):.*?(\d+)/(\d+) \[([\d:]+)<[^,]*, *([\d.]+)img/s\]")


@functools.cache
def grain() -> np.ndarray:
    """Film grain twice the image's size (one per process): (2H, 2W, 1) int16."""
    return np.random.default_rng(1).normal(0, 12, (2 * HEIGHT, 2 * WIDTH, 1)).astype(np.int16)


def draw(index: int, label: int, classes: int, folder: Path) -> None:
    """One 640x480 JPEG of class ``label``: a smooth noisy background and shapes of the class's hue and kind."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(index)
    small = rng.uniform(0, 255, (HEIGHT // 32, WIDTH // 32, 3)).astype(np.uint8)
    background = np.asarray(Image.fromarray(small).resize((WIDTH, HEIGHT), Image.BICUBIC), dtype=np.int16)
    top, left = rng.integers(0, HEIGHT), rng.integers(0, WIDTH)
    noise = grain()[top:top + HEIGHT, left:left + WIDTH]  # a window of one texture: drawing it anew cost half the time
    image = Image.fromarray(np.clip(background // 2 + 64 + noise, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(image)
    hue = np.array([255, 255, 255]) * (np.arange(3) == label % 3) * 0.6 + 80 + rng.integers(0, 40, 3)
    for _ in range(rng.integers(3, 7)):
        x, y, r = rng.integers(40, WIDTH - 40), rng.integers(40, HEIGHT - 40), rng.integers(20, 70)
        box = (x - r, y - r, x + r, y + r)
        colour = tuple(int(c) for c in np.clip(hue + rng.normal(0, 20, 3), 0, 255))
        kind = (label // 3) % 3
        if kind == 0:
            pen.ellipse(box, fill=colour)
        elif kind == 1:
            pen.rectangle(box, fill=colour)
        else:
            pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    path = folder / f"img{index:06d}.jpg"
    image.save(path.with_suffix(".tmp"), format="JPEG", quality=90)
    os.replace(path.with_suffix(".tmp"), path)  # a killed generation leaves no half image: it resumes


def draw_many(jobs: list[tuple[int, int, int, str]]) -> tuple[int, int]:
    """(images listed, images drawn now: those a killed generation had not)."""
    todo = [job for job in jobs if not (Path(job[3]) / f"img{job[0]:06d}.jpg").exists()]
    for index, label, classes, folder in todo:
        draw(index, label, classes, Path(folder))
    return len(jobs), len(todo)


def generate(root: Path, n: int, n_test: int, classes: int, workers: int) -> tuple[float, int]:
    """The competition folder under ``root`` (built once, resumed if killed, reused when its marker says the
    same); (seconds spent, images drawn)."""
    spec = {"images": n, "test": n_test, "classes": classes, "size": [WIDTH, HEIGHT], "version": 1}
    marker = root / "complete.json"
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return 0.0, 0
    names = [f"class{c}" for c in range(classes)]
    for name in names:
        (root / "train" / name).mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(exist_ok=True)
    jobs = [(i, i % classes, classes, str(root / "train" / names[i % classes])) for i in range(n)]
    jobs += [(n + i, i % classes, classes, str(root / "test")) for i in range(n_test)]
    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        done = drawn = 0
        for count, new in pool.map(draw_many, [jobs[i:i + 500] for i in range(0, len(jobs), 500)]):
            done, drawn = done + count, drawn + new
            print(f"\rgenerating {done}/{len(jobs)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    tests = sorted(p.name for p in (root / "test").iterdir())
    (root / "sample_submission.csv").write_text("id,label\n" + "".join(f"{t},{names[0]}\n" for t in tests))
    marker.write_text(json.dumps(spec))
    return time.perf_counter() - started, drawn


def tree_rss(process) -> int:
    """Resident bytes of ``process`` and all its descendants (0 for any that just ended)."""
    import psutil

    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(data: Path, cache: Path, image_size: int, after: float, timeout: float, warm: bool) -> dict:
    """``kagglekit run`` on ``data`` until ``after`` seconds past its first training step; what it measured."""
    import psutil

    work = cache / "kagglekit"
    if not warm:
        shutil.rmtree(work / "shards", ignore_errors=True)
    (work / "runs").mkdir(parents=True, exist_ok=True)
    weights = Path(os.environ.get("KAGGLEKIT_CACHE", Path.home() / ".cache" / "kagglekit")) / "weights"
    competition = cache / "scale.yaml"
    competition.write_text("kind: class-folder\nname: scale\nslug: scale-synthetic\ntitle: Synthetic scale test\n"
                           "id_column: id\nlabel_column: label\nmetric: accuracy\nid_from: name\n")
    log_path = cache / "run.log"
    env = dict(os.environ, KAGGLEKIT_CACHE=str(work), KAGGLEKIT_WEIGHTS_DIR=str(weights), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "kagglekit", "run", str(competition), "--data", str(data),
               "--image-size", str(image_size), "--output-dir", str(work / "runs")]
    started = time.perf_counter()
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                 start_new_session=True)
    process, peak, first_step = psutil.Process(child.pid), 0, None
    try:
        while child.poll() is None:
            peak = max(peak, tree_rss(process))
            now = time.perf_counter() - started
            if first_step is None and FIRST_STEP.search(log_path.read_text(errors="replace")):
                first_step = now
                print(f"first training step after {now:.0f} s; training {after:.0f} s more", file=sys.stderr)
            if (first_step is not None and now > first_step + after) or now > timeout:
                break
            time.sleep(0.5)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    text = log_path.read_text(errors="replace")
    builds = SHARDS.findall(text)
    rate = float(builds[-1][4]) if builds and builds[-1][1] == builds[-1][2] else None
    return {"first_step_s": first_step, "peak_rss_gib": peak / 2 ** 30, "shard_rate": rate,
            "exit": child.returncode, "log": log_path, "tail": text.splitlines()[-15:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40_000, help="training images")
    parser.add_argument("--test", type=int, default=1000, help="test images")
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/scale"), help="where the data and runs go")
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--after", type=float, default=60, help="seconds to train after the first step")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before the run is killed anyway")
    parser.add_argument("--workers", type=int, default=2, help="processes generating the images")
    parser.add_argument("--warm", action="store_true", help="keep the shard cache of an earlier run (reuse)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `timeout` still ends the run's process group
    if REPO in args.cache.resolve().parents or args.cache.resolve() == REPO:
        parser.error("--cache must be outside the repository")
    data = args.cache / f"competition-{args.images}"
    seconds, drawn = generate(data, args.images, args.test, args.classes, args.workers)
    print(f"generation: {seconds:.0f} s" + (f", {drawn} images ({drawn / seconds:.0f} images/s)" if drawn else
                                            " (cached)"))
    result = run(data, args.cache, args.image_size, args.after, args.timeout, args.warm)
    if result["first_step_s"] is None:
        print("\n".join(result["tail"]))
        sys.exit(f"no training step (exit {result['exit']}); log: {result['log']}")
    print(f"{args.images} images at {args.image_size} px, {'warm' if args.warm else 'cold'} shard cache:")
    print(f"time to first training step: {result['first_step_s']:.0f} s ({result['first_step_s'] / 60:.1f} min)")
    print(f"peak RSS of the process tree: {result['peak_rss_gib']:.2f} GiB")
    print("shard build rate: " + (f"{result['shard_rate']:.0f} images/s" if result["shard_rate"] else "none built"))
    print(f"log: {result['log']}")


if __name__ == "__main__":
    main()
