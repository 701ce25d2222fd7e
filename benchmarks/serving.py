"""Serving benchmark (issue 14): the real BentoML service on 127.0.0.1, driven by wrk, and in-process scoring.

Uses the home folder of `make demo` (champion model and store; run it first); publishes the
store's scores first. Measures, with p50 / p99 latency, requests/s and errors:

* ``POST /score`` with one account (every feature, reasons in English) at concurrency 1, 8, 32;
* ``POST /score_accounts`` with one id (a lookup in the published scores) at concurrency 1, 8, 32;
* ``POST /score_accounts`` with one id and ``"live": true`` (scored now from the account's latest
  snapshot in the store: a read of the store, the model and the reasons) at concurrency 1 and 8;
* ``POST /score_accounts`` at a fixed 200 requests/s for ``--rate-seconds`` (60 by default);
* the batch of 1,000 accounts with reasons over HTTP and in-process (validation included);
* the bulk read ``GET /scores`` (pages of 100 at concurrency 8, and a whole sync in pages of 1,000);
* an account's score history by id, ``GET /accounts/{id}/history``, at concurrency 8;

then each goal of the issue as met or not met. The load generator is ``wrk`` (Debian package
``wrk``, one thread, keep-alive connections; a Lua script sends the POST bodies, and for the
fixed rate takes the next slot of a schedule with LuaJIT's clock). It shares the machine's cores
with the server, so the figures are pessimistic for a server with its cores to itself.

The in-process batch is also timed stage by stage (the request checks, the model's matrix and
prediction, TreeSHAP, the reasons' wording, the coverage, the assembly of the results), in CPU
milliseconds of this process, the figure another job on the machine changes least. As a server
worker does once it has loaded the model, the in-process runs start after ``gc.freeze()``.
``--in-process`` measures only that (no server, no wrk): quick before/after comparisons.

Usage: python benchmarks/serving.py [--home churnwatch-data] [--seconds 10] [--rate-seconds 60] [--workers 2]
                                   [--in-process]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from core.home import Home  # noqa: E402
from core.settings import load_settings  # noqa: E402
from core.store import read_snapshots  # noqa: E402
from serving.launch import free_port, start_server, stop_server  # noqa: E402
from serving.published import publish_scores, published_paths  # noqa: E402
from serving.scoring import Scorer, validate_features  # noqa: E402
from training.reasons import contributions  # noqa: E402
from training.registry import load_model, setup  # noqa: E402


def post(url: str, body: bytes | None) -> float:
    """One request (GET when ``body`` is None); seconds to the whole answer."""
    t = time.perf_counter()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"},
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
    return time.perf_counter() - t


WRK_SCRIPT = """
bodies = {}
for line in io.lines(os.getenv("CHURNWATCH_BODIES")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])
end
"""

#: Appended for a fixed rate: each request takes the next slot of a schedule (CHURNWATCH_RATE per
#: second, one wrk thread), so the rate holds whatever the latency (LuaJIT's FFI for a clock).
WRK_RATE = """
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } cw_timespec; int clock_gettime(int, cw_timespec *); ]]
local ts = ffi.new("cw_timespec")
local function now_ms() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6 end
local interval = 1000 / tonumber(os.getenv("CHURNWATCH_RATE"))
local slot = nil
delay = function()
  local now = now_ms()
  if slot == nil then slot = now end
  slot = slot + interval
  local wait = slot - now
  if wait < 0 then return 0 end
  return wait
