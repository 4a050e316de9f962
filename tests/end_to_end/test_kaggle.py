"""Kaggle service: the real ``kaggle`` client against the local Kaggle service (on a free loopback port)."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import (
    FAST,
    KEY,
    OUTSIDER,
    OUTSIDER_KEY,
    REPO,
    USER,
    kagglekit,
    variant,
)

from kagglekit.competitions.discovery import get_competition
from kagglekit.core.errors import ConfigError, KaggleError, SubmissionError
from kagglekit.core.manifest import MANIFEST, read_manifest
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.credentials import Credentials, load_credentials
from kagglekit.kaggle.download import download_competition
from kagglekit.kaggle.retry import Backoff, call_with_retry, poll
from kagglekit.kaggle.submit import SubmitPolicy, submit_file
from kagglekit.runs.ledger import Ledger

SEEDLINGS = get_competition("seedlings")
SLUG = SEEDLINGS.slug


def mine(service, path: Path) -> list:
    data = path.read_bytes()
    return [s for s in service.submissions(SLUG) if s.blob == data]


def leaks(text: str) -> bool:
    basic = base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    return KEY in text or basic in text


# -- pieces ------------------------------------------------------------------------------------
def test_credentials_sources_and_secrecy(tmp_path, caplog):
    config = tmp_path / "kc"
    config.mkdir()
    with pytest.raises(KaggleError, match="no Kaggle credentials.*kaggle.json"):
        load_credentials({"KAGGLE_CONFIG_DIR": str(config)})
    (config / "kaggle.json").write_text(json.dumps({"username": "filer", "key": "file-key-123"}))
    os.chmod(config / "kaggle.json", 0o644)
    with caplog.at_level(logging.WARNING):
        creds = load_credentials({"KAGGLE_CONFIG_DIR": str(config)})
    assert (creds.username, creds.key) == ("filer", "file-key-123")
    assert "readable by other users" in caplog.text and "file-key-123" not in caplog.text
    assert "file-key-123" not in repr(creds) and creds.redact("x file-key-123 y") == "x *** y"
    env = {"KAGGLE_CONFIG_DIR": str(config), "KAGGLE_USERNAME": "envy", "KAGGLE_KEY": "env-key"}
    assert load_credentials(env).username == "envy"  # the environment wins, as in the kaggle tool


def test_retry_is_bounded_and_only_for_transient_errors():
    calls = []

    def failing(error: KaggleError, successes_after: int | None = None):
        def call():
            calls.append(1)
            if successes_after is None or len(calls) <= successes_after:
                raise error
            return "ok"
        return call

    slept = []
    assert call_with_retry(failing(KaggleError("503", transient=True), 2), "flaky", FAST, slept.append) == "ok"
    assert len(calls) == 3 and len(slept) == 2 and all(0.025 <= s <= 0.2 for s in slept)
    calls.clear()
    with pytest.raises(KaggleError, match="403"):
        call_with_retry(failing(KaggleError("403")), "forbidden", FAST, slept.append)
    assert len(calls) == 1  # not transient: no retry
    calls.clear()
    with pytest.raises(KaggleError, match="down"):
        call_with_retry(failing(KaggleError("down", transient=True)), "down", FAST, lambda s: None)
    assert len(calls) == FAST.attempts
    started = time.monotonic()
    assert poll(lambda: None, timeout=0.3, interval=0.05) is None and time.monotonic() - started < 2


def test_retry_honours_retry_after_within_the_cap_and_never_sleeps_past_the_deadline(caplog):
    slept, calls = [], []

    def rate_limited():
        raise KaggleError("429", transient=True, retry_after=100)

    with caplog.at_level(logging.WARNING), pytest.raises(KaggleError, match="429"):
        call_with_retry(rate_limited, "list files", FAST, slept.append)
    assert slept == [FAST.cap] * (FAST.attempts - 1)  # Retry-After is a floor, the cap its ceiling
    assert caplog.text.count("list files failed (429); retrying in 0.2 s") == FAST.attempts - 1

    def down():
        calls.append(1)
        raise KaggleError("down", transient=True)

    with pytest.raises(KaggleError, match="down"):
        call_with_retry(down, "down", Backoff(attempts=10, base=1, cap=1, deadline=0.5), slept.append)
    assert len(calls) == 1  # the first wait (at least 0.5 s) would end past the deadline
    delays = list(FAST.delays())  # the same waits for kaggle.submit's own loop
    assert len(delays) == FAST.attempts - 1 and all(0.025 <= d <= 0.2 for d in delays)


def test_ledger_records_runs_and_refuses_duplicate_bytes(tmp_path):
    from kagglekit.core.config import RunConfig
    from kagglekit.runs.result import RunResult

    run_dir = tmp_path / "seedlings" / "20240101-000000-abc"
    run_dir.mkdir(parents=True)
    (run_dir / "submission.csv").write_text("file,species\na.png,Maize\n")
    result = RunResult(run_dir, "seedlings", "micro_f1", 0.9, 0.01, [0.89, 0.91], run_dir / "submission.csv", 12.0)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    assert ledger.record_run(result, RunConfig(folds=2)) == run_dir.name
    assert ledger.record_run(result, RunConfig(folds=2)) == run_dir.name  # idempotent
    history = ledger.history("seedlings")
    assert len(history) == 1 and history.fold_scores[0] == [0.89, 0.91] and history.cv_mean[0] == 0.9
    first = ledger.open_submission("seedlings", "f" * 64, "s.csv", "msg", run_dir.name)
    assert first["status"] == "uploading" and first["description"].endswith(f"[kk ffffffff-{first['id']}]")
    again = ledger.open_submission("seedlings", "f" * 64, "s.csv", "again")
    assert again["id"] == first["id"] and again["resumed"] and not first["resumed"]
    ledger.update_submission(first["id"], status="complete", ref=7, public_score=0.8)
    with pytest.raises(SubmissionError, match="already submitted.*ref 7.*--force"):
        ledger.open_submission("seedlings", "f" * 64, "s.csv", "again")
    assert ledger.open_submission("seedlings", "f" * 64, "s.csv", "forced", force=True)["id"] != first["id"]
    assert ledger.history("seedlings").public_score.max() == 0.8


# -- errors ------------------------------------------------------------------------------------
def test_failures_become_clear_errors(kaggle, service, seedlings_small, tmp_path):
    with pytest.raises(KaggleError, match="rejected the credentials of user 'alice'"):
        KaggleService(Credentials(USER, "wrong-key", "test"), timeout=2).limits(SLUG)
    with pytest.raises(KaggleError, match="no competition 'no-such-slug'.*Check the slug"):
        kaggle.limits("no-such-slug")
    outsider = KaggleService(Credentials(OUTSIDER, OUTSIDER_KEY, "test"), timeout=2, backoff=FAST)
    with pytest.raises(KaggleError, match="accept this competition's rules.*/rules"):
        download_competition(outsider, SEEDLINGS, tmp_path / "data")
    with pytest.raises(KaggleError, match="rules"):
        submit_file(outsider, Ledger(tmp_path / "l.sqlite"), SEEDLINGS, seedlings_small / "solution.csv", "m",
                    seedlings_small)
    hosted = service.state.competitions[SLUG]
    uploads = service.calls.get("StartSubmissionUpload", 0)
    limit, hosted.daily_limit = hosted.daily_limit, service.state.used_today(USER, SLUG)
    try:
        path = variant(seedlings_small / "solution.csv", tmp_path / "limit.csv", 9, SEEDLINGS.classes)
        with pytest.raises(KaggleError, match="daily submission limit is used up"):
            submit_file(kaggle, Ledger(tmp_path / "l.sqlite"), SEEDLINGS, path, "m", seedlings_small)
    finally:
        hosted.daily_limit = limit
    assert service.calls.get("StartSubmissionUpload", 0) == uploads  # checked before uploading


# -- faults: a recorded success or a clear error, never two submissions ---------------------------
FAULTS = [
    ("CreateSubmission", "500", 1, 0), ("CreateSubmission", "500-after", 1, 0),
    ("CreateSubmission", "timeout", 1, 3.0), ("CreateSubmission", "drop", 1, 0), ("CreateSubmission", "429", 2, 0),
    ("StartSubmissionUpload", "503", 1, 0), ("upload", "503", 1, 0), ("upload", "drop", 1, 0),
    ("ListSubmissions", "500", 2, 0), ("GetSubmissionLimits", "429", 1, 0), ("score", "slow", 1, 1.0),
    ("CreateSubmission", "slow", 1, 2.0),  # the client (timeout 1.5 s) gives up; Kaggle takes it later
]


@pytest.mark.parametrize("op,kind,times,seconds", FAULTS, ids=[f"{f[0]}-{f[1]}" for f in FAULTS])
def test_fault_ends_in_one_recorded_submission(kaggle, service, seedlings_small, tmp_path, op, kind, times,
                                               seconds):
    path = variant(seedlings_small / "solution.csv", tmp_path / "sub.csv", 10 + FAULTS.index(
        (op, kind, times, seconds)), SEEDLINGS.classes)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    service.faults.add(op, kind, times, seconds)
    row = submit_file(kaggle, ledger, SEEDLINGS, path, f"fault {op} {kind}", seedlings_small,
                      policy=SubmitPolicy(wait=20))
    assert service.faults.hits.get(op) == times  # the fault really happened
    on_service = mine(service, path)
    assert len(on_service) == 1 and row["ref"] == on_service[0].ref
    assert row["status"] == "complete" and row["public_score"] == pytest.approx(on_service[0].public_score, abs=1e-5)


def test_persistent_outage_is_a_clear_error_without_submission(kaggle, service, seedlings_small, tmp_path):
    path = variant(seedlings_small / "solution.csv", tmp_path / "down.csv", 30, SEEDLINGS.classes)
    service.faults.add("CreateSubmission", "500", times=50)
    with pytest.raises(KaggleError, match="service error.*checks Kaggle before uploading again"):
        submit_file(kaggle, Ledger(tmp_path / "l.sqlite"), SEEDLINGS, path, "down", seedlings_small,
                    policy=SubmitPolicy(attempts=2))
    assert mine(service, path) == []
    service.faults.clear()  # Kaggle is back: the same command finishes the job, once
    row = submit_file(kaggle, Ledger(tmp_path / "l.sqlite"), SEEDLINGS, path, "down", seedlings_small,
                      policy=SubmitPolicy(wait=20))
    assert row["status"] == "complete" and len(mine(service, path)) == 1


# -- the command line, end to end ---------------------------------------------------------------
def test_download_submit_score_leaderboard(service, env, seedlings_small, tmp_path):
    out = kagglekit("download", "seedlings", env=env)
    assert out.returncode == 0, out.stderr
    data = Path(env["KAGGLEKIT_CACHE"]) / "data" / SLUG
    assert read_manifest(data).complete and not (data / "solution.csv").exists()
    assert sorted(p.name for p in (data / "test").iterdir()) == sorted(p.name for p in (seedlings_small / "test").iterdir())
    zips = service.calls.get("download", 0)
    again = kagglekit("download", "seedlings", env=env)
    assert again.returncode == 0 and service.calls.get("download", 0) == zips  # complete: skipped

    invalid = tmp_path / "invalid.csv"
    invalid.write_text("file,species\nnot-a-test-image.png,Maize\n")
    uploads = service.calls.get("StartSubmissionUpload", 0)
    refused = kagglekit("submit", "seedlings", invalid, "-m", "bad", "--ledger", tmp_path / "l.sqlite", env=env)
    assert refused.returncode == SubmissionError.exit_code and "not a valid submission" in refused.stderr
    assert service.calls.get("StartSubmissionUpload", 0) == uploads

    path = variant(seedlings_small / "solution.csv", tmp_path / "cli.csv", 3, SEEDLINGS.classes)
    ledger_path = tmp_path / "l.sqlite"
    sub = kagglekit("submit", "seedlings", path, "-m", "cli test", "--ledger", ledger_path, env=env)
    assert sub.returncode == 0, sub.stderr
    [remote] = mine(service, path)
    assert f"public score {remote.public_score:.5f}" in sub.stdout
    rows = Ledger(ledger_path).submissions("seedlings")
    assert rows.status.tolist() == ["complete"] and rows.public_score[0] == pytest.approx(remote.public_score, abs=1e-5)

    twice = kagglekit("submit", "seedlings", path, "-m", "again", "--ledger", ledger_path, env=env)
    assert twice.returncode == SubmissionError.exit_code and "already submitted" in twice.stderr
    assert len(mine(service, path)) == 1

    board = kagglekit("leaderboard", "seedlings", env=env)
    assert board.returncode == 0 and USER in board.stdout and "<- you" in board.stdout
    listing = kagglekit("submissions", "seedlings", "--ledger", ledger_path, env=env)
    assert listing.returncode == 0 and "cli test" in listing.stdout
    scores = kagglekit("scores", "seedlings", "--ledger", ledger_path, "--plot", tmp_path / "s.png", env=env)
    assert scores.returncode == 0 and f"{remote.public_score:.4f}" in scores.stdout
    assert (tmp_path / "s.png").stat().st_size > 1000
    for output in (out, again, refused, sub, twice, board, listing, scores):
        assert not leaks(output.stdout + output.stderr)
    assert KEY.encode() not in ledger_path.read_bytes()


def test_no_credential_in_output_even_verbose_or_failing(service, env, tmp_path):
    bad = dict(env, KAGGLE_KEY=KEY + "-wrong")
    results = [kagglekit("-v", "leaderboard", "seedlings", env=env),
               kagglekit("-v", "submissions", "seedlings", "--ledger", tmp_path / "l.sqlite", env=bad),
               kagglekit("-v", "download", "no-such-competition.yaml", env=env)]
    assert results[0].returncode == 0 and results[1].returncode == KaggleError.exit_code
    assert "rejected the credentials" in results[1].stderr
    for result in results:
        text = result.stdout + result.stderr
        assert not leaks(text) and (KEY + "-wrong") not in text


# -- killed mid-way, rerun: complete, no duplicates, no corrupt files -----------------------------
def ctrl_c_reaches_it() -> None:
    """A child of a test run in the background (``pytest &``, some CI runners) inherits SIGINT ignored, and
    Python keeps it ignored; a user's Ctrl-C reaches a foreground process, as this restores."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(*args, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kagglekit", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_killed_download_resumes(service, env, seedlings_small):
    partial = Path(env["KAGGLEKIT_CACHE"]) / "downloads" / f"{SLUG}.zip"
    service.faults.add("download", "slow", seconds=8)
    proc = spawn("download", "seedlings", env=env)
    try:
        wait_until(lambda: partial.is_file() and partial.stat().st_size > 0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    size = partial.stat().st_size
    assert 0 < size < service.state.competitions[SLUG].zip_path.stat().st_size
    resumed = service.calls.get("download-resumed", 0)
    out = kagglekit("download", "seedlings", env=env)
    assert out.returncode == 0, out.stderr
    assert service.calls.get("download-resumed", 0) == resumed + 1  # appended from where it stopped
    data = Path(env["KAGGLEKIT_CACHE"]) / "data" / SLUG
    assert read_manifest(data).complete and not partial.exists()
    assert (data / "sample_submission.csv").read_bytes() == (seedlings_small / "sample_submission.csv").read_bytes()
    for image in (seedlings_small / "test").iterdir():
        assert (data / "test" / image.name).read_bytes() == image.read_bytes()


def test_killed_submit_is_not_repeated(service, env, seedlings_small, tmp_path):
    path = variant(seedlings_small / "solution.csv", tmp_path / "killed.csv", 5, SEEDLINGS.classes)
    ledger_path = tmp_path / "l.sqlite"
    args = ("submit", "seedlings", path, "-m", "killed", "--data", seedlings_small, "--ledger", ledger_path,
            "--timeout", "4")
    created = service.calls.get("CreateSubmission", 0)
    service.faults.add("CreateSubmission", "slow", seconds=2)  # Kaggle takes it, the answer comes late
    proc = spawn(*args, env=env)
    try:
        wait_until(lambda: service.calls.get("CreateSubmission", 0) > created)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert Ledger(ledger_path).submissions("seedlings").status.tolist() == ["uploading"]
    out = kagglekit(*args, env=env)
    assert out.returncode == 0, out.stderr
    [remote] = mine(service, path)
    rows = Ledger(ledger_path).submissions("seedlings")
    assert rows.ref.tolist() == [remote.ref] and rows.status.tolist() == ["complete"]
    assert service.calls.get("CreateSubmission", 0) == created + 1  # the rerun did not submit again


def test_run_is_recorded_then_submitted_with_its_cv(kaggle, service, seedlings_small, tmp_path, capsys, monkeypatch):
    """``kagglekit run --submit`` after the pipeline: the ledger joins CV and leaderboard scores."""
    from kagglekit.core.config import RunConfig
    from kagglekit.usecases.run import record_and_submit
    from kagglekit.runs.plots import cv_vs_leaderboard
    from kagglekit.runs.result import RunResult

    config = RunConfig(data=str(seedlings_small), output_dir=str(tmp_path), folds=2)
    monkeypatch.setenv("KAGGLEKIT_LEDGER", str(tmp_path / "ledger.sqlite"))  # runs are recorded in the user's ledger
    ledger = Ledger(tmp_path / "ledger.sqlite")
    for wrong, cv in ((2, 0.97), (6, 0.93)):
        run_dir = tmp_path / "seedlings" / f"20240101-00000{wrong}-{config.hash()}"
        run_dir.mkdir(parents=True)
        path = variant(seedlings_small / "solution.csv", run_dir / "submission.csv", wrong, SEEDLINGS.classes)
        result = RunResult(run_dir, "seedlings", "micro_f1", cv, 0.02, [cv - 0.02, cv + 0.02], path, 5.0)
        assert record_and_submit(result, config, SEEDLINGS, service=kaggle) is None  # recorded, not submitted
        assert ledger.history("seedlings").set_index("run_id").public_score.isna()[run_dir.name]
        row = record_and_submit(result, config, SEEDLINGS, submit=True, message="tiny", service=kaggle)
        assert row["status"] == "complete" and row["run_id"] == run_dir.name
        [remote] = mine(service, path)
        assert row["public_score"] == pytest.approx(remote.public_score, abs=1e-5)
        assert remote.description.startswith(f"{run_dir.name}: CV micro_f1 {cv:.4f} ± 0.0200 - tiny")
    history = ledger.history("seedlings")
    assert len(history) == 2 and history.public_score.notna().all() and history.cv_mean.tolist() == [0.93, 0.97]
    assert history.private_score[0] < history.private_score[1]  # more wrong labels, lower score
    assert history.submitted_at.is_monotonic_decreasing  # newest first
    assert "submitted" in capsys.readouterr().out
    plot = cv_vs_leaderboard(history, tmp_path / "plot.png", "test")
    assert plot.stat().st_size > 5000


@pytest.mark.slow
def test_run_submit_end_to_end(service, env, tmp_path):
    """download -> ``kagglekit run --submit`` (tiny: 64 px, 2 folds, 3 head epochs, 15 images per species)
    -> scored -> ledger row with CV and LB -> on the leaderboard. Needs the backbone weights."""
    from kagglekit.core.paths import cache_root
    from kagglekit.models.lite_weights import lite_weights

    lite_weights(0)  # converted into this session's cache (if no test did yet), the --weights-dir below
    assert kagglekit("download", "seedlings", env=env).returncode == 0
    data = Path(env["KAGGLEKIT_CACHE"]) / "data" / SLUG
    env["KAGGLEKIT_LEDGER"] = str(tmp_path / "subs" / "ledger.sqlite")
    config = tmp_path / "tiny.yaml"
    config.write_text("folds: 2\nimage_size: 64\ntta: [identity]\n"
                      "train: {learner: head, head_epochs: 3, top_blocks: false, views: [identity], batch_size: 32, patience: 3}\n")
    run = kagglekit("run", "seedlings", "--data", data, "--config", config, "--output-dir", tmp_path / "subs",
                    "--weights-dir", cache_root() / "weights", "--submit", "-m", "e2e", env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    history = Ledger(tmp_path / "subs" / "ledger.sqlite").history("seedlings")
    assert len(history) == 1 and history.status[0] == "complete"
    [remote] = [s for s in service.submissions(SLUG) if s.description.startswith(history.run_id[0])]
    assert history.public_score[0] == pytest.approx(remote.public_score, abs=1e-5)
    assert f"CV micro_f1 {history.cv_mean[0]:.4f}" in remote.description
    board = kagglekit("leaderboard", "seedlings", env=env)
    assert USER in board.stdout and not leaks(run.stdout + run.stderr + board.stdout)


def test_unscored_submission_gets_its_score_later(kaggle, service, seedlings_small, tmp_path, monkeypatch):
    from kagglekit.cli import main

    path = variant(seedlings_small / "solution.csv", tmp_path / "later.csv", 40, SEEDLINGS.classes)
    ledger = Ledger(tmp_path / "l.sqlite")
    service.faults.add("score", "slow", seconds=1.0)
    row = submit_file(kaggle, ledger, SEEDLINGS, path, "later", seedlings_small, policy=SubmitPolicy(wait=0.1))
    assert row["status"] == "pending" and row["public_score"] is None
    wait_until(lambda: mine(service, path)[0].status == "COMPLETE", timeout=10)
    monkeypatch.setenv("KAGGLE_USERNAME", USER)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    assert main(["submissions", "seedlings", "--ledger", str(tmp_path / "l.sqlite")]) == 0
    [synced] = ledger.submissions("seedlings").itertuples()
    assert synced.status == "complete" and synced.public_score == pytest.approx(mine(service, path)[0].public_score,
                                                                                  abs=1e-5)


def test_killed_during_upload_submits_once_on_rerun(service, env, seedlings_small, tmp_path):
    path = variant(seedlings_small / "solution.csv", tmp_path / "upload.csv", 7, SEEDLINGS.classes)
    ledger_path = tmp_path / "l.sqlite"
    args = ("submit", "seedlings", path, "-m", "upload killed", "--data", seedlings_small, "--ledger", ledger_path,
            "--timeout", "2")
    puts = service.calls.get("upload", 0)
    service.faults.add("upload", "slow", seconds=5)  # the upload stalls; the process dies before submitting
    proc = spawn(*args, env=env)
    try:
        wait_until(lambda: service.calls.get("upload", 0) > puts)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert mine(service, path) == []
    out = kagglekit(*args, env=env)
    assert out.returncode == 0, out.stderr
    assert len(mine(service, path)) == 1
    assert Ledger(ledger_path).submissions("seedlings").status.tolist() == ["complete"]


def test_serve_hosts_a_competition_for_the_real_client(seedlings_small, tmp_path, monkeypatch):
    """``kagglekit serve`` on a free port (``--port 0``), reached by the kaggle client through the variable it
    names."""
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"carol": "carol-key"}))
    proc = subprocess.Popen([sys.executable, "-m", "kagglekit", "serve", "seedlings", "--source",
                             seedlings_small, "--users", users, "--port", "0", "--work", tmp_path / "work"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_reaches_it)
    try:
        served = re.fullmatch(r"serving plant-seedlings-classification on http://localhost:(\d+) for 1 user\(s\); "
                              r"Ctrl-C stops", proc.stdout.readline().strip())
        assert served, "no 'serving ... on' line"
        port = served.group(1)
        hint = proc.stdout.readline().strip()
        assert hint.endswith(f"KAGGLE_API_ENVIRONMENT=TEST KAGGLEKIT_LOCAL_KAGGLE_PORT={port}"), hint
        monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
        monkeypatch.setenv("KAGGLEKIT_LOCAL_KAGGLE_PORT", port)
        client = KaggleService(Credentials("carol", "carol-key", "test"), timeout=5, backoff=FAST)
        names = {f.name for f in client.list_files(SLUG)}
        assert "sample_submission.csv" in names and "solution.csv" not in names
        assert client.limits(SLUG).num_allowed_now == 5
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        proc.communicate()


def test_download_never_overwrites_a_foreign_folder(kaggle, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(ConfigError, match="did not write"):
            download_competition(kaggle, SEEDLINGS, foreign, force=force)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"] and (foreign / "notes.txt").read_text() == "keep me"


def test_download_force_replaces_only_the_downloaded_files(kaggle, seedlings_small, tmp_path):
    dest = download_competition(kaggle, SEEDLINGS, tmp_path / "data")
    listed = set(read_manifest(dest).files)
    assert "sample_submission.csv" in listed and MANIFEST not in listed
    (dest / "notes.txt").write_text("keep me")
    (dest / "test" / "mine.png").write_bytes(b"mine")
    damaged = dest / "sample_submission.csv"
    damaged.write_text("file,species\n")
    download_competition(kaggle, SEEDLINGS, dest, force=True)
    assert (dest / "notes.txt").read_text() == "keep me" and (dest / "test" / "mine.png").read_bytes() == b"mine"
    assert damaged.read_bytes() == (seedlings_small / "sample_submission.csv").read_bytes()
    assert set(read_manifest(dest).files) == listed
