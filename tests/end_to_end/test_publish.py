"""Code competitions: a run's notebook published as a Kaggle dataset + kernel, run by the local Kaggle service
offline, submitted, rerun on the hidden test set and scored; with the real ``kaggle`` client throughout."""

from __future__ import annotations

import io
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from helpers import USER, kagglekit

from kagglekit.competitions.discovery import competition_from_yaml
from kagglekit.core.errors import KaggleError, SubmissionError
from kagglekit.kaggle.datasets import publish_dataset
from kagglekit.kaggle.kernels import KernelVersion, fetch_output, push_kernel, wait_for_kernel
from kagglekit.kaggle.submit import SubmitPolicy, submit_file
from kagglekit.kaggle.submit_code import submit_kernel
from kagglekit.runs.ledger import Ledger

CODE_SLUG = "seedlings-code-competition"

#: A notebook that predicts "Maize" for every test image it finds, as Kaggle mounts them.
MAIZE = """import os
import pandas as pd
data = os.path.join(os.environ.get("KAGGLE_INPUT_ROOT", "/kaggle/input"), "seedlings-code-competition")
sample = pd.read_csv(os.path.join(data, "sample_submission.csv"))
print(f"{len(os.listdir(os.path.join(data, 'test')))} test images")
sample.assign(species="Maize").to_csv("submission.csv", index=False)
"""


def push_notebook(kaggle, folder: Path, source: str, slug: str, timeout: float | None = None) -> KernelVersion:
    """Push a one-cell notebook reading the code competition, internet off."""
    folder.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), folder / "notebook.ipynb")
    (folder / "kernel-metadata.json").write_text(json.dumps({
        "id": f"{USER}/{slug}", "title": slug.replace("-", " "), "code_file": "notebook.ipynb", "language": "python",
        "kernel_type": "notebook", "is_private": True, "enable_gpu": False, "enable_internet": False,
        "dataset_sources": [], "competition_sources": [CODE_SLUG], "kernel_sources": [], "model_sources": []}))
    return push_kernel(kaggle, folder, timeout)


def ids(frame_or_path) -> set[str]:
    frame = frame_or_path if isinstance(frame_or_path, pd.DataFrame) else pd.read_csv(frame_or_path, dtype=str)
    return set(frame["file"])


def test_a_failing_notebook_is_a_clear_error_with_the_end_of_its_log(kaggle, tmp_path):
    kernel = push_notebook(kaggle, tmp_path / "k", "print('loading the model')\n"
                           "raise ValueError('no weights for efficientnet_lite0')", "failing-notebook")
    with pytest.raises(KaggleError) as caught:
        wait_for_kernel(kaggle, kernel, timeout=60, interval=0.2)
    message = str(caught.value)
    assert f"notebook {USER}/failing-notebook/1 failed on Kaggle" in message
    tail = message.split("--- the end of its log ---")[1]
    assert "loading the model" in tail and "ValueError: no weights for efficientnet_lite0" in tail
    assert "fix the notebook" in message


def test_a_notebook_past_its_time_limit_is_stopped_and_its_log_kept(kaggle, service, tmp_path):
    kernel = push_notebook(kaggle, tmp_path / "k", "import time\nprint('epoch 1 of 100', flush=True)\n"
                           "time.sleep(600)", "slow-notebook", timeout=4)
    with pytest.raises(KaggleError, match=r"timed out.*time limit of 4 s") as caught:
        wait_for_kernel(kaggle, kernel, timeout=60, interval=0.2)
    assert "epoch 1 of 100" in str(caught.value).split("--- the end of its log ---")[1]
    sleepy = push_notebook(kaggle, tmp_path / "k2", "import time\ntime.sleep(600)", "sleepy-notebook", timeout=3)
    with pytest.raises(KaggleError, match="still (queued|running) after 0 s.*same command again") as waited:
        wait_for_kernel(kaggle, sleepy, timeout=0)  # our own patience ran out, not the notebook's time limit
    assert waited.value.transient


