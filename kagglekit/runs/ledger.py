"""The score ledger: every run and every submission, in one SQLite file per user.

The ledger (``$KAGGLEKIT_LEDGER``, else ``ledger.sqlite`` in the user data folder) answers "how did each
idea do, on CV and on the leaderboard?", keyed by competition and file hash, whatever folder a run was
made in. It is written in short transactions in WAL mode, so a crash loses at most the
row being written and readers never see half a row. A submission row is written *before* the
upload ("uploading"), so an interrupted submit can be reconciled with Kaggle instead of repeated.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pandas as pd
import platformdirs

from kagglekit.core.errors import DataError, KagglekitError, SubmissionError
from kagglekit.core.fileio import sha256_file

#: Submission states: uploading (outcome unknown until checked with Kaggle), pending (Kaggle has it,
#: scoring), complete, error (Kaggle could not score it), failed (never reached Kaggle).
UNFINISHED = ("uploading", "pending")
LEDGER_ENV = "KAGGLEKIT_LEDGER"
MAX_MESSAGE = 180  # characters of the message kept in the Kaggle description (before the tag)
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, competition TEXT NOT NULL, config_hash TEXT, backbones TEXT, metric TEXT,
    cv_mean REAL, cv_std REAL, fold_scores TEXT, seconds REAL, git_commit TEXT, run_dir TEXT,
    submission_sha256 TEXT, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, competition TEXT NOT NULL, run_id TEXT REFERENCES runs(run_id),
    sha256 TEXT NOT NULL, file TEXT, message TEXT, description TEXT, ref INTEGER, status TEXT NOT NULL,
    public_score REAL, private_score REAL, error TEXT, submitted_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS submissions_sha ON submissions (competition, sha256);
"""
#: What each run used (``metrics.json``'s ``timing``); added to ledgers made before these columns existed.
USAGE_COLUMNS = {"device": "TEXT", "seconds_per_epoch": "REAL", "train_images_per_s": "REAL",
                 "predict_images_per_s": "REAL", "peak_memory_gib": "REAL"}


def default_ledger_path() -> Path:
    """The user's one ledger, wherever runs are written: ``$KAGGLEKIT_LEDGER``, else ``ledger.sqlite`` in
    the user data folder (``~/.local/share/kagglekit`` on Linux), so every run and submission of every
    project on this machine is checked against the same history."""
    override = os.environ.get(LEDGER_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("kagglekit", appauthor=False)) / "ledger.sqlite"


class LedgerError(KagglekitError):
    """The ledger file cannot be opened or is damaged; the message names it and how to start afresh."""

    exit_code = DataError.exit_code  # a file that cannot be read, like any other


@contextlib.contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    """SQLite and pandas errors as a LedgerError naming the file and the way out."""
    try:
        yield
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise LedgerError(f"{path}: the score ledger is locked by another kagglekit process ({exc}); "
                              "try again when it has finished") from exc
        raise LedgerError(
            f"{path}: the score ledger cannot be read ({exc}). If the file is damaged, move it aside "
            f"(mv '{path}' '{path}.broken'): kagglekit then starts a new, empty ledger there "
            "(Kaggle keeps your submissions: `kagglekit submissions COMPETITION` lists them)") from exc


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(sep=" ", timespec="milliseconds")[:23]


