"""The data sets `churnwatch demo-data --kind` writes: the B2B demo and three foreign-shaped exports.

* ``demo``: B2B SaaS, all seven tables (``demo.generator``);
* ``consumer``: a consumer product's accounts + subscriptions + events over 12 months, with
  company columns of its own (``demo.consumer``; another mechanism than the demo's);
* ``flat``: one churn table, a row per customer, ~26% churn (``demo.flat``);
* ``stripe``: a Stripe-shaped export with a naive (leaking) and a correct mapping (``demo.stripe``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from core.errors import ConfigError
from demo.consumer import write_consumer_data
from demo.flat import write_flat_table
from demo.generator import write_demo_data
from demo.stripe import write_stripe_export

#: kind -> (default accounts, default months)
DEMO_KINDS: dict[str, tuple[int, int]] = {"demo": (2000, 24), "consumer": (4000, 12), "flat": (7000, 12),
                                          "stripe": (800, 12)}


def write_kind(kind: str, out: Path, accounts: int | None = None, months: int | None = None, seed: int = 7,
               drift_from: dt.date | None = None) -> object:
    """Write one data set of ``kind`` into ``out``; returns its summary (JSON-able)."""
    if kind not in DEMO_KINDS:
        raise ConfigError(f"--kind {kind!r}: expected one of {', '.join(DEMO_KINDS)}")
    if drift_from and kind != "demo":
        raise ConfigError("--drift-from works with --kind demo only")
    accounts = accounts or DEMO_KINDS[kind][0]
    months = months or DEMO_KINDS[kind][1]
    if kind == "consumer":
        return write_consumer_data(out, accounts=accounts, months=months, seed=seed)
    if kind == "flat":
        path = write_flat_table(Path(out) / "churn_table.csv", rows=accounts, seed=seed)
        return {"table": str(path), "rows": accounts,
                "next": f"churnwatch train --table {path} --label Churn --id customer_id"}
    if kind == "stripe":
        return {name: str(path) for name, path in write_stripe_export(out, accounts=accounts, months=months,
                                                                      seed=seed).items()}
    return write_demo_data(out, accounts=accounts, months=months, seed=seed, drift_from=drift_from)
