"""Diagnosis figures on hand-built tables equal hand-computed rates, Wilson intervals,
tests, BH q-values and Kaplan-Meier estimates (numbers worked out from the formulas)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from insights.diagnosis import (
    DiagnosisError,
    Window,
    bh_qvalues,
    build_diagnosis,
    check_window,
    churn_by_segment,
    churn_units,
    default_window,
    exit_reasons,
    kaplan_meier,
    lifetimes,
    write_diagnosis,
)
from tests.tiny import D, T, settings, write_tables

# Wilson 95% (z = 1.959964): centre (p + z^2/2n) / (1 + z^2/n), half z/(1 + z^2/n) sqrt(p(1-p)/n + z^2/4n^2)
WILSON = {(3, 4): (0.300642, 0.954413), (1, 6): (0.030053, 0.563503), (4, 10): (0.168180, 0.687326),
          (2, 3): (0.207660, 0.938508), (1, 3): (0.061492, 0.792340)}


def units_table() -> pd.DataFrame:
    """10 accounts: manufacturing 4 (3 churned), software 6 (1 churned)."""
    return pd.DataFrame({
        "account_id": [f"a{i}" for i in range(10)],
        "industry": ["manufacturing"] * 4 + ["software"] * 6,
        "churned": [True, True, True, False, True, False, False, False, False, False],
    })


def test_rates_and_wilson_intervals_by_segment():
    t = churn_by_segment(units_table(), ["industry"]).set_index("value")
    m, s = t.loc["manufacturing"], t.loc["software"]
    assert (m.accounts, m.churned, s.accounts, s.churned) == (4, 3, 6, 1)
    assert m.churn_rate == 0.75 and s.churn_rate == pytest.approx(1 / 6)
    assert (m.ci_low, m.ci_high) == pytest.approx(WILSON[(3, 4)], abs=1e-6)
    assert (s.ci_low, s.ci_high) == pytest.approx(WILSON[(1, 6)], abs=1e-6)
    assert list(t.index) == ["manufacturing", "software"]  # highest rate first


def test_small_segments_use_fisher_exact_test():
    # 2x2 [[3, 1], [1, 5]]: expected churned in manufacturing 4 * 4/10 = 1.6 < 5 -> Fisher.
    # X = churned among manufacturing's 4 ~ hypergeometric(N=10, K=4, n=4): P(X=k) = C(4,k) C(6,4-k) / C(10,4)
    # = 15, 80, 90, 24, 1 (/210) for k = 0..4; two-sided p = sum of P <= P(3) = (15 + 24 + 1) / 210
    t = churn_by_segment(units_table(), ["industry"]).set_index("value")
    m = t.loc["manufacturing"]
    assert m.rest_rate == pytest.approx(1 / 6) and m.difference == pytest.approx(0.75 - 1 / 6)
    assert list(t["test"]) == ["fisher", "fisher"] and t["z"].isna().all()
    assert list(t["p_value"]) == pytest.approx([40 / 210] * 2, abs=1e-9)
    # one two-valued dimension = one test: q = p
    assert list(t["q_value"]) == pytest.approx([40 / 210] * 2, abs=1e-9)
    assert not t["differs"].any()


def test_large_segments_use_the_pooled_z_test():
    # 20 accounts (10 churned) vs 30 (5 churned): expected cells 6, 14, 9, 21, all >= 5.
    # pooled p = 15/50 = 0.3; se = sqrt(0.3 * 0.7 * (1/20 + 1/30)) = sqrt(0.0175); z = (0.5 - 1/6) / se
    units = pd.DataFrame({"industry": ["a"] * 20 + ["b"] * 30,
                          "churned": [True] * 10 + [False] * 10 + [True] * 5 + [False] * 25})
    t = churn_by_segment(units, ["industry"]).set_index("value")
    assert list(t["test"]) == ["z", "z"]
    assert t.loc["a", "z"] == pytest.approx(2.5197632, abs=1e-6)
    assert t.loc["b", "z"] == pytest.approx(-2.5197632, abs=1e-6)
    assert t.loc["a", "p_value"] == pytest.approx(0.0117434, abs=1e-6)  # erfc(z / sqrt 2)


def fisher_two_sided(k: int, n: int, churned: int, total: int) -> float:
    """Fisher's two-sided p from the hypergeometric formula: sum of P(X = x) <= P(X = k)."""
    prob = [math.comb(churned, x) * math.comb(total - churned, n - x) / math.comb(total, n) for x in range(n + 1)]
    return sum(q for q in prob if q <= prob[k] * (1 + 1e-9))


