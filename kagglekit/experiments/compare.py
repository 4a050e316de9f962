"""The backbone x optimizer matrix (``kagglekit compare``): every cell an ordinary run, then one table.

The table has, per cell, the CV (mean ± std over the scored folds), seconds per epoch, training and
inference images per second, peak memory, wall time and cost (``price_per_hour`` x device-hours), as CSV
(numbers), Markdown (for a write-up) and a heatmap of the CV. The comparison's folder explains itself
(``compare.json``: what was compared, on which config) and resumes: finished cells are read, a killed
cell's run resumes, and only the same comparison may continue in a folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kagglekit.core.config import merge
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json, atomic_write_text
from kagglekit.core.progress import progress
from kagglekit.experiments.cells import run_cell
from kagglekit.runs.layout import RUN_FILES
from kagglekit.tasks import TASKS

log = logging.getLogger(__name__)

SPEC = "compare.json"
#: Which config section holds the optimizer of each learner (``train.learner`` as resolved for the task).
OPTIMIZER_SECTION = {"finetune": "finetune", "head": "train"}
COLUMNS = ["backbone", "optimizer", "status", "cv_mean", "cv_std", "folds", "seconds_per_epoch", "train_images_per_s",
           "predict_images_per_s", "peak_memory_gib", "wall_seconds", "device_hours", "cost", "device", "run_dir"]


@dataclass(frozen=True)
class Cell:
    backbone: str
    optimizer: str

    @property
    def name(self) -> str:
        return f"{self.backbone}--{self.optimizer}"


def optimizer_section(task: str, learner: str) -> str:
    """The config section whose ``optimizer`` the comparison varies: the learner that trains (a task with
    masks: its segmenter)."""
    return "segmentation" if TASKS.get(task).masks else OPTIMIZER_SECTION[learner]


def cell_config(base: dict, cell: Cell, section: str) -> dict:
    """The run config of one cell: the comparison's config with this backbone and optimizer."""
    return merge(base, {"backbones": [cell.backbone], section: {"optimizer": cell.optimizer}})


class Comparison:
    """Runs the cells of ``backbones x optimizers`` on the resolved base config ``base`` in ``folder``."""

    def __init__(self, folder: Path, competition_ref: str, competition: str, task: str, base: dict,
                 backbones: list[str], optimizers: list[str], price_per_hour: float):
        self.folder, self.competition_ref, self.competition = Path(folder), competition_ref, competition
        self.base, self.price_per_hour = base, price_per_hour
        self.section = optimizer_section(task, base["train"]["learner"])
        self.cells = [Cell(b, o) for b in backbones for o in optimizers]
        self.spec = {"competition": competition_ref, "backbones": backbones, "optimizers": optimizers,
                     "optimizer_key": f"{self.section}.optimizer", "price_per_hour": price_per_hour, "config": base}

    def claim_folder(self) -> None:
        """Start the comparison in an empty folder, or continue the same comparison; refuse anything else."""
        spec_file = self.folder / SPEC
        if spec_file.is_file():
            saved = json.loads(spec_file.read_text(encoding="utf-8"))
            if {k: v for k, v in saved.items() if k != "price_per_hour"} != \
                    {k: v for k, v in self.spec.items() if k != "price_per_hour"}:
                raise ConfigError(f"{self.folder} holds another comparison ({spec_file}); choose a new --out folder, "
                                  "or repeat that comparison's own options to continue it")
            log.info("continuing the comparison in %s", self.folder)
        elif self.folder.exists() and any(self.folder.iterdir()):
            raise ConfigError(f"{self.folder} is not empty and holds no comparison; choose a new --out folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(spec_file, self.spec)

    def run(self, data: str, weights_dir: str | None = None) -> pd.DataFrame:
        """Run every cell (one after another: each takes the whole machine), then write and return the table."""
        self.claim_folder()
        rows = []
        with progress(len(self.cells), f"compare {self.competition}", unit="run") as bar:
            for cell in self.cells:
                bar.set_postfix_str(cell.name)
                outcome = run_cell(self.competition_ref, self.competition, cell_config(self.base, cell, self.section),
                                   self.folder / "cells" / cell.name, data, weights_dir)
                if outcome.error:
                    log.error("%s failed: %s", cell.name, outcome.error)
                else:
                    log.info("%s: CV %.4f ± %.4f", cell.name, outcome.metrics["cv_mean"], outcome.metrics["cv_std"])
                rows.append(self.row(cell, outcome))
                bar.update(1)
        table = pd.DataFrame(rows, columns=COLUMNS)
        self.write(table)
        return table

    def row(self, cell: Cell, outcome) -> dict:
        row = {"backbone": cell.backbone, "optimizer": cell.optimizer, "run_dir": str(outcome.run_dir or "")}
        if outcome.metrics is None:
            return row | {"status": "failed"}
        timing = outcome.metrics.get("timing", {})
        hours = outcome.seconds / 3600 * timing.get("device_count", 1)
        return row | {
            "status": "done", "cv_mean": outcome.metrics["cv_mean"], "cv_std": outcome.metrics["cv_std"],
            "folds": len(outcome.metrics["fold_scores"]),
            **{key: timing.get(key) for key in ("seconds_per_epoch", "train_images_per_s", "predict_images_per_s",
                                                 "peak_memory_gib", "device")},
            "wall_seconds": round(outcome.seconds, 1), "device_hours": round(hours, 4),
            "cost": round(hours * self.price_per_hour, 4)}

    def write(self, table: pd.DataFrame) -> None:
        from kagglekit.runs.plots import score_heatmap

        atomic_write_text(self.folder / "comparison.csv", table.to_csv(index=False))
        atomic_write_text(self.folder / "comparison.md", markdown(table, self.price_per_hour))
        metric = next((json.loads((Path(d) / RUN_FILES.metrics).read_text())["metric"] for d in table.run_dir
                       if d and (Path(d) / RUN_FILES.metrics).is_file()), "score")
        done = table[table.status == "done"]
        if len(done):
            score_heatmap(done, self.folder / "comparison.png",
                          f"{self.competition}: CV {metric} by backbone and {self.spec['optimizer_key']}")


def markdown(table: pd.DataFrame, price_per_hour: float) -> str:
    """The table for a write-up: CV as mean ± std (or one fold's score), speeds and costs rounded, failed cells marked."""
    from kagglekit.runs.plots import cv_text

    def fmt(value, pattern):
        return "-" if value is None or pd.isna(value) else pattern.format(value)

    shown = pd.DataFrame({
        "backbone": table.backbone, "optimizer": table.optimizer,
        "CV": [cv_text(m, s, n) if st == "done" else "failed"
               for m, s, n, st in zip(table.cv_mean, table.cv_std, table.folds, table.status)],
        "s/epoch": [fmt(v, "{:.1f}") for v in table.seconds_per_epoch],
        "train img/s": [fmt(v, "{:.1f}") for v in table.train_images_per_s],
        "infer img/s": [fmt(v, "{:.1f}") for v in table.predict_images_per_s],
        "peak GiB": [fmt(v, "{:.2f}") for v in table.peak_memory_gib],
        "wall": [fmt(v, "{:.0f} s") for v in table.wall_seconds],
        f"cost at {price_per_hour:g}/device-hour": [fmt(v, "{:.4f}") for v in table.cost],
    })
    device = next((d for d in table.device if isinstance(d, str)), "unknown device")
    return shown.to_markdown(index=False) + f"\n\nDevice: {device}.\n"
