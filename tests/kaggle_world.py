"""The local Kaggle service the Kaggle tests talk to, with the real ``kaggle`` client on the other end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from kagglekit.kaggle.retry import Backoff

REPO = Path(__file__).resolve().parents[1]
USER, KEY = "alice", "kk-test-key-6f1d2c9a8b7e"  # a fake key; tests check it never shows up in output
OUTSIDER, OUTSIDER_KEY = "bob", "kk-bob-key-0a9b8c7d"  # has an account but did not accept the rules
FAST = Backoff(attempts=4, base=0.05, cap=0.2, deadline=10)  # retries of the in-process test client


def client_env(cache: Path, config_dir: Path, username: str = USER, key: str = KEY) -> dict:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("KAGGLE_"):
            del env[name]
    env.update(KAGGLE_API_ENVIRONMENT="TEST", KAGGLE_USERNAME=username, KAGGLE_KEY=key,
               KAGGLE_CONFIG_DIR=str(config_dir), KAGGLEKIT_CACHE=str(cache), NO_PROXY="localhost,127.0.0.1",
               KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    return env


def kagglekit(*args, env: dict, cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kagglekit", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def variant(solution: Path, out: Path, wrong: int, classes: list[str]) -> Path:
    """The solution with the first ``wrong`` labels changed: distinct bytes, a known score."""
    from kagglekit.submission.writer import write_submission

    frame = pd.read_csv(solution, dtype=str, keep_default_na=False)
    column = frame.columns[1]
    for i in range(wrong):
        frame.loc[i, column] = next(c for c in classes if c != frame.loc[i, column])
    return write_submission(frame, out)
