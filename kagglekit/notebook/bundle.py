"""The inputs a notebook needs, as one folder to attach on Kaggle: ``notebooks/<name>-inputs/``.

    kagglekit-bundle.json        manifest: run, competition, wheel, kagglekit version, file digests
    kagglekit-<version>.whl      the exact kagglekit code (see wheel.py)
    run/                         the run directory: config.yaml, trained weights, submission.csv, ...
    weights/                     the pretrained backbone weights the run's config names

Upload it with ``kaggle datasets create -p notebooks/<name>-inputs --dir-mode zip``; the notebook
finds it under ``/kaggle/input/<dataset>/`` by its manifest.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from kagglekit.competitions.contract import Competition
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import WeightsError
from kagglekit.core.fileio import atomic_write_json, sha256_file
from kagglekit.models.backbones import get_backbone
from kagglekit.models.weights import find_weights_file, where_weights_go
from kagglekit.notebook.bootstrap import BUNDLE_MANIFEST
from kagglekit.notebook.wheel import write_source_wheel
from kagglekit.runs.layout import RUN_FILES

BUNDLE_FORMAT = 1


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict


def write_bundle(competition: Competition, run_dir: Path, out: Path, weights_dir: str | None = None) -> Bundle:
    """(Re)write the inputs folder ``out`` for ``run_dir``; pretrained weights are looked up as building
    the backbone would (``weights_dir``, else the run's, then $KAGGLEKIT_WEIGHTS_DIR and the caches)."""
    run_dir, out = Path(run_dir), Path(out)
    config = RunConfig.load(run_dir / RUN_FILES.config)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    wheel = write_source_wheel(out)
    shutil.copytree(run_dir, out / "run",
                    ignore=lambda folder, names: [RUN_FILES.publish] if Path(folder) == run_dir else [])
    (out / "weights").mkdir()
    for path in backbone_weight_files(config.backbones, weights_dir or config.weights_dir):
        shutil.copy2(path, out / "weights" / path.name)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    manifest = {
        "format": BUNDLE_FORMAT,
        "run": run_dir.name,
        "competition": competition.name,
        "slug": competition.slug,
        "backbones": config.backbones,
        "wheel": wheel.path.name,
        "kagglekit_version": wheel.version,
        "kagglekit_source_sha256": wheel.source_sha256,
        "files": {p.relative_to(out).as_posix(): sha256_file(p) for p in files},
    }
    atomic_write_json(out / BUNDLE_MANIFEST, manifest)
    return Bundle(out, manifest)


def backbone_weight_files(backbones: list[str], weights_dir: str | None) -> list[Path]:
    """Each backbone's pretrained weights file, found where building it would look; a missing one is
    an error now, not on Kaggle after the upload."""
    files = []
    for name in backbones:
        spec = get_backbone(name)
        if not spec.pretrained:
            continue
        found = find_weights_file(spec.weights_file, weights_dir)
        if found is None:
            where = where_weights_go(weights_dir)
            raise WeightsError(
                f"backbone {name}: {spec.weights_file} is in none of {where}; the notebook cannot fetch it "
                f"on Kaggle. Build the backbone once here (e.g. `kagglekit run`), or pass --weights-dir"
            )
        files.append(found)
    return files
