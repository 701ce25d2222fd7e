"""Batch scoring into the score history; playbooks per tier (ARTICLE §3)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from core.settings import Settings, default_playbooks
from core.store import read_snapshots
from serving.batch import HISTORY_COLUMNS, read_history, score_as_of, score_dates, score_rows


@pytest.fixture(scope="module")
def setup(trained_setup):
    return trained_setup


def test_scoring_a_date_twice_leaves_one_row_per_account(setup):
    tmp, settings, bundle = setup
    day = dt.date(2025, 9, 17)  # not on the weekly schedule: features are built for it
    first = score_as_of(tmp / "d", settings, tmp / "s.duckdb", bundle, day, "7")
    second = score_as_of(tmp / "d", settings, tmp / "s.duckdb", bundle, day, "7")
    stored = read_history(tmp / "s.duckdb", day)
    assert len(stored) == len(second) == len(first) == stored["account_id"].nunique() > 100
    # the stored scores equal in-process scoring of the same snapshot rows
    rows = read_snapshots(tmp / "s.duckdb", as_of=[day]).sort_values("account_id")
    expected = bundle.predict(rows)
    np.testing.assert_allclose(stored.sort_values("account_id")["churn_probability"].to_numpy(),
                               expected["churn_probability"].to_numpy())
    assert (stored.sort_values("account_id")["tier"].to_numpy() == expected["tier"].to_numpy()).all()
    assert set(stored["model_version"]) == {"7"}


def test_history_rows_carry_reasons_and_the_tier_playbook(setup):
    tmp, settings, bundle = setup
    day = dt.date(2025, 10, 1)
    history = score_as_of(tmp / "d", settings, tmp / "s.duckdb", bundle, day, "1")
    books = default_playbooks()
    for r in history.itertuples():
        assert r.playbook_action == books[r.tier].action_en
        assert r.respond_within == books[r.tier].respond_within
    risky = history.nsmallest(3, "health_score")
    for r in risky.itertuples():
        en, zh = json.loads(r.reasons_en), json.loads(r.reasons_zh)
        assert en and zh and len(en) == len(zh)
        assert all(item["text"] and "{" not in item["text"] for item in en + zh)
    assert books["high_risk"].respond_within == "4 hours" and books["medium_risk"].respond_within == "24 hours"
    assert books["low_risk"].respond_within == "3 working days" and "Upsell" in books["healthy"].action_en


def test_playbooks_are_overridable_per_tier_and_validated():
    s = Settings.model_validate({"playbooks": {"high_risk": {
        "action_en": "Call the CEO", "action_zh": "致电CEO", "owner": "VP CS", "respond_within": "1 hour",
        "respond_within_hours": 1}}})
    assert s.playbooks["high_risk"].owner == "VP CS"
    assert s.playbooks["low_risk"] == default_playbooks()["low_risk"]
    with pytest.raises(ValueError, match="unknown tier"):
        Settings.model_validate({"playbooks": {"critical": s.playbooks["high_risk"].model_dump()}})


def test_several_dates_in_one_pass_and_a_date_without_accounts(setup):
    tmp, settings, bundle = setup
    days = [dt.date(2025, 8, 20), dt.date(2025, 8, 6)]
    scored = score_dates(tmp / "d", settings, tmp / "s.duckdb", bundle, days + days[:1], "7")
    assert list(scored) == sorted(days)  # duplicates collapsed, in date order
    for day in days:
        stored = read_history(tmp / "s.duckdb", day)
        assert len(stored) == len(scored[day]) == stored["account_id"].nunique() > 100
    rows = read_snapshots(tmp / "s.duckdb", as_of=[days[0]])
    empty = score_rows(rows.iloc[:0], bundle, settings, "7")
    assert empty.empty and tuple(empty.columns) == HISTORY_COLUMNS
