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

    def metrics(self) -> dict:
        """What ``metrics.json`` holds: the scores, the seconds, and whatever the pipeline added."""
        return {"metric": self.metric, "cv_mean": self.cv_mean, "cv_std": self.cv_std, "fold_scores": self.fold_scores,
                "seconds": round(self.seconds, 1), **self.extra}
