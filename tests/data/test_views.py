"""Small shared parts: views, folds, config, submission validation."""

import numpy as np
import pytest

from kagglekit.core.config import DIHEDRAL_VIEWS, RunConfig, from_dict
from kagglekit.core.errors import ConfigError, SubmissionError
from kagglekit.data.views import VIEWS, apply_view
from kagglekit.evaluation.folds import content_groups, stratified_folds


def test_views_are_the_eight_dihedral_transforms():
    batch = np.arange(2 * 3 * 3 * 1).reshape(2, 3, 3, 1)
    outs = {name: apply_view(name, batch) for name in VIEWS}
    assert len(outs) == 8
    assert len({o.tobytes() for o in outs.values()}) == 8  # all different
    for out in outs.values():  # each is a permutation of the pixels of each image
        assert sorted(out[0].ravel()) == sorted(batch[0].ravel())
    np.testing.assert_array_equal(outs["hflip"][0, :, :, 0], batch[0, :, ::-1, 0])
    assert set(VIEWS) == set(DIHEDRAL_VIEWS)  # what the config accepts


@pytest.mark.parametrize("key,raw", [("tta", {"tta": "identity, hflp"}),
                                     ("train.views", {"train": {"views": ["rot45"]}}),
                                     ("finetune.spare_views", {"finetune": {"spare_views": ["augment"]}})])
def test_a_misspelt_view_fails_when_the_config_is_read_naming_its_key(key, raw):
    """Not at the first prediction, after a fold's training."""
    with pytest.raises(ConfigError, match=rf"{key}: .*unknown view"):
        from_dict(RunConfig, raw)
    views = from_dict(RunConfig, {"tta": "identity,rot270", "train": {"views": ["augment2"]},
                                  "finetune": {"spare_views": []}})
    assert (views.tta, views.train.views, views.finetune.spare_views) == (["identity", "rot270"], ["augment2"], [])


def test_folds_keep_duplicates_together_and_stratify(tmp_path):
    paths, labels = [], []
    for i in range(40):
        path = tmp_path / f"{i}.bin"
        path.write_bytes(b"same" if i in (0, 1, 2) else str(i).encode())
        paths.append(path)
        labels.append(i % 4)
    groups, shas = content_groups(paths)
    assert groups[0] == groups[1] == groups[2] and len(set(groups)) == 38 and len(shas) == 40
    folds = stratified_folds(np.array(labels), groups, k=4, seed=0)
    for train, valid in folds:
        assert set(np.array(labels)[valid]) == {0, 1, 2, 3}
        dup_sides = {0 in valid, 1 in valid, 2 in valid}
        assert len(dup_sides) == 1
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(40))


def test_config_rejects_unknown_keys_and_bad_types(tmp_path):
    with pytest.raises(ConfigError, match="trian"):
        from_dict(RunConfig, {"trian": {}})
    with pytest.raises(ConfigError, match="folds"):
        from_dict(RunConfig, {"folds": "five"})
    config = from_dict(RunConfig, {"backbones": "a,b", "train": {"head_epochs": 3}})
    assert config.backbones == ["a", "b"] and config.train.head_epochs == 3
    config.save(tmp_path / "c.yaml")
    again = RunConfig.load(tmp_path / "c.yaml")
    assert again == config and again.hash() == config.hash()


def test_validator_explains_by_row(seedlings_small, tmp_path):
    from kagglekit.competitions.discovery import get_competition
    from kagglekit.submission.validator import validate_submission
    from kagglekit.submission.writer import read_csv_strings, write_submission

    competition = get_competition("seedlings")
    sample_path = seedlings_small / "sample_submission.csv"
    sample = read_csv_strings(sample_path)
    bad = sample.copy()
    bad.loc[3, "species"] = "Sugar Beet"  # wrong case
    bad.loc[5, "file"] = bad.loc[4, "file"]  # duplicate → one missing
    bad = bad.drop(index=10)
    path = write_submission(bad, tmp_path / "bad.csv")
    report = validate_submission(competition, path, sample_path)
    text = "\n".join(report.problems)
    assert "rows, the sample submission has" in text
    assert "line 5 (id" in text and "'Sugar Beet' is not a label" in text
    assert "line 7: id" in text and "more than once" in text
    assert "have no row" in text
    with pytest.raises(SubmissionError, match="bad.csv"):
        report.raise_if_invalid()
    renamed = sample.rename(columns={"species": "label"})
    report = validate_submission(competition, write_submission(renamed, tmp_path / "cols.csv"), sample_path)
    assert "columns are" in report.problems[0]


def test_augmented_views_are_seeded_keras_augmentations():
    """augmentK views: flips/rotation/shift/shear/zoom/channel shift, reproducible per seed, in range."""
    from kagglekit.core.config import AugmentConfig
    from kagglekit.data.augment import Augmenter, augment_key, is_augmented

    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    cfg = AugmentConfig()
    first = Augmenter(cfg, seed=7)("augment1", batch)
    again = Augmenter(cfg, seed=7)("augment1", batch)
    other = Augmenter(cfg, seed=7)("augment2", batch)
    assert first.shape == batch.shape and first.min() >= 0 and first.max() <= 255
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, batch) and not np.allclose(first, other)
    assert is_augmented("augment3") and not is_augmented("hflip") and not is_augmented("augmented")
    assert augment_key(cfg) != augment_key(AugmentConfig(zoom=0.2))


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch):
    import time

    from kagglekit.runs.rundir import new_run_dir

    monkeypatch.setattr(time, "strftime", lambda fmt: "20260101-000000")  # the same second, always
    config = RunConfig(output_dir=str(tmp_path))
    made = [new_run_dir(config, "seedlings") for _ in range(3)]
    assert len(set(made)) == 3 and all((d / "provenance.json").is_file() for d in made)
    assert [d.name for d in made] == [f"20260101-000000-{config.hash()}{s}" for s in ("", "-2", "-3")]
