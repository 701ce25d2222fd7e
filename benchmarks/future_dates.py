"""The registered model on the dates after its export (issue 12's design question: refit on every
labelled date, or keep the model that was evaluated?).

A consumer log of ``--months`` + ``--ahead`` months is generated (``demo-data --kind consumer``) and
cut at ``--months`` months, as an export taken then would be (events, terms and sign-ups from the
cut on left out; a term running across the cut keeps its scheduled end). ``churnwatch features``
builds a store of each. From the cut export's store two models are trained with the same code as
``churnwatch train`` (``training.train.fit_and_evaluate``):

* ``evaluated``: the split's training block only, as ``train`` registers it today;
* ``refit``: every labelled as-of date of the cut export (the test block and the purge gap too).

Both are then scored on the as-of dates of the longer log that the cut export could not label (from
its last labelled date to the cut): the dates a customer-success team scores at after that export,
whose outcome the longer log knows. Printed per model: the rows it learned from, the chosen model and
calibration, ROC-AUC and ECE on those future dates (with the logistic-regression baseline fitted on
the same rows), and for ``evaluated`` also the figures ``train`` would print on the cut export's own
test block.

Usage: python benchmarks/future_dates.py [--months 12] [--ahead 3] [--accounts 4000] [--seed 11]
                                         [--keep DIR]
Minutes at the default size on 2 cores (two trainings on the cut export's rows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the package, not benchmarks/training.py, is `training`

from training.evaluation import ece, ece_estimates, roc_auc  # noqa: E402
from training.split import purged_split  # noqa: E402
from training.train import fit_and_evaluate, load_labelled  # noqa: E402


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "churnwatch", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def cut_export(full: Path, out: Path, cut: dt.date) -> None:
    """The export as taken on ``cut``: nothing that starts or happens from then on."""
    out.mkdir(parents=True)
    at = pd.Timestamp(cut)
    for table, column in (("accounts", "signed_at"), ("subscriptions", "start_date"), ("events", "occurred_at")):
        frame = pd.read_parquet(full / f"{table}.parquet")
        frame[frame[column] < at].to_parquet(out / f"{table}.parquet", index=False)
    config = yaml.safe_load((full / "churnwatch.yaml").read_text())
    config["data_end"] = cut.isoformat()
    (out / "churnwatch.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def figures(bundle, rows: pd.DataFrame) -> dict:
    p = bundle.predict(rows)["churn_probability"].to_numpy()
    y = rows["churn_label"].to_numpy(dtype=int)
    est = ece_estimates(y, p, groups=rows["account_id"].to_numpy())
    return {"rows": len(rows), "base_rate": round(float(y.mean()), 4), "mean_probability": round(float(p.mean()), 4),
            "roc_auc": round(roc_auc(y, p), 4), "ece": round(ece(y, p), 4),
            "ece_debiased": [round(est[k], 4) for k in ("ece_debiased", "ece_debiased_lo", "ece_debiased_hi")],
            "ece_by_chance": round(est["ece_noise"], 4), "bar_0.1x_base_rate": round(0.1 * float(y.mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--ahead", type=int, default=3, help="months after the cut (at least 3: 60 + 30 days)")
    ap.add_argument("--accounts", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--keep", type=Path, help="keep the exports and homes here")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cw-future-"))
    started = time.time()
    full, short = work / "full", work / "cut"
    for d in (full, short, work / "home-full", work / "home-cut"):
        shutil.rmtree(d, ignore_errors=True)
    cli("demo-data", "--kind", "consumer", "--accounts", str(args.accounts), "--months",
        str(args.months + args.ahead), "--seed", str(args.seed), "--out", str(full))
    end = dt.date.fromisoformat(str(yaml.safe_load((full / "churnwatch.yaml").read_text())["data_end"]))
    cut = (pd.Timestamp(end) - pd.DateOffset(months=args.ahead)).date()
    cut_export(full, short, cut)
    for data, home in ((full, work / "home-full"), (short, work / "home-cut")):
        cli("features", "--data", str(data), "--home", str(home))
    rows, catalogue, info = load_labelled(work / "home-cut" / "store.duckdb")
    later, _, _ = load_labelled(work / "home-full" / "store.duckdb")
    dates = sorted(pd.to_datetime(rows["as_of"]).dt.date.unique())
    split = purged_split(dates, info["horizon_days"], info["grace_days"])
    future = later[pd.to_datetime(later["as_of"]).dt.date > dates[-1]]
    missing = [c for c in rows.columns if c not in future.columns]
    future = future.assign(**{c: np.nan for c in missing})[list(rows.columns)]
    start = dt.date.fromisoformat(info["data_start"]) if info.get("data_start") else None
    out = {"export": {"months": args.months, "cut": cut.isoformat(), "split": split.mode,
                      "training_dates": [split.train[0].isoformat(), split.train[1].isoformat()],
                      "test_dates": [split.test[0].isoformat(), split.test[1].isoformat()],
                      "labelled_dates": len(dates), "last_labelled": dates[-1].isoformat(),
                      "future_dates": [str(pd.Timestamp(future["as_of"].min()).date()),
                                       str(pd.Timestamp(future["as_of"].max()).date())],
                      "future_columns_missing": missing}}
    for name, train in (("evaluated", split.rows(rows, "train")), ("refit", rows)):
        t = time.time()
        result = fit_and_evaluate(train, None, None, None, future, catalogue, work / f"model-{name}",
                                  seed=args.seed, purge_days=info["horizon_days"] + info["grace_days"],
                                  data_start=start, draw=False)
        lr = result.comparison.set_index("model")["roc_auc"]
        out[name] = {"learned_from": {"rows": len(train), "as_of_dates": int(train["as_of"].nunique()),
                                      "base_rate": round(float(train["churn_label"].mean()), 4)},
                     "model": result.metrics.get("model"), "calibration": result.metrics.get("calibration"),
                     "future": {**figures(result.bundle, future),
                                "logistic_baseline_roc_auc": round(float(lr.get("logistic regression", np.nan)), 4)},
                     "seconds": round(time.time() - t, 1)}
        if name == "evaluated":
            out[name]["own_test_block"] = figures(result.bundle, split.rows(rows, "test"))
        print(json.dumps({name: out[name]}), flush=True)
    out["seconds"] = round(time.time() - started, 1)
    print(json.dumps(out, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
