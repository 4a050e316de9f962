"""PASCAL VOC course pipeline on real photographs: ``kagglekit run pascal-voc``, scored on hidden images.

../shared holds no VOC photographs, so this bench writes CamVid's real road photographs and real masks in the
course's exact layout and RLE format (``build_voc_competition_from_photos``: cars, pedestrians and cyclists as
VOC's car, person and bicycle; every other VOC class never occurs, as rare classes do in the course's data).
SegNet train is the training set, SegNet val (other drives) the hidden test set. It prints the hidden joint Dice,
its two kinds of rows, and the constant answer's score on the same rows (the labels most training images hold,
empty masks), so a pipeline that loses to a constant shows here.

    PYTHONPATH=. .venv/bin/python bench/voc.py                        # the default run
    PYTHONPATH=. .venv/bin/python bench/voc.py --set segmentation.epochs=4 --set folds=3
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

from kagglekit.competitions.builders import CAMVID_AS_VOC, build_voc_competition_from_photos
from kagglekit.competitions.discovery import get_competition

REPO = Path(__file__).resolve().parents[1]
CAMVID = REPO.parent / "shared" / "data" / "camvid"
CAMVID_VOID = 11


def overrides(pairs: list[str]) -> dict:
    """``a.b=value`` pairs (values read as YAML) as a nested config dict."""
    config: dict = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    return config


def constant_answer(competition, data: Path, test_ids: list[str]) -> pd.DataFrame:
    """The best-known constant submission: the classes at least half the training images hold, empty masks."""
    labels = pd.read_csv(data / "train" / "train_set.csv").drop(columns="Id").to_numpy()
    frequent = labels.mean(0) >= 0.5
    return competition.submission_frame(test_ids, np.tile(frequent, (len(test_ids), 1)),
                                        [np.zeros((1, 1), np.uint8)] * len(test_ids))


def scores(competition, solution: pd.DataFrame, submission: pd.DataFrame) -> dict[str, float]:
    """Joint Dice, and the Dice of the classification rows and of the segmentation rows alone."""
    result = {"joint": competition.score(solution, submission)}
    for kind in ("classification", "segmentation"):
        rows = solution["Id"].str.endswith(f"_{kind}")
        result[kind] = competition.score(solution[rows], submission[submission["Id"].isin(solution["Id"][rows])])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=CAMVID)
    parser.add_argument("--work", type=Path, help="folder for the competition data and runs (default: a temp dir)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a run config override, e.g. segmentation.epochs=4 (repeatable)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="voc-bench-"))
    competition = get_competition("pascal-voc")
    data = build_voc_competition_from_photos(args.source, competition, work / "data", CAMVID_AS_VOC, CAMVID_VOID)
    config = work / "config.yaml"  # only the overrides: everything else is the competition's run defaults
    config.write_text(yaml.safe_dump(overrides(args.set)))

    started = time.time()
    command = [sys.executable, "-m", "kagglekit", "run", "pascal-voc", "--data", str(data), "--config", str(config),
               "--output-dir", str(work / "runs")]
    subprocess.run(command, check=True, cwd=REPO)
    minutes = (time.time() - started) / 60
    run_dir = max((work / "runs" / "pascal-voc").iterdir(), key=lambda p: p.stat().st_mtime)

    read = {"dtype": str, "keep_default_na": False}
    solution = pd.read_csv(data / "solution.csv", **read)
    submission = pd.read_csv(run_dir / "submission.csv", **read)
    test_ids = sorted({i.rsplit("_", 1)[0] for i in solution["Id"]}, key=int)
    model, constant = scores(competition, solution, submission), scores(
        competition, solution, constant_answer(competition, data, test_ids))
    metrics = yaml.safe_load((run_dir / "metrics.json").read_text())
    print(f"run: {run_dir} ({minutes:.1f} min wall)")
    print(f"CV (out of fold): {metrics['cv_mean']:.4f}")
    print(f"{'hidden test':<24}{'joint':>8}{'labels':>8}{'masks':>8}")
    for name, row in (("model", model), ("constant answer", constant)):
        print(f"{name:<24}{row['joint']:>8.4f}{row['classification']:>8.4f}{row['segmentation']:>8.4f}")
    print(f"model - constant (joint): {model['joint'] - constant['joint']:+.4f}")


if __name__ == "__main__":
    main()
