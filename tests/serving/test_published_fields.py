"""``serving.published.derive_fields`` on term ends an export writes as "open-ended": ``9999-12-31``
(accepted by the contract, ``tests/features/test_hostile_data.py``) gives ``days_to_term_end`` of some
2.9 million days, beyond pandas' timestamps (year 2262)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from core.settings import load_settings
from serving.published import derive_fields

OPEN_ENDED = float((dt.date(9999, 12, 31) - dt.date(2024, 6, 1)).days)


def latest(rows: list[dict]) -> pd.DataFrame:
    base = {"previous_as_of": None, "previous_tier": None, "health_score": 40, "previous_health_score": None,
            "mrr": 100.0, "churn_probability": 0.2, "scored_at": pd.Timestamp("2024-06-02 08:00"), "tier": "high_risk"}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_open_ended_terms_publish_and_a_churned_one_churned_on_the_run_date():
    frame = latest([
        {"account_id": "open", "as_of": dt.date(2024, 6, 1), "days_to_term_end": OPEN_ENDED},
        {"account_id": "gone", "as_of": dt.date(2024, 5, 1), "days_to_term_end": OPEN_ENDED + 31},
        {"account_id": "ended", "as_of": dt.date(2024, 5, 1), "days_to_term_end": 10.0},
        {"account_id": "monthly", "as_of": dt.date(2024, 6, 1), "days_to_term_end": None},
    ])
    out = derive_fields(frame, load_settings()).set_index("account_id")
    assert out.loc["open", "churned_on"] is None and out.loc["monthly", "churned_on"] is None
    assert out.loc["gone", "churned_on"] == dt.date(2024, 6, 1)  # the term never ended: churned by the run date
    assert out.loc["ended", "churned_on"] == dt.date(2024, 5, 11)
    assert out.loc["open", "due_at"] == pd.Timestamp("2024-06-02 12:00")  # high risk: within 4 hours
    assert pd.isna(out.loc["gone", "due_at"])
    assert "days_to_term_end" not in out.columns
