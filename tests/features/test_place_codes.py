"""A postal code is a place, not a quantity (one rule, ``features.profile.place_code_name``, for the
flat table and the accounts' own columns). A probe's telecom table: ``Zip Code`` became a number
feature, as heavy in the model as the monthly charges, and ``/score`` asked for it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from core.settings import ProfileColumn, ProfileSettings
from features.profile import ExtraColumn
from tests.tiny import accounts_plan
from training.own_table import describe_table, load_own_table

#: The reason, written out (the tests below run on code without the rule: they fail there on behaviour)
REASON = ("a postal code: a place written as a number, not a quantity (to use it, name it under profile.columns "
          "with kind: category)")


@pytest.mark.parametrize(("column", "code"), [
    ("Zip Code", True), ("zip", True), ("ZIP", True), ("billing_zip", True), ("PostalCode", True),
    ("postal_code", True), ("Postcode", True), ("PLZ", True), ("postalcode", True), ("zip5", True),
    ("codigo_postal", True), ("zipper_size", False), ("Unzipped Files", False), ("postal_mail_opt_in", False),
    ("Tenure Months", False), ("Zip Code Population", False), ("zip_code_density", False)])
def test_names_of_postal_codes(column, code):
    from features.profile import place_code_name

    assert place_code_name(column) is code


def telco_csv(tmp_path) -> str:
    """300 customers with a numeric zip code of 6 values, a region, a tenure and the label."""
    r = np.random.default_rng(5)
    columns = {"Customer ID": [f"{i:04d}-ABCDE" for i in range(300)],
               "Zip Code": r.choice([90001, 90210, 94103, 94110, 95014, 96161], 300),  # few: a category if told so
               "Region": r.choice(["North", "South", "Coast"], 300), "Tenure Months": r.integers(0, 73, 300),
               "Churn Label": r.choice(["Yes", "No"], 300)}
    pd.DataFrame(columns).to_csv(tmp_path / "telco.csv", index=False)
    return tmp_path / "telco.csv"


def test_a_table_lists_a_zip_code_as_a_place_not_a_number(tmp_path):
    table = load_own_table(telco_csv(tmp_path), label="Churn Label", id_col="Customer ID")
    assert list(table.frame.columns) == ["Region", "Tenure Months"]
    assert table.report["dropped_name"] == {"Zip Code": REASON}
    assert describe_table(table.report)[-1] == f"columns not used: Zip Code ({REASON})"


def test_a_table_keeps_a_zip_code_churnwatch_yaml_names_as_a_category(tmp_path):
    profile = ProfileSettings(columns={"Zip Code": ProfileColumn(kind="category")})
    table = load_own_table(telco_csv(tmp_path), label="Churn Label", id_col="Customer ID", profile=profile)
    assert table.catalogue["Zip Code"].type == "category"


def test_the_accounts_own_zip_code_is_listed_with_the_same_rule_a_text_code_stays_a_category():
    accounts = pd.DataFrame({"account_id": [f"a{i}" for i in range(8)],
                             "zip_code": [90001 + i for i in range(8)],
                             "postcode": ["SW1A", "EC1A"] * 4,  # text: a category as any text
                             "seats_band": ["small", "large"] * 4})
    plan = accounts_plan(accounts)
    assert [c.column for c in plan.used] == ["postcode", "seats_band"]
    assert {c.column: c.reason for c in plan.unused}["zip_code"] == REASON


def test_a_stored_plan_that_used_a_zip_code_keeps_it():
    """A store built before the rule fed its model the number: later builds keep the stored decision (a
    rebuild of some dates must give the columns the model knows)."""
    accounts = pd.DataFrame({"account_id": [f"a{i}" for i in range(8)], "zip_code": [90001 + i for i in range(8)]})
    fresh = accounts_plan(accounts)
    assert fresh.used == []
    stored = dataclasses.replace(fresh, used=[ExtraColumn("accounts", "zip_code", "number", "zip_code", "zip_code")],
                                 unused=[])
    again = accounts_plan(accounts, kept=stored)
    assert [(c.column, c.kind) for c in again.used] == [("zip_code", "number")]
