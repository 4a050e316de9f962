"""Benchmark: a run's test-time views against all 8 dihedral views, on the saved networks of finished runs.

For every fine-tuned fold network of each run directory (``bench/train.py`` leaves its runs in its work folder), its
probabilities in each of the 8 views on the held-out fold it never trained on and, where the run's competition
folder holds the labelled test (``solution.csv``: bench/train.py's does), on the test; then, per network and in all,
the right predictions and the log-loss of the run's own ``tta`` views' mean (without the spare views a time budget
added) against all 8 views' mean, and the predictions that changed (wrong to right, right to wrong) with a two-sided
sign test (McNemar's exact test). No training: about 2.5 minutes a network of Plant Seedlings at 160 px on 2 cores.

    .venv/bin/python bench/views.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def probabilities(run_dir: Path) -> tuple[int, list[tuple[str, np.ndarray, np.ndarray]]]:
    """How many views the run's own ``tta`` has (without the spare views its time budget added), and (name,
    probabilities (views, images, classes), labels) of each fold network's held-out fold and, where labelled, of the
    test: the run's own views first, then the others."""
    from kagglekit.core.config import DIHEDRAL_VIEWS
    from kagglekit.data.shards import build_shards
    from kagglekit.data.streams import ImageRows
    from kagglekit.learners.devices import resolve_devices
    from kagglekit.pipelines.finetuning import network
    from kagglekit.pipelines.rebuild import load_run_config, run_competition
    from kagglekit.runs.layout import RUN_FILES
    from kagglekit.submission.writer import read_csv_strings

    config = load_run_config(run_dir)
    competition = run_competition(run_dir).resolve(Path(config.data))
    plan = run_dir / RUN_FILES.time_plan  # the views a budget added are not the run's own
    spare = json.loads(plan.read_text()).get("spare_views", []) if plan.is_file() else []
    own = [view for view in config.tta if view not in spare]
    views = [*own, *(view for view in DIHEDRAL_VIEWS if view not in own)]
    train, test = competition.load_train(Path(config.data)), competition.load_test(Path(config.data))
    fold_of = np.array(json.loads((run_dir / RUN_FILES.folds_file).read_text())["fold_of"])
    targets = np.eye(len(competition.classes), dtype=np.float32)[train.labels]  # as the run built its shards
    train_rows = ImageRows.every(build_shards(train.paths, config.stream, train.ids, targets, what="train"))
    solution = Path(config.data) / "solution.csv"
    test_rows, test_labels = None, None
    if solution.is_file():
        truth = read_csv_strings(solution)
        species = dict(zip(truth.iloc[:, 0], truth.iloc[:, 1]))
        test_labels = np.array([competition.classes.index(species[i]) for i in test.ids])
        test_rows = ImageRows.every(build_shards(test.paths, config.stream, test.ids, what="test"))
    found, devices = [], resolve_devices(config.device)
    for k in range(config.finetune.scored_folds):
        model = network(config, devices, run_dir, f"fold{k}", len(competition.classes))
        if not model.done:
            continue
        model.load()
        valid = np.flatnonzero(fold_of == k)
        found.append((f"{run_dir.name} fold{k} held-out fold", np.stack(
            [model.predict_proba(train_rows.subset(valid), [view]) for view in views]), train.labels[valid]))
        if test_rows is not None:
            found.append((f"{run_dir.name} fold{k} test", np.stack(
                [model.predict_proba(test_rows, [view]) for view in views]), test_labels))
        print(f"{run_dir.name} fold{k}: {len(valid)} held-out-fold images, views {', '.join(views)}", flush=True)
    return len(own), found


def main() -> None:
    from scipy.stats import binomtest

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    args = parser.parse_args()
    rows, gained, lost = [], 0, 0
    for run_dir in args.run_dirs:
        own, found = probabilities(run_dir)
        for name, proba, labels in found:
            means = proba[:own].mean(0), proba.mean(0)  # the run's own views, all 8
            (right_own, right_all), (loss_own, loss_all) = zip(*(
                (mean.argmax(1) == labels, -np.log(mean[np.arange(len(labels)), labels] + 1e-9).mean())
                for mean in means))
            gained, lost = gained + int((~right_own & right_all).sum()), lost + int((right_own & ~right_all).sum())
            rows.append((len(labels), int(right_own.sum()), int(right_all.sum()), loss_all < loss_own))
            print(f"{name}: {own} views {rows[-1][1]}, 8 views {rows[-1][2]} of {len(labels)} right; log-loss "
                  f"{loss_own:.4f} against {loss_all:.4f}")
    n, own_right, all_right, lower = (sum(column) for column in zip(*rows))
    print(f"\nin all: the runs' own views {own_right}, all 8 views {all_right} of {n} right; log-loss lower with 8 "
          f"for {lower} of {len(rows)} sets; changed: {gained} wrong to right, {lost} right to wrong (sign test p = "
          f"{binomtest(gained, gained + lost).pvalue if gained + lost else 1.0:.3f})")


if __name__ == "__main__":
    main()