def parse_time(text: str) -> float:
    """Seconds since the epoch of a ledger time (UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit the code was at (with ``+dirty`` for uncommitted changes), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


class Ledger:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot create the score ledger's folder ({exc}); "
                              f"set {LEDGER_ENV} or pass --ledger to put it elsewhere") from exc
        with _sqlite_errors(self.path):
            db = self._connect()
            try:
                db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
                present = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
                for column, kind in USAGE_COLUMNS.items():
                    if column not in present:
                        db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
                damage = [row[0] for row in db.execute("PRAGMA quick_check")]  # truncation shows here, not mid-submit
                if damage != ["ok"]:
                    raise sqlite3.DatabaseError(f"damaged: {'; '.join(damage[:3])}")
            finally:
                db.close()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    @contextlib.contextmanager
    def _transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction: committed on success, rolled back on any error; the connection closed."""
        with _sqlite_errors(self.path):
            db = self._connect()
            try:
                db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
                try:
                    yield db
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                db.close()

    # -- runs --------------------------------------------------------------------------------
    def record_run(self, result, config) -> str:
        """Remember a finished run (idempotent: recording it again updates the row)."""
        run_id = Path(result.run_dir).name
        submission = Path(result.submission)
        row = {
            "run_id": run_id, "competition": result.competition, "config_hash": config.hash(),
            "backbones": ",".join(config.backbones), "metric": result.metric, "cv_mean": float(result.cv_mean),
            "cv_std": float(result.cv_std), "fold_scores": json.dumps([float(s) for s in result.fold_scores]),
            "seconds": float(result.seconds), "git_commit": git_commit(), "run_dir": str(result.run_dir),
            "submission_sha256": sha256_file(submission) if submission.is_file() else None, "created_at": _now(),
            **{column: result.extra.get("timing", {}).get(column) for column in USAGE_COLUMNS},
        }
        with self._transaction() as db:
            db.execute(f"INSERT OR REPLACE INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       list(row.values()))
        return run_id

    def run_for_file(self, competition: str, sha256: str) -> str | None:
        """The newest run whose submission.csv has exactly these bytes."""
        with self._transaction() as db:
            found = db.execute("SELECT run_id FROM runs WHERE competition = ? AND submission_sha256 = ? "
                               "ORDER BY created_at DESC LIMIT 1", (competition, sha256)).fetchone()
        return found["run_id"] if found else None

    def history(self, competition: str, include_unlinked: bool = False) -> pd.DataFrame:
        """One row per run and submission of it (runs without one too); optionally also submissions
        made without a recorded run. Newest first."""
        query = """
            SELECT r.run_id, r.backbones, r.metric, r.cv_mean, r.cv_std, r.fold_scores, r.seconds, r.git_commit,
                   r.config_hash, r.run_dir, r.device, r.seconds_per_epoch, r.train_images_per_s,
                   r.predict_images_per_s, r.peak_memory_gib, s.submitted_at, s.message, s.status, s.public_score, s.private_score, s.sha256,
                   s.ref, COALESCE(s.submitted_at, r.created_at) AS at, COALESCE(s.id, 0) AS sid
            FROM runs r LEFT JOIN submissions s ON s.run_id = r.run_id AND s.status != 'failed'
            WHERE r.competition = :c"""
        if include_unlinked:
            query += """
            UNION ALL
            SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, s.submitted_at, s.message, s.status,
                   s.public_score, s.private_score, s.sha256, s.ref, s.submitted_at, s.id
            FROM submissions s WHERE s.competition = :c AND s.run_id IS NULL AND s.status != 'failed'"""
        with self._transaction() as db:
            frame = pd.read_sql_query(query + " ORDER BY at DESC, sid DESC", db, params={"c": competition})
        frame["fold_scores"] = frame["fold_scores"].map(lambda s: json.loads(s) if isinstance(s, str) else None)
        return frame.drop(columns=["at", "sid"])

    # -- submissions -------------------------------------------------------------------------
    def open_submission(self, competition: str, sha256: str, file: str, message: str,
                        run_id: str | None = None, force: bool = False) -> dict:
        """The row to carry this submission: an unfinished one for the same bytes (to resume, marked
        ``resumed``), or a new "uploading" row. Refuses bytes already submitted unless ``force``. Atomic."""
        with self._transaction(immediate=True) as db:
            rows = db.execute("SELECT * FROM submissions WHERE competition = ? AND sha256 = ? AND status != 'failed' "
                              "ORDER BY id DESC", (competition, sha256)).fetchall()
            for row in rows:
                if row["status"] in UNFINISHED:
                    return dict(row, resumed=True)
            if rows and not force:
                last = rows[0]
                score = "" if last["public_score"] is None else f", public score {last['public_score']:.5f}"
                raise SubmissionError(
                    f"{file}: these exact bytes (sha256 {sha256[:12]}) were already submitted to {competition} "
                    f"on {last['submitted_at']} UTC as Kaggle ref {last['ref']} ({last['status']}{score}); "
                    "a second submission would only spend the daily limit. Use --force to submit anyway.")
            now = _now()
            cursor = db.execute(
                "INSERT INTO submissions (competition, run_id, sha256, file, message, status, submitted_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, 'uploading', ?, ?)",
                (competition, run_id, sha256, file, message, now, now))
            row_id = cursor.lastrowid
            db.execute("UPDATE submissions SET description = ? WHERE id = ?",  # the tag must survive truncation
                       (f"{message[:MAX_MESSAGE]} [kk {sha256[:8]}-{row_id}]", row_id))
            return dict(db.execute("SELECT * FROM submissions WHERE id = ?", (row_id,)).fetchone(), resumed=False)

    def update_submission(self, row_id: int, **fields) -> dict:
        fields["updated_at"] = _now()
        with self._transaction() as db:
            db.execute(f"UPDATE submissions SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                       [*fields.values(), row_id])
            return dict(db.execute("SELECT * FROM submissions WHERE id = ?", (row_id,)).fetchone())

    def submissions(self, competition: str) -> pd.DataFrame:
        with self._transaction() as db:
            return pd.read_sql_query("SELECT * FROM submissions WHERE competition = ? ORDER BY id",
                                     db, params=(competition,))
