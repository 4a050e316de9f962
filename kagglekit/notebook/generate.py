"""``notebooks/<competition>-<run>.ipynb`` from a finished run: report + offline reproduction.

Writes, under ``out_dir``:

    <name>.ipynb                  the notebook (rendered from template.py)
    <name>-inputs/                what it reads on Kaggle, to attach as one dataset (see bundle.py)
    <name>-kernel/kernel-metadata.json   with ``kernel_metadata=True``: for ``kaggle kernels push -p``
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

from kagglekit.competitions.contract import Competition
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError, DataError
from kagglekit.core.fileio import atomic_write_json, atomic_write_text
from kagglekit.notebook import kaggle_metadata, report
from kagglekit.notebook.bundle import write_bundle
from kagglekit.notebook.render import render_notebook, template_text
from kagglekit.pipelines.rebuild import run_competition
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.provenance import source_digest

#: What a run directory must hold for a notebook (the report reads them; predict_run reads the rest).
REQUIRED = (RUN_FILES.config, RUN_FILES.metrics, RUN_FILES.data_report, RUN_FILES.submission)


@dataclass(frozen=True)
class GeneratedNotebook:
    notebook: Path
    bundle: Path
    kernel_dir: Path | None = None


def generate_notebook(competition: Competition, run_dir: Path, out_dir: Path = Path("notebooks"),
                      weights_dir: str | None = None, ledger_path: Path | None = None,
                      kernel_metadata: bool = False, owner: str | None = None,
                      allow_code_change: bool = False, enable_gpu: bool = False) -> GeneratedNotebook:
    """Write the notebook and its inputs. The notebook ships the kagglekit code running now, so that
    must be the code that made the run, unless ``allow_code_change``."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    check_run_dir(competition, run_dir)
    code_note = check_code(run_dir, allow_code_change)
    if kernel_metadata and not owner:
        raise ConfigError("kernel metadata needs the Kaggle user that will own the notebook: "
                          "pass --owner or set $KAGGLE_USERNAME")
    name = f"{competition.name}-{run_dir.name}"
    bundle = write_bundle(competition, run_dir, out_dir / f"{name}-inputs", weights_dir)
    notebook = out_dir / f"{name}.ipynb"
    atomic_write_text(notebook, nbformat.writes(build_notebook(
        competition, run_dir, bundle.path.name, bundle.manifest["kagglekit_version"], code_note, ledger_path)))
    if not kernel_metadata:
        return GeneratedNotebook(notebook, bundle.path)

    dataset = kaggle_metadata.dataset_metadata(owner, kaggle_metadata.kaggle_title(competition.name, run_dir.name, "inputs"))
    atomic_write_json(bundle.path / "dataset-metadata.json", dataset)
    kernel_dir = out_dir / f"{name}-kernel"
    atomic_write_json(kernel_dir / "kernel-metadata.json", kaggle_metadata.kernel_metadata(
        owner, kaggle_metadata.kaggle_title(competition.name, run_dir.name),
        code_file=f"../{notebook.name}", dataset_ids=[dataset["id"]], competition_slug=competition.slug,
        enable_gpu=enable_gpu,
    ))
    return GeneratedNotebook(notebook, bundle.path, kernel_dir)


def build_notebook(competition: Competition, run_dir: Path, bundle_name: str, kagglekit_version: str,
                   code_note: str, ledger_path: Path | None) -> nbformat.NotebookNode:
    metrics = json.loads((run_dir / RUN_FILES.metrics).read_text(encoding="utf-8"))
    config = RunConfig.load(run_dir / RUN_FILES.config)
    plots, images = report.plots_section(run_dir)
    values = {
        "title": f"{competition.title}: kagglekit run {run_dir.name}",
        "summary": (f"CV {metrics['metric']} **{metrics['cv_mean']:.4f} ± {metrics['cv_std']:.4f}** "
                    f"({len(metrics['fold_scores'])} folds), backbone(s) {', '.join(config.backbones)} "
                    f"at {config.image_size} px."),
        "run_name": run_dir.name,
        "kagglekit_version": kagglekit_version,
        "code_note": code_note,
        "bundle_name": bundle_name,
        "slug": competition.slug,
        "competition_section": report.competition_section(competition, run_dir),
        "data_section": report.data_section(run_dir),
        "design_section": report.design_section(run_dir),
        "cv_section": report.cv_section(run_dir),
        "plots_section": plots,
        "ledger_section": report.ledger_section(competition, run_dir, ledger_path),
        "bootstrap": template_text("bootstrap.py"),
    }
    return render_notebook(values, images)


def check_code(run_dir: Path, allow_code_change: bool) -> str:
    """How the packaged code relates to the run's (a sentence for the notebook); refuse a mismatch."""
    path = run_dir / RUN_FILES.provenance
    made_by = json.loads(path.read_text(encoding="utf-8"))["source_sha256"] if path.is_file() else None
    now = source_digest()
    if made_by == now:
        return "the exact kagglekit code that made the run"
    problem = (f"{run_dir} was made by kagglekit source {made_by[:12]}, this is {now[:12]}" if made_by
               else f"{path} is missing: which kagglekit code made the run is unknown")
    if not allow_code_change:
        raise ConfigError(f"{problem}; the notebook would not ship the run's code. Check out the code that "
                          f"made the run, rerun it, or pass --allow-code-change")
    return f"**not** the code that made the run: {problem}"


def check_run_dir(competition: Competition, run_dir: Path) -> None:
    missing = [name for name in REQUIRED if not (run_dir / name).is_file()]
    if missing:
        raise DataError(f"{run_dir}: not a finished run directory (missing {', '.join(missing)})")
    ran = run_competition(run_dir).name  # a run of a competition YAML file keeps a copy of it
    if ran != competition.name:
        raise ConfigError(f"{run_dir} is a run of {ran}, not {competition.name}")