def test_benjamini_hochberg_counts_a_two_valued_dimension_once():
    # industry (2 values): one test, p = 40/210. region (3 values), each vs the rest, N = 10, K = 4:
    #   north 3/3: P(X=3) = 4/120 is the smallest of 20, 60, 36, 4 (/120) -> p = 4/120
    #   south 1/3: P(X=1) = 60/120 is the largest -> p = 1
    #   west 0/4: P(X=0) = 15/210; P <= 15/210: x = 0 and x = 4 (1/210) -> p = 16/210
    # family of 4: sorted 4/120, 16/210, 40/210, 1 -> p * 4 / rank = 2/15, 32/210, 16/63, 1 (already monotone)
    units = units_table().assign(region=["north"] * 3 + ["south"] * 3 + ["west"] * 4)
    t = churn_by_segment(units, ["industry", "region"]).set_index(["dimension", "value"])
    assert t.loc[("region", "north"), "p_value"] == pytest.approx(4 / 120, abs=1e-9)
    assert t.loc[("region", "south"), "p_value"] == pytest.approx(1.0, abs=1e-9)
    assert t.loc[("region", "west"), "p_value"] == pytest.approx(16 / 210, abs=1e-9)
    assert fisher_two_sided(0, 4, 4, 10) == pytest.approx(16 / 210)  # the helper agrees with the hand sum
    assert t.loc[("region", "north"), "q_value"] == pytest.approx(2 / 15, abs=1e-9)
    assert t.loc[("region", "west"), "q_value"] == pytest.approx(32 / 210, abs=1e-9)
    assert t.loc[("region", "south"), "q_value"] == pytest.approx(1.0, abs=1e-9)
    assert t.loc[("industry", "manufacturing"), "q_value"] == pytest.approx(16 / 63, abs=1e-9)
    assert t.loc[("industry", "software"), "q_value"] == pytest.approx(16 / 63, abs=1e-9)
    # counted twice (a family of 5) industry's q would be 40/210 * 5/4 = 0.238, north's 4/120 * 5 = 0.167
    assert set(t["test"]) == {"fisher"}
    for (dim, value), r in t.iterrows():
        rows = units[dim] == value
        assert r.p_value == pytest.approx(fisher_two_sided(int(units.loc[rows, "churned"].sum()), int(rows.sum()),
                                                           4, 10), abs=1e-9)


def test_benjamini_hochberg_on_known_p_values():
    # sorted 0.005, 0.01, 0.03, 0.04 -> p * 4 / rank = 0.02, 0.02, 0.04, 0.04 (then monotone)
    q = bh_qvalues([0.01, 0.04, np.nan, 0.03, 0.005])
    assert q[[0, 1, 3, 4]] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert np.isnan(q[2])


def test_a_segment_that_is_everyone_is_not_tested():
    t = churn_by_segment(units_table().assign(region="EMEA"), ["region"])
    assert t.loc[0, "accounts"] == 10 and np.isnan(t.loc[0, "p_value"]) and np.isnan(t.loc[0, "q_value"])


def test_kaplan_meier_on_a_tiny_hand_case():
    # durations 2, 3, 3+, 5, 8+: S(2) = 4/5, S(3) = 4/5 * 3/4 = 0.6, S(5) = 0.6 * 1/2 = 0.3; median 5
    lives = pd.DataFrame({"g": "x", "duration": [2.0, 3, 3, 5, 8], "churned": [True, True, False, True, False],
                          "entry": 0.0})
    curves, summary = kaplan_meier(lives, "g", at_days=(4, 6, 9))
    s = curves.set_index("days")["survival"]
    assert s[2.0] == pytest.approx(0.8) and s[3.0] == pytest.approx(0.6) and s[5.0] == pytest.approx(0.3)
    row = summary.iloc[0]
    assert row.median_lifetime_days == 5.0 and row.relationships == 5 and row.churned == 3
    assert row.survival_4d == pytest.approx(0.6) and row.survival_6d == pytest.approx(0.3)
    assert np.isnan(row.survival_9d)  # beyond the longest follow-up