end
"""


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def load_wrk(url: str, bodies: list[bytes | None], concurrency: int, seconds: float, rate: float | None = None,
             allow_errors: bool = False) -> dict:
    """wrk on ``url`` (POST of ``bodies`` in turn; ``[None]``: GET) with ``concurrency`` connections for
    ``seconds``; ``rate``: requests per second on a fixed schedule instead of as fast as possible."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bodies.jsonl").write_bytes(b"\n".join(b or b"" for b in bodies) + b"\n")
        (Path(tmp) / "post.lua").write_text(WRK_SCRIPT + (WRK_RATE if rate else ""))
        script = [] if bodies == [None] else ["-s", str(Path(tmp) / "post.lua")]  # [None]: GET
        out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--latency", "--timeout", "30s",
                              *script, url], capture_output=True, text=True, check=True,
                             env={**os.environ, "CHURNWATCH_BODIES": str(Path(tmp) / "bodies.jsonl"),
                                  "CHURNWATCH_RATE": str(rate or 0)}).stdout
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout)[: ]\s*(\d+)",
                                             out))
    if errors and not allow_errors:  # timed-out requests would drop out of the percentiles
        raise RuntimeError(f"wrk saw error responses or socket errors:\n{out}")
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, flags=re.M))
    return {"concurrency": concurrency, "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "errors": errors, "p50_ms": round(_ms(pct["50"]), 2), "p99_ms": round(_ms(pct["99"]), 2),
            "requests_per_s": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), 1)}


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the server (arbiter and workers) so far."""
    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def worker_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU seconds of each worker process so far."""
    out = {}
    for p in psutil.Process(pid).children(recursive=True):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        out[p.pid] = t.user + t.system
    return out


def with_cpu(pid: int, run) -> dict:
    """``run()``'s figures plus the server's CPU milliseconds per request (a figure the machine's
    other load changes much less than the latencies) and each worker's share of the workers' CPU
    (whether the connections were shared out: ``serving/balance.py``)."""
    before, workers_before = server_cpu_seconds(pid), worker_cpu_seconds(pid)
    out = run()
    out["server_cpu_ms_per_request"] = round((server_cpu_seconds(pid) - before) * 1000 / max(out["requests"], 1), 3)
    used = [max(s - workers_before.get(w, 0.0), 0.0) for w, s in worker_cpu_seconds(pid).items()]
    out["worker_cpu_shares"] = sorted((round(u / sum(used), 2) for u in used), reverse=True) if sum(used) else []
    return out


def full_sync(base: str) -> tuple[float, int]:
    """Seconds to page through every current score with GET /scores (pages of 1,000), and how many."""
    t, seen, cursor = time.perf_counter(), 0, None
    while True:
        with urllib.request.urlopen(base + "/scores?limit=1000" + (f"&cursor={cursor}" if cursor else ""),
                                    timeout=60) as resp:
            page = json.loads(resp.read())
        seen += len(page["scores"])
        cursor = page["next_cursor"]
        if cursor is None:
            return time.perf_counter() - t, seen


GOALS = {"score_accounts_c8": (1000, 15.0), "score_c8": (1000, 20.0), "batch_in_process_ms": 50.0,
         "batch_http_ms": 150.0}


def verdicts(figures: dict) -> dict:
    """Each goal of issue 14 in its words with "met" or "not met" from the figures.

    "c8 >= 1,000 requests/s with p99 <= N ms" is read as the issue states it: the saturated c8
    run (wrk as fast as it can) must reach 1,000 requests/s, and at 1,000 requests/s (the fixed-
    rate c8 run, held on a schedule) the p99 must be within N ms. The saturated run's own p99 is
    printed beside it, labelled: it is the latency of a queue wrk keeps full beyond the goal's
    rate on the server's two cores, not the latency at 1,000 requests/s."""
    def goal(runs: list[dict], at_rate: dict, target: tuple[float, float]) -> dict:
        saturated = next(r for r in runs if r["concurrency"] == 8)
        throughput_ok = saturated["requests_per_s"] >= target[0]
        latency_ok = (at_rate["errors"] == 0 and at_rate["requests_per_s"] >= 0.98 * target[0]
                      and at_rate["p99_ms"] <= target[1])
        return {"verdict": "met" if throughput_ok and latency_ok else "not met",
                "saturated c8 requests/s": saturated["requests_per_s"],
                f"p99 ms at a fixed {target[0]:,} requests/s, c8": at_rate["p99_ms"],
                "saturated c8 p99 ms (a full queue, not the goal's condition)": saturated["p99_ms"]}

    rate = figures["score_accounts_200_per_s"]
    at_goal = figures["c8_at_1000_per_s"]
    return {"/score_accounts c8 >= 1,000 requests/s with p99 <= 15 ms":
            goal(figures["score_accounts_single_id"], at_goal["score_accounts"], GOALS["score_accounts_c8"]),
            "/score c8 >= 1,000 requests/s with p99 <= 20 ms":
            goal(figures["score_single_account_with_reasons"], at_goal["score"], GOALS["score_c8"]),
            "batch of 1,000 with reasons <= 50 ms in-process": "met" if figures["batch_1000_in_process_ms"]["median"]
            <= GOALS["batch_in_process_ms"] else "not met",
            "batch of 1,000 with reasons <= 150 ms over HTTP": "met" if figures["batch_1000_http_ms"]["median"]
            <= GOALS["batch_http_ms"] else "not met",
            "60 s at 200 requests/s on /score_accounts, zero errors": "met" if rate["errors"] == 0
            and rate["requests_per_s"] >= 195 else "not met"}


