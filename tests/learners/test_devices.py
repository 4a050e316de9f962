"""Several workers (MultiWorkerMirroredStrategy from a TF_CONFIG): two ``kagglekit run`` processes on loopback
train the shared tiny fine-tuning run as one process does; the chief alone writes it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, TINY_FINETUNE, only_run_dir


def free_ports(n: int) -> list[int]:
    """``n`` ports free on 127.0.0.1 now (held open together, so distinct)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_two_workers_on_loopback_score_as_one(tmp_path, seedlings_small, seedlings_finetuned_run):
    """``TINY_FINETUNE`` on two workers gets the one-worker run's CV (the shared ``seedlings_finetuned_run``).

    Each worker builds the same stream and keeps its half of every global batch (DATA auto-sharding), so the
    two train on the one worker's rows in the same batches; what differs is random: under the strategy tf.data
    rewrites the pipeline, so the augmentation layers' draws differ, and each replica draws its own dropout
    masks. The two runs then differ as two seeds do: the tolerance is one standard error of the fold's score
    (0.064 on 60 images at 0.42), as in test_finetune. Measured on the first three epochs (the machine too
    loaded to finish): losses 1.58, 1.57, 1.54 on two workers against 1.39, 1.55, 1.48 on one; the losses must
    stay within 25% (what catches a NaN or a doubled aggregation, keras#21061, #20568).
    (The strategy, its chief and the auto-shard policy are also what ``device.strategy: auto`` picks.)"""
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_FINETUNE)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"  # a worker that is not the chief writes its copy under TMPDIR
        scratch.mkdir()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(scratch),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "kagglekit", "run", "seedlings", "--data", str(seedlings_small), "--config",
             str(config), "--output-dir", str(tmp_path / "runs")], cwd=REPO, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        printed = [worker.communicate(timeout=900)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert [w.returncode for w in workers] == [0, 0], "\n\n".join(p[-3000:] for p in printed)
    assert "MultiWorkerMirroredStrategy (2 workers)" in printed[0], printed[0][-3000:]
    assert "worker done: the chief wrote the run" in printed[1], printed[1][-3000:]
    assert not list((tmp_path / "tmp1").iterdir())  # the other worker's copy is gone

    run_dir = only_run_dir(tmp_path / "runs" / "seedlings")  # the chief's, and only it
    two, one = (json.loads((run / "metrics.json").read_text()) for run in (run_dir, seedlings_finetuned_run))
    assert two["epochs"] == one["epochs"] == [6]
    standard_error = np.sqrt(one["cv_mean"] * (1 - one["cv_mean"]) / two["scored_images"])
    assert abs(two["cv_mean"] - one["cv_mean"]) <= standard_error, {"two workers": two["cv_mean"],
                                                                     "one worker": one["cv_mean"]}
    losses = [json.loads((run / "folds" / "fold0" / "history.json").read_text())["loss"]
              for run in (run_dir, seedlings_finetuned_run)]
    assert np.allclose(losses[0], losses[1], rtol=0.25), losses
    assert (run_dir / "submission.csv").is_file()


def test_multi_worker_needs_a_tf_config(monkeypatch):
    """``device.strategy: multi_worker`` without a TF_CONFIG says what to set; ``auto`` picks it only when a
    TF_CONFIG names more than one worker, and the chief is worker 0 unless a ``chief`` task is named."""
    from kagglekit.core.config import DeviceConfig
    from kagglekit.core.errors import ConfigError
    from kagglekit.learners import devices

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        devices.start_workers(DeviceConfig(strategy="multi_worker"))
    auto = DeviceConfig()
    assert not devices.multi_worker(auto) and devices.is_chief(auto)
    spec = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(spec))
    assert devices.multi_worker(auto) and not devices.is_chief(auto)
    assert devices.is_chief(DeviceConfig(strategy="none"))  # one worker: it writes its run
    spec["task"]["index"] = 0
    monkeypatch.setenv("TF_CONFIG", json.dumps(spec))
    assert devices.is_chief(auto)
    monkeypatch.setenv("TF_CONFIG", json.dumps({**spec, "cluster": {**spec["cluster"], "chief": ["127.0.0.1:3"]}}))
    assert not devices.is_chief(auto)  # a named chief writes, not worker 0
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not JSON"):
        devices.worker_count()
