"""A term's end with a time of day (Stripe's ``current_period_end``, RevenueCat's expiration): the
customer had the product on that day. A billing period renewing later on the data-end day is in
force on it (scored, not "churned"), a renewal or an upgrade starting that day covers it instead
(the day is not counted twice), and an end at midnight or a plain date reads as it did."""

from __future__ import annotations

import pandas as pd
import pytest

from core.store import read_snapshots
from features.pipeline import build_snapshots, open_connection, prepare
from tests.tiny import D, settings, write_tables

END = D(2026, 12, 1)
SUBSCRIPTIONS = pd.DataFrame({
    # a: monthly periods renewing at 21:12; the last one ends on the data-end day, renewal not yet exported
    # b: a period ending at midnight; c: an upgrade (the new term starts when the old one ends);
    # d: plain dates; e: a churner whose last period ended at 15:00 in October
    "account_id": ["a", "a", "a", "b", "c", "c", "d", "e", "e"],
    "start_date": ["2026-09-01 21:12", "2026-10-01 21:12", "2026-11-01 21:12", "2026-11-01 09:00",
                   "2026-10-15 10:00", "2026-11-15T11:00:00+01:00", "2026-10-01", "2026-08-10 15:00",
                   "2026-09-10 15:00"],
    "end_date": ["2026-10-01 21:12", "2026-11-01 21:12", "2026-12-01 21:12", "2026-12-01 00:00",
                 "2026-11-15T10:00:00Z", None, "2026-12-01", "2026-09-10 15:00", "2026-10-10 15:00"],
    "mrr": [10.0, 10.0, 10.0, 5.0, 3.0, 6.0, 1.0, 2.0, 2.0]})
EVENTS = pd.DataFrame({"account_id": list("abcde"), "user_id": "u", "occurred_at": "2026-09-20 10:00",
                       "event_type": "login"})


def _terms(tmp_path, fmt: str, subscriptions: pd.DataFrame) -> pd.DataFrame:
    data = write_tables(tmp_path / fmt, {"accounts": pd.DataFrame({"account_id": list("abcde")}),
                                         "subscriptions": subscriptions, "events": EVENTS}, fmt=fmt)
    con = open_connection()
    try:
        prepare(data, settings(data=str(data), data_end=END), con)
        return con.execute("SELECT account_id, start_date, end_date FROM clean_subscriptions "
                           "ORDER BY account_id, start_date").df()
    finally:
        con.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_end_with_a_time_of_day_covers_its_day_unless_another_term_starts_on_it(tmp_path, fmt):
    subscriptions = SUBSCRIPTIONS.copy()
    if fmt == "parquet":  # a source typed as timestamps (the offset one read as its UTC instant)
        for c in ("start_date", "end_date"):
            subscriptions[c] = pd.to_datetime(subscriptions[c], utc=True, format="mixed").dt.tz_localize(None)
    terms = _terms(tmp_path, fmt, subscriptions)
    ends = {(r.account_id, r.start_date.date()): None if pd.isna(r.end_date) else r.end_date.date()
            for r in terms.itertuples()}
    assert ends == {
        ("a", D(2026, 9, 1)): D(2026, 10, 1),    # the next period starts that day: no overlap
        ("a", D(2026, 10, 1)): D(2026, 11, 1),
        ("a", D(2026, 11, 1)): D(2026, 12, 2),   # renews later on the data-end day: in force on it
        ("b", D(2026, 11, 1)): D(2026, 12, 1),   # midnight: the day is not covered
        ("c", D(2026, 10, 15)): D(2026, 11, 15),  # the upgrade starts on the day (10:00 UTC)
        ("c", D(2026, 11, 15)): None,
        ("d", D(2026, 10, 1)): D(2026, 12, 1),   # a date
        ("e", D(2026, 8, 10)): D(2026, 9, 10),
        ("e", D(2026, 9, 10)): D(2026, 10, 11),  # the churner had the product on October 10
    }


def test_the_renewing_customer_is_scored_on_the_data_end_day(tmp_path):
    data = write_tables(tmp_path / "data", {"accounts": pd.DataFrame({"account_id": list("abcde")}),
                                            "subscriptions": SUBSCRIPTIONS, "events": EVENTS}, fmt="csv")
    build_snapshots(data, settings(data=str(data), data_end=END), tmp_path / "s.duckdb", as_of=[END])
    rows = read_snapshots(tmp_path / "s.duckdb")
    at_end = rows[rows["as_of"] == pd.Timestamp(END)]
    # a renews later that day and c runs on; b's and d's terms ended the day before, e in October
    assert sorted(at_end["account_id"]) == ["a", "c"]
    assert at_end.set_index("account_id").loc["a", "mrr"] == 10.0
