"""Reason rules on hand-built values: what may be worded as a risk or a strength, and how."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.spec import build_catalogue
from training.reason_text import References, Row, word
from training.reasons import ReasonBuilder, fit_references

CATALOGUE = build_catalogue(["message", "key_contact_left"])
SPECS = {f.name: f for f in CATALOGUE.features}
REFS = References(typical={"evt_message_90d": 14.0, "logins_30d": 9.0, "tickets_30d": 0.0},
                  category_churn={"industry": {"software": [0.12, 400], "retail": [0.05, 300], "mining": [0.5, 4]}},
                  overall_churn=0.08)


def w(name: str, value: object, side: int = +1, lang: str = "en", **row: object) -> str | None:
    return word(SPECS[name], value, side, Row({name: value, **row}), REFS, lang)


@pytest.mark.parametrize("change", [0.0, 0.004, -0.004])
def test_a_change_of_zero_percent_is_neither_a_risk_nor_a_strength(change):
    assert w("active_days_30d_change", change) is None
    assert w("active_days_30d_change", change, side=-1) is None
    assert w("evt_message_30d_change", change, evt_message_30d=10) is None
    assert w("payment_delay_change", 0.02) is None
    assert w("core_features_used_30d_change", 0) is None


def test_a_change_is_worded_only_on_the_side_its_direction_says():
    assert w("logins_30d_change", 0.2, logins_30d=60) is None  # more logins is no risk
    assert w("logins_30d_change", 0.2, side=-1, logins_30d=60) == "Logins up 20% vs the previous 30 days"
    assert w("logins_30d_change", -0.62, logins_30d=19) == "Logins down 62% vs the previous 30 days"
    assert w("logins_30d_change", -0.62, side=-1, logins_30d=19) is None


def test_a_change_on_a_tiny_base_is_no_reason():
    # down 100% from at most 1 event (the 90-day count bounds the previous 30 days)
    assert w("evt_key_contact_left_30d_change", -1.0, evt_key_contact_left_30d=0,
             evt_key_contact_left_90d=1) is None
    assert w("evt_message_30d_change", 1.0, side=-1, evt_message_30d=2) is None  # 1 -> 2: "up 100%"
    assert w("evt_message_30d_change", -1.0, evt_message_30d=0, evt_message_90d=40) == (
        "'message' events down 100% vs the previous 30 days")
    assert w("evt_message_30d_change", 0.5, side=-1, evt_message_30d=30, lang="zh-CN") == "'message'事件较前30天上升50%"


def test_a_product_events_side_is_use_unless_its_name_says_something_went_wrong():
    """Without a learned side, more use is no risk and less no strength; an event type named for a
    skip, an error or a cancellation lies the other way ("6 'Delivery Skipped' events" is a risk)."""
    specs = {f.name: f for f in build_catalogue(["Delivery Skipped", "api_error", "Menu Viewed"]).features}
    refs = References(typical={"evt_delivery_skipped_90d": 0.0, "evt_menu_viewed_90d": 3.0}, category_churn={},
                      overall_churn=0.06)

    def say(name, value, side, **row):
        return word(specs[name], value, side, Row({name: value, **row}), refs, "en")

    assert say("evt_delivery_skipped_90d", 6.0, +1) == (
        "6 'Delivery Skipped' events in the last 90 days; a typical active account has 0")
    assert say("evt_delivery_skipped_90d", 6.0, -1) is None
    assert say("evt_menu_viewed_90d", 8.0, +1) is None and say("evt_menu_viewed_90d", 0.0, -1) is None
    assert say("evt_menu_viewed_30d_change", -1.0, -1, evt_menu_viewed_30d=0, evt_menu_viewed_90d=40) is None
    assert say("evt_api_error_30d_change", 2.0, +1, evt_api_error_30d=30) == (
        "'api_error' events up 200% vs the previous 30 days")
    # a rise from none: of a skip a risk, of use a strength
    refs_missing = References(typical={}, category_churn={}, overall_churn=0.06,
                              missing={"evt_delivery_skipped_30d_change": 1, "evt_menu_viewed_30d_change": -1})
    after_none = Row({"evt_delivery_skipped_30d": 2, "evt_menu_viewed_30d": 3})
    skipped, viewed = specs["evt_delivery_skipped_30d_change"], specs["evt_menu_viewed_30d_change"]
    assert word(skipped, None, +1, after_none, refs_missing, "en") == (
        "'Delivery Skipped' events in the last 30 days after none in the 30 days before")
    assert word(skipped, None, -1, after_none, refs_missing, "en") is None
    assert word(viewed, None, -1, after_none, refs_missing, "en") == (
        "'Menu Viewed' events in the last 30 days after none in the 30 days before")
    assert word(viewed, None, +1, after_none, refs_missing, "en") is None
    # the blanks' own side is not the rise's (most blanks had none in either window): probes p57 and p59
    mixed = References(typical={}, category_churn={}, overall_churn=0.06,
                       missing={"evt_delivery_skipped_30d_change": -1, "evt_menu_viewed_30d_change": 1,
                                "logins_7d_change": 1})
    assert word(skipped, None, -1, after_none, mixed, "en") is None  # the first skips are no strength
    assert word(skipped, None, +1, after_none, mixed, "en") == (
        "'Delivery Skipped' events in the last 30 days after none in the 30 days before")
    assert word(viewed, None, +1, after_none, mixed, "en") is None
    logins = {f.name: f for f in CATALOGUE.features}["logins_7d_change"]
    assert word(logins, None, +1, Row({"logins_7d": 2}), mixed, "en") is None  # logging in again is no risk
    assert word(logins, None, -1, Row({"logins_7d": 2}), mixed, "zh-CN") is not None
    # with none now, the blank is no rise: "no data", judged by the blanks' side as before
    assert word(logins, None, +1, Row({"logins_7d": 0}), mixed, "en") == "No data on logins_7d_change"
    # a side the training rows show wins over the name
    learned = References(typical={"evt_delivery_skipped_90d": 0.0}, category_churn={}, overall_churn=0.06,
                         direction={"evt_delivery_skipped_90d": -1})
    assert word(specs["evt_delivery_skipped_90d"], 6.0, +1, Row({}), learned, "en") is None


def _count_90d(event_type: str):
    return next(f for f in build_catalogue([event_type]).features
                if f.name.startswith("evt_") and f.name.endswith("_90d"))


@pytest.mark.parametrize("event_type", ["reminder_disabled", "Integration Disconnected", "notifications turned off",
                                        "api_key_revoked", "seat_removed", "user-deleted"])
def test_an_event_type_named_for_pulling_back_lies_on_the_risk_side(event_type):
    """Probe p57: "1 'reminder_disabled' event in the last 90 days; a typical active account has 0" was a
    strength on 116 accounts of a meditation app (those rows churned 7.4% against 6.3%)."""
    from training.reason_text import usage_prior

    spec = _count_90d(event_type)
    assert usage_prior(spec) == 1
    refs = References(typical={spec.name: 0.0}, category_churn={}, overall_churn=0.06)
    assert word(spec, 1.0, -1, Row({}), refs, "en") is None
    assert word(spec, 1.0, +1, Row({}), refs, "en").startswith("1 '")


@pytest.mark.parametrize("event_type", ["item_removed_from_cart", "file_deleted", "lesson_completed",
                                        "turnover_report"])
def test_use_of_a_product_is_not_read_as_pulling_back(event_type):
    from training.reason_text import usage_prior

    spec = _count_90d(event_type)
    assert usage_prior(spec) == -1


def test_a_typical_count_is_quoted_as_a_whole_count():
    """The median of counts over the accounts that stayed can fall between two (6,287.5): quoted as a count."""
    refs = References(typical={"evt_message_90d": 6_287.5, "logins_30d": 0.5}, category_churn={}, overall_churn=0.08)

    def rw(name, value, **row):
        return word(SPECS[name], value, +1, Row({name: value, **row}), refs, "en")

    assert rw("evt_message_90d", 12) == ("Only 12 'message' events in the last 90 days; "
                                         "a typical active account has 6,288")
    assert rw("evt_message_90d", 6_288) is None  # the typical count itself
    assert rw("logins_30d", 0) == "0 logins in the last 30 days; a typical active account has 0.5"  # below 1: kept
    # a ratio counted per user keeps its decimals: 1.2 against a typical 1.4 is still "only"
    ratio = References(typical={"core_events_per_active_user_30d": 1.4}, category_churn={}, overall_churn=0.08)
    assert word(SPECS["core_events_per_active_user_30d"], 1.2, +1, Row({}), ratio, "en") == (
        "Only 1.2 core-feature uses per active user in 30 days; a typical active account has 1.4")


def test_a_change_needs_an_account_old_enough_for_the_previous_window():
    assert w("logins_30d_change", -0.5, logins_30d=20, tenure_days=45) is None
    assert w("logins_30d_change", -0.5, logins_30d=20, tenure_days=61) == "Logins down 50% vs the previous 30 days"


def test_counts_are_worded_against_the_typical_account():
    assert w("evt_message_90d", 1) == "Only 1 'message' event in the last 90 days; a typical active account has 14"
    assert w("evt_message_90d", 1, lang="zh-CN") == "近90天'message'事件1次；典型活跃客户为14"
    assert w("evt_message_90d", 0) == "0 'message' events in the last 90 days; a typical active account has 14"
    assert w("logins_30d", 30, side=-1) == "30 logins in the last 30 days; a typical active account has 9"
    assert w("tickets_30d", 3) == "3 tickets in the last 30 days; a typical active account has 0"


def test_a_count_no_worse_than_typical_is_no_risk():
    assert w("evt_message_90d", 14) is None  # typical: neither side
    assert w("evt_message_90d", 14, side=-1) is None
    assert w("logins_30d", 30) is None  # more logins than typical is no risk
    assert w("logins_30d", 3, side=-1) is None  # nor fewer a strength
    assert w("tickets_30d", 0) is None


def test_a_window_longer_than_the_account_says_so():
    """... without claiming the events came in its first days: a customer who came back 25 days ago has
    the window's events of its previous relationship."""
    assert w("evt_message_90d", 1, tenure_days=25) == "1 'message' event in the last 90 days (a customer for 25 days)"
    assert w("evt_message_90d", 1, tenure_days=25, lang="zh-CN") == "近90天'message'事件1次（成为客户25天）"
    assert w("active_days_30d", 3, tenure_days=12) == "Active on 3 of the last 30 days (a customer for 12 days)"
    assert w("core_events_per_active_user_30d", 2, tenure_days=1) == (
        "2 core-feature uses per active user in 30 days (a customer for 1 day)")
    assert w("evt_message_7d", 1, tenure_days=25) == "1 'message' event in the last 7 days"  # the window fits
    assert w("logins_30d", 0, tenure_days=6) == "0 logins in the last 30 days (a customer for 6 days)"
    assert w("logins_30d", 10, tenure_days=6) is None  # above a typical account's 9 logins pro-rated to 6 days


