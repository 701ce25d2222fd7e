"""Batch scoring benchmark: scored accounts/s with reasons (en + zh-CN), DuckDB path or Spark.

Generates demo data (reused from benchmarks/data/), builds the weekly snapshots with DuckDB and
trains a model once on the base size (kept in benchmarks/results/scoring-<size>/), then, for
each ``--scale`` k (k copies of the base data with the account ids renamed, as
``benchmarks/features.py --scale`` makes them: k x the accounts and rows), scores EVERY snapshot row (all accounts x all
as-of dates) and prints rows/s and peak memory:

* ``--engine duckdb``: each as-of date's rows read from the store and scored by
  ``serving.batch.score_date`` in this process, one date after another, as ``churnwatch score`` does
  (``serving.batch.build_scores``; the reads and the batch warnings are timed too): memory holds one
  date's rows, so 4x runs in the same memory as 1x (until 2026-12-05 every row was scored in one
  call: 5.8 GB at 1x, 11 GB at 2x);
* ``--engine spark``: the same snapshots as Parquet partitioned by as-of date (exported once
  from the store with DuckDB: the files a Spark feature build writes, identical rows as
  tests/spark checks), scored with ``mapInPandas`` and the shipped bundle, the history written
  as Parquet (``serving.spark_scoring.score_snapshots``).

Peak memory is the process tree's (the JVM and its Python workers included), sampled every
0.2 s with psutil. One JSON per engine and size in benchmarks/results/
(``scoring-<engine>-<accounts>x<months>.json``) and one for the scales
(``scoring-<engine>-scales.json``).

Usage: python benchmarks/scoring.py [--accounts 2500] [--months 12] [--scale 1 2 4]
       [--engine duckdb|spark] [--master URL] [--threads N]
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

import duckdb

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from memory import TreeMemory  # noqa: E402  (benchmarks/memory.py)
from scaled import scaled_copy  # noqa: E402  (benchmarks/scaled.py)

from core.settings import load_settings  # noqa: E402
from core.store import SNAPSHOTS  # noqa: E402
from demo.generator import write_demo_data  # noqa: E402
from features.pipeline import build_snapshots  # noqa: E402


def prepared(accounts: int, months: int, seed: int, scale: int = 1):
    """(data folder, settings, store) of ``scale`` x that size: demo data (``scale`` copies with the
    account ids renamed, as ``benchmarks/features.py --scale`` makes them) and its DuckDB snapshots,
    made once."""
    data = ROOT / "data" / f"features-{accounts}x{months}-s{seed}"
    if not (data / "events.parquet").exists():
        write_demo_data(data, accounts=accounts, months=months, seed=seed)
    if scale > 1:
        data = scaled_copy(data, scale)
    settings = load_settings(data / "churnwatch.yaml")
    work = ROOT / "results" / (f"scoring-{accounts}x{months}" + (f"-x{scale}" if scale > 1 else ""))
    store = work / "s.duckdb"
    if not (work / "built").exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        build_snapshots(data, settings, store)
        (work / "built").touch()
    return data, settings, store


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants alive now (the local Spark JVM and
    its Python workers): on a shared machine the work done, where wall time also counts others' turns."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


def parquet_set(store: Path) -> Path:
    """The store's snapshots as Parquet partitioned by as-of date (as a Spark build writes them)."""
    folder = store.parent / "snapshots.parquet"
    if not (folder / "done").exists():
        shutil.rmtree(folder, ignore_errors=True)
        with duckdb.connect(str(store), read_only=True) as con:
            con.execute(f"COPY (SELECT * FROM {SNAPSHOTS} ORDER BY as_of, account_id) TO '{folder}' "
                        "(FORMAT parquet, PARTITION_BY (as_of))")
        (folder / "done").touch()
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=2500, help="base size (accounts)")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--scale", type=int, nargs="+", default=[1], help="multiples of the base size, e.g. 1 2 4")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    ap.add_argument("--master", default=None)
    ap.add_argument("--threads", type=int, default=None, help="Spark local cores (default: all)")
    args = ap.parse_args()

    from training.bundle import ModelBundle
    from training.train import train_on_snapshots

    _data, _settings, base_store = prepared(args.accounts, args.months, args.seed)
    model = base_store.parent / "model"
    if not (model / "bundle.json").exists():
        train_on_snapshots(base_store, base_store.parent / "train").bundle.save(model)
    bundle = ModelBundle.load(model)
    master = args.master or f"local[{args.threads or '*'}]"
    cores = args.threads or os.cpu_count() or 1
    spark, spark_cpu = None, 0.0
    if args.engine == "spark":  # the session starts before the clock: a cluster keeps it running
        from features.spark import spark_session

        spark = spark_session(master)
    runs = []
    for k in args.scale:
        accounts = args.accounts * k
        _data, settings, store = prepared(args.accounts, args.months, args.seed, k)
        if args.engine == "duckdb":
            from serving.batch import score_date

            with duckdb.connect(str(store), read_only=True) as con:
                dates = [r[0] for r in con.execute(f"SELECT DISTINCT as_of FROM {SNAPSHOTS} ORDER BY 1").fetchall()]
            scored, seen = 0, set()
            with TreeMemory() as memory:
                t, cpu0 = time.perf_counter(), time.process_time()
                for day in dates:  # as `churnwatch score` does (serving.batch.build_scores): a date's rows at a time,
                    history, _said = score_date(store, day, bundle, settings, "bench")  # with its batch warnings
                    scored += len(history)
                    seen.update(history["account_id"])
                wall, cpu = time.perf_counter() - t, time.process_time() - cpu0
            n_accounts = len(seen)
        else:
            from serving.spark_scoring import score_snapshots

            parquet = parquet_set(store)
            out = store.parent / "history.parquet"
            jvm = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
            with TreeMemory() as memory:
                t, cpu0 = time.perf_counter(), tree_cpu_s(jvm)
                score_snapshots(spark, parquet, out, bundle, settings, "bench")
                wall, spark_cpu = time.perf_counter() - t, tree_cpu_s(jvm) - cpu0
            history = spark.read.parquet(str(out))
            scored, n_accounts = history.count(), history.select("account_id").distinct().count()
        figures = {
            "date": dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average_1m": round(os.getloadavg()[0], 1),
            "engine": args.engine, "master": master if args.engine == "spark" else None,
            "scale": k, "accounts": accounts, "months": args.months, "accounts_scored": n_accounts,
            "scored_rows": scored, "wall_s": round(wall, 2), "scored_per_s": round(scored / wall),
            "scored_per_core_s": round(scored / wall / cores), "peak_rss_mb": round(memory.peak),
        }
        if args.engine == "duckdb":  # this process, all its threads: on a shared machine the work done
            figures["cpu_s"] = round(cpu, 2)
            figures["scored_per_cpu_s"] = round(scored / cpu) if cpu else None
        if args.engine == "spark":  # the JVM and its Python workers (time.process_time: this process only)
            figures["spark_cpu_s"] = round(spark_cpu, 2)
            figures["scored_per_spark_cpu_s"] = round(scored / spark_cpu) if spark_cpu else None
        print(json.dumps(figures, indent=2), flush=True)
        (ROOT / "results" / f"scoring-{args.engine}-{accounts}x{args.months}.json").write_text(
            json.dumps(figures, indent=2))
        runs.append(figures)
    (ROOT / "results" / f"scoring-{args.engine}-scales.json").write_text(json.dumps(runs, indent=2))
    for r in runs:
        print(f"{args.engine} x{r['scale']}: {r['scored_rows']:,} rows (accounts x dates; "
              f"{r['accounts_scored']:,} accounts) in {r['wall_s']:.1f} s = {r['scored_per_s']:,} rows/s, "
              f"peak {r['peak_rss_mb']:,} MB")


if __name__ == "__main__":
    main()
