"""Shared fixtures: Kaggle-layout competition folders built from the real data in ../shared, the local
Kaggle service the Kaggle tests talk to, and a finished run's folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KAGGLEKIT_SHARED", REPO.parent / "shared")) / "data"
SEEDLINGS = SHARED / "plant-seedlings"
VOC_MASKS = SHARED / "voc-masks"
CAMVID = SHARED / "camvid"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read real data from ../shared (see README)")
    return path


@pytest.fixture(scope="session")
def seedlings_small(tmp_path_factory) -> Path:
    """A small real Plant Seedlings competition: 20 images per species, 25% held out as test."""
    from kagglekit.competitions.builders import build_class_folder_competition

    return build_class_folder_competition(
        require(SEEDLINGS), tmp_path_factory.mktemp("seedlings-small"), per_class=20, test_fraction=0.25
    )


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
    from test_new_competition import flatten, relabelled, tagged

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


def assert_usage_recorded(metrics: dict, run_dir: Path, competition: str) -> None:
    """Every run records what it used (device, speeds, peak memory), and its ledger row carries the same figures."""
    from kagglekit.runs.ledger import Ledger, default_ledger_path

    timing = metrics["timing"]
    assert timing["device"].startswith("tensorflow on") and timing["device_count"] >= 1
    assert timing["seconds_per_epoch"] > 0 and timing["train_images_per_s"] > 0 and timing["predict_images_per_s"] > 0
    assert 0.1 < timing["peak_memory_gib"] < 64
    row = Ledger(default_ledger_path()).history(competition).set_index("run_id").loc[run_dir.name]
    assert row.seconds_per_epoch == timing["seconds_per_epoch"] and row.device == timing["device"]


# -- the local Kaggle service (tests/test_kaggle.py, tests/test_publish.py) ---------------------------
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
    """Seedlings (file submissions) and its code-competition twin (a hidden test set), for alice."""
    from kaggle_world import KEY, OUTSIDER, OUTSIDER_KEY, USER

    from kagglekit.competitions.discovery import competition_from_yaml, get_competition
    from kagglekit.kaggle.local_service import LocalKaggleService

    work = tmp_path_factory.mktemp("kaggle-service")
    svc = LocalKaggleService({USER: KEY, OUTSIDER: OUTSIDER_KEY}, scoring_delay=0.1, work_dir=work / "service")
    svc.host(get_competition("seedlings"), seedlings_small, work, daily_limit=100, participants={USER})
    svc.host(competition_from_yaml(code_competition_file), seedlings_small, work, daily_limit=100,
             participants={USER}, code_competition=True)
    with svc:
        yield svc


@pytest.fixture
def kaggle(service, monkeypatch):
    """An in-process client of the local service with short timeouts and backoff."""
    from kaggle_world import FAST, KEY, USER

    from kagglekit.kaggle.client import KaggleService
    from kagglekit.kaggle.credentials import Credentials

    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    service.faults.clear()
    yield KaggleService(Credentials(USER, KEY, "test"), timeout=1.5, backoff=FAST)
    service.faults.clear()


@pytest.fixture
def env(tmp_path):
    """The environment of a ``kagglekit`` child process that is alice, talking to the local service."""
    from kaggle_world import client_env

    (tmp_path / "kaggle-config").mkdir()
    return client_env(tmp_path / "cache", tmp_path / "kaggle-config")


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


def assert_blend_refuses_unlike_members(first: Path, second: Path, maps: tuple[str, ...], stack_refusal: str,
                                       tmp_path: Path, capsys) -> None:
    """``kagglekit blend`` of ``first`` with a copy of ``second`` trained on other data (its ``folds.json``
    hash changed), then with a copy whose saved ``maps`` files are half the size: each refused by name;
    and ``--method stack`` on both refused with ``stack_refusal``."""
    import shutil

    from kagglekit.cli import main as run_cli
    from kagglekit.runs.probability_maps import ProbabilityMaps

    other = tmp_path / "other-data"
    shutil.copytree(second, other)
    folds = json.loads((other / "folds.json").read_text())
    (other / "folds.json").write_text(json.dumps({**folds, "train_sha256": "0" * 64}))
    capsys.readouterr()
    assert run_cli(["blend", first, other, "--output-dir", tmp_path / "out"]) == 2
    assert f"{other} was trained on other data" in capsys.readouterr().err

    smaller = tmp_path / "smaller"
    shutil.copytree(second, smaller)
    for name in maps:
        saved = ProbabilityMaps.load(smaller / name)
        ProbabilityMaps(saved.ids, saved.classes, saved.proba[:, ::2, ::2]).save(smaller / name)
    assert run_cli(["blend", first, smaller, "--output-dir", tmp_path / "out"]) == 2
    height, width = ProbabilityMaps.load(smaller / maps[0]).size
    assert f"{smaller} predicted at ({height}, {width})" in capsys.readouterr().err
    assert run_cli(["blend", first, second, "--method", "stack", "--output-dir", tmp_path / "out"]) == 2
    assert stack_refusal in capsys.readouterr().err


def finished_runs(competition: str, data: Path, configs: dict[str, dict], work: Path) -> list[Path]:
    """``kagglekit run competition`` once per named config (real, tiny), each into ``work/name``: their run dirs."""
    import yaml

    from kagglekit.cli import main as run_cli

    runs = []
    for name, config in configs.items():
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        assert run_cli(["run", competition, "--data", data, "--config", path, "--output-dir", work / name]) == 0
        runs.append(only_run_dir(work / name / competition))
    return runs


def only_run_dir(folder: Path) -> Path:
    """The one run directory in ``folder`` (a blend's or a run's competition folder)."""
    (found,) = Path(folder).iterdir()
    return found


def blend_with_itself(run_dir: Path, competition: str, tmp_path: Path) -> Path:
    """The directory of a mean blend of ``run_dir`` with a copy of itself, whose scores must be the run's."""
    import shutil

    from kagglekit.cli import main as run_cli

    twin = tmp_path / "twin"
    shutil.copytree(run_dir, twin)
    assert run_cli(["blend", run_dir, twin, "--method", "mean", "--output-dir", tmp_path / "out"]) == 0
    found = only_run_dir(tmp_path / "out" / competition)
    metrics = json.loads((found / "metrics.json").read_text())
    assert metrics["fold_scores"] == metrics["members"][str(run_dir)]["fold_scores"]
    return found



