"""Bad inputs of every kind end in a kagglekit error or warning that names the file, row or key: never
a traceback, a silent wrong answer or a lost file.

Images (bombs, empty, truncated, dangling links), folder layouts, RLE numbers, submission files,
caches (features, converted weights), the score ledger, and submitting the same bytes twice.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import time
import warnings
import zlib
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from kagglekit.cli import main as cli
from kagglekit.competitions.discovery import competition_from_yaml
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError, DataError, SubmissionError, WeightsError
from kagglekit.data.images import UnreadableImage, find_unreadable, read_rgb
from kagglekit.data.loaders import image_batches
from kagglekit.data.masks import image_size, read_label_map
from kagglekit.evaluation.folds import stratified_folds
from kagglekit.pipelines.inputs import checked_test, usable_train
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.ledger import Ledger, LedgerError, default_ledger_path
from kagglekit.submission import rle
from kagglekit.submission.validator import validate_submission


# ---------------------------------------------------------------- helpers
def png(path: Path, size: tuple[int, int] = (8, 6), value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 2 * value % 256, 30)).save(path)
    return path


def forged_png(path: Path, width: int, height: int) -> Path:
    """A tiny file whose PNG header claims ``width`` x ``height`` pixels: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def class_folder(root: Path) -> tuple[object, Path]:
    """A tiny class-folder competition (YAML by path): 2 classes x 6 images, 3 test images."""
    for label in ("cats", "dogs"):
        for i in range(6):
            png(root / "data" / "train" / label / f"{label}{i}.png", value=40 * i + (label == "dogs") * 7)
    for name in ("t1.png", "t2.png", "t3.png"):
        png(root / "data" / "test" / name, value=len(name) * 9)
    (root / "data" / "sample_submission.csv").write_text("file,animal\nt1.png,cats\nt2.png,cats\nt3.png,dogs\n")
    spec = root / "pets.yaml"
    spec.write_text("kind: class-folder\nname: pets\nslug: pets-demo\ntitle: Pets\nlabel_column: animal\n")
    return competition_from_yaml(spec).resolve(root / "data"), spec


def segmentation_folder(root: Path) -> tuple[object, Path]:
    """A tiny segmentation-folder competition (YAML by path): 4 training frames with masks, 2 test frames."""
    data = root / "data"
    for stem in ("a_1", "a_2", "b_1", "b_2"):
        png(data / "train" / "images" / f"{stem}.png")
        mask = data / "train" / "masks" / f"{stem}.png"
        mask.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.arange(48).reshape(6, 8) % 2).astype(np.uint8), mode="L").save(mask)
    for stem in ("x", "y"):
        png(data / "test" / "images" / f"{stem}.png")
    rows = "".join(f"{stem}_{k},\n" for stem in ("x", "y") for k in range(2))
    (data / "sample_submission.csv").write_text("Id,EncodedPixels\n" + rows)
    spec = root / "roads.yaml"
    spec.write_text("kind: segmentation-folder\nname: roads\nslug: roads-demo\ntitle: Roads\n"
                    "classes: [road, sky]\ngroup_pattern: '^([^_]+)_'\n")
    return competition_from_yaml(spec), spec


