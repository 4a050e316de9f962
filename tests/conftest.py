"""Shared fixtures: Kaggle-layout competition folders built from the real data in ../shared, the real runs
the segmentation tests share, the local Kaggle service the Kaggle tests talk to, and a finished run's folder. Plain helper functions and
constants live in ``helpers.py``, not here."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from helpers import CAMVID, SEEDLINGS, VOC_MASKS, require  # noqa: E402  (after the backend is set)


@pytest.fixture(scope="session")
def seedlings_small(tmp_path_factory) -> Path:
    """A small real Plant Seedlings competition: 20 images per species, 25% held out as test."""
    from kagglekit.competitions.builders import build_class_folder_competition

    return build_class_folder_competition(
        require(SEEDLINGS), tmp_path_factory.mktemp("seedlings-small"), per_class=20, test_fraction=0.25
    )


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_session():
    """Servers, kernels, Ray nodes or ``kagglekit`` children still alive when a session's tests end would
    keep taking CPU from whatever runs next: name them, end them, and fail. (Set up first, so torn down
    last, after every other fixture stopped what it started; on each xdist worker, for its own tests.)"""
    yield
    import psutil

    leftovers = []
    for process in psutil.Process().children(recursive=True):
        try:
            leftovers.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
            process.kill()
        except psutil.NoSuchProcess:  # it ended on its own meanwhile
            pass
    assert not leftovers, "processes left running by the tests (killed): " + "; ".join(leftovers)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Features, converted weights and data land in a per-session cache, never in ~/.cache."""
    if "KAGGLEKIT_CACHE" not in os.environ:
        os.environ["KAGGLEKIT_CACHE"] = str(tmp_path_factory.mktemp("kagglekit-cache"))
    return Path(os.environ["KAGGLEKIT_CACHE"])


@pytest.fixture(scope="session", autouse=True)
def private_ledger(tmp_path_factory) -> Path:
    """Runs and submissions are recorded in a per-session ledger, never in the user's own."""
    os.environ["KAGGLEKIT_LEDGER"] = str(tmp_path_factory.mktemp("ledger") / "ledger.sqlite")
    return Path(os.environ["KAGGLEKIT_LEDGER"])


@pytest.fixture(scope="session")
def seedlings_tags(seedlings_small, tmp_path_factory) -> tuple[Path, Path]:
    """(adapter YAML, data folder) of a multi-label competition: the small seedlings relabelled ``id,tags``
    (each image's species and "even" or "odd"), its adapter written by ``kagglekit new``."""
    from helpers import flatten, relabelled, tagged

    from kagglekit.cli import main

    work = tmp_path_factory.mktemp("seedlings-tags")
    data, table = flatten(seedlings_small, work / "csv")
    multi = relabelled(data, work / "tags", tagged(table, " "), sample_column="tags")
    assert main(["new", str(multi), "--out", str(work / "tags.yaml")]) == 0
    return work / "tags.yaml", multi


@pytest.fixture(scope="session")
def tiny_run_config(tmp_path_factory) -> Path:
    """A small but real training config: one real backbone, small images, both training stages."""
    path = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    path.write_text(
        "backbones: [efficientnet_lite0]\nimage_size: 128\nfolds: 3\ntta: [identity, hflip]\n"
        "train: {learner: head, head_epochs: 40, views: [identity, hflip, rot90, augment1], top_blocks: true, top_blocks_epochs: 2, patience: 5}\n"
    )
    return path


@pytest.fixture(scope="session")
def voc_masks() -> Path:
    """The 1,400 real PASCAL VOC label masks (no photographs)."""
    return require(VOC_MASKS)


@pytest.fixture(scope="session")
def voc_small(tmp_path_factory, voc_masks) -> Path:
    """The VOC course competition's layout from 36 + 12 real masks (images rendered from the masks)."""
    from kagglekit.competitions.builders import build_voc_competition
    from kagglekit.competitions.discovery import get_competition

    return build_voc_competition(voc_masks, get_competition("pascal-voc"), tmp_path_factory.mktemp("voc-small"),
                                 n_train=36, n_test=12)


@pytest.fixture(scope="session")
def camvid() -> Path:
    """The 468 real CamVid frames and masks (SegNet train + val)."""
    return require(CAMVID)


@pytest.fixture(scope="session")
def camvid_small(tmp_path_factory, camvid) -> Path:
    """CamVid as a segmentation-folder competition: 24 real training frames, 6 held-out test frames."""
    from kagglekit.competitions.builders import build_segmentation_folder_competition
    from kagglekit.competitions.discovery import get_competition

    return build_segmentation_folder_competition(
        camvid, get_competition("camvid"), tmp_path_factory.mktemp("camvid-small"), n_train=24, n_test=6)