def test_kaplan_meier_delayed_entry_leaves_early_days_to_those_observed():
    # b enters at day 4 (began before the data): at day 2 only a and c are at risk -> S(2) = 1/2
    lives = pd.DataFrame({"g": "x", "duration": [2.0, 6, 7], "churned": [True, True, False],
                          "entry": [0.0, 4, 0]})
    curves, summary = kaplan_meier(lives, "g")
    s = curves.set_index("days")["survival"]
    assert s[2.0] == pytest.approx(0.5)
    assert s[6.0] == pytest.approx(0.5 * 1 / 2)  # at day 6: b and c at risk, b churns


def test_lifetimes_stop_everyone_a_grace_period_before_the_data_end():
    # data end 2025-01-01, grace 30: observation stops on 2024-12-02 for every relationship
    rel = pd.DataFrame({
        "account_id": ["a", "b", "c", "d", "e", "f", "g"],
        "rel_start": pd.to_datetime(["2024-01-11", "2023-12-22", "2024-02-01", "2023-01-01", "2024-03-01",
                                     "2024-06-01", "2024-12-10"]),
        "rel_end": pd.to_datetime(["2024-03-01", None, "2024-12-20", "2023-06-01", "2025-02-01", "2024-12-02",
                                   None]),
    })
    lives = lifetimes(rel, D(2024, 1, 1), D(2025, 1, 1), grace_days=30).set_index("account_id")
    assert list(lives.index) == ["a", "b", "c", "e", "f"]  # d ended before the data; g began after the stop
    assert (lives.loc["a", "duration"], lives.loc["a", "churned"], lives.loc["a", "entry"]) == (50, True, 0)
    # open: 2023-12-22 .. 2024-12-02 = 10 + 336 days, entered on day 10
    assert (lives.loc["b", "duration"], lives.loc["b", "churned"], lives.loc["b", "entry"]) == (346, False, 10)
    # ends inside the last grace period: censored on 2024-12-02 like the open ones (Feb 1 .. Dec 2 = 305)
    assert (lives.loc["c", "duration"], lives.loc["c", "churned"]) == (305, False)
    assert (lives.loc["e", "duration"], lives.loc["e", "churned"]) == (276, False)  # Mar 1 .. Dec 2
    # ends exactly on the stop day: final, churned (Jun 1 .. Dec 2 = 184)
    assert (lives.loc["f", "duration"], lives.loc["f", "churned"]) == (184, True)


# -- churn units from hand-built subscriptions through the real loader ---------------------

def sub(acc, start, end):
    return dict(account_id=acc, start_date=start, end_date=end, mrr=100.0)


SUBS = [
    sub("a1", D(2023, 6, 1), D(2024, 3, 1)),                                        # churns 2024-03-01
    sub("a2", D(2024, 1, 1), D(2024, 2, 10)), sub("a2", D(2024, 2, 25), D(2024, 12, 1)),  # renews inside grace
    sub("a3", D(2022, 1, 1), D(2024, 4, 15)), sub("a3", D(2024, 6, 1), None),         # churns, comes back later
    sub("a4", D(2024, 3, 1), None),                                                  # signs up inside the window
    sub("a5", D(2023, 1, 1), None),                                                  # stays
    sub("a6", D(2024, 1, 15), D(2024, 5, 1)),                                        # churns on the window end
    sub("a7", D(2023, 12, 1), D(2024, 1, 25)), sub("a7", D(2024, 2, 10), None),        # in a renewal gap on Feb 1
]
ACCOUNTS = [
    dict(account_id="a1", industry="manufacturing", employees=30, channel="partner"),
    dict(account_id="a2", industry="manufacturing", employees=120, channel="partner"),
    dict(account_id="a3", industry="software", employees=1200),
    dict(account_id="a4", industry="software", employees=10),
    dict(account_id="a5", industry="software"),
    dict(account_id="a6", employees=10),
    dict(account_id="a7", industry="software", employees=10),
]
EVENTS = [dict(account_id="a5", user_id="u", occurred_at=T(2024, 1, 1, 8), event_type="login"),
          dict(account_id="a5", user_id="u", occurred_at=T(2024, 12, 31, 8), event_type="login")]
