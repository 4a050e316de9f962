"""Self-contained notebooks: report cells, template rendering, the inputs bundle, input discovery,
Kaggle metadata, and (slow) executing the notebook offline to reproduce a real run's submission."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from helpers import REPO

from kagglekit.competitions.discovery import get_competition
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError, WeightsError
from kagglekit.models.backbones import get_backbone
from kagglekit.notebook.bootstrap import (
    BUNDLE_MANIFEST,
    InputNotFound,
    find_bundle,
    find_data,
    verify_bundle,
)
from kagglekit.notebook.generate import generate_notebook
from kagglekit.notebook.render import render_notebook
from kagglekit.notebook.wheel import write_source_wheel
from kagglekit.runs.layout import RUN_FILES

NETGUARD = REPO / "kagglekit" / "kaggle_service" / "netguard"


def guarded_env(tmp_path: Path, **extra) -> dict:
    """The environment of a process that cannot reach the network (see kagglekit/kaggle_service/netguard/sitecustomize.py)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(NETGUARD), NETGUARD_LOG=str(tmp_path / "netguard.log"), **extra)
    return env


def has_row(text: str, *cells: str) -> bool:
    """Whether ``cells`` are consecutive cells of a markdown table row in ``text``, whatever the padding."""
    return re.search(r"\|\s*" + r"\s*\|\s*".join(map(re.escape, cells)) + r"\s*\|", text) is not None


def markdown(notebook) -> str:
    return "\n\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")


def test_notebook_reports_the_run(finished_run, tmp_path):
    run_dir, weights = finished_run
    made = generate_notebook(get_competition("seedlings"), run_dir, tmp_path / "notebooks", str(weights))
    assert made.notebook == tmp_path / "notebooks" / f"seedlings-{run_dir.name}.ipynb"
    notebook = nbformat.read(made.notebook, as_version=4)
    nbformat.validate(notebook)
    text = markdown(notebook)
    for expected in ("Plant Seedlings Classification", "plant-seedlings-classification", "micro_f1",
                     "file,species", "0.8125 ± 0.0125", "- CV micro_f1: 0.0833 (Black-grass for every image), beaten",
                     "image_size: 96", "input size (pixels): 96", "backbone(s): `efficientnet_lite0`", "No submissions recorded yet for seedlings"):
        assert expected in text, expected
    assert has_row(text, "1", "0.8250") and has_row(text, "Black-grass", "15")
    assert "### Time and resources" in text and has_row(text, "wall time", "12 s")
    assert has_row(text, "device", "tensorflow on 1 CPU (2 cores)") and has_row(text, "peak memory gib", "1.5")
    assert "{{" not in "".join(c.source for c in notebook.cells)
    assert notebook.cells[0].source.startswith("# Plant Seedlings Classification: kagglekit run ")
    images = {name: base64.b64decode(data["image/png"])
              for cell in notebook.cells for name, data in cell.get("attachments", {}).items()}
    assert images == {p.name: p.read_bytes() for p in (run_dir / "plots").glob("*.png")}
    code = [c for c in notebook.cells if c.cell_type == "code"]
    parameters = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and f'RUN = "{run_dir.name}"' in parameters[0].source
    assert any("def find_bundle" in c.source for c in code)  # the bootstrap travels inside
    assert "notebook runtime" in code[-1].source
    compile("\n".join(c.source for c in code), "notebook", "exec")  # valid Python throughout


def test_report_says_when_a_run_does_not_beat_its_constant_baseline(tmp_path):
    """A VOC-like run beaten by the constant on its label rows: the report says so for the whole and each kind
    of row; a run made before runs recorded a baseline reports its CV as before."""
    from kagglekit.evaluation import baseline
    from kagglekit.notebook.report import cv_section

    constant = baseline.joint({"classification rows": baseline.Baseline("{person}", [0.91]),
                               "segmentation rows": baseline.Baseline("empty masks", [0.0])})
    metrics = {"metric": "dice", "cv_mean": 0.448, "cv_std": 0.0, "fold_scores": [0.448],
               "baseline": baseline.record(constant, 0.448, "dice",
                                           {"classification rows": 0.85, "segmentation rows": 0.046})}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    text = cv_section(tmp_path)
    assert ("- CV dice: 0.4550 ({person}; empty masks), **not beaten: the run is no better than a constant "
            "answer**") in text
    assert "- on its classification rows: 0.9100 ({person}), **not beaten" in text
    assert "- on its segmentation rows: 0.0000 (empty masks), beaten" in text
    assert "baseline" not in text.split("| fold")[1]  # not repeated among the other figures
    (tmp_path / "metrics.json").write_text(json.dumps({k: v for k, v in metrics.items() if k != "baseline"}))
    assert "constant" not in cv_section(tmp_path) and "**CV dice: 0.4480 ± 0.0000**" in cv_section(tmp_path)