# -- shared segmentation runs ---------------------------------------------------------------------------
# One real tiny run per competition, trained once per session and read by every test that only reads a run
# (configs: helpers.VOC_RUN and CAMVID_RUN); a test that changes a run copies it first.
@pytest.fixture(scope="session")
def voc_run(voc_small, tmp_path_factory) -> Path:
    """The session's PASCAL VOC run (``VOC_RUN``): the end-to-end test, the attack and the blend's first member."""
    from helpers import VOC_RUN, finished_runs, read_only

    (run_dir,) = finished_runs("pascal-voc", voc_small, {"voc": VOC_RUN}, tmp_path_factory.mktemp("voc-run"))
    yield from read_only(run_dir)


@pytest.fixture(scope="session")
def camvid_run(camvid_small, tmp_path_factory) -> Path:
    """The session's CamVid run (``CAMVID_RUN``): the end-to-end test and the blend's first member."""
    from helpers import CAMVID_RUN, finished_runs, read_only

    (run_dir,) = finished_runs("camvid", camvid_small, {"camvid": CAMVID_RUN}, tmp_path_factory.mktemp("camvid-run"))
    yield from read_only(run_dir)


# -- the local Kaggle service (end_to_end/test_kaggle.py, end_to_end/test_publish.py) ---------------------
#: The code competition: Plant Seedlings under another slug, declared in YAML as a user would.
CODE_COMPETITION_YAML = """kind: class-folder
name: seedlings-code
slug: seedlings-code-competition
title: Plant Seedlings as a code competition
id_column: file
label_column: species
metric: micro_f1
"""


@pytest.fixture(scope="session")
def code_competition_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("code-competition") / "seedlings-code.yaml"
    path.write_text(CODE_COMPETITION_YAML)
    return path


@pytest.fixture(scope="session")
def service(seedlings_small, code_competition_file, tmp_path_factory):
    """Seedlings (file submissions) and its code-competition twin (a hidden test set), for alice, on a port of
    its own (``KAGGLEKIT_LOCAL_KAGGLE_PORT`` in ``kaggle`` and ``env``): each xdist worker runs its own."""
    from helpers import KEY, OUTSIDER, OUTSIDER_KEY, USER

    from kagglekit.competitions.discovery import competition_from_yaml, get_competition
    from kagglekit.kaggle_service import LocalKaggleService

    work = tmp_path_factory.mktemp("kaggle-service")
    svc = LocalKaggleService({USER: KEY, OUTSIDER: OUTSIDER_KEY}, port=0, scoring_delay=0.1,  # a free port
                             work_dir=work / "service")
    svc.host(get_competition("seedlings"), seedlings_small, work, daily_limit=100, participants={USER})
    svc.host(competition_from_yaml(code_competition_file), seedlings_small, work, daily_limit=100,
             participants={USER}, code_competition=True)
    with svc:
        yield svc


@pytest.fixture
def kaggle(service, monkeypatch):
    """An in-process client of the local service with short timeouts and backoff."""
    from helpers import FAST, KEY, USER

    from kagglekit.kaggle.client import KaggleService
    from kagglekit.kaggle.credentials import Credentials

    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    monkeypatch.setenv("KAGGLEKIT_LOCAL_KAGGLE_PORT", str(service.port))
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    service.faults.clear()
    yield KaggleService(Credentials(USER, KEY, "test"), timeout=1.5, backoff=FAST)
    service.faults.clear()


@pytest.fixture
def env(service, tmp_path):
    """The environment of a ``kagglekit`` child process that is alice, talking to the local service."""
    from helpers import client_env

    (tmp_path / "kaggle-config").mkdir()
    return client_env(service.port, tmp_path / "cache", tmp_path / "kaggle-config")