def _median_ms(run, repeats: int) -> dict:
    """Median and fastest wall milliseconds of ``run``, and its median CPU milliseconds in this
    process (in-process runs: what the machine's other load changes least)."""
    ms, cpu = [], []
    for _ in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        run()
        ms.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {"median": round(float(np.median(ms)), 1), "fastest": round(min(ms), 1),
            "cpu_median": round(float(np.median(cpu)), 1)}


def _cpu_ms(run, repeats: int) -> float:
    """Median CPU milliseconds of ``run`` in this process over ``repeats`` calls."""
    cpu = []
    for _ in range(repeats):
        c = time.process_time()
        run()
        cpu.append((time.process_time() - c) * 1000)
    return round(float(np.median(cpu)), 2)


def batch_stages(scorer: Scorer, accounts: list[dict], repeats: int = 15) -> dict:
    """CPU milliseconds of each stage of scoring ``accounts`` in-process (``Scorer.results``' steps)."""
    bundle = scorer.bundle
    rows = validate_features(accounts, bundle.catalogue)
    X = bundle.frame.matrix(rows)
    contribs = contributions(bundle.booster, X)
    stages = {"request checks": lambda: validate_features(accounts, bundle.catalogue),
              "model matrix": lambda: bundle.frame.matrix(rows),
              "prediction": lambda: bundle.score_matrix(X),
              "TreeSHAP": lambda: contributions(bundle.booster, X),
              "reasons' wording": lambda: bundle.reasons.explain(contribs, rows, "en", public=True),
              "coverage": lambda: scorer.coverage.measure(rows, X),
              "results of checked rows (all of the above but the checks, and the assembly)":
                  lambda: scorer.results(rows),
              "whole (results)": lambda: scorer.results(validate_features(accounts, bundle.catalogue))}
    return {name: _cpu_ms(run, repeats) for name, run in stages.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default="churnwatch-data")
    ap.add_argument("--seconds", type=float, default=10, help="each load run at full speed")
    ap.add_argument("--rate-seconds", type=float, default=60, help="the run at 200 requests/s")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="BentoML worker processes")
    ap.add_argument("--in-process", action="store_true", help="only the in-process figures (no server, no wrk)")
    args = ap.parse_args()
    if not args.in_process and not shutil.which("wrk"):
        raise SystemExit("wrk is not on PATH (Debian package `wrk`)")
    load_before = [round(x, 2) for x in os.getloadavg()]
    home = Home.resolve(args.home)
    settings = load_settings(None, home.root)
    bundle = load_model(setup(home.tracking_uri, home.mlflow_artifacts))
    rows = read_snapshots(home.store)
    rows = rows[rows["as_of"] == rows["as_of"].max()].head(1000)
    names = bundle.catalogue.names

    def features(r) -> dict:
        out = {}
        for n in names:
            v = r[n]
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            out[n] = v if isinstance(v, str) else float(v)
        return out

    accounts = [{"account_id": r["account_id"], "features": features(r)} for _, r in rows.iterrows()]
    singles = [json.dumps({"accounts": [a]}).encode() for a in accounts[:200]]
    batch = json.dumps({"accounts": accounts}).encode()

    scorer = Scorer(bundle=bundle, settings=settings, model_version="bench")
    scorer.results(validate_features(accounts, bundle.catalogue))  # warm (numba, caches)
    # as a server worker does once loaded (serving/service.py): what is loaded so far stays out of
    # the collector's passes, so a full pass over the frames read above is not timed now and then
    gc.collect()
    gc.freeze()
    t, c = time.perf_counter(), time.process_time()
    for a in accounts[:200]:
        scorer.results(validate_features([a], bundle.catalogue))
    single_in_process_ms = (time.perf_counter() - t) / 200 * 1000
    single_in_process_cpu_ms = (time.process_time() - c) / 200 * 1000
    batch_in_process = _median_ms(lambda: scorer.results(validate_features(accounts, bundle.catalogue)), 15)
    stages = batch_stages(scorer, accounts)
    if args.in_process:
        figures = {"date": dt.date.today().isoformat(), "load_average_before": load_before,
                   "load_average_after": [round(x, 2) for x in os.getloadavg()],
                   "batch_1000_in_process_ms": batch_in_process, "batch_1000_stage_cpu_ms": stages,
                   "single_in_process_ms": round(single_in_process_ms, 2),
                   "single_in_process_cpu_ms": round(single_in_process_cpu_ms, 2)}
        print(json.dumps(figures, indent=2))
        return

    publish_scores(home.store, settings)
    published = set(pq.read_table(published_paths(home.store)[0], columns=["account_id"])["account_id"].to_pylist())
    ids = [a["account_id"] for a in accounts if a["account_id"] in published][:200]
    by_id = [json.dumps({"account_ids": [a]}).encode() for a in ids]
    by_id_live = [json.dumps({"account_ids": [a], "live": True}).encode() for a in ids]

    os.environ.pop("CHURNWATCH_API_TOKEN", None)
    proc, base = start_server(free_port(), {"CHURNWATCH_HOME": str(home.root),
                                            "CHURNWATCH_WORKERS": str(args.workers)}, timeout_seconds=240)
    try:
        for body in singles[:50]:  # warm-up
            post(base + "/score", body)
        for body in by_id[:50] + by_id_live[:20]:
            post(base + "/score_accounts", body)
        single = [with_cpu(proc.pid, lambda c=c: load_wrk(base + "/score", singles, c, args.seconds))
                  for c in (1, 8, 32)]
        batch_http = _median_ms(lambda: post(base + "/score", batch), 10)
        lookups = [with_cpu(proc.pid, lambda c=c: load_wrk(base + "/score_accounts", by_id, c, args.seconds))
                   for c in (1, 8, 32)]
        live = [with_cpu(proc.pid, lambda c=c: load_wrk(base + "/score_accounts", by_id_live, c, args.seconds))
                for c in (1, 8)]
        at_rate = with_cpu(proc.pid, lambda: load_wrk(base + "/score_accounts", by_id, 8, args.rate_seconds,
                                                      rate=200, allow_errors=True))
        # the goals' rate held on a schedule: the latency at 1,000 req/s, not at the saturation wrk drives to
        at_goal = {"score_accounts": with_cpu(proc.pid, lambda: load_wrk(base + "/score_accounts", by_id, 8,
                                                                         args.seconds, rate=1000)),
                   "score": with_cpu(proc.pid, lambda: load_wrk(base + "/score", singles, 8, args.seconds, rate=1000))}
        bulk_page = load_wrk(base + "/scores?limit=100", [None], 8, args.seconds)
        history = with_cpu(proc.pid, lambda: load_wrk(base + f"/accounts/{ids[0]}/history", [None], 8, args.seconds))
        sync_s, synced = full_sync(base)
    finally:
        stop_server(proc)
    figures = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (load generator on the same cores)",
        "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "server_workers": args.workers, "load_generator": "wrk, 1 thread",
        "model_trees": bundle.booster.num_trees(),
        "score_single_account_with_reasons": single,
        "batch_1000_http_ms": batch_http,
        "batch_1000_in_process_ms": batch_in_process,
        "batch_1000_stage_cpu_ms": stages,
        "single_in_process_ms": round(single_in_process_ms, 2),
        "single_in_process_cpu_ms": round(single_in_process_cpu_ms, 2),
        "score_accounts_single_id": lookups,
        "score_accounts_live_single_id": live,
        "score_accounts_200_per_s": {**at_rate, "seconds": args.rate_seconds},
        "c8_at_1000_per_s": at_goal,
        "bulk_scores_page_of_100": bulk_page,
        "account_history_by_id": history,
        "bulk_full_sync_pages_of_1000": {"accounts": synced, "seconds": round(sync_s, 2)},
    }
    figures["goals"] = verdicts(figures)
    print(json.dumps(figures, indent=2))
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "serving.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
