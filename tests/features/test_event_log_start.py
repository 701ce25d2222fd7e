"""The event log starts where most of it starts. A probe's Stripe export sent every cancellation request
as an event, as the guide says, from 2023-07 on, while its product analytics began on 2024-07-01: the
as-of dates started on 2023-10-12 and 13,637 training rows read no use of the product at all. The data
start is now the latest day before which the types begun hold under 10% of the rows, when it is more
than 30 days after the first event, with a warning."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import D, T, settings, write_tables


def _export(folder, early_days: int):
    usage_start = D(2024, 7, 1)
    accounts = [f"a{k}" for k in range(6)]
    events = [dict(account_id=a, user_id="u", occurred_at=T(2024, 7, 1, 9) + dt.timedelta(days=d, hours=k),
                   event_type="login", quantity=1.0) for k, a in enumerate(accounts) for d in range(0, 300, 3)]
    events += [dict(account_id=accounts[k], user_id=None, event_type="cancellation_scheduled", quantity=1.0,
                    occurred_at=T(2024, 7, 1, 9) - dt.timedelta(days=early_days - 5 * k)) for k in range(3)]
    write_tables(folder, {
        "accounts": [dict(account_id=a, industry="retail") for a in accounts],
        "subscriptions": [dict(account_id=a, start_date=D(2023, 1, 1), end_date=None, mrr=10.0, plan="m", seats=1)
                          for a in accounts],
        "events": events})
    return usage_start


def test_a_few_early_events_do_not_start_the_as_of_dates(tmp_path):
    usage_start = _export(tmp_path / "data", early_days=300)
    built = build_snapshots(tmp_path / "data", settings(data_end=D(2025, 4, 30)), tmp_path / "s.duckdb")
    [warning] = [w for w in built.validation.warnings if w.startswith("events: the log begins on")]
    assert warning.startswith("events: the log begins on 2024-07-01 ('login' among the types that begin then), 300 "
                              "days after the first event; before it only 'cancellation_scheduled' from 2023-09-05 "
                              "(3 rows): 0.5% of the rows. The data start is 2024-07-01 (not 2023-09-05)")
    assert built.validation.data_start == usage_start and min(built.as_of) > usage_start
    assert read_snapshots(tmp_path / "s.duckdb")["as_of"].min().date() == min(built.as_of)


def test_early_events_within_a_month_change_nothing(tmp_path):
    _export(tmp_path / "data", early_days=20)
    built = build_snapshots(tmp_path / "data", settings(data_end=D(2025, 4, 30)), tmp_path / "s.duckdb")
    assert built.validation.data_start == D(2024, 7, 1) - dt.timedelta(days=20)  # the first event's day
    assert not [w for w in built.validation.warnings if "the log begins on" in w]


def test_a_large_type_that_begins_late_does_not_move_the_start(tmp_path):
    """A feature launched mid-way holds many rows from its launch on: the log began before it."""
    _export(tmp_path / "data", early_days=20)
    events = pd.read_parquet(tmp_path / "data" / "events.parquet")
    launched = events[events["event_type"] == "login"].copy()
    launched = launched[launched["occurred_at"] >= pd.Timestamp("2024-12-01")].assign(event_type="ai_assistant")
    pd.concat([events, launched, launched]).to_parquet(tmp_path / "data" / "events.parquet", index=False)
    built = build_snapshots(tmp_path / "data", settings(data_end=D(2025, 4, 30)), tmp_path / "s.duckdb")
    assert built.validation.data_start == D(2024, 7, 1) - dt.timedelta(days=20)
    assert not [w for w in built.validation.warnings if "the log begins on" in w]
