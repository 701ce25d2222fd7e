"""Monitoring benchmark: time and peak memory of a drift report at 100k and 1M rows x all features.

Rows are drawn with replacement from a real snapshot store (a model's test block as the
reference, the rest as current), so columns keep their real shapes (zero-inflated counts,
ratios, categories). Peak memory is measured DURING the report call: a thread samples the
child process's RSS (``/proc/self/statm``) every 20 ms; the figure is that peak and its rise
over the RSS just before the call (one fresh child process per size). Above ``monitoring.max_rows``
(default 200,000) each side is cut
to a uniform random sample (seed 0) before Evidently sees it; the cost in detection power
is measured on one column: how often a shift of ``delta`` reference standard deviations is
flagged by Evidently's default test at the full size and at a sample drawn by
``monitoring.drift.sample_rows`` itself.

    python benchmarks/monitoring.py --store STORE --bundle BUNDLE_DIR [--sizes 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path[0] = str(ROOT.parent)  # the project, not this folder (benchmarks/features.py would shadow features/)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RESULTS = ROOT / "results" / "monitoring.json"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """The largest RSS seen while the ``with`` block runs (sampled every ``every`` seconds)."""

    def __init__(self, every: float = 0.02):
        self.every, self.peak, self._stop = every, 0.0, threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            self._stop.wait(self.every)

    def __enter__(self):
        self.before = _rss_mb()
        self.peak = self.before
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def one_size(store: str, bundle_dir: str, rows: int, max_rows: int | None) -> dict:
    """In this process: build ``rows`` x all features for both sides and time one drift report."""
    from core.settings import MonitoringSettings
    from core.store import read_snapshots
    from monitoring.drift import drift_report
    from training.bundle import ModelBundle

    bundle = ModelBundle.load(bundle_dir)
    snaps = read_snapshots(Path(store))
    snaps["churn_probability"] = bundle.predict(snaps)["churn_probability"].to_numpy()
    rng = np.random.default_rng(0)
    ref = snaps.iloc[rng.integers(0, len(snaps), rows)].reset_index(drop=True)
    cur = snaps.iloc[rng.integers(0, len(snaps), rows)].reset_index(drop=True)
    cur["logins_30d"] = cur["logins_30d"] * 0.7  # one real shift, so the report has something to show
    del snaps
    with PeakRss() as mem:
        t0 = time.perf_counter()
        result = drift_report(ref, cur, bundle.catalogue, bundle.frame, MonitoringSettings(max_rows=max_rows))
        result.snapshot.save_html("/dev/null")  # the HTML is part of a report run
        seconds = time.perf_counter() - t0
    s = result.summary
    return {"rows": rows, "features": s["features"], "max_rows": max_rows, "sampled": s["sampling"]["sampled"],
            "rows_compared": s["current"]["rows_compared"], "seconds": round(seconds, 1),
            "rss_before_report_mb": round(mem.before), "peak_rss_during_report_mb": round(mem.peak),
            "peak_rise_during_report_mb": round(mem.peak - mem.before), "drifted": s["drifted"]}


def detection_power(full: int, sampled: int, deltas: tuple[float, ...], trials: int = 20) -> list[dict]:
    """Share of trials in which Evidently's default numerical test (normed Wasserstein distance,
    threshold 0.1, chosen above 1,000 rows) flags a mean shift of ``delta`` standard deviations,
    on a skewed count-like column, at ``full`` rows and at a ``sampled`` uniform sample of them."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    from monitoring.drift import sample_rows

    definition = DataDefinition(numerical_columns=["x"])
    out = []
    for delta in deltas:
        hits = {"full": 0, "sampled": 0}
        for t in range(trials):
            rng = np.random.default_rng(1000 + t)
            ref = rng.gamma(2.0, 5.0, full)
            cur = rng.gamma(2.0, 5.0, full) + delta * ref.std()
            for name, n in (("full", None), ("sampled", sampled)):
                r = sample_rows(pd.DataFrame({"x": ref}), n, seed=t)
                c = sample_rows(pd.DataFrame({"x": cur}), n, seed=t + 1)
                snap = Report([ValueDrift(column="x")], include_tests=True).run(
                    current_data=Dataset.from_pandas(c, data_definition=definition),
                    reference_data=Dataset.from_pandas(r, data_definition=definition))
                hits[name] += any(x["status"] == "FAIL" for x in snap.dict()["tests"])
        out.append({"shift_sd": delta, "detected_full": hits["full"] / trials,
                    "detected_sampled": hits["sampled"] / trials, "trials": trials})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--max-rows", type=int, default=200_000)
    ap.add_argument("--shifts", type=float, nargs="+", default=[0.08, 0.09, 0.10, 0.11, 0.12])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--full-too", action="store_true", help="also run sizes above --max-rows without sampling")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # rows, max_rows, unused
    args = ap.parse_args()
    if args.child:
        rows, max_rows = int(args.child[0]), None if args.child[1] == "none" else int(args.child[1])
        print(json.dumps(one_size(args.store, args.bundle, rows, max_rows)))
        return
    runs = []
    for rows in args.sizes:
        plans = [args.max_rows] + ([None] if args.full_too and rows > args.max_rows else [])
        for max_rows in plans:
            cmd = [sys.executable, __file__, "--store", args.store, "--bundle", args.bundle, "--child", str(rows),
                   "none" if max_rows is None else str(max_rows), "x"]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
    power = detection_power(1_000_000, args.max_rows, tuple(args.shifts), trials=args.trials)
    for p in power:
        print(json.dumps(p), flush=True)
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {platform.processor() or ''} "
              f"{__import__('os').cpu_count()} cores (shared)", "python": platform.python_version(),
              "evidently": __import__("evidently").__version__, "runs": runs, "detection_power": power}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
