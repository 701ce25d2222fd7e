"""The derived data end (no ``data_end`` configured): bounded by the subscriptions, not moved by stray rows."""

from __future__ import annotations

import datetime as dt

from features.pipeline import build_snapshots
from features.rules import ACTIVITY_GAP_DAYS
from tests.tiny import D, T, settings, write_tables


def login(account: str, when: dt.datetime) -> dict:
    return dict(account_id=account, user_id="u", occurred_at=when, event_type="login", quantity=1.0)


def build(tmp_path, subs, events):
    folder = write_tables(tmp_path / "data", {"subscriptions": subs, "events": events})
    return build_snapshots(folder, settings(), tmp_path / "s.duckdb", as_of=[D(2024, 2, 1)]).validation


def test_open_ended_terms_signed_long_ago_keep_all_their_events(tmp_path):
    subs = [dict(account_id="a", start_date=D(2020, 1, 1), end_date=None, mrr=10.0)]
    events = [login("a", T(2024, m, 3, 9)) for m in range(1, 5)]
    report = build(tmp_path, subs, events)
    assert report.data_end == D(2024, 4, 4)
    assert report.total_set_aside == 0 and report.warnings == []


def test_activity_after_a_long_silence_past_the_subscriptions_is_set_aside_with_a_warning(tmp_path):
    subs = [dict(account_id="a", start_date=D(2024, 1, 1), end_date=D(2024, 4, 1), mrr=10.0)]
    stray = T(2024, 3, 20) + dt.timedelta(days=ACTIVITY_GAP_DAYS + 1)
    body = [login("a", T(2024, 1, 2, h) + dt.timedelta(days=d)) for d in range(78) for h in (9, 15)]
    events = body + [login("a", stray)]  # one stray row among 157: far fewer than STRAY_SHARE
    report = build(tmp_path, subs, events)
    assert report.data_end == D(2024, 3, 20)
    assert report.tables["events"].set_aside == {"after_data_end": 1}
    assert report.tables["events"].examples["after_data_end"]["occurred_at"].startswith(stray.date().isoformat())
    assert len(report.warnings) == 1 and "1 row(s) from" in report.warnings[0]


def test_a_second_stretch_of_real_activity_is_followed(tmp_path):
    """Many rows after the silence are data, not strays: the data end follows them."""
    subs = [dict(account_id="a", start_date=D(2024, 1, 1), end_date=D(2024, 4, 1), mrr=10.0)]
    events = [login("a", T(2024, 1, d, 9)) for d in range(2, 28)] + [login("a", T(2025, 1, d, 9)) for d in (1, 2)]
    report = build(tmp_path, subs, events)
    assert report.data_end == D(2025, 1, 3)
    assert report.total_set_aside == 0 and report.warnings == []


def test_a_quiet_stretch_inside_the_subscriptions_does_not_end_the_data(tmp_path):
    subs = [dict(account_id="a", start_date=D(2023, 1, 1), end_date=D(2025, 1, 1), mrr=10.0)]
    events = [login("a", T(2023, 1, 5, 9)), login("a", T(2024, 3, 1, 9))]  # 14 silent months, all covered
    report = build(tmp_path, subs, events)
    assert report.data_end == D(2024, 3, 2)
    assert report.total_set_aside == 0
