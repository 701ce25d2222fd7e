"""Feature pipeline benchmark: 10,000 accounts x 12 months, >= 20 million events.

Generates the demo data once (reused from benchmarks/data/ on later runs), builds weekly
snapshots for the whole year (every 7 days from the first event to the data end) from
the Parquet folder into a fresh DuckDB store, and prints:

* events/s end to end (events / wall time of the build, loading and checks included),
* snapshot rows/s, wall and CPU time per stage (``stages_s``, ``stages_cpu_s``: this process, all
  its threads; on a shared machine the CPU time is the work done), peak memory (max RSS of this
  process).

``--engine spark`` builds the same snapshots with PySpark (``--master``, default
``local[N]`` with N = --threads or all cores; Parquet partitioned by as-of date beside the
store); peak memory is then the process tree's (the JVM and its Python workers included),
sampled every 0.2 s, and ``spark_jvm_cpu_s`` the local JVM's CPU time (on a shared machine,
the work done: the wall time also counts other processes' turns).

``--statements`` adds ``statements_cpu_s``: this process's CPU seconds for each feature stage's
statement, in run order (a stage made a view, ``features.stage_tables.read_once``, costs nothing
there: its reader pays for it). The final projection is written straight into the store on DuckDB
(a view read once by the write): its CPU seconds are in the write stage (``stages_cpu_s``), not here.
A build in account partitions (more than 32 M events: 4x is 6 partitions, 2x 3;
``features.pipeline.account_partitions``) runs each statement once per partition: its seconds are summed,
and the partitions' slices of the keyed events are in ``stages_cpu_s["features"]``, not here.

``--scale 1 2 4`` (DuckDB) measures 1x, 2x and 4x the size: k copies of the data with the
account ids renamed (``<id>~c<j>``: k times the accounts, the events and the snapshot rows,
the same schedule), each size in a fresh process (so peak memory is that size's).

Usage: python benchmarks/features.py [--accounts 10000] [--months 12] [--threads N]
       [--engine duckdb|spark] [--master URL] [--scale K ...] [--statements]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from memory import TreeMemory  # noqa: E402  (benchmarks/memory.py)
from scaled import scaled_copy  # noqa: E402  (benchmarks/scaled.py)

from core.progress import Reporter  # noqa: E402
from core.settings import load_settings  # noqa: E402
from demo.generator import write_demo_data  # noqa: E402
from features.pipeline import build_snapshots  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def jvm_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of the local Spark JVM so far: on a shared machine the work
    done, where the wall time also counts the other processes' turns."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StatementClock(Reporter):
    """Progress that clocks this process's CPU time per feature stage (each stage runs while
    ``track`` waits for its next item)."""

    def __init__(self) -> None:
        self.cpu_s: dict[str, float] = {}

    def step(self, message: str) -> None:
        pass

    def track(self, items, description, total=None):
        for item in items:
            start = time.process_time()
            yield item
            self.cpu_s[item[0]] = round(self.cpu_s.get(item[0], 0) + time.process_time() - start, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads / Spark local cores (default: all)")
    ap.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    ap.add_argument("--master", default=None, help="--engine spark: master URL (default local[threads or *])")
    ap.add_argument("--scale", type=int, nargs="+", default=[1],
                    help="--engine duckdb: k copies of the data (accounts renamed), one fresh process per k")
    ap.add_argument("--statements", action="store_true", help="CPU seconds per feature statement (DuckDB)")
    args = ap.parse_args()
    if len(args.scale) > 1:  # one process per size: peak memory is per size
        at = sys.argv.index("--scale")
        rest = sys.argv[1:at] + sys.argv[at + 1 + len(args.scale):]
        for k in args.scale:
            subprocess.run([sys.executable, __file__, *rest, "--scale", str(k)], check=True)
        return
    scale = args.scale[0]

    data = ROOT / "data" / f"features-{args.accounts}x{args.months}-s{args.seed}"
    if not (data / "events.parquet").exists():
        t = time.perf_counter()
        write_demo_data(data, accounts=args.accounts, months=args.months, seed=args.seed)
        print(f"generated {data} in {time.perf_counter() - t:.1f} s")
    if scale > 1:
        data = scaled_copy(data, scale)
    settings = load_settings(data / "churnwatch.yaml")
    store = ROOT / "results" / f"features-bench-{args.engine}.duckdb"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.unlink(missing_ok=True)

    import duckdb

    with duckdb.connect() as con:
        first, last = con.execute(f"SELECT CAST(min(occurred_at) AS DATE), CAST(max(occurred_at) AS DATE) + 1 "
                                  f"FROM read_parquet('{data / 'events.parquet'}')").fetchone()
    as_of = [first + dt.timedelta(days=7 * k) for k in range(1, 60) if first + dt.timedelta(days=7 * k) <= last]

    master = args.master or (f"local[{args.threads or '*'}]" if args.engine == "spark" else None)
    if args.engine == "spark":  # the session starts before the clock: a cluster keeps it running
        from features.spark import spark_session

        jvm = spark_session(master).sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    with TreeMemory() as memory:
        jvm0 = jvm_cpu_s(jvm) if args.engine == "spark" else 0.0
        t, cpu0 = time.perf_counter(), time.process_time()
        clock = StatementClock() if args.statements else None
        result = build_snapshots(data, settings, store, as_of=as_of, threads=args.threads, engine=args.engine,
                                 master=master, progress=clock)
        wall = time.perf_counter() - t
        cpu = time.process_time() - cpu0
        jvm_cpu = jvm_cpu_s(jvm) - jvm0 if args.engine == "spark" else None
    figures = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "engine": args.engine, "master": master, "accounts": args.accounts, "months": args.months, "scale": scale,
        "events": result.events, "as_of_dates": len(as_of), "snapshot_rows": result.rows,
        "features": len(result.catalogue.features),
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_average_1m": round(os.getloadavg()[0], 1),
        "spark_jvm_cpu_s": None if jvm_cpu is None else round(jvm_cpu, 2),
        "events_per_s": round(result.events / wall),
        "snapshot_rows_per_s": round(result.rows / wall),
        "stages_s": {k: round(v, 2) for k, v in result.seconds.items()},
        "stages_cpu_s": {k: round(v, 2) for k, v in result.cpu_seconds.items()},
        "peak_rss_mb": round(max(peak_rss_mb(), memory.peak)),
    }
    if clock is not None:
        figures["statements_cpu_s"] = clock.cpu_s
    cores = args.threads or os.cpu_count() or 1
    figures["events_per_core_s"] = round(figures["events_per_s"] / cores)
    print(json.dumps(figures, indent=2))
    name = ("features.json" if scale == 1 else f"features-x{scale}.json") if args.engine == "duckdb" else \
        f"features-{args.engine}-{args.accounts}x{args.months}.json"
    (ROOT / "results" / name).write_text(json.dumps(figures, indent=2))
    ok = figures["events"] >= 20_000_000 or args.accounts != 10_000 or scale > 1
    print(f"events >= 20M: {'yes' if ok else 'NO'}; goal >= 2,000,000 events/s: "
          f"{'met' if figures['events_per_s'] >= 2_000_000 else 'not met'}; "
          f"goal < 8 GB peak: {'met' if figures['peak_rss_mb'] < 8192 else 'not met'}")


if __name__ == "__main__":
    main()
