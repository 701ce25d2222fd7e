"""A company's own date column (``accounts.date_of_birth`` on a consumer export) is a "days
since" feature; its reason was "Date of birth: 6,131 days ago" as a risk with no comparison.
It is now worded in years past two years and against the typical value of those who stayed,
and a value on the typical side is no reason at all. A column whose name says birth is worded as
an age ("Date of Birth: 66.7 years ago" was the top reason of 7 of a gym's 10 riskiest members),
and a typical value is quoted only when most of those who stayed have one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.profile import ExtraColumn, profile_spec
from features.spec import Catalogue
from training.reason_text import References, Row, render, word
from training.reasons import fit_references


def _own_date(column: str, feature: str) -> object:
    return profile_spec(ExtraColumn(table="accounts", column=column, kind="date", feature=feature, alias=feature),
                        None)


SPEC = _own_date("first_purchase", "date_of_birth")  # a date that is no birth date, named as before
REFS = References(typical={"date_of_birth": 12_100.0}, category_churn={}, overall_churn=0.03)


def test_a_date_is_worded_in_years_against_the_typical_value():
    row = Row({"date_of_birth": 6131.0})
    assert word(SPEC, 6131.0, +1, row, REFS, "en") == (
        "First purchase: 16.8 years ago (typical of those who stayed: 33.1 years ago)")
    assert word(SPEC, 6131.0, +1, row, REFS, "zh-CN") == (
        "客户属性「First purchase」：16.8年前（未流失客户典型值：33.1年前）")


def test_short_spans_stay_in_days():
    refs = References(typical={"date_of_birth": 400.0}, category_churn={}, overall_churn=0.03)
    assert word(SPEC, 45.0, +1, Row({}), refs, "en") == (
        "First purchase: 45 days ago (typical of those who stayed: 400 days ago)")
    assert word(SPEC, 1.0, +1, Row({}), References({}, {}, None), "en") == "First purchase: 1 day ago"


def test_the_typical_value_is_no_reason():
    assert word(SPEC, 12_100.0, +1, Row({}), REFS, "en") is None


def test_the_plain_template_says_the_span_in_its_own_unit():
    assert render(SPEC, 6131.0, "en") == "First purchase: 16.8 years ago"
    assert render(SPEC, 45.0, "zh-CN") == "客户属性「First purchase」：45天前"


@pytest.mark.parametrize("column", ["date_of_birth", "dob", "birth_date", "Birthday", "Date of Birth", "DOB"])
def test_a_birth_date_is_worded_as_an_age(column):
    spec = _own_date(column, "born")
    refs = References(typical={"born": 16_875.0}, category_churn={}, overall_churn=0.3)  # 46.2 years
    assert word(spec, 24_359.0, +1, Row({}), refs, "en") == "Age 66 (typical of those who stayed: 46)"  # 66.7 years
    assert word(spec, 24_359.0, +1, Row({}), refs, "zh-CN") == "年龄66岁（未流失客户典型值：46岁）"
    assert word(spec, 16_900.0, +1, Row({}), refs, "en") is None  # 46 too: the typical age is no reason
    assert word(spec, 24_359.0, +1, Row({}), References({}, {}, None), "en") == "Age 66"


def test_a_flat_tables_birth_date_is_an_age_too():
    from features.spec import FeatureSpec

    spec = FeatureSpec(name="Date of Birth", group="event_type", type="float", unit="days", definition="a date",
                       direction=0, valid_range=(None, None), optional=True, reason_en="Date of Birth: {value}",
                       reason_zh="Date of Birth：{value}", template="table_column",
                       params={"column": "Date of Birth", "kind": "date"})
    refs = References(typical={"Date of Birth": 16_875.0}, category_churn={}, overall_churn=0.3,
                      direction={"Date of Birth": 1})
    assert word(spec, 24_359.0, +1, Row({}), refs, "en") == "Age 66 (typical of those who stayed: 46)"
    assert word(spec, 24_359.0, -1, Row({}), refs, "en") is None  # older than typical: no strength


def test_a_date_most_of_those_who_stayed_lack_is_worded_without_a_typical_value():
    spec = _own_date("unsubscribe_detected_at_ms", "unsubscribe_detected_at_ms")
    rng = np.random.default_rng(0)
    churned = np.r_[np.ones(100), np.zeros(300)]
    days = np.where(churned == 1, rng.integers(1, 30, 400), np.where(np.arange(400) % 4 == 0, 37.0, np.nan))
    rows = pd.DataFrame({"churn_label": churned, "unsubscribe_detected_at_ms": days})
    refs = fit_references(rows, Catalogue(features=(spec,), event_types=()))
    assert refs["typical"] == {"unsubscribe_detected_at_ms": 37.0}
    assert refs["stayed_present"] == {"unsubscribe_detected_at_ms": 0.25}
    quoted = References.from_dict(refs)
    assert word(spec, 1.0, +1, Row({}), quoted, "en") == "Unsubscribe detected: 1 day ago"
    assert word(spec, 1.0, +1, Row({}), quoted, "zh-CN") == "客户属性「Unsubscribe detected」：1天前"
    # half of them with a value: quoted (and an older bundle, without the shares, quotes it)
    half = References.from_dict({**refs, "stayed_present": {"unsubscribe_detected_at_ms": 0.5}})
    assert word(spec, 1.0, +1, Row({}), half, "en") == (
        "Unsubscribe detected: 1 day ago (typical of those who stayed: 37 days ago)")
    assert word(spec, 1.0, +1, Row({}), References.from_dict({"typical": refs["typical"]}), "en") == (
        "Unsubscribe detected: 1 day ago (typical of those who stayed: 37 days ago)")


def test_the_value_shown_beside_a_reason_is_the_date_as_the_reason_words_it():
    """The workspace's waterfall labels and the reasons' value fields show "Age 24", "45 days ago", not the
    days since the date (a probe: ``date_of_birth = 9052``)."""
    from training.reason_text import render_value

    birth = _own_date("date_of_birth", "date_of_birth")
    assert render_value(birth, 9052.0, "en")["value"] == "Age 24"
    assert render_value(birth, 9052.0, "zh-CN")["value"] == "年龄24岁"
    assert render_value(SPEC, 45.0, "en")["value"] == "45 days ago"
    assert render_value(SPEC, -30.0, "zh-CN")["value"] == "30天后"
    assert render_value(SPEC, None, "en")["value"] == "n/a"
