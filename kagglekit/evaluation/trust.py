"""How far a competition's CV can be trusted, and which two submissions to choose as final.

Kaggle scores the final two submissions a team selects on the private leaderboard. The public one is a
small sample: chasing it overfits. Winning teams choose by a CV they trust: one whose changes track
the leaderboard (correlation across submissions) and whose CV-to-leaderboard gaps stay within the
spread of its own fold scores. The second choice hedges: a strong run that disagrees most with the
first, so that one of the two survives a private set unlike the public one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

#: A gap between CV and leaderboard larger than this many fold standard deviations is not noise.
GAP_IN_STDS = 2.0


@dataclass
class TrustReport:
    """Correlations of CV with each leaderboard, each scored submission's gap against its fold spread,
    and the recommended final two runs with the reasons."""

    submissions: pd.DataFrame  # run_id, cv_mean, cv_std, public_score, private_score, gap, within_spread
    correlations: dict[str, dict[str, float | None]]  # "public"/"private" -> pearson, spearman, n
    final: list[dict] = field(default_factory=list)  # up to two {run_id, cv_mean, public_score, why}

    def lines(self) -> list[str]:
        out = []
        for board, c in self.correlations.items():
            if c["n"] < 3:
                out.append(f"CV vs {board} leaderboard: {c['n']} scored submission(s); 3 or more give a correlation")
            else:
                out.append(f"CV vs {board} leaderboard over {c['n']} submissions: Pearson {c['pearson']:.3f}, "
                           f"Spearman {c['spearman']:.3f}")
        scored = self.submissions
        if len(scored):
            inside = int(scored.within_spread.sum())
            out.append(f"{inside} of {len(scored)} public scores lie within {GAP_IN_STDS:g} fold standard deviations "
                       f"of their CV (median gap {scored.gap.median():+.4f})")
        for rank, choice in enumerate(self.final, 1):
            lb = f", public {choice['public_score']:.4f}" if pd.notna(choice["public_score"]) else ""
            out.append(f"final choice {rank}: {choice['run_id']} (CV {choice['cv_mean']:.4f}{lb}): {choice['why']}")
        return out

    def to_dict(self) -> dict:
        return {"correlations": self.correlations, "final": self.final,
                "submissions": self.submissions.replace({np.nan: None}).to_dict(orient="records")}


def correlation(cv: pd.Series, board: pd.Series) -> dict[str, float | None]:
    pairs = pd.DataFrame({"cv": cv, "lb": board}).dropna()
    if len(pairs) < 3 or pairs.cv.nunique() < 2 or pairs.lb.nunique() < 2:
        return {"n": len(pairs), "pearson": None, "spearman": None}
    return {"n": len(pairs), "pearson": float(pairs.cv.corr(pairs.lb)),
            "spearman": float(pairs.cv.corr(pairs.lb, method="spearman"))}


def trust_report(history: pd.DataFrame, predictions: Callable[[str], pd.Series | None]) -> TrustReport:
    """``history``: the ledger's rows (``Ledger.history``); ``predictions(run_id)``: a run's submitted
    values indexed by row id (None when its files are gone), to measure how much two runs disagree."""
    runs = history.dropna(subset=["run_id", "cv_mean"])
    scored = runs.dropna(subset=["public_score"]).copy()
    scored["gap"] = scored.public_score - scored.cv_mean
    spread = scored.cv_std.fillna(0).clip(lower=1e-4)
    scored["within_spread"] = (scored.gap - scored.gap.median()).abs() <= GAP_IN_STDS * spread
    correlations = {"public": correlation(scored.cv_mean, scored.public_score)}
    if scored.private_score.notna().any():
        correlations["private"] = correlation(scored.cv_mean, scored.private_score)
    columns = ["run_id", "cv_mean", "cv_std", "public_score", "private_score", "gap", "within_spread"]
    report = TrustReport(scored[columns].reset_index(drop=True), correlations)

    candidates = runs.sort_values("cv_mean", ascending=False).drop_duplicates("run_id")
    # a run whose leaderboard gap is far outside its fold spread has a CV not to be trusted
    distrusted = set(scored.loc[~scored.within_spread, "run_id"])
    trusted = candidates[~candidates.run_id.isin(distrusted)]
    if trusted.empty:
        return report
    first = trusted.iloc[0]
    public = scored.set_index("run_id").public_score.groupby(level=0).max()
    report.final.append({"run_id": first.run_id, "cv_mean": float(first.cv_mean),
                         "public_score": public.get(first.run_id, np.nan),
                         "why": "the best CV among runs whose leaderboard gap is within their fold spread"})
    # the hedge: among the rest within one fold spread of the best CV, the one that disagrees most with it
    rest = trusted.iloc[1:]
    rest = rest[rest.cv_mean >= first.cv_mean - max(float(first.cv_std or 0), 1e-4) * GAP_IN_STDS]
    base = predictions(first.run_id)
    disagreement = {}
    for run in rest.itertuples():
        other = predictions(run.run_id)
        if base is not None and other is not None:
            common = base.index.intersection(other.index)
            if len(common):
                disagreement[run.run_id] = float((base[common] != other[common]).mean())
    if disagreement:
        run_id = max(disagreement, key=lambda r: (disagreement[r], float(rest.set_index("run_id").cv_mean[r])))
        why = (f"within {GAP_IN_STDS:g} fold standard deviations of the best CV, and the most different from it "
               f"({disagreement[run_id]:.1%} of test rows differ)")
    elif len(rest):
        run_id, why = rest.iloc[0].run_id, "the next best trusted CV (no submission files to compare)"
    else:
        return report
    second = rest.set_index("run_id").loc[run_id]
    report.final.append({"run_id": run_id, "cv_mean": float(second.cv_mean), "public_score": public.get(run_id, np.nan),
                         "why": why})
    return report
