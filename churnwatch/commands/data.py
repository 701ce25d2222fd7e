"""`churnwatch demo-data`: the demo's seven tables and churnwatch.yaml, or a foreign-shaped export (--kind).

Stage libraries are imported inside the commands: MLflow, LightGBM and Evidently take seconds to
load, and ``churnwatch --help`` or a usage error should not wait for them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from churnwatch.options import console, jsonable, parse_dates, steps


def demo_data(
    out: Annotated[Path, typer.Option("--out", help="folder to write the tables to")],
    accounts: Annotated[int | None, typer.Option(min=10, max=1_000_000, help="accounts (customers for "
                                                 "--kind flat); default 2000 / 4000 / 7000 / 800 by kind")] = None,
    months: Annotated[int | None, typer.Option(min=6, max=120, help="default 24 (demo), 12 (others)")] = None,
    seed: int = 7,
    drift_from: Annotated[str | None, typer.Option("--drift-from", help="YYYY-MM-DD: behaviour changes "
                                                   "after this date (demo only)")] = None,
    kind: Annotated[str, typer.Option("--kind", help="demo: B2B SaaS, all seven tables; consumer: a consumer "
                                      "product's accounts + subscriptions + events; flat: one churn table "
                                      "(CSV); stripe: a Stripe-shaped export with a naive and a correct "
                                      "mapping")] = "demo",
) -> None:
    """Generate a dataset: the B2B demo (seven tables + churnwatch.yaml) or a foreign-shaped export."""
    from demo.kinds import write_kind

    drift = parse_dates([drift_from], "--drift-from")[0] if drift_from else None
    with steps() as say:
        say(f"generating {kind} data")
        summary = write_kind(kind, out, accounts=accounts, months=months, seed=seed, drift_from=drift)
    console.print(f"wrote {kind} data to {out}")
    console.print(json.dumps(jsonable(summary), indent=2, default=str))


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("demo-data")(demo_data)
