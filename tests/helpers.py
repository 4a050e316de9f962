"""The tests' plain helpers (fixtures are in conftest.py): where the real data in ../shared lies, running
the CLI, Kaggle-layout folders rearranged, finished runs and their blends, and the local Kaggle service the
Kaggle tests talk to, with the real ``kaggle`` client on the other end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from kagglekit.kaggle.retry import Backoff

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KAGGLEKIT_SHARED", REPO.parent / "shared")) / "data"
SEEDLINGS = SHARED / "plant-seedlings"
VOC_MASKS = SHARED / "voc-masks"
CAMVID = SHARED / "camvid"
USER, KEY = "alice", "kk-test-key-6f1d2c9a8b7e"  # a fake key; tests check it never shows up in output
OUTSIDER, OUTSIDER_KEY = "bob", "kk-bob-key-0a9b8c7d"  # has an account but did not accept the rules
FAST = Backoff(attempts=4, base=0.05, cap=0.2, deadline=10)  # retries of the in-process test client


def client_env(port: int, cache: Path, config_dir: Path, username: str = USER, key: str = KEY) -> dict:
    """The environment of a ``kagglekit`` child process that is ``username``, talking to the local service on
    ``port``."""
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("KAGGLE_"):
            del env[name]
    env.update(KAGGLE_API_ENVIRONMENT="TEST", KAGGLEKIT_LOCAL_KAGGLE_PORT=str(port), KAGGLE_USERNAME=username,
               KAGGLE_KEY=key, KAGGLE_CONFIG_DIR=str(config_dir), KAGGLEKIT_CACHE=str(cache),
               NO_PROXY="localhost,127.0.0.1", KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
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


def cli(capsys, *argv) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of one in-process ``kagglekit`` call (argparse's exits included)."""
    from kagglekit.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(source, target)


def flatten(class_folders: Path, out: Path, labels: dict[str, str] | None = None) -> tuple[Path, pd.DataFrame]:
    """The class-folder competition rearranged as Kaggle often ships one: every training image in
    ``train/``, ``train.csv`` of ``id,<labels>`` (ids are file stems), ``test/`` and a sample ``id,label``."""
    rows = []
    for image in sorted((class_folders / "train").glob("*/*")):
        link(image, out / "train" / image.name)
        rows.append((image.stem, image.parent.name))
    table = pd.DataFrame(rows, columns=["id", "label"])
    if labels:
        table = table.rename(columns=labels)
    table.to_csv(out / "train.csv", index=False)
    for image in sorted((class_folders / "test").iterdir()):
        link(image, out / "test" / image.name)
    sample = pd.read_csv(class_folders / "sample_submission.csv", dtype=str)
    sample = pd.DataFrame({"id": [Path(f).stem for f in sample["file"]], "label": sample["species"]})
    sample.to_csv(out / "sample_submission.csv", index=False)
    return out, table


def relabelled(data: Path, out: Path, train_csv: pd.DataFrame, sample_column: str = "label") -> Path:
    """``data``'s images and test side under ``out``, with another ``train.csv`` (and the sample's
    value column named ``sample_column``)."""
    for path in data.glob("*/*"):
        link(path, out / path.relative_to(data))
    sample = pd.read_csv(data / "sample_submission.csv", dtype=str)
    sample.rename(columns={"label": sample_column}).to_csv(out / "sample_submission.csv", index=False)
    train_csv.to_csv(out / "train.csv", index=False)
    return out


def tags_of(species: list[str], separator: str) -> list[str]:
    """Each image's species and a group tag that follows from it ("even" or "odd": the species' rank):
    several labels per image, all of them visible in the image."""
    rank = {s: k for k, s in enumerate(sorted(set(species)))}
    return [f"{s.replace(' ', '_')}{separator}{'odd' if rank[s] % 2 else 'even'}" for s in species]


def tagged(table: pd.DataFrame, separator: str) -> pd.DataFrame:
    return table.assign(tags=tags_of(table["label"].tolist(), separator))[["id", "tags"]]


def require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read real data from ../shared (see README)")
    return path


def assert_usage_recorded(metrics: dict, run_dir: Path, competition: str) -> None:
    """Every run records what it used (device, speeds, peak memory), and its ledger row carries the same figures."""
    from kagglekit.runs.ledger import Ledger, default_ledger_path

    timing = metrics["timing"]
    assert timing["device"].startswith("tensorflow on") and timing["device_count"] >= 1
    assert timing["seconds_per_epoch"] > 0 and timing["train_images_per_s"] > 0 and timing["predict_images_per_s"] > 0
    assert 0.1 < timing["peak_memory_gib"] < 64
    row = Ledger(default_ledger_path()).history(competition).set_index("run_id").loc[run_dir.name]
    assert row.seconds_per_epoch == timing["seconds_per_epoch"] and row.device == timing["device"]


