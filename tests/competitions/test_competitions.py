"""Adapters: the registry, the seedlings layout, and a config-only competition."""


import pytest

from kagglekit.competitions.discovery import get_competition
from kagglekit.core.errors import ConfigError, DataError


def test_seedlings_adapter_reads_writes_and_scores_like_kaggle(seedlings_small, tmp_path):
    """What the adapter declares shows in behaviour: the species of the real train folders, Kaggle's
    ``file,species`` submission that validates against the sample, and micro-F1 scoring."""
    import numpy as np
    import pandas as pd

    from helpers import SEEDLINGS

    competition = get_competition("seedlings")
    assert competition.classes == sorted(p.name for p in (SEEDLINGS / "train").iterdir())  # the real species
    test = competition.load_test(seedlings_small)
    solution = pd.read_csv(seedlings_small / "solution.csv", dtype=str)
    truth = solution.set_index("file").loc[test.ids, "species"].map(competition.classes.index).to_numpy()
    wrong = truth.copy()
    wrong[:6] = (wrong[:6] + 1) % 12  # six mistakes
    frame = competition.submission_frame(test.ids, wrong)
    assert list(frame.columns) == ["file", "species"] and frame.file.tolist() == test.ids
    path = tmp_path / "submission.csv"
    frame.to_csv(path, index=False)
    assert competition.validate(path, seedlings_small).ok
    assert competition.score(solution, frame) == pytest.approx(1 - 6 / len(test))  # micro-F1 = accuracy here
    assert competition.score(solution, competition.submission_frame(test.ids, truth)) == 1.0
    frame.loc[0, "species"] = "Dandelion"
    frame.to_csv(path, index=False)
    assert "'Dandelion' is not a label of seedlings" in "\n".join(competition.validate(path, seedlings_small).problems)
    assert np.bincount(truth, minlength=12).min() > 0


def test_unknown_competition_suggests_close_names():
    with pytest.raises(ConfigError, match="seedlings"):
        get_competition("seedling")


def test_seedlings_reads_kaggle_layout(seedlings_small):
    competition = get_competition("seedlings")
    train = competition.load_train(seedlings_small)
    test = competition.load_test(seedlings_small)
    assert len(train) == 12 * 15 and len(test) == 12 * 5
    assert sorted(set(train.labels.tolist())) == list(range(12))
    assert all(p.exists() for p in train.paths + test.paths)


def test_config_only_competition(tmp_path, monkeypatch):
    """A new single-label competition needs a YAML file and no Python."""
    for label in ("cats", "dogs"):
        folder = tmp_path / "data" / "train" / label
        folder.mkdir(parents=True)
        from PIL import Image

        for i in range(3):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / f"{label}{i}.png")
    (tmp_path / "data" / "test").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "data" / "test" / "x1.png")
    (tmp_path / "data" / "sample_submission.csv").write_text("id,animal\nx1,cats\n")
    spec = tmp_path / "pets.yaml"
    spec.write_text(
        "kind: class-folder\nname: pets\nslug: pets-demo\ntitle: Pets\n"
        "id_column: id\nlabel_column: animal\nmetric: accuracy\nid_from: stem\n"
    )
    unresolved = get_competition(str(spec))
    with pytest.raises(ConfigError, match="resolve"):
        unresolved.classes  # the classes are the data's: nothing is guessed before it is read
    competition = unresolved.resolve(tmp_path / "data")
    train = competition.load_train(tmp_path / "data")
    assert competition.classes == ["cats", "dogs"] and unresolved.declared_classes is None  # adapters never change
    assert len(train) == 6
    assert competition.load_test(tmp_path / "data").ids == ["x1"]


def test_test_folder_must_match_sample(seedlings_small, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(seedlings_small, broken)
    victim = sorted((broken / "test").iterdir())[0]
    victim.unlink()
    with pytest.raises(DataError, match=victim.name):
        get_competition("seedlings").load_test(broken)


def test_empty_class_folder_is_named(seedlings_small, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(seedlings_small, broken)
    for path in (broken / "train" / "Maize").iterdir():
        path.unlink()
    with pytest.raises(DataError, match="Maize"):
        get_competition("seedlings").load_train(broken)


def test_prepare_fills_the_data_cache_that_run_uses(monkeypatch, tmp_path):
    """The main job's offline path: `prepare` builds the folder a `run` without --data then finds."""
    from helpers import SEEDLINGS, require

    from kagglekit.cli import main
    from kagglekit.core.paths import data_cache_dir
    from kagglekit.kaggle.download import cached_competition_data

    monkeypatch.setenv("KAGGLEKIT_CACHE", str(tmp_path / "cache"))
    competition = get_competition("seedlings")
    assert main(["prepare", "seedlings", "--source", str(require(SEEDLINGS)), "--per-class", "4"]) == 0
    folder = cached_competition_data(competition)
    assert folder == data_cache_dir(competition.slug)
    assert len(competition.load_train(folder)) == 12 * 3 and len(competition.load_test(folder)) == 12


def test_empty_data_cache_downloads_and_explains_missing_credentials(monkeypatch, tmp_path):
    from kagglekit.core.errors import KagglekitError
    from kagglekit.kaggle.download import cached_competition_data

    monkeypatch.setenv("KAGGLEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(KagglekitError, match="(?i)credential|kaggle.json"):
        cached_competition_data(get_competition("seedlings"))
