"""The few accounts' rows that explain and the report read (``load_clean_subset``) pass the
same contract checks as ``features`` (``validate_tables``), ``before_account`` included: an
event or ticket dated long before its account existed is set aside by both."""

from __future__ import annotations

import pandas as pd

from features.pipeline import open_connection, prepare
from features.subset import load_clean_subset
from insights.report import raw_signals
from tests.tiny import D, T, settings, write_tables

ACCOUNTS = [dict(account_id="a1", industry="retail"), dict(account_id="a2", industry="retail")]
SUBSCRIPTIONS = [dict(account_id="a1", start_date=D(2023, 6, 1), end_date=D(2024, 1, 1), mrr=50.0, seats=-3),
                 dict(account_id="a1", start_date=D(2024, 1, 1), end_date=None, mrr=60.0, seats=4),
                 dict(account_id="a2", start_date=D(2023, 1, 1), end_date=None, mrr=10.0, seats=2)]
#: a1's first term starts 2023-06-01: 2021-03-05 is more than 365 days before it (set aside),
#: 2022-09-01 is within them (a trial: kept, though more than 365 days before a1's second term)
EVENTS = [dict(account_id=a, user_id="u", occurred_at=T(2024, m, 3, 9), event_type="login", quantity=1.0)
          for a in ("a1", "a2") for m in range(1, 7)] + \
         [dict(account_id="a1", user_id="u", occurred_at=T(2021, 3, 5, 9), event_type="login", quantity=1.0),
          dict(account_id="a1", user_id="u", occurred_at=T(2022, 9, 1, 9), event_type="login", quantity=1.0)]
TICKETS = [dict(account_id="a1", opened_at=T(2021, 3, 5, 10), priority="high"),
           dict(account_id="a1", opened_at=T(2024, 2, 5, 10), priority="low")]


def _clean(con, table: str, account: str) -> pd.DataFrame:
    time_col = {"events": "occurred_at", "tickets": "opened_at", "subscriptions": "start_date"}[table]
    return con.execute(f"SELECT * FROM clean_{table} WHERE account_id = ? ORDER BY {time_col}", [account]).df()


def test_the_subset_sets_aside_what_features_sets_aside_before_the_account_existed(tmp_path):
    data = write_tables(tmp_path / "data", {"accounts": ACCOUNTS, "subscriptions": SUBSCRIPTIONS,
                                            "events": EVENTS, "tickets": TICKETS})
    s = settings(data=str(data), data_end=D(2024, 7, 1))
    full = open_connection()
    try:
        report, _ = prepare(data, s, full)
        assert report.tables["events"].set_aside == {"before_account": 1}
        assert report.tables["tickets"].set_aside == {"before_account": 1}
        want_events, want_tickets = _clean(full, "events", "a1"), _clean(full, "tickets", "a1")
        want_terms = _clean(full, "subscriptions", "a1")
    finally:
        full.close()
    assert T(2021, 3, 5, 9) not in set(want_events["occurred_at"])

    con = open_connection()
    try:
        load_clean_subset(con, s, ["a1"], {"events": (None, None), "tickets": (None, None)})
        pd.testing.assert_frame_equal(_clean(con, "events", "a1"), want_events)
        pd.testing.assert_frame_equal(_clean(con, "tickets", "a1"), want_tickets)
        assert list(_clean(con, "tickets", "a1")["priority"]) == ["low"]
        # bounds on subscriptions do not move the account's first date: the 2022 trial event is kept
        load_clean_subset(con, s, ["a1"], {"subscriptions": (D(2024, 1, 1), None), "events": (D(2022, 1, 1), None)})
        assert list(_clean(con, "subscriptions", "a1")["start_date"]) == [pd.Timestamp(2024, 1, 1)]
        assert T(2022, 9, 1, 9) in set(_clean(con, "events", "a1")["occurred_at"])
        # values set aside as validate_tables does: a negative seat count is unknown, the term kept
        load_clean_subset(con, s, ["a1"], {"subscriptions": (None, None)})
        pd.testing.assert_frame_equal(_clean(con, "subscriptions", "a1"), want_terms)
        assert pd.isna(_clean(con, "subscriptions", "a1")["seats"].iloc[0])
    finally:
        con.close()

    # the report's raw signals (latest tickets before the as-of date) do not show the ticket set aside
    signals = raw_signals(s, ["a1"], D(2024, 7, 1))
    assert list(signals["a1"]["tickets"]["opened_at"]) == [pd.Timestamp(2024, 2, 5, 10)]


def test_the_reports_weekly_product_events_leave_out_a_cancellation_request(tmp_path):
    """Probe p56: without a login role the account page's "Product events per week" counts every event, and a
    billing-only export's one cancellation request was plotted as product activity."""
    from core.settings import EventRoles, Settings

    events = [dict(account_id="a1", user_id="u", occurred_at=T(2024, 6, 10, 9), event_type="report_build",
                   quantity=1.0),
              dict(account_id="a1", user_id="u", occurred_at=T(2024, 6, 20, 9), event_type="Cancellation Scheduled",
                   quantity=1.0)]
    data = write_tables(tmp_path / "data", {"accounts": ACCOUNTS, "subscriptions": SUBSCRIPTIONS, "events": events})
    roles = EventRoles(cancel_request=["cancellation_scheduled"])
    s = Settings(data=str(data), data_end=D(2024, 7, 1), event_roles=roles)
    weekly = raw_signals(s, ["a1"], D(2024, 7, 1))["a1"]["logins"]
    assert int(weekly["logins"].sum()) == 1  # the report build, not the request
    both = raw_signals(Settings(data=str(data), data_end=D(2024, 7, 1)), ["a1"], D(2024, 7, 1))["a1"]["logins"]
    assert int(both["logins"].sum()) == 2  # without the role, the request is an event like any other