FEEDBACK = [
    dict(account_id="a1", churned_at=D(2024, 3, 1), reason_category="price", avoidable=True),
    dict(account_id="a3", churned_at=D(2024, 4, 15), reason_category="service", avoidable=True),
    dict(account_id="a6", churned_at=D(2024, 5, 1), reason_category="business_change", avoidable=False),
    dict(account_id="a4", churned_at=D(2024, 7, 1), reason_category="product"),          # outside the window
]
WINDOW = Window(D(2024, 2, 1), D(2024, 5, 1))


@pytest.fixture(scope="module")
def diag(tmp_path_factory):
    folder = write_tables(tmp_path_factory.mktemp("diag") / "d", {
        "subscriptions": SUBS, "events": EVENTS, "accounts": ACCOUNTS, "churn_feedback": FEEDBACK})
    return build_diagnosis(folder, settings(), window=WINDOW)


def test_units_are_accounts_active_at_the_window_start(diag):
    u = diag.units.set_index("account_id")
    assert list(u.index) == ["a1", "a2", "a3", "a5", "a6"]  # a4 signs up later; no a7 term covers Feb 1
    assert u["churned"].to_dict() == {"a1": True, "a2": False, "a3": True, "a5": False, "a6": True}
    assert u["tenure_days"].to_dict() == {"a1": 245, "a2": 31, "a3": 761, "a5": 396, "a6": 17}
    assert u["tenure_band"].to_dict() == {"a1": "3-12 months", "a2": "0-3 months", "a3": "2+ years",
                                          "a5": "1-2 years", "a6": "0-3 months"}
    assert u["size_band"].to_dict() == {"a1": "1-49", "a2": "50-249", "a3": "1000+", "a5": "unknown", "a6": "1-49"}
    assert u.loc["a6", "industry"] == "unknown" and u.loc["a3", "channel"] == "unknown"
    assert diag.overall_rate == pytest.approx(3 / 5)


def test_segment_figures_from_the_loaded_data(diag):
    t = diag.by_segment.set_index(["dimension", "value"])
    manu = t.loc[("industry", "manufacturing")]
    assert (manu.accounts, manu.churned, manu.churn_rate) == (2, 1, 0.5)
    onboarding = t.loc[("tenure_band", "0-3 months")]
    assert (onboarding.accounts, onboarding.churned) == (2, 1)
    software = t.loc[("industry", "software")]
    assert (software.accounts, software.churned) == (2, 1)
    # the ordinal bands keep their order
    assert list(diag.by_segment.query("dimension == 'tenure_band'")["value"]) == [
        "0-3 months", "3-12 months", "1-2 years", "2+ years"]


def test_exit_reasons_and_the_avoidable_share(diag):
    reasons, flags = diag.reasons.set_index("reason_category"), diag.avoidable.set_index("flag")
    assert sorted(reasons.index) == ["business_change", "price", "service"]  # product is outside the window
    assert reasons["interviews"].sum() == 3
    assert (reasons.loc["price", "ci_low"], reasons.loc["price", "ci_high"]) == pytest.approx(WILSON[(1, 3)],
                                                                                           abs=1e-6)
    assert flags.loc["avoidable", "interviews"] == 2 and flags.loc["avoidable", "share"] == pytest.approx(2 / 3)
    assert (flags.loc["avoidable", "ci_low"], flags.loc["avoidable", "ci_high"]) == pytest.approx(WILSON[(2, 3)],
                                                                                               abs=1e-6)
    assert diag.definitions()["interview_coverage"] == 1.0  # 3 relationships ended in the window, 3 interviews


def test_exit_reasons_without_flags_count_unknown():
    fb = pd.DataFrame({"account_id": ["x"], "churned_at": [D(2024, 3, 1)], "reason_category": [None],
                       "avoidable": [None]})
    reasons, flags = exit_reasons(fb, WINDOW)
    assert reasons.iloc[0]["reason_category"] == "unknown" and reasons.iloc[0]["avoidable_unknown"] == 1
    assert flags.set_index("flag").loc["unknown", "interviews"] == 1


def test_windows_must_end_a_grace_period_before_the_data_end():
    assert default_window(D(2024, 1, 1), D(2026, 1, 1), 30) == Window(D(2024, 12, 1), D(2025, 12, 1))
    assert default_window(D(2025, 6, 10), D(2026, 1, 1), 30) == Window(D(2025, 6, 10), D(2025, 12, 1))
    with pytest.raises(DiagnosisError, match="could still renew"):
        check_window(Window(D(2024, 2, 1), D(2024, 12, 15)), D(2024, 1, 1), D(2025, 1, 1), 30)
    with pytest.raises(DiagnosisError, match="before the data start"):
        check_window(Window(D(2023, 2, 1), D(2024, 2, 1)), D(2024, 1, 1), D(2025, 1, 1), 30)


