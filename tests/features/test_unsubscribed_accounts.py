"""Accounts with no subscription term at all are said, not passed over (p41, 2026-12-06)."""

from __future__ import annotations

import datetime as dt

from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import D, settings, write_tables


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
