"""A count or a company's own number the catalogue gives no direction is worded against the
typical value on the side the training rows show. On a B2B export (``tests/foreign/b2b.py``)
"110 'Dashboard Viewed' events in the last 90 days; a typical active account has 37" was a risk
532 times and "Annual Revenue: 944,533 (typical of those who stayed: 4,157,962)" a strength 120
times, while the accounts that churned had viewed fewer dashboards and were smaller."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.profile import ExtraColumn, profile_spec
from features.spec import build_catalogue
from training.reason_text import References, Row, word
from training.reasons import fit_references

CAT = build_catalogue(["Dashboard Viewed"])
SPECS = {f.name: f for f in CAT.features}
VIEWS = "evt_dashboard_viewed_90d"


def _rows(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    churned = rng.random(n) < 0.25
    return pd.DataFrame({"churn_label": churned.astype(int),
                         VIEWS: np.where(churned, rng.poisson(20, n), rng.poisson(37, n)).astype(float),
                         "logins_30d": rng.poisson(10, n).astype(float)})


def test_the_references_learn_the_side_of_those_who_churned_where_the_catalogue_has_none():
    refs = fit_references(_rows(), CAT)
    assert SPECS[VIEWS].direction == 0 and refs["direction"][VIEWS] == -1
    assert "logins_30d" not in refs["direction"]  # the catalogue's own direction stands
    few = _rows().assign(churn_label=lambda d: (d.index < 20).astype(int))
    assert VIEWS not in fit_references(few, CAT)["direction"]  # 20 churned rows: no side learned


def _views(value: float, side: int, direction: dict) -> str | None:
    refs = References(typical={VIEWS: 37.0}, category_churn={}, overall_churn=0.25, direction=direction)
    return word(SPECS[VIEWS], value, side, Row({VIEWS: value, "tenure_days": 400.0}), refs, "en")


def test_more_views_than_typical_is_no_risk_once_churners_are_known_to_view_fewer():
    assert _views(110.0, +1, {VIEWS: -1}) is None
    assert _views(12.0, -1, {VIEWS: -1}) is None  # fewer than typical is no strength either
    assert _views(12.0, +1, {VIEWS: -1}) == ("Only 12 'Dashboard Viewed' events in the last 90 days; "
                                             "a typical active account has 37")
    assert _views(110.0, -1, {VIEWS: -1}) == ("110 'Dashboard Viewed' events in the last 90 days; "
                                              "a typical active account has 37")
    # no side learned (an older bundle, or too little evidence): more use of the product is no risk on a
    # model's word alone; a side learned the other way (an event that goes with churn) words it as one
    assert _views(110.0, +1, {}) is None and _views(12.0, -1, {}) is None
    assert _views(12.0, +1, {}).startswith("Only 12 'Dashboard Viewed' events")
    assert _views(110.0, +1, {VIEWS: +1}) == ("110 'Dashboard Viewed' events in the last 90 days; "
                                              "a typical active account has 37")
    # within 5% of typical it is the typical value: no "Only 36 ...; a typical active account has 37" (a probe's
    # "Only 149 'Dashboard Viewed' events ...; a typical active account has 150")
    assert _views(36.0, +1, {VIEWS: -1}) is None and _views(38.0, -1, {VIEWS: -1}) is None
    assert _views(35.0, +1, {VIEWS: -1}).startswith("Only 35 'Dashboard Viewed' events")


def test_a_companys_own_number_follows_the_learned_side():
    spec = profile_spec(ExtraColumn(table="accounts", column="Annual Revenue", kind="number",
                                    feature="annual_revenue", alias="Annual Revenue"), None)
    refs = References(typical={"annual_revenue": 4_157_962.0}, category_churn={}, overall_churn=0.08,
                      direction={"annual_revenue": -1})
    row = Row({"annual_revenue": 944_533.0})
    assert word(spec, 944_533.0, -1, row, refs, "en") is None  # smaller than typical: no strength
    assert word(spec, 944_533.0, +1, row, refs, "en").startswith("Annual Revenue: 944,533 (typical of")


def test_a_sparse_count_whose_medians_tie_takes_the_side_of_its_means():
    from training.reasons import learned_side

    rng = np.random.default_rng(1)
    kept = pd.Series((rng.random(3000) < 0.3).astype(float))  # seat invites: 0 for most rows
    lost = pd.Series((rng.random(300) < 0.05).astype(float))
    assert kept.median() == lost.median() == 0
    assert learned_side(lost, kept) == -1
    assert learned_side(pd.Series((rng.random(300) < 0.3).astype(float)), kept) == 0  # within the noise


def test_a_side_is_learned_per_account_not_per_row():
    """25 churned accounts on 139 rows, bigger than those that stayed and so using the product more
    (the accounts' sizes, not their use): no side. Rows counted one by one learned +1, and "123 'Report
    Created' events; a typical active account has 25" was a risk in 4 of a report's top 8 accounts."""
    from training.reasons import learned_side

    rng = np.random.default_rng(4)
    lost_acc = np.repeat(np.arange(25), 6)[:139]
    size = rng.lognormal(0, 0.4, 25) * 1.1  # churned accounts a little bigger
    lost = pd.Series(rng.poisson(25 * size[lost_acc]).astype(float))
    kept_acc = np.repeat(np.arange(25, 325), 10)
    kept = pd.Series(rng.poisson(25 * rng.lognormal(0, 0.4, 300)[kept_acc - 25]).astype(float))
    assert learned_side(lost, kept) == 1  # the rows as if independent: the accounts' sizes look like a side
    assert learned_side(lost, kept, lost_acc, kept_acc) == 0  # 25 accounts: no side
    many = np.repeat(np.arange(60), 3)  # 60 churned accounts that clearly use it less: -1
    low = pd.Series(rng.poisson(8, many.size).astype(float))
    assert learned_side(low, kept, many, kept_acc) == -1


def test_an_error_count_that_falls_with_churn_is_worded_on_neither_side():
    """A probe's API company: 5xx errors fell with the calls, so the churners had fewer and "'errors_5xx' 5xx
    errors down 22% vs the previous 30 days" was a risk for 413 accounts. An event type whose name says
    something went wrong keeps its risk side, or is not worded."""
    specs = {f.name: f for f in build_catalogue(["errors_5xx"]).features}
    count, change = specs["evt_errors_5xx_30d"], specs["evt_errors_5xx_30d_change"]
    row = Row({count.name: 3.0, change.name: -0.22, "tenure_days": 400.0})
    backwards = References(typical={count.name: 8.0}, category_churn={}, overall_churn=0.1,
                           direction={count.name: -1, change.name: -1})
    assert word(count, 3.0, +1, row, backwards, "en") is None and word(count, 30.0, -1, row, backwards, "en") is None
    assert word(change, -0.22, +1, row, backwards, "en") is None and word(change, 0.5, -1, row, backwards, "en") is None
    # none in the 30 days before: the change is missing, worded on neither side either (the review of 2026-12-06)
    after_none = Row({count.name: 3.0, change.name: None, "tenure_days": 400.0})
    for side, lang in ((+1, "en"), (-1, "en"), (+1, "zh-CN"), (-1, "zh-CN")):
        assert word(change, None, side, after_none, backwards, lang) is None
    assert word(change, None, +1, after_none, named := References(typical={count.name: 8.0}, category_churn={},
                                                                    overall_churn=0.1, direction={}), "en") == \
        "'errors_5xx' events in the last 30 days after none in the 30 days before"
    assert word(count, 30.0, +1, row, named, "en") == ("30 'errors_5xx' events in the last 30 days; a typical active "
                                                       "account has 8")
    busy = Row({count.name: 30.0, change.name: 0.5, "tenure_days": 400.0})
    assert word(change, 0.5, +1, busy, named, "en").startswith("'errors_5xx' events up 50%")
