"""What every command shares: the common options, date parsing and the usage-error exit.

Kept apart from ``churnwatch.cli`` so the command modules (``cli_monitor``, ``cli_managers``,
``cli_diagnosis``) import them at module level without an import cycle.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

HomeOpt = Annotated[Path | None, typer.Option("--home", help="home folder (default ./churnwatch-data or "
                                              "$CHURNWATCH_HOME)", show_default=False)]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="churnwatch.yaml (default <home>/churnwatch.yaml)",
                                                show_default=False)]
DataOpt = Annotated[str | None, typer.Option("--data", help="folder of Parquet/CSV, a .duckdb file or a "
                                             "SQLAlchemy URL (default: data: in the config)", show_default=False)]
StoreOpt = Annotated[Path | None, typer.Option("--store", help="snapshot store with the score history (default "
                                               "<home>/store.duckdb)", show_default=False)]


class ExitError(Exception):
    """Leave with a message and a code (raised inside commands, handled in ``cli.main``)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def parse_date(value: str | None, option: str = "--as-of") -> dt.date | None:
    """``YYYY-MM-DD`` (None stays None); anything else is a usage error naming the option."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ExitError(f"{option} {value.strip()!r}: expected a date as YYYY-MM-DD") from exc
