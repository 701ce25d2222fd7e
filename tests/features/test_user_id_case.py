"""Analytics keyed by the user's e-mail write one person in several letter cases (Amplitude:
``jane.smith@x.io`` and ``Jane.Smith@X.Io``): one active user, not two (a probe's 3-seat account read
6 active users, "200% of seats in use", from that alone). Opaque ids keep their case: ``aB3`` and
``Ab3`` may be two users."""

from __future__ import annotations

import pandas as pd

from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import D, settings, write_tables


def test_an_email_user_id_is_one_user_in_any_letter_case(tmp_path):
    users = ["jane.smith@x.io", "Jane.Smith@X.Io", " JANE.SMITH@x.io", "aB3", "Ab3"]
    events = pd.DataFrame({"account_id": ["e"] * 3 + ["o"] * 2, "user_id": users,
                           "occurred_at": pd.to_datetime(["2024-05-20 10:00"] * 5), "event_type": "login"})
    data = write_tables(tmp_path / "data", {
        "accounts": pd.DataFrame({"account_id": ["e", "o"]}),
        "subscriptions": pd.DataFrame({"account_id": ["e", "o"], "start_date": ["2024-01-01"] * 2,
                                       "end_date": [None, None], "mrr": [10.0, 10.0], "seats": [3, 3]}),
        "events": events}, fmt="csv")
    build_snapshots(data, settings(data_end=D(2024, 6, 30)), tmp_path / "s.duckdb", as_of=[D(2024, 6, 1)])
    rows = read_snapshots(tmp_path / "s.duckdb").set_index("account_id")
    assert rows.loc["e", "active_users_30d"] == 1
    assert rows.loc["o", "active_users_30d"] == 2
