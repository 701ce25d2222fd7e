"""Serving benchmark: the real BentoML service on 127.0.0.1 against in-process scoring.

Uses the home folder of `make demo` (champion model and store; run it first). Measures
single-account /score requests with reasons at concurrency 1, 8 and 32 (p50, p99,
requests/s), batches of 1,000 accounts, and the same scoring in-process; single-id
/score_accounts requests (answered from the scores `churnwatch score` published; published
here first when the home has none) at concurrency 1, 8 and 32; the bulk read GET /scores
(pages of 100 at concurrency 8, and a whole sync in pages of 1,000).

The load generator is `wrk` (Debian package `wrk`; keep-alive connections, written in C)
when it is on PATH, else a thread pool in this process (one connection per request, far
more client CPU). Either way it shares the machine's cores with the server, so the HTTP
figures are pessimistic for a server that has its cores to itself.

Usage: python benchmarks/serving.py [--home churnwatch-data] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import numpy as np  # noqa: E402

from core.home import Home  # noqa: E402
from core.settings import load_settings  # noqa: E402
from core.store import read_snapshots  # noqa: E402
from serving.launch import free_port, start_server, stop_server  # noqa: E402
from serving.published import publish_scores, published_paths  # noqa: E402
from serving.scoring import Scorer, validate_features  # noqa: E402
from training.registry import load_model, setup  # noqa: E402


def post(url: str, body: bytes | None) -> float:
    """One request (GET when ``body`` is None); seconds to the whole answer."""
    t = time.perf_counter()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"},
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
    return time.perf_counter() - t


def load(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    def worker(k: int) -> list[float]:
        out, i = [], k
        while time.perf_counter() < stop:
            out.append(post(url, bodies[i % len(bodies)]))
            i += concurrency
        return out

    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for part in pool.map(worker, range(concurrency)):
            latencies += part
    wall = time.perf_counter() - t
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "requests_per_s": round(len(ms) / wall, 1)}


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


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def load_wrk(url: str, bodies: list[bytes | None], concurrency: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bodies.jsonl").write_bytes(b"\n".join(b or b"" for b in bodies) + b"\n")
        (Path(tmp) / "post.lua").write_text(WRK_SCRIPT)
        script = [] if bodies == [None] else ["-s", str(Path(tmp) / "post.lua")]  # [None]: GET
        out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--latency", "--timeout", "30s",
                              *script, url], capture_output=True, text=True, check=True,
                             env={**os.environ, "CHURNWATCH_BODIES": str(Path(tmp) / "bodies.jsonl")}).stdout
    if "Non-2xx" in out or "Socket errors" in out:  # timed-out requests would drop out of the percentiles
        raise RuntimeError(f"wrk saw error responses or socket errors:\n{out}")
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, flags=re.M))
    return {"concurrency": concurrency, "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50_ms": round(_ms(pct["50"]), 1), "p99_ms": round(_ms(pct["99"]), 1),
            "requests_per_s": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), 1)}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default="churnwatch-data")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="BentoML worker processes")
    args = ap.parse_args()
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
    t = time.perf_counter()
    for a in accounts[:200]:
        scorer.results(validate_features([a], bundle.catalogue))
    single_in_process_ms = (time.perf_counter() - t) / 200 * 1000
    t = time.perf_counter()
    scorer.results(validate_features(accounts, bundle.catalogue))
    batch_in_process_ms = (time.perf_counter() - t) * 1000

    if not published_paths(home.store)[0].exists():
        publish_scores(home.store, settings)
    by_id = [json.dumps({"account_ids": [a["account_id"]]}).encode() for a in accounts[:200]]

    os.environ.pop("CHURNWATCH_API_TOKEN", None)
    generator = "wrk" if shutil.which("wrk") else "python threads"
    run_load = load_wrk if shutil.which("wrk") else load
    proc, base = start_server(free_port(), {"CHURNWATCH_HOME": str(home.root),
                                            "CHURNWATCH_WORKERS": str(args.workers)})
    try:
        for body in singles[:50]:  # warm-up
            post(base + "/score", body)
        single = [run_load(base + "/score", singles, c, args.seconds) for c in (1, 8, 32)]
        batch_ms = [post(base + "/score", batch) * 1000 for _ in range(10)]
        for body in by_id[:50]:
            post(base + "/score_accounts", body)
        lookups = [run_load(base + "/score_accounts", by_id, c, args.seconds) for c in (1, 8, 32)]
        bulk_page = run_load(base + "/scores?limit=100", [None], 8, args.seconds)
        sync_s, synced = full_sync(base)
    finally:
        stop_server(proc)
    figures = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (load generator on the same cores)",
        "server_workers": args.workers, "load_generator": generator,
        "model_trees": bundle.booster.num_trees(), "single_account_with_reasons": single,
        "batch_1000_with_reasons": {"p50_ms": round(float(np.median(batch_ms)), 1),
                                    "rows_per_s": round(1000 / (np.median(batch_ms) / 1000))},
        "score_accounts_single_id_published": lookups,
        "bulk_scores_page_of_100": bulk_page,
        "bulk_full_sync_pages_of_1000": {"accounts": synced, "seconds": round(sync_s, 2)},
        "in_process": {"single_ms": round(single_in_process_ms, 2), "batch_1000_ms": round(batch_in_process_ms, 1)},
    }
    figures["http_over_in_process"] = {
        "single_p50": round(single[0]["p50_ms"] / single_in_process_ms, 1),
        "batch_1000": round(figures["batch_1000_with_reasons"]["p50_ms"] / batch_in_process_ms, 2)}
    print(json.dumps(figures, indent=2))
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "serving.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
