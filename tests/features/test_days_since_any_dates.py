"""Days since the last login are the same whichever as-of dates are built together (a probe's
Shopify app: `features` gave 191 days on 2026-11-17, `score --as-of 2026-11-17` gave none, "Never
logged in"): the event stages read events from ``max(WINDOWS) + 1`` days before the first as-of
date on, so an older login comes from the ``lg_old`` stage."""

from __future__ import annotations

import datetime as dt

import pytest

from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import D, T, settings, write_tables

SUBS = [dict(account_id=a, start_date=D(2023, 1, 1), end_date=None, mrr=10.0) for a in ("a1", "a2", "a3")]
EVENTS = [
    dict(account_id="a1", user_id="u1", occurred_at=T(2023, 6, 1, 9), event_type="login"),  # 274 days before
    dict(account_id="a2", user_id="u2", occurred_at=T(2023, 6, 1, 9), event_type="report_build"),  # no login
    dict(account_id="a3", user_id="u3", occurred_at=T(2023, 6, 1, 9), event_type="login"),
    dict(account_id="a3", user_id="u3", occurred_at=T(2024, 2, 20, 9), event_type="login"),  # 10 days before
    dict(account_id="a3", user_id="u3", occurred_at=T(2024, 3, 5, 9), event_type="login"),  # after: never read
]
DAY = D(2024, 3, 1)


@pytest.mark.parametrize("dates", [
    [DAY],  # one date: the general path, events from 181 days before it
    [DAY - dt.timedelta(days=7 * k) for k in range(40)],  # weekly from 2023-06-02: the grid path
    [D(2023, 7, 9), D(2023, 12, 30), DAY],  # irregular dates, the first one near the old login
])
def test_days_since_the_last_login_do_not_depend_on_the_dates_built_with_it(tmp_path, dates):
    data = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": EVENTS,
                                            "accounts": [dict(account_id=a) for a in ("a1", "a2", "a3")]})
    build_snapshots(data, settings(data_end=D(2024, 6, 1)), tmp_path / "s.duckdb", as_of=dates)
    rows = read_snapshots(tmp_path / "s.duckdb", as_of=[DAY]).set_index("account_id")
    assert rows.loc["a1", "days_since_last_login"] == (DAY - D(2023, 6, 1)).days == 274
    assert rows.loc["a3", "days_since_last_login"] == 10
    assert rows["days_since_last_login"].isna()["a2"]  # never logged in: null, as before