def assert_blend_refuses_unlike_members(first: Path, second: Path, maps: tuple[str, ...], stack_refusal: str,
                                       tmp_path: Path, capsys) -> None:
    """``kagglekit blend`` of ``first`` with a copy of ``second`` trained on other data (its ``folds.json``
    hash changed), then with a copy whose saved ``maps`` files are half the size: each refused by name;
    and ``--method stack`` on both refused with ``stack_refusal``."""
    import shutil

    from kagglekit.cli import main as run_cli
    from kagglekit.runs.probability_maps import ProbabilityMaps, save_maps

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
        saved = ProbabilityMaps(smaller / name)
        save_maps(smaller / name, saved.ids, saved.classes, saved.rows()[:, ::2, ::2])
    assert run_cli(["blend", first, smaller, "--output-dir", tmp_path / "out"]) == 2
    height, width = ProbabilityMaps(smaller / maps[0]).size
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


# -- shared segmentation runs (built once per session: conftest's voc_run and camvid_run) --------------------
#: The one PASCAL VOC run the VOC tests read (end to end, the attack, the blend's first member), its
#: competition's own TTA and training views; segmenters on 2 of the 3 folds, masks limited to labels.
#: Test runs train a fixed number of epochs (``time_budget: None``): a budget would time the network first (a
#: second model built and traced, seconds a run) and make the epochs depend on the machine. The budget's own
#: tests are in tests/learners/test_budget.py.
VOC_RUN = {
    "time_budget": None, "backbones": ["efficientnet_lite0"], "image_size": 64, "folds": 3, "tta": ["identity", "hflip"],
    "train": {"views": ["identity", "hflip"], "head_epochs": 30, "patience": 5},
    "segmentation": {"input_size": [64, 96], "freeze_encoder": True, "epochs": 1, "batch_size": 8, "lr": 3e-3,
                     "scored_folds": 2, "consistency": "on"},  # a frozen encoder: CamVid's run tests the fine-tuned one
}
#: The one CamVid run the CamVid tests read (end to end, the blend's first member; its second: another seed). Its
#: budget is planned (the real timings) but never binds: 4 epochs on every machine.
CAMVID_RUN = {"time_budget": "10h", "seed": 0, "tta": ["identity"],
              "segmentation": {"input_size": [64, 96], "epochs": 4, "batch_size": 8, "lr": 3e-3}}


def scored_folds(run_dir: Path) -> int:
    """How many folds a PASCAL VOC run trained and scored segmenters on (``segmentation.scored_folds``, 0: all)."""
    import yaml

    config = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
    return config["segmentation"]["scored_folds"] or config["folds"]


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



def count_backbone_passes(monkeypatch) -> list[tuple[str, str, str]]:
    """Record (backbone cache key, view, image sha) for every image a backbone actually runs on."""
    from kagglekit.learners.features import FeatureExtractor

    passes, original = [], FeatureExtractor._compute

    def counting(self, paths, shas, views, cached, desc):
        passes.extend((self.key, view, sha) for view in views for sha in shas)
        return original(self, paths, shas, views, cached, desc)

    monkeypatch.setattr(FeatureExtractor, "_compute", counting)
    return passes


# -- the session's shared runs (fixtures in conftest.py) ---------------------------------------------------------
#: Lite0 at 64 px: heads on multi-scale frozen features and fine-tuned top blocks (two model inputs: the
#: composition test), TTA with a flip inside the composed graph, 30 head epochs (a model an attack can hurt).
#: (The serving tests keep their own run without top blocks: exporting top blocks to ONNX and TFLite
#: doubled the export test's CPU, more than the shared run saved.)
HEAD_RUN = {"backbones": ["efficientnet_lite0"], "image_size": 64, "folds": 2, "tta": ["identity", "hflip"],
            "train": {"learner": "head", "views": ["identity"], "head_epochs": 30, "patience": 5,
                      "top_blocks": True, "top_blocks_epochs": 1}}
#: The multi-label run (the small seedlings relabelled with tags): Lite0 multi-scale at 64 px, 3 folds.
TAGS_RUN = {"backbones": ["efficientnet_lite0"], "image_size": 64, "folds": 3, "tta": ["identity"],
            "train": {"learner": "head", "views": ["identity"], "head_epochs": 30, "multiscale": True}}
#: The shared fine-tuned run (the kill -9 test's reference, read by the explain/attack test and compared with
#: the frozen head): 3 folds, one scored. 120 training images make 7 steps an epoch; at 3e-4 (not the default
#: 1e-3, tuned on 2,659 images) the unfrozen backbone's training accuracy no longer falls at a stage switch.
#: 6 epochs on every machine, no budget: its timing traces a second network in every run made from this config
#: (the kill -9 and two-worker copies too); the deadline test plans a fine-tuning run from real timings.
TINY_FINETUNE = (
    "time_budget: null\nbackbones: [efficientnet_lite0]\nimage_size: 64\nfolds: 3\ntta: [identity, hflip]\n"
    "train: {learner: finetune}\n"
    "finetune: {epochs: 6, head_epochs: 1, top_epochs: 2, lr: 3.0e-4, batch_size: 16, scored_folds: 1}\n"
)


