"""Closed loop on a hand-built score history, interventions and relationships."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from insights.closed_loop import CAVEAT, ClosedLoopError, closed_loop, health_band, treated_units
from tests.tiny import D

AS_OF = D(2024, 3, 1)


def score(acc, health=45, tier="medium_risk", as_of=AS_OF):
    return dict(account_id=acc, as_of=as_of, tier=tier, health_score=health)


SCORES = pd.DataFrame([
    score("t1"), score("t2"),                           # treated (csm_call), t2 churns
    score("c1"), score("c2"), score("c3"), score("c4"),  # comparable, c3 churns
    score("c5", health=55),                              # other health band
    score("c6"),                                         # churns within the 7-day window: not comparable
    score("c7"),                                         # intervention 45 days later: usual care, comparable
    score("c8"),                                         # intervention 30 days before: not comparable
    score("c9"),                                         # intervention exactly 7 days later: comparable
    score("s1"),                                         # treated, but had an intervention 20 days before: stale
    score("t4"),                                         # treated, but churns within the 7 days: left out
    score("y1", as_of=D(2024, 11, 15)),                  # treated on a date that has not matured
])
INTERVENTIONS = pd.DataFrame({
    "account_id": ["t1", "t2", "c7", "c8", "c9", "s1", "s1", "t4", "y1"],
    "occurred_at": pd.to_datetime(["2024-03-03 10:00", "2024-03-07 23:00", "2024-04-15 09:00", "2024-01-31 09:00",
                                   "2024-03-08 00:00", "2024-02-10 09:00", "2024-03-02 09:00", "2024-03-02 09:00",
                                   "2024-11-16 09:00"]),
    "playbook": ["csm_call", "csm_call", "care_email", "care_email", "care_email", "csm_call", "csm_call",
                 "csm_call", "csm_call"],
})
ENDS = {"t2": "2024-04-10", "c3": "2024-04-20", "c6": "2024-03-05", "t4": "2024-03-06"}
RELATIONSHIPS = pd.DataFrame({
    "account_id": [a for a in SCORES["account_id"]],
    "rel_start": pd.Timestamp("2023-01-01"),
    "rel_end": [pd.Timestamp(ENDS[a]) if a in ENDS else pd.NaT for a in SCORES["account_id"]],
})


@pytest.fixture(scope="module")
def result():
    return closed_loop(SCORES, INTERVENTIONS, RELATIONSHIPS, data_end=D(2024, 12, 31), horizon_days=60,
                       grace_days=30, window_days=7, band_width=10)


def test_treated_units_take_the_latest_score_before_the_action():
    units = treated_units(SCORES.assign(as_of=pd.to_datetime(SCORES["as_of"])), INTERVENTIONS, 7, 60)
    # s1 stale; c7, c8 not within 7 days after a score; c9 exactly 7 days after (the window is half-open)
    assert sorted(units["account_id"]) == ["t1", "t2", "t4", "y1"]


def test_retention_against_comparable_accounts(result):
    row = result.table.set_index(["tier", "playbook"]).loc[("medium_risk", "csm_call")]
    # t4 churned inside the 7-day window: left out like c6
    assert (row.treated, row.unmatched, row.treated_matched, row.treated_retained) == (2, 0, 2, 1)
    assert row.treated_retention == 0.5
    # c1..c4, c7 (contacted later: usual care), c9 (contacted on day 7); c3 churned; c8 contacted 30 days before
    assert row.comparable == 6 and row.comparable_retention == pytest.approx(5 / 6)
    assert row.difference == pytest.approx(-1 / 3)
    # Newcombe: Wilson(1/2, 2) = (0.094531, 0.905469), Wilson(5/6, 6) = (0.436497, 0.969947)
    # low = -1/3 - sqrt((0.5 - 0.094531)^2 + (0.969947 - 5/6)^2); high = -1/3 + sqrt(0.405469^2 + (5/6 - 0.436497)^2)
    assert row.ci_low == pytest.approx(-0.761198, abs=1e-5)
    assert row.ci_high == pytest.approx(0.234015, abs=1e-5)
    assert result.matured_dates == 1
    assert set(result.treated["account_id"]) == {"t1", "t2"}


def test_all_tiers_row_and_unmatched_units():
    scores = pd.concat([SCORES, pd.DataFrame([score("t3", health=95, tier="healthy")])], ignore_index=True)
    ivs = pd.concat([INTERVENTIONS, pd.DataFrame({"account_id": ["t3"], "occurred_at": [pd.Timestamp("2024-03-02")],
                                                  "playbook": ["csm_call"]})], ignore_index=True)
    rel = pd.concat([RELATIONSHIPS, pd.DataFrame({"account_id": ["t3"], "rel_start": [pd.Timestamp("2023-01-01")],
                                                  "rel_end": [pd.NaT]})], ignore_index=True)
    t = closed_loop(scores, ivs, rel, data_end=D(2024, 12, 31)).table.set_index(["tier", "playbook"])
    healthy = t.loc[("healthy", "csm_call")]
    assert (healthy.treated, healthy.unmatched, healthy.treated_matched) == (1, 1, 0)
    assert math.isnan(healthy.difference)
    everyone = t.loc[("all tiers", "csm_call")]
    assert (everyone.treated, everyone.unmatched, everyone.treated_matched) == (3, 1, 2)
    assert everyone.difference == pytest.approx(-1 / 3)


def test_health_bands_and_the_caveat_in_both_languages():
    assert list(health_band(pd.Series([0, 9, 45, 99, 100]))) == ["0-9", "0-9", "40-49", "90-99", "100-100"]
    assert "not randomised" in CAVEAT["en"] and "随机" in CAVEAT["zh-CN"]


def test_two_strata_standardise_controls_to_the_treated_units():
    # band 40-49: treated u1, u2 (both retained); controls k1..k4, k1 churns -> 3/4
    # band 50-59: treated u3 (churns on day 50); controls m1..m5, only m1 retained -> 1/5
    # weights 2/3, 1/3: comparable retention 2/3 * 3/4 + 1/3 * 1/5 = 17/30; treated 2/3; difference 0.1
    # effective n = 1 / ((2/3)^2 / 4 + (1/3)^2 / 5) = 1 / (1/9 + 1/45) = 7.5
    # Wilson(2/3, 3) = (0.207660, 0.938508); Wilson(17/30, 7.5) = (0.254808, 0.833364)
    # low = 0.1 - sqrt((2/3 - 0.207660)^2 + (0.833364 - 17/30)^2) = -0.430863
    # high = 0.1 + sqrt((0.938508 - 2/3)^2 + (17/30 - 0.254808)^2) = 0.513707
    accounts = {"u1": 45, "u2": 42, "k1": 40, "k2": 41, "k3": 48, "k4": 49,
                "u3": 55, "m1": 50, "m2": 51, "m3": 55, "m4": 58, "m5": 59}
    scores = pd.DataFrame([score(a, health=h) for a, h in accounts.items()])
    ivs = pd.DataFrame({"account_id": ["u1", "u2", "u3"], "playbook": "csm_call",
                        "occurred_at": pd.to_datetime(["2024-03-01 09:00", "2024-03-04 00:00", "2024-03-06 00:00"])})
    ends = {"k1": "2024-04-01", "u3": "2024-04-20", "m2": "2024-03-20", "m3": "2024-04-01", "m4": "2024-04-15",
            "m5": "2024-04-30"}
    rel = pd.DataFrame({"account_id": list(accounts), "rel_start": pd.Timestamp("2023-01-01"),
                        "rel_end": [pd.Timestamp(ends[a]) if a in ends else pd.NaT for a in accounts]})
    row = closed_loop(scores, ivs, rel, data_end=D(2024, 12, 31)).table.set_index(["tier", "playbook"]).loc[
        ("medium_risk", "csm_call")]
    assert (row.treated_matched, row.treated_retained, row.comparable) == (3, 2, 9)
    assert row.treated_retention == pytest.approx(2 / 3)
    assert row.comparable_retention == pytest.approx(17 / 30)
    assert row.difference == pytest.approx(0.1)
    assert row.ci_low == pytest.approx(-0.430863, abs=1e-5)
    assert row.ci_high == pytest.approx(0.513707, abs=1e-5)


def test_mixed_date_resolutions_and_missing_health_scores():
    # DuckDB returns datetime64[us]; the frames built here are [ns]: merge_asof must not refuse them
    scores = SCORES.assign(as_of=pd.to_datetime(SCORES["as_of"]).astype("datetime64[us]"))
    ivs = INTERVENTIONS.assign(occurred_at=INTERVENTIONS["occurred_at"].astype("datetime64[ns]"))
    rel = RELATIONSHIPS.assign(rel_end=RELATIONSHIPS["rel_end"].astype("datetime64[s]"))
    row = closed_loop(scores, ivs, rel, data_end=D(2024, 12, 31)).table.set_index(["tier", "playbook"]).loc[
        ("medium_risk", "csm_call")]
    assert (row.treated_matched, row.comparable) == (2, 6)
    blank = SCORES.assign(health_score=SCORES["health_score"].astype(float))
    blank.loc[2, "health_score"] = float("nan")
    with pytest.raises(ClosedLoopError, match="1 scored row.*no health_score.*c1"):
        closed_loop(blank, INTERVENTIONS, RELATIONSHIPS, data_end=D(2024, 12, 31))
    with pytest.raises(ClosedLoopError, match="lack column.*health_score"):
        closed_loop(SCORES.drop(columns="health_score"), INTERVENTIONS, RELATIONSHIPS, data_end=D(2024, 12, 31))


def test_definitions_say_when_treatment_is_decided():
    d = closed_loop(SCORES, INTERVENTIONS, RELATIONSHIPS, data_end=D(2024, 12, 31)).definitions()
    assert "from 60 days before the date to 7 days after it" in d["comparable"]
    assert "usual care" in d["comparable"] and "still a customer 7 days after" in d["treated"]
