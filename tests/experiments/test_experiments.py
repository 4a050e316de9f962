"""Experiments at scale: the backbone x optimizer matrix (compare), hyperparameter search on Ray (tune),
the from-scratch CNN, and the time and resources every run records."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml

from helpers import REPO, SEEDLINGS, kagglekit, require, shard_rows


@pytest.fixture(scope="module")
def seedlings_tiny(tmp_path_factory) -> Path:
    """8 real images per species (96), a quarter held out as test: what a matrix of runs affords in a test."""
    from kagglekit.competitions.builders import build_class_folder_competition

    return build_class_folder_competition(require(SEEDLINGS), tmp_path_factory.mktemp("seedlings-tiny"),
                                          per_class=8, test_fraction=0.25)


def env() -> dict:
    return dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- the search space: checked when read ---------------------------------------------------------------

@pytest.mark.parametrize("text, problem", [
    ("finetune.lrr: {loguniform: [1.0e-4, 1.0e-2]}", "unknown key finetune.lrr"),
    ("finetune.lr: {loguniform: [0, 1.0e-2]}", "low > 0"),
    ("finetune.lr: {uniform: [0.1, 0.01]}", "low < high"),
    ("finetune.epochs: {int: [1.5, 4]}", "whole numbers"),
    ("finetune.optimizer: {choice: [adamw, adagrad]}", "finetune.optimizer"),
    ("finetune.lr: {normal: [0, 1]}", "expected one of"),
    ("- a list", "mapping"),
])
def test_a_bad_search_space_is_refused_naming_the_key(tmp_path, text, problem):
    from kagglekit.core.config import RunConfig
    from kagglekit.core.errors import ConfigError
    from kagglekit.experiments.space import read_space

    with pytest.raises(ConfigError, match=problem):
        read_space(write(tmp_path / "space.yaml", text), RunConfig().to_dict())


def test_drawn_values_become_typed_config_values(tmp_path):
    from kagglekit.core.config import RunConfig, from_dict, merge
    from kagglekit.experiments.space import read_space

    space = read_space(write(tmp_path / "space.yaml", "finetune.epochs: {int: [2, 6]}\nfinetune.lr: {loguniform: "
                                                      "[1.0e-4, 1.0e-2]}\nbackbones: {choice: [scratch_cnn]}\n"),
                       RunConfig().to_dict())
    drawn = {"finetune.epochs": np.int64(3), "finetune.lr": np.float64(2e-3), "backbones": "scratch_cnn"}
    config = from_dict(RunConfig, merge(RunConfig().to_dict(), space.overrides(drawn)))  # strict: no numpy scalars
    assert (config.finetune.epochs, config.finetune.lr, config.backbones) == (3, 2e-3, ["scratch_cnn"])
    assert set(space.ray_space()) == {"finetune.epochs", "finetune.lr", "backbones"}


# --- the from-scratch CNN ----------------------------------------------------------------------------

def test_the_scratch_cnn_trains_whole_from_the_first_epoch_and_is_never_frozen(tmp_path):
    from kagglekit.core.config import RunConfig, from_dict
    from kagglekit.core.errors import ConfigError
    from kagglekit.learners.features import FeatureExtractor
    from kagglekit.learners.finetune import FineTunedClassifier
    from kagglekit.models.segmentation import build_segmenter

    learner = FineTunedClassifier("scratch_cnn", 32, 3, tmp_path, epochs=3, head_epochs=1, top_epochs=1,
                                  label_smoothing=0.0)
    model = learner.build()
    assert [(s.name, s.first_epoch, s.epochs, s.trainable_from) for s in learner.stages(model)] == [("all", 0, 3, 1)]
    rng = np.random.default_rng(0)
    labels = np.arange(24) % 3
    images = (rng.random((24, 32, 32, 3)) * 60 + labels[:, None, None, None] * 80).astype(np.uint8)  # separable
    learner.fit(shard_rows(tmp_path / "images", images, tmp_path / "cache"), labels)
    trainable = {v.path for v in learner.model.trainable_variables}
    assert any("stage1_conv1" in p for p in trainable) and any("stage1_bn1" in p for p in trainable)  # BN learns too
    assert learner.history["loss"][-1] < learner.history["loss"][0]
    for frozen_use in (lambda: FeatureExtractor("scratch_cnn", 32),
                       lambda: build_segmenter("unet", "scratch_cnn", (32, 32), 3, freeze_encoder=True)):
        with pytest.raises(ConfigError, match="not pretrained"):
            frozen_use()
    from_dict(RunConfig, {"backbones": ["scratch_cnn"]})  # a valid config: only frozen uses are refused


# --- compare: every cell an ordinary run, the table true to the run directories ------------------------

@pytest.mark.slow
def test_compare_runs_the_matrix_and_its_table_matches_the_run_directories(seedlings_tiny, tmp_path):
    from kagglekit.runs.ledger import Ledger, default_ledger_path

    config = write(tmp_path / "cell.yaml", "time_budget: null\nimage_size: 64\nfolds: 3\ntta: [identity]\ntrain: {learner: finetune}\n"
                   "finetune: {epochs: 1, head_epochs: 1, top_epochs: 0, batch_size: 16, scored_folds: 1}\n")
    out = tmp_path / "matrix"
    # one backbone by two optimizers: every cell is a child process's run (the suite's minutes); the pretrained
    # backbones' cells are bench/compare.py's
    args = ["compare", "seedlings", "--data", seedlings_tiny, "--config", config, "--backbones",
            "scratch_cnn", "--optimizers", "adamw,sgd", "--price-per-hour", "2.5", "--out", out]
    done = kagglekit(*args, env=env(), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    table = pd.read_csv(out / "comparison.csv")
    assert list(zip(table.backbone, table.optimizer)) == [("scratch_cnn", "adamw"), ("scratch_cnn", "sgd")]
    assert table.run_dir.nunique() == 2
    recorded = Ledger(default_ledger_path()).history("seedlings")
    for row in table.itertuples():
        run_dir = Path(row.run_dir)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert (saved["backbones"], saved["finetune"]["optimizer"]) == ([row.backbone], row.optimizer)
        assert (row.cv_mean, row.cv_std, row.folds) == (metrics["cv_mean"], metrics["cv_std"], 1)
        timing = metrics["timing"]
        assert row.seconds_per_epoch == timing["seconds_per_epoch"] > 0
        assert row.train_images_per_s == timing["train_images_per_s"] > 0
        assert row.predict_images_per_s == timing["predict_images_per_s"] > 0
        assert row.peak_memory_gib == timing["peak_memory_gib"] > 0.1
        assert row.wall_seconds >= metrics["seconds"]  # the child process's start-up counts too
        assert row.cost == pytest.approx(row.wall_seconds / 3600 * 2.5, abs=1e-3)
        assert run_dir.name in set(recorded.run_id)  # an ordinary run: in the ledger too
        assert recorded.set_index("run_id").loc[run_dir.name, "seconds_per_epoch"] == timing["seconds_per_epoch"]
    markdown = (out / "comparison.md").read_text()
    assert "| scratch_cnn " in markdown and "cost at 2.5/device-hour" in markdown
    assert "(1 fold)" in markdown and "± 0.0000" not in markdown  # one scored fold shows no spread
    from PIL import Image

    with Image.open(out / "comparison.png") as heatmap:
        assert heatmap.size[0] > 400
    # the same command again reads the finished cells: nothing reruns, the table is the same
    before = {p: p.stat().st_mtime for p in out.glob("cells/*/runs/*/*/metrics.json")}
    again = kagglekit(*args, env=env(), timeout=120)
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime for p in out.glob("cells/*/runs/*/*/metrics.json")} == before
    pd.testing.assert_frame_equal(pd.read_csv(out / "comparison.csv"), table)
    other = kagglekit(*[a if a != "adamw,sgd" else "adam" for a in args], env=env(), timeout=120)
    assert other.returncode != 0 and "holds another comparison" in other.stderr


# --- tune: a study on local Ray, interrupted, resumed, its best config reproduced ------------------------

@pytest.mark.slow
def test_tune_is_interrupted_resumes_and_its_best_config_reproduces(seedlings_tiny, tmp_path):
    import optuna

    config = write(tmp_path / "head.yaml", "backbones: [efficientnet_lite0]\nimage_size: 64\nfolds: 3\ntta: [identity]\n"
                   "train: {learner: head, head_epochs: 10, views: [identity], multiscale: false, patience: 3}\n")
    space = write(tmp_path / "space.yaml", "train.head_lr: {loguniform: [1.0e-4, 1.0e-2]}\n"
                  "train.head_dropout: {uniform: [0.0, 0.5]}\ntrain.optimizer: {choice: [adam, sgd]}\n")
    out = tmp_path / "study"
    args = ["-m", "kagglekit", "tune", "seedlings", "--data", seedlings_tiny, "--config", config, "--space", space,
            "--trials", "2", "--out", out]
    first = subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, env=env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob("trials/*/seedlings/*/metrics.json")):  # the first trial has finished
            assert first.poll() is None and time.monotonic() < deadline, first.stdout.read() if first.poll() else "timeout"
            time.sleep(0.5)
        first.send_signal(signal.SIGINT)  # Ctrl-C
        output = first.communicate(timeout=120)[0]
    finally:
        first.kill()
    assert first.returncode == 130, output
    assert "run the same command" in output and not (out / "best.yaml").exists()
    # both trials exist by now (the second is pending or running): Ray's clean-up after the Ctrl-C marked them ended,
    # which read as a finished study ("no trial finished", both "pruned") before the saved state was read instead
    states = pd.read_csv(out / "trials.csv").state
    assert "interrupted" in set(states) and set(states) <= {"done", "interrupted"}, states

    second = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env(), capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    study = optuna.load_study(study_name="kagglekit", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 2  # resumed, not started again: no trial twice
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2 and (trials.state == "done").any()
    best = json.loads((out / "best.json").read_text())
    assert best["cv"] == trials[trials.state == "done"].cv.max()
    assert best["cv"] == pytest.approx(max(t.value for t in study.trials if t.value is not None))
    assert len(list(out.glob("trials/*"))) == 2  # the run the interrupted trial started was resumed, not doubled

    rerun = kagglekit("run", "seedlings", "--config", out / "best.yaml", "--output-dir", tmp_path / "rerun",
                      env=env(), timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    (run_dir,) = (tmp_path / "rerun" / "seedlings").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["cv_mean"] == pytest.approx(best["cv"], abs=1e-9)


# --- tune on a real Ray cluster: two nodes on loopback, trials on both, ASHA pruning a bad one --------------

@contextlib.contextmanager
def two_node_ray_cluster(folder: Path):
    """Two 1-CPU Ray nodes started with ``ray start`` (a head and a node joining it), every port on loopback.
    Yields (the GCS address, the environment a client needs, {node id: "head" or "worker"}).

    Ray rewrites 127.0.0.1 to the machine's network address (and then listens on every interface):
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps the head and the client on 127.0.0.1, so Ray binds to
    loopback only; the joining node, which that variable would refuse, names the head ``127.1`` (the same
    address, which Ray does not rewrite) and resolves it with the system's resolver (gRPC's own reads no
    ``127.1``). A token of this cluster's own authenticates them. Each node is a ``ray start --block`` child
    stopped with SIGTERM, which ends its own processes: ``ray stop`` would end every Ray on the machine."""
    base = dict(env(), RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    loopback = dict(base, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    port, client_port = free_port(), free_port()
    common = ["--block", "--num-cpus", "1", "--object-store-memory", str(100 * 2**20), "--disable-usage-stats"]
    ray = str(Path(sys.executable).with_name("ray"))
    nodes: list[subprocess.Popen] = []
    try:
        for name, args, node_env in [
                ("head", ["--head", "--port", port, "--ray-client-server-port", client_port, "--include-dashboard",
                          "false"], loopback),
                ("worker", ["--address", f"127.1:{port}"], dict(base, GRPC_DNS_RESOLVER="native"))]:
            with (folder / f"{name}.log").open("w") as log:
                nodes.append(subprocess.Popen([ray, "start", *map(str, args), *common, "--temp-dir", folder / name],
                                              env=node_env, stdout=log, stderr=subprocess.STDOUT))
        # both nodes joined: their ids, the head's told by the resource only a head has
        ask = ("import json, sys, time, ray; ray.init(address=sys.argv[1], log_to_driver=False)\n"
               "while len([n for n in ray.nodes() if n['Alive']]) < 2: time.sleep(0.5)\n"
               "print(json.dumps({n['NodeID']: 'head' if 'node:__internal_head__' in n['Resources'] else 'worker'"
               " for n in ray.nodes() if n['Alive']}))")
        joined = subprocess.run([sys.executable, "-c", ask, f"127.0.0.1:{port}"], env=loopback,
                                capture_output=True, text=True, timeout=180)
        assert joined.returncode == 0, joined.stderr[-3000:] + "".join(
            (folder / f"{name}.log").read_text()[-2000:] for name in ("head", "worker"))
        ids = json.loads(joined.stdout.strip().splitlines()[-1])
        listening = {c.laddr.ip for n in nodes for p in [psutil.Process(n.pid), *psutil.Process(n.pid).children(True)]
                     for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN}
        assert listening <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening
        yield f"127.0.0.1:{port}", loopback, ids
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_tune_on_a_two_node_ray_cluster_runs_trials_on_both_and_asha_prunes_the_bad_one(seedlings_small, tmp_path):
    import optuna

    # Three trials of one CPU each on two 1-CPU nodes: the first two run at once, necessarily one on each node;
    # the third starts only when one of them has ended, so ASHA (its first rung: the first fold) has a score to
    # compare the third's first fold with. Seed 6 makes Optuna's seeded start-up draws give the hopeless learning
    # rate (1e-7: the head stays at chance, 0.04 on the first fold against 0.31 at 1e-2) to the third trial only
    # (asserted). The small seedlings: the tiny ones' 3 images per class learn nothing at all, so no learning rate
    # would be certainly worse than another there.
    config = write(tmp_path / "head.yaml", "backbones: [efficientnet_lite0]\nimage_size: 64\nfolds: 2\nseed: 6\n"
                   "tta: [identity]\ntrain: {learner: head, head_epochs: 10, patience: 3, views: [identity], "
                   "multiscale: false}\n")
    space = write(tmp_path / "space.yaml", "train.head_lr: {choice: [1.0e-2, 1.0e-7]}\n")
    out = tmp_path / "study"
    with tempfile.TemporaryDirectory(prefix="kk-ray-") as ray_dir:  # short: Ray's socket paths have a length limit
        with two_node_ray_cluster(Path(ray_dir)) as (address, client_env, nodes):
            done = kagglekit("tune", "seedlings", "--data", seedlings_small, "--config", config, "--space", space,
                             "--trials", "3", "--out", out, "--address", address, "--cpus-per-trial", "1",
                             env=client_env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    drawn = optuna.load_study(study_name="kagglekit", storage=f"sqlite:///{out / 'study.db'}").trials  # in order
    assert [t.params["train.head_lr"] for t in drawn] == [1e-2, 1e-2, 1e-7], "seed 6 no longer draws the bad rate third"
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(nodes.values()) == ["head", "worker"] and set(trials.node) == set(nodes)  # Ray's own node ids
    assert all(json.loads(r) == {"CPU": 1.0} for r in trials.resources)  # what --cpus-per-trial declared
    bad, good = trials[trials["train.head_lr"] == 1e-7].iloc[0], trials[trials["train.head_lr"] == 1e-2]
    assert bad.state == "pruned" and bad.folds == 1 and Path(bad.run_dir).is_dir()  # stopped after its first fold
    finished = good[good.state == "done"]
    assert len(finished) >= 1 and (finished.folds == 2).all() and (finished.cv > bad.cv).all()
