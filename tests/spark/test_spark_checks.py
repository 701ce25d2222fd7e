"""The contract checks on Spark (issue 17): a Parquet folder read by Spark and checked there with
``features/validate.py``'s SQL gives DuckDB's report, clean tables, snapshots and error messages."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from core.errors import ChurnwatchError
from core.store import read_snapshots
from demo.generator import write_demo_data
from features.contract import TABLES
from features.pipeline import build_snapshots, open_connection, prepare
from features.sources import open_source, spark_reads
from features.spark import open_spark
from tests.features.test_employee_bands import band_tables
from tests.spark.test_spark_features import assert_same_rows
from tests.tiny import D, T, frame, settings, write_tables

pytestmark = pytest.mark.slow


def _events() -> list[dict]:
    """150 plain events over Jan-Jun 2024, then one of each kind set aside (one row per reason, so
    the example row is the same whichever engine finds it), spellings of one type, padded text."""
    types = ("login", "report_build", "Report Build", "dashboard_view")
    start = T(2024, 1, 1, 9)
    out = [dict(account_id=f"a{1 + i % 3}", user_id=f"u{i % 5}", occurred_at=start + dt.timedelta(hours=29 * i),
                event_type=types[i % 4], quantity=1.0) for i in range(150)]
    return out + [
        dict(account_id="ghost", user_id="u1", occurred_at=T(2024, 2, 1), event_type="login", quantity=1.0),
        dict(account_id="a1", user_id="u1", occurred_at=T(1900, 1, 1), event_type="login", quantity=1.0),
        dict(account_id="a2", user_id="u2", occurred_at=T(2024, 3, 1), event_type="login", quantity=-2.0),
        dict(account_id="a3", user_id="u3", occurred_at=T(2024, 3, 2), event_type="login", quantity=float("nan")),
        dict(account_id=None, user_id="u3", occurred_at=T(2024, 3, 3), event_type="login", quantity=1.0),
        dict(account_id="a1", user_id="  u4 ", occurred_at=T(2024, 3, 4), event_type=" login", quantity=None),
        dict(account_id="a2", user_id=None, occurred_at=T(2024, 3, 5), event_type="login", quantity=3.0),
        dict(account_id="a3", user_id="u1", occurred_at=T(2099, 1, 1), event_type="login", quantity=1.0),  # stray
    ]


SUBS = [dict(account_id="a1", start_date=D(2024, 1, 1), end_date=None, mrr=10.0, plan="p", seats=2),
        dict(account_id="a1", start_date=D(2024, 1, 1), end_date=None, mrr=10.0, plan="p", seats=2),  # twice
        dict(account_id="a2", start_date=D(2024, 1, 1), end_date=D(2024, 6, 1), mrr=20.0, plan="p", seats=-3),
        dict(account_id="a2", start_date=D(2024, 3, 1), end_date=D(2024, 2, 1), mrr=5.0, plan="q", seats=1),
        dict(account_id="a3", start_date=D(2024, 2, 1), end_date=None, mrr=30.0, plan="p", seats=1),
        dict(account_id="a3", start_date=D(2024, 4, 1), end_date=None, mrr=-1.0, plan="add", seats=1)]
ACCOUNTS = [dict(account_id="a1", signed_at=D(2023, 12, 1), employees=50, segment="A"),
            dict(account_id="a2", signed_at=D(2023, 12, 15), employees=-5, segment="B"),
            dict(account_id="a3", signed_at=D(2024, 1, 20), employees=10, segment="A"),
            dict(account_id="a3", signed_at=D(2024, 1, 20), employees=10, segment="A")]  # twice
TICKETS = [dict(account_id="a1", opened_at=T(2024, 2, 1), resolved_at=T(2024, 2, 2), priority="high", csat=4.0),
           dict(account_id="a1", opened_at=T(2024, 2, 1), resolved_at=T(2024, 2, 2), priority="high", csat=4.0),
           dict(account_id="a2", opened_at=T(2024, 3, 5), resolved_at=T(2024, 3, 1), priority="low", csat=3.0),
           dict(account_id="a3", opened_at=T(2024, 4, 1), resolved_at=T(2024, 4, 3), priority="low", csat=7.0)]
INVOICES = [dict(account_id="a1", issued_at=D(2024, 2, 1), due_at=D(2024, 2, 15), paid_at=D(2024, 2, 10),
                 amount=10.0, status="paid"),
            dict(account_id="a2", issued_at=D(2024, 2, 1), due_at=D(2024, 2, 15), paid_at=None, amount=20.0,
                 status="Void"),
            dict(account_id="a3", issued_at=D(2024, 3, 1), due_at=D(2024, 2, 1), paid_at=None, amount=30.0,
                 status="open")]


def _tickets() -> pd.DataFrame:
    """TICKETS with Zendesk's own ids: the two alike share one (exported twice), and a third ticket alike
    in every contract column has its own id, so it is a ticket of its own (hashed on both engines)."""
    rows = frame("tickets", [*TICKETS, TICKETS[0]])
    rows["ticket_id"] = ["t1", "t1", "t2", "t3", "t9"]
    return rows


@pytest.fixture
def set_aside_data(tmp_path):
    return write_tables(tmp_path / "bad", {"accounts": ACCOUNTS, "subscriptions": SUBS, "events": _events(),
                                           "tickets": _tickets(), "invoices": INVOICES})


def _checked_both_ways(folder, s, staging):
    """(DuckDB's report, Spark's report, DuckDB connection, SparkConnection) after ``prepare``."""
    assert spark_reads(open_source(folder)) is None  # Spark reads the folder itself
    con = open_connection()
    run = open_spark("local[2]", staging=staging)
    duck, _ = prepare(folder, s, con)
    on_spark, _ = prepare(folder, s, run)
    return duck, on_spark, con, run


def assert_same_report(a, b) -> None:
    """Every field of two ``ValidationReport``s but the engine's own row-hash sum."""
    assert (a.engine, b.engine) == ("duckdb", "spark")
    assert (a.data_start, a.data_end, a.warnings) == (b.data_start, b.data_end, b.warnings)
    assert a.event_families == b.event_families and a.event_spellings == b.event_spellings
    assert list(a.tables) == list(b.tables)
    for name, x in a.tables.items():
        y = b.tables[name]
        for f in ("rows_in", "rows_kept", "set_aside", "examples", "columns", "values_set_aside", "value_examples",
                  "readings"):
            assert getattr(x, f) == getattr(y, f), (name, f)
        first = [v.date() if isinstance(v, dt.datetime) else v for v in (x.first_at, y.first_at)]
        assert first[0] == first[1], name
        assert (x.content_hash == 0) == (y.content_hash == 0), name
    assert a.to_dict() == b.to_dict()


