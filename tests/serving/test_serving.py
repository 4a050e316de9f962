"""Use a trained run: ``predict --images``, the REST endpoint over real HTTP, and exports with parity.

One tiny real run is trained once for the module (~30 s); everything else reads its run directory.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kagglekit.cli import main as run_cli


@pytest.fixture(scope="module")
def run_dir(seedlings_small, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("serving-run")
    config = work / "tiny.yaml"
    config.write_text("backbones: [efficientnet_lite0]\nimage_size: 64\nfolds: 2\ntta: [identity, hflip]\n"
                      "train: {learner: head, views: [identity], head_epochs: 3, patience: 2}\n")
    assert run_cli(["run", "seedlings", "--data", seedlings_small, "--config", config,
                    "--output-dir", work / "out"]) == 0
    (found,) = (work / "out" / "seedlings").iterdir()
    return found


@pytest.fixture(scope="module")
def run_test_proba(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "test_probabilities.csv").set_index("id")


@pytest.fixture(scope="module")
def predictor(run_dir):
    from kagglekit.serving.predictor import load_predictor

    return load_predictor(run_dir)


@pytest.mark.slow  # trains a tiny run (once per module)
def test_predict_images_matches_the_run(run_dir, run_test_proba, seedlings_small, tmp_path):
    test_images = sorted((seedlings_small / "test").iterdir())
    out = tmp_path / "pred.csv"
    assert run_cli(["predict", run_dir, "--images", seedlings_small / "test", "--out", out]) == 0
    frame = pd.read_csv(out)
    classes = json.loads((run_dir / "classes.json").read_text())
    assert len(frame) == len(test_images)
    proba = frame[classes].to_numpy()
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-4)
    expected = run_test_proba.loc[[Path(p).name for p in frame["image"]], classes].to_numpy()
    assert np.abs(proba - expected).max() < 1e-4  # the run's own test predictions (CSV keeps 6 decimals)
    assert (frame["class"] == [classes[i] for i in expected.argmax(1)]).all()

    # single files, as JSON
    picked = test_images[:2]
    out_json = tmp_path / "pred.json"
    assert run_cli(["predict", run_dir, "--images", *picked, "--out", out_json, "--format", "json"]) == 0
    rows = json.loads(out_json.read_text())
    assert [r["image"] for r in rows] == [str(p) for p in picked]
    for row, path in zip(rows, picked):
        assert row["class"] == max(row["probabilities"], key=row["probabilities"].get)
        got = np.array([row["probabilities"][c] for c in classes])
        assert np.abs(got - run_test_proba.loc[path.name, classes].to_numpy()).max() < 1e-4


@pytest.mark.slow  # trains a tiny run (once per module)
def test_predict_images_refuses_what_it_cannot_read(run_dir, tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(["predict", run_dir, "--images", text, "--out", tmp_path / "p.csv"]) == 3
    assert "notes.png" in capsys.readouterr().err
    assert run_cli(["predict", run_dir, "--images", empty, "--out", tmp_path / "p.csv"]) == 3
    assert "no images" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


@pytest.fixture(scope="module")
def app(predictor):
    from kagglekit.serving.api import create_app

    return create_app(predictor, max_upload_bytes=2 * 1024 * 1024, max_files=8)


@pytest.fixture(scope="module")
def server(app):
    """The endpoint on a free loopback port, served by uvicorn in a background thread."""
    from kagglekit.serving.api import serving_in_background

    with serving_in_background(app) as url:
        yield url


def upload(path: Path):
    return ("files", (path.name, path.read_bytes(), "image/png"))


@pytest.mark.slow  # trains a tiny run (once per module)
def test_health_and_metadata(server, run_dir):
    import requests

    assert requests.get(f"{server}/health", timeout=10).json() == {"status": "ok"}
    meta = requests.get(f"{server}/metadata", timeout=10).json()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert meta["competition"] == "seedlings" and meta["run"] == run_dir.name
    assert meta["classes"] == json.loads((run_dir / "classes.json").read_text())
    assert meta["input_shape"] == [64, 64] and meta["folds"] == 2 and meta["tta"] == ["identity", "hflip"]
    assert meta["cv"]["cv_mean"] == pytest.approx(metrics["cv_mean"])
    assert meta["provenance"]["source_sha256"]


@pytest.mark.slow  # trains a tiny run (once per module)
def test_predict_endpoint_single_and_batch(server, seedlings_small, run_test_proba):
    import requests

    images = sorted((seedlings_small / "test").iterdir())[:3]
    classes = list(run_test_proba.columns)
    single = requests.post(f"{server}/predict", files=[upload(images[0])], timeout=60)
    assert single.status_code == 200, single.text
    (answer,) = single.json()["predictions"]
    assert answer["file"] == images[0].name
    got = np.array([answer["probabilities"][c] for c in classes])
    assert np.abs(got - run_test_proba.loc[images[0].name].to_numpy()).max() < 1e-4
    assert answer["class"] == classes[int(got.argmax())]

    batch = requests.post(f"{server}/predict", files=[upload(p) for p in images], timeout=60)
    assert batch.status_code == 200, batch.text
    answers = batch.json()["predictions"]
    assert [a["file"] for a in answers] == [p.name for p in images]
    for a, path in zip(answers, images):
        got = np.array([a["probabilities"][c] for c in classes])
        assert np.abs(got - run_test_proba.loc[path.name].to_numpy()).max() < 1e-4


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.slow  # trains a tiny run (once per module)
# the 110-megapixel upload is between 1x and 2x Pillow's limit (kagglekit's), where Image.open warns
# before kagglekit refuses it from the header: the warning is this test's own doing
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bad_uploads(server, seedlings_small):
    import requests

    text = requests.post(f"{server}/predict", files=[("files", ("notes.txt", b"hello, not an image", "text/plain"))],
                         timeout=30)
    assert text.status_code == 415 and "notes.txt" in text.json()["detail"]
    assert "object at 0x" not in text.json()["detail"]  # not the BytesIO the upload was read from
    empty = requests.post(f"{server}/predict", files=[("files", ("empty.png", b"", "image/png"))], timeout=30)
    assert empty.status_code == 415 and "empty.png" in empty.json()["detail"]
    missing = requests.post(f"{server}/predict", data={"other": "x"}, timeout=30)
    assert missing.status_code == 422

    oversize = requests.post(f"{server}/predict", files=[("files", ("big.png", b"\0" * (3 * 1024 * 1024), "image/png"))],
                             timeout=30)
    assert oversize.status_code == 413 and "limit" in oversize.json()["detail"]
    image = upload(sorted((seedlings_small / "test").iterdir())[0])
    too_many = requests.post(f"{server}/predict", files=[image] * 9, timeout=30)
    assert too_many.status_code == 413 and "9 files" in too_many.json()["detail"]

    # 110 megapixels in a few kB: refused from its header, never decoded
    bomb = png_bytes(Image.new("1", (11_000, 10_000)))
    assert len(bomb) < 2 * 1024 * 1024
    refused = requests.post(f"{server}/predict", files=[("files", ("bomb.png", bomb, "image/png"))], timeout=30)
    assert refused.status_code == 413 and "bomb.png" in refused.json()["detail"]
    assert requests.get(f"{server}/health", timeout=10).status_code == 200  # still serving


@pytest.mark.slow  # trains a tiny run (once per module)
def test_concurrent_requests_agree_and_share_model_calls(server, app, seedlings_small, run_test_proba):
    import requests

    images = sorted((seedlings_small / "test").iterdir())[:2]

    def ask(i: int) -> dict:
        reply = requests.post(f"{server}/predict", files=[upload(images[i % 2])], timeout=120)
        assert reply.status_code == 200, reply.text
        return reply.json()["predictions"][0]

    calls = app.state.batcher.calls
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(32)))
    # each answer is its own image's, whichever requests shared its model call
    for i, answer in enumerate(answers):
        assert answer["file"] == images[i % 2].name
        expected = run_test_proba.loc[images[i % 2].name, list(answer["probabilities"])].to_numpy(float)
        assert np.abs(np.array(list(answer["probabilities"].values())) - expected).max() < 1e-4
    assert app.state.batcher.calls - calls < 32  # requests that arrived together shared a call


@pytest.mark.slow  # trains a tiny run (once per module)
def test_exports_match_the_run(run_dir, seedlings_small, tmp_path):
    out = tmp_path / "export"
    assert run_cli(["export", run_dir, "--format", "keras", "savedmodel", "onnx", "tflite", "--out", out,
                    "--check-images", seedlings_small / "test"]) == 0
    report = json.loads((out / "export.json").read_text())
    differences = {fmt: e["max_abs_difference"] for fmt, e in report["models"]["model"]["exports"].items()}
    assert differences["keras"] < 1e-4 and differences["savedmodel"] < 1e-4
    assert differences["onnx"] < 1e-3 and differences["tflite"] < 1e-3
    assert (out / "model.keras").is_file() and (out / "saved_model" / "saved_model.pb").is_file()
    assert report["models"]["model"]["input"]["shape"] == [None, 64, 64, 3]
    # an export refuses to overwrite what is already there
    assert run_cli(["export", run_dir, "--out", out]) == 2


def test_tflite_export_without_litert_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    """LiteRT (``ai_edge_litert``, the ``tflite`` extra) runs the parity check; without it the export
    stops with the install to do, before a model is loaded or a file written."""
    import sys

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # its import fails: not installed
    out = tmp_path / "export"
    (tmp_path / "run").mkdir()  # a folder (a missing one is refused as it is parsed), not yet read
    assert run_cli(["export", tmp_path / "run", "--format", "keras", "tflite", "--out", out]) == 2
    assert "pip install 'kagglekit[tflite]'" in capsys.readouterr().err
    assert not out.exists()


def test_export_views_are_the_runs_views():
    import keras

    from kagglekit.data.views import VIEWS, apply_view
    from kagglekit.models.composition import VIEW_OPS

    batch = np.random.default_rng(0).random((2, 5, 7, 3)).astype(np.float32)
    assert set(VIEW_OPS) == set(VIEWS)
    for view in VIEW_OPS:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(VIEW_OPS[view](batch)), apply_view(view, batch))


@pytest.mark.slow  # trains a tiny run (once per module)
def test_serve_model_command(run_dir):
    """``kagglekit serve-model`` as a user starts it: a process that answers on the port it was given."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "kagglekit", "serve-model", str(run_dir), "--port", str(port)],
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        deadline = time.time() + 120
        while True:
            assert process.poll() is None and time.time() < deadline, "serve-model did not come up"
            try:
                reply = requests.get(f"http://127.0.0.1:{port}/metadata", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert reply.json()["run"] == run_dir.name
    finally:
        process.terminate()
        process.wait(30)
