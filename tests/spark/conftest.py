"""One local[2] SparkSession for the Spark tests, and one small trained setup built both ways."""

from __future__ import annotations

import pytest

from core.settings import load_settings
from demo.generator import write_demo_data
from features.pipeline import build_snapshots
from training.train import train_on_snapshots

#: the demo tables registered in the Spark catalog (``built``), read by the Spark build
CATALOG_DB = "demo_src"


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """The process's SparkSession (local[2], 2 shuffle partitions: tiny data; its catalog's
    warehouse in a temporary folder), stopped at the end."""
    from features.spark import spark_session

    warehouse = tmp_path_factory.mktemp("warehouse")
    session = spark_session("local[2]", shuffle_partitions=2, conf={"spark.sql.warehouse.dir": str(warehouse)})
    yield session
    session.stop()


def register_tables(spark, folder, database: str, drop: dict[str, list[str]] | None = None,
                    tables: list[str] | None = None) -> None:
    """The contract tables of ``folder`` (Parquet files; or only ``tables``) as tables of the Spark
    catalog ``database`` (saveAsTable into the session's warehouse), ``drop``ping some columns."""
    from features.contract import TABLES

    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    for name in tables or TABLES:
        file = folder / f"{name}.parquet"
        if file.exists():
            frame = spark.read.parquet(str(file)).drop(*(drop or {}).get(name, []))
            frame.write.mode("overwrite").saveAsTable(f"{database}.{name}")


@pytest.fixture(scope="session")
def built(spark, tmp_path_factory):
    """(folder, settings, bundle): demo data (150 accounts x 12 months) in folder/d, snapshots
    built by DuckDB from that Parquet folder into folder/duck.duckdb and by Spark from the same
    tables registered in the Spark catalog (``spark-catalog://demo_src``) into folder/spark.duckdb
    (+ folder/spark.snapshots/), and a model trained on the DuckDB snapshots."""
    tmp = tmp_path_factory.mktemp("spark")
    write_demo_data(tmp / "d", accounts=150, months=12, seed=6)
    settings = load_settings(tmp / "d" / "churnwatch.yaml")
    register_tables(spark, tmp / "d", CATALOG_DB)
    build_snapshots(tmp / "d", settings, tmp / "duck.duckdb")
    build_snapshots(f"spark-catalog://{CATALOG_DB}", settings, tmp / "spark.duckdb", engine="spark",
                    master="local[2]")
    return tmp, settings, train_on_snapshots(tmp / "duck.duckdb", tmp / "out").bundle