def _rows(cursor_rows) -> list[tuple]:
    return sorted(cursor_rows, key=repr)


def assert_same_clean_tables(con, run) -> None:
    for name in TABLES:
        cols = ", ".join(TABLES[name].column_names)
        duck = _rows(con.execute(f"SELECT {cols} FROM clean_{name}").fetchall())
        spark = _rows(run.execute(f"SELECT {cols} FROM clean_{name}").fetchall())
        assert len(duck) == len(spark), name
        for x, y in zip(duck, spark):
            assert [None if v != v else v for v in x] == [None if v != v else v for v in y], name


def test_set_aside_rows_are_counted_and_shown_the_same_on_spark(spark, set_aside_data, tmp_path):
    duck, on_spark, con, run = _checked_both_ways(set_aside_data, settings(), tmp_path / "staging")
    try:
        assert_same_report(duck, on_spark)
        assert_same_clean_tables(con, run)
    finally:
        run.close()
        con.close()
    ev = on_spark.tables["events"]
    assert ev.set_aside == {"unknown_account": 1, "before_1990": 1, "negative_quantity": 1,
                            "missing_account_id": 1, "after_data_end": 1}  # NaN: null in Parquet (pandas), read as 1
    assert ev.examples["unknown_account"]["account_id"] == "ghost"
    assert on_spark.tables["accounts"].set_aside == {"duplicate_account": 1}
    assert on_spark.tables["accounts"].values_set_aside == {"negative_employees": 1}
    assert on_spark.tables["subscriptions"].set_aside == {"duplicate_term": 1, "end_before_start": 1,
                                                          "negative_mrr": 1}
    assert on_spark.tables["tickets"].rows_kept == 2  # t1 once and t9, a ticket of its own
    assert on_spark.tables["tickets"].set_aside == {"duplicate_ticket": 1, "resolved_before_opened": 1,
                                                    "csat_out_of_range": 1}
    assert on_spark.tables["invoices"].set_aside == {"void_invoice": 1, "due_before_issued": 1}
    assert on_spark.event_spellings == {"report_build": {"report_build": 38, "Report Build": 37}}
    said = [w for w in on_spark.warnings if not w.startswith("event_roles.")]  # the tiny roles' absent types
    assert on_spark.data_end == D(2024, 6, 30) and len(said) == 1 and "2099-01-01" in said[0]
    assert [w for w in on_spark.warnings if w.startswith("event_roles.")] == \
        [w for w in duck.warnings if w.startswith("event_roles.")] != []


