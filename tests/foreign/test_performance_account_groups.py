"""``churnwatch performance`` measures matured scores with the account ids, as training does:
an account scored on many dates carries one label on all of them, so its rows are one unit in
the ECE's noise floor, debiasing and intervals. Before, ``score_metrics`` called ``evaluate``
without them and reported the row-independent noise floor (about half the real one here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.settings import MonitoringSettings
from monitoring.performance import performance_report, score_metrics
from training.evaluation import evaluate

pytestmark = pytest.mark.slow  # Evidently's report and the bootstrap: over 10 s


def _matured(accounts: int = 150, dates: int = 8, seed: int = 1) -> pd.DataFrame:
    """Each account's risk and label are fixed over its dates (a churner is 1 on every date)."""
    rng = np.random.default_rng(seed)
    risk = rng.beta(1, 12, accounts)
    label = (rng.random(accounts) < risk).astype(int)
    rows = []
    for d in range(dates):
        p = np.clip(risk * np.exp(rng.normal(0, 0.1, accounts)), 1e-4, 0.99)
        rows.append(pd.DataFrame({"account_id": [f"a{i}" for i in range(accounts)],
                                  "as_of": pd.Timestamp("2026-01-05") + pd.Timedelta(days=7 * d),
                                  "churn_probability": p, "churn_label": label, "model_version": "1"}))
    out = pd.concat(rows, ignore_index=True)
    out["tier"] = pd.cut(out["churn_probability"], [0, 0.05, 0.1, 0.2, 1],
                         labels=["healthy", "low_risk", "medium_risk", "high_risk"]).astype(str)
    return out


def test_the_noise_floor_is_the_account_clustered_one():
    m = _matured()
    y, p, t = m["churn_label"].to_numpy(), m["churn_probability"].to_numpy(), m["tier"].to_numpy()
    grouped = evaluate(y, p, t, groups=m["account_id"].to_numpy())
    independent = evaluate(y, p, t)
    assert grouped["ece_noise"] > 1.5 * independent["ece_noise"]  # the difference the ids make

    training = {**score_metrics(y, p, t), "n_rows": len(m)}
    result = performance_report(m, m, training, MonitoringSettings(min_matured_rows=100), model_version="1")
    cur = result.summary["current"]
    assert cur["ece_noise"] == pytest.approx(grouped["ece_noise"])
    assert cur["ece_noise"] != pytest.approx(independent["ece_noise"])
    assert (cur["ece_debiased_lo"], cur["ece_debiased_hi"]) == pytest.approx(
        (grouped["ece_debiased_lo"], grouped["ece_debiased_hi"]))
    assert cur["ece_verdict"] == grouped["ece_verdict"] and cur["ece"] == pytest.approx(grouped["ece"])
