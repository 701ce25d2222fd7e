"""A declared date format and YYYYMMDD numbers read the same with ``--engine spark`` (which is
handed the tables DuckDB checked) as with DuckDB."""

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