def test_submission_format_example_shortens_long_values(tmp_path):
    """Segmentation submissions hold long run-length encodings; the example shows their start."""
    from kagglekit.notebook.report import competition_section

    rle = " ".join(str(i) for i in range(200))
    pd.DataFrame({"file": ["a.png", "b.png"], "species": [rle, "1 2"]}).to_csv(tmp_path / "submission.csv", index=False)
    text = competition_section(get_competition("seedlings"), tmp_path)
    assert f"a.png,{rle[:60]}...\nb.png,1 2\n" in text and "2 here" in text


def test_unfilled_placeholder_is_an_error():
    template = "# %% [markdown]\n# {{known}} and {{unknown}}\n"
    with pytest.raises(ConfigError, match="unknown"):
        render_notebook({"known": "x"}, template=template)
    block = "# %%\nx = 1\n# {{code}}\n"
    cell = render_notebook({"code": "y = '{{not a placeholder}}'"}, template=block).cells[0]
    assert cell.source == "x = 1\ny = '{{not a placeholder}}'"


def test_bundle_holds_what_the_notebook_reads(finished_run, tmp_path):
    run_dir, weights = finished_run
    made = generate_notebook(get_competition("seedlings"), run_dir, tmp_path / "nb", str(weights))
    bundle = made.bundle
    manifest = json.loads((bundle / BUNDLE_MANIFEST).read_text())
    assert manifest["run"] == run_dir.name and manifest["competition"] == "seedlings"
    assert [p.name for p in (bundle / "weights").iterdir()] == [get_backbone("efficientnet_lite0").weights_file]
    for name in ("config.yaml", "submission.csv", "folds/fold0/head.weights.h5", "plots/confusion_matrix.png"):
        assert (bundle / "run" / name).read_bytes() == (run_dir / name).read_bytes()
    import hashlib

    for name, digest in manifest["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest
    wheel = bundle / manifest["wheel"]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        packaged = archive.read("kagglekit/notebook/bootstrap.py")
    assert "kagglekit_competitions/seedlings.py" in names and "kagglekit_competitions/camvid.yaml" in names and not any("__pycache__" in n for n in names)
    assert packaged == (REPO / "kagglekit" / "notebook" / "bootstrap.py").read_bytes()
    assert manifest["kagglekit_version"].startswith("0.1.0+src.")
    again = write_source_wheel(tmp_path / "again")
    assert again.path.read_bytes() == wheel.read_bytes()  # reproducible: same code, same bytes


def test_bundled_wheel_installs_offline_and_wins_over_the_installed_kagglekit(finished_run, tmp_path):
    run_dir, weights = finished_run
    bundle = generate_notebook(get_competition("seedlings"), run_dir, tmp_path / "nb", str(weights)).bundle
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"  # bootstrap.py only, as the notebook has it
        "from bootstrap import install_bundled_kagglekit;"
        "import kagglekit;"  # the installed (editable) one is imported first ...
        "v = install_bundled_kagglekit(sys.argv[2], sys.argv[3]);"
        "import kagglekit, kagglekit_competitions.seedlings;"  # ... and replaced by the bundled one
        "print(v, kagglekit.__file__, kagglekit_competitions.seedlings.__file__);"
        "import pathlib; pathlib.Path(sys.argv[3], 'kagglekit', 'data', 'views.py').unlink();"
        "import kagglekit.data.views"  # missing from the bundle: not served by the installed kagglekit
    )
    target = tmp_path / "site"
    out = subprocess.run([sys.executable, "-c", script, str(REPO / "kagglekit" / "notebook"), str(bundle), str(target)],
                         env=guarded_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "ModuleNotFoundError: kagglekit.data.views is not part of the bundled kagglekit" in out.stderr, out.stderr
    version, module, adapter = out.stdout.split()
    assert version == json.loads((bundle / BUNDLE_MANIFEST).read_text())["kagglekit_version"]
    assert Path(module).is_relative_to(target) and Path(adapter).is_relative_to(target)
    assert not (tmp_path / "netguard.log").exists()


def test_a_damaged_bundle_is_refused_by_name(finished_run, tmp_path):
    run_dir, weights = finished_run
    bundle = generate_notebook(get_competition("seedlings"), run_dir, tmp_path / "nb", str(weights)).bundle
    assert verify_bundle(bundle)["run"] == run_dir.name
    (bundle / "run" / "folds" / "fold0" / "head.weights.h5").write_bytes(b"truncated")
    (bundle / "run" / "config.yaml").unlink()
    with pytest.raises(InputNotFound, match="missing run/config.yaml; changed run/folds/fold0/head.weights.h5"):
        verify_bundle(bundle)


def test_missing_backbone_weights_are_reported_before_upload(finished_run, tmp_path, monkeypatch):
    run_dir, _ = finished_run
    monkeypatch.setenv("KAGGLEKIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    monkeypatch.delenv("KAGGLEKIT_WEIGHTS_DIR", raising=False)
    (tmp_path / "empty").mkdir()  # a weights folder that exists but lacks the file (a missing one is refused earlier)
    with pytest.raises(WeightsError, match="efficientnet_lite0: efficientnet_lite0_imagenet.npz is in none of"):
        generate_notebook(get_competition("seedlings"), run_dir, tmp_path / "nb", str(tmp_path / "empty"))


def test_notebook_refuses_a_run_of_another_competition(finished_run, tmp_path):
    run_dir, weights = finished_run
    with pytest.raises(ConfigError, match="run of seedlings, not flowers"):
        generate_notebook(get_competition("flowers"), run_dir, tmp_path / "nb", str(weights))


def test_notebook_ships_only_the_code_that_made_the_run(finished_run, tmp_path):
    run_dir, weights = finished_run
    competition = get_competition("seedlings")
    intro = markdown(nbformat.read(generate_notebook(competition, run_dir, tmp_path / "a", str(weights)).notebook, 4))
    assert "the exact kagglekit code that made the run" in intro
    (run_dir / RUN_FILES.provenance).write_text(json.dumps({"kagglekit_version": "0.1.0", "source_sha256": "f" * 64}))
    with pytest.raises(ConfigError, match="made by kagglekit source ffffffffffff.*--allow-code-change"):
        generate_notebook(competition, run_dir, tmp_path / "b", str(weights))
    made = generate_notebook(competition, run_dir, tmp_path / "c", str(weights), allow_code_change=True)
    assert "**not** the code that made the run" in markdown(nbformat.read(made.notebook, 4))


def test_ledger_history_is_part_of_the_report(finished_run, tmp_path):
    from kagglekit.runs import ledger as ledger_module
    from kagglekit.runs.result import RunResult

    run_dir, weights = finished_run
    ledger = ledger_module.Ledger(tmp_path / "ledger.sqlite")
    config = RunConfig.load(run_dir / "config.yaml")
    for name, cv in (("20251231-090000-aaaaaaaaaaaa", 0.7), (run_dir.name, 0.8125)):
        ledger.record_run(RunResult(run_dir.parent / name, "seedlings", "micro_f1", cv, 0.01, [cv], run_dir / "submission.csv", 9.0), config)
    row = ledger.open_submission("seedlings", "ab" * 32, "submission.csv", "tiny run", run_id=run_dir.name)
    ledger.update_submission(row["id"], status="complete", public_score=0.79)
    made = generate_notebook(get_competition("seedlings"), run_dir, tmp_path / "nb", str(weights),
                             ledger_path=ledger.path)
    text = markdown(nbformat.read(made.notebook, 4))
    assert has_row(text, f"**{run_dir.name}** (this run)", "efficientnet_lite0", "0.8125")
    assert has_row(text, "complete", "0.7900") and has_row(text, "20251231-090000-aaaaaaaaaaaa")


def write_manifest(folder: Path, run: str) -> Path:
    folder.mkdir(parents=True)
    (folder / BUNDLE_MANIFEST).write_text(json.dumps({"run": run}))
    return folder


def test_inputs_are_found_on_kaggle_and_locally(tmp_path):
    kaggle_input = tmp_path / "kaggle" / "input"
    write_manifest(kaggle_input / "seedlings-older-run-inputs", "older")
    ours = write_manifest(kaggle_input / "seedlings-run-inputs" / "nested", "run")
    competition_data = kaggle_input / "plant-seedlings-classification"
    competition_data.mkdir()
    (competition_data / "sample_submission.csv").write_text("file,species\n")
    assert find_bundle("run", roots=[kaggle_input]) == ours
    assert find_bundle("run", explicit=ours, roots=[]) == ours
    assert find_data("plant-seedlings-classification", "sample_submission.csv", roots=[kaggle_input]) == competition_data
    renamed = competition_data.rename(kaggle_input / "seedlings-data")  # attached under another name
    assert find_data("plant-seedlings-classification", "sample_submission.csv", roots=[kaggle_input]) == renamed
    with pytest.raises(InputNotFound, match="inputs of run missing are not attached.*seedlings-older-run-inputs"):
        find_bundle("missing", roots=[kaggle_input])
    with pytest.raises(InputNotFound, match="no kagglekit-bundle.json"):
        find_bundle("run", explicit=tmp_path, roots=[])
    with pytest.raises(InputNotFound, match="DATA_DIR"):
        find_data("plant-seedlings-classification", "sample_submission.csv", roots=[tmp_path / "nothing"])


def test_kernel_metadata_is_what_kaggle_kernels_push_reads(finished_run, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-config"))
    from kaggle.api.kaggle_api_extended import KaggleApi
    from slugify import slugify

    run_dir, weights = finished_run
    out = subprocess.run(
        [sys.executable, "-m", "kagglekit", "notebook", "seedlings", "--run", str(run_dir), "--out",
         str(tmp_path / "notebooks"), "--weights-dir", str(weights), "--kernel-metadata", "--owner", "someone"],
        cwd=REPO, env=guarded_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    kernel_dir = tmp_path / "notebooks" / f"seedlings-{run_dir.name}-kernel"
    meta = json.loads((kernel_dir / "kernel-metadata.json").read_text())
    dataset = json.loads((tmp_path / "notebooks" / f"seedlings-{run_dir.name}-inputs" / "dataset-metadata.json").read_text())

    api = KaggleApi()
    api.config_values = {api.CONFIG_NAME_USER: "someone"}
    api.kernels_initialize(str(tmp_path))  # kaggle's own template: the fields it knows
    template = json.loads((tmp_path / api.KERNEL_METADATA_FILE).read_text())
    assert set(meta) == set(template)
    assert (kernel_dir / meta["code_file"]).is_file() and meta["code_file"].endswith(".ipynb")
    assert meta["id"] == f"someone/{slugify(meta['title'])}" and len(meta["title"]) >= 5
    assert meta["language"] in api.valid_push_language_types and meta["kernel_type"] in api.valid_push_kernel_types
    assert api.get_bool(meta, "enable_internet", True) is False and api.get_bool(meta, "is_private", False) is True
    assert meta["competition_sources"] == ["plant-seedlings-classification"]
    assert meta["dataset_sources"] == [dataset["id"]]
    api.validate_dataset_string(dataset["id"])
    owner, slug = dataset["id"].split("/")
    assert owner == "someone" and slug == slugify(dataset["title"])
    assert 6 <= len(slug) <= 50 and 6 <= len(dataset["title"]) <= 50 and len(dataset["licenses"]) == 1


def test_kernel_metadata_needs_an_owner(finished_run, tmp_path):
    run_dir, weights = finished_run
    with pytest.raises(ConfigError, match="--owner"):
        generate_notebook(get_competition("seedlings"), run_dir, tmp_path / "nb", str(weights), kernel_metadata=True)


def test_network_guard_refuses_and_logs_external_connections(tmp_path):
    """What the offline notebook test relies on: Python-level connections off loopback fail."""
    script = (
        "import socket, urllib.request\n"
        "server = socket.create_server(('127.0.0.1', 0)); port = server.getsockname()[1]\n"
        "socket.create_connection(('127.0.0.1', port)).close()\n"  # loopback still works
        "attempts = [lambda: urllib.request.urlopen('https://pypi.org/simple/', timeout=5),\n"
        "            lambda: socket.socket().connect(('93.184.216.34', 80))]\n"
        "for attempt in attempts:\n"
        "    try:\n"
        "        attempt()\n"
        "    except OSError as exc:\n"
        "        print('refused:', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=guarded_env(tmp_path), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("refused:") == 2 and out.stdout.count("netguard") == 2
    log = (tmp_path / "netguard.log").read_text().splitlines()
    assert [line.split()[1:] for line in log] == [["resolve", "pypi.org"], ["connect", "93.184.216.34"]]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_notebook_reproduces_the_run_submission_offline(seedlings_run, seedlings_small, tmp_path):
    """A tiny real run (the session's ``seedlings_run``), its notebook generated, executed in a fresh kernel
    that cannot reach the network, has an empty HOME and cache, and sees only the bundle and the competition
    folder; the submission.csv it writes must be byte-identical to the run's own."""
    from nbclient import NotebookClient

    run_dir = seedlings_run.run_dir
    cli = [sys.executable, "-m", "kagglekit"]
    subprocess.run(cli + ["notebook", "seedlings", "--run", str(run_dir), "--out", str(tmp_path / "notebooks")],
                   cwd=REPO, check=True, timeout=300,
                   env={**os.environ, "KAGGLEKIT_CACHE": str(seedlings_run.cache)})  # the weights the run used
    name = f"seedlings-{run_dir.name}"

    kernel_cwd, home = tmp_path / "kaggle-working", tmp_path / "home"
    kernel_cwd.mkdir()
    home.mkdir()
    env = guarded_env(tmp_path, HOME=str(home), KAGGLEKIT_DATA=str(seedlings_small), KAGGLEKIT_WORK=str(tmp_path / "work"))
    for inherited in ("KAGGLEKIT_CACHE", "KAGGLEKIT_WEIGHTS_DIR", "KERAS_HOME"):  # only the bundle's weights
        env.pop(inherited, None)
    notebook = nbformat.read(tmp_path / "notebooks" / f"{name}.ipynb", as_version=4)
    # the bundle as papermill passes parameters (a cell after the one tagged "parameters"); the data by env var
    (parameters,) = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    bundle = tmp_path / "notebooks" / f"{name}-inputs"
    notebook.cells.insert(parameters + 1, nbformat.v4.new_code_cell(f"BUNDLE_DIR = {str(bundle)!r}"))
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(kernel_cwd)}}).execute(env=env, cwd=str(kernel_cwd))

    assert (kernel_cwd / "submission.csv").read_bytes() == (run_dir / "submission.csv").read_bytes()
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "identical to the run's submission" in printed
    assert str(tmp_path / "work" / "site-packages") in printed  # the bundled kagglekit ran, not the installed one
    assert f"inputs: {bundle}" in printed and f"python: {sys.executable}" in printed  # the venv's kernel
    runtime = float(printed.split("notebook runtime: ")[1].split(" s")[0])
    assert 0 < runtime < 600, runtime
    assert not (tmp_path / "netguard.log").exists(), (tmp_path / "netguard.log").read_text()
    assert not (tmp_path / "work" / "cache" / "weights").exists()  # nothing converted from local PyPI packages
    assert any((tmp_path / "work" / "cache" / "features").rglob("*.npz"))  # features computed afresh, in the kernel
    print(f"notebook runtime: {runtime:.1f} s")


def test_markdown_tables_keep_each_cell_literal_and_on_one_line():
    from kagglekit.notebook.report import markdown_table

    table = markdown_table(pd.DataFrame({"id": ["007", "a|b"], "note": ["two\nlines", 0.5]}))
    assert len(table.splitlines()) == 4  # header, rule, two rows
    assert has_row(table, "007", "two lines") and has_row(table, "a\\|b", "0.5000")
