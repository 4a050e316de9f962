"""What the local Kaggle service knows: accounts, hosted competitions, uploads and submissions.

All of it lives in memory behind one lock; methods raise ``ServiceError`` with the HTTP status and
the message kaggle.com would give.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import Competition
from kagglekit.core.manifest import MANIFEST
from kagglekit.kaggle_service.hidden_test import SOLUTION, split_hidden_test
from kagglekit.kaggle_service.scoring import public_mask, score_submission

ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # fixed, so the same data gives the same zip bytes (and ETag)
#: kaggle.com's answer to a file submitted to a code competition.
CODE_ONLY = ("Submission not allowed: this is a code competition; submissions must be made from a notebook "
             "(its output file is scored after Kaggle reruns it on the hidden test set)")


class ServiceError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class HostedCompetition:
    competition: Competition
    data_dir: Path  # Kaggle layout (what participants download)
    zip_path: Path
    solution: pd.DataFrame
    public: np.ndarray
    daily_limit: int = 5
    participants: set[str] | None = None  # users who accepted the rules; None = everyone
    files: list[tuple[str, int]] = field(default_factory=list)  # (name, bytes) inside the zip
    etag: str = ""
    created: datetime = field(default_factory=utcnow)
    hidden_dir: Path | None = None  # a code competition's hidden test set (see hidden_test.py)

    @property
    def slug(self) -> str:
        return self.competition.slug

    @property
    def code_competition(self) -> bool:
        return self.hidden_dir is not None


def host_competition(competition: Competition, data_dir: Path, work_dir: Path, daily_limit: int = 5,
                     public_fraction: float = 0.3, participants: set[str] | None = None,
                     seed: int = 0, code_competition: bool = False) -> HostedCompetition:
    """Publish ``data_dir`` (everything but solution.csv) as ``<work_dir>/<slug>.zip``. A code competition
    publishes only part of the test set, and scores notebooks on the rest (``split_hidden_test``)."""
    data_dir, work_dir = Path(data_dir), Path(work_dir)
    hidden = None
    if code_competition:
        split = split_hidden_test(competition, data_dir, work_dir / f"{competition.slug}-test-sets", seed=seed)
        data_dir, hidden = split.public, split.hidden
    solution = pd.read_csv((hidden or data_dir) / SOLUTION, dtype=str, keep_default_na=False, na_filter=False)
    zip_path = work_dir / f"{competition.slug}.zip"
    files = [p for p in sorted(data_dir.rglob("*")) if p.is_file() and p.name not in (SOLUTION, MANIFEST)]
    if not zip_path.is_file():
        work_dir.mkdir(parents=True, exist_ok=True)
        tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
            for path in files:
                info = zipfile.ZipInfo(path.relative_to(data_dir).as_posix(), ZIP_DATE)
                archive.writestr(info, path.read_bytes())
        tmp.replace(zip_path)
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    return HostedCompetition(
        competition=competition, data_dir=data_dir, zip_path=zip_path, solution=solution,
        public=public_mask(len(solution), public_fraction, seed), daily_limit=daily_limit,
        participants=participants, etag=f'"{digest[:32]}"', hidden_dir=hidden,
        files=[(p.relative_to(data_dir).as_posix(), p.stat().st_size) for p in files],
    )


@dataclass
class Upload:
    slug: str
    username: str
    file_name: str
    size: int
    data: bytearray = field(default_factory=bytearray)
    used: bool = False

    @property
    def complete(self) -> bool:
        return len(self.data) == self.size


@dataclass
class Submission:
    ref: int
    slug: str
    username: str
    file_name: str
    description: str
    blob: bytes
    date: datetime
    status: str = "PENDING"  # PENDING, COMPLETE, ERROR (kagglesdk SubmissionStatus names)
    kernel: str = ""  # a code submission's notebook version, <owner>/<slug>/<version>
    public_score: float | None = None
    private_score: float | None = None
    error: str = ""


class ServiceState:
    def __init__(self, users: dict[str, str]):
        self.lock = threading.RLock()
        self.users = dict(users)
        self.competitions: dict[str, HostedCompetition] = {}
        self.uploads: dict[str, Upload] = {}
        self.submissions: list[Submission] = []
        self.download_secret = secrets.token_hex(16)

    # -- access ------------------------------------------------------------------------------
    def authenticate(self, username: str | None, key: str | None) -> str:
        if not username or self.users.get(username) is None or not secrets.compare_digest(
                self.users[username].encode(), (key or "").encode()):
            raise ServiceError(401, "Unauthenticated: the username or API key is not valid")
        return username

    def competition(self, slug: str) -> HostedCompetition:
        hosted = self.competitions.get(slug)
        if hosted is None:
            raise ServiceError(404, f"Competition '{slug}' not found")
        return hosted

    def joined(self, username: str, slug: str, doing: str) -> HostedCompetition:
        hosted = self.competition(slug)
        if hosted.participants is not None and username not in hosted.participants:
            raise ServiceError(403, f"You must accept this competition's rules before you'll be able to {doing}")
        return hosted

    # -- submissions -------------------------------------------------------------------------
    def start_upload(self, username: str, slug: str, file_name: str, size: int) -> str:
        with self.lock:
            if self.joined(username, slug, "submit").code_competition:
                raise ServiceError(400, CODE_ONLY)
            token = secrets.token_hex(12)
            self.uploads[token] = Upload(slug, username, file_name, int(size))
            return token

    def upload(self, token: str) -> Upload:
        upload = self.uploads.get(token)
        if upload is None:
            raise ServiceError(404, "No such upload")
        return upload

    def used_today(self, username: str, slug: str) -> int:
        today = utcnow().date()
        return sum(1 for s in self.submissions if s.username == username and s.slug == slug
                   and s.date.date() == today and s.status != "ERROR")

    def create_submission(self, username: str, slug: str, token: str, description: str) -> Submission:
        with self.lock:
            hosted = self.joined(username, slug, "submit")
            upload = self.uploads.get(token)
            if upload is None or upload.slug != slug or upload.username != username:
                raise ServiceError(400, "Invalid blob file token")
            if upload.used:
                raise ServiceError(400, "This upload was already submitted")
            if not upload.complete:
                raise ServiceError(400, f"The upload is incomplete ({len(upload.data)} of {upload.size} bytes)")
            submission = self._add_submission(hosted, username, upload.file_name, description, bytes(upload.data))
            upload.used = True
            return submission

    def create_code_submission(self, username: str, slug: str, kernel: str, file_name: str,
                               description: str) -> Submission:
        """A submission of notebook version ``kernel``; its file comes later, from the rerun."""
        with self.lock:
            hosted = self.joined(username, slug, "submit")
            if not hosted.code_competition:
                raise ServiceError(400, f"{slug} is not a code competition: submit the notebook's output file")
            return self._add_submission(hosted, username, file_name, description, b"", kernel)

    def _add_submission(self, hosted: HostedCompetition, username: str, file_name: str, description: str,
                        blob: bytes, kernel: str = "") -> Submission:
        if self.used_today(username, hosted.slug) >= hosted.daily_limit:
            raise ServiceError(400, "Submission not allowed: Your team has used its daily Submission "
                                    f"allowance ({hosted.daily_limit}) today, please try again tomorrow UTC")
        submission = Submission(len(self.submissions) + 1, hosted.slug, username, file_name, description,
                                blob, utcnow(), kernel=kernel)
        self.submissions.append(submission)
        return submission

    def fail(self, submission: Submission, error: str) -> None:
        with self.lock:
            submission.status, submission.error = "ERROR", error

    def score(self, submission: Submission) -> None:
        hosted = self.competitions[submission.slug]
        try:
            public, private = score_submission(hosted.competition, hosted.solution, hosted.public, submission.blob)
        except ValueError as exc:
            self.fail(submission, str(exc))
            return
        with self.lock:
            submission.public_score, submission.private_score = public, private
            submission.status = "COMPLETE"

    def submissions_of(self, username: str, slug: str) -> list[Submission]:
        with self.lock:
            self.competition(slug)
            return sorted((s for s in self.submissions if s.username == username and s.slug == slug),
                          key=lambda s: s.ref, reverse=True)

    def leaderboard(self, slug: str) -> list[Submission]:
        """Each team's best public score, best first (ties: earlier submission first)."""
        with self.lock:
            self.competition(slug)
            best: dict[str, Submission] = {}
            for s in self.submissions:
                if s.slug == slug and s.status == "COMPLETE":
                    held = best.get(s.username)
                    if held is None or s.public_score > held.public_score:
                        best[s.username] = s
            return sorted(best.values(), key=lambda s: (-s.public_score, s.date))
