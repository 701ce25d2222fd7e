"""Bad input: each kind gives the documented error (naming table, column, a row) or count."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.errors import DataContractError
from features.pipeline import build_snapshots
from tests.tiny import D, T, settings, write_tables

SUBS = [dict(account_id="a1", start_date=D(2024, 1, 1), end_date=D(2024, 12, 1), mrr=100.0, plan="p", seats=3),
        dict(account_id="a2", start_date=D(2024, 1, 1), end_date=None, mrr=50.0, plan="p", seats=1)]
EVENTS = [dict(account_id="a1", user_id="u", occurred_at=T(2024, 3, d, 9), event_type="login") for d in range(1, 20)]


def build(tmp_path, tables, **kw):
    folder = write_tables(tmp_path / "data", tables, fmt=kw.pop("fmt", "parquet"))
    return build_snapshots(folder, settings(**kw), tmp_path / "s.duckdb", as_of=[D(2024, 3, 15)])


def test_missing_required_column_names_table_column_and_row(tmp_path):
    import pandas as pd

    subs = pd.DataFrame(SUBS).drop(columns=["mrr"])
    with pytest.raises(DataContractError) as exc:
        build(tmp_path, {"subscriptions": subs, "events": EVENTS})
    msg = str(exc.value)
    assert "subscriptions" in msg and "'mrr'" in msg and "example row" in msg and "a1" in msg
    assert exc.value.table == "subscriptions" and exc.value.column == "mrr"


def test_missing_required_table(tmp_path):
    with pytest.raises(DataContractError, match="required table 'subscriptions' not found"):
        build(tmp_path, {"events": EVENTS})


def test_wrong_type_names_column_and_example(tmp_path):
    import pandas as pd

    subs = pd.DataFrame(SUBS)
    subs["mrr"] = ["100", "fifty"]
    with pytest.raises(DataContractError) as exc:
        build(tmp_path, {"subscriptions": subs, "events": EVENTS}, fmt="csv")
    msg = str(exc.value)
    assert "subscriptions.mrr" in msg and "1 value(s) are not of type double" in msg and "fifty" in msg


def test_end_before_start_is_set_aside_and_counted(tmp_path):
    subs = SUBS + [dict(account_id="a3", start_date=D(2024, 5, 1), end_date=D(2024, 2, 1), mrr=10.0)]
    r = build(tmp_path, {"subscriptions": subs, "events": EVENTS})
    rep = r.validation.tables["subscriptions"]
    assert rep.set_aside == {"end_before_start": 1}
    assert rep.examples["end_before_start"]["account_id"] == "a3"
    assert rep.rows_in == 3 and rep.rows_kept == 2


def test_events_of_unknown_account_are_counted(tmp_path):
    events = EVENTS + [dict(account_id="ghost", user_id="g", occurred_at=T(2024, 3, 5), event_type="login")] * 2
    r = build(tmp_path, {"subscriptions": SUBS, "events": events})
    assert r.validation.tables["events"].set_aside == {"unknown_account": 2}
    # with an accounts table, an account known there but without terms is not unknown
    accounts = [dict(account_id=a) for a in ("a1", "a2", "ghost")]
    r = build(tmp_path, {"accounts": accounts, "subscriptions": SUBS, "events": events})
    assert r.validation.tables["events"].set_aside == {}


def test_timestamps_after_the_data_end_are_counted(tmp_path):
    events = EVENTS + [dict(account_id="a1", user_id="u", occurred_at=T(2024, 6, 2), event_type="login")]
    r = build(tmp_path, {"subscriptions": SUBS, "events": events}, data_end=D(2024, 6, 1))
    assert r.validation.tables["events"].set_aside == {"after_data_end": 1}
    assert r.validation.data_end == D(2024, 6, 1)


def test_default_data_end_is_the_day_after_the_latest_timestamp(tmp_path):
    r = build(tmp_path, {"subscriptions": SUBS, "events": EVENTS})
    assert r.validation.data_end == D(2024, 3, 20)
    assert r.validation.total_set_aside == 0


def test_as_of_after_data_end_is_refused(tmp_path):
    folder = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": EVENTS})
    with pytest.raises(DataContractError, match="after the data end"):
        build_snapshots(folder, settings(), tmp_path / "s.duckdb", as_of=[D(2025, 1, 1)])


def test_column_mapping_renames_user_columns(tmp_path):
    import pandas as pd

    ev = pd.DataFrame(EVENTS).rename(columns={"occurred_at": "ts", "event_type": "action"})
    folder = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": ev})
    s = settings(column_mapping={"events": {"ts": "occurred_at", "action": "event_type"}})
    r = build_snapshots(folder, s, tmp_path / "s.duckdb", as_of=[D(2024, 3, 15)])
    assert r.rows == 2 and "login" in r.catalogue.event_types


def test_a_mapping_onto_no_contract_column_names_the_columns_and_for_a_name_the_setting():
    """A probe mapped Stripe's customer "Name" onto ``name`` (the README's word for the accounts' names): the
    error named the contract's columns only, not ``email: {name_column: ...}``, which is what reads it."""
    from core.errors import ConfigError
    from features.contract import check_column_mapping

    with pytest.raises(ConfigError) as said:
        check_column_mapping({"accounts": {"id": "account_id", "Name": "name"}})
    assert str(said.value).startswith("column_mapping: accounts: 'name' is not a column of the contract (account_id, ")
    assert str(said.value).endswith("; the accounts' names are read from a column named name, or the one "
                                    "email: {name_column: 'Name'} names in churnwatch.yaml")
    with pytest.raises(ConfigError, match=r"'amount' is not a column of the contract \([^)]*\)$"):
        check_column_mapping({"events": {"Amount": "amount"}})


