"""The derived data end (no ``data_end`` configured): bounded by the subscriptions, not moved by stray rows."""

from __future__ import annotations

import datetime as dt

from features.pipeline import build_snapshots
from features.rules import ACTIVITY_GAP_DAYS
from tests.tiny import D, T, settings, write_tables


def login(account: str, when: dt.datetime) -> dict:
    return dict(account_id=account, user_id="u", occurred_at=when, event_type="login", quantity=1.0)


def said(report) -> list[str]:
    """The report's warnings but those of the tests' event roles, whose types these logins-only exports lack."""
    return [w for w in report.warnings if not w.startswith("event_roles.")]


def build(tmp_path, subs, events):
    folder = write_tables(tmp_path / "data", {"subscriptions": subs, "events": events})
    return build_snapshots(folder, settings(), tmp_path / "s.duckdb", as_of=[D(2024, 2, 1)]).validation


def test_open_ended_terms_signed_long_ago_keep_all_their_events(tmp_path):
    subs = [dict(account_id="a", start_date=D(2020, 1, 1), end_date=None, mrr=10.0)]
    events = [login("a", T(2024, m, 3, 9)) for m in range(1, 5)]
    report = build(tmp_path, subs, events)
    assert report.data_end == D(2024, 4, 4)
    assert report.total_set_aside == 0 and said(report) == []


def test_activity_after_a_long_silence_past_the_subscriptions_is_set_aside_with_a_warning(tmp_path):
    subs = [dict(account_id="a", start_date=D(2024, 1, 1), end_date=D(2024, 4, 1), mrr=10.0)]
    stray = T(2024, 3, 20) + dt.timedelta(days=ACTIVITY_GAP_DAYS + 1)
    body = [login("a", T(2024, 1, 2, h) + dt.timedelta(days=d)) for d in range(78) for h in (9, 15)]
    events = body + [login("a", stray)]  # one stray row among 157: far fewer than STRAY_SHARE
    report = build(tmp_path, subs, events)
    assert report.data_end == D(2024, 3, 20)
    assert report.tables["events"].set_aside == {"after_data_end": 1}
    assert report.tables["events"].examples["after_data_end"]["occurred_at"].startswith(stray.date().isoformat())
    assert len(said(report)) == 1 and "1 row(s) from" in said(report)[0]


def test_a_second_stretch_of_real_activity_is_followed(tmp_path):
    """Many rows after the silence are data, not strays: the data end follows them."""
    subs = [dict(account_id="a", start_date=D(2024, 1, 1), end_date=D(2024, 4, 1), mrr=10.0)]
    events = [login("a", T(2024, 1, d, 9)) for d in range(2, 28)] + [login("a", T(2025, 1, d, 9)) for d in (1, 2)]
    report = build(tmp_path, subs, events)
    assert report.data_end == D(2025, 1, 3)
    assert report.total_set_aside == 0 and said(report) == []


def test_a_quiet_stretch_inside_the_subscriptions_does_not_end_the_data(tmp_path):
    subs = [dict(account_id="a", start_date=D(2023, 1, 1), end_date=D(2025, 1, 1), mrr=10.0)]
    events = [login("a", T(2023, 1, 5, 9)), login("a", T(2024, 3, 1, 9))]  # 14 silent months, all covered
    report = build(tmp_path, subs, events)
    assert report.data_end == D(2024, 3, 2)
    assert report.total_set_aside == 0


def _invoice(account: str, issued: dt.date, paid: dt.date | None) -> dict:
    return dict(account_id=account, issued_at=issued, due_at=issued + dt.timedelta(days=14), paid_at=paid,
                amount=10.0, status="paid" if paid else "open")


def _two_exports(tmp_path, daily: bool = True):
    """Daily logins to 2024-03-31 (or one a week) and invoices exported two weeks later: one issued and one
    paid after the last event (probe p35: the data end moved two weeks, and every account looked silent)."""
    subs = [dict(account_id="a", start_date=D(2024, 1, 1), end_date=D(2024, 6, 1), mrr=10.0)]
    step = 1 if daily else 7
    events = [login("a", T(2024, 1, 1, 9) + dt.timedelta(days=d)) for d in range(0, 91, step)]
    invoices = [_invoice("a", D(2024, 3, 1), D(2024, 4, 12)), _invoice("a", D(2024, 4, 10), None),
                _invoice("a", D(2024, 2, 1), D(2024, 2, 3))]
    folder = write_tables(tmp_path / "data", {"subscriptions": subs, "events": events, "invoices": invoices})
    return build_snapshots(folder, settings(), tmp_path / "s.duckdb", as_of=[D(2024, 2, 1)]).validation


def test_a_dense_event_log_that_ends_before_the_invoices_sets_the_data_end_and_says_so(tmp_path):
    report = _two_exports(tmp_path)
    assert report.data_end == D(2024, 4, 1)  # the day after the last event, not after the last payment
    assert report.tables["invoices"].set_aside == {"after_data_end": 1}  # issued 2024-04-10; the late payment stays
    assert report.tables["invoices"].rows_kept == 2
    [told] = said(report)
    assert told.startswith("the events end on 2024-03-31, but later dates follow (invoices.issued_at: 1 row(s) to "
                           "2024-04-10; invoices.paid_at: 1 row(s) to 2024-04-12)")
    assert "the data end is 2024-04-01" in told and "set data_end in churnwatch.yaml" in told


def test_a_sparse_event_log_does_not_set_the_data_end(tmp_path):
    report = _two_exports(tmp_path, daily=False)
    assert report.data_end == D(2024, 4, 13) and said(report) == [] and report.total_set_aside == 0
