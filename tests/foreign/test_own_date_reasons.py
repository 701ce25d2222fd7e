"""A company's own date column (``accounts.date_of_birth`` on a consumer export) is a "days
since" feature; its reason was "Date of birth: 6,131 days ago" as a risk with no comparison.
It is now worded in years past two years and against the typical value of those who stayed,
and a value on the typical side is no reason at all."""

from __future__ import annotations

from features.profile import ExtraColumn, profile_spec
from training.reason_text import References, Row, render, word

SPEC = profile_spec(ExtraColumn(table="accounts", column="date_of_birth", kind="date", feature="date_of_birth",
                                alias="date_of_birth"), None)
REFS = References(typical={"date_of_birth": 12_100.0}, category_churn={}, overall_churn=0.03)


def test_a_date_is_worded_in_years_against_the_typical_value():
    row = Row({"date_of_birth": 6131.0})
    assert word(SPEC, 6131.0, +1, row, REFS, "en") == (
        "Date of birth: 16.8 years ago (typical of those who stayed: 33.1 years ago)")
    assert word(SPEC, 6131.0, +1, row, REFS, "zh-CN") == (
        "客户属性「date_of_birth」：16.8年前（未流失客户典型值：33.1年前）")


def test_short_spans_stay_in_days():
    refs = References(typical={"date_of_birth": 400.0}, category_churn={}, overall_churn=0.03)
    assert word(SPEC, 45.0, +1, Row({}), refs, "en") == (
        "Date of birth: 45 days ago (typical of those who stayed: 400 days ago)")
    assert word(SPEC, 1.0, +1, Row({}), References({}, {}, None), "en") == "Date of birth: 1 day ago"


def test_the_typical_value_is_no_reason():
    assert word(SPEC, 12_100.0, +1, Row({}), REFS, "en") is None


def test_the_plain_template_is_unchanged():
    assert render(SPEC, 6131.0, "en") == "Date of birth: 6,131 days ago"
