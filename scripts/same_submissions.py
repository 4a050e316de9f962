"""Proof that a change kept behaviour: the same configs, run at two git revisions, write byte-identical
submissions and out-of-fold scores.

A refactor (the task registry, the run-directory schema, learners taking explicit hyperparameters) must not
move a number. This runs ``kagglekit run`` on a small single-label classification competition (seedlings,
frozen-feature heads) and a small segmentation one (CamVid, fine-tuned encoder) at ``--base`` and at
``--head``, each revision in its own ``git worktree`` with its own cache (a feature cache filled by one
revision must not answer for the other), and compares ``submission.csv`` byte for byte and the CV figures.

    PYTHONPATH=. .venv/bin/python scripts/same_submissions.py --base fe6f41c            # against HEAD
    PYTHONPATH=. .venv/bin/python scripts/same_submissions.py --base main --head my-branch
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KAGGLEKIT_SHARED", REPO.parent / "shared")) / "data"
#: (competition, config): small, but every stage of each task's pipeline runs.
CASES = {
    "seedlings": (
        "time_budget: null\nseed: 0\nbackbones: [efficientnet_lite0]\nimage_size: 64\nfolds: 3\n"
        "tta: [identity, hflip]\ntrain: {learner: head, views: [identity], head_epochs: 30, patience: 5}\n"
    ),
    "camvid": (
        "time_budget: null\nseed: 0\ntta: [identity]\n"
        "segmentation: {input_size: [64, 96], epochs: 2, batch_size: 8, lr: 0.003}\n"
    ),
}


def build_data(work: Path) -> dict[str, Path]:
    """The competitions, built once (by the current checkout) and read by both revisions."""
    from kagglekit.competitions.builders import (build_class_folder_competition,
                                                 build_segmentation_folder_competition)
    from kagglekit.competitions.discovery import get_competition

    return {
        "seedlings": build_class_folder_competition(SHARED / "plant-seedlings", work / "data" / "seedlings",
                                                    per_class=10),
        "camvid": build_segmentation_folder_competition(SHARED / "camvid", get_competition("camvid"),
                                                        work / "data" / "camvid", n_train=40, n_test=10),
    }


def run_at(revision: str, work: Path, data: dict[str, Path]) -> dict[str, dict]:
    """Each case run at ``revision``: its submission's sha256 and its CV, by competition."""
    sha = subprocess.run(["git", "rev-parse", revision], cwd=REPO, check=True, capture_output=True,
                         text=True).stdout.strip()
    tree = work / f"tree-{sha[:10]}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=REPO, check=True,
                       capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(tree), "KERAS_BACKEND": "tensorflow",
           "KAGGLEKIT_CACHE": str(work / f"cache-{sha[:10]}"), "KAGGLEKIT_LEDGER": str(work / f"ledger-{sha[:10]}")}
    weights = Path(os.environ.get("KAGGLEKIT_CACHE", Path.home() / ".cache" / "kagglekit")) / "weights"
    if weights.is_dir():  # converted ImageNet weights are inputs, not what is compared
        env.setdefault("KAGGLEKIT_WEIGHTS_DIR", str(weights))
    found = {}
    for name, config in CASES.items():
        config_file = work / f"{name}.yaml"
        config_file.write_text(config)
        out = work / f"runs-{sha[:10]}"
        done = subprocess.run([sys.executable, "-m", "kagglekit", "run", name, "--data", str(data[name]),
                               "--config", str(config_file), "--output-dir", str(out)], cwd=tree, env=env)
        if done.returncode != 0:
            sys.exit(f"kagglekit run {name} failed at {revision} (exit {done.returncode})")
        (run_dir,) = (out / name).iterdir()
        metrics = json.loads((run_dir / "metrics.json").read_text())
        found[name] = {"submission_sha256": hashlib.sha256((run_dir / "submission.csv").read_bytes()).hexdigest(),
                       "cv_mean": metrics["cv_mean"], "fold_scores": metrics["fold_scores"]}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the revision before the change")
    parser.add_argument("--head", default="HEAD", help="the revision after it (default: HEAD)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kagglekit-same-submissions-"))
    try:
        data = build_data(work)
        before, after = run_at(args.base, work, data), run_at(args.head, work, data)
    finally:
        for tree in work.glob("tree-*"):
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
    same = True
    for name in CASES:
        equal = before[name] == after[name]
        same &= equal
        print(f"{name:10s} {'identical' if equal else 'DIFFERENT'}: {args.base} {before[name]}")
        print(f"{'':10s} {'':9s}  {args.head} {after[name]}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
