"""Closed loop on a hand-built score history, interventions and relationships."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from serving.closed_loop import CAVEAT, closed_loop, health_band, treated_units
from tests.tiny import D

AS_OF = D(2024, 3, 1)


def score(acc, health=45, tier="medium_risk", as_of=AS_OF):
    return dict(account_id=acc, as_of=as_of, tier=tier, health_score=health)


SCORES = pd.DataFrame([
    score("t1"), score("t2"),                           # treated (csm_call), t2 churns
    score("c1"), score("c2"), score("c3"), score("c4"),  # comparable, c3 churns
    score("c5", health=55),                              # other health band
    score("c6"),                                         # churns within the 7-day window: not comparable
    score("c7"),                                         # intervention later in the horizon: not comparable
    score("s1"),                                         # treated, but had an intervention 20 days before: stale
    score("y1", as_of=D(2024, 11, 15)),                  # treated on a date that has not matured
])
INTERVENTIONS = pd.DataFrame({
    "account_id": ["t1", "t2", "c7", "s1", "s1", "y1"],
    "occurred_at": pd.to_datetime(["2024-03-03 10:00", "2024-03-07 23:00", "2024-04-15 09:00", "2024-02-10 09:00",
                                   "2024-03-02 09:00", "2024-11-16 09:00"]),
    "playbook": ["csm_call", "csm_call", "care_email", "csm_call", "csm_call", "csm_call"],
})
ENDS = {"t2": "2024-04-10", "c3": "2024-04-20", "c6": "2024-03-05"}
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
    assert sorted(units["account_id"]) == ["t1", "t2", "y1"]  # s1 stale, c7 too late after its score


def test_retention_against_comparable_accounts(result):
    row = result.table.set_index(["tier", "playbook"]).loc[("medium_risk", "csm_call")]
    assert (row.treated, row.unmatched, row.treated_matched, row.treated_retained) == (2, 0, 2, 1)
    assert row.treated_retention == 0.5
    assert row.comparable == 4 and row.comparable_retention == 0.75  # c1..c4; c3 churned
    assert row.difference == pytest.approx(-0.25)
    # Newcombe: Wilson(1/2) = (0.094531, 0.905469), Wilson(3/4, n_eff 4) = (0.300642, 0.954413)
    # low = -0.25 - sqrt((0.5 - 0.094531)^2 + (0.954413 - 0.75)^2); high = -0.25 + sqrt(0.405469^2 + 0.449358^2)
    assert row.ci_low == pytest.approx(-0.704081, abs=1e-5)
    assert row.ci_high == pytest.approx(0.355250, abs=1e-5)
    assert result.matured_dates == 1


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
    assert everyone.difference == pytest.approx(-0.25)


def test_health_bands_and_the_caveat_in_both_languages():
    assert list(health_band(pd.Series([0, 9, 45, 99, 100]))) == ["0-9", "0-9", "40-49", "90-99", "100-100"]
    assert "not randomised" in CAVEAT["en"] and "随机" in CAVEAT["zh-CN"]
