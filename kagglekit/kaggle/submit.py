"""``submit``: a validated file to Kaggle exactly once, its score waited for and written down.

Never twice: the ledger row is written before the upload and carries a tag (``[kk <sha>-<row>]``)
that goes into the Kaggle description. After any failure that may have reached Kaggle (5xx,
timeout, dropped connection, a killed process) Kaggle's submission list is searched for the tag
before anything is sent again.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kagglekit.competitions.contract import Competition
from kagglekit.core.errors import KaggleError, SubmissionError
from kagglekit.core.fileio import sha256_file
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.retry import poll
from kagglekit.runs.ledger import Ledger, parse_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitPolicy:
    attempts: int = 4  # uploads tried at most
    wait: float = 600.0  # seconds to wait for the score (then the row stays "pending")


def score_of(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


#: The tag ``Ledger.open_submission`` ends every description with: the file's sha256 prefix and the row.
TAG = re.compile(r"\[kk ([0-9a-f]{8})-[0-9]+\]$")


def _first_tagged(service: KaggleService, slug: str, wanted):
    """The first of our submissions on Kaggle whose description's tag match satisfies ``wanted``, or None."""
    for found in service.submissions(slug):
        match = TAG.search((found.description or "").strip())
        if match and wanted(match):
            return found
    return None


def find_tagged(service: KaggleService, slug: str, description: str):
    """The submission carrying exactly this description's tag (this ledger row's own upload), or None."""
    tag = description[description.rfind("[kk "):]
    return _first_tagged(service, slug, lambda match: match.group(0) == tag)


def find_same_bytes(service: KaggleService, slug: str, sha256: str):
    """A submission on Kaggle of a file with this sha256, made by kagglekit with any ledger on any machine
    (the sha part of its description's tag matches), or None."""
    return _first_tagged(service, slug, lambda match: match.group(1) == sha256[:8])


def _refuse_if_on_kaggle(service: KaggleService, ledger: Ledger, slug: str, what: str, sha: str, row: dict) -> None:
    """SubmissionError if Kaggle already has these bytes from another ledger (another machine, a moved
    ledger); that submission is recorded in this ledger first, so its score shows here too."""
    try:
        found = find_same_bytes(service, slug, sha)
    except KaggleError as exc:  # nothing was sent: the row must not look like an upload in flight
        ledger.update_submission(row["id"], status="failed", error=str(exc))
        raise
    if found is None:
        return
    ledger.update_submission(row["id"], ref=found.ref)
    apply_status(ledger, row["id"], found)
    raise SubmissionError(
        f"{what}: these exact bytes (sha256 {sha[:12]}) are already on Kaggle as ref {found.ref} "
        f"({found.description!r}), submitted with another ledger or on another machine; it is now recorded in "
        f"{ledger.path}. A second submission would only spend the daily limit. Use --force to submit anyway.")


def submit_file(service: KaggleService, ledger: Ledger, competition: Competition, path: Path, message: str,
                data_dir: Path, run_id: str | None = None, force: bool = False,
                policy: SubmitPolicy = SubmitPolicy()) -> dict:
    """Validate, upload once, wait for the score; returns the ledger row."""
    path = Path(path)
    competition.validate(path, data_dir).raise_if_invalid()
    sha = sha256_file(path)
    run_id = run_id or ledger.run_for_file(competition.name, sha)
    row = ledger.open_submission(competition.name, sha, str(path), message, run_id, force)
    return submit_once(service, ledger, competition.slug, row, str(path),
                       lambda description: service.create_submission(competition.slug, path, description), force, policy)


def submit_once(service: KaggleService, ledger: Ledger, slug: str, row: dict, what: str,
                send: Callable[[str], int | None], force: bool = False, policy: SubmitPolicy = SubmitPolicy()) -> dict:
    """Make the ledger ``row``'s submission (``send(description)`` returns Kaggle's ref) unless an earlier attempt
    of it landed or Kaggle has the same ``row["sha256"]`` already; then wait for the score. Returns the row."""
    if row["ref"] is None:
        ref = _landed(service, slug, row) if row["resumed"] else None
        if ref is None and not force:
            _refuse_if_on_kaggle(service, ledger, slug, what, row["sha256"], row)
        if ref is None:
            ref = _upload(service, ledger, slug, send, row, policy)
        row = ledger.update_submission(row["id"], ref=ref, status="pending")
    return wait_for_score(service, ledger, slug, row, policy.wait)


