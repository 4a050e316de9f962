"""Fuzzing every parser of user input: whatever a file or setting holds, the user gets a kagglekit error
(or, where the API returns a reason, a reason), never a traceback from NumPy, pandas, PyYAML or pydantic.

The strategies aim at what real files get wrong: Unicode digits and signs in RLE, huge numbers, BOMs,
foreign encodings, missing / duplicated / renamed columns, ragged rows, YAML tags and timestamps, and
settings of the wrong type at every depth.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from PIL import Image
from pydantic import BaseModel

from kagglekit.competitions.class_folder import ClassFolderCompetition
from kagglekit.competitions.contract import Competition
from kagglekit.competitions.discovery import competition_from_yaml, get_competition
from kagglekit.competitions.segmentation_folder import SegmentationFolderCompetition
from kagglekit.core.config import RunConfig, from_dict, read_config_file
from kagglekit.core.errors import ConfigError, DataError, SubmissionError
from kagglekit.core.registry import Registry
from kagglekit.submission import rle
from kagglekit.submission.validator import ValidationReport, validate_submission
from kagglekit.submission.writer import read_csv_strings

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LOADING_ERRORS = (DataError, ConfigError, SubmissionError)

# ---------------------------------------------------------------- strategies

#: Characters that look like numbers or separators to someone, but not to a strict RLE reader.
RLE_CHARS = "0123456789 +-\t\n\r\x0b\x0c\x1c\x85\u00a0\u2003\u3000\u0661\u0662\u00b2\u00b9_.eEnaif,;xX"
RLE_TOKENS = ["nan", "NaN", "inf", "-inf", "-0", "+1", "-1", "1_0", "\u0661\u0662\u0663", "\u00b2", "\uff11",
              "0x10", "1e3", "1.0", "", "9" * 30, "9" * 400, str(2**63), str(-(2**63) - 1), str(2**64)]
rle_texts = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.text(alphabet=RLE_CHARS, max_size=40),
    st.tuples(
        st.lists(st.one_of(st.integers(-(2**70), 2**70).map(str), st.sampled_from(RLE_TOKENS)), max_size=8),
        st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u3000", ","]),
    ).map(lambda parts: parts[1].join(parts[0])),
)
rle_formats = st.sampled_from([rle.COLUMN_MAJOR, rle.ROW_MAJOR, rle.RLEFormat("F", base=0, empty="-1")])
pixel_counts = st.one_of(st.none(), st.integers(0, 10**7), st.just(2**62))

#: Cells: valid-looking ids and values, anything at all, quoting hazards and one huge field.
HUGE_FIELD = "7" * 200_000


def cells(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(known),
        st.text(max_size=12),
        st.sampled_from(['"', '""', '"a,b"', "a\nb", "\ufeff", " ", "NA", "nan", "None", "#", HUGE_FIELD]),
    )


@st.composite
def csv_bytes(draw, columns: list[str], rows: list[list[str]], values: list[str]) -> bytes:
    """A CSV-ish document near a good one: the right header or names missing, wrong, duplicated or empty; the
    good rows reordered, dropped, repeated or with cells changed, or rows of anything, ragged ones included;
    and any separator, line ending, BOM and encoding."""
    if draw(st.booleans()):
        header = list(columns)
    else:
        header = draw(st.lists(st.one_of(st.sampled_from(columns), cells(columns)), max_size=4))
    cell = cells(values + [row[0] for row in rows])
    if draw(st.booleans()):
        body = [list(row) for row in draw(st.permutations(rows))]
        for index, column, value in draw(st.lists(st.tuples(st.integers(0, len(body) - 1),
                                                            st.integers(0, len(columns) - 1), cell), max_size=3)):
            body[index][column] = value
        body = draw(st.sampled_from([body, body[1:], body + body[:1]]))
    else:
        width = len(header)
        row = st.one_of(st.lists(cell, min_size=width, max_size=width), st.lists(cell, max_size=width + 1))
        body = draw(st.lists(row, max_size=6))
    sep = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    text = newline.join(sep.join(row) for row in [header, *body]) + draw(st.sampled_from(["", newline]))
    if draw(st.integers(0, 3)) == 0:
        text = "\ufeff" + text
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-16", "latin-1"]))
    return text.encode(encoding, errors="replace")


def file_contents(columns: list[str], rows: list[list[str]], values: list[str]) -> st.SearchStrategy[bytes]:
    good = csv_bytes(columns, rows, values)
    return st.one_of(st.binary(max_size=300), good, good, good)


#: YAML that trips loaders: tags, anchors, merge keys, bad timestamps, flow collections, odd indentation.
YAML_TOKENS = ["a", "b:", ": ", "- ", "-", "[", "]", "{", "}", ",", "\n", "\n  ", "  ", "'", '"', "#", "&x ", "*x",
               "*y", "<<: ", "? ", "!!binary ", "!!python/object:os.system ", "!!float ", "!!int ", "!!str ",
               "!!map ", "!!seq ", "!!set ", "!!omap ", "!!timestamp ", "!!bool ", "!local ", "2001-13-45",
               "2001-02-03", "2001-02-03T25:61:61", "1e999", ".nan", ".inf", "~", "null", "yes", "0x1F", "0o17",
               "1_000", "---", "...", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "|\n", ">-\n", "\t", "\\u00e9",
               '"\\ud800"', '"\\x00"', "backbones", "train", "views", "segmentation", "input_size", "kind",
               "class-folder", "segmentation-folder", "classes", "name", "metric", "rle_order", "group_pattern", "(",
               "\ufeff"]
yaml_texts = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(YAML_TOKENS), max_size=25).map("".join),
)


def yaml_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=200), yaml_texts.map(lambda t: t.encode("utf-8", errors="surrogatepass")))


def _field_names(model) -> list[str]:
    names = []
    for name, info in model.model_fields.items():
        names.append(name)
        if isinstance(info.default, BaseModel):  # a section: its own keys too
            names += _field_names(type(info.default))
    return names


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(2**80), 2**80), st.floats(),
    st.text(max_size=12), st.sampled_from(["efficientnet_lite0", "identity, hflip", "", ",", "bce", "unet", "F"]),
)
config_keys = st.one_of(st.sampled_from(_field_names(RunConfig)), st.text(max_size=8), st.integers(), st.none())


def nested(key_strategy) -> st.SearchStrategy:
    """Random trees of settings: mappings (with real and bogus keys), lists and scalars at any depth."""
    return st.recursive(
        scalars,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(key_strategy, children, max_size=5)),
        max_leaves=12,
    )


@st.composite
def edited_configs(draw) -> dict:
    """The default settings with a few values, at any depth, replaced, removed or joined by a bogus key."""
    config = copy.deepcopy(RunConfig().to_dict())
    for _ in range(draw(st.integers(1, 3))):
        node = config
        while True:
            key = draw(st.sampled_from(list(node)))
            if isinstance(node[key], dict) and node[key] and draw(st.booleans()):
                node = node[key]
                continue
            action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
            if action == "replace":
                node[key] = draw(nested(config_keys))
            elif action == "remove":
                del node[key]
            else:
                node[draw(config_keys)] = draw(scalars)
            break
    return config


config_trees = st.one_of(nested(config_keys), st.dictionaries(config_keys, nested(config_keys), max_size=6),
                         edited_configs())

COMPETITION_FIELDS = {f.name: f.type for cls in (ClassFolderCompetition, SegmentationFolderCompetition)
                      for f in dataclasses.fields(cls)}
competition_keys = st.one_of(st.sampled_from(sorted(COMPETITION_FIELDS)), st.text(max_size=6), st.integers())
competition_values = st.one_of(nested(competition_keys), st.sampled_from(
    ["accuracy", "dice", "nope", "name", "stem", "C", "F", "(", "^([^_]+)_", "[a", "-1"]))


def mostly(good: st.SearchStrategy, other: st.SearchStrategy) -> st.SearchStrategy:
    """``good`` three times in four (``a | b`` would weigh each alternative inside ``b`` like ``a``)."""
    return st.integers(0, 3).flatmap(lambda i: other if i == 0 else good)


competition_trees = st.builds(
    lambda required, extra: {**required, **extra},
    st.fixed_dictionaries({
        "kind": mostly(st.sampled_from(["class-folder", "segmentation-folder"]), scalars),
        "name": mostly(st.just("fuzz"), scalars), "slug": st.just("fuzz-slug"), "title": st.just("Fuzz"),
        "classes": mostly(st.just(["a", "b"]), nested(competition_keys)),
    }),
    st.dictionaries(competition_keys, competition_values, max_size=4),
)

# ---------------------------------------------------------------- competition folders

#: Each competition's tiny test set: (height, width) of each test image, and its sample submission.
SIZES = {"seedlings": {"a.png": (3, 4), "b.png": (3, 4), "c.png": (2, 2)},
         "camvid": {"a": (3, 4), "b": (2, 5)},
         "pascal-voc": {"0": (3, 4), "1": (4, 2)}}
SAMPLES = {
    "seedlings": (["file", "species"], [["a.png", "Charlock"], ["b.png", "Maize"], ["c.png", "Sugar beet"]]),
    "camvid": (["Id", "EncodedPixels"], [[f"{stem}_{k}", ""] for stem in SIZES["camvid"] for k in range(11)]),
    "pascal-voc": (["Id", "Predicted"], [[f"{i}{kind}", ""] for i in SIZES["pascal-voc"]
                                         for kind in ("_classification", "_segmentation")]),
}
#: Cell values worth trying: right, nearly right and out of range for these images.
VALUES = {
    "seedlings": ["Charlock", "Maize", "Sugar beet", "charlock", "Maize ", "a.png", "d.png", ""],
    "camvid": ["", "1 12", "12 1", "13 1", "1 10", "1 2 4 2", "4 2 1 2", "0 1", "-1", "c_0", "a_11", "a"],
    "pascal-voc": ["", "1 20", "21 1", "1 240", "1 241", "3 2", "0 1", "1 0", "2_classification", "0"],
}
NAMES = list(SAMPLES)


def _csv(path: Path, columns: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False, lineterminator="\n")


def build_folder(name: str, root: Path) -> Path:
    """A tiny valid competition folder: the test images (train images too for VOC) and the sample."""
    for id_, (height, width) in SIZES[name].items():
        if name == "pascal-voc":
            for split in ("train", "test"):
                (root / split / "img").mkdir(parents=True, exist_ok=True)
                np.save(root / split / "img" / f"{split}_{id_}.npy", np.zeros((height, width, 3), np.uint8))
            (root / "train" / "seg").mkdir(parents=True, exist_ok=True)
            np.save(root / "train" / "seg" / f"train_{id_}.npy", np.zeros((height, width), np.uint8))
        else:
            image = root / "test" / ("images" if name == "camvid" else "") / (id_ if "." in id_ else f"{id_}.png")
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(image)
    if name == "pascal-voc":
        for split in ("train", "test"):
            columns, rows = VOC_TABLES[split]
            _csv(root / split / f"{split}_set.csv", columns, rows)
    _csv(root / "sample_submission.csv", *SAMPLES[name])
    return root


VOC_CLASSES = get_competition("pascal-voc").classes
VOC_COLUMNS = ["Id", *VOC_CLASSES]
VOC_TABLES = {split: (VOC_COLUMNS, [[id_, *labels] for id_, labels in zip(SIZES["pascal-voc"], rows)])
              for split, rows in (("train", [["1", "0"] + ["0"] * 18, ["0", "0", "1"] + ["0"] * 17]),
                                  ("test", [["-1"] * 20] * 2))}
VOC_VALUES = ["0", "1", "-1", "1.0", " 1", "2", "", "nan", "0x1", "1e400", "0", "1", "3", "1" * 30]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """``folder(name, user)``: (competition, data_dir) of a tiny valid folder of competition ``name``, one per
    ``user`` (a test that fuzzes a file in it has its own), built once and reused by every example."""
    built = {}

    def get(name: str, user: str = "shared") -> tuple[Competition, Path]:
        if (name, user) not in built:
            data_dir = build_folder(name, tmp_path_factory.mktemp(name))
            competition = get_competition(name)
            assert sorted(competition.load_test(data_dir).ids) == sorted(SIZES[name])  # valid before fuzzing
            built[name, user] = competition, data_dir
        return built[name, user]

    return get


def any_file_for(name: str) -> st.SearchStrategy[bytes]:
    """A submission-like file for competition ``name``."""
    return file_contents(*SAMPLES[name], VALUES[name])


# ---------------------------------------------------------------- RLE


@given(text=rle_texts, fmt=rle_formats, size=pixel_counts)
@settings(max_examples=300, deadline=None)
def test_rle_check_returns_a_reason_or_none_for_any_text(text, fmt, size):
    reason = rle.check(text, fmt, size)
    assert reason is None or (isinstance(reason, str) and reason)


@given(text=rle_texts, fmt=rle_formats, size=pixel_counts)
@settings(max_examples=300, deadline=None)
def test_rle_parse_accepts_only_well_formed_runs(text, fmt, size):
    try:
        starts, lengths = rle.parse(text, fmt, size)
    except rle.RLEError as exc:
        assert str(exc)
        assert rle.check(text, fmt, size) == str(exc)
        return
    assert rle.check(text, fmt, size) is None
    assert (starts >= 0).all() and (lengths >= 1).all()
    assert (starts[1:] >= (starts + lengths)[:-1]).all()
    if size is not None and starts.size:
        assert starts[-1] + lengths[-1] <= size


@given(text=rle_texts, fmt=rle_formats, shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
@settings(max_examples=200, deadline=None)
def test_rle_decode_gives_a_mask_of_the_shape_or_rle_error(text, fmt, shape):
    try:
        mask = rle.decode(text, shape, fmt)
    except rle.RLEError:
        return
    assert mask.shape == shape and mask.dtype == bool
    assert rle.decode(rle.encode(mask, fmt), shape, fmt).tolist() == mask.tolist()


@given(mask=arrays(bool, array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7)), fmt=rle_formats)
@settings(max_examples=150, deadline=None)
def test_rle_round_trips_masks_of_any_rank(mask, fmt):
    """Vectors (the VOC classification row) and stacks (its 20 masks) too, not just images."""
    text = rle.encode(mask, fmt)
    assert rle.check(text, fmt, mask.size) is None
    np.testing.assert_array_equal(rle.decode(text, mask.shape, fmt), mask)


# ---------------------------------------------------------------- submission CSVs


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def fuzz_file(data: st.DataObject, path: Path, contents: st.SearchStrategy[bytes]) -> Path:
    """Write a drawn file at ``path`` (reported under its name when a property fails)."""
    return _write(path, data.draw(contents, label=path.name))


@given(data=any_file_for("pascal-voc"))
@FUZZ
def test_read_csv_strings_reads_strings_or_raises_submission_error(tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("csv") / "any.csv", data)
    try:
        frame = read_csv_strings(path)
    except SubmissionError as exc:
        assert str(path) in str(exc)
        return
    assert all(isinstance(value, str) for column in frame for value in frame[column])


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
@FUZZ
def test_any_submission_file_gets_a_report(folder, name, data):
    """Through ``validate_submission`` (with or without the test images' sizes) and ``Competition.validate``."""
    competition, data_dir = folder(name)
    path = fuzz_file(data, data_dir / "submission.csv", any_file_for(name))
    how = data.draw(st.sampled_from(["no sizes", "sizes", "Competition.validate"]), label="how")
    if how == "Competition.validate":
        report = competition.validate(path, data_dir)
    else:
        sizes = competition.test_image_sizes(data_dir) if how == "sizes" else None
        report = validate_submission(competition, path, data_dir / "sample_submission.csv", sizes)
    assert all(isinstance(problem, str) and problem for problem in report.problems)
    if report.ok:
        assert report.rows == len(SAMPLES[name][1])
    else:
        with pytest.raises(SubmissionError, match="not a valid submission"):
            report.raise_if_invalid()


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
@FEW
def test_validate_submission_with_a_broken_sample_raises_only_submission_error(folder, name, data):
    competition, data_dir = folder(name)
    sample_path, path = (fuzz_file(data, data_dir / file, any_file_for(name)) for file in ("sample.csv", "sub.csv"))
    try:
        report = validate_submission(competition, path, sample_path)
    except SubmissionError as exc:
        assert str(sample_path) in str(exc)
        return
    assert isinstance(report, ValidationReport)


@pytest.mark.parametrize("name", NAMES)
def test_competition_validate_accepts_the_sample_itself(folder, name):
    competition, data_dir = folder(name)
    assert competition.validate(data_dir / "sample_submission.csv", data_dir).ok


# ---------------------------------------------------------------- competition folders


@pytest.mark.parametrize("name", ["seedlings", "camvid"])
@given(data=st.data())
@FUZZ
def test_load_test_with_any_sample_submission_raises_only_loading_errors(folder, name, data):
    competition, data_dir = folder(name, "load_test")
    sample_path = fuzz_file(data, data_dir / "sample_submission.csv", any_file_for(name))
    try:
        table = competition.load_test(data_dir)
    except LOADING_ERRORS as exc:
        assert str(data_dir) in str(exc)
        return
    assert sorted(table.ids) == sorted(SIZES[name])
    assert read_csv_strings(sample_path)[competition.id_column].is_unique  # it names each submission row once


@pytest.mark.parametrize("split", ["train", "test"])
@given(data=st.data())
@FUZZ
def test_voc_tables_raise_only_loading_errors(folder, split, data):
    competition, data_dir = folder("pascal-voc", split)
    table_file = data_dir / split / f"{split}_set.csv"
    fuzz_file(data, table_file, file_contents(*VOC_TABLES[split], VOC_VALUES))
    load = competition.load_train if split == "train" else competition.load_test
    try:
        table = load(data_dir)
    except LOADING_ERRORS as exc:
        assert str(table_file) in str(exc) or "missing" in str(exc)
        return
    assert set(table.ids) <= set(SIZES["pascal-voc"]) and len(set(table.ids)) == len(table) > 0
    if split == "train":
        assert table.labels.shape == (len(table), len(VOC_CLASSES)) and set(np.unique(table.labels)) <= {0, 1}


# ---------------------------------------------------------------- YAML configs


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def read_or_config_error(read, path: Path):
    """What ``read(path)`` returns, or None once its ConfigError is checked to name the file, briefly."""
    try:
        return read(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
        assert len(str(exc)) < 5000  # a wrong value is shown briefly, however big (or alias-expanded) it is
        return None


#: Nine levels of nine aliases: 9**9 strings when expanded, a few hundred bytes as YAML.
ALIAS_BOMB = "l0: &l0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))


@given(data=yaml_bytes())
@example(data=b"!!float")  # PyYAML raises IndexError, not YAMLError, for these
@example(data=b"a: !!bool x")
@example(data=b"seed: 2001-13-45")
@example(data=b"[" * 1000)
@example(data=(ALIAS_BOMB + "backbones: *l8\ntrain: {views: *l8}\n").encode())
@FUZZ
def test_read_config_file_reads_a_mapping_or_raises_config_error(scratch, data):
    raw = read_or_config_error(read_config_file, _write(scratch / "run.yaml", data))
    if raw is not None:
        assert isinstance(raw, dict)
        assert isinstance(from_dict(RunConfig, raw), RunConfig)


@given(tree=config_trees)
@settings(max_examples=200, deadline=None)
def test_run_config_from_any_tree_is_built_or_config_error(tree):
    try:
        config = from_dict(RunConfig, tree, where="fuzz.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yaml: ")
        return
    assert isinstance(config, RunConfig)
    assert from_dict(RunConfig, config.to_dict()) == config  # what a run saves, it reads back


@given(tree=config_trees)
@FUZZ
def test_config_files_of_any_settings_tree_load_or_raise_config_error(scratch, tree):
    path = _write(scratch / "tree.yaml", yaml.safe_dump(tree).encode())
    config = read_or_config_error(lambda p: RunConfig.load(p, seed=7), path)
    assert config is None or config.seed == 7


@given(data=st.one_of(yaml_bytes(), competition_trees.map(lambda tree: yaml.safe_dump(tree).encode())))
@example(data=b"kind:")
@example(data=b"kind: class-folder\nname: [a]\nslug: s\ntitle: t")
@example(data=(ALIAS_BOMB + "kind: class-folder\nname: *l8\nslug: s\ntitle: t\n").encode())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_competition_yaml_builds_a_well_typed_competition_or_raises_config_error(scratch, data):
    competition = read_or_config_error(competition_from_yaml, _write(scratch / "competition.yaml", data))
    if competition is None:
        return
    assert isinstance(competition, Competition)
    for name in ("name", "slug", "title", "id_column", "metric", "sample_submission"):
        assert isinstance(getattr(competition, name), str), name
    assert all(isinstance(c, str) for c in competition.declared_classes or [])
    assert isinstance(competition.run_defaults, dict)
    Registry("competition").register(competition.name, competition)  # discovery can register it
