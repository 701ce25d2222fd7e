"""A first scoring raises no alert for an account already at high risk (alerts fire on a move between two
scorings): `score` and `alerts` say so with the count, instead of "0 new" and no task to explain it."""

from __future__ import annotations

import datetime as dt

import duckdb

from core.scores import first_scored_high_risk
from tests.workflow.test_tasks import write_store

HINT = "scored at high risk for the first time: alerts fire on a move into high risk or down a tier"


def test_accounts_scored_once_at_high_risk_are_counted(tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [20], "a3": [90], "a4": [15]})
    with duckdb.connect(str(store), read_only=True) as con:
        assert first_scored_high_risk(con) == 2  # a1 and a4
    # a2 entered high risk from healthy; a1 and a4, scored once on a date before the newest run, which did
    # not score them, are no longer customers (probe p28's backfill: 188 of the 238 counted had left)
    write_store(store, {"a1": [20], "a2": [90, 20], "a3": [90], "a4": [15]})
    with duckdb.connect(str(store), read_only=True) as con:
        assert first_scored_high_risk(con) == 0
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with duckdb.connect(str(empty), read_only=True) as con:
        assert first_scored_high_risk(con) == 0  # no score history yet


def test_alerts_says_why_a_first_scoring_raised_nothing(tmp_path, run_cli):
    home = tmp_path / "home"
    home.mkdir()
    write_store(home / "store.duckdb", {"a1": [20], "a4": [15], "a3": [90]})
    out = run_cli("alerts", "--home", home).stdout
    assert "alerts: 0 new (none)" in out and f"2 {HINT}" in out, out
    write_store(home / "store.duckdb", {"a1": [20, 20], "a4": [15, 15], "a3": [90, 90]})
    assert HINT not in run_cli("alerts", "--home", home).stdout  # scored twice: nothing to explain


def test_a_later_run_s_new_customers_at_high_risk_are_not_counted_they_have_an_alert(tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [20], "a3": [90], "a4": [15]})
    with duckdb.connect(str(store)) as con:  # the same accounts a day on, and a new one at high risk
        con.execute("INSERT INTO score_history SELECT account_id, as_of + 1, churn_probability, health_score, tier, "
                    "reasons_en, reasons_zh FROM score_history")
        con.execute("INSERT INTO score_history SELECT 'new', max(as_of), 0.8, 20, 'high_risk', '[]', '[]' "
                    "FROM score_history")
    with duckdb.connect(str(store), read_only=True) as con:
        assert first_scored_high_risk(con) == 0


def test_after_a_backfill_the_first_run_s_high_risk_accounts_are_still_counted(tmp_path):
    """A backfill of an earlier date makes none of the first run's scores a new customer's (``scored_at``), so
    they still have no alert: the hint counts them, as ``workflow.alerts`` judges them (the same rule)."""
    store = tmp_path / "store.duckdb"
    rows = [("a", "2025-03-08", "high_risk", "2025-03-08 06:00"), ("b", "2025-03-08", "healthy", "2025-03-08 06:00"),
            ("b", "2025-03-01", "healthy", "2025-03-09 06:00")]  # the earlier date scored a day after
    with duckdb.connect(str(store)) as con:
        con.execute("CREATE TABLE score_history (account_id VARCHAR, as_of DATE, tier VARCHAR, scored_at TIMESTAMP)")
        con.executemany("INSERT INTO score_history VALUES (?, ?, ?, ?)", rows)
    with duckdb.connect(str(store), read_only=True) as con:
        assert first_scored_high_risk(con) == 1  # a: a first run's score, no alert
    with duckdb.connect(str(store)) as con:  # the same dates as a live run would have scored them: a is new
        con.execute("UPDATE score_history SET scored_at = TIMESTAMP '2025-03-01 06:00' WHERE as_of = DATE '2025-03-01'")
    with duckdb.connect(str(store), read_only=True) as con:
        assert first_scored_high_risk(con) == 0


def test_the_hint_names_the_newest_date_when_another_run_scored_it(tmp_path, run_cli, monkeypatch):
    """Probe p58: scoring an earlier date into a home ended with "76 scored at high risk for the first time", the
    count of the other (later) date's run, as if this run's: the line now names that date and says so."""
    from churnwatch.commands import workflow
    from tests.workflow.test_tasks import DAY0

    home = tmp_path / "home"
    home.mkdir()
    write_store(home / "store.duckdb", {"a1": [20], "a4": [15], "a3": [90]})
    seen: list[object] = []
    real = workflow.run_alerts

    def as_a_scoring_run(target, settings, engine, new=None, scored=None):  # `alerts` run as `score` calls it
        seen.append(scored)
        return real(target, settings, engine, None, scored=[DAY0 - dt.timedelta(days=30)])

    monkeypatch.setattr(workflow, "run_alerts", as_a_scoring_run)
    out = run_cli("alerts", "--home", home).stdout
    assert seen == [None]
    assert f"2 scored at high risk for the first time (as of {DAY0}, scored by an earlier run, not this one)" in out
    monkeypatch.setattr(workflow, "run_alerts", lambda t, s, e, new=None, scored=None: real(t, s, e, None, [DAY0]))
    out = run_cli("alerts", "--home", home).stdout
    assert f"2 {HINT}" in out and "not this one" not in out  # this run's date: as before