def test_a_category_is_a_risk_only_with_a_higher_churn_rate():
    assert w("industry", "software") == "Industry: software; churn is higher in software: 12% vs 8.0% overall"
    assert w("industry", "software", lang="zh-CN") == "行业：software；该类客户流失率更高：12%，整体8.0%"
    assert w("industry", "retail") is None
    assert w("industry", "retail", side=-1) == "Industry: retail; churn is lower in retail: 5.0% vs 8.0% overall"
    assert w("industry", "mining") is None  # 4 training rows: no rate worth quoting
    assert w("industry", "unseen") is None
    assert word(SPECS["industry"], "software", +1, Row({}), References({}, {}, None), "en") is None


def test_a_category_of_snapshot_labels_names_their_horizon():
    """"17% vs 11% overall" of what? Snapshot labels are churn within the horizon; a flat table's label has none."""
    refs = References(typical={}, category_churn={"industry": {"software": [0.12, 300]}}, overall_churn=0.08,
                      horizon_days=60)
    assert word(SPECS["industry"], "software", +1, Row({}), refs, "en") == (
        "Industry: software; churn within 60 days is higher in software: 12% vs 8.0% overall")
    assert word(SPECS["industry"], "software", +1, Row({}), refs, "zh-CN") == (
        "行业：software；该类客户60天内流失率更高：12%，整体8.0%")
    assert References.from_dict({"overall_churn": 0.08, "horizon_days": 90}).horizon_days == 90
    assert References.from_dict({"overall_churn": 0.08}).horizon_days is None  # an older bundle: as before


