"""A finished run's notebook, run on Kaggle, its output checked against the run's own: ``publish_run``.

generate.py writes the notebook and its inputs bundle; the bundle becomes a dataset (a new version only
when its files changed: kaggle.datasets), the notebook a kernel that reads the competition and that
dataset with the internet off (kaggle.kernels). Its run is waited for, the submission file it wrote is
downloaded and compared with the run's submission.csv, and all of it is recorded in ``<run>/publish.json``.
Publishing the run again with the same code cells, inputs and accelerator finds that kernel version in
publish.json and pushes nothing (an interrupted publish picks up the run it was waiting for).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import nbformat

from kagglekit.competitions.contract import Competition
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import DataError, KaggleError
from kagglekit.core.fileio import atomic_write_json, sha256_file
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.datasets import publish_dataset
from kagglekit.kaggle.kernels import KernelVersion, fetch_output, push_kernel, wait_for_kernel
from kagglekit.notebook.generate import generate_notebook
from kagglekit.runs.layout import RUN_FILES
from kagglekit.submission.writer import read_csv_strings

log = logging.getLogger(__name__)
OUTPUT = "submission.csv"  # what the generated notebook writes (template.py's OUTPUT)
ACCELERATORS = {"none": None, "gpu": "NvidiaTeslaT4"}  # kaggle kernels push --accelerator
QUEUE_MARGIN = 600.0  # seconds allowed for waiting in Kaggle's queue, on top of the run's own limit
MAX_LISTED = 10  # differing rows named in an error


@dataclass(frozen=True)
class Publication:
    record: dict  # what publish.json holds
    output: Path  # the notebook's submission file, as downloaded

    @property
    def kernel(self) -> KernelVersion:
        return KernelVersion(self.record["kernel"], self.record["kernel_version"])


def default_accelerator(config: RunConfig) -> str:
    """``gpu`` when the run's config asked for GPUs (several devices, or float16 mixed precision), else ``none``."""
    return "gpu" if config.device.strategy == "mirrored" or config.device.precision == "mixed_float16" else "none"


def publish_run(service: KaggleService, competition: Competition, run_dir: Path, out_dir: Path = Path("notebooks"),
                accelerator: str | None = None, timeout: float = 3600.0, weights_dir: str | None = None,
                ledger_path: Path | None = None, allow_code_change: bool = False) -> Publication:
    """Publish ``run_dir``'s notebook and inputs, run it on Kaggle (at most ``timeout`` seconds) and check its
    output; DataError naming the rows when the output differs from the run's submission."""
    run_dir = Path(run_dir)
    accelerator = accelerator or default_accelerator(RunConfig.load(run_dir / RUN_FILES.config))
    made = generate_notebook(competition, run_dir, out_dir, weights_dir, ledger_path, kernel_metadata=True,
                             owner=service.credentials.username, allow_code_change=allow_code_change,
                             enable_gpu=accelerator == "gpu")
    dataset = publish_dataset(service, made.bundle)
    wanted = {"competition": competition.slug, "dataset": dataset.ref, "dataset_version": dataset.version,
              "dataset_sha256": dataset.sha256, "notebook_code_sha256": code_digest(made.notebook),
              "accelerator": accelerator}
    record = read_record(run_dir)
    if all(record.get(key) == value for key, value in wanted.items()) and record.get("status") in ("running", "complete"):
        kernel = KernelVersion(record["kernel"], record["kernel_version"])
        log.info("notebook %s: already published from this run (same code, inputs and accelerator); not pushed again",
                 kernel)
    else:
        kernel = push_kernel(service, made.kernel_dir, timeout, ACCELERATORS[accelerator])
        record = write_record(run_dir, {**wanted, "kernel": kernel.ref, "kernel_version": kernel.version,
                                        "status": "running"})
    try:
        wait_for_kernel(service, kernel, timeout + QUEUE_MARGIN)
        output = fetch_output(service, kernel, out_dir / f"{made.notebook.stem}-output") / OUTPUT
        if not output.is_file():
            raise KaggleError(f"notebook {kernel} ran, but its output has no {OUTPUT}; look at its log on Kaggle")
        how = compare_submissions(output, run_dir / RUN_FILES.submission, competition.id_column, str(kernel))
    except (KaggleError, DataError) as exc:
        if not getattr(exc, "transient", False):  # still running: publish again picks it up
            write_record(run_dir, {**record, "status": "error", "error": str(exc).splitlines()[0]})
        raise
    record = write_record(run_dir, {**record, "status": "complete", "output_sha256": sha256_file(output),
                                    "output_matches": how})
    return Publication(record, output)


def code_digest(notebook: Path) -> str:
    """sha256 of a notebook's code cells: what a kernel run depends on (the report's text does not count)."""
    cells = nbformat.read(notebook, as_version=4).cells
    return hashlib.sha256("\n\0".join(c.source for c in cells if c.cell_type == "code").encode()).hexdigest()


def compare_submissions(output: Path, expected: Path, id_column: str, kernel: str) -> str:
    """How the notebook's ``output`` equals the run's submission: ``bytes`` or ``values`` (the same value for
    every id, in any row order or quoting); DataError naming the ids that differ otherwise."""
    if output.read_bytes() == expected.read_bytes():
        return "bytes"
    ours, theirs = (read_csv_strings(p).set_index(id_column) for p in (output, expected))
    if list(ours.columns) != list(theirs.columns):
        raise DataError(f"notebook {kernel} wrote {OUTPUT} with columns {list(ours.columns)}, the run's {expected} has "
                        f"{list(theirs.columns)}")
    ids = ours.index.union(theirs.index)
    differ = [i for i in ids if i not in ours.index or i not in theirs.index
              or not ours.loc[i].equals(theirs.loc[i])]
    if not differ:
        return "values"
    listed = ", ".join(map(str, differ[:MAX_LISTED])) + (", ..." if len(differ) > MAX_LISTED else "")
    raise DataError(f"notebook {kernel}'s {OUTPUT} differs from {expected} in {len(differ)} of {len(ids)} rows "
                    f"({id_column}: {listed}); the notebook does not reproduce the run. Check that it reads the same "
                    "competition data the run used, then publish again")


def read_record(run_dir: Path) -> dict:
    path = Path(run_dir) / RUN_FILES.publish
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        log.warning("%s is not JSON; publishing afresh", path)
        return {}


def write_record(run_dir: Path, record: dict) -> dict:
    atomic_write_json(Path(run_dir) / RUN_FILES.publish, record)
    return record
