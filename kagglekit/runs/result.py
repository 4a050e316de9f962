"""What a finished run reports: its scores, where its outputs are, and how long it took."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunResult:
    run_dir: Path
    competition: str
    metric: str
    cv_mean: float
    cv_std: float
    fold_scores: list[float]
    submission: Path
    seconds: float
    extra: dict = field(default_factory=dict)
