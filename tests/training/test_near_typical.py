"""A company's own date or number within 5% of its typical value is no reason: "Close Date: 228 days ago
(typical of those who stayed: 229 days ago)" said nothing (a probe's HubSpot deals)."""

from __future__ import annotations

from training.reason_text import near_typical


def test_a_value_near_its_typical_one_is_no_reason():
    assert near_typical(228.0, 229.0, 1.0) and near_typical(6_100_000.0, 6_061_000.0)
    assert not near_typical(3.0, 2.0) and not near_typical(322.0, 229.0, 1.0)
    assert near_typical(30.0, 31.0) and not near_typical(30.0, 33.0)


def test_a_value_far_from_the_typical_one_for_its_spread_is_a_difference():
    """A probe's language app: ``birth_year``, the one profile column that drove churn, was never a reason, since
    5% of a typical 1991 made every year from 1892 to 2090 typical. The band is at most a tenth of the width of
    the middle values (``References.spread``): 1991 to 2001 here."""
    assert near_typical(2005.0, 1991.0)  # by size alone
    assert not near_typical(2005.0, 1991.0, spread=40.0) and near_typical(1993.0, 1991.0, spread=40.0)
    # a count keeps its band where its spread is wide: 149 against a typical 150
    assert near_typical(149.0, 150.0, spread=300.0) and not near_typical(140.0, 150.0, spread=300.0)


def test_a_birth_year_is_a_reason_against_those_who_stayed_and_written_as_a_year():
    from features.spec import FeatureSpec
    from training.reason_text import References, Row, render_value, word

    spec = FeatureSpec(name="birth_year", group="profile", type="float", unit="value",
                       definition="column 'birth_year'", direction=0, valid_range=(None, None),
                       reason_en="Birth year: {value}", reason_zh="出生年份：{value}", params={"column": "birth_year"})
    churn = {"birth_year": {"edges": [1968.0, 1982.0, 1991.0, 2000.0],
                            "bins": [[0.024, 900, 0.004], [0.035, 900, 0.004], [0.045, 900, 0.005],
                                     [0.055, 900, 0.005], [0.071, 900, 0.006]]}}
    refs = References(typical={"birth_year": 1991.0}, category_churn={}, overall_churn=0.046,
                      direction={"birth_year": +1}, number_churn=churn)
    assert refs.spread("birth_year") == 32.0
    assert word(spec, 2005.0, +1, Row({}), refs, "en") == "Birth year: 2005 (typical of those who stayed: 1991)"
    assert word(spec, 2005.0, +1, Row({}), refs, "zh-CN") == "出生年份：2005（未流失客户典型值：1991）"
    assert word(spec, 1993.0, +1, Row({}), refs, "en") is None  # two years from the typical: no reason
    assert word(spec, 1962.0, -1, Row({}), refs, "en") == "Birth year: 1962 (typical of those who stayed: 1991)"
    # an amount of a column not named a year keeps its separator
    money = FeatureSpec(name="revenue", group="profile", type="float", unit="value", definition="column 'revenue'",
                        direction=0, valid_range=(None, None), reason_en="Revenue: {value}", reason_zh="收入：{value}")
    assert render_value(money, 2005.0, "en")["value"] == "2,005"
    assert render_value(spec, 1990.5, "en")["value"] == "1991"  # a median between two years: a year, rounded
    for name in ("spend_per_year", "revenue_last_year", "years_active", "year_revenue"):  # amounts per year
        other = FeatureSpec(name=name, group="profile", type="float", unit="value", definition=f"column '{name}'",
                            direction=0, valid_range=(None, None), reason_en="x: {value}", reason_zh="x：{value}",
                            params={"column": name})
        assert render_value(other, 2500.0, "en")["value"] == "2,500", name
    for name in ("Year Founded", "year_of_birth", "model_year", "YOB", "出生年份", "company_founded_year"):
        year = FeatureSpec(name="y", group="profile", type="float", unit="value", definition="column",
                           direction=0, valid_range=(None, None), reason_en="x: {value}", reason_zh="x：{value}",
                           params={"column": name})
        assert render_value(year, 1998.0, "en")["value"] == "1998", name
