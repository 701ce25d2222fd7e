"""Reason wording: values rendered into the catalogue's templates, singular nouns for one."""

from __future__ import annotations

import pytest

from features.spec import build_catalogue
from training.reasons import render


@pytest.fixture(scope="module")
def specs():
    return {f.name: f for f in build_catalogue(["key_contact_left"]).features}


@pytest.mark.parametrize(("name", "value", "text"), [
    ("days_to_term_end", 1, "Term ends in 1 day"),
    ("days_to_term_end", 22, "Term ends in 22 days"),
    ("evt_key_contact_left_30d", 1, "1 'key_contact_left' event in the last 30 days"),
    ("evt_key_contact_left_30d", 2, "2 'key_contact_left' events in the last 30 days"),
    ("open_tickets", 1, "1 ticket still open"),
    ("late_payments_90d", 1, "1 late payment in the last 90 days"),
])
def test_english_reasons_use_the_singular_for_one(specs, name, value, text):
    assert render(specs[name], value, "en") == text


def test_a_term_ending_on_the_as_of_date_is_worded_as_due_today(specs):
    """A term ending on the as-of date is in force, its renewal due: "Term ends in 0 days" would read as
    a glitch."""
    assert render(specs["days_to_term_end"], 0, "en") == "Term ends today"
    assert render(specs["days_to_term_end"], 0.0, "zh-CN") == "订阅期今天到期"


def test_chinese_reasons_have_no_plural_to_fix(specs):
    assert render(specs["days_to_term_end"], 1, "zh-CN") == "订阅期1天后到期"


def test_a_missing_value_is_worded_as_what_the_null_means_or_as_no_data(specs):
    assert render(specs["days_to_term_end"], None, "en") == "No end date on the current term"
    assert render(specs["days_to_term_end"], float("nan"), "zh-CN") == "当前订阅期没有到期日"
    assert render(specs["days_since_last_login"], None, "en") == "Never logged in"
    assert render(specs["days_overdue"], None, "en") == "No data on days_overdue"
    assert render(specs["days_overdue"], None, "zh-CN") == "days_overdue：无数据"
    assert render(specs["evt_key_contact_left_30d_change"], None, "en") == (
        "'key_contact_left' events in the last 30 days after none in the 30 days before")


def test_differences_are_worded_as_more_or_fewer(specs):
    assert render(specs["core_features_used_30d_change"], -2, "en") == (
        "Core features used: 2 fewer than in the previous 30 days")
    assert render(specs["core_features_used_30d_change"], 1, "zh-CN") == "核心功能使用种类较前30天增加1个"
    assert render(specs["payment_delay_change"], 1, "en") == "Payment delay up 1 day vs the previous 90 days"
    assert render(specs["payment_delay_change"], -4.5, "zh-CN") == "付款延迟较前90天减少4.5天"


def test_event_names_with_braces_or_apostrophes_are_worded_literally():
    specs = {f.name: f for f in build_catalogue(["export {csv}", "user's export"]).features}
    assert render(specs["evt_export_csv_30d"], 1, "en") == "1 'export {csv}' event in the last 30 days"
    assert render(specs["evt_export_csv_30d"], 3, "zh-CN") == "近30天'export {csv}'事件3次"
    assert render(specs["evt_user_s_export_30d"], 1, "en") == "1 'user's export' event in the last 30 days"
    assert specs["evt_export_csv_30d"].params["event_type"] == "export {csv}"  # the SQL filters on the real name


def test_a_multiple_is_worded_as_a_multiple(specs):
    assert render(specs["tickets_30d_vs_baseline"], 1.0, "en") == "Tickets at 1.0x the account's usual rate"
    assert render(specs["tickets_30d_vs_baseline"], 2.5, "zh-CN") == "工单量为平时的2.5倍"


def test_strengths_drop_the_only(specs):
    assert render(specs["active_users_per_seat"], 0.87, "en") == "Only 87% of seats in use"
    assert render(specs["active_users_per_seat"], 0.87, "en", strength=True) == "87% of seats in use"
    # a share of 100% or more is no "only", as a risk too ("Only 150% of seats in use" read as a complaint)
    assert render(specs["active_users_per_seat"], 1.5, "en") == "150% of seats in use"
    assert render(specs["active_users_per_seat"], 1.5, "zh-CN") == "席位使用率150%"
    assert render(specs["active_users_per_seat"], 0.999, "en") == "100% of seats in use"
    assert render(specs["active_users_per_seat"], 0.99, "zh-CN") == "席位使用率仅99%"
    assert render(specs["active_users_per_seat"], 0.87, "zh-CN", strength=True) == "席位使用率87%"


def test_a_bundle_written_before_the_subscription_period_wording_reads_as_today():
    """The review: an older bundle's features.json keeps "合同{value}天后到期" while the code says "订阅期今天到期"."""
    import json

    from features.spec import Catalogue, build_catalogue

    raw = json.loads(build_catalogue([]).to_json())
    for f in raw["features"]:
        if f["name"] == "days_to_term_end":
            f["reason_zh"] = "合同{value}天后到期"
        if f["name"] == "cancel_request_standing":
            f["reason_zh"] = "已申请在本期合同结束时取消"
    old = {f.name: f for f in Catalogue.from_json(json.dumps(raw)).features}
    assert old["days_to_term_end"].reason_zh == "订阅期{value}天后到期"
    assert old["cancel_request_standing"].reason_zh == "已申请在本订阅期结束时取消"
