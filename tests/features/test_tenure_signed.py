"""Tenure counts from ``accounts.signed_at`` where that is earlier than the account's first relationship in the
data (a subscriptions export cut at its start: p41, 2026-12-06, whose tenure counted from the data start and whose
model's level drifted down 30% as the cut tenure grew); a later relationship counts from its own start."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import D, settings, write_tables

DATES = [D(2025, 3, 1), D(2025, 8, 1)]


def test_tenure_from_the_signature_for_the_first_relationship_only(tmp_path):
    subs = [dict(account_id="old", start_date=D(2025, 1, 1), end_date=None, mrr=10.0),  # signed in 2023
            dict(account_id="plain", start_date=D(2025, 1, 1), end_date=None, mrr=10.0),  # no signature date
            dict(account_id="late", start_date=D(2025, 1, 1), end_date=None, mrr=10.0),  # signed after it began
            dict(account_id="back", start_date=D(2025, 1, 1), end_date=D(2025, 2, 1), mrr=10.0),  # left, came back
            dict(account_id="back", start_date=D(2025, 6, 1), end_date=None, mrr=10.0)]
    accounts = [dict(account_id="old", signed_at=D(2023, 5, 1)), dict(account_id="plain", signed_at=None),
                dict(account_id="late", signed_at=D(2025, 2, 1)), dict(account_id="back", signed_at=D(2024, 1, 1))]
    events = [dict(account_id=a, user_id="u", occurred_at=dt.datetime(2025, 1, 2) + dt.timedelta(days=7 * w),
                   event_type="login", quantity=1.0) for a in ("old", "plain", "late", "back") for w in range(40)]
    folder = write_tables(tmp_path / "data", {"accounts": accounts, "subscriptions": subs, "events": events})
    build_snapshots(folder, settings(data_end=D(2025, 10, 1)), tmp_path / "s.duckdb", as_of=DATES)
    rows = read_snapshots(tmp_path / "s.duckdb")
    got = {(r.account_id, pd.Timestamp(r.as_of).date()): int(r.tenure_days) for r in rows.itertuples()}
    assert got[("old", D(2025, 3, 1))] == (D(2025, 3, 1) - D(2023, 5, 1)).days
    assert got[("plain", D(2025, 3, 1))] == (D(2025, 3, 1) - D(2025, 1, 1)).days
    assert got[("late", D(2025, 3, 1))] == (D(2025, 3, 1) - D(2025, 1, 1)).days
    assert ("back", D(2025, 3, 1)) not in got  # between its two relationships
    assert got[("back", D(2025, 8, 1))] == (D(2025, 8, 1) - D(2025, 6, 1)).days


def test_accounts_without_any_term_are_said(tmp_path):
    """p41 (2026-12-06): 400 free users of 4,400 accounts passed without a word."""
    subs = [dict(account_id="paying", start_date=D(2025, 1, 1), end_date=None, mrr=10.0)]
    accounts = [dict(account_id=a) for a in ("paying", "free1", "free2")]
    events = [dict(account_id=a, user_id="u", occurred_at=dt.datetime(2025, 1, 2) + dt.timedelta(days=7 * w),
                   event_type="login", quantity=1.0) for a in ("paying", "free1") for w in range(20)]
    folder = write_tables(tmp_path / "data", {"accounts": accounts, "subscriptions": subs, "events": events})
    built = build_snapshots(folder, settings(data_end=D(2025, 6, 1)), tmp_path / "s.duckdb", as_of=[D(2025, 5, 1)])
    assert [w for w in built.validation.warnings if w.startswith("accounts:")] == [
        "accounts: 2 of 3 have no subscription term (free users, prospects, or terms not exported): they are never "
        "scored; send their terms to score them"]
    assert set(read_snapshots(tmp_path / "s.duckdb")["account_id"]) == {"paying"}
