"""`churnwatch demo-data`: the demo's seven tables and churnwatch.yaml.

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
    out: Annotated[Path, typer.Option("--out", help="folder to write the seven tables to")],
    accounts: Annotated[int, typer.Option(min=10, max=1_000_000)] = 2000,
    months: Annotated[int, typer.Option(min=6, max=120)] = 24,
    seed: int = 7,
    drift_from: Annotated[str | None, typer.Option("--drift-from", help="YYYY-MM-DD: behaviour changes "
                                                   "after this date")] = None,
) -> None:
    """Generate a realistic B2B SaaS dataset (all seven tables + churnwatch.yaml)."""
    from demo.generator import write_demo_data

    drift = parse_dates([drift_from], "--drift-from")[0] if drift_from else None
    with steps() as say:
        say(f"generating {accounts:,} accounts x {months} months")
        summary = write_demo_data(out, accounts=accounts, months=months, seed=seed, drift_from=drift)
    console.print(f"wrote demo data to {out}")
    console.print(json.dumps(jsonable(summary), indent=2, default=str))


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("demo-data")(demo_data)
