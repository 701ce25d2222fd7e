"""Evidently's classification report in ``churnwatch performance`` counts a churn above the
champion's ``p60`` pin (medium risk and above), not above 0.5: at a base rate of a few percent no
matured score reached 0.5, so precision, recall and F1 were 0 and scikit-learn's
``UndefinedMetricWarning`` was printed four times into the command's output (found on a B2B export,
``tests/foreign/b2b.py``)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import UndefinedMetricWarning

from core.settings import MonitoringSettings
from monitoring.performance import performance_report, score_metrics

pytestmark = pytest.mark.slow  # Evidently's report: several seconds


def _matured(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.3, n)  # every probability below 0.5, as at a 7% base rate
    return pd.DataFrame({"account_id": [f"a{i}" for i in range(n)], "as_of": pd.Timestamp("2026-01-05"),
                         "churn_probability": p, "churn_label": (rng.random(n) < p).astype(int),
                         "model_version": "1", "tier": "healthy"})


def _metric(snapshot, name: str) -> tuple[str, float]:
    found = [m for m in snapshot.dict()["metrics"] if str(m.get("metric_name", "")).startswith(name + "(")]
    return found[0]["metric_name"], float(found[0]["value"])


def test_the_report_counts_a_churn_above_the_pin_and_warns_nothing():
    m = _matured()
    training = {**score_metrics(m["churn_label"].to_numpy(), m["churn_probability"].to_numpy(),
                                m["tier"].to_numpy()), "n_rows": len(m)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = performance_report(m, m, training, MonitoringSettings(min_matured_rows=100), model_version="1",
                                    threshold=0.15)
    assert not [w for w in caught if issubclass(w.category, UndefinedMetricWarning)]
    assert result.summary["report_threshold"] == 0.15
    name, precision = _metric(result.snapshot, "Precision")
    assert "probas_threshold=0.15" in name
    predicted = m["churn_probability"] >= 0.15
    assert precision == pytest.approx(m.loc[predicted, "churn_label"].mean())
