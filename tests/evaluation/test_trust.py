"""The trust report of ``kagglekit scores``: CV against the leaderboard, and the final two choices."""

import numpy as np
import pandas as pd
import pytest

from kagglekit.evaluation.trust import trust_report


def history(rows):
    frame = pd.DataFrame(rows, columns=["run_id", "cv_mean", "cv_std", "public_score", "private_score"])
    return frame.astype({"public_score": float, "private_score": float})


PREDICTIONS = {"A": list("abcd"), "B": list("abcx"), "C": list("abcd"), "D": list("axyd"), "E": list("wxyz")}


def values(run_id):
    return pd.Series(PREDICTIONS[run_id], index=["r1", "r2", "r3", "r4"]) if run_id in PREDICTIONS else None


def test_final_two_are_the_best_trusted_cv_and_the_most_different_strong_run():
    report = trust_report(history([
        ("A", 0.950, 0.005, 0.940, np.nan),
        ("B", 0.940, 0.010, 0.945, np.nan),
        ("C", 0.960, 0.002, 0.900, np.nan),  # best CV, but 5 points below it on the leaderboard: not trusted
        ("D", 0.945, 0.010, np.nan, np.nan),  # never submitted: its CV is all there is
        ("E", 0.800, 0.010, 0.790, np.nan),  # very different, but far weaker
    ]), values)
    within = dict(zip(report.submissions.run_id, report.submissions.within_spread))
    assert within == {"A": True, "B": True, "C": False, "E": True}
    assert [c["run_id"] for c in report.final] == ["A", "D"]  # D differs from A on half the rows, B on a quarter
    assert "50.0% of test rows differ" in report.final[1]["why"]
    public = report.correlations["public"]
    assert public["n"] == 4 and public["pearson"] == pytest.approx(np.corrcoef([.95, .94, .96, .8], [.94, .945, .9, .79])[0, 1])
    assert "private" not in report.correlations
    text = "\n".join(report.lines())
    assert "3 of 4 public scores lie within 2 fold standard deviations" in text and "final choice 2: D" in text


def test_private_scores_and_few_submissions():
    report = trust_report(history([("A", 0.9, 0.01, 0.89, 0.88), ("B", 0.8, 0.01, 0.79, 0.8)]), lambda run: None)
    assert report.correlations["public"] == {"n": 2, "pearson": None, "spearman": None}
    assert report.correlations["private"]["n"] == 2
    assert [c["run_id"] for c in report.final] == ["A"]  # B is not within A's fold spread: no hedge offered
    assert "3 or more give a correlation" in report.lines()[0]