def _landed(service: KaggleService, slug: str, row: dict) -> int | None:
    """The Kaggle ref of this row's submission if an earlier attempt of it reached Kaggle.

    An attempt whose answer was lost (timeout, dropped connection, killed process) may still be in
    flight; we take it that a request lands within the request timeout plus a second or never, so
    until then (counted from the attempt's start, ``updated_at``) we wait and look once more.
    """
    found = find_tagged(service, slug, row["description"])
    if found is None:
        young = service.timeout + 1 - (time.time() - parse_time(row["updated_at"]))
        if young > 0:
            log.info("an earlier attempt may still be in flight; checking Kaggle again in %.1f s", young)
            time.sleep(young)
            found = find_tagged(service, slug, row["description"])
    if found is not None:
        log.info("an earlier attempt reached Kaggle as ref %s; not submitting again", found.ref)
        return found.ref
    return None


def _upload(service: KaggleService, ledger: Ledger, slug: str, send: Callable[[str], int | None], row: dict,
            policy: SubmitPolicy) -> int:
    limits = service.limits(slug)
    if limits.num_allowed_now <= 0:
        ledger.update_submission(row["id"], status="failed", error="daily limit reached")
        raise KaggleError(f"cannot submit to {slug!r}: the daily submission limit is used up "
                          f"({limits.num_today} today); nothing was uploaded. Try again after midnight UTC.")
    delays = service.backoff.delays()
    for attempt in range(1, policy.attempts + 1):
        row = ledger.update_submission(row["id"], status="uploading")  # stamps the attempt's start
        try:
            ref = send(row["description"])
            if ref is None:  # accepted, but the reply lacks the ref
                found = find_tagged(service, slug, row["description"])
                ref = found.ref if found is not None else None
            if ref is not None:
                return ref
            raise KaggleError(f"{slug}: Kaggle accepted the submission but it is not in the submission list",
                              transient=True, ambiguous=True)
        except KaggleError as exc:
            ref = _landed(service, slug, row) if exc.ambiguous else None
            if ref is not None:
                return ref
            delay = next(delays, None) if exc.transient else None
            if delay is None or attempt == policy.attempts:
                if not exc.ambiguous:
                    ledger.update_submission(row["id"], status="failed", error=str(exc))
                    raise
                raise KaggleError(f"{exc} Kaggle's submission list does not show it yet; run the same command "
                                  "again later: it checks Kaggle before uploading again.") from None
            log.warning("submit attempt %d failed (%s); retrying in %.1f s", attempt, exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


def wait_for_score(service: KaggleService, ledger: Ledger, slug: str, row: dict, wait: float) -> dict:
    """Poll Kaggle until the submission is scored (or failed), or ``wait`` seconds pass."""

    def scored():
        found = next((s for s in service.submissions(slug) if s.ref == row["ref"]), None)
        return found if found is not None and found.status.name != "PENDING" else None

    found = poll(scored, timeout=wait, interval=0.5)
    if found is None:
        log.warning("ref %s is not scored after %.0f s; `kagglekit submissions` picks the score up later",
                    row["ref"], wait)
        return row
    return apply_status(ledger, row["id"], found)


def apply_status(ledger: Ledger, row_id: int, found) -> dict:
    """Copy Kaggle's status and scores of a submission into its ledger row."""
    status = {"COMPLETE": "complete", "ERROR": "error"}.get(found.status.name, "pending")
    return ledger.update_submission(row_id, status=status, public_score=score_of(found.public_score),
                                    private_score=score_of(found.private_score),
                                    error=found.error_description or None)


def describe(row: dict) -> str:
    if row["status"] == "complete":
        private = "" if row["private_score"] is None else f", private {row['private_score']:.5f}"
        return f"ref {row['ref']}: public score {row['public_score']:.5f}{private}"
    if row["status"] == "error":
        return f"ref {row['ref']}: Kaggle could not score it: {row['error']}"
    return f"ref {row['ref']}: {row['status']} (not scored yet)"