def test_cli_prints_counts_writes_summary_and_exits_2_on_errors(tmp_path, run_cli):
    events = EVENTS + [dict(account_id="ghost", user_id="g", occurred_at=T(2024, 3, 5), event_type="login")]
    folder = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": events})
    home = tmp_path / "home"
    # the console entry point in a child process once; the refusal below in this process
    run = subprocess.run([sys.executable, "-m", "churnwatch", "features", "--data", str(folder),
                          "--home", str(home)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "unknown_account" in run.stdout
    summary = json.loads((home / "reports" / "run-summary.json").read_text())
    assert summary["tables"]["events"]["set_aside"] == {"unknown_account": 1}
    assert summary["tables"]["events"]["rows_kept"] == len(EVENTS)

    import pandas as pd

    pd.DataFrame(SUBS).drop(columns=["start_date"]).to_parquet(folder / "subscriptions.parquet")
    run = run_cli("features", "--data", folder, "--home", home)  # the same command in this process
    assert run.returncode == 2
    assert "subscriptions: required column 'start_date' is missing" in run.stderr
    assert "Traceback" not in run.stderr


def test_as_of_before_the_data_start_is_refused_with_both_dates(tmp_path):
    """Probe p28: `score --as-of` a date before the event log began scored 1,624 accounts on empty windows
    (35% high risk), and those rows trained the next model."""
    folder = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": EVENTS})
    first = min(e["occurred_at"] for e in EVENTS).date()
    with pytest.raises(DataContractError, match=f"as-of date 2023-12-01 is before the data start {first} "
                                                r"\(the first day of the event log\)"):
        build_snapshots(folder, settings(), tmp_path / "s.duckdb", as_of=[D(2023, 12, 1)], refuse_before_start=True)
    assert not (tmp_path / "s.duckdb").exists()
    assert build_snapshots(folder, settings(), tmp_path / "s.duckdb", as_of=[first], refuse_before_start=True).rows > 0
    # monitoring's relabelling (the default) builds it: its label comes from the subscriptions
    assert build_snapshots(folder, settings(), tmp_path / "s.duckdb", as_of=[D(2024, 1, 15)]).rows > 0


def test_a_build_of_some_dates_with_another_horizon_than_the_stores_is_refused(tmp_path):
    """Probe p28: `horizon_days: 30` written into churnwatch.yaml, then `score`: that date's labels were built
    at 30 days beside every other date's 60, the store recorded 30, and the next model was trained on 60-day
    labels and described as a 30-day model."""
    from core.errors import ConfigError
    from core.store import connect, read_meta

    folder = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": EVENTS})
    store = tmp_path / "s.duckdb"
    build_snapshots(folder, settings(), store, as_of=[D(2024, 3, 10)])
    before = settings().horizon_days
    with pytest.raises(ConfigError, match=f"churnwatch.yaml says horizon_days 30, grace_days 30, but the store's "
                                          f"labels are of horizon_days {before}, grace_days 30: a build of some "
                                          "dates would mix two horizons in one store. Run `churnwatch features`"):
        build_snapshots(folder, settings(horizon_days=30), store, as_of=[D(2024, 3, 15)])
    with connect(store, read_only=True) as con:
        assert read_meta(con).horizon_days == before
        assert [r[0] for r in con.execute("SELECT DISTINCT as_of FROM snapshots").fetchall()] == [D(2024, 3, 10)]
    # the whole store rebuilt with the new setting (`features`, no dates given): the new horizon throughout
    build_snapshots(folder, settings(horizon_days=30), store)
    with connect(store, read_only=True) as con:
        assert read_meta(con).horizon_days == 30


def test_epoch_seconds_among_milliseconds_are_named_as_mixed_units(tmp_path):
    """Probe p28: 1% of an Amplitude export's `event_time` in seconds (a second SDK), the rest in
    milliseconds: the error listed "Unix epoch seconds or milliseconds" as readable, beside a seconds value."""
    import pandas as pd

    events = pd.DataFrame(EVENTS)
    ms = (events["occurred_at"].astype("datetime64[ns]").astype("int64") // 10**6).astype(str)
    events["occurred_at"] = ms.where(events.index != 3, (ms.astype("int64") // 1000).astype(str))
    with pytest.raises(DataContractError) as exc:
        build(tmp_path, {"subscriptions": SUBS, "events": events}, fmt="csv")
    msg = str(exc.value)
    assert msg.startswith("events.occurred_at: 1 value(s) are not of type timestamp: they are Unix epoch seconds "
                          f"(9-10 digits) in a column of epoch milliseconds ({len(events) - 1} values of 12-13 "
                          "digits): the column mixes the two units; write every value in one (seconds x 1000)"), msg