@dataclass
class InProcessRun:
    """A run made by ``kagglekit run`` in the test process: its directory, its feature cache, what it printed,
    and (backbone, view, image sha) for every image a backbone ran on during the run."""

    run_dir: Path
    cache: Path
    printed: str
    passes: list[tuple[str, str, str]]


def folder_state(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every file under ``folder``, by relative path: what a reader must leave as it was."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def assert_unchanged(folder: Path, before: dict[str, tuple[int, int]]) -> None:
    """A shared run is read, never changed: a test that changes a run directory works on a copy of it."""
    after = folder_state(folder)
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    assert not changed, f"a test changed the shared run {folder} (work on a copy): {changed[:10]}"


def read_only(run_dir: Path, shared=None):
    """For a session fixture: yield its run (``shared``, or ``run_dir`` itself) to the tests, then check that
    none of them changed ``run_dir`` (``yield from read_only(...)``)."""
    before = folder_state(run_dir)
    yield run_dir if shared is None else shared
    assert_unchanged(run_dir, before)


def row_keys(members: list) -> list[bytes]:
    """Each row's identity across blend members (arrays of equal length): a hash of its bytes in every member."""
    import hashlib

    import numpy as np

    return [hashlib.blake2b(b"".join(np.ascontiguousarray(m[i]).tobytes() for m in members)).digest()
            for i in range(len(members[0]))]


class BlendSpy:
    """What each blend fitted inside a ``kagglekit blend`` call saw, in the order they were made: the rows
    it was fitted on and every prediction it made (rows and output). ``maps``: blends of (n, H, W, classes)
    probability maps, fitted on maps read a chunk at a time (``fit_chunked``) whose rows are the images' row
    numbers; ``labels``: multi-label (per-class) blends. Rows are known by ``row_keys``, so the spy changes
    nothing it watches."""

    def __init__(self, monkeypatch):
        from kagglekit.learners.blending import HillClimbBlend, MeanBlend, PerClassBlend

        self.seen: dict[str, list[dict]] = {"maps": [], "labels": []}
        self.row_of: dict[bytes, int] = {}  # a map row's key -> its row number

        def kind(blend, members) -> str | None:
            return "labels" if isinstance(blend, PerClassBlend) else "maps" if members[0].ndim == 4 else None

        def spy_fit(fit):
            def fitting(blend, members, labels, *args, **kwargs):
                if kind(blend, members):
                    self.seen[kind(blend, members)].append({"blend": blend, "fitted": row_keys(members),
                                                            "predicted": []})
                return fit(blend, members, labels, *args, **kwargs)
            return fitting

        def spy_fit_chunked(fit_chunked):
            def fitting(blend, members, row_score):
                keys = []
                for rows, chunk in members:
                    keys += row_keys(chunk)
                    self.row_of.update(zip(keys[-len(rows):], rows.tolist()))
                self.seen["maps"].append({"blend": blend, "fitted": keys, "predicted": []})
                return fit_chunked(blend, members, row_score)
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
        monkeypatch.setattr(MeanBlend, "fit_chunked", spy_fit_chunked(MeanBlend.fit_chunked))
        for cls in (MeanBlend, PerClassBlend):
            monkeypatch.setattr(cls, "predict_proba", spy_predict(cls.predict_proba))

    def nested(self, kind: str) -> list[tuple[list[bytes], list[bytes], object]]:
        """Per nested blend of ``kind`` (all but the last, the blend fitted on every row), in fold order:
        (keys of the rows fitted, keys of the rows of its last prediction, that prediction); a blend of maps
        predicts its held rows a chunk at a time: all its predictions, joined."""
        import numpy as np

        if kind == "maps":
            return [(record["fitted"], [k for keys, _ in record["predicted"] for k in keys],
                     np.concatenate([output for _, output in record["predicted"]])) for record in self.seen[kind][:-1]]
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


def shard_rows(folder: Path, pixels, cache: Path, masks=None, images_per_shard: int = 1024):
    """``ImageRows`` of every image in ``pixels`` ((n, H, W, 3) uint8), saved as PNG files in ``folder``
    (with their ``masks``, (n, H, W) uint8, as PNG label maps) and built into shards under ``cache``."""
    from PIL import Image

    from kagglekit.core.config import StreamConfig
    from kagglekit.data.shards import build_shards
    from kagglekit.data.streams import ImageRows

    folder.mkdir(parents=True, exist_ok=True)
    paths, labels = [], None if masks is None else []
    for i, image in enumerate(pixels):
        paths.append(folder / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
        if masks is not None:
            labels.append(folder / f"{i}-mask.png")
            Image.fromarray(masks[i]).save(labels[-1])
    return ImageRows.every(build_shards(paths, StreamConfig(images_per_shard=images_per_shard), masks=labels,
                                       root=cache))
