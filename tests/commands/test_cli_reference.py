"""The docs cannot drift: docs/cli.md is what the parser says, every relative link in README.md and docs/ leads
somewhere, the architecture page names every layer and subpackage, and the README stays a front page."""

from __future__ import annotations

import difflib
import importlib.util
import re
from pathlib import Path

import pytest

from kagglekit.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _generator():
    """scripts/cli_reference.py, imported from its file: scripts/ is no package."""
    spec = importlib.util.spec_from_file_location("cli_reference", REPO / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_cli_md_is_the_parsers_reference():
    generator = _generator()
    expected = generator.reference(build_parser())
    written = (REPO / "docs" / "cli.md").read_text()
    diff = "".join(list(difflib.unified_diff(written.splitlines(True), expected.splitlines(True),
                                             "docs/cli.md", "the parser"))[:60])
    assert written == expected, f"docs/cli.md is out of date: run `{generator.COMMAND}`\n{diff}"


def test_a_changed_flag_changes_the_reference():
    """Not vacuous: a flag added to a verb shows up, with its help, in its verb's section."""
    generator = _generator()
    parser = build_parser()
    before = generator.reference(parser)
    verbs = next(a for a in parser._actions if a.dest == "command")
    verbs.choices["run"].add_argument("--probe-flag", metavar="N", help="a flag no one documented")
    after = generator.reference(parser)
    assert "| `--probe-flag N` | a flag no one documented |" in after and before != after
    assert after.index("--probe-flag") > after.index("## kagglekit run")


def test_every_relative_link_resolves():
    """A relative link names a file or folder that exists; a #fragment into Markdown names one of its headings."""
    generator = _generator()
    broken = []
    for page in PAGES:
        for target in LINK.findall(FENCE.sub("", page.read_text())):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, fragment = target.partition("#")
            resolved = (page.parent / path) if path else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no {path})")
            elif fragment and resolved.suffix == ".md" and fragment not in _anchors(resolved, generator.anchor):
                broken.append(f"{page.relative_to(REPO)}: {target} (no heading #{fragment})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_is_a_front_page():
    """At most 200 lines (issue 27): what kagglekit is, install, the two commands, an example, links into docs/."""
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200, "README.md grew past 200 lines: move the detail into docs/"
    for command in ("bash scripts/main.sh", "bash scripts/test.sh"):  # .ci/run runs the latter
        assert command in readme


def _anchors(page: Path, anchor) -> set[str]:
    headings = re.findall(r"^#+\s+(.*?)\s*$", FENCE.sub("", page.read_text()), re.M)
    return {anchor(heading) for heading in headings}


def test_the_architecture_page_lists_the_layers_and_every_subpackage():
    """docs/architecture.md's numbered layers are pyproject.toml's import-linter layers, in order, and its tree
    names every subpackage of kagglekit: a new layer or subpackage cannot go undocumented."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(contract["layers"] for contract in contracts if contract["type"] == "layers")
    page = (REPO / "docs" / "architecture.md").read_text()
    assert re.findall(r"^\d+\. `([^`]+)`", page, re.M) == layers
    tree = FENCE.search(page).group()
    packages = sorted(init.parent for init in (REPO / "kagglekit").rglob("*/__init__.py"))
    missing = [str(p.relative_to(REPO)) for p in packages if not re.search(rf"^\s+{p.name}/\s", tree, re.M)]
    assert not missing, f"docs/architecture.md's tree has no line for {missing}"
