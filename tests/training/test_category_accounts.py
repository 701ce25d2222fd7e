"""A category's churn rate is quoted as a reason only when it stands out given its accounts.

A training row is an account on one as-of date, so 259 rows of a B2B export's "United States" were
13 accounts, and a region that changed nothing (``tests/foreign/b2b.py`` draws it at random) was
worded "churn is higher in United States: 17% vs 11% overall". The references now count each
category's accounts and the standard error of its rate clustered by account, and the gap must exceed two
such errors, more for a column of many values (Bonferroni over its categories: one of 18 values stands
out by 2.5 by chance)."""

from __future__ import annotations

import pandas as pd
import pytest

from features.spec import build_catalogue
from training.reason_text import References, Row, word
from training.reasons import fit_references

SPECS = {f.name: f for f in build_catalogue([]).features}


def test_the_references_count_each_categorys_accounts():
    rows = pd.DataFrame({"account_id": ["a", "a", "a", "b", "c", "c"], "churn_label": [0, 0, 1, 0, 1, 1],
                         "region": ["US", "US", "US", "US", "DE", "DE"]})
    refs = fit_references(rows, build_catalogue([]))
    # [rate, rows, accounts, the rate's standard error clustered by account around the overall 0.5]:
    # US: accounts a (-0.5 - 0.5 + 0.5) and b (-0.5): sqrt(0.25 + 0.25) / 4 rows; DE: c (0.5 + 0.5): 1 / 2
    assert refs["category_churn"]["region"] == {"DE": [1.0, 2, 1, 0.5],
                                                "US": [pytest.approx(0.25), 4, 2, pytest.approx(0.5 ** 0.5 / 4)]}


def _region(rate: float, rows: int, accounts: int | None, side: int = +1) -> str | None:
    found = [rate, rows] if accounts is None else [rate, rows, accounts]
    refs = References(typical={}, overall_churn=0.109, category_churn={"region": {"United States": found}})
    return word(SPECS["region"], "United States", side, Row({"region": "United States"}), refs, "en")


def test_a_rate_from_few_accounts_is_no_reason():
    # 16.6% vs 10.9% from 13 accounts: 0.67 standard errors
    assert _region(0.166, 259, 13) is None
    assert _region(0.05, 259, 13, side=-1) is None


def test_the_same_gap_over_many_accounts_is_worded():
    # 600 accounts: the same 5.7 points are 4.5 standard errors
    assert _region(0.166, 12_000, 600) == ("Region: United States; churn is higher in United States: "
                                           "17% vs 11% overall")
    assert _region(0.07, 12_000, 600, side=-1) == ("Region: United States; churn is lower in United States: "
                                                   "7.0% vs 11% overall")


def test_the_clustered_error_quotes_a_channel_that_taking_accounts_as_rows_hid():
    """A probe's consumer box: paid social 7.6% against 5.8% over 807 accounts of weekly rows, the model's
    strongest feature. Over 807 "rows" the gap is 2.2 standard errors, under the bar of a 4-value column
    (2.5); clustered by account its rate's error is 0.0060 and the gap stands out (3.0)."""
    others = {k: [0.0576, 3000, 400, 0.006] for k in ("organic", "referral", "influencer")}

    def channel(found):
        refs = References(typical={}, overall_churn=0.0576,
                          category_churn={"region": {**others, "paid_social": found}})
        return word(SPECS["region"], "paid_social", +1, Row({"region": "paid_social"}), refs, "en")

    assert channel([0.0757, 6393, 807]) is None  # an older bundle: each account as one row
    assert channel([0.0757, 6393, 807, 0.0060]) == ("Region: paid social; churn is higher in paid social: "
                                                    "7.6% vs 5.8% overall")
    assert channel([0.0757, 6393, 807, 0.0080]) is None  # accounts whose rows all share one fate


def test_references_without_account_counts_keep_the_rule_by_rows():
    # a bundle trained before the counts: as before
    assert _region(0.166, 259, None) == "Region: United States; churn is higher in United States: 17% vs 11% overall"


def _note(rate: float, accounts: int, categories: int) -> str | None:
    """The reason of one value of a column of ``categories`` values in the training rows (the others at the
    overall rate)."""
    rates = {f"note {i}": [0.16, 200, 100] for i in range(categories - 1)}
    rates["Said might move house"] = [rate, accounts, accounts]
    refs = References(typical={}, overall_churn=0.16, category_churn={"region": rates})
    return word(SPECS["region"], "Said might move house", +1, Row({"region": "Said might move house"}), refs, "en")


def test_a_column_of_many_values_needs_a_larger_gap():
    # 25.2% vs 16% over 100 accounts: 2.5 standard errors. Among 2 values that stands out (bar 2.24); among
    # 18 it is what one of them shows by chance (Bonferroni: z of 0.05 / 18, 2.99)
    assert _note(0.252, 100, 2) == ("Region: Said might move house; churn is higher in Said might move house: "
                                    "25% vs 16% overall")
    assert _note(0.252, 100, 18) is None
    # 3.5 standard errors stand out among 18 values too
    assert _note(0.288, 100, 18) is not None


def test_the_bar_grows_with_the_categories_and_never_falls_below_two():
    from training.reason_text import category_z  # here, so the test above runs on code without it

    assert category_z(1) == 2.0
    assert [round(category_z(k), 2) for k in (2, 5, 18, 50)] == [2.24, 2.58, 2.99, 3.29]


def test_a_category_that_never_came_up_for_renewal_is_not_quoted():
    """An annual plan whose terms all end after the horizon in the training rows churns 0% by the calendar:
    its rate is left out of the references (a probe: "lower in team-annual: 0.0% vs 2.4% overall" 230 times,
    while its renewals churned 20%). A monthly plan, always due, keeps its rate; so does a flat table."""
    rows = pd.DataFrame({"account_id": [f"m{i}" for i in range(40)] + [f"a{i}" for i in range(40)],
                         "churn_label": [1] * 4 + [0] * 36 + [0] * 40,
                         "plan": ["monthly"] * 40 + ["annual"] * 40,
                         "days_to_term_end": [12.0] * 40 + [200.0] * 30 + [400.0] * 10})
    rows["plan"] = rows["plan"].astype("category")
    catalogue = build_catalogue([])
    plan = [f for f in catalogue.features if f.name == "plan"]
    assert plan and plan[0].type == "category"
    refs = fit_references(rows, catalogue, horizon_days=90)
    assert set(refs["category_churn"]["plan"]) == {"monthly"}
    due = rows.assign(days_to_term_end=[12.0] * 40 + [60.0] + [200.0] * 39)  # one annual row due: quoted
    assert set(fit_references(due, catalogue, horizon_days=90)["category_churn"]["plan"]) == {"annual", "monthly"}
    assert set(fit_references(rows, catalogue)["category_churn"]["plan"]) == {"annual", "monthly"}  # no horizon
