"""A flat-table model's ``POST /score`` (``train --table``), the real BentoML service on 127.0.0.1: a row sent
as numbers (the values as the model reads them) against the same row as the export writes it ("$1,234.50",
"1,503.86", " 17 ", "2024-01-19", read as training read each column: ``training.own_table.read_sent_cells``).

Builds its own home in a temporary folder: the project's flat demo table (``demo.flat``, 2,000 customers),
``train --table`` and ``promote``, then ``churnwatch serve`` on a free port. Sends each request shape
``--repeats`` times, one at a time (httpx, keep-alive), the two forms interleaved so both see the same machine
load, and prints p50 / p99 milliseconds and accounts per second; then the server's peak resident memory.

Usage: python benchmarks/table_requests.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from demo.flat import write_flat_table  # noqa: E402
from serving.launch import free_port, wait_ready  # noqa: E402


def _cli(*args: object, env: dict) -> None:
    done = subprocess.run([sys.executable, "-m", "churnwatch", *map(str, args)], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"churnwatch {args[0]} exited {done.returncode}: {done.stderr[-1500:]}")


def _forms(rows: pd.DataFrame, today: dt.date) -> tuple[list[dict], list[dict]]:
    """Each customer's features as numbers and as the export writes them."""
    numbers, text = [], []
    for _, r in rows.iterrows():
        f = {k: v for k, v in r.items() if k not in ("customer_id", "Churn") and pd.notna(v)}
        signup = dt.date.fromisoformat(str(f.pop("signup_date")))
        as_numbers = {k: (float(v) if isinstance(v, int | float | np.number) else str(v)) for k, v in f.items()}
        numbers.append({"account_id": str(r["customer_id"]),
                        "features": {**as_numbers, "signup_date": (today - signup).days}})
        text.append({"account_id": str(r["customer_id"]), "features": {
            **as_numbers, "monthly_charges": f"${f['monthly_charges']:,.2f}",
            "total_charges": f"{f['total_charges']:,.2f}", "tenure_months": f" {int(f['tenure_months'])} ",
            "signup_date": signup.isoformat()}})
    return numbers, text


def _peak_rss_mb(pid: int) -> float | None:
    """VmHWM of the server and its children (Linux), in MB."""
    total, found = 0.0, False
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
                    found = True
        except OSError:
            continue
    return round(total, 1) if found else None


def _children(pid: int) -> list[int]:
    try:
        kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="churnwatch-table-bench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENTOML_HOME": str(work / "bentoml"), "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    table = write_flat_table(work / "customers.csv", rows=2000, seed=11)
    home = work / "home"
    t = time.perf_counter()
    _cli("train", "--table", table, "--label", "Churn", "--id", "customer_id", "--home", home, "--cross-validate", 0,
         env=env)
    _cli("promote", "--home", home, env=env)
    print(f"home built in {time.perf_counter() - t:.0f} s (train --table, promote)")
    rows = pd.read_csv(table, dtype={"customer_id": str})
    numbers, text = _forms(rows, dt.datetime.now(dt.UTC).date())
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "churnwatch", "serve", "--home", str(home), "--port", str(port),
                               "--workers", "1"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, dict] = {}
    try:
        if not wait_ready(base, 180, server):
            raise SystemExit("the server never answered /readyz")
        with httpx.Client(base_url=base, timeout=120) as client:
            for size in (1, 100, 1000):
                times: dict[str, list[float]] = {"numbers": [], "text": []}
                repeats = args.repeats if size == 1 else max(args.repeats // (10 if size == 100 else 40), 3)
                for k in range(repeats):
                    start = (k * size) % (len(numbers) - size + 1)
                    for form, items in (("numbers", numbers), ("text", text)):
                        body = json.dumps({"accounts": items[start:start + size]})
                        t = time.perf_counter()
                        answer = client.post("/score", content=body, headers={"Content-Type": "application/json"})
                        times[form].append((time.perf_counter() - t) * 1000)
                        if answer.status_code != 200:
                            raise SystemExit(f"{form} x{size}: HTTP {answer.status_code}: {answer.text[:500]}")
                for form, ms in times.items():
                    p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
                    results[f"{form} x{size}"] = {"requests": len(ms), "p50_ms": round(p50, 1), "p99_ms": round(p99, 1),
                                                  "accounts_per_s": round(size / (p50 / 1000), 1)}
                    print(f"POST /score, {size:>4} account(s) as {form:<7}: p50 {p50:7.1f} ms, p99 {p99:7.1f} ms, "
                          f"{size / (p50 / 1000):8.1f} accounts/s ({len(ms)} requests)")
        peak = _peak_rss_mb(server.pid)
        print(f"server peak resident memory (VmHWM, server and worker): {peak} MB")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "load_1min": os.getloadavg()[0]}, "results": results}, indent=1))


if __name__ == "__main__":
    main()
