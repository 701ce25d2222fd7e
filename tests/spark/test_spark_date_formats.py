"""A declared date format and YYYYMMDD numbers read the same with ``--engine spark`` (which is
handed the tables DuckDB checked) as with DuckDB, and the event log starts on the same day."""

from __future__ import annotations

import pandas as pd

from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.features.test_date_formats import _tables
from tests.tiny import D, settings, write_tables


def test_spark_reads_date_formats_as_duckdb_does(spark, tmp_path):
    tables = _tables("%d/%m/%Y", "%d/%m/%Y %H:%M")
    tables["subscriptions"]["start_date"] = pd.to_datetime(tables["subscriptions"]["start_date"],
                                                           format="%d/%m/%Y").dt.strftime("%Y%m%d")
    folder = write_tables(tmp_path / "data", tables, fmt="csv")
    kw = {"date_format": "%d/%m/%Y", "date_formats": {"subscriptions": {"start_date": "%Y%m%d"}}}
    as_of = [D(2024, 4, 7), D(2024, 4, 21)]
    build_snapshots(folder, settings(**kw), tmp_path / "duck.duckdb", as_of=as_of)
    build_snapshots(folder, settings(**kw), tmp_path / "spark.duckdb", as_of=as_of, engine="spark",
                    master="local[2]")
    duck, on_spark = (read_snapshots(tmp_path / f"{x}.duckdb") for x in ("duck", "spark"))
    assert len(duck) == 6 and duck["tenure_days"].tolist() == [85, 52, 33, 99, 66, 47]
    pd.testing.assert_frame_equal(duck, on_spark, check_dtype=False)


def test_own_date_columns_in_a_declared_format_and_before_1970_build_the_same_on_spark(spark, tmp_path):
    """A company's own dates read with a format (DuckDB's ``try_strptime``, written for Spark as
    ``try_to_timestamp``: Spark has no ``strptime``), in negative epoch seconds and as YYYYMMDD numbers
    stored as DOUBLE: the same snapshots on both engines, and the right days."""
    from tests.features.test_own_dates import BIRTHS, EXPECTED_AGES, SIGNED, _written
    from tests.features.test_profile_columns import AS_OF, _epoch, accounts, events, subscriptions

    acc = accounts()
    acc["date_of_birth"] = _written(BIRTHS, "%d/%m/%Y")
    acc["first_visit"] = ["3/5/2023 2:22 PM", "13/5/2023 14:22", "2023-05-03", "1/12/2022 09:05:07"]
    acc["birth_ts"] = [_epoch(d) if d else None for d in BIRTHS]
    sub = subscriptions()
    # YYYYMMDD numbers with a blank: pandas writes them to Parquet as DOUBLE, which Spark's text is
    # 2.0221220E7 (DuckDB's 20221220.0): declared, and undeclared (the name and every value say date)
    sub["signed"] = [int(d.strftime("%Y%m%d")) for d in SIGNED[:-1]] + [None]
    sub["renewal_date"] = sub["signed"]
    folder = write_tables(tmp_path / "data", {"accounts": acc, "subscriptions": sub, "events": events()},
                          fmt="parquet")
    assert pd.read_parquet(folder / "subscriptions.parquet")["signed"].dtype == "float64"
    kw = {"date_format": "%d/%m/%Y", "date_formats": {"subscriptions": {"signed": "%Y%m%d"}}}
    s = settings(data_end=D(2024, 12, 31), **kw)
    build_snapshots(folder, s, tmp_path / "duck.duckdb", as_of=AS_OF)
    build_snapshots(folder, s, tmp_path / "spark.duckdb", as_of=AS_OF, engine="spark", master="local[2]")
    duck, on_spark = (read_snapshots(tmp_path / f"{x}.duckdb").sort_values(["account_id", "as_of"])
                      .reset_index(drop=True) for x in ("duck", "spark"))
    last = duck[duck["as_of"] == pd.Timestamp(AS_OF[1])]
    ages = [None if pd.isna(v) else int(v) for v in last["date_of_birth"]]
    assert ages == EXPECTED_AGES == [None if pd.isna(v) else int(v) for v in last["birth_ts"]]
    assert last["first_visit"].tolist() == [(AS_OF[1] - d).days for d in (D(2023, 5, 3), D(2023, 5, 13),
                                                                           D(2023, 5, 3), D(2022, 12, 1))]
    assert last["signed"].tolist()[0] == last["renewal_date"].tolist()[0] == (AS_OF[1] - D(2024, 2, 25)).days
    assert on_spark["signed"].notna().sum() == duck["signed"].notna().sum() > 0
    pd.testing.assert_frame_equal(duck, on_spark, check_dtype=False)


def test_the_event_log_starts_where_most_of_it_starts_on_spark_too(spark, tmp_path):
    """A few early events of one type (``tests/features/test_event_log_start.py``): the same data start,
    warning and snapshots on both engines."""
    from tests.features.test_event_log_start import _export

    _export(tmp_path / "data", early_days=300)
    builds = {engine: build_snapshots(tmp_path / "data", settings(data_end=D(2025, 4, 30)),
                                      tmp_path / f"{engine}.duckdb", engine=engine,
                                      **({"master": "local[2]"} if engine == "spark" else {}))
              for engine in ("duckdb", "spark")}
    assert builds["spark"].validation.data_start == builds["duckdb"].validation.data_start == D(2024, 7, 1)
    said = {e: [w for w in b.validation.warnings if "the log begins on" in w] for e, b in builds.items()}
    assert said["spark"] == said["duckdb"] and len(said["spark"]) == 1
    duck, on_spark = (read_snapshots(tmp_path / f"{x}.duckdb").sort_values(["account_id", "as_of"])
                      .reset_index(drop=True) for x in ("duckdb", "spark"))
    pd.testing.assert_frame_equal(duck, on_spark, check_dtype=False)


def test_counts_scaled_to_their_whole_window_are_the_same_on_spark(spark, tmp_path):
    """Counts the data start cuts, scaled (``tests/features/test_scaled_windows.py``): subscriptions cut at
    the export's start, a signature date, a window with under two weeks of data (null) and a change whose
    previous window is partly covered, alike on both engines."""
    from tests.features.test_scaled_windows import _cut_export

    _cut_export(tmp_path / "data")
    as_of = [D(2024, 7, 11), D(2024, 7, 29), D(2024, 8, 20)]
    builds = {engine: build_snapshots(tmp_path / "data", settings(data_end=D(2024, 10, 28)),
                                      tmp_path / f"{engine}.duckdb", as_of=as_of, engine=engine,
                                      **({"master": "local[2]"} if engine == "spark" else {}))
              for engine in ("duckdb", "spark")}
    said = {e: [w for w in b.validation.warnings if w.startswith("subscriptions: ")] for e, b in builds.items()}
    assert said["spark"] == said["duckdb"] and len(said["spark"]) == 1
    duck, on_spark = (read_snapshots(tmp_path / f"{x}.duckdb").sort_values(["account_id", "as_of"])
                      .reset_index(drop=True) for x in ("duckdb", "spark"))
    assert duck["logins_90d"].isna().sum() > 0 and (duck["logins_90d"] == 78).sum() == 1
    pd.testing.assert_frame_equal(duck, on_spark, check_dtype=False)
