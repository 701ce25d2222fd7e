"""Scoring on Spark (issue 17): every account's snapshot row scored by the plain-file bundle.

``spark_build_scores`` builds the snapshots of the dates with the Spark engine
(``features/spark.py``: Parquet partitioned by as-of date, registered in the store), ships
the bundle's files to the executors (``SparkContext.addFile``: the same files ``train``
writes; each Python worker loads them once, on its first batch) and scores the rows with
``mapInPandas`` through ``serving.batch.score_rows`` — the same function the DuckDB path
uses, so probabilities, tiers, reasons (English and Chinese) and playbooks are the same.
The history is written as Parquet partitioned by as-of date (``<store>.scores/``), then
collected and returned per date: ``churnwatch score`` records it in the store and raises the
alerts as for any other run (``serving.batch.record_scores``).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.progress import Reporter, StepCallback
from core.settings import Settings
from core.store import HISTORY_COLUMNS
from features.pipeline import build_snapshots
from features.spark import default_parquet_folder, spark_error, spark_session
from serving.batch import require_snapshot_model, score_rows
from serving.coverage import BatchStats, batch_warnings, training_ranges_of
from training.bundle import ModelBundle

#: The score history's Spark schema (column order of ``core.store.HISTORY_COLUMNS``).
HISTORY_SCHEMA = ("account_id string, as_of date, churn_probability double, health_score bigint, tier string, "
                  "reasons_en string, strengths_en string, reasons_zh string, strengths_zh string, "
                  "playbook_action string, playbook_owner string, respond_within string, model_version string, "
                  "scored_at timestamp_ntz")

#: Bundles loaded in this Python worker, by shipped folder name (once per worker).
_LOADED: dict[str, ModelBundle] = {}


def worker_bundle(name: str) -> ModelBundle:
    """The shipped bundle ``name``, loaded from the executor's copy on first use."""
    if name not in _LOADED:
        from pyspark import SparkFiles

        _LOADED[name] = ModelBundle.load(SparkFiles.get(name))
    return _LOADED[name]


def default_history_folder(store: Path) -> Path:
    """Where a Spark run writes the score history as Parquet: ``<store>.scores/``."""
    return store.with_name(store.stem + ".scores")


def spark_build_scores(source: str | Path, settings: Settings, store: Path, bundle: ModelBundle,
                       dates: list[dt.date], model_version: str, master: str | None = None,
                       progress: Reporter | StepCallback | None = None,
                       history: Path | None = None,
                       warn: Callable[[str], None] | None = None) -> dict[dt.date, pd.DataFrame]:
    """``serving.batch.build_scores`` on Spark: the history rows of each date, oldest first,
    written as Parquet (``history``, default ``<store>.scores/``) but not yet recorded in the
    store (``record_scores`` does, with the alerts). ``warn`` gets each date's ``batch_warnings``
    lines (counted in the store, where the build also wrote the snapshot rows)."""
    require_snapshot_model(bundle)
    dates = sorted(set(dates))
    say = progress if callable(progress) else (lambda _m: None)
    snapshots = default_parquet_folder(store)
    dates = build_snapshots(source, settings, store, as_of=dates, progress=progress, engine="spark", master=master,
                            parquet=snapshots, refuse_before_start=True).as_of  # empty: the source's data end
    folder = history or default_history_folder(store)
    say(f"scoring on Spark; score history as Parquet partitioned by as-of date: {folder}")
    spark = spark_session(master)
    score_snapshots(spark, snapshots, folder, bundle, settings, model_version, dates)
    from pyspark.sql import functions as F

    try:
        frame = spark.read.parquet(str(folder)).where(F.col("as_of").isin(dates)).toPandas()
    except Exception as exc:
        raise spark_error(exc, f"reading the score history {folder}") from exc
    columns = list(HISTORY_COLUMNS)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    frame["health_score"] = frame["health_score"].astype(int)
    frame = frame[columns].sort_values(["as_of", "account_id"], kind="stable")
    for day in dates if warn else ():  # counted in the store: the snapshot rows do not come to the driver
        stats = BatchStats.of_store(store, day, bundle.frame, training_ranges_of(bundle))
        for line in batch_warnings(bundle, stats, day, "accounts"):
            warn(line)
    return {day: frame[frame["as_of"] == day].reset_index(drop=True) for day in dates}


def score_snapshots(spark, snapshots: Path, out: Path, bundle: ModelBundle, settings: Settings, model_version: str,
                    dates: list[dt.date] | None = None) -> None:
    """Score the Parquet snapshots (``dates``, default all) with ``mapInPandas`` and write the history
    rows as Parquet partitioned by as-of date into ``out`` (those dates replaced).

    The bundle's files are shipped with ``SparkContext.addFile``; each Python worker loads them
    once (``worker_bundle``) and scores its batches with ``serving.batch.score_rows``.
    """
    from pyspark.sql import functions as F

    name = f"churnwatch-bundle-{uuid.uuid4().hex[:12]}"
    shipped = bundle.save(Path(tempfile.mkdtemp(prefix="churnwatch-ship-")) / name)
    spark.sparkContext.addFile(str(shipped), recursive=True)
    scored_at = pd.Timestamp(dt.datetime.now().replace(microsecond=0))
    columns = list(HISTORY_COLUMNS)

    def score(batches):
        model = worker_bundle(name)
        for rows in batches:
            scored = score_rows(rows, model, settings, model_version)
            scored["scored_at"] = scored_at
            yield scored[columns]

    try:
        rows = spark.read.parquet(str(snapshots))
        if dates is not None:
            rows = rows.where(F.col("as_of").isin(dates))
        (rows.mapInPandas(score, HISTORY_SCHEMA).write.mode("overwrite")
         .option("partitionOverwriteMode", "dynamic").partitionBy("as_of").parquet(str(out)))
    except Exception as exc:
        raise spark_error(exc, "scoring") from exc
