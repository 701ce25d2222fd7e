"""A blank is a reason only where the blank itself goes with churn (issue 12 item 8). On a gym
members' flat table whose blanks are random, "No data on Distance to Club (km)" was a strength in
177 rows and "No data on Class Bookings" a risk in 203. The references now learn, per feature,
whether its blanks go with churn (+1) or with staying (-1), per account; "No data on X" is worded
only on that side, and the builder moves on to the group's next feature otherwise. A null whose
meaning is known is worded by that meaning on the side its place on the scale gives ("Never logged
in" a risk); one without such a place ("No rated tickets in the last 90 days") takes the same test."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.profile import ExtraColumn, profile_spec
from features.spec import Catalogue, build_catalogue
from training.reason_text import References, Row, word
from training.reasons import ReasonBuilder, fit_references, missing_side

DISTANCE, BOOKINGS = (profile_spec(ExtraColumn(table="accounts", column=c, kind="number", feature=f, alias=f), None)
                      for c, f in (("Distance to Club (km)", "distance_km"), ("Class Bookings", "class_bookings")))
CAT = Catalogue(features=(DISTANCE, BOOKINGS), event_types=())


def _members(n: int = 3000, blank_lost: float = 0.3, blank_kept: float = 0.05) -> pd.DataFrame:
    """One row per member (a flat table): distance blank at random (6%), bookings blank for those who
    churned and those who stayed at the rates given."""
    rng = np.random.default_rng(0)
    churned = rng.random(n) < 0.3
    distance = np.where(rng.random(n) < 0.06, np.nan, rng.gamma(2, 3, n))
    bookings = np.where(rng.random(n) < np.where(churned, blank_lost, blank_kept), np.nan, rng.poisson(6, n))
    return pd.DataFrame({"account_id": [f"{i:06d}" for i in range(n)], "churn_label": churned.astype(int),
                         "distance_km": distance, "class_bookings": bookings})


def test_the_references_learn_which_blanks_go_with_churn():
    refs = fit_references(_members(), CAT)
    assert refs["missing"] == {"class_bookings": +1}  # the random blanks of distance have no side
    assert fit_references(_members(blank_lost=0.1, blank_kept=0.3), CAT)["missing"] == {"class_bookings": -1}
    assert fit_references(_members(blank_lost=0.1, blank_kept=0.1), CAT)["missing"] == {}


def test_a_side_of_blanks_needs_enough_churned_accounts_on_both_sides():
    rows = _members()
    few = rows.assign(class_bookings=np.where((rows.churn_label == 1).cumsum().between(1, 20)
                                              & (rows.churn_label == 1), np.nan, 5.0))
    assert few.class_bookings.isna().sum() == 20  # 20 churned members without a value, every other has 5
    assert "class_bookings" not in fit_references(few, CAT)["missing"]
    # 40 accounts on 3,000 rows: blanks of the accounts that churned, but only 12 churned accounts
    lost, kept = pd.Series([np.nan] * 300 + [1.0] * 300), pd.Series([1.0] * 2400)
    assert missing_side(lost, kept) == +1
    assert missing_side(lost, kept, np.arange(600) % 12, np.arange(2400) % 28) == 0


def _refs(missing: dict | None) -> References:
    return References(typical={}, category_churn={}, overall_churn=0.3, missing=missing)


def test_no_data_is_worded_only_on_the_side_its_blanks_go():
    row = Row({"class_bookings": None})
    assert word(BOOKINGS, None, +1, row, _refs({"class_bookings": +1}), "en") == "No data on Class Bookings"
    assert word(BOOKINGS, None, +1, row, _refs({"class_bookings": +1}), "zh-CN") == "客户属性「Class Bookings」：无数据"
    assert word(BOOKINGS, None, -1, row, _refs({"class_bookings": +1}), "en") is None
    assert word(DISTANCE, None, -1, Row({}), _refs({"class_bookings": +1}), "en") is None  # no side: no strength
    assert word(DISTANCE, None, +1, Row({}), _refs({"class_bookings": +1}), "en") is None  # nor risk
    assert word(DISTANCE, None, -1, Row({}), _refs({"distance_km": -1}), "en") == "No data on Distance to Club (km)"
    # an older bundle's references have no sides of blanks: worded on either side, as before
    assert word(DISTANCE, None, -1, Row({}), _refs(None), "en") == "No data on Distance to Club (km)"
    assert References.from_dict({"typical": {}}).missing is None


def test_a_null_of_known_meaning_is_worded_as_before():
    specs = {f.name: f for f in build_catalogue([]).features}
    refs = _refs({})
    row = Row({"mrr": 150.0, "logins_90d": 0.0})
    assert word(specs["days_to_term_end"], None, -1, row, refs, "en") == "No end date on the current term"
    assert word(specs["days_since_last_login"], None, +1, row, refs, "en") == "Never logged in"
    # without its evidence the null means nothing, and is "No data" on no learned side
    assert word(specs["days_to_term_end"], None, -1, Row({}), refs, "en") is None
    assert word(specs["days_to_term_end"], None, -1, Row({}), _refs({"days_to_term_end": -1}), "en") == (
        "No data on days_to_term_end")


def test_the_builder_moves_on_to_the_groups_next_feature():
    refs = fit_references(_members(), CAT)
    raw = pd.DataFrame({"distance_km": [np.nan, 2.0], "class_bookings": [np.nan, np.nan]})
    contribs = np.array([[0.4, 0.2, 0.0], [-0.3, 0.6, 0.0]])
    out = ReasonBuilder().fit(CAT, refs).explain(contribs, raw)
    assert [(r["feature"], r["text"]) for r in out[0]["reasons"]] == [("class_bookings", "No data on Class Bookings")]
    assert out[1]["strengths"] == [] and [r["text"] for r in out[1]["reasons"]] == ["No data on Class Bookings"]
    blanks = ReasonBuilder().fit(CAT, {**refs, "missing": {}}).explain(contribs, raw)
    assert blanks == [{"reasons": [], "strengths": []}] * 2


def test_no_invoice_paid_is_a_risk_or_nothing():
    """A probe's annual Stripe customers, invoiced once a year: their blank payment delay went with staying,
    and "No invoices paid in the last 90 days" was shown as a strength, reading as a warning sign."""
    specs = {f.name: f for f in build_catalogue([]).features}
    delay = specs["payment_delay_90d"]
    row = Row({"mrr": 150.0, "late_payments_90d": 0.0})  # invoices are known: the blank means none paid
    assert word(delay, None, -1, row, _refs({"payment_delay_90d": -1}), "en") is None
    assert word(delay, None, -1, row, _refs(None), "zh-CN") is None
    assert word(delay, None, +1, row, _refs({"payment_delay_90d": +1}), "en") == "No invoices paid in the last 90 days"


def test_a_known_null_without_a_place_on_the_scale_takes_the_same_test():
    """A probe's Intercom export: ratings blank in ~65% of conversations, and "No rated tickets in the
    last 90 days" (+0.06) among a healthy account's risks, though its blanks had no side in the
    training rows. A blank rating is not a low one: worded only on the side the rows show."""
    specs = {f.name: f for f in build_catalogue([]).features}
    row = Row({"tickets_30d": 2.0, "logins_90d": 0.0})
    for name in ("mean_csat_90d", "worst_csat_90d"):
        assert word(specs[name], None, +1, row, _refs({}), "en") is None
        assert word(specs[name], None, -1, row, _refs({}), "en") is None
        assert word(specs[name], None, +1, row, _refs({name: +1}), "en") == "No rated tickets in the last 90 days"
        assert word(specs[name], None, +1, row, _refs({name: +1}), "zh-CN") == "近90天没有已评分的工单"
        assert word(specs[name], None, -1, row, _refs({name: +1}), "en") is None
        assert word(specs[name], None, +1, row, _refs(None), "en") == "No rated tickets in the last 90 days"  # older
    # a null whose meaning has a place on the scale keeps its own side, and only that one unless learned
    assert word(specs["days_since_last_login"], None, +1, row, _refs({}), "en") == "Never logged in"
    assert word(specs["days_since_last_login"], None, -1, row, _refs({}), "en") is None
    assert word(specs["days_to_term_end"], None, +1, Row({"mrr": 9.0}), _refs({}), "en") is None
    assert word(specs["days_to_term_end"], None, +1, Row({"mrr": 9.0}), _refs({"days_to_term_end": +1}),
                "en") == "No end date on the current term"  # open-ended terms that do churn more
    # a rise from none of an event type: on the side its changes are (use: a strength), unless learned
    message = {f.name: f for f in build_catalogue(["message"]).features}["evt_message_30d_change"]
    rose = Row({"evt_message_30d": 4.0})
    text = "'message' events in the last 30 days after none in the 30 days before"
    assert word(message, None, -1, rose, _refs({}), "en") == text
    assert word(message, None, +1, rose, _refs({}), "en") is None
    learned = References(typical={}, category_churn={}, overall_churn=0.3, missing={},
                         direction={"evt_message_30d_change": +1})
    assert word(message, None, +1, rose, learned, "en") == text and word(message, None, -1, rose, learned, "en") is None


def test_the_builder_words_the_support_groups_next_feature_instead_of_a_blank_rating():
    catalogue = build_catalogue([])
    names = catalogue.names
    raw = pd.DataFrame([{n: np.nan for n in names} | {"tickets_30d": 3.0, "mean_csat_90d": np.nan,
                                                       "worst_csat_90d": np.nan, "tenure_days": 400.0}])
    contribs = np.zeros((1, len(names) + 1))
    contribs[0, names.index("mean_csat_90d")] = 0.06
    contribs[0, names.index("tickets_30d")] = 0.05
    refs = {"typical": {"tickets_30d": 0.0}, "category_churn": {}, "overall_churn": 0.03, "missing": {}}
    out = ReasonBuilder().fit(catalogue, refs).explain(contribs, raw)[0]
    assert [(r["feature"], r["text"]) for r in out["reasons"]] == [
        ("tickets_30d", "3 tickets in the last 30 days; a typical active account has 0")]
