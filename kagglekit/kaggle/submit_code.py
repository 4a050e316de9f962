"""A code competition submission: a notebook version, whose output file Kaggle scores after rerunning
it on the hidden test set. Recorded in the ledger like a file submission (kaggle.submit), keyed by the
kernel version *and* the bytes of the output it was checked against: that pair is submitted once, also
when a retried request finds that the first one landed, and also from another ledger (Kaggle's list is
searched for the key's tag first).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from kagglekit.competitions.contract import Competition
from kagglekit.core.fileio import sha256_file
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.kernels import KernelVersion
from kagglekit.kaggle.submit import SubmitPolicy, submit_once
from kagglekit.runs.ledger import Ledger


def code_key(kernel: KernelVersion, output_sha256: str) -> str:
    """The ledger's sha256 of a code submission: which notebook version, with which output."""
    return hashlib.sha256(f"kernel {kernel}\noutput {output_sha256}".encode()).hexdigest()


def submit_kernel(service: KaggleService, ledger: Ledger, competition: Competition, kernel: KernelVersion,
                  output: Path, message: str, run_id: str | None = None, force: bool = False,
                  policy: SubmitPolicy = SubmitPolicy()) -> dict:
    """Submit ``kernel`` (whose run wrote ``output``, the competition's submission file) once; wait for the
    score of the rerun; returns the ledger row."""
    output = Path(output)
    key = code_key(kernel, sha256_file(output))
    what = f"notebook {kernel} output {output.name}"
    row = ledger.open_submission(competition.name, key, what, message, run_id, force)
    return submit_once(service, ledger, competition.slug, row, what,
                       lambda description: service.submit_code(competition.slug, kernel.ref, kernel.version,
                                                               output.name, description), force, policy)
