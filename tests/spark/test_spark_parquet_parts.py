"""A Parquet folder whose parts differ in schema (pandas writes each part's own: an all-null column
of no type, nanosecond or microsecond times): Spark and DuckDB keep every part's values
and read the folder alike; a column missing from some parts both refuse, with one message."""

from __future__ import annotations

from contextlib import contextmanager

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import ChurnwatchError
from features.pipeline import open_connection, prepare
from features.spark import open_spark
from tests.spark.test_spark_checks import assert_same_clean_tables, assert_same_report
from tests.tiny import D, T, settings, write_tables

pytestmark = pytest.mark.slow

SUBS = [dict(account_id="a", start_date=D(2024, 1, 1), end_date=None, mrr=10.0),
        dict(account_id="b", start_date=D(2024, 1, 5), end_date=None, mrr=20.0)]


def _events_part(folder, i: int, times: list[str], unit: str, tz: str | None = None) -> None:
    n = len(times)
    stamps = pd.to_datetime(times, format="ISO8601")
    if tz:
        stamps = stamps.tz_localize(tz)
    pq.write_table(pa.table({"account_id": pa.array(["a", "b"] * (n // 2) + ["a"] * (n % 2)),
                             "occurred_at": pa.array(stamps, type=pa.timestamp(unit, tz)),
                             "event_type": pa.array(["login"] * n)}), folder / f"part-{i}.parquet")


def _both(folder, tmp_path):
    s = settings(data_end=D(2024, 6, 1))
    con, run = open_connection(), open_spark("local[2]", staging=tmp_path / "staging")
    return s, con, run


@contextmanager
def _read_alike(folder, tmp_path):
    """Load and check ``folder`` on DuckDB and on Spark, assert the reports and clean tables are the
    same, and give (the Spark connection, its report)."""
    s, con, run = _both(folder, tmp_path)
    try:
        duck, _ = prepare(folder, s, con)
        on_spark, _ = prepare(folder, s, run)
        assert_same_report(duck, on_spark)
        assert_same_clean_tables(con, run)
        yield run, on_spark
    finally:
        run.close()
        con.close()


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_parts_of_nanosecond_and_microsecond_times_keep_their_values_on_spark(spark, tmp_path, tz):
    """Part 0 in nanoseconds, part 1 in microseconds: Spark read part 1's microseconds as nanoseconds
    (1970-01-20) when it took part 0's unit for all; now each part's times are its own, as on DuckDB."""
    folder = write_tables(tmp_path / "d", {"subscriptions": SUBS})
    (folder / "events").mkdir()
    _events_part(folder / "events", 0, ["2024-02-01 10:00:00.123456789", "2024-02-02 00:00"], "ns", tz)
    _events_part(folder / "events", 1, ["2024-03-02 10:00", "2024-03-03 11:30:00.5"], "us", tz)
    _events_part(folder / "events", 2, ["2024-04-01 08:00"], "ns", tz)
    with _read_alike(folder, tmp_path) as (run, on_spark):
        times = [r[0] for r in run.execute("SELECT occurred_at FROM clean_events ORDER BY occurred_at").fetchall()]
        assert [t.replace(tzinfo=None) for t in times] == [
            T(2024, 2, 1, 10, 0, 0, 123457), T(2024, 2, 2), T(2024, 3, 2, 10), T(2024, 3, 3, 11, 30, 0, 500000),
            T(2024, 4, 1, 8)]
        assert on_spark.tables["events"].rows_kept == 5


@pytest.mark.parametrize("null_part", [0, 1])
def test_a_column_of_no_type_in_some_parts_only_keeps_the_others_values(spark, tmp_path, null_part):
    """``resolved_at`` all null (no type) in one part and times in the other: Spark read it as null in
    every part when part 0 had no type (part 1's times wiped) and DuckDB refused to cast part 1's times
    to NULL; now both keep every part's values, whichever part comes first."""
    folder = write_tables(tmp_path / "d", {"subscriptions": SUBS, "events": pd.DataFrame(
        {"account_id": ["a", "b"], "occurred_at": [T(2024, 2, 1), T(2024, 2, 2)], "event_type": ["login"] * 2})})
    (folder / "tickets").mkdir()
    typed = pd.DataFrame({"account_id": ["a", "b"], "opened_at": pd.to_datetime(["2024-03-01", "2024-03-02"]),
                          "resolved_at": pd.to_datetime(["2024-03-03 12:00:00.000000001", "2024-03-04"],
                                                        format="ISO8601")})
    untyped = pd.DataFrame({"account_id": ["a", "b"], "opened_at": pd.to_datetime(["2024-02-01", "2024-02-02"]),
                            "resolved_at": [None, None]})
    for i, part in enumerate([untyped, typed] if null_part == 0 else [typed, untyped]):
        part.to_parquet(folder / "tickets" / f"part-{i}.parquet", index=False)
    with _read_alike(folder, tmp_path) as (run, on_spark):
        query = "SELECT opened_at, resolved_at FROM clean_tickets ORDER BY opened_at"
        assert run.execute(query).fetchall() == [(T(2024, 2, 1), None), (T(2024, 2, 2), None),
                                                 (T(2024, 3, 1), T(2024, 3, 3, 12)), (T(2024, 3, 2), T(2024, 3, 4))]
        assert on_spark.tables["tickets"].rows_kept == 4


def test_a_column_of_no_type_in_every_part_is_null_on_both(spark, tmp_path):
    """All null (no type) in each part: read as NULL (Spark's NULL type), the other columns kept."""
    folder = write_tables(tmp_path / "d", {"subscriptions": SUBS})
    (folder / "events").mkdir()
    for i, when in enumerate([["2024-02-01", "2024-02-02"], ["2024-03-01", "2024-03-02"]]):
        pd.DataFrame({"account_id": ["a", "b"], "user_id": [None, None], "occurred_at": pd.to_datetime(when),
                      "event_type": ["login"] * 2}).to_parquet(folder / "events" / f"part-{i}.parquet", index=False)
    with _read_alike(folder, tmp_path) as (run, on_spark):
        counts = run.execute("SELECT count(*), count(user_id), count(occurred_at) FROM raw_events").fetchone()
        assert counts == (4, 0, 4)


@pytest.mark.parametrize("extra", [[None, None], ["high", "low"]])
def test_a_column_missing_from_some_parts_is_refused_by_both(spark, tmp_path, extra):
    """``csat`` in part 0 (all null and of no type, or text) and absent from part 1: neither engine
    invents it for part 1 (Spark read part 0's schema for both, or filled the gap with nulls, before):
    both stop with the same error naming the column and the two parts."""
    folder = write_tables(tmp_path / "d", {"subscriptions": SUBS, "events": pd.DataFrame(
        {"account_id": ["a", "b"], "occurred_at": [T(2024, 2, 1), T(2024, 2, 2)], "event_type": ["login"] * 2})})
    (folder / "tickets").mkdir()
    tickets = pd.DataFrame({"account_id": ["a", "b"], "opened_at": pd.to_datetime(["2024-03-01", "2024-03-02"]),
                            "resolved_at": pd.to_datetime(["2024-03-02", "2024-03-03"])})
    tickets.assign(csat=extra).to_parquet(folder / "tickets" / "part-0.parquet", index=False)
    tickets.to_parquet(folder / "tickets" / "part-1.parquet", index=False)
    s, con, run = _both(folder, tmp_path)
    try:
        messages = []
        for engine in (con, run):
            with pytest.raises(ChurnwatchError, match="'csat' is in part-0.parquet but not in part-1.parquet") as err:
                prepare(folder, s, engine)
            messages.append(str(err.value))
        assert messages[0] == messages[1] and "at org.apache" not in messages[1]
    finally:
        run.close()
        con.close()
