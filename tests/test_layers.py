"""The architecture as tests: layers only import downward, no module imports itself in a cycle, the
library keeps to a handful of modules at its root, and only the task registry tells tasks apart by name."""

from __future__ import annotations

import re
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


#: A task told apart by name: ``task == ...``, ``task in (...)``, ``... != competition.task``, or a table keyed by
#: it (``pipelines[task]``, ``modules.get(competition.task)``; ``TASKS.get`` is the one lookup allowed).
TASK_BY_NAME = re.compile(r"\btask\s*(?:==|!=|(?:not\s+)?in\b)|(?:==|!=)\s*(?:\w+\.)*task\b"
                          r"|\b(?!TASKS\b)\w+(?:\[|\.get\()\s*(?:\w+\.)*task\s*[],)]")


def test_only_the_task_registry_tells_tasks_apart_by_name():
    """Behaviour that depends on the task is a lookup in ``kagglekit.tasks.TASKS``, never a comparison or a
    table of task names elsewhere: adding a task edits one registry, not every module that cares."""
    registry = REPO / "kagglekit" / "tasks"
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for path in sorted((REPO / "kagglekit").rglob("*.py")) if registry not in path.parents
             for number, line in enumerate(path.read_text().splitlines(), 1) if TASK_BY_NAME.search(line)]
    assert not found, "task names compared outside kagglekit/tasks/:\n" + "\n".join(found)


def test_the_task_name_check_catches_each_form():
    """The pattern above is not vacuous: each way of telling tasks apart by name is caught, a lookup is not."""
    caught = ['if competition.task == "segmentation":', 'masks = task in ("segmentation",)', "if task not in KNOWN:",
              'if "classification" != spec.task:', "pipeline = pipelines.get(competition.task, blend)",
              "module = TASK_MODULES[task]"]
    allowed = ["spec = TASKS.get(competition.task)", "if TASKS.get(task).masks:", "task_name = competition.task"]
    assert [line for line in caught if not TASK_BY_NAME.search(line)] == []
    assert [line for line in allowed if TASK_BY_NAME.search(line)] == []