@pytest.mark.parametrize(("rate", "worded"), [(0.28, False), (0.29, False), (0.30, True), (0.24, False)])
def test_a_category_barely_apart_from_the_overall_rate_is_no_reason(rate, worded):
    """28% against 27% overall is a filler (PaperlessBilling: Yes on a telecom table): a category is
    quoted only when its rate is at least a tenth of the overall rate away from it."""
    refs = References(typical={}, category_churn={"industry": {"yes": [rate, 3000]}}, overall_churn=0.27)
    text = word(SPECS["industry"], "yes", +1, Row({"industry": "yes"}), refs, "en")
    assert (text is not None) == worded
    if worded:
        assert text.endswith("churn is higher in yes: 30% vs 27% overall")


def test_a_flag_is_worded_only_when_set_and_on_its_side():
    assert w("ticket_silence", 1) == "A regular ticket writer has gone silent"
    assert w("ticket_silence", 0) is None
    assert w("ticket_silence", 1, side=-1) is None


def test_a_missing_value_is_worded_as_missing_on_either_side():
    assert w("days_to_term_end", None, mrr=150.0) == "No end date on the current term"
    assert w("days_to_term_end", float("nan"), side=-1, lang="zh-CN", mrr=150.0) == "当前订阅期没有到期日"
    assert w("tickets_30d", None) == "No data on tickets_30d"


