"""The run directory's schema (kagglekit/runs/layout.py): complete on real runs, the one place a run file is named,
its writers and readers true to the code, and old runs still read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kagglekit.core.errors import DataError
from kagglekit.runs.layout import FORMAT_KEY, FORMAT_VERSION, RUN_FILES, TRAINED, check_format, format_version

PACKAGE = Path(__file__).resolve().parents[2] / "kagglekit"
ENTRIES = RUN_FILES.entries()
#: Literals that spell a run file's name for something that is not a run's file, and why.
NOT_RUN_FILES = {
    ("experiments/cells.py", "config.yaml"): "a compare cell's config, passed to its child run's --config",
    ("notebook/template.py", "submission.csv"): "the file a Kaggle notebook must write, set before kagglekit is installed",
    ("notebook/publish.py", "submission.csv"): "the notebook's output on Kaggle (template.py's OUTPUT)",
    ("kaggle_service/kernels.py", "submission.csv"): "Kaggle's default submission file of a kernel",
}


def assert_schema_covers(run_dir: Path) -> None:
    """Every file of a finished run is named by the schema (or lies in a learner's folder), and every entry
    that every trained run holds is there; the run records the layout's format."""
    folders = [e.name for e in ENTRIES if e.folder]
    named = {e.name for e in ENTRIES if not e.folder}
    unnamed = [str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()
               and p.relative_to(run_dir).as_posix() not in named
               and p.relative_to(run_dir).parts[0] not in folders]
    assert not unnamed, f"files of {run_dir} the schema does not name: {unnamed}"
    missing = [e.name for e in ENTRIES if TRAINED in e.always and not (run_dir / e.name).exists()]
    assert not missing, f"{run_dir} lacks what every trained run holds: {missing}"
    assert format_version(run_dir) == FORMAT_VERSION


def test_a_classification_run_holds_only_what_the_schema_names(seedlings_run):
    assert_schema_covers(seedlings_run.run_dir)


def test_a_pascal_voc_run_holds_only_what_the_schema_names(voc_run):
    assert_schema_covers(voc_run)


def test_a_camvid_run_holds_only_what_the_schema_names(camvid_run):
    assert_schema_covers(camvid_run)


def test_no_run_file_is_named_outside_the_schema():
    """A run file's name is spelled in kagglekit/runs/ only: everywhere else it is ``RUN_FILES.<entry>``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        if where.startswith("runs/"):
            continue
        text = path.read_text(encoding="utf-8")
        for entry in ENTRIES:
            base = entry.name.rsplit("/", 1)[-1]
            quoted = rf"([\"']){re.escape(base)}\1"
            pattern = rf"/ {quoted}" if entry.folder else quoted
            if re.search(pattern, text) and (where, base) not in NOT_RUN_FILES:
                found.append(f"{where}: {base} (RUN_FILES.{entry.attribute})")
    assert not found, "run files named outside kagglekit/runs/layout.py:\n" + "\n".join(found)


def test_the_writers_and_readers_are_the_modules_that_use_each_entry():
    """The schema's writers and readers of an entry are exactly the modules that spell ``RUN_FILES.<entry>``."""
    users: dict[str, set[str]] = {e.attribute: set() for e in ENTRIES}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for attribute in re.findall(r"RUN_FILES\.(\w+)", path.read_text(encoding="utf-8")):
            if attribute in users:
                users[attribute].add(module)
    for entry in ENTRIES:
        listed = set(entry.writers) | set(entry.readers)
        assert all((PACKAGE / m.replace(".", "/")).with_suffix(".py").is_file() for m in listed), entry
        assert listed == users[entry.attribute], (entry.attribute, sorted(listed ^ users[entry.attribute]))
        assert entry.description and (entry.writers or any(o.name.startswith(f"{entry.name}/") for o in ENTRIES))


def test_a_run_without_a_format_version_is_read_as_version_1(tmp_path):
    assert format_version(tmp_path) == 1  # no provenance.json at all
    (tmp_path / RUN_FILES.provenance).write_text(json.dumps({"kagglekit_version": "0.1.0", "source_sha256": "0" * 64}))
    assert check_format(tmp_path) == 1


def test_a_run_of_a_newer_format_is_refused_by_name(tmp_path):
    path = tmp_path / RUN_FILES.provenance
    path.write_text(json.dumps({FORMAT_KEY: FORMAT_VERSION + 1}))
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: .*format {FORMAT_VERSION + 1}.*upgrade"):
        check_format(tmp_path)
    path.write_text(json.dumps({FORMAT_KEY: "two"}))
    with pytest.raises(DataError, match="not a format version"):
        format_version(tmp_path)


def test_the_docs_table_is_the_schema():
    """docs/run-directory.md's table of entries is what RUN_FILES says (the failure prints the table to paste)."""
    rows = ["| entry | in every | what it holds | written by | read by |", "|---|---|---|---|---|"]
    for e in ENTRIES:
        rows.append(f"| `{e.name}{'/' if e.folder else ''}` | {', '.join(e.always) or '-'} | {e.description} | "
                    f"{', '.join(e.writers) or '-'} | {', '.join(e.readers) or '-'} |")
    page = (PACKAGE.parent / "docs" / "run-directory.md").read_text(encoding="utf-8")
    written = [line for line in page.splitlines() if line.startswith("|")]
    assert written == rows, "docs/run-directory.md's table is out of date; it should be:\n" + "\n".join(rows)