def test_write_diagnosis_writes_tables_charts_and_definitions(diag, tmp_path):
    paths = write_diagnosis(diag, tmp_path / "out")
    for key in ("churn_by_segment", "churn_by_segment_png", "churn_over_time_png", "exit_reasons_png",
                "definitions"):
        assert paths[key].exists() and paths[key].stat().st_size > 0
    assert paths["churn_by_segment_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = pd.read_csv(paths["churn_by_segment"])
    assert len(saved) == len(diag.by_segment)


def test_churn_units_take_accounts_a_term_covers_at_start():
    # a: term from Feb 1 (covers it); b: starts Feb 2; c: in a renewal gap (Jan 20 .. Feb 5) of one relationship
    rel = pd.DataFrame({"account_id": ["a", "b", "c"], "rel_no": [1, 1, 1],
                        "rel_start": pd.to_datetime(["2024-02-01", "2024-02-02", "2023-06-01"]),
                        "rel_end": pd.to_datetime(["2024-02-02", None, None])})
    terms = pd.DataFrame({"account_id": ["a", "b", "c", "c"], "rel_no": [1, 1, 1, 1],
                          "start": pd.to_datetime(["2024-02-01", "2024-02-02", "2023-06-01", "2024-02-05"]),
                          "end": pd.to_datetime(["2024-02-02", None, "2024-01-20", None])})
    u = churn_units(rel, terms, None, Window(dt.date(2024, 2, 1), dt.date(2024, 3, 1)))
    assert list(u["account_id"]) == ["a"] and bool(u.loc[0, "churned"])


def test_a_one_month_window_agrees_with_the_monthly_churn_metrics(tmp_path):
    # active on 2024-02-01: a1, a2, a3, a5, a6 (a7 is in a renewal gap, a4 not yet); churned by Mar 1: a1
    folder = write_tables(tmp_path / "d", {"subscriptions": SUBS, "events": EVENTS, "accounts": ACCOUNTS})
    d = build_diagnosis(folder, settings(), window=Window(D(2024, 2, 1), D(2024, 3, 1)))
    assert (len(d.units), int(d.units["churned"].sum())) == (5, 1)
    feb = d.monthly[pd.to_datetime(d.monthly["month"]) == pd.Timestamp("2024-02-01")].iloc[0]
    assert (feb.accounts_start, feb.churned) == (5, 1)


def test_the_plan_in_force_at_the_window_start_is_a_dimension():
    """A probe's export churned 27.5% on its starter plan against 12.6% on business; no dimension said so."""
    n = 400
    ids = [f"a{i:03d}" for i in range(n)]
    starter = np.arange(n) % 2 == 0
    k = np.arange(n) // 2  # each plan's own count
    churned = np.where(starter, k % 10 < 3, k % 10 < 1)  # 30% vs 10%
    rel = pd.DataFrame({"account_id": ids, "rel_no": 1, "rel_start": pd.Timestamp("2023-01-01"),
                        "rel_end": [pd.Timestamp("2024-02-15") if c else pd.NaT for c in churned]})
    # an upgrade before the window: the plan in force at its start is the later term's
    terms = pd.concat([
        pd.DataFrame({"account_id": ids, "rel_no": 1, "start": pd.Timestamp("2023-01-01"),
                      "end": pd.Timestamp("2023-06-01"), "plan": "trial"}),
        pd.DataFrame({"account_id": ids, "rel_no": 1, "start": pd.Timestamp("2023-06-01"), "end": rel["rel_end"],
                      "plan": np.where(starter, "starter", "business")})], ignore_index=True)
    units = churn_units(rel, terms, None, Window(dt.date(2024, 1, 1), dt.date(2024, 12, 31)))
    assert sorted(units["plan"].unique()) == ["business", "starter"]
    table = churn_by_segment(units)
    plans = table[table["dimension"] == "plan"].set_index("value")
    assert plans.loc["starter", "churn_rate"] == 0.3 and plans.loc["business", "churn_rate"] == 0.1
    assert plans["differs"].all()
