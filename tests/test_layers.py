"""The architecture as tests: layers only import downward, no module imports itself in a cycle, and the
library keeps to a handful of modules at its root."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    """pyproject.toml's [tool.importlinter]: the layer order, no verb importing another, and no adapter imported
    by module name."""
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout, out.stdout


def test_every_verb_is_in_the_independence_contract():
    """The contract that no verb imports another lists every verb the command line has (cli.COMMAND_MODULES)."""
    import pytest

    from kagglekit.cli import COMMAND_MODULES

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (independent,) = [c for c in contracts if c["type"] == "independence"]
    assert sorted(independent["modules"]) == sorted(COMMAND_MODULES)


def test_no_import_cycles():
    """Every import, lazy ones inside functions included: none leads back to the importer."""
    graph = grimp.build_graph("kagglekit", include_external_packages=False)
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append(" -> ".join((module, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_root_holds_at_most_six_modules():
    modules = sorted(p.name for p in (REPO / "kagglekit").glob("*.py"))
    assert len(modules) <= 6, modules


def test_a_deliberate_upward_import_is_caught(tmp_path):
    """The layer check is not vacuous: a core module importing a pipeline breaks it. (In a copy of the package:
    a probe in the tree itself would break the lint and the cycle check that another xdist worker runs.)"""
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(REPO / "kagglekit", tmp_path / "kagglekit", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "kagglekit" / "core" / "_layer_probe.py").write_text("import kagglekit.pipelines.classification\n")
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "kagglekit.core._layer_probe" in out.stdout, out.stdout
