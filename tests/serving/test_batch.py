"""Batch scoring into the score history; playbooks per tier (ARTICLE §3)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
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


def test_a_consumer_style_gives_consumer_playbooks_and_keeps_a_tier_set_by_hand():
    """Probes p57-p59: a $10 app subscriber and a coffee box read "Retention squad (CSM, sales, product,
    executive) ... executive visit ... 4 hours"."""
    from core.vocabulary import owner_label

    b2b, consumer = default_playbooks(), default_playbooks("consumer")
    s = Settings.model_validate({"playbook_style": "consumer", "playbooks": {"low_risk": {
        "action_en": "Push: a new sleep story", "action_zh": "推送：新的睡眠故事", "owner": "Growth",
        "respond_within": "1 day", "respond_within_hours": 24}}})
    assert s.playbooks["high_risk"] == consumer["high_risk"] != b2b["high_risk"]
    assert "executive" not in s.playbooks["high_risk"].action_en and s.playbooks["high_risk"].respond_within_hours == 24
    assert s.playbooks["low_risk"].owner == "Growth" and s.playbooks["healthy"].owner == "Lifecycle marketing"
    # a saved settings version holds every tier: the B2B defaults in it take the style's
    saved = Settings().model_dump(mode="json") | {"playbook_style": "consumer"}
    assert Settings.model_validate(saved).playbooks == consumer
    assert Settings().playbooks == b2b and Settings(playbook_style="b2b").playbooks == b2b
    back = Settings.model_validate(saved).model_dump(mode="json") | {"playbook_style": "b2b"}  # and back again
    assert Settings.model_validate(back).playbooks == b2b
    assert {owner_label(p.owner, "zh-CN") for p in consumer.values()} == {"用户运营", "挽留团队"}
    assert all(p.action_zh and p.action_en for p in consumer.values())
    with pytest.raises(ValueError, match="playbook_style"):
        Settings.model_validate({"playbook_style": "b2c"})


def test_a_consumer_sized_book_on_the_b2b_playbooks_is_told_of_the_consumer_style():
    from serving.batch import playbook_hint

    small = pd.DataFrame({"mrr": [9.99, 9.99, 9.99, 59.99 / 12, None, 0.0]})  # median of those with one: 9.99
    said = playbook_hint(Settings(), small)
    assert said is not None and "median MRR of the accounts scored is 9.99" in said
    assert "`playbook_style: consumer`" in said
    assert playbook_hint(Settings(playbook_style="consumer"), small) is None
    assert playbook_hint(Settings(playbook_style="b2b"), small) is None  # chosen: no more note
    assert playbook_hint(Settings(), pd.DataFrame({"mrr": [450.0, 1200.0, 80.0]})) is None  # B2B-sized
    assert playbook_hint(Settings(), pd.DataFrame({"account_id": ["a"]})) is None  # no MRR
    own = Settings.model_validate({"playbooks": {"high_risk": {"action_en": "Offer", "action_zh": "优惠",
                                                               "owner": "Support", "respond_within": "1 day"}}})
    assert playbook_hint(own, small) is None  # playbooks of its own: nothing to say
