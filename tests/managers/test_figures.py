"""The portfolio figures and the account view as pure functions on hand-built frames."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from core.settings import Settings
from insights.explain import ViewError, account_view, normalise_lang, normalise_tier, respond_label, sparkline
from insights.report import PRIORITY_ZH, _label, mrr_by, portfolio_frame, tier_movements, top_accounts, version_key

D1, D2 = dt.date(2025, 6, 2), dt.date(2025, 6, 9)


def _history() -> pd.DataFrame:
    rows = [  # account, as_of, probability, health, tier
        ("A", D1, 0.05, 85, "healthy"), ("A", D2, 0.40, 35, "high_risk"),
        ("B", D1, 0.20, 55, "medium_risk"), ("B", D2, 0.08, 70, "low_risk"),
        ("C", D1, 0.10, 65, "low_risk"), ("C", D2, 0.10, 65, "low_risk"),
        ("D", D1, 0.30, 45, "medium_risk"),  # gone on D2
        ("E", D2, 0.25, 50, "medium_risk"),  # new on D2
    ]
    reasons = [{"signal": "activity", "label": "Product activity", "text": "No login for 40 days",
                "contribution": 0.9, "feature": "days_since_last_login", "value": 40}]
    reasons_zh = [{**reasons[0], "label": "产品活跃度", "text": "已40天未登录"}]
    return pd.DataFrame([{
        "account_id": a, "as_of": d, "churn_probability": p, "health_score": h, "tier": t,
        "reasons_en": json.dumps(reasons), "strengths_en": "[]",
        "reasons_zh": json.dumps(reasons_zh, ensure_ascii=False), "strengths_zh": "[]",
        "playbook_action": f"action for {t}", "playbook_owner": "CSM", "respond_within": "4 hours",
        "model_version": "1", "scored_at": dt.datetime(2025, 6, 9)} for a, d, p, h, t in rows])


def _profiles() -> pd.DataFrame:
    mrr = {"A": 1000.0, "B": 500.0, "C": 200.0, "D": 300.0, "E": None}
    return pd.DataFrame([{"account_id": a, "as_of": d, "mrr": mrr[a], "csm": "Ann" if a in "AB" else "Bo",
                          "segment": "A" if a == "A" else "B", "industry": "retail", "region": "EMEA"}
                         for a in "ABCDE" for d in (D1, D2)])


def test_mrr_at_risk_per_tier_csm_and_segment():
    frame = portfolio_frame(_history(), _profiles(), D2)
    assert list(frame["account_id"]) == ["A", "B", "C", "E"]
    tiers = mrr_by(frame, "tier").set_index("tier")
    assert list(tiers.index) == ["healthy", "low_risk", "medium_risk", "high_risk"]  # every tier, in order
    assert tiers.loc["high_risk", "mrr_at_risk"] == pytest.approx(400.0)
    assert tiers.loc["low_risk", "mrr_at_risk"] == pytest.approx(500 * 0.08 + 200 * 0.10)
    assert tiers.loc["healthy", "accounts"] == 0 and tiers.loc["healthy", "mrr"] == 0
    assert tiers.loc["medium_risk", "accounts"] == 1 and tiers.loc["medium_risk", "mrr_at_risk"] == 0  # no MRR known
    csm = mrr_by(frame, "csm").set_index("csm")
    assert csm.loc["Ann", "mrr_at_risk"] == pytest.approx(400 + 40) and csm.loc["Ann", "high_risk"] == 1
    assert csm.loc["Ann", "share_at_risk"] == pytest.approx(440 / 1500)
    assert list(mrr_by(frame, "segment")["segment"]) == ["A", "B"]  # largest MRR at risk first


def test_top_accounts_rank_by_expected_loss_and_filter_by_tier():
    frame = portfolio_frame(_history(), _profiles(), D2)
    assert list(top_accounts(frame, 3)["account_id"]) == ["A", "B", "C"]
    assert list(top_accounts(frame, 10, "low_risk")["account_id"]) == ["B", "C"]
    assert list(top_accounts(frame, 10)["account_id"])[-1] == "E"  # unknown MRR last


def test_tier_movements_between_the_last_two_dates():
    m = tier_movements(_history(), D2)
    assert m.previous_as_of == D1 and m.gone == 1
    assert m.matrix.loc["healthy", "high_risk"] == 1 and m.matrix.loc["medium_risk", "low_risk"] == 1
    assert m.matrix.loc["low_risk", "low_risk"] == 1 and m.matrix.loc["new", "medium_risk"] == 1
    assert int(m.matrix.to_numpy().sum()) == 4
    changes = m.changes.set_index("account_id")
    assert set(changes.index) == {"A", "B"}
    assert bool(changes.loc["A", "worse"]) and not bool(changes.loc["B", "worse"])
    assert tier_movements(_history(), D1).previous_as_of is None  # one date: no movements


def test_account_view_in_both_languages():
    settings = Settings()
    en = account_view(_history(), "A", settings, "en", profiles=_profiles())
    assert (en.as_of, en.health_score, en.tier, en.health_change) == (D2, 35, "high_risk", -50)
    assert en.reasons[0]["text"] == "No login for 40 days" and en.reasons[0]["value"] == 40
    assert en.expected_mrr_loss == pytest.approx(400.0) and en.profile["csm"] == "Ann"
    assert list(en.trend["health_score"]) == [85, 35] and en.playbook["action"] == "action for high_risk"
    zh = account_view(_history(), "A", settings, "zh-CN", profiles=_profiles())
    assert zh.tier_label == "高风险" and zh.reasons[0]["text"] == "已40天未登录"
    assert zh.playbook["action"] == settings.playbooks["high_risk"].action_zh
    assert zh.playbook["respond_within"] == "4 小时" and zh.playbook["owner"] == "客户成功经理"
    old = account_view(_history(), "A", settings, "en", as_of=D1)
    assert old.tier == "healthy" and old.previous is None
    with pytest.raises(ViewError, match="'Z' has no score"):
        account_view(_history(), "Z", settings)


def test_tier_and_language_spellings():
    for spelling in ("high", "HIGH", "high_risk", "High-Risk", "high risk", "高风险"):
        assert normalise_tier(spelling) == "high_risk"
    assert normalise_tier("healthy") == "healthy" and normalise_tier("low") == "low_risk"
    with pytest.raises(ViewError, match="healthy, low_risk, medium_risk, high_risk"):
        normalise_tier("extreme")
    assert normalise_lang("zh") == normalise_lang("zh_CN") == "zh-CN" and normalise_lang(None) == "en"
    with pytest.raises(ViewError, match="en, zh-CN"):
        normalise_lang("fr")
    assert respond_label("3 working days", "zh-CN", 72) == "3 个工作日"
    assert respond_label("no deadline", "zh-CN", None) == "无时限"
    # a configured text: its own words where they are a number and a unit, else its hours (the review found
    # "within 4 hours" in English on the API and "4 小时" in the messages, and "best effort" in Chinese messages)
    assert respond_label("within 4 hours", "zh-CN", 4) == "4 小时" and respond_label("2 weeks", "zh-CN", 336) == "2 周"
    assert respond_label("same day", "zh-CN", 8) == "8 小时" and respond_label("best effort", "zh-CN", None) == "无时限"
    assert respond_label("same day", "en", 8) == "same day"
    assert sparkline([0, 50, 100]) == "▁▅█"


def test_trend_keeps_up_to_trend_points_scores():
    base = _history().query("account_id == 'A'").iloc[[0]]
    many = pd.concat([base.assign(as_of=D1 - dt.timedelta(days=7 * k), health_score=k) for k in range(40)])
    view = account_view(many, "A", Settings(), trend_points=40)
    assert len(view.trend) == 40 and list(view.trend["health_score"])[-3:] == [2, 1, 0]
    assert len(account_view(many, "A", Settings()).trend) == 26  # the default
    with pytest.raises(ViewError, match="has no score on or before 2000-01-01"):
        account_view(many, "A", Settings(), as_of=dt.date(2000, 1, 1))


def test_versions_sort_numerically_and_missing_ticket_fields_read_as_a_dash():
    assert sorted(["10", "9", "2", "bundle"], key=version_key) == ["2", "9", "10", "bundle"]
    assert max(["9", "10"], key=version_key) == "10"
    assert [_label(v, PRIORITY_ZH) for v in (float("nan"), None, "", " High ", "p1")] == ["–", "–", "–", "高", "p1"]
    assert _label(float("nan"), {}) == "–" and _label("bug", {}) == "bug"


def test_missing_attributes_read_as_the_placeholder():
    profiles = _profiles()
    profiles.loc[profiles["account_id"] == "C", "csm"] = None
    frame = portfolio_frame(_history(), profiles, D2, placeholder="（无）")
    assert frame.set_index("account_id").loc["C", "csm"] == "（无）"
    assert "（无）" in set(mrr_by(frame, "csm")["csm"])
