"""Reasons benchmark (issue 14 item 4): LightGBM's ``pred_contrib`` against the table TreeSHAP of
``training/treeshap.py`` on the demo champion, in-process.

Uses the home folder of `make demo` (champion model and store; run it first). Prints, for the
old path (contributions by ``pred_contrib``) and the new one (tables), interleaved so both see
the same machine load: the contributions alone and the whole batch of 1,000 accounts with
reasons as ``/score`` computes it (validation, scores, reasons, coverage), then one account;
median and fastest of ``--repeats`` runs; then where the new batch's time goes, stage by stage
(median wall and CPU milliseconds). The quality cost is measured on the champion's whole
test block: the largest difference of any contribution, and the rows whose reasons and
strengths (feature, text, contribution within 1e-6) differ in either language.

Usage: python benchmarks/reasons.py [--home churnwatch-data] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from core.home import Home  # noqa: E402
from core.settings import load_settings  # noqa: E402
from core.store import read_snapshots  # noqa: E402
from serving.scoring import Scorer, validate_features  # noqa: E402
from training import treeshap  # noqa: E402
from training.blend import BlendedModel  # noqa: E402
from training.promotion import test_block  # noqa: E402
from training.reasons import contributions  # noqa: E402
from training.registry import load_model, setup  # noqa: E402


class Path_:
    """Switches the champion's trees between the tables (new) and ``pred_contrib`` (old)."""

    def __init__(self, booster: object) -> None:
        self.trees = booster.booster if isinstance(booster, BlendedModel) else booster
        self.tables = treeshap.tables_for(self.trees)

    def use(self, new: bool) -> None:
        treeshap._TABLES[self.trees] = self.tables if new else None


def timed(paths: Path_, runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Median and fastest milliseconds of each run, old and new interleaved."""
    out: dict[str, dict] = {}
    for name, run in runs.items():
        ms = {"old": [], "new": []}
        for _ in range(repeats):
            for side in ("old", "new"):
                paths.use(side == "new")
                t = time.perf_counter()
                run()
                ms[side].append((time.perf_counter() - t) * 1000)
        out[name] = {side: {"median_ms": round(float(np.median(v)), 2), "min_ms": round(min(v), 2)}
                     for side, v in ms.items()}
        out[name]["speedup_median"] = round(out[name]["old"]["median_ms"] / out[name]["new"]["median_ms"], 1)
    paths.use(True)
    return out


def _stage(run: Callable[[], object], repeats: int) -> dict:
    """Median wall and CPU milliseconds of ``run`` (CPU time: what the machine's other load changes
    least; the wording and the checks run on one thread)."""
    wall, cpu = [], []
    for _ in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        run()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {"wall_ms": round(float(np.median(wall)), 2), "cpu_ms": round(float(np.median(cpu)), 2)}


def quality(bundle: object, paths: Path_, rows: object) -> dict:
    """How the new contributions and reasons differ from the old on ``rows``."""
    X = bundle.frame.matrix(rows)
    paths.use(False)
    old = contributions(bundle.booster, X)
    paths.use(True)
    new = contributions(bundle.booster, X)
    differing = 0
    for lang in ("en", "zh-CN"):
        for a, b in zip(bundle.reasons.explain(old, rows, lang), bundle.reasons.explain(new, rows, lang)):
            differing += not all(_same(a[s], b[s]) for s in ("reasons", "strengths"))
    return {"rows": len(rows), "max_abs_contribution_difference": float(np.abs(old - new).max()),
            "rows_with_different_reasons": differing}


def _same(a: list[dict], b: list[dict]) -> bool:
    return [(r["feature"], r["text"]) for r in a] == [(r["feature"], r["text"]) for r in b] and all(
        abs(x["contribution"] - y["contribution"]) <= 1e-6 for x, y in zip(a, b))


def request_accounts(bundle: object, rows: object) -> list[dict]:
    """``/score`` request items with every non-null feature of ``rows``."""
    out = []
    for _, r in rows.iterrows():
        features = {}
        for f in bundle.catalogue.features:
            v = r[f.name]
            if v is None or v != v:
                continue
            features[f.name] = str(v) if f.type == "category" else float(v)
        out.append({"account_id": str(r["account_id"]), "features": features})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default="churnwatch-data")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    home = Home.resolve(args.home)
    bundle = load_model(setup(home.tracking_uri, home.mlflow_artifacts))
    scorer = Scorer(bundle=bundle, settings=load_settings(None, home.root), model_version="bench")
    paths = Path_(bundle.booster)
    t = time.perf_counter()
    treeshap.TreeTables(paths.trees)
    build_s = time.perf_counter() - t
    snapshots = read_snapshots(home.store)
    latest = snapshots[snapshots["as_of"] == snapshots["as_of"].max()].head(1000)
    accounts = request_accounts(bundle, latest)
    X = bundle.frame.matrix(latest)
    batch = lambda: scorer.results(validate_features(accounts, bundle.catalogue))  # noqa: E731
    single = lambda: scorer.results(validate_features(accounts[:1], bundle.catalogue))  # noqa: E731
    timings = timed(paths, {"contributions_1000": lambda: contributions(bundle.booster, X),
                            "batch_1000_with_reasons": batch, "one_account_with_reasons": single}, args.repeats)
    rows = validate_features(accounts, bundle.catalogue)
    contribs = contributions(bundle.booster, X)
    results = scorer.results(rows)
    parts = {"request validation": lambda: validate_features(accounts, bundle.catalogue),
             "model matrix": lambda: bundle.frame.matrix(rows),
             "probability, health, tier": lambda: bundle.score_matrix(X),
             "contributions (tables)": lambda: contributions(bundle.booster, X),
             "reasons wording (en)": lambda: bundle.reasons.explain(contribs, rows, "en"),
             "reasons wording (zh-CN)": lambda: bundle.reasons.explain(contribs, rows, "zh-CN"),
             "coverage": lambda: scorer.coverage.measure(rows, X),
             "results, all of the above but validation": lambda: scorer.results(rows),
             "answer JSON (orjson, as the service)": lambda: orjson.dumps(results),
             "answer JSON (json module)": lambda: json.dumps(results, ensure_ascii=False).encode()}
    breakdown = {name: _stage(run, args.repeats) for name, run in parts.items()}
    try:
        block = test_block(bundle, home.store)
    except Exception as exc:  # noqa: BLE001 - a home without the pointer's store: the latest rows instead
        print(f"test block unavailable ({exc}); quality on the latest snapshots", file=sys.stderr)
        block = latest.reset_index(drop=True)
    trees = paths.trees
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average": os.getloadavg()},
        "model": {"trees": trees.num_trees(), "table_entries": int(len(paths.tables.table)) if paths.tables else None,
                  "tables_built_s": round(build_s, 3), "batch_rows": len(accounts)},
        "timings": timings,
        "new_batch_breakdown_median": breakdown,
        "quality": quality(bundle, paths, block),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