def test_interrupted_dataset_upload_resumes_and_a_retry_makes_no_second_version(kaggle, service, tmp_path):
    folder = tmp_path / "inputs"
    (folder / "run").mkdir(parents=True)
    (folder / "run" / "weights.bin").write_bytes(bytes(range(256)) * 400)
    (folder / "manifest.json").write_text('{"run": "x"}')
    (folder / "dataset-metadata.json").write_text(json.dumps(
        {"title": "upload test inputs", "id": f"{USER}/upload-test-inputs", "licenses": [{"name": "CC0-1.0"}]}))
    puts = service.calls.get("upload", 0)
    service.faults.add("upload", "drop")  # the first PUT is cut off: the client resumes it
    first = publish_dataset(kaggle, folder)
    assert service.faults.hits["upload"] == 1 and service.calls["upload"] > puts + 2  # two files, one resumed
    assert (first.version, first.created) == (1, True)
    stored = service.datasets.get(USER, "upload-test-inputs").latest.folder
    assert (stored / "run" / "weights.bin").read_bytes() == (folder / "run" / "weights.bin").read_bytes()

    (folder / "manifest.json").write_text('{"run": "y"}')
    service.faults.add("CreateDatasetVersion", "500-after")  # the version is made, the answer lost
    second = publish_dataset(kaggle, folder)
    assert (second.version, second.created) == (2, True) and service.faults.hits["CreateDatasetVersion"] == 1
    again = publish_dataset(kaggle, folder)
    assert (again.version, again.created) == (2, False)
    assert [v.number for v in service.datasets.get(USER, "upload-test-inputs").versions] == [1, 2]


def test_code_submission_is_scored_on_the_hidden_test_set_once(kaggle, service, code_competition_file, tmp_path):
    hosted = service.state.competitions[CODE_SLUG]
    competition = competition_from_yaml(code_competition_file).resolve(hosted.data_dir)
    kernel = push_notebook(kaggle, tmp_path / "k", MAIZE, "maize-notebook")
    wait_for_kernel(kaggle, kernel, timeout=60, interval=0.2)
    output = fetch_output(kaggle, kernel, tmp_path / "out") / "submission.csv"
    assert ids(output) == ids(hosted.data_dir / "sample_submission.csv")  # the public test images

    ledger = Ledger(tmp_path / "ledger.sqlite")
    service.faults.add("CreateCodeSubmission", "500-after")  # it lands, the answer is lost: not sent again
    row = submit_kernel(kaggle, ledger, competition, kernel, output, "maize", policy=SubmitPolicy(wait=60))
    [remote] = [s for s in service.submissions(CODE_SLUG) if s.kernel == str(kernel)]
    assert row["ref"] == remote.ref and row["status"] == "complete" and remote.status == "COMPLETE"
    assert ids(pd.read_csv(io.BytesIO(remote.blob), dtype=str)) == ids(hosted.solution)
    assert not ids(hosted.solution) & ids(output)  # scored on hidden images only
    assert row["public_score"] == pytest.approx(remote.public_score, abs=1e-5)
    with pytest.raises(SubmissionError, match="already submitted"):
        submit_kernel(kaggle, ledger, competition, kernel, output, "maize again")
    assert len([s for s in service.submissions(CODE_SLUG) if s.kernel == str(kernel)]) == 1

    with pytest.raises(KaggleError, match="code competition.*kagglekit publish RUN_DIR --submit"):
        submit_file(kaggle, ledger, competition, output, "a file", hosted.data_dir)
    assert all(s.kernel for s in service.submissions(CODE_SLUG))  # no file was taken


