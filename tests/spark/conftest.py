"""One local[2] SparkSession for the Spark tests, and one small trained setup built both ways."""

from __future__ import annotations

import pytest

from core.settings import load_settings
from demo.generator import write_demo_data
from features.pipeline import build_snapshots
from training.train import train_on_snapshots


@pytest.fixture(scope="session")
def spark():
    """The process's SparkSession (local[2], 2 shuffle partitions: tiny data), stopped at the end."""
    from features.spark import spark_session

    session = spark_session("local[2]", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def built(spark, tmp_path_factory):
    """(folder, settings, bundle): demo data (150 accounts x 12 months), snapshots built by DuckDB
    into folder/duck.duckdb and by Spark into folder/spark.duckdb (+ folder/spark.snapshots/),
    and a model trained on the DuckDB snapshots."""
    tmp = tmp_path_factory.mktemp("spark")
    write_demo_data(tmp / "d", accounts=150, months=12, seed=6)
    settings = load_settings(tmp / "d" / "churnwatch.yaml")
    build_snapshots(tmp / "d", settings, tmp / "duck.duckdb")
    build_snapshots(tmp / "d", settings, tmp / "spark.duckdb", engine="spark", master="local[2]")
    return tmp, settings, train_on_snapshots(tmp / "duck.duckdb", tmp / "out").bundle
