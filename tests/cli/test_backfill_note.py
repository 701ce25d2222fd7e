"""`score` of past dates with a model that reads the company's own columns says they are read as exported
(probe p29: a HubSpot churn reason made a leaking model's backfilled scores look excellent to `performance`)."""

from __future__ import annotations

from types import SimpleNamespace

from churnwatch.commands.serving import backfill_note
from features.pipeline import build_snapshots
from tests.tiny import D, T, settings, write_tables

SUBS = [dict(account_id="a1", start_date=D(2024, 1, 1), end_date=D(2024, 12, 1), mrr=100.0, plan="p", seats=3)]
EVENTS = [dict(account_id="a1", user_id="u", occurred_at=T(2024, 3, d, 9), event_type="login") for d in range(1, 20)]


def _feature(name: str, template: str, kind: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(name=name, template=template, params={"kind": kind} if kind else {})


def test_past_dates_scored_with_own_columns_get_the_note_and_the_data_end_none(tmp_path):
    folder = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": EVENTS})
    store = tmp_path / "s.duckdb"
    build_snapshots(folder, settings(), store)
    from core.store import connect, read_meta

    with connect(store, read_only=True) as con:
        end = read_meta(con).data_end
    own = SimpleNamespace(catalogue=SimpleNamespace(features=[
        _feature("logins_30d", "role_count"), _feature("nps_score", "extra_profile", "number"),
        _feature("date_of_birth", "extra_profile", "date"), _feature("lifecycle_stage", "extra_profile", "category")]))
    [note] = backfill_note(own, {D(2024, 3, 1): None, end: None}, store)
    assert note == (f"note: the scores of 2024-03-01 (before the data end {end}) read your own columns (nps_score, "
                    "lifecycle_stage) as the export holds them today, not as they were then: `performance` on these "
                    "scores cannot tell a column written after the outcome (see the leakage guard) from a real signal")
    assert backfill_note(own, {end: None}, store) == []  # the data end itself: today's values are its values
    plain = SimpleNamespace(catalogue=SimpleNamespace(features=[_feature("logins_30d", "role_count"),
                                                                _feature("date_of_birth", "extra_profile", "date")]))
    assert backfill_note(plain, {D(2024, 3, 1): None}, store) == []  # dates are read point-in-time