def test_publish_of_a_broken_run_says_what_failed_without_a_traceback(service, env, finished_run, tmp_path):
    run_dir, weights = finished_run  # its weights files are not real weights: the notebook fails on Kaggle
    out = kagglekit("publish", run_dir, "--weights-dir", weights, "--out", tmp_path / "nb", "--timeout", "120",
                    env=env, timeout=300)
    assert out.returncode == KaggleError.exit_code, out.stderr
    assert f"notebook {USER}/" in out.stderr and "failed on Kaggle" in out.stderr
    assert "--- the end of its log ---" in out.stderr and "internal error" not in out.stderr
    record = json.loads((run_dir / "publish.json").read_text())
    assert record["status"] == "error" and record["kernel_version"] == 1 and record["dataset_version"] == 1


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_run_publish_submit_end_to_end(service, env, code_competition_file, tmp_path):
    """``kagglekit run`` on the public data -> ``publish --submit``: the bundle becomes a dataset, the notebook
    a kernel run offline (its output equals the run's submission), the submission reruns it on the hidden
    test set and is scored -> ledger row -> leaderboard. Publishing again makes nothing new."""
    hosted = service.state.competitions[CODE_SLUG]
    env["KAGGLEKIT_LEDGER"] = str(tmp_path / "ledger.sqlite")
    config = tmp_path / "tiny.yaml"
    config.write_text("folds: 2\nimage_size: 64\ntta: [identity]\n"
                      "train: {learner: head, head_epochs: 3, top_blocks: false, views: [identity], batch_size: 32, patience: 3}\n")
    run = kagglekit("run", code_competition_file, "--data", hosted.data_dir, "--config", config,
                    "--output-dir", tmp_path / "subs", env=env, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    (run_dir,) = (tmp_path / "subs" / "seedlings-code").iterdir()

    published = kagglekit("publish", run_dir, "--submit", "-m", "e2e", "--timeout", "300", "--out", tmp_path / "nb",
                          env=env, timeout=500)
    assert published.returncode == 0, published.stderr[-3000:]
    record = json.loads((run_dir / "publish.json").read_text())
    assert record["status"] == "complete" and record["output_matches"] == "bytes" and record["accelerator"] == "none"
    kernel = f"{record['kernel']}/{record['kernel_version']}"
    version = service.kernels.find(*record["kernel"].split("/"), record["kernel_version"])
    assert version.session.status == "COMPLETE" and not version.enable_internet and version.machine_shape == ""
    assert not (version.session.folder / "netguard.log").exists()  # it never tried the network

    [remote] = [s for s in service.submissions(CODE_SLUG) if s.kernel == kernel]
    assert remote.status == "COMPLETE" and remote.description.startswith(f"{run_dir.name}: CV micro_f1")
    scored = pd.read_csv(io.BytesIO(remote.blob), dtype=str)
    assert ids(scored) == ids(hosted.solution) and not ids(scored) & ids(run_dir / "submission.csv")
    assert f"submitted notebook {kernel}: ref {remote.ref}: public score {remote.public_score:.5f}" in published.stdout
    history = Ledger(tmp_path / "ledger.sqlite").history("seedlings-code")
    assert history.status.tolist() == ["complete"] and history.run_id[0] == run_dir.name
    assert history.public_score[0] == pytest.approx(remote.public_score, abs=1e-5)
    board = kagglekit("leaderboard", code_competition_file, env=env)
    assert board.returncode == 0 and USER in board.stdout and f"{remote.public_score:.5f}" in board.stdout

    again = kagglekit("publish", run_dir, "--submit", "--out", tmp_path / "nb", env=env, timeout=300)
    assert again.returncode == SubmissionError.exit_code and "already submitted" in again.stderr, again.stderr[-2000:]
    assert len(service.datasets.get(*record["dataset"].split("/")).versions) == 1  # same files: no new version
    assert len(service.kernels.versions[tuple(record["kernel"].split("/"))]) == 1  # same code: not pushed again
    assert len([s for s in service.submissions(CODE_SLUG) if s.kernel == kernel]) == 1