def test_snapshots_from_a_source_with_set_aside_rows_are_the_same_on_spark(spark, set_aside_data, tmp_path):
    s = settings()
    as_of = [D(2024, 3, 1), D(2024, 5, 1)]
    duck = build_snapshots(set_aside_data, s, tmp_path / "duck.duckdb", as_of=as_of)
    on_spark = build_snapshots(set_aside_data, s, tmp_path / "spark.duckdb", as_of=as_of, engine="spark",
                               master="local[2]")
    assert_same_report(duck.validation, on_spark.validation)
    # the columns nothing reads, of every table (a probe's Spark build left out the tickets' four)
    assert on_spark.profile.unused == duck.profile.unused
    assert {c.table for c in duck.profile.unused} - {"accounts", "subscriptions"}
    assert duck.input_hash != on_spark.input_hash  # each engine's row hash: the engine is part of it
    a, b = (read_snapshots(tmp_path / f"{e}.duckdb").sort_values(["account_id", "as_of"]) for e in ("duck", "spark"))
    assert len(a) == 6 and a["segment"].notna().any()
    assert_same_rows(a, b)


def test_demo_data_checked_on_spark_gives_the_same_report_and_clean_tables(spark, tmp_path):
    write_demo_data(tmp_path / "d", accounts=25, months=5, seed=4)
    from core.settings import load_settings

    s = load_settings(tmp_path / "d" / "churnwatch.yaml")
    duck, on_spark, con, run = _checked_both_ways(tmp_path / "d", s, tmp_path / "staging")
    try:
        assert_same_report(duck, on_spark)
        assert_same_clean_tables(con, run)
        assert on_spark.tables["events"].rows_kept > 5000
    finally:
        run.close()
        con.close()


def test_columns_of_no_type_and_nanosecond_times_read_as_duckdb_reads_them(spark, tmp_path):
    """pandas writes an all-null column with no type (DuckDB: NULL, Spark would say INT and refuse
    to cast it to a date) and times in nanoseconds (which Spark refuses): the same report on Spark."""
    subs = pd.DataFrame({"account_id": ["a", "b"], "start_date": [D(2024, 1, 1), D(2024, 1, 5)],
                         "end_date": [None, None], "mrr": [10.0, 20.0]})
    events = pd.DataFrame({"account_id": ["a", "b", "a"], "user_id": [None, None, None],
                           "occurred_at": pd.to_datetime(["2024-02-01 10:00:00.123456789", "2024-02-02 00:00",
                                                          "2024-03-01 00:00"], format="ISO8601"),
                           "event_type": ["login", "login", "report_build"]})
    folder = write_tables(tmp_path / "untyped", {"subscriptions": subs, "events": events, "invoices": []})
    duck, on_spark, con, run = _checked_both_ways(folder, settings(data_end=D(2024, 6, 1)), tmp_path / "staging")
    try:
        assert_same_report(duck, on_spark)
        assert_same_clean_tables(con, run)
        assert run.execute("DESCRIBE raw_events").fetchall()[1] == ("user_id", '"NULL"')
        assert run.execute("SELECT min(occurred_at) FROM clean_events").fetchone()[0] == T(2024, 2, 1, 10, 0, 0, 123457)
    finally:
        run.close()
        con.close()


