"""Dates as spreadsheets and warehouses write them (issue 12 leftovers): a declared format
(``date_format``, ``date_formats``), YYYYMMDD numbers, and the errors when a value does not read."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from core.errors import ConfigError, DataContractError
from core.store import read_snapshots
from features.pipeline import build_snapshots
from features.sources import load_raw_tables, open_source
from features.subset import load_clean_subset
from features.validate import validate_tables
from tests.tiny import D, T, settings, write_tables

#: Terms and events whose days are above 12, so day-first and month-first differ everywhere.
TERMS = [("a1", D(2024, 1, 13), D(2024, 11, 14), 100.0), ("a2", D(2024, 2, 15), None, 50.0),
         ("a3", D(2024, 3, 5), D(2024, 5, 3), 10.0)]
EVENTS = [("a1", T(2024, 3, 17, 14, 22)), ("a2", T(2024, 4, 21, 9, 5, 7)), ("a3", T(2024, 4, 3, 0, 0))]


def _tables(day: str, moment: str) -> dict[str, pd.DataFrame]:
    """The terms and events with dates written by ``day`` and moments by ``moment`` (strftime)."""
    subs = pd.DataFrame([{"account_id": a, "start_date": s.strftime(day), "end_date": e.strftime(day) if e else None,
                          "mrr": m} for a, s, e, m in TERMS])
    events = pd.DataFrame([{"account_id": a, "occurred_at": t.strftime(moment), "event_type": "login"}
                           for a, t in EVENTS])
    return {"subscriptions": subs, "events": events}


def _clean(tmp_path, tables, fmt: str = "csv", **kw) -> duckdb.DuckDBPyConnection:
    """The source checked as ``features`` checks it: a connection holding the ``clean_*`` tables."""
    folder = write_tables(tmp_path / "data", tables, fmt=fmt)
    con = duckdb.connect()
    validate_tables(con, load_raw_tables(open_source(folder), con), settings(**kw))
    return con


def _terms(con) -> list[tuple]:
    return con.execute("SELECT account_id, start_date, end_date FROM clean_subscriptions ORDER BY 1").fetchall()


def _moments(con) -> list[tuple]:
    return con.execute("SELECT account_id, occurred_at FROM clean_events ORDER BY 1").fetchall()


EXPECTED_TERMS = [(a, s, e) for a, s, e, _ in TERMS]
EXPECTED_MOMENTS = list(EVENTS)


@pytest.mark.parametrize(("date_format", "day", "moment"), [
    ("%d/%m/%Y", "%d/%m/%Y", "%d/%m/%Y %H:%M:%S"),           # a European spreadsheet
    ("%m/%d/%Y", "%m/%d/%Y", "%m/%d/%Y %I:%M:%S %p"),        # a US one, 12-hour clock
    ("%d.%m.%Y", "%d.%m.%Y", "%d.%m.%Y %H:%M:%S"),           # German
])
def test_a_declared_format_reads_every_date_column_of_the_source(tmp_path, date_format, day, moment):
    con = _clean(tmp_path, _tables(day, moment), date_format=date_format)
    assert _terms(con) == EXPECTED_TERMS
    assert _moments(con) == EXPECTED_MOMENTS


def test_day_first_and_month_first_read_the_same_text_as_different_days(tmp_path):
    tables = {"subscriptions": pd.DataFrame([{"account_id": "a1", "start_date": "3/5/2024", "end_date": "",
                                              "mrr": 1.0}]),
              "events": pd.DataFrame([{"account_id": "a1", "occurred_at": "3/5/2024 14:22", "event_type": "x"}])}
    day_first = _clean(tmp_path / "d", tables, date_format="%d/%m/%Y")
    month_first = _clean(tmp_path / "m", tables, date_format="%m/%d/%Y")
    assert _terms(day_first) == [("a1", D(2024, 5, 3), None)]
    assert _terms(month_first) == [("a1", D(2024, 3, 5), None)]
    assert _moments(day_first) == [("a1", T(2024, 5, 3, 14, 22))]


def test_without_a_format_a_spreadsheet_date_stops_and_says_how_to_declare_it(tmp_path):
    with pytest.raises(DataContractError) as exc:
        _clean(tmp_path, _tables("%d/%m/%Y", "%Y-%m-%d %H:%M:%S"))
    msg = str(exc.value)
    assert msg.startswith("subscriptions.start_date: 3 value(s) are not of type date")
    assert "date_format: '%d/%m/%Y' (day first) or '%m/%d/%Y' (month first)" in msg


def test_iso_values_are_read_as_iso_beside_a_declared_format(tmp_path):
    # the events come from another tool, in ISO; the spreadsheet's terms are day-first
    con = _clean(tmp_path, _tables("%d/%m/%Y", "%Y-%m-%dT%H:%M:%S"), date_format="%d/%m/%Y")
    assert _terms(con) == EXPECTED_TERMS and _moments(con) == EXPECTED_MOMENTS


def test_an_iso_offset_beside_a_declared_format_is_the_instant_in_utc(tmp_path):
    """p39 (2026-12-06): with ``date_format`` set for a Chargebee export, an analytics export's
    ``2025-04-01T07:13:18-07:00`` was read as 07:13 (the offset dropped), where without a format it is 14:13 UTC."""
    tables = _tables("%d/%m/%Y", "%Y-%m-%dT%H:%M:%S-07:00")
    with_format = _moments(_clean(tmp_path / "a", tables, date_format="%d/%m/%Y"))
    assert with_format == [(a, t + pd.Timedelta(hours=7)) for a, t in EVENTS]
    iso = _tables("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S-07:00")
    assert _moments(_clean(tmp_path / "b", iso)) == with_format


def test_a_value_not_in_the_declared_format_names_column_format_and_value(tmp_path):
    tables = _tables("%d/%m/%Y", "%d/%m/%Y %H:%M")
    tables["subscriptions"].loc[1, "start_date"] = "15-02-2024"
    with pytest.raises(DataContractError) as exc:
        _clean(tmp_path, tables, date_format="%d/%m/%Y")
    msg = str(exc.value)
    assert msg.startswith("subscriptions.start_date: 1 value(s) match neither the date format '%d/%m/%Y' "
                          "(date_format: '%d/%m/%Y' in churnwatch.yaml")
    assert "e.g. '15-02-2024'" in msg
    assert exc.value.column == "start_date"
    assert exc.value.example == {"account_id": "a2", "start_date": "15-02-2024", "end_date": None, "mrr": "50.0"}


@pytest.mark.parametrize(("value", "kw"), [
    ("15/02/24", {"date_format": "%d/%m/%Y"}),  # DuckDB's %Y reads two digits: year 24
    ("2024021", {"date_formats": {"subscriptions": {"start_date": "%Y%m%d"}}}),  # 7 digits
])
def test_a_short_year_or_a_short_yyyymmdd_is_no_date(tmp_path, value, kw):
    """'15/02/24' read with %d/%m/%Y was the year 24 (set aside later as a placeholder, not named)."""
    fmt = "%d/%m/%Y" if "date_format" in kw else "%Y%m%d"
    tables = _tables(fmt, "%Y-%m-%d %H:%M:%S")
    tables["subscriptions"]["start_date"] = tables["subscriptions"]["start_date"].astype(str)
    tables["subscriptions"].loc[1, "start_date"] = value
    with pytest.raises(DataContractError) as exc:
        _clean(tmp_path, tables, **kw)
    assert f"e.g. '{value}'" in str(exc.value) and exc.value.column == "start_date"


def test_the_error_names_a_mapped_column_and_a_per_column_format(tmp_path):
    tables = _tables("%Y-%m-%d", "%Y-%m-%d %H:%M:%S")
    tables["subscriptions"] = tables["subscriptions"].rename(columns={"start_date": "Start"})
    tables["subscriptions"]["Start"] = ["20240113", "2024-02-15", "2024/3/5x"]
    with pytest.raises(DataContractError) as exc:
        _clean(tmp_path, tables, column_mapping={"subscriptions": {"Start": "start_date"}},
               date_formats={"subscriptions": {"start_date": "%Y%m%d"}})
    msg = str(exc.value)
    assert msg.startswith("subscriptions.start_date (column 'Start'): 1 value(s) match neither the date format "
                          "'%Y%m%d' (date_formats: {subscriptions: {start_date: '%Y%m%d'}} in churnwatch.yaml")
    assert "e.g. '2024/3/5x'" in msg


def test_a_per_column_format_wins_over_the_source_wide_one(tmp_path):
    tables = _tables("%d/%m/%Y", "%d/%m/%Y %H:%M:%S")
    tables["subscriptions"]["start_date"] = [s.strftime("%Y%m%d") for _, s, _, _ in TERMS]
    con = _clean(tmp_path, tables, date_format="%d/%m/%Y", date_formats={"subscriptions": {"start_date": "%Y%m%d"}})
    assert _terms(con) == EXPECTED_TERMS and _moments(con) == EXPECTED_MOMENTS


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_yyyymmdd_integers_are_read_without_a_format(tmp_path, fmt):
    subs = pd.DataFrame([{"account_id": a, "start_date": int(s.strftime("%Y%m%d")),
                          "end_date": int(e.strftime("%Y%m%d")) if e else None, "mrr": m} for a, s, e, m in TERMS])
    assert str(subs["end_date"].dtype) == "float64"  # pandas' integers with a missing value: 20241114.0
    events = pd.DataFrame([{"account_id": a, "occurred_at": int(t.strftime("%Y%m%d")), "event_type": "login"}
                           for a, t in EVENTS])
    assert str(events["occurred_at"].dtype) == "int64"
    con = _clean(tmp_path, {"subscriptions": subs, "events": events}, fmt=fmt)
    assert _terms(con) == EXPECTED_TERMS
    assert _moments(con) == [(a, T(t.year, t.month, t.day)) for a, t in EVENTS]


def test_an_invalid_yyyymmdd_value_stops_and_names_it(tmp_path):
    events = pd.DataFrame([{"account_id": a, "occurred_at": int(t.strftime("%Y%m%d")), "event_type": "login"}
                           for a, t in EVENTS] + [{"account_id": "a1", "occurred_at": 20240230, "event_type": "x"}])
    with pytest.raises(DataContractError) as exc:
        _clean(tmp_path, {"subscriptions": _tables("%Y-%m-%d", "%Y-%m-%d")["subscriptions"], "events": events},
               fmt="parquet")
    msg = str(exc.value)
    assert msg.startswith("events.occurred_at: its values are 8-digit numbers, read as YYYYMMDD dates, but 1 of "
                          "them are not a date from 1900 to 2099 written so, e.g. '20240230'")
    assert "date_formats: {events: {occurred_at: '%Y%m%d'}}" in msg


def test_a_yyyymmdd_value_outside_1900_2099_is_read_only_when_declared(tmp_path):
    subs = pd.DataFrame([{"account_id": "a1", "start_date": 20240113, "end_date": 99991231, "mrr": 1.0}])
    events = pd.DataFrame([{"account_id": "a1", "occurred_at": "2024-03-17 14:22", "event_type": "login"}])
    with pytest.raises(DataContractError, match="e.g. '99991231'"):
        _clean(tmp_path / "a", {"subscriptions": subs, "events": events})
    con = _clean(tmp_path / "b", {"subscriptions": subs, "events": events},
                 date_formats={"subscriptions": {"end_date": "%Y%m%d"}})
    assert _terms(con) == [("a1", D(2024, 1, 13), D(9999, 12, 31))]


def test_other_numbers_are_not_taken_for_yyyymmdd(tmp_path):
    # seven digits: not 8-digit numbers, so not dates (the plain cast's error, with what is read)
    subs = pd.DataFrame([{"account_id": "a1", "start_date": 2024011, "end_date": None, "mrr": 1.0}])
    with pytest.raises(DataContractError, match=r"not of type date \(read from numbers: YYYYMMDD dates such as"):
        _clean(tmp_path, {"subscriptions": subs, "events": _tables("%Y-%m-%d", "%Y-%m-%d")["events"]},
               fmt="parquet")


@pytest.mark.parametrize(("kw", "message"), [
    ({"date_format": "%d/%m"}, "date_format: '%d/%m' does not give a whole date"),
    ({"date_format": "%d/%Q/%Y"}, "date_format: '%d/%Q/%Y' is not a strptime format"),
    ({"date_format": "%Y-%d-%m"}, "date_format: '%Y-%d-%m' reads the ISO date 2024-03-05 as 2024-05-03"),
    ({"date_formats": {"subscriptions": {"mrr": "%Y%m%d"}}},
     "date_formats: subscriptions.mrr is not a date or timestamp column of the contract"),
    ({"date_formats": {"payments": {"paid_at": "%Y%m%d"}}}, "date_formats: 'payments' is not a table"),
])
def test_a_format_that_cannot_read_dates_is_a_config_error(tmp_path, kw, message):
    with pytest.raises(ConfigError) as exc:
        _clean(tmp_path, _tables("%Y-%m-%d", "%Y-%m-%d"), **kw)
    assert str(exc.value).startswith(message)


def test_the_few_accounts_explain_reads_get_the_same_dates(tmp_path):
    """``load_clean_subset`` (explain, report) reads the source through the same typed views."""
    folder = write_tables(tmp_path / "data", _tables("%d/%m/%Y", "%d/%m/%Y %H:%M:%S"), fmt="csv")
    con = duckdb.connect()
    load_clean_subset(con, settings(data=str(folder), date_format="%d/%m/%Y"), ["a1", "a3"],
                      {"subscriptions": (None, None), "events": (None, None)})
    assert _terms(con) == [t for t in EXPECTED_TERMS if t[0] != "a2"]
    assert _moments(con) == [m for m in EXPECTED_MOMENTS if m[0] != "a2"]


def test_the_feature_build_of_a_day_first_export_equals_the_iso_one(tmp_path):
    as_of = [D(2024, 4, 7), D(2024, 4, 21)]
    iso = write_tables(tmp_path / "iso", _tables("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"), fmt="csv")
    local = write_tables(tmp_path / "local", _tables("%d/%m/%Y", "%d/%m/%Y %H:%M"), fmt="csv")
    a = build_snapshots(iso, settings(), tmp_path / "a.duckdb", as_of=as_of)
    b = build_snapshots(local, settings(date_format="%d/%m/%Y"), tmp_path / "b.duckdb", as_of=as_of)
    # the seconds of 09:05:07 are not written in the local file: every feature here is by day
    frames = [read_snapshots(tmp_path / f"{x}.duckdb") for x in "ab"]
    assert len(frames[0]) == 6 and a.validation.data_end == b.validation.data_end
    assert frames[0]["logins_30d"].sum() > 0 and frames[0]["tenure_days"].notna().all()
    pd.testing.assert_frame_equal(frames[0], frames[1])


@pytest.mark.parametrize(("day", "kw"), [("%d/%m/%Y", {"date_format": "%d/%m/%Y"}), ("%Y%m%d", {})])
def test_own_subscription_columns_follow_the_start_date_as_the_contract_reads_it(tmp_path, day, kw):
    """A term's own columns (here ``plan_family``) are dated by the contract's reading of its start:
    read from the raw text with ISO only, a day-first or YYYYMMDD start left every value null."""
    as_of = [D(2024, 4, 7), D(2024, 4, 21)]
    tables = {}
    for name, fmt in (("iso", "%Y-%m-%d"), ("local", day)):
        t = _tables(fmt, "%Y-%m-%d %H:%M:%S")
        t["subscriptions"]["plan_family"] = ["basic", "pro", "basic"]
        tables[name] = write_tables(tmp_path / name, t, fmt="csv")
    build_snapshots(tables["iso"], settings(), tmp_path / "a.duckdb", as_of=as_of)
    build_snapshots(tables["local"], settings(**kw), tmp_path / "b.duckdb", as_of=as_of)
    frames = [read_snapshots(tmp_path / f"{x}.duckdb") for x in "ab"]
    own = [c for c in frames[0].columns if "plan_family" in c]
    assert own, list(frames[0].columns)
    assert sorted(frames[1].loc[frames[1]["account_id"] == "a3", own[0]]) == ["basic", "basic"]
    assert frames[1][own[0]].notna().all()
    pd.testing.assert_frame_equal(frames[0], frames[1])