def test_a_null_means_what_its_definition_says_only_when_the_row_shows_it():
    # a request that leaves features out: their nulls mean nothing
    assert w("days_to_term_end", None) == "No data on days_to_term_end"
    assert w("logins_30d_change", None) == "No data on logins_30d_change"
    assert w("logins_30d_change", None, logins_30d=0.0) == "No data on logins_30d_change"
    assert w("logins_30d_change", None, side=-1, logins_30d=4.0) == (
        "Logins in the last 30 days after none in the 30 days before")
    assert w("evt_message_30d_change", None, side=-1, evt_message_30d=2.0, lang="zh-CN") == (
        "前30天无'message'事件，近30天有")
    assert w("logins_30d_change", None, logins_30d=4.0) is None  # a rise of logins from none is no risk
    assert w("core_events_per_active_user_30d", None, active_users_30d=0.0) == "No active users in the last 30 days"
    assert w("core_events_per_active_user_30d", None, active_users_30d=3.0) == (
        "No data on core_events_per_active_user_30d")


def _contribs(**by_name: float) -> np.ndarray:
    row = np.zeros(len(CATALOGUE.names) + 1)
    for name, c in by_name.items():
        row[CATALOGUE.names.index(name)] = c
    return row[None, :]


def _raw(**values: object) -> pd.DataFrame:
    row = {n: (None if SPECS[n].type == "category" else np.nan) for n in CATALOGUE.names}
    return pd.DataFrame([{**row, **values}])


def _builder(**kw) -> ReasonBuilder:
    refs = {"typical": dict(REFS.typical), "category_churn": REFS.category_churn, "overall_churn": 0.08}
    return ReasonBuilder(**kw).fit(CATALOGUE, refs)


