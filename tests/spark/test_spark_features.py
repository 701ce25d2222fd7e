"""Spark builds the same snapshots as DuckDB from the same SQL (issue 17), and says what is wrong in one line."""

from __future__ import annotations

import datetime as dt
import uuid

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core.errors import DataContractError
from core.store import read_meta, read_snapshots
from features.pipeline import build_snapshots
from features.spark import SparkConnection, SparkError, to_spark_sql
from features.spec import build_catalogue, scaled
from tests.features.test_point_in_time import ACCOUNTS, AS_OF, SUBS, T_AS_OF, TYPES, event, future, invoice, ticket
from tests.spark.conftest import CATALOG_DB, register_tables
from tests.tiny import D, settings, write_tables

pytestmark = pytest.mark.slow


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Every column, account and as-of date equal; floats to 1e-9 relative."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    for c in a.columns:
        x, y = a[c], b[c]
        if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
            xs, ys = x.astype(float).to_numpy(), y.astype(float).to_numpy()
            assert (np.isnan(xs) == np.isnan(ys)).all(), c
            ok = ~np.isnan(xs)
            np.testing.assert_allclose(xs[ok], ys[ok], rtol=1e-9, atol=0, err_msg=c)
        else:
            assert x.astype(object).where(x.notna(), None).tolist() == \
                y.astype(object).where(y.notna(), None).tolist(), c


def test_spark_and_duckdb_build_identical_snapshots(built):
    """DuckDB from the Parquet folder, Spark from the same tables in the Spark catalog (read and checked
    there, tests/spark/test_spark_checks.py): identical."""
    tmp, _settings, _bundle = built
    duck, spark = read_snapshots(tmp / "duck.duckdb"), read_snapshots(tmp / "spark.duckdb")
    assert len(duck) > 1000 and duck["as_of"].nunique() > 20
    assert_same_rows(duck, spark)
    with duckdb.connect(str(tmp / "duck.duckdb"), read_only=True) as a, \
            duckdb.connect(str(tmp / "spark.duckdb"), read_only=True) as b:
        ma, mb = read_meta(a), read_meta(b)
    # the Spark build checked the catalog's tables in Spark: its input hash sums Spark's row hashes
    assert ma.catalogue_json == mb.catalogue_json and ma.input_hash != mb.input_hash
    assert (ma.data_start, ma.data_end) == (mb.data_start, mb.data_end)
    assert mb.data_source == f"spark-catalog://{CATALOG_DB}" and mb.source == f"Spark catalog {CATALOG_DB}"


def test_a_missing_catalog_table_or_column_is_one_clear_line(spark, built):
    tmp, settings, _bundle = built
    register_tables(spark, tmp / "d", "demo_bad", drop={"events": ["event_type"]},
                    tables=["subscriptions", "events"])

    def error(source: str) -> str:
        with pytest.raises(DataContractError) as err:
            build_snapshots(source, settings, tmp / "bad.duckdb", engine="spark", master="local[2]")
        text = str(err.value)
        assert "at org.apache" not in text and "Traceback" not in text and "py4j" not in text.lower()
        return text.splitlines()[0]  # the message; a missing column adds an example row below it

    assert "required column 'event_type' is missing" in error("spark-catalog://demo_bad")
    assert f"{CATALOG_DB}.no_such_events" in error(f"spark-catalog://{CATALOG_DB}?events={CATALOG_DB}.no_such_events")
    assert "no_such_database: no such database" in error("spark-catalog://no_such_database")
    assert "'clicks' is not a table" in error("spark-catalog://demo_bad?clicks=x.y")
    register_tables(spark, tmp / "d", "demo_no_subscriptions", tables=["events"])
    assert "required table 'subscriptions' not found" in error("spark-catalog://demo_no_subscriptions")


def test_spark_writes_parquet_partitioned_by_as_of_date(built):
    tmp, _settings, _bundle = built
    folder = tmp / "spark.snapshots"
    duck = read_snapshots(tmp / "duck.duckdb")
    parts = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert parts == sorted(f"as_of={d:%Y-%m-%d}" for d in pd.to_datetime(duck["as_of"]).dt.date.unique())
    one = parts[-1]
    frame = pd.read_parquet(folder / one)
    assert "as_of" not in frame.columns  # the partition column lives in the folder name
    assert len(frame) == (pd.to_datetime(duck["as_of"]).dt.strftime("as_of=%Y-%m-%d") == one).sum()


