"""Bad inputs through the real command line: a clear one-line error and a documented exit code, never a
traceback, a silent wrong answer or a lost file.

Each case runs ``kagglekit.cli.main`` in-process (or ``python -m kagglekit`` where the process's own exit
status matters) on small synthetic images in ``tmp_path``.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import REPO, cli
from PIL import Image

from kagglekit.cli import main
from kagglekit.competitions.discovery import get_competition
from kagglekit.core.errors import (
    ConfigError,
    DataError,
    KaggleError,
    KagglekitError,
    SubmissionError,
    WeightsError,
)
from kagglekit.core.manifest import MANIFEST, OwnedFolder

COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "owl": (30, 30, 200)}
USER, KEY = "erin", "kk-bad-inputs-key-5c1e"


# -- helpers ----------------------------------------------------------------------------------------
def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("kagglekit")]
    assert len(lines) == 1, err
    return lines[0]


def labelled_images(root: Path, per_class: int = 5, names=None, suffix: str = ".png") -> Path:
    """``root/train/<label>/<name>``: tiny images, one colour per class (so a test image's class shows)."""
    for label, colour in COLOURS.items():
        folder = root / "train" / label
        folder.mkdir(parents=True)
        for i in range(per_class):
            name = names[i] if names else f"{label}{i}{suffix}"
            Image.new("RGB", (4, 4), colour).save(folder / name)
    return root


def competition_file(tmp_path: Path, **extra) -> Path:
    """A class-folder competition declared by a YAML file alone (classes come from the data)."""
    path = tmp_path / "pets.yaml"
    path.write_text(yaml.safe_dump({"kind": "class-folder", "name": "pets", "slug": "pets-local", "title": "Pets",
                                    "id_column": "file", "label_column": "label", "metric": "accuracy", **extra}))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KAGGLEKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def pets(tmp_path) -> tuple[Path, Path]:
    """(competition YAML, labelled source folder)."""
    return competition_file(tmp_path), labelled_images(tmp_path / "source")


# -- one error boundary -----------------------------------------------------------------------------
def test_each_error_kind_has_its_documented_exit_code(capsys, monkeypatch, cache):
    expected = {ConfigError: 2, DataError: 3, SubmissionError: 4, KaggleError: 5, WeightsError: 6}
    for kind, code in expected.items():
        assert kind.exit_code == code

        def fail(args, kind=kind):
            raise kind(f"the {kind.__name__} at /some/file.csv")

        monkeypatch.setattr("kagglekit.commands.backbones.main", fail)
        got, _, err = cli(capsys, "backbones")
        assert got == code and one_error_line(err) == f"kagglekit: error: the {kind.__name__} at /some/file.csv"
    assert issubclass(ConfigError, KagglekitError)


def test_interrupt_exits_130(capsys, monkeypatch, cache):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("kagglekit.commands.backbones.main", interrupted)
    code, _, err = cli(capsys, "backbones")
    assert code == 130 and one_error_line(err) == "kagglekit: interrupted"


def test_an_interrupted_run_names_the_command_that_continues_it(capsys, caplog, monkeypatch, cache, tmp_path,
                                                               seedlings_small):
    """Ctrl-C while a run trains (its pipeline raising KeyboardInterrupt, as the signal makes Python do): exit 130,
    and a warning naming the run directory and the command that continues it. The command works as printed (here
    interrupted again at once: it found and resumed the run, nothing trained)."""
    def interrupted(competition, config, run_dir, on_fold=None):
        if not (run_dir / "config.yaml").exists():  # saved first, as every pipeline does
            config.save(run_dir / "config.yaml")
        raise KeyboardInterrupt

    monkeypatch.setattr("kagglekit.usecases.run.get_pipeline", lambda task, learner: interrupted)
    caplog.set_level(logging.INFO, logger="kagglekit.usecases.run")
    code, _, err = cli(capsys, "run", "seedlings", "--data", seedlings_small, "--output-dir", tmp_path / "runs")
    assert code == 130 and one_error_line(err) == "kagglekit: interrupted"
    (run_dir,) = (tmp_path / "runs" / "seedlings").iterdir()
    command = f"kagglekit run seedlings --resume {run_dir}"
    assert f"continue it with: {command}" in caplog.text
    caplog.clear()
    code, _, _ = cli(capsys, *command.split()[1:])
    assert code == 130 and f"resuming {run_dir}" in caplog.text and f"continue it with: {command}" in caplog.text
    assert list((tmp_path / "runs" / "seedlings").iterdir()) == [run_dir]  # the same run, no new one


def test_unexpected_exception_is_one_line_and_a_crash_log(capsys, monkeypatch, cache):
    def bug(args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("kagglekit.commands.backbones.main", bug)
    code, _, err = cli(capsys, "backbones")
    assert code == 70
    line = one_error_line(err)
    assert line.startswith("kagglekit: internal error: RuntimeError: boom second line (details in ")
    log = Path(line.rsplit("(details in ", 1)[1].rstrip(")"))
    assert log.parent == cache / "crash-logs" and log.is_file()
    report = log.read_text()
    assert "Traceback" in report and "RuntimeError: boom" in report and "in bug" in report
    assert "kagglekit backbones" in report


def test_debug_prints_the_traceback_instead(capsys, monkeypatch, cache):
    def bug(args):
        raise RuntimeError("boom")

    monkeypatch.setattr("kagglekit.commands.backbones.main", bug)
    for argv in (["--debug", "backbones"], ["backbones", "--debug"]):
        assert main(argv) == 70
        err = capsys.readouterr().err
        assert "Traceback" in err and "in bug" in err and "details in" not in err
    assert not (cache / "crash-logs").exists()


def test_crash_log_that_cannot_be_written_falls_back_to_the_traceback(capsys, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("KAGGLEKIT_CACHE", str(blocker))

    def bug(args):
        raise RuntimeError("boom")

    monkeypatch.setattr("kagglekit.commands.backbones.main", bug)
    assert main(["backbones"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "kagglekit: internal error: RuntimeError: boom (no crash log" in err


def test_user_path_errors_name_the_path_not_a_crash(capsys, monkeypatch, tmp_path, pets):
    spec, source = pets
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = cli(capsys, "prepare", spec, "--source", source, "--dest", blocker / "data")
    assert code == 3 and str(blocker) in one_error_line(err)

    def disk_full(args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("kagglekit.commands.backbones.main", disk_full)
    code, _, err = cli(capsys, "backbones")
    assert code == 3 and "disk is full" in one_error_line(err)

    def dropped(args):
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

    monkeypatch.setattr("kagglekit.commands.backbones.main", dropped)
    monkeypatch.setenv("KAGGLEKIT_CACHE", str(tmp_path / "cache"))
    code, _, err = cli(capsys, "backbones")
    assert code == 70 and "internal error: ConnectionResetError" in one_error_line(err)  # not a path problem


# -- option values are checked before anything runs --------------------------------------------------
NONSENSE = [
    ("prepare", "--test-fraction", "0"), ("prepare", "--test-fraction", "1"), ("prepare", "--test-fraction", "1.5"),
    ("prepare", "--test-fraction", "-0.2"), ("prepare", "--test-fraction", "nan"),
    ("prepare", "--test-fraction", "half"), ("prepare", "--per-class", "0"), ("prepare", "--per-class", "-3"),
    ("prepare", "--per-class", "2.5"),
    ("serve", "--port", "-1"), ("serve", "--port", "70000"), ("serve", "--port", "http"),
    ("serve", "--daily-limit", "0"), ("serve", "--public-fraction", "1"), ("serve", "--public-fraction", "0"),
    ("serve", "--test-fraction", "2"), ("serve", "--per-class", "0"),
    ("download", "--timeout", "0"), ("download", "--timeout", "-5"), ("download", "--timeout", "inf"),
    ("submit", "--timeout", "0"), ("submit", "--wait", "-1"), ("leaderboard", "--top", "0"),
    ("leaderboard", "--top", "-1"),
]


@pytest.mark.parametrize("verb, option, value", NONSENSE)
def test_nonsense_option_values_are_usage_errors(capsys, tmp_path, pets, verb, option, value):
    spec, source = pets
    (tmp_path / "users.json").write_text(json.dumps({USER: KEY}))  # the other arguments are fine
    (tmp_path / "s.csv").write_text("file,label\n")
    required = {"prepare": ["--source", source, "--dest", tmp_path / "out"],
                "serve": ["--source", source, "--users", tmp_path / "users.json", "--work", tmp_path / "work"],
                "submit": [tmp_path / "s.csv", "-m", "x"]}.get(verb, [])
    code, _, err = cli(capsys, verb, spec, *required, option, value)
    assert code == 2 and f"argument {option}: expected " in err and value in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_too_few_images_per_class_is_a_clear_error(capsys, tmp_path, pets):
    spec, source = pets
    code, _, err = cli(capsys, "prepare", spec, "--source", source, "--dest", tmp_path / "out", "--per-class", "1")
    line = one_error_line(err)
    assert code == 3 and "at least 2 images" in line and "--per-class 1" in line and "cat (1)" in line
    assert not (tmp_path / "out").exists()


def test_run_options_are_checked_before_the_data_is_downloaded(capsys, monkeypatch, cache, pets):
    spec, _ = pets
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(cache / "no-kaggle"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = cli(capsys, "run", spec, "--folds", "1")
    assert code == 2 and "folds" in one_error_line(err) and "credentials" not in err


# -- nothing of the user's is overwritten or deleted ------------------------------------------------
def test_prepare_refuses_a_folder_holding_a_users_file(capsys, tmp_path, pets):
    spec, source = pets
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    code, _, err = cli(capsys, "prepare", spec, "--source", source, "--dest", dest)
    line = one_error_line(err)
    assert code == 2 and str(dest) in line and "empty or new folder" in line and "notes.txt" in line
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt"] and (dest / "notes.txt").read_text() == "keep me"
    code, _, err = cli(capsys, "prepare", spec, "--source", source, "--dest", dest, "--force")
    assert code == 2 and (dest / "notes.txt").read_text() == "keep me"  # --force does not make it ours


def test_prepare_force_replaces_only_its_own_files(capsys, tmp_path, pets):
    spec, source = pets
    dest = tmp_path / "built"
    assert cli(capsys, "prepare", spec, "--source", source, "--dest", dest)[0] == 0
    first = json.loads((dest / MANIFEST).read_text())
    assert first["complete"] and "solution.csv" in first["files"]
    (dest / "notes.txt").write_text("keep me")
    (dest / "train" / "cat" / "my-extra.png").write_bytes((source / "train" / "cat" / "cat0.png").read_bytes())

    assert cli(capsys, "prepare", spec, "--source", source, "--dest", dest)[0] == 0  # same options: reused
    code, _, err = cli(capsys, "prepare", spec, "--source", source, "--dest", dest, "--seed", "7")
    assert code == 2 and "--force" in one_error_line(err) and "seed" in err  # another build needs --force
    assert cli(capsys, "prepare", spec, "--source", source, "--dest", dest, "--seed", "7", "--force")[0] == 0
    assert (dest / "notes.txt").read_text() == "keep me" and (dest / "train" / "cat" / "my-extra.png").is_file()
    second = json.loads((dest / MANIFEST).read_text())
    assert second["options"]["seed"] == 7 and "notes.txt" not in second["files"]
    written = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert written == set(second["files"]) | {MANIFEST, "notes.txt", "train/cat/my-extra.png"}  # no leftovers


def test_a_rebuild_refuses_to_overwrite_a_file_it_did_not_write(tmp_path):
    folder = OwnedFolder(tmp_path / "out", "prepare")
    folder.replace(["a.csv"], {})
    (tmp_path / "out" / "a.csv").write_text("ours")
    folder.finish()
    (tmp_path / "out" / "b.csv").write_text("the user's")
    again = OwnedFolder(tmp_path / "out", "prepare")
    with pytest.raises(ConfigError, match="b.csv is not kagglekit's"):
        again.replace(["a.csv", "b.csv"], {"seed": 1})
    assert (tmp_path / "out" / "a.csv").read_text() == "ours" and (tmp_path / "out" / "b.csv").read_text() == "the user's"


def test_prepare_refuses_a_folder_holding_another_competitions_files(capsys, tmp_path, pets, caplog):
    """Not "ready" with nothing built: a folder with another competition's solution (a Kaggle download that
    ships one, an old build of another competition) is refused and left as it was; an old build of this
    competition (before manifests) is still reused."""
    spec, source = pets
    theirs = tmp_path / "dog-breeds"
    labelled_images(theirs)
    (theirs / "solution.csv").write_text("id,breed\nx1,beagle\n")
    (theirs / "sample_submission.csv").write_text("id,breed\nx1,pug\n")
    before = {p: p.read_bytes() for p in theirs.rglob("*") if p.is_file()}
    code, out, err = cli(capsys, "prepare", spec, "--source", source, "--dest", theirs)
    line = one_error_line(err)
    assert code == 2 and "ready" not in out and str(theirs) in line and "another competition's files" in line
    assert "solution.csv has columns id, breed" in line and "this competition's have columns file, label" in line
    assert {p: p.read_bytes() for p in theirs.rglob("*") if p.is_file()} == before  # nothing written or removed

    ours = tmp_path / "old-build"
    assert cli(capsys, "prepare", spec, "--source", source, "--dest", ours)[0] == 0
    (ours / MANIFEST).unlink()  # as kagglekit wrote folders before it kept manifests
    with caplog.at_level("WARNING"):
        code, out, _ = cli(capsys, "prepare", spec, "--source", source, "--dest", ours)
    assert code == 0 and "built before kagglekit kept manifests; reusing it" in caplog.text


def test_a_weights_folder_that_is_not_there_is_refused_wherever_it_is_named(capsys, monkeypatch, tmp_path, pets):
    """--weights-dir on every verb is checked with the other path arguments (tests/test_common.py); the
    environment variable and a config file's weights_dir are refused too, never skipped for the cache."""
    from kagglekit.models.backbones import get_backbone

    spec, _ = pets
    typo = tmp_path / "weigths"
    monkeypatch.setenv("KAGGLEKIT_WEIGHTS_DIR", str(typo))
    code, _, err = cli(capsys, "backbones")
    assert code == 2 and f"$KAGGLEKIT_WEIGHTS_DIR={typo} does not exist" in one_error_line(err)
    with pytest.raises(ConfigError, match=f"KAGGLEKIT_WEIGHTS_DIR={typo} does not exist"):
        get_backbone("efficientnet_lite0").build(32)
    monkeypatch.delenv("KAGGLEKIT_WEIGHTS_DIR")

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"weights_dir": str(typo)}))
    code, _, err = cli(capsys, "run", spec, "--config", config, "--output-dir", tmp_path / "runs")
    assert code == 2 and f"weights folder {typo}" in one_error_line(err) and "does not exist" in err
    assert not (tmp_path / "runs").exists()  # refused before the data is looked for or a run directory made
    code, _, err = cli(capsys, "doctor", "--config", config)
    assert code == 2 and f"weights folder {typo}" in one_error_line(err)


@pytest.mark.parametrize("where", ["same", "inside", "containing"])
def test_prepare_dest_overlapping_the_source_is_refused(capsys, tmp_path, pets, where):
    spec, source = pets
    dest = {"same": source, "inside": source / "train" / "out", "containing": tmp_path}[where]
    before = sorted(p for p in tmp_path.rglob("*"))
    code, _, err = cli(capsys, "prepare", spec, "--source", source, "--dest", dest)
    line = one_error_line(err)
    assert code == 2 and str(source) in line and str(dest) in line
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_prepare_gives_unique_test_ids_when_classes_reuse_file_names(capsys, tmp_path):
    spec = competition_file(tmp_path)
    source = labelled_images(tmp_path / "source", per_class=5, names=[f"{i}.png" for i in range(1, 6)])
    dest = tmp_path / "built"
    assert cli(capsys, "prepare", spec, "--source", source, "--dest", dest, "--test-fraction", "0.4")[0] == 0
    sample = pd.read_csv(dest / "sample_submission.csv", dtype=str)
    solution = pd.read_csv(dest / "solution.csv", dtype=str)
    assert len(sample) == 3 * 2 and sample.file.is_unique and sample.file.tolist() == solution.file.tolist()
    assert sorted(p.name for p in (dest / "test").iterdir()) == sorted(sample.file)
    for row in solution.itertuples():  # each test image is of the class its solution row says
        assert row.file.startswith(f"{row.label}_") and Image.open(dest / "test" / row.file).getpixel((0, 0)) == \
            COLOURS[row.label]
    competition = get_competition(str(spec)).resolve(dest)
    assert sorted(competition.load_test(dest).ids) == sorted(sample.file)


def test_stem_ids_are_unique_too(capsys, tmp_path):
    spec = competition_file(tmp_path, id_column="id", id_from="stem")
    source = tmp_path / "source"
    for label, suffix in (("cat", ".png"), ("dog", ".jpg"), ("owl", ".png")):
        (source / "train" / label).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (4, 4), COLOURS[label]).save(source / "train" / label / f"img{i}{suffix}")
    dest = tmp_path / "built"
    assert cli(capsys, "prepare", spec, "--source", source, "--dest", dest, "--test-fraction", "0.5")[0] == 0
    sample = pd.read_csv(dest / "sample_submission.csv", dtype=str)
    assert len(sample) == 6 and sample["id"].is_unique
    competition = get_competition(str(spec)).resolve(dest)
    assert sorted(competition.load_test(dest).ids) == sorted(sample["id"])


def test_predict_refuses_to_write_onto_its_inputs(capsys, tmp_path, pets):
    spec, source = pets
    data = tmp_path / "built"
    assert cli(capsys, "prepare", spec, "--source", source, "--dest", data)[0] == 0
    sample = (data / "sample_submission.csv").read_bytes()
    run_dir = tmp_path / "runs" / "pets" / "run1"
    run_dir.mkdir(parents=True)
    (run_dir / "submission.csv").write_text("the run's own\n")
    for out in (data / "sample_submission.csv", data / "test" / "new.csv", run_dir / "submission.csv"):
        code, _, err = cli(capsys, "predict", run_dir, "--data", data, "--out", out, "--force")
        assert code == 2 and str(out) in one_error_line(err)
    assert (data / "sample_submission.csv").read_bytes() == sample
    assert (run_dir / "submission.csv").read_text() == "the run's own\n"

    elsewhere = tmp_path / "mine.csv"
    elsewhere.write_text("my notes\n")
    code, _, err = cli(capsys, "predict", run_dir, "--data", data, "--out", elsewhere)
    assert code == 2 and "--force" in one_error_line(err) and elsewhere.read_text() == "my notes\n"
    code, _, err = cli(capsys, "predict", run_dir, "--data", data, "--out", elsewhere, "--force")
    assert code == 2 and "not a run directory" in one_error_line(err) and elsewhere.read_text() == "my notes\n"


def test_prepare_refusal_is_a_real_exit_status(tmp_path, pets):
    spec, source = pets
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    out = subprocess.run([sys.executable, "-m", "kagglekit", "prepare", str(spec), "--source", str(source),
                          "--dest", str(dest)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr and str(dest) in out.stderr
    assert (dest / "notes.txt").read_text() == "keep me"


# -- serve ------------------------------------------------------------------------------------------
def test_serve_on_a_busy_port_names_it(capsys, tmp_path, pets):
    spec, source = pets
    users = tmp_path / "users.json"
    users.write_text(json.dumps({USER: KEY}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli(capsys, "serve", spec, "--source", source, "--users", users, "--port", port,
                           "--work", tmp_path / "work")
    line = one_error_line(err)
    assert code == 2 and f"port {port}" in line and "--port" in line
    assert not (tmp_path / "work" / "data").exists()  # nothing was built for a service that cannot start


def test_serve_refuses_a_work_folder_it_did_not_make(capsys, tmp_path, pets):
    spec, source = pets
    users = tmp_path / "users.json"
    users.write_text(json.dumps({USER: KEY}))
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("keep me")
    code, _, err = cli(capsys, "serve", spec, "--source", source, "--users", users, "--work", work,
                       "--port", 0)
    assert code == 2 and str(work) in one_error_line(err) and (work / "thesis.tex").read_text() == "keep me"
    assert sorted(p.name for p in work.iterdir()) == ["thesis.tex"]
    users.write_text('["not", "a", "mapping"]')
    code, _, err = cli(capsys, "serve", spec, "--source", source, "--users", users, "--port", 0)
    assert code == 2 and str(users) in one_error_line(err)


# -- against a local Kaggle service: the environment variable, download --force ------------------------
@pytest.fixture
def local_kaggle(tmp_path, monkeypatch, cache, pets):
    """A local Kaggle service hosting the pets competition on a free port: what KAGGLE_API_ENVIRONMENT=TEST and
    KAGGLEKIT_LOCAL_KAGGLE_PORT reach."""
    from kagglekit.competitions.builders import build_class_folder_competition
    from kagglekit.kaggle_service import LocalKaggleService

    spec, source = pets
    data = build_class_folder_competition(source, tmp_path / "hosted", id_column="file", label_column="label")
    service = LocalKaggleService({USER: KEY}, port=0, scoring_delay=0.05)
    service.host(get_competition(str(spec)), data, tmp_path / "service-work")
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    monkeypatch.setenv("KAGGLE_USERNAME", USER)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    with service:
        monkeypatch.setenv("KAGGLEKIT_LOCAL_KAGGLE_PORT", str(service.port))
        yield spec, data


def test_api_environment_in_any_case_and_unknown_values(capsys, monkeypatch, local_kaggle):
    spec, _ = local_kaggle
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "test")
    code, out, _ = cli(capsys, "leaderboard", spec)
    assert code == 0 and "the leaderboard is empty" in out
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "testing")
    code, _, err = cli(capsys, "leaderboard", spec)
    line = one_error_line(err)
    assert code == 5 and "KAGGLE_API_ENVIRONMENT='testing'" in line and "TEST" in line and "PROD" in line
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    monkeypatch.setenv("KAGGLEKIT_LOCAL_KAGGLE_PORT", "77777")
    code, _, err = cli(capsys, "leaderboard", spec)
    assert code == 5 and "KAGGLEKIT_LOCAL_KAGGLE_PORT='77777' is not a port number" in one_error_line(err)


def test_download_force_keeps_the_users_files(capsys, tmp_path, local_kaggle):
    spec, hosted = local_kaggle
    dest = tmp_path / "downloaded"
    assert cli(capsys, "download", spec, "--dest", dest)[0] == 0
    assert (dest / "sample_submission.csv").read_bytes() == (hosted / "sample_submission.csv").read_bytes()
    assert not (dest / "solution.csv").exists()
    (dest / "notes.txt").write_text("keep me")
    (dest / "test" / "my-extra.png").write_bytes(b"mine")
    theirs = min((dest / "test").iterdir())
    theirs.write_bytes(b"damaged")  # one of the downloaded files: --force brings it back
    assert cli(capsys, "download", spec, "--dest", dest, "--force")[0] == 0
    assert (dest / "notes.txt").read_text() == "keep me" and (dest / "test" / "my-extra.png").read_bytes() == b"mine"
    assert theirs.read_bytes() == (hosted / "test" / theirs.name).read_bytes()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    for force in ([], ["--force"]):
        code, _, err = cli(capsys, "download", spec, "--dest", foreign, *force)
        assert code == 2 and str(foreign) in one_error_line(err) and (foreign / "notes.txt").read_text() == "keep me"
    code, _, err = cli(capsys, "download", spec, "--dest", hosted)  # a folder `prepare` made: not a download
    assert code == 2 and "--force" in one_error_line(err) and (hosted / "solution.csv").is_file()