# -- a finished run ------------------------------------------------------------------------------
@pytest.fixture
def finished_run(tmp_path, seedlings_small) -> tuple[Path, Path]:
    """A run directory in the layout a pipeline writes (real plots, real submission ids), and a
    weights folder; training is not what the tests using it are about (its weights are not real)."""
    import numpy as np
    import pandas as pd

    from kagglekit.competitions.discovery import get_competition
    from kagglekit.core.config import RunConfig, TrainConfig
    from kagglekit.models.backbones import get_backbone
    from kagglekit.runs import plots
    from kagglekit.runs.provenance import write_provenance

    competition = get_competition("seedlings")
    run_dir = tmp_path / "submissions" / "seedlings" / "20260101-120000-0123456789ab"
    RunConfig(competition="seedlings", data=str(seedlings_small), backbones=["efficientnet_lite0"], folds=2,
              image_size=96, train=TrainConfig(learner="head")).save(run_dir / "config.yaml")
    write_provenance(run_dir)
    (run_dir / "metrics.json").write_text(json.dumps({
        "metric": "micro_f1", "cv_mean": 0.8125, "cv_std": 0.0125, "fold_scores": [0.8, 0.825],
        "seconds": 12.5, "train_images": 180,
        "baseline": {"name": "Black-grass for every image", "score": 0.0833, "fold_scores": [0.0833, 0.0833],
                     "beaten": True},
        "timing": {"device": "tensorflow on 1 CPU (2 cores)", "seconds_per_epoch": 0.25, "peak_memory_gib": 1.5},
        "stages": {"train": 10.0}}))
    (run_dir / "data_report.json").write_text(json.dumps({
        "train_images": 180, "test_images": 60, "skipped_unreadable_train": {},
        "class_counts": {name: 15 for name in competition.classes}}))
    sample = pd.read_csv(seedlings_small / "sample_submission.csv", dtype=str)
    sample.assign(species="Maize").to_csv(run_dir / "submission.csv", index=False)
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]}
    plots.learning_curves([history, history], run_dir / "plots" / "learning_curves.png", "curves")
    labels = np.arange(24) % 12
    plots.confusion_matrix(labels, labels, competition.classes, run_dir / "plots" / "confusion_matrix.png", "cm")
    (run_dir / "folds" / "fold0").mkdir(parents=True)
    (run_dir / "folds" / "fold0" / "head.weights.h5").write_bytes(b"head weights")
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / get_backbone("efficientnet_lite0").weights_file).write_bytes(b"backbone weights")
    (weights / get_backbone("mobilenet_v2").weights_file).write_bytes(b"another backbone")
    return run_dir, weights


# -- shared classification runs ------------------------------------------------------------------------
# Plant Seedlings runs trained once per session and read by many tests. A test that changes a run directory
# (resumes it, blends into it, deletes a file) works on a copy (shutil.copytree into its tmp_path); each
# fixture checks at the end of the session that its run directory is as it was made.

@pytest.fixture(scope="session")
def seedlings_run(seedlings_small, tiny_run_config, tmp_path_factory):
    """``kagglekit run seedlings --config tiny_run_config`` in this process, on a feature cache of its own, so
    that every image a backbone runs on is computed (and counted) in the run itself. Read by the
    classification end-to-end test and the notebook test."""
    import contextlib
    import io

    from helpers import InProcessRun, count_backbone_passes, only_run_dir, read_only

    from kagglekit.cli import main

    work = tmp_path_factory.mktemp("seedlings-run")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAGGLEKIT_CACHE", str(work / "cache"))  # no features cached by other tests
        passes = count_backbone_passes(patch)
        with contextlib.redirect_stdout(printed):
            code = main(["run", "seedlings", "--data", str(seedlings_small), "--config", str(tiny_run_config),
                         "--output-dir", str(work / "runs")])
    assert code == 0, printed.getvalue()[-3000:]
    run = InProcessRun(only_run_dir(work / "runs" / "seedlings"), work / "cache", printed.getvalue(), list(passes))
    yield from read_only(run.run_dir, run)


@pytest.fixture(scope="session")
def seedlings_head_run(seedlings_small, tmp_path_factory) -> Path:
    """The ``HEAD_RUN`` of the small seedlings: read by the head-run inspection tests and (with a Lite1 run
    on the same folds) the blend tests."""
    from helpers import HEAD_RUN, finished_runs, read_only

    (run_dir,) = finished_runs("seedlings", seedlings_small, {"head": HEAD_RUN}, tmp_path_factory.mktemp("head-run"))
    yield from read_only(run_dir)


@pytest.fixture(scope="session")
def seedlings_tags_run(seedlings_tags, tmp_path_factory) -> Path:
    """The ``TAGS_RUN`` of the multi-label seedlings: read by the multi-label explain test and (with a
    96 px run on the same folds) the multi-label blend tests."""
    import yaml
    from helpers import TAGS_RUN, only_run_dir, read_only

    from kagglekit.cli import main

    spec, data = seedlings_tags
    work = tmp_path_factory.mktemp("tags-run")
    (work / "config.yaml").write_text(yaml.safe_dump(TAGS_RUN))
    assert main(["run", str(spec), "--data", str(data), "--config", str(work / "config.yaml"),
                 "--output-dir", str(work / "runs")]) == 0
    run_dir = only_run_dir(work / "runs" / spec.stem)
    yield from read_only(run_dir)