def row_keys(members: list) -> list[bytes]:
    """Each row's identity across blend members (arrays of equal length): a hash of its bytes in every member."""
    import hashlib

    import numpy as np

    return [hashlib.blake2b(b"".join(np.ascontiguousarray(m[i]).tobytes() for m in members)).digest()
            for i in range(len(members[0]))]


class BlendSpy:
    """What each blend fitted inside a ``kagglekit blend`` call saw, in the order they were made: the rows
    it was fitted on and every prediction it made (rows and output). ``maps``: blends of (n, H, W, classes)
    probability maps, whose fit ``labels`` are the images' row numbers; ``labels``: multi-label
    (per-class) blends. Rows are known by ``row_keys``, so the spy changes nothing it watches."""

    def __init__(self, monkeypatch):
        import numpy as np

        from kagglekit.learners.blending import HillClimbBlend, MeanBlend, PerClassBlend

        self.seen: dict[str, list[dict]] = {"maps": [], "labels": []}
        self.row_of: dict[bytes, int] = {}  # a map row's key -> its row number

        def kind(blend, members) -> str | None:
            return "labels" if isinstance(blend, PerClassBlend) else "maps" if members[0].ndim == 4 else None

        def spy_fit(fit):
            def fitting(blend, members, labels, *args, **kwargs):
                if kind(blend, members):
                    keys = row_keys(members)
                    if kind(blend, members) == "maps":
                        self.row_of.update(zip(keys, np.asarray(labels).tolist()))
                    self.seen[kind(blend, members)].append({"blend": blend, "fitted": keys, "predicted": []})
                return fit(blend, members, labels, *args, **kwargs)
            return fitting

        def spy_predict(predict):
            def predicting(blend, members):
                output = predict(blend, members)
                if kind(blend, members):
                    (record,) = [r for r in self.seen[kind(blend, members)] if r["blend"] is blend]
                    record["predicted"].append((row_keys(members), output))
                return output
            return predicting

        for cls in (MeanBlend, HillClimbBlend, PerClassBlend):
            monkeypatch.setattr(cls, "fit", spy_fit(cls.fit))
        for cls in (MeanBlend, PerClassBlend):
            monkeypatch.setattr(cls, "predict_proba", spy_predict(cls.predict_proba))

    def nested(self, kind: str) -> list[tuple[list[bytes], list[bytes], object]]:
        """Per nested blend of ``kind`` (all but the last, the blend fitted on every row), in fold order:
        (keys of the rows fitted, keys of the rows of its last prediction, that prediction)."""
        return [(record["fitted"], *record["predicted"][-1]) for record in self.seen[kind][:-1]]

    def nested_maps(self) -> list[tuple[set[int], set[int], object]]:
        """Per nested blend of maps, in fold order: (rows fitted, rows predicted, the predicted maps)."""
        return [({self.row_of[k] for k in fitted}, {self.row_of[k] for k in held}, output)
                for fitted, held, output in self.nested("maps")]


def nested_floor(metrics: dict) -> float:
    """The least a blend's nested CV may honestly score (``metrics``: its ``metrics.json``): its best member's CV,
    less the members' largest disagreement on one fold spread over the folds. A blend fitted on the other
    folds may back the other member on one fold; backing the worse member more often is a broken blend."""
    import numpy as np

    scores = np.array([member["fold_scores"] for member in metrics["members"].values()])
    return float(scores.mean(1).max() - (scores.max(0) - scores.min(0)).max() / scores.shape[1])


def assert_label_blends_nested(spy: BlendSpy, runs: list[Path], found: Path, classes: list[str]) -> None:
    """Fold k's rows of the blend ``found``'s ``oof.csv`` are what a multi-label blend fitted on exactly the
    other folds' rows predicted (``runs``: its members, each scoring every training image out of fold)."""
    import numpy as np
    import pandas as pd

    folds = json.loads((runs[0] / "folds.json").read_text())
    ids, fold_of = folds["ids"], np.array(folds["fold_of"])
    members = [pd.read_csv(r / "oof.csv", dtype={"id": str}).set_index("id").loc[ids, classes].to_numpy(np.float64)
               for r in runs]
    id_of = dict(zip(row_keys(members), ids))
    blended = pd.read_csv(found / "oof.csv", dtype={"id": str}).set_index("id")
    nested = spy.nested("labels")
    assert len(nested) == len(set(fold_of)) >= 2
    for k, (fitted, held, proba) in enumerate(nested):
        fitted, held = [id_of[key] for key in fitted], [id_of[key] for key in held]
        assert held == [i for i, f in zip(ids, fold_of) if f == k], (k, held)
        assert sorted(fitted) == sorted(set(ids) - set(held)), (k, sorted(set(fitted) & set(held)))  # the others only
        np.testing.assert_allclose(blended.loc[held, classes].to_numpy(), proba, atol=1e-6)