def test_employees_in_bands_read_the_same_on_spark(spark, tmp_path):
    """A CRM's company-size bands (``11-50``: the midpoint, ``5000+``: the lower bound, thousands
    separators, spaces, an en dash) read to the same numbers and the same report on either engine."""
    given = ["11-50", "1,001-5,000", "10,001+", " 51 - 200 ", "250", "5001\u201310000", None, "1-10", "11-50"]
    tables = band_tables(given)
    ids = list(tables["accounts"]["account_id"])
    folder = write_tables(tmp_path / "bands", tables)
    duck, on_spark, con, run = _checked_both_ways(folder, settings(data_end=D(2024, 6, 1)), tmp_path / "staging")
    try:
        assert_same_report(duck, on_spark)
        assert_same_clean_tables(con, run)
        read = dict(run.execute("SELECT account_id, employees FROM clean_accounts").fetchall())
    finally:
        run.close()
        con.close()
    assert [read[i] for i in ids] == [31, 3001, 10001, 126, 250, 7501, None, 6, 31]
    assert on_spark.tables["accounts"].readings == {"employees": {
        "values": 7, "distinct": 6, "bands": {"11-50": 31, "51 - 200": 126, "1,001-5,000": 3001,
                                              "1-10": 6, "10,001+": 10001, "5001\u201310000": 7501}}}
    assert list(on_spark.tables["accounts"].readings["employees"]["bands"]) == [
        "11-50", "1,001-5,000", "1-10", "10,001+", "5001\u201310000", "51 - 200"]  # by count, then text


def _error(folder, s, run) -> str:
    with pytest.raises(ChurnwatchError) as err:
        prepare(folder, s, run)
    text = str(err.value)
    assert "at org.apache" not in text and "Traceback" not in text and "py4j" not in text.lower()
    return text


@pytest.mark.parametrize("case", ["text_quantity", "no_event_type", "mapping", "all_unknown", "no_subscriptions",
                                  "bad_timestamp", "unknown_employees"])
def test_errors_of_the_checks_on_spark_are_duckdbs(spark, tmp_path, case):
    """Each bad input stops the checks with the same message on either engine (one clear line and
    the example row), none of Spark's stack trace."""
    subs = [dict(account_id="a", start_date=D(2024, 1, 1), end_date=None, mrr=10.0)]
    good = dict(account_id=["a", "a"], user_id=["u", "u"], occurred_at=[T(2024, 2, 1), T(2024, 2, 2)],
                event_type=["login", "login"], quantity=[1.0, 2.0])
    s = settings(data_end=D(2024, 6, 1))
    events = pd.DataFrame(good)
    tables = {"subscriptions": subs}
    if case == "text_quantity":
        events["quantity"] = ["1", "lots"]
    elif case == "no_event_type":
        events = events.drop(columns=["event_type"])
    elif case == "mapping":
        s = settings(data_end=D(2024, 6, 1), column_mapping={"events": {"kind": "event_type"}})
    elif case == "all_unknown":
        events["account_id"] = ["x", "y"]
    elif case == "bad_timestamp":
        events["occurred_at"] = ["2024-02-01 10:00", "not a date"]
    elif case == "unknown_employees":  # neither a number nor a band
        tables["accounts"] = pd.DataFrame({"account_id": ["a", "b"], "employees": ["11-50", "unknown"]})
    if case == "no_subscriptions":  # the one required table (a source may have no events)
        tables.pop("subscriptions")
    tables["events"] = events
    folder = write_tables(tmp_path / case, tables)
    con = open_connection()
    run = open_spark("local[2]", staging=tmp_path / "staging")
    try:
        assert _error(folder, s, con) == _error(folder, s, run)
    finally:
        run.close()
        con.close()
    expected = {"text_quantity": "events.quantity: 1 value(s) are not of type double",
                "no_event_type": "events: required column 'event_type' is missing",
                "mapping": "events: column mapping names 'kind' but the table has",
                "all_unknown": "events: all 2 rows were set aside (2 as unknown_account)",
                "no_subscriptions": "required table 'subscriptions' not found",
                "bad_timestamp": "events.occurred_at: 1 value(s) are not of type timestamp",
                "unknown_employees": "accounts.employees: 1 value(s) are not of type bigint"}[case]
    assert expected in _error(folder, s, open_connection())