@pytest.fixture(scope="session")
def seedlings_finetuned_run(seedlings_small, tmp_path_factory) -> Path:
    """``kagglekit run`` of ``TINY_FINETUNE`` in a child process, as a user starts it: the uninterrupted
    reference of the kill -9 test, the fine-tuned run the explain/attack test reads, and the fine-tuned side
    of the frozen-head comparison (test_finetune)."""
    import subprocess

    from helpers import REPO, TINY_FINETUNE, only_run_dir, read_only

    work = tmp_path_factory.mktemp("finetuned-run")
    (work / "tiny.yaml").write_text(TINY_FINETUNE)
    done = subprocess.run([sys.executable, "-m", "kagglekit", "run", "seedlings", "--data", str(seedlings_small),
                           "--config", str(work / "tiny.yaml"), "--output-dir", str(work / "runs")],
                          cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    run_dir = only_run_dir(work / "runs" / "seedlings")
    yield from read_only(run_dir)



# -- two xdist workers (scripts/test.sh: -n 2 --dist loadgroup --no-loadscope-reorder) -------------------------
#: The session's trained runs. The tests that read one form a group, run by one worker, which alone trains it.
SHARED_RUNS = ("seedlings_run", "seedlings_head_run", "seedlings_tags_run", "seedlings_finetuned_run", "voc_run",
               "camvid_run")


@pytest.hookimpl(tryfirst=True)  # xdist reads the marks in its own hook: before it, or they are ignored
def pytest_collection_modifyitems(config, items):
    """Each test joins a group (``xdist_group``) that one worker runs: the first shared run it reads, else its file
    (its module-scoped fixtures are then built once). The groups that train a shared run come first, so that the
    longest work is handed out first and the two workers end together."""
    for item in items:
        group = next((run for run in SHARED_RUNS if run in item.fixturenames), item.path.name)
        item.add_marker(pytest.mark.xdist_group(group))
        item.user_properties.append(("xdist_group", group))  # for the check below, whatever xdist does with it
    items.sort(key=lambda item: dict(item.user_properties)["xdist_group"] not in SHARED_RUNS)


#: On the xdist controller, with --dist loadgroup: group -> the workers that ran its tests.
WORKERS_OF_GROUP: dict[str, set[str]] = {}
#: On the xdist controller: group -> seconds its tests took (setup, call and teardown), and the same per worker.
SECONDS_OF_GROUP: dict[str, float] = {}
SECONDS_OF_WORKER: dict[str, float] = {}


def pytest_runtest_logreport(report):
    node = getattr(report, "node", None)  # set by xdist's controller on its workers' reports
    group = dict(report.user_properties).get("xdist_group")
    if node is not None and group is not None and node.config.getoption("dist") == "loadgroup":
        WORKERS_OF_GROUP.setdefault(group, set()).add(node.gateway.id)
        SECONDS_OF_GROUP[group] = SECONDS_OF_GROUP.get(group, 0.0) + report.duration
        SECONDS_OF_WORKER[node.gateway.id] = SECONDS_OF_WORKER.get(node.gateway.id, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """Where the suite's minutes went: each worker's (they should end together) and the dearest groups'."""
    if not SECONDS_OF_WORKER:
        return
    terminalreporter.section("minutes per worker and group")
    workers, dearest = sorted(SECONDS_OF_WORKER.items()), sorted(SECONDS_OF_GROUP.items(), key=lambda x: -x[1])[:10]
    terminalreporter.line("workers: " + ", ".join(f"{worker} {seconds / 60:.1f}" for worker, seconds in workers))
    terminalreporter.line("dearest groups: " + ", ".join(f"{group} {seconds / 60:.1f}" for group, seconds in dearest))


def pytest_sessionfinish(session):
    """A group that two workers ran trained its shared run twice (or built its module's fixtures twice) and would
    pass unnoticed, as with pytest 9 and xdist 3.8 where the marks never reached xdist's scheduler: fail the run."""
    split = {group: sorted(workers) for group, workers in WORKERS_OF_GROUP.items() if len(workers) > 1}
    if split:
        print(f"\ntest groups run by more than one xdist worker: {split}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