def test_a_reason_names_the_feature_that_carries_the_contribution():
    # the renewal group lowers the risk through a missing term end; the overdue invoice adds nothing
    raw = _raw(days_to_term_end=np.nan, days_overdue=40.0, logins_30d=2.0, tenure_days=400.0, mrr=150.0)
    out = _builder().explain(_contribs(days_to_term_end=-0.5, days_overdue=0.0, logins_30d=0.3), raw)[0]
    strength, = out["strengths"]
    assert strength["feature"] == "days_to_term_end" and strength["value"] is None
    assert strength["text"] == "No end date on the current term" and strength["contribution"] == -0.5
    reason, = out["reasons"]
    assert (reason["feature"], reason["value"], reason["contribution"]) == ("logins_30d", 2.0, 0.3)
    assert reason["text"] == "Only 2 logins in the last 30 days; a typical active account has 9"


def test_a_group_reports_its_own_sum_and_gives_no_item_against_it():
    raw = _raw(logins_30d=2.0, active_days_30d=20.0, logins_7d=30.0, tenure_days=400.0)
    out = _builder().explain(_contribs(logins_30d=0.4, active_days_30d=-0.1, logins_7d=-0.2), raw)[0]
    assert [(r["feature"], r["contribution"], round(r["group_contribution"], 9)) for r in out["reasons"]] == [
        ("logins_30d", 0.4, 0.1)]
    assert out["strengths"] == []  # the activity group raised the risk on balance


def test_an_unwordable_lead_gives_way_to_the_next_feature_of_its_group():
    raw = _raw(active_days_30d_change=0.0, logins_30d=2.0, tenure_days=400.0)
    out = _builder().explain(_contribs(active_days_30d_change=0.6, logins_30d=0.2), raw)[0]
    assert [r["feature"] for r in out["reasons"]] == ["logins_30d"]
    assert "0%" not in out["reasons"][0]["text"]


def test_contributions_below_the_minimum_are_no_reasons():
    raw = _raw(days_to_term_end=5.0, logins_30d=2.0, tenure_days=400.0)
    contribs = _contribs(days_to_term_end=0.03, logins_30d=0.06)
    assert [r["feature"] for r in _builder().explain(contribs, raw)[0]["reasons"]] == ["logins_30d"]
    assert _builder(min_contribution=0.1).explain(contribs, raw)[0]["reasons"] == []
    assert [r["feature"] for r in _builder(min_contribution=0.01).explain(contribs, raw)[0]["reasons"]] == [
        "logins_30d", "days_to_term_end"]


def test_references_are_learned_from_the_accounts_that_stayed():
    rows = pd.DataFrame({"churn_label": [0, 0, 0, 1, 1, 0], "logins_30d": [10, 12, 30, 0, 1, np.nan],
                         "industry": ["a", "a", "b", "b", "b", None]})
    cat = build_catalogue([])
    refs = fit_references(rows, cat)
    assert refs["typical"] == {"logins_30d": 12.0}
    assert refs["overall_churn"] == pytest.approx(2 / 6)
    assert refs["category_churn"]["industry"] == {"a": [0.0, 2], "b": [pytest.approx(2 / 3), 3]}
    assert refs["min_contribution"] == 0.05


def test_a_company_number_is_worded_against_the_typical_value_of_those_who_stayed():
    from features.spec import FeatureSpec

    spec = FeatureSpec(name="nps", group="profile", type="float", unit="value", definition="column 'nps'",
                       direction=0, valid_range=(None, None), reason_en="nps: {value}", reason_zh="nps：{value}")
    refs = References(typical={"nps": 40.0}, category_churn={}, overall_churn=0.1)
    assert word(spec, 12.0, +1, Row({}), refs, "en") == "nps: 12 (typical of those who stayed: 40)"
    assert word(spec, 12.0, +1, Row({}), refs, "zh-CN") == "nps：12（未流失客户典型值：40）"
    assert word(spec, 40.0, +1, Row({}), refs, "en") is None


