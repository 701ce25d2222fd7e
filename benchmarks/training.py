"""Training benchmark: fit time and peak memory at 100k and 1M snapshot rows; scoring
throughput with and without reason codes.

Rows come from the feature benchmark's store (benchmarks/results/features-bench.duckdb;
run benchmarks/features.py first): the labelled snapshots, resampled with replacement to
the target size. Blocks are cut by as-of date (train 60%, early stopping 10%, calibration
15%, test 15% of the dates) without purge gaps: this measures speed, not quality.

Usage: python benchmarks/training.py [--sizes 100000 1000000] [--score-rows 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from training.score_calibration import ScoreCalibrator  # noqa: E402
from training.train import fit_and_evaluate, load_labelled  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def blocks(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    dates = np.sort(rows["as_of"].unique())
    cut = [dates[int(len(dates) * q)] for q in (0.6, 0.7, 0.85)]
    return {"train": rows[rows["as_of"] < cut[1]], "fit": rows[rows["as_of"] < cut[0]],
            "es": rows[(rows["as_of"] >= cut[0]) & (rows["as_of"] < cut[1])],
            "cal": rows[(rows["as_of"] >= cut[1]) & (rows["as_of"] < cut[2])], "test": rows[rows["as_of"] >= cut[2]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=ROOT / "results" / "features-bench.duckdb")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--score-rows", type=int, default=100_000)
    args = ap.parse_args()
    if not args.store.exists():
        sys.exit(f"{args.store} not found: run benchmarks/features.py first")
    labelled, catalogue, _ = load_labelled(args.store)
    figures: dict = {"date": dt.date.today().isoformat(),
                     "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                     "source_rows": len(labelled), "features": len(catalogue.names), "training": []}
    bundle = None
    for n in args.sizes:
        rows = labelled.sample(n, replace=n > len(labelled), random_state=0).reset_index(drop=True)
        b = blocks(rows)
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            result = fit_and_evaluate(b["train"], b["fit"], b["es"], b["cal"], b["test"], catalogue, Path(tmp))
        wall = time.perf_counter() - t
        bundle = result.bundle
        figures["training"].append({"rows": n, "train_rows": len(b["train"]), "trees": result.metrics["trees"],
                                    "seconds_total_incl_baselines_and_plots": round(wall, 1),
                                    "peak_rss_mb_so_far": round(peak_mb())})
        print(json.dumps(figures["training"][-1]), flush=True)

    rows = labelled.sample(args.score_rows, replace=args.score_rows > len(labelled), random_state=1)
    t = time.perf_counter()
    bundle.predict(rows)
    plain = time.perf_counter() - t
    t = time.perf_counter()
    bundle.predict(rows)
    bundle.explain(rows, "en")
    with_reasons = time.perf_counter() - t
    figures["scoring"] = {"rows": len(rows), "rows_per_s_without_reasons": round(len(rows) / plain),
                          "rows_per_s_with_reasons": round(len(rows) / with_reasons),
                          "ratio_without_over_with": round(with_reasons / plain, 1)}
    assert isinstance(bundle.calibrator, ScoreCalibrator)
    print(json.dumps(figures, indent=2))
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "training.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
