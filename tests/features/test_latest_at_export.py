"""An account's latest value at export (``Last Contact Date``, ``last_login_at``, ``Latest NPS``) is no
profile feature of a snapshot model: read at an earlier as-of date, it tells that nothing of the kind
happened after that date, which only the export knew. A probe's CRM export (``Last Contact Date``
frozen when an account closed) made it the top reason of every high-risk customer."""

from __future__ import annotations

import pandas as pd

from core.settings import ProfileColumn, ProfileSettings
from features.profile import LATEST_AT_EXPORT, PERSONAL_DATA
from tests.tiny import accounts_plan


def _plan(**kw):
    accounts = pd.DataFrame({
        "account_id": [f"a{i}" for i in range(8)],
        "Last Contact Date": pd.date_range("2025-01-01", periods=8, freq="7D"),
        "latest_nps": [9, 3, 7, 8, 10, 2, 6, 9],
        "Most Recent Purchase": pd.date_range("2025-02-01", periods=8, freq="3D"),
        "Last Name": ["Li", "Ng", "Wu", "Ho"] * 2,
        "founded": pd.date_range("2001-01-01", periods=8, freq="365D"),
        "NPS score (last survey)": [9, None, 7, 8, None, 2, 6, 9],  # HubSpot: the latest answer, in brackets
        "Revenue (USD)": [1e6, 2e6, 3e6, 4e6, 5e6, 6e6, 7e6, 8e6],  # a bracketed unit says nothing of the kind
    })
    return accounts_plan(accounts, **kw)


def test_latest_values_at_export_are_listed_not_used():
    plan = _plan()
    reasons = {c.column: c.reason for c in plan.unused}
    assert [c.column for c in plan.used] == ["founded", "Revenue (USD)"]
    assert reasons["Last Contact Date"] == reasons["latest_nps"] == reasons["Most Recent Purchase"] \
        == reasons["NPS score (last survey)"] == LATEST_AT_EXPORT
    assert reasons["Last Name"] == PERSONAL_DATA  # a person's name first


def test_profile_columns_keeps_one_dated_correctly():
    plan = _plan(profile=ProfileSettings(columns={"latest_nps": ProfileColumn(kind="number")}))
    assert {c.column for c in plan.used} == {"founded", "latest_nps", "Revenue (USD)"}
