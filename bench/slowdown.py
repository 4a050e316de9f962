"""Benchmark: does a time budget hold when the machine slows down after the run planned it?

A plan is made from a step timed at the start; a machine that is busier later (a neighbour on a shared host, a
throttled CPU) trains slower than planned. The re-plan after each scored fold and each network's deadline
(``kagglekit.learners.budget``) are what keep the budget then. This runs ``kagglekit run seedlings`` on a subset of
the real Plant Seedlings images (``--per-class`` per species, a fifth held out as test) with ``--budget`` seconds,
waits for the plan, then moves the run into a cgroup (v1 ``cpu`` or v2) whose CPU quota is ``--cores`` cores, and
prints the plan, the networks stopped at their deadline, the re-plans, the actual seconds against the budget and
the CV. Needs root (it writes the cgroup); a machine without writable cgroups is told so.

    .venv/bin/python bench/slowdown.py [--per-class 40] [--budget 240] [--cores 0.6] [--work /tmp/slowdown]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "plant-seedlings"
PERIOD_US = 100_000


def quota_cgroup(cores: float) -> Path:
    """A cgroup with a CPU quota of ``cores`` cores; its ``cgroup.procs`` path."""
    v1, v2 = Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")
    try:
        if v1.is_dir():
            group = v1 / "kagglekit-slowdown"
            group.mkdir(exist_ok=True)
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(int(cores * PERIOD_US)))
        else:
            group = v2 / "kagglekit-slowdown"
            group.mkdir(exist_ok=True)
            (group / "cpu.max").write_text(f"{int(cores * PERIOD_US)} {PERIOD_US}")
    except OSError as error:
        sys.exit(f"cannot make a CPU-quota cgroup here ({error}): run as root on a machine with writable cgroups")
    return group / "cgroup.procs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--budget", type=float, default=240.0, help="the run's time budget, seconds")
    parser.add_argument("--cores", type=float, default=0.6, help="the CPU quota after planning, cores")
    parser.add_argument("--work", type=Path, default=Path("/tmp/slowdown"))
    args = parser.parse_args()

    from kagglekit.competitions.builders import build_class_folder_competition

    procs = quota_cgroup(args.cores)
    shutil.rmtree(args.work, ignore_errors=True)
    data = build_class_folder_competition(SHARED, args.work / "data", per_class=args.per_class, test_fraction=0.2)
    log = args.work / "run.log"
    with log.open("w") as out:
        run = subprocess.Popen([sys.executable, "-m", "kagglekit", "run", "seedlings", "--data", str(data),
                                "--time-budget", str(args.budget), "--output-dir", str(args.work / "runs")],
                               cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    started = time.monotonic()
    while "time budget" not in log.read_text() and run.poll() is None:
        time.sleep(0.5)
    procs.write_text(str(run.pid))
    slowed = time.monotonic() - started
    run.wait()
    procs.parent.rmdir()  # empty once the run has ended
    if run.returncode:
        sys.exit(f"the run failed ({run.returncode}): see {log}")
    (run_dir,) = (args.work / "runs" / "seedlings").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    plan = metrics["time_budget"]
    print(f"{metrics['train_images']} training images ({args.per_class} per species, a fifth held out as test); "
          f"slowed to {args.cores} cores {slowed:.0f} s after the start, once planned")
    print(f"plan: {plan['epochs']} epochs a network (a step {plan['step_s']:.2f} s), estimated "
          f"{plan['estimated_s']:.0f} s; scored folds after its re-plans: {plan['scored_folds']}")
    print(f"stops: {plan['stops']}")
    print(f"re-plans: {plan['replans']}")
    print(f"epochs trained: {metrics['epochs']}; CV {metrics['cv_mean']:.4f} (constant answer "
          f"{metrics['baseline']['score']:.4f})")
    verdict = "kept" if plan["kept"] else "EXCEEDED"
    print(f"actual {plan['actual_s']:.0f} s of a {plan['budget_s']:.0f} s budget: {verdict}")


if __name__ == "__main__":
    main()
