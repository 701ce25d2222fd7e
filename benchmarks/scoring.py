"""Batch scoring benchmark: scored accounts/s with reasons (en + zh-CN), DuckDB path or Spark.

Generates demo data (reused from benchmarks/data/), builds the weekly snapshots with DuckDB and
trains a model once (kept in benchmarks/results/scoring-<size>/), then scores EVERY snapshot
row (all accounts x all as-of dates) and prints rows/s and peak memory:

* ``--engine duckdb``: ``serving.batch.score_rows`` on the rows read from the store, in this
  process (what ``churnwatch score`` does per date);
* ``--engine spark``: the snapshots as Parquet partitioned by as-of date (written once by the
  Spark feature build), scored with ``mapInPandas`` and the shipped bundle, the history
  written as Parquet (``serving.spark_scoring.score_snapshots``); peak memory is the process
  tree's (JVM and Python workers).

Usage: python benchmarks/scoring.py [--accounts 2000] [--months 12] [--engine duckdb|spark]
       [--master URL] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from memory import TreeMemory  # noqa: E402  (benchmarks/memory.py)

from core.settings import load_settings  # noqa: E402
from core.store import read_snapshots  # noqa: E402
from demo.generator import write_demo_data  # noqa: E402
from features.pipeline import build_snapshots  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    ap.add_argument("--master", default=None)
    ap.add_argument("--threads", type=int, default=None, help="Spark local cores (default: all)")
    args = ap.parse_args()

    from training.bundle import ModelBundle
    from training.train import train_on_snapshots

    data = ROOT / "data" / f"features-{args.accounts}x{args.months}-s{args.seed}"
    if not (data / "events.parquet").exists():
        write_demo_data(data, accounts=args.accounts, months=args.months, seed=args.seed)
    settings = load_settings(data / "churnwatch.yaml")
    work = ROOT / "results" / f"scoring-{args.accounts}x{args.months}"
    store, model = work / "s.duckdb", work / "model"
    if not (model / "bundle.json").exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        build_snapshots(data, settings, store)
        train_on_snapshots(store, work / "train").bundle.save(model)
    bundle = ModelBundle.load(model)
    master = args.master or f"local[{args.threads or '*'}]"

    if args.engine == "duckdb":
        from serving.batch import score_rows

        with TreeMemory() as memory:
            rows = read_snapshots(store)
            t = time.perf_counter()
            history = score_rows(rows, bundle, settings, "bench")
            wall = time.perf_counter() - t
        scored = len(history)
    else:
        from features.spark import spark_session
        from serving.spark_scoring import score_snapshots

        spark = spark_session(master)
        parquet = work / "snapshots.parquet"
        if not parquet.exists():
            build_snapshots(data, settings, work / "spark.duckdb", engine="spark", master=master, parquet=parquet)
        out = work / "history.parquet"
        with TreeMemory() as memory:
            t = time.perf_counter()
            score_snapshots(spark, parquet, out, bundle, settings, "bench")
            wall = time.perf_counter() - t
        scored = spark.read.parquet(str(out)).count()
    cores = args.threads or os.cpu_count() or 1
    figures = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "engine": args.engine, "master": master if args.engine == "spark" else None,
        "accounts": args.accounts, "months": args.months, "scored_rows": scored,
        "wall_s": round(wall, 2), "scored_per_s": round(scored / wall),
        "scored_per_core_s": round(scored / wall / cores),
        "peak_rss_mb": round(memory.peak),
    }
    print(json.dumps(figures, indent=2))
    (ROOT / "results" / f"scoring-{args.engine}-{args.accounts}x{args.months}.json").write_text(
        json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