def test_a_strength_is_worded_as_one():
    """Probe p18: "No login for 1 day" was a strength of 656 accounts, and "Age: 61 (typical of those who
    stayed: 34)" a strength that reads as a contradiction (no side known for the column)."""
    from features.spec import FeatureSpec

    assert w("days_since_last_login", 1.0, side=-1) == "Last login 1 day ago"
    assert w("days_since_last_login", 1.0, side=-1, lang="zh-CN") == "上次登录在1天前"
    assert w("days_since_last_login", 12.0, side=+1) == "No login for 12 days"
    spec = FeatureSpec(name="age", group="profile", type="float", unit="value", definition="column 'age'",
                       direction=0, valid_range=(None, None), reason_en="Age: {value}", reason_zh="年龄：{value}")
    refs = References(typical={"age": 34.0}, category_churn={}, overall_churn=0.1)
    assert word(spec, 61.0, -1, Row({}), refs, "en") == "Age: 61"  # a strength, no side known: no comparison
    assert word(spec, 61.0, +1, Row({}), refs, "en") == "Age: 61 (typical of those who stayed: 34)"
    sided = References(typical={"age": 34.0}, category_churn={}, overall_churn=0.1, direction={"age": -1})
    assert word(spec, 61.0, -1, Row({}), sided, "en") == "Age: 61 (typical of those who stayed: 34)"


def test_a_share_above_one_is_still_a_percentage():
    """"2.0 of seats in use" / "席位使用率2.0" beside "150% of seats in use" (a probe: 262 of 629 accounts
    had more active users than seats)."""
    refs = References(typical={"active_users_per_seat": 0.4}, category_churn={}, overall_churn=0.1)
    spec = SPECS["active_users_per_seat"]
    assert word(spec, 2.0, -1, Row({"active_users_per_seat": 2.0}), refs, "en").startswith("200% of seats in use")
    assert word(spec, 2.0, -1, Row({"active_users_per_seat": 2.0}), refs, "zh-CN").startswith("席位使用率200%")


def test_a_paused_customers_null_term_end_is_worded_as_the_pause():
    """Probe p54 (Paddle pauses sent as ``plan: paused`` terms): the null term end carried +0.69 and the paused
    plan +0.47, the two largest contributions of a high-risk customer, and neither was worded; the CSM read
    "Only 50% of seats in use" and an executive-visit playbook."""
    from training.reason_text import WordCache

    refs = References(typical={}, category_churn={}, overall_churn=0.016, missing={}, paused_plans=("paused",))
    spec = SPECS["days_to_term_end"]
    paused = Row({"days_to_term_end": None, "plan": "Paused", "mrr": 35.0})
    assert word(spec, None, +1, paused, refs, "en") == "Subscription paused"
    assert word(spec, None, +1, paused, refs, "zh-CN") == "订阅已暂停"
    assert word(spec, None, -1, paused, refs, "en") is None  # a pause is never a strength
    running = Row({"days_to_term_end": None, "plan": "Enterprise", "mrr": 35.0})  # open-ended: as before
    assert word(spec, None, -1, running, refs, "en") == "No end date on the current term"
    assert word(spec, None, +1, running, refs, "en") is None
    # a batch words each case once: the pause is part of the case
    cache, j = WordCache(CATALOGUE.features, refs, "en"), CATALOGUE.names.index("days_to_term_end")
    assert cache.word(j, None, +1, paused) == "Subscription paused" and cache.word(j, None, +1, running) is None
    assert References.from_dict({"paused_plans": ["paused"]}).paused_plans == ("paused",)
    assert References.from_dict({}).paused_plans == ()  # an older bundle: no pause worded