def test_a_missing_column_in_spark_sql_is_one_clear_line(spark):
    run = SparkConnection(spark)
    spark.createDataFrame([("a", 1)], "account_id string, n int").createOrReplaceTempView("clean_things")
    with pytest.raises(SparkError) as err:
        run.execute("SELECT account_id, nope FROM clean_things")
    text = str(err.value)
    assert "nope" in text and "\n" not in text and "at org.apache" not in text
    with pytest.raises(SparkError) as err:
        run.execute("CREATE OR REPLACE TEMP TABLE x AS SELECT * FROM no_such_table")
    assert "no_such_table" in str(err.value) and "\n" not in str(err.value)


def test_hash_keys_are_64_bit_on_spark():
    assert "XXHASH64(account_id)" in to_spark_sql("SELECT hash(account_id) AS aid FROM t")
    assert "CAST(6.0 AS DOUBLE)" in to_spark_sql("SELECT n / 6.0 FROM t")


def _spark_features(tmp, name, tables) -> tuple[pd.DataFrame, dt.date]:
    """The features at t on Spark and the build's data start (where the export's event log begins)."""
    name = f"{name}-{uuid.uuid4().hex[:8]}"
    folder = write_tables(tmp / name, tables)
    built = build_snapshots(folder, settings(data_end=D(2025, 1, 1)), tmp / f"{name}.duckdb", as_of=[AS_OF],
                            engine="spark", master="local[2]")
    df = read_snapshots(tmp / f"{name}.duckdb")
    return df.drop(columns=["churn_label", "labelled"]).set_index("account_id").sort_index(), \
        built.validation.data_start


@hsettings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(events=st.lists(event, min_size=1, max_size=30), tickets=st.lists(ticket(), max_size=6),
       invoices=st.lists(invoice(), max_size=6),
       future_events=st.lists(st.tuples(st.sampled_from(ACCOUNTS), future, st.sampled_from(TYPES)), max_size=10),
       future_tickets=st.lists(ticket(opened=future), max_size=3),
       future_invoices=st.lists(invoice(issued=future), max_size=3))
def test_point_in_time_on_spark(spark, tmp_path, events, tickets, invoices, future_events, future_tickets,
                                future_invoices):
    """tests/features/test_point_in_time.py on the Spark path: rows at or after t never change features at t."""
    base, start = _spark_features(tmp_path, "before", dict(subscriptions=SUBS, events=events, tickets=tickets,
                                                            invoices=invoices))
    ev2 = [dict(e, quantity=5.0, user_id="u9") if e["occurred_at"] >= T_AS_OF else e for e in events]
    ev2 += [dict(account_id=a, user_id="u7", occurred_at=m, event_type=t, quantity=1.0) for a, m, t in future_events]
    after, start2 = _spark_features(tmp_path, "after", dict(
        subscriptions=SUBS + [dict(account_id="a1", start_date=D(2024, 7, 2), end_date=None, mrr=1.0, plan="z",
                                   seats=1)],
        events=ev2, tickets=tickets + future_tickets, invoices=invoices + future_invoices))
    common = [c for c in base.columns if c in after.columns]
    if start2 != start:  # as in tests/features/test_point_in_time.py: the export's data start moved with
        # what happens after t (features.validate's early events), so counts whose window it cuts are
        # scaled from another start; everything else holds
        scaled_ = {f.name for f in build_catalogue(TYPES).features if scaled(f)}
        common = [c for c in common if c not in scaled_]
    pd.testing.assert_frame_equal(base[common], after[common])
    assert list(base.index) == ["a1", "a2", "a3"]


def _cli(*args, env=None):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "churnwatch", *args], capture_output=True, text=True, timeout=1800,
                          env={**os.environ, **(env or {})})


SUBS_ONE = [dict(account_id="a", start_date=D(2024, 1, 1), end_date=None, mrr=10.0)]


def test_cli_features_on_spark(spark, tmp_path):
    """In this process (the session's SparkSession: no second JVM); the error path below runs the real CLI."""
    from typer.testing import CliRunner

    from churnwatch.cli import app

    subs = SUBS_ONE
    events = [dict(account_id="a", user_id="u", occurred_at=pd.Timestamp(2024, 2, 1), event_type="login")]
    good = write_tables(tmp_path / "good", {"subscriptions": subs, "events": events})
    r = CliRunner().invoke(app, ["features", "--engine", "spark", "--master", "local[2]", "--data", str(good),
                                 "--as-of", "2024-02-02", "--home", str(tmp_path / "h1")])
    assert r.exit_code == 0, r.output[-2000:] + repr(r.exception)
    assert "snapshots: 1 rows" in r.output and "Parquet partitioned by as-of date" in r.output
    assert list((tmp_path / "h1").rglob("as_of=2024-02-02/*.parquet"))


