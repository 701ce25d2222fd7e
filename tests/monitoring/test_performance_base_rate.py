"""``churnwatch performance``'s PR-AUC alarm is judged at the training base rate (probe p49: a matured date
churning 4.6% against 6.3% at training gave PR-AUC 0.32 against 0.41 and an ALARM, exit 3, while ROC-AUC,
Brier and ECE had all improved). Average precision is the base rate for a random ranking, so the same
ranking at fewer churners scores lower; weighting the churned rows to the training base rate takes that out."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from core.settings import MonitoringSettings
from monitoring.performance import degradation
from monitoring.runs import performance_rows
from training.evaluation import brier, ece, pr_auc, pr_auc_at_base_rate, roc_auc


def _scores(n: int, base_rate: float, signal: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of one model quality at any base rate (label shift): churners' scores drawn from one distribution,
    the others' from another; ``signal``: how far apart they are."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < base_rate).astype(int)
    return y, expit(signal * y + rng.normal(size=n) - 3.0)


def _metrics(y, p):
    """``score_metrics``' figures that ``degradation`` judges (without its bootstraps)."""
    return {"roc_auc": roc_auc(y, p), "pr_auc": pr_auc(y, p), "brier": brier(y, p), "ece": ece(y, p),
            "base_rate": float(y.mean())}


def test_the_same_ranking_at_fewer_churners_raises_no_pr_auc_alarm_and_a_worse_one_does():
    cfg = MonitoringSettings()
    y0, p0 = _scores(40_000, 0.08, 1.2, 0)  # training: 8% churn
    training = _metrics(y0, p0)
    y1, p1 = _scores(40_000, 0.04, 1.2, 1)  # the same model quality, 4% churn
    current = _metrics(y1, p1)
    assert current["base_rate"] < 0.6 * training["base_rate"]
    assert current["pr_auc"] < training["pr_auc"] - cfg.max_pr_auc_drop  # as it is: below by more than 0.05
    at = pr_auc_at_base_rate(y1, p1, training["base_rate"])
    assert at == pytest.approx(training["pr_auc"], abs=0.02)  # at the training base rate: the same
    assert not [r for r in degradation({**current, "pr_auc_at_training_base_rate": at}, training, cfg)
                if r.startswith("PR-AUC")]
    # a ranking that really got worse at the same lower base rate still raises it, and says both figures
    y2, p2 = _scores(40_000, 0.04, 0.6, 2)
    worse = {**_metrics(y2, p2), "pr_auc_at_training_base_rate": pr_auc_at_base_rate(y2, p2, training["base_rate"])}
    said = [r for r in degradation(worse, training, cfg) if r.startswith("PR-AUC")]
    assert len(said) == 1 and "at the training base rate" in said[0] and "at this base rate" in said[0]
    summary = {"current": worse, "training": training,
               "change": {k: worse[k] - training[k] for k in ("roc_auc", "pr_auc", "brier", "ece")}}
    rows = {r[0]: r for r in performance_rows(summary)}
    assert rows["PR-AUC at the training base rate"][2] == f"{worse['pr_auc_at_training_base_rate']:.4f}"
    assert rows["base rate (churned share)"][1:3] == [f"{training['base_rate']:.2%}", f"{worse['base_rate']:.2%}"]


def test_at_its_own_base_rate_the_figure_is_plain_average_precision():
    y, p = _scores(5_000, 0.1, 1.0, 3)
    assert pr_auc_at_base_rate(y, p, float(y.mean())) == pytest.approx(pr_auc(y, p), abs=1e-12)
    with pytest.raises(Exception, match="strictly between 0 and 1"):
        pr_auc_at_base_rate(y, p, 0.0)