def test_none_of_a_count_is_worded_as_none_not_only_zero():
    """Probe p54: "Only 0 core features used in the last 30 days"."""
    assert w("core_features_used_30d", 0.0) == "No core features used in the last 30 days"
    assert w("core_features_used_30d", 0.0, lang="zh-CN") == "近30天未使用核心功能"
    assert w("core_features_used_30d", 1.0) == "Only 1 core feature used in the last 30 days"


def test_no_invoice_overdue_is_said_so():
    """Probe p56: "An invoice is 0 days overdue" / "有发票已逾期0天" as a strength of 45 customers with nothing open."""
    assert w("days_overdue", 0.0, side=-1) == "No invoice overdue"
    assert w("days_overdue", 0.0, side=-1, lang="zh-CN") == "没有逾期发票"
    assert w("days_overdue", 12.0, side=+1) == "An invoice is 12 days overdue"


def test_an_own_date_and_its_typical_value_are_said_in_one_unit():
    """Probe p58: "Signup Date: 5.6 years ago (typical of those who stayed: 625.5 days ago)"."""
    from features.spec import Catalogue
    from training.own_table import _date_spec
    from training.table_dates import DateReading

    spec = _date_spec("Signup Date", DateReading("text"))
    refs = References(typical={"Signup Date": 625.5}, category_churn={}, overall_churn=0.25,
                      direction={"Signup Date": -1})
    assert Catalogue(features=(spec,), event_types=()).names == ["Signup Date"]
    assert word(spec, 2045.0, -1, Row({}), refs, "en") == (
        "Signup Date: 5.6 years ago (typical of those who stayed: 1.7 years ago)")
    assert word(spec, 2045.0, -1, Row({}), refs, "zh-CN") == "Signup Date：5.6年前（未流失客户典型值：1.7年前）"
    assert word(spec, 40.0, +1, Row({}), refs, "en") == (
        "Signup Date: 40 days ago (typical of those who stayed: 626 days ago)")


def test_the_rise_from_none_rule_leaves_other_changes_nulls_as_they_were():
    """The review: "No MRR 90 days ago" and "No invoices paid in one of the last two 90-day periods" are nulls of a
    change too, but no rise from none: still worded by the blanks' side (or on either side for older bundles)."""
    refs = References(typical={}, category_churn={}, overall_churn=0.06,
                      missing={"mrr_change_90d": 1, "payment_delay_change": 1})
    mrr, delay = SPECS["mrr_change_90d"], SPECS["payment_delay_change"]
    assert word(mrr, None, +1, Row({"mrr": 100.0}), refs, "en") == "No MRR 90 days ago"
    assert word(mrr, None, -1, Row({"mrr": 100.0}), refs, "en") is None
    assert word(delay, None, +1, Row({"late_payments_90d": 0.0}), refs, "en") is not None
    older = References(typical={}, category_churn={}, overall_churn=0.06)  # no ``missing``: either side
    assert word(mrr, None, -1, Row({"mrr": 100.0}), older, "en") == "No MRR 90 days ago"


@pytest.mark.parametrize("event_type", ["return_offer_accepted", "user_removed_spam_comment", "members_deleted_draft"])
def test_names_that_only_contain_a_pulling_back_word_are_use(event_type):
    from training.reason_text import usage_prior

    assert usage_prior(_count_90d(event_type)) == -1


def test_a_recent_own_date_is_not_zero_years_ago():
    """The review: "Signup Date: 0 years ago (typical of those who stayed: 4.1 years ago)"."""
    from training.own_table import _date_spec
    from training.table_dates import DateReading

    spec = _date_spec("Signup Date", DateReading("text"))
    refs = References(typical={"Signup Date": 1500.0}, category_churn={}, overall_churn=0.25,
                      direction={"Signup Date": -1})
    assert word(spec, 12.0, +1, Row({}), refs, "en") == (
        "Signup Date: 12 days ago (typical of those who stayed: 4.1 years ago)")
    assert word(spec, -20.0, +1, Row({}), refs, "en") == (
        "Signup Date: in 20 days (typical of those who stayed: 4.1 years ago)")
