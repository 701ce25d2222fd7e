"""A column that holds a person's name or contact details is no feature, by its name (one rule,
``features.profile.personal_data_name``, for the flat table and the accounts' own columns).

A gym's export made ``First Name`` and ``Last Name`` categorical features with no notice (24 and 22
names in the probe's generator). Such a column is now listed as not used with the reason; a
``churnwatch.yaml`` that names it under ``profile.columns`` keeps it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.settings import ProfileColumn, ProfileSettings
from tests.tiny import accounts_plan
from training.own_table import describe_table, load_own_table

PERSONAL = ["First Name", "Last Name", "first_name", "LastName", "FIRST_NAME", "Surname", "Full Name", "given_name",
            "Family Name", "Name", "customer_name", "Contact Name", "E-mail", "email", "Email Address",
            "Customer Email", "contact_email", "Phone", "phone_number", "Mobile", "Telephone", "Mobile Phone",
            "home_phone", "Street", "Street Address", "Address Line 1", "address_line_2", "billing_address",
            "cc_emails", "Recovery Email", "shop_owner_email", "Billing Contact E-mail", "reseller_email_address"]
NOT_PERSONAL = ["plan_name", "company_name", "Company name", "Home Club", "PhoneService", "Email Opt-in",
                "email_open_rate_90d", "Membership Type", "Product Name", "NumberOfAddress", "phone_calls_30d",
                "Gender", "Notes", "Payment Method"]


#: The reason, written out (the tests below run on code without the rule: they fail there on behaviour)
REASON = "personal data (a person's name or contact details): not used as a feature"


@pytest.mark.parametrize("column", PERSONAL)
def test_names_of_personal_fields(column):
    from features.profile import personal_data_name

    assert personal_data_name(column)


@pytest.mark.parametrize("column", NOT_PERSONAL)
def test_names_of_other_things(column):
    from features.profile import personal_data_name

    assert not personal_data_name(column)


def gym_csv(tmp_path) -> str:
    n = 120
    r = np.random.default_rng(3)
    path = tmp_path / "gym.csv"
    pd.DataFrame({
        "Member No": [f"{i:06d}" for i in range(n)],
        "First Name": r.choice(["Sofia", "Omar", "Mia", "Liam", "Ava", "Noah"], n),
        "Last Name": r.choice(["Brown", "Nguyen", "Smith", "Khan", "Lopez"], n),
        "E-mail": [f"m{i}@example.com" for i in range(n)],
        "Home Club": r.choice(["Riverside", "Northgate", "Harbour"], n),
        "plan_name": r.choice(["Standard", "Premium"], n),
        "Visits Last 4 Weeks": r.integers(0, 12, n).astype(str),
        "Churned": r.choice(["Yes", "No"], n),
    }).to_csv(path, index=False)
    return path


def test_a_table_lists_names_and_contacts_as_personal_data(tmp_path):
    table = load_own_table(gym_csv(tmp_path), label="Churned", id_col="Member No")

    assert list(table.frame.columns) == ["Home Club", "plan_name", "Visits Last 4 Weeks"]
    assert table.report["dropped_personal"] == ["First Name", "Last Name", "E-mail"]
    said = describe_table(table.report)
    assert said[-1] == ("columns not used: " + ", ".join(
        f"{c} ({REASON})"
        for c in ("First Name", "Last Name", "E-mail")))


def test_a_table_keeps_a_personal_column_churnwatch_yaml_names(tmp_path):
    profile = ProfileSettings(columns={"First Name": ProfileColumn(kind="category")})
    table = load_own_table(gym_csv(tmp_path), label="Churned", id_col="Member No", profile=profile)

    assert "First Name" in table.frame.columns and table.catalogue["First Name"].type == "category"
    assert table.report["dropped_personal"] == ["Last Name", "E-mail"]


def _accounts_plan(**kw):
    accounts = pd.DataFrame({
        "account_id": [f"a{i}" for i in range(8)],
        "name": [f"Company {i}" for i in range(8)],  # the account's display name (email.name_column)
        "first_name": ["Ann", "Bo", "Cy", "Di"] * 2,
        "street": ["1 High St", "2 Low Rd"] * 4,
        "home_phone": [f"0123 45{i}" for i in range(8)],
        "plan_name": ["basic", "pro"] * 4,
        "seats_band": ["small", "large"] * 4,
    })
    return accounts_plan(accounts, **kw)


def test_the_accounts_own_columns_list_personal_data_with_the_same_rule():
    plan = _accounts_plan()
    reasons = {c.column: c.reason for c in plan.unused}

    assert [c.column for c in plan.used] == ["seats_band"]
    assert reasons["first_name"] == reasons["street"] == reasons["home_phone"] == REASON
    # a company's display name and a plan's name are no person's: id-like by their names, as before
    assert reasons["name"] == reasons["plan_name"] == "id-like (name)"


def test_the_accounts_keep_a_personal_column_churnwatch_yaml_names():
    plan = _accounts_plan(profile=ProfileSettings(columns={"first_name": ProfileColumn(kind="category")}))

    assert {c.column: c.kind for c in plan.used} == {"first_name": "category", "seats_band": "category"}