# ---------------------------------------------------------------- images
def test_decompression_bombs_are_unreadable_with_the_pixel_count(tmp_path, monkeypatch):
    bomb = forged_png(tmp_path / "bomb.png", 100_000, 100_000)  # 10 gigapixels in 90 bytes
    with pytest.raises(UnreadableImage, match=r"bomb\.png: unreadable: too large"):
        read_rgb(bomb)
    with pytest.raises(UnreadableImage, match=r"bomb\.png.*too large"):
        image_size(bomb)

    monkeypatch.setenv("KAGGLEKIT_MAX_PIXELS", "1000")
    small, warned, refused = png(tmp_path / "ok.png", (30, 30)), png(tmp_path / "warn.png", (40, 40)), \
        png(tmp_path / "big.png", (100, 100))
    assert read_rgb(small).shape == (30, 30, 3)
    # 1,600 pixels: Pillow only warns (DecompressionBombWarning); 10,000: it raises. Both are refused,
    # whether the warning is an error (as kagglekit's filter makes it) or a host application silenced it.
    for action in ("error", "ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter(action, Image.DecompressionBombWarning)
            with pytest.raises(UnreadableImage, match=r"warn\.png: unreadable: too large"):
                read_rgb(warned)
            with pytest.raises(UnreadableImage, match=r"warn\.png: unreadable: too large"):
                image_size(warned)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(UnreadableImage, match=r"warn\.png: unreadable: too large, 40 x 40 = 1600 pixels > "
                                                  r"the limit of 1000"):
            read_rgb(warned)
    with pytest.raises(UnreadableImage, match=r"big\.png: unreadable: too large"):
        read_rgb(refused)
    np.save(tmp_path / "big.npy", np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(UnreadableImage, match=r"big\.npy: unreadable: too large, 50 x 50 = 2500 pixels"):
        read_rgb(tmp_path / "big.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        assert set(find_unreadable([small, warned, refused, bomb])) == {warned, refused, bomb}

    monkeypatch.setenv("KAGGLEKIT_MAX_PIXELS", "lots")
    with pytest.raises(ConfigError, match="KAGGLEKIT_MAX_PIXELS='lots'"):
        read_rgb(small)


def test_every_broken_file_is_one_unreadable_image_naming_it(tmp_path):
    good = png(tmp_path / "good.png", (64, 64))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "gone.png")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    short_npy = tmp_path / "short.npy"
    np.save(short_npy, np.zeros((20, 20, 3), np.uint8))
    short_npy.write_bytes(short_npy.read_bytes()[:150])
    reasons = {empty: "empty file", dangling: "dangling symlink", folder: "not a file", truncated: "not a readable",
               garbage: "not a readable", short_npy: "not a readable"}
    for path, reason in reasons.items():
        with pytest.raises(UnreadableImage, match=f"{path.name}: {reason}"):
            read_rgb(path)
        with pytest.raises(UnreadableImage, match=path.name):
            read_label_map(path)
        assert issubclass(UnreadableImage, DataError)  # the CLI prints it as a data error (exit 3)
    assert set(find_unreadable([good, *reasons])) == set(reasons)


def test_the_tf_data_loader_names_a_bad_file_instead_of_failing_inside_tensorflow(tmp_path):
    paths = [png(tmp_path / f"{i}.png", (10 + i, 12)) for i in range(5)]
    paths[3].write_bytes(paths[3].read_bytes()[:50])
    batches = image_batches(paths, image_size=16, batch_size=2)
    assert next(batches).shape == (2, 16, 16, 3)  # the good batch before it still arrives
    with pytest.raises(UnreadableImage, match=r"3\.png: not a readable image"):
        next(batches)
    assert list(image_batches([], image_size=16)) == []


# ---------------------------------------------------------------- folder layouts
def test_nested_folders_and_dangling_links_are_named_not_ignored(tmp_path, caplog):
    competition, _ = class_folder(tmp_path)
    data = tmp_path / "data"
    png(data / "train" / "cats" / "more" / "hidden_cat.png")
    (data / "train" / "dogs" / "lost.png").symlink_to(data / "nowhere.png")
    with caplog.at_level(logging.WARNING):
        train = competition.load_train(data)
    assert "1 image(s) in subfolders, not used (cats/more/hidden_cat.png)" in caplog.text
    assert "1 dangling symlink(s), their targets missing (dogs/lost.png)" in caplog.text
    kept, skipped = usable_train(train)  # the dangling link is a listed, skipped training image
    assert len(kept) == len(train) - 1 and "lost.png: dangling symlink" in skipped[str(data / "train" / "dogs" / "lost.png")]

    deeper = data / "train" / "dogs" / "more"  # a class whose images are one level too deep
    deeper.mkdir()
    for path in (data / "train" / "dogs").glob("dogs*.png"):
        path.rename(deeper / path.name)
    (data / "train" / "dogs" / "lost.png").unlink()
    with pytest.raises(DataError, match=r"train/dogs: class folder has no images; 6 image\(s\) lie in its subfolders "
                                        r"\(more/dogs0.png"):
        competition.load_train(data)

    (data / "test" / "test").mkdir()  # Kaggle zips often nest the folder in itself
    for path in sorted((data / "test").glob("*.png")):
        path.rename(data / "test" / "test" / path.name)
    with pytest.raises(DataError, match=r"test: test folder has no images; 3 image\(s\) lie in its subfolders \(test/t1.png"):
        competition.load_test(data)


def test_too_few_images_for_the_folds_names_the_class():
    labels = np.array([0] * 6 + [1] * 1 + [2] * 6)
    with pytest.raises(DataError, match=r"class 'Maize' has 1 image\(s\), fewer than the 5 folds"):
        stratified_folds(labels, np.arange(len(labels)), 5, 0, ["Charlock", "Maize", "Sugar beet"])
    with pytest.raises(DataError, match=r"class 'Wheat' has 0 image\(s\)"):  # every image of it was unreadable
        stratified_folds(labels, np.arange(len(labels)), 2, 0, ["Charlock", "Maize", "Sugar beet", "Wheat"])


# ---------------------------------------------------------------- unreadable images in every pipeline
def test_segmentation_skips_bad_training_images_and_masks_and_lists_bad_test_images_at_once(tmp_path):
    competition, _ = segmentation_folder(tmp_path)
    data = tmp_path / "data"
    (data / "train" / "images" / "a_2.png").write_bytes(b"")
    (data / "train" / "masks" / "b_1.png").write_bytes(b"not a png")
    kept, skipped = usable_train(competition.load_train(data))
    assert kept.ids == ["a_1", "b_2"]
    assert "a_2.png: empty file (0 bytes)" in skipped[str(data / "train" / "images" / "a_2.png")]
    assert "masks/b_1.png: not a readable label map" in skipped[str(data / "train" / "images" / "b_1.png")]

    for stem in ("x", "y"):
        (data / "test" / "images" / f"{stem}.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"2 test image\(s\) cannot be read") as caught:
        checked_test(competition.load_test(data))
    assert "x.png: empty file" in str(caught.value) and "y.png: empty file" in str(caught.value)


def test_label_values_that_are_no_class_are_named_with_their_share_and_a_map(tmp_path, caplog):
    """Objects saved as 255 in maps of classes 0 and 1 would be ignored in training and scoring: said, not silent."""
    competition, _ = segmentation_folder(tmp_path)
    train = competition.load_train(tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        usable_train(train, 2, None)
    assert not caplog.records  # the maps hold 0 and 1 only
    stray = train.masks[2]
    Image.fromarray(np.where(np.arange(48).reshape(6, 8) % 2, 255, 0).astype(np.uint8), mode="L").save(stray)
    usable_train(train, 2, 255)
    assert not caplog.records  # 255 is the void label here
    usable_train(train, 2, None)
    message = caplog.records[-1].getMessage()
    assert "1 of 4 training label maps read hold values that are no class (0..1): 255, 12.5% of their pixels" \
        in message and str(stray) in message and "remap the masks" in message


def test_a_segmentation_run_whose_frames_are_all_one_group_names_the_pattern_before_training(tmp_path, capsys):
    _, spec = segmentation_folder(tmp_path)
    data = tmp_path / "data"
    for stem in ("b_1", "b_2"):  # every frame left is of drive "a"
        (data / "train" / "images" / f"{stem}.png").unlink()
        (data / "train" / "masks" / f"{stem}.png").unlink()
    args = ["run", str(spec), "--data", str(data), "--output-dir", str(tmp_path / "runs"), "--image-size", "32"]
    assert cli(args) == DataError.exit_code
    err = capsys.readouterr().err
    assert "all 2 training images are one group" in err and "e.g. 'a_1'" in err and "group_pattern" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("kind", ["classification", "segmentation"])
def test_predict_refuses_unreadable_test_images_before_any_model(tmp_path, capsys, kind):
    competition, spec = (class_folder if kind == "classification" else segmentation_folder)(tmp_path)
    data = tmp_path / "data"
    bad = min((data / "test").rglob("*.png"))
    bad.write_bytes(b"")
    run_dir = tmp_path / "runs" / competition.name / "20260101-000000-000000000000"
    RunConfig(competition=str(spec), data=str(data), backbones=["efficientnet_lite0"], folds=2,
              image_size=32).save(run_dir / "config.yaml")
    (run_dir / RUN_FILES.competition).write_bytes(spec.read_bytes())  # no model was ever saved: none may be needed
    out = tmp_path / "out.csv"
    assert cli(["predict", str(run_dir), "--data", str(data), "--out", str(out)]) == DataError.exit_code
    err = capsys.readouterr().err
    assert f"{bad}: empty file (0 bytes)" in err and "1 test image(s) cannot be read" in err
    assert "Traceback" not in err and not out.exists()


# ---------------------------------------------------------------- RLE and submission files
@pytest.mark.parametrize("text, reason", [
    ("\u0661\u0662\u0663 4", "'١٢٣' is not a whole number"),  # Arabic-Indic digits: int() takes them
    ("\u00b2 1", "'²' is not a whole number"),  # str.isdigit() says yes
    ("+1 2", "'+1' is not a whole number"),
    ("1 -2", "'-2' is not a whole number"),
    ("1_0 2", "'1_0' is not a whole number"),
    ("1\u00a02", "is not a whole number"),  # a no-break space is not a separator
    (f"{2**63} 1", "'9223372036854775808' is too large for a pixel number"),  # would wrap in int64
    (f"1 {2**64 + 5}", "is too large for a pixel number: 20 digits"),
    ("90 20", "past the mask's 100 pixels"),
    ("nan", "'nan' is not a whole number"),
])
def test_rle_numbers_are_ascii_digits_within_the_mask(text, reason):
    assert reason in rle.check(text, rle.COLUMN_MAJOR, size=100)
    assert rle.check(None, rle.COLUMN_MAJOR, 100) is None and rle.check(float("nan"), rle.COLUMN_MAJOR, 100) is None


def test_a_huge_token_is_refused_at_once():
    started = time.monotonic()
    reason = rle.check("9" * 10**6 + " 1", rle.COLUMN_MAJOR, size=100)
    assert "too large for a pixel number: 1000000 digits" in reason and len(reason) < 200
    assert "not a whole number" in rle.check("1" * 10**6 + "x 1", rle.COLUMN_MAJOR, size=100)
    assert time.monotonic() - started < 2


def test_submission_files_of_any_content_give_a_report_naming_the_line(tmp_path):
    competition, _ = segmentation_folder(tmp_path)
    data = tmp_path / "data"
    sizes = competition.test_image_sizes(data)
    sample = data / "sample_submission.csv"
    good = "Id,EncodedPixels\nx_0,1 2\nx_1,\ny_0,\ny_1,\n"
    cases = {
        "binary": (bytes(range(256)), "NUL bytes"),
        "latin1": (good.replace("x_1,", "x_1,\xe9").encode("latin-1"), "not UTF-8 text (byte 0xe9"),
        "empty": (b"", "empty file"),
        "header-only": (b"Id,EncodedPixels\n", "0 rows, the sample submission has 4"),
        "duplicated-columns": (b"Id,Id\nx_0,x_0\n", "'Id' appear more than once in the header"),
        "ragged": (good.replace("y_0,", "y_0,1 1,3 1").encode(), "the header has 2 field(s), but line 4 has 3"),
        "arabic-digits": (good.replace("1 2", "\u0661 2").encode(), "line 2 (id 'x_0'), EncodedPixels: '١' is not a whole number"),
        "overflow": (good.replace("1 2", f"1 {2**63}").encode(), "line 2 (id 'x_0'), EncodedPixels: '9223372036854775808' is too large"),
        "past-the-image": (good.replace("1 2", "40 10").encode(), "past the mask's 48 pixels"),
        "quote": (b'Id,EncodedPixels\n"x_0,1 2\n', "line"),
    }
    for name, (content, problem) in cases.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(content)
        report = validate_submission(competition, path, sample, sizes)
        assert not report.ok and any(problem in p for p in report.problems), (name, report.problems)
        with pytest.raises(SubmissionError, match=f"{name}.csv is not a valid submission"):
            report.raise_if_invalid()
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + good.encode())  # Excel's UTF-8 BOM: the file is fine
    assert validate_submission(competition, bom, sample, sizes).ok
    (tmp_path / "folder.csv").mkdir()
    for path, found in ((tmp_path / "folder.csv", "is a folder (a directory), not a file"),
                        (tmp_path / "gone.csv", "file not found")):
        report = validate_submission(competition, path, sample, sizes)
        assert report.problems == [f"{path}: {found}; expected a submission CSV file"]


# ---------------------------------------------------------------- caches heal themselves
def test_a_truncated_feature_cache_is_recomputed_with_a_warning(tmp_path, caplog):
    from kagglekit.learners.features import FeatureExtractor

    paths = [png(tmp_path / f"{i}.png", (40, 30), value=50 * i) for i in range(3)]
    shas = [f"sha{i}" for i in range(3)]
    extractor = FeatureExtractor("efficientnet_lite0", 32, cache_dir=tmp_path / "features")
    fresh = extractor.transform(paths, shas, ["identity"])
    cache = extractor._path("identity")
    for damage in (cache.read_bytes()[: cache.stat().st_size // 2], b"\x00" * 100, b"PK\x03\x04garbage"):
        cache.write_bytes(damage)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            again = FeatureExtractor("efficientnet_lite0", 32, cache_dir=tmp_path / "features").transform(
                paths, shas, ["identity"])
        assert f"feature cache {cache} is unreadable" in caplog.text and "recomputing it" in caplog.text
        np.testing.assert_allclose(again.astype(np.float32), fresh.astype(np.float32), atol=1e-2)
        assert extractor._load("identity").keys() == set(shas)  # rewritten whole


def test_converted_weights_heal_in_the_cache_but_a_bad_user_file_is_an_error(tmp_path, caplog):
    from kagglekit.models import lite_weights

    lite_weights.lite_weights(0)  # converted (or already cached)
    cached = lite_weights.weights_cache_dir() / lite_weights.weights_file_name(0)
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 3])  # a conversion killed half-way
    with caplog.at_level(logging.WARNING):
        weights = lite_weights.lite_weights(0)
    assert f"{cached}: not a readable weights file" in caplog.text and "converting the weights again" in caplog.text
    assert weights["stem_conv/0"].shape == (3, 3, 3, 32)
    assert lite_weights.read_weights(cached, 0).keys() == weights.keys()  # the cache holds a good copy again

    user = tmp_path / "weights"
    user.mkdir()
    (user / cached.name).write_bytes(good[:1000])
    with pytest.raises(WeightsError, match=f"{user / cached.name}: not a readable weights file"):
        lite_weights.lite_weights(0, str(user))
    np.savez(user / cached.name, stem_conv=np.zeros(3))  # readable, but not these weights
    with pytest.raises(WeightsError, match="not EfficientNet-Lite0 weights"):
        lite_weights.lite_weights(0, str(user))


# ---------------------------------------------------------------- the ledger
def test_one_ledger_per_user(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.delenv("KAGGLEKIT_LEDGER")
    assert default_ledger_path() == Path(platformdirs.user_data_dir("kagglekit", appauthor=False)) / "ledger.sqlite"
    monkeypatch.setenv("KAGGLEKIT_LEDGER", str(tmp_path / "mine.sqlite"))
    assert default_ledger_path() == tmp_path / "mine.sqlite"


def test_a_corrupt_ledger_is_a_clear_error_naming_the_file(tmp_path, capsys, monkeypatch, caplog):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database, just some text " * 200)
    truncated = tmp_path / "truncated.sqlite"
    ledger = Ledger(truncated)
    for i in range(200):
        ledger.open_submission("pets", f"{i:064x}", "s.csv", "m" * 150)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    for path in (garbage, truncated):
        with pytest.raises(LedgerError, match=f"{path}: the score ledger cannot be read.*move it aside"):
            Ledger(path)

    (tmp_path / "s.csv").write_text("file,species\n")
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    for verb in (["scores", "seedlings"], ["submit", "seedlings", str(tmp_path / "s.csv"), "-m", "x",
                                            "--data", str(tmp_path)]):
        code = cli([*verb, "--ledger", str(garbage)])
        err = capsys.readouterr().err
        assert code == LedgerError.exit_code and f"{garbage}: the score ledger cannot be read" in err, err
        assert "kagglekit then starts a new, empty ledger" in err and "Traceback" not in err

    # a finished run keeps its outputs and only warns when the ledger cannot record it
    from kagglekit.usecases.run import record_and_submit
    from kagglekit.runs.result import RunResult

    monkeypatch.setenv("KAGGLEKIT_LEDGER", str(garbage))
    result = RunResult(tmp_path / "run", "pets", "accuracy", 0.9, 0.01, [0.9], tmp_path / "run" / "submission.csv", 1.0)
    with caplog.at_level(logging.WARNING):
        assert record_and_submit(result, RunConfig(), competition=None) is None
    assert f"not recorded in the score ledger (its outputs are safe in {tmp_path / 'run'})" in caplog.text
    assert str(garbage) in caplog.text


class FakeKaggle:
    """Kaggle's submission list and upload, in memory: what ``submit_file`` asks of a KaggleService."""

    timeout = 1.0

    def __init__(self):
        from kagglekit.kaggle.retry import Backoff

        self.backoff = Backoff(attempts=2, base=0.01, cap=0.01, deadline=1)
        self.remote, self.uploads = [], 0

    def submissions(self, slug):
        return list(self.remote)

    def limits(self, slug):
        return SimpleNamespace(num_allowed_now=5, num_today=len(self.remote))

    def create_submission(self, slug, path, description):
        self.uploads += 1
        self.remote.insert(0, SimpleNamespace(
            ref=100 + self.uploads, description=description, date=datetime.now(timezone.utc), file_name=path.name,
            status=SimpleNamespace(name="COMPLETE"), public_score="0.75", private_score="0.5", error_description=""))
        return self.remote[0].ref


def test_the_same_bytes_are_uploaded_once_whatever_ledger_submits_them(tmp_path):
    from kagglekit.kaggle.submit import submit_file

    competition, _ = class_folder(tmp_path)
    data = tmp_path / "data"
    path = tmp_path / "submission.csv"
    path.write_text("file,animal\nt1.png,cats\nt2.png,dogs\nt3.png,dogs\n")
    kaggle = FakeKaggle()
    laptop, desktop = Ledger(tmp_path / "laptop.sqlite"), Ledger(tmp_path / "desktop.sqlite")
    first = submit_file(kaggle, laptop, competition, path, "from the laptop", data)
    assert first["status"] == "complete" and kaggle.uploads == 1
    with pytest.raises(SubmissionError, match=rf"{path}: these exact bytes .* already on Kaggle as ref 101 .*"
                                              rf"another ledger .*recorded in {desktop.path}.*--force"):
        submit_file(kaggle, desktop, competition, path, "from the desktop", data)
    assert kaggle.uploads == 1
    [row] = desktop.submissions("pets").itertuples()
    assert row.ref == 101 and row.status == "complete" and row.public_score == 0.75  # now known here too
    with pytest.raises(SubmissionError, match="already submitted"):  # and refused by this ledger itself
        submit_file(kaggle, desktop, competition, path, "again", data)
    forced = submit_file(kaggle, desktop, competition, path, "on purpose", data, force=True)
    assert kaggle.uploads == 2 and forced["ref"] == 102


def test_a_locked_ledger_says_so_instead_of_calling_it_damaged(tmp_path):
    path = tmp_path / "busy.sqlite"
    ledger = Ledger(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        connect = ledger._connect
        ledger._connect = lambda: connect_with_timeout(connect(), 0.1)  # no 30 s wait in a test
        with pytest.raises(LedgerError, match=f"{path}: the score ledger is locked by another kagglekit process"):
            ledger.open_submission("pets", "0" * 64, "s.csv", "m")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ledger.open_submission("pets", "0" * 64, "s.csv", "m")["status"] == "uploading"


def connect_with_timeout(db: sqlite3.Connection, seconds: float) -> sqlite3.Connection:
    db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
    return db