def test_cli_a_missing_column_is_one_line_exit_2(tmp_path):
    bad = write_tables(tmp_path / "bad", {"subscriptions": SUBS_ONE, "events": pd.DataFrame(
        {"account_id": ["a"], "occurred_at": [pd.Timestamp(2024, 2, 1)]})})
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = _cli("features", "--engine", "spark", "--master", "local[2]", "--data", str(bad),
             "--home", str(tmp_path / "h2"), env={"TMPDIR": str(tmp)})
    out = r.stdout + r.stderr
    assert r.returncode == 2, out[-2000:]
    assert "event_type" in out and "Traceback" not in out and "at org.apache" not in out
    # Spark ran there (its log stays, errors name it), and its log4j2 file went with the process
    assert [p.name.split("-")[1] for p in tmp.glob("churnwatch-*")] == ["spark"], sorted(tmp.iterdir())


def test_cli_train_sampling_options_need_a_snapshot_set(tmp_path):
    r = _cli("train", "--sample-accounts", "5", "--home", str(tmp_path / "h3"))
    assert r.returncode == 2 and "--snapshots" in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr


def test_a_temp_table_is_a_parquet_stage_read_back_and_close_removes_it(spark, tmp_path):
    """A TEMP TABLE stage is computed once into the staging folder and read back as a file scan (its plan
    does not carry the stages before it); a TEMP VIEW stays a view; close drops the views and the folder."""
    run = SparkConnection(spark, staging=tmp_path / "staging")
    spark.createDataFrame([("a", 1), ("b", 2), ("a", 3)], "account_id string, n int").createOrReplaceTempView("raw")
    run.execute("CREATE OR REPLACE TEMP TABLE s1 AS SELECT account_id, SUM(n) AS n FROM raw GROUP BY account_id")
    run.execute("CREATE OR REPLACE TEMP VIEW v1 AS SELECT account_id, n * 2 AS n2 FROM s1")
    run.execute("CREATE OR REPLACE TEMP TABLE s1 AS SELECT account_id, n2 + 1 AS n FROM v1")  # reads the old s1
    files = spark.table("s1").inputFiles()
    assert files and all("/stages/s1-" in f for f in files)
    assert "Aggregate" not in spark.table("s1")._jdf.queryExecution().analyzed().toString()
    assert sorted(run.execute("SELECT account_id, n FROM s1").fetchall()) == [("a", 9), ("b", 5)]
    run.close()
    assert not (tmp_path / "staging").exists()
    assert not {"s1", "v1"} & {t.name for t in spark.catalog.listTables()}
    spark.catalog.dropTempView("raw")


def test_own_columns_with_iso_and_epoch_dates_build_the_same_on_spark(spark, tmp_path):
    """A company's own columns (an ISO date, a date in epoch seconds, a number, a subscriptions
    column) build the same snapshots on Spark as on DuckDB. The raw-date SQL (``features.epoch``)
    used ``regexp_full_match``, which Spark lacks: any own subscriptions column stopped a Spark build."""
    from tests.features.test_profile_columns import AS_OF as OWN_AS_OF
    from tests.features.test_profile_columns import _epoch, accounts, events, subscriptions

    acc = accounts()
    acc["signup_ts"] = [_epoch(D(2021, 5, 1)), _epoch(D(2023, 12, 31)), _epoch(D(2024, 3, 15)), None]
    sub = subscriptions()  # a1's later term has no discount: null there on both engines (ARG_MAX skips nulls
    sub["discount"] = [5.0, None, 2.5, None, None]  # on DuckDB, MAX_BY keeps them on Spark)
    data = write_tables(tmp_path / "own", {"accounts": acc, "subscriptions": sub, "events": events()})
    s = settings(data_end=D(2024, 12, 31))
    duck = build_snapshots(data, s, tmp_path / "duck.duckdb", as_of=OWN_AS_OF)
    build_snapshots(data, s, tmp_path / "spark.duckdb", as_of=OWN_AS_OF, engine="spark", master="local[2]")
    kinds = {c.column: c.kind for c in duck.profile.used}
    assert kinds["signup_ts"] == kinds["founded_on"] == "date" and kinds["contract_type"] == "category"
    a, b = (read_snapshots(tmp_path / f"{e}.duckdb").sort_values(["account_id", "as_of"]) for e in ("duck", "spark"))
    assert a["signup_ts"].notna().sum() == 5 and a["contract_type"].notna().all()
    assert a.loc[a["account_id"] == "a1", "discount"].isna().tolist() == [False, True]
    assert_same_rows(a, b)
