"""``data_end`` is the first day the export does not cover; a user writes the export's own day, and that day's rows
are set aside. Said with the day to write instead (probe p56: a Stripe export's last-day cancellation requests and
failed payments dropped, those customers scored healthy)."""

from __future__ import annotations

from features.pipeline import build_snapshots
from tests.tiny import D, T, settings, write_tables


def _tables() -> dict:
    ids = [f"a{i}" for i in range(6)]
    events = [dict(account_id=a, user_id="u", occurred_at=T(2024, 5, 20, 9), event_type="login", quantity=1.0)
              for a in ids]
    events += [dict(account_id="a0", user_id="u", occurred_at=T(2024, 6, 30, 15), event_type="login", quantity=1.0),
               dict(account_id="a1", user_id="u", occurred_at=T(2024, 6, 30, 23, 59), event_type="login", quantity=1.0),
               dict(account_id="a2", user_id="u", occurred_at=T(2024, 7, 1, 0, 30), event_type="login", quantity=1.0)]
    return {"accounts": [dict(account_id=a) for a in ids],
            "subscriptions": [dict(account_id=a, start_date=D(2024, 1, 1), end_date=None, mrr=10.0) for a in ids],
            "events": events,
            "tickets": [dict(account_id="a3", opened_at=T(2024, 6, 30, 8), resolved_at=None, priority="high")]}


def test_rows_on_the_data_end_day_itself_are_said_with_the_day_after(tmp_path):
    data = write_tables(tmp_path / "data", _tables())
    result = build_snapshots(data, settings(data_end=D(2024, 6, 30)), tmp_path / "s.duckdb", as_of=[D(2024, 6, 3)])
    said = [w for w in result.validation.warnings if w.startswith("data_end ")]
    assert said == ["data_end 2024-06-30 is the first day the export does not cover, and rows dated that day are "
                    "set aside (events 2, tickets 1); if the export runs to the end of that day, set data_end: "
                    "2024-07-01 (or leave it out: the day after the latest row is read)"]
    assert result.validation.tables["events"].set_aside == {"after_data_end": 3}  # 07-01 too, not said


def test_the_day_after_or_no_data_end_says_nothing(tmp_path):
    data = write_tables(tmp_path / "data", _tables())
    later = build_snapshots(data, settings(data_end=D(2024, 7, 2)), tmp_path / "a.duckdb", as_of=[D(2024, 6, 3)])
    derived = build_snapshots(data, settings(), tmp_path / "b.duckdb", as_of=[D(2024, 6, 3)])
    for result in (later, derived):
        assert not [w for w in result.validation.warnings if w.startswith("data_end ")]
