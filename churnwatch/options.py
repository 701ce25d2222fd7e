"""What every command shares: the common options, the consoles and the progress reporter, the
home and settings of a run, date parsing and the usage-error exit.

The command modules (``churnwatch/commands/*.py``) import this module only; ``churnwatch.cli``
imports the command modules. So imports run one way and there is no cycle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from churnwatch.progress import reporter_for
from core.home import Home
from core.progress import Reporter
from core.settings import CONFIG_FILE_NAME, Settings, load_settings

# Data is never Rich markup ("[/]" in an account id is a name, not a closing tag): both consoles
# print strings as they are; a line that wants styling passes a ``rich.text.Text`` (or
# ``markup=True`` with ``rich.markup.escape`` on every value).
console = Console(markup=False)
#: ``workflow.db.URL_ENV`` and ``workflow.db.SQLITE_FILE`` (not imported: SQLAlchemy is slow to import)
OPERATIONS_URL_ENV = "CHURNWATCH_OPERATIONS_URL"
OPERATIONS_SQLITE = "operations.sqlite"
err = Console(stderr=True, markup=False)

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


def parse_dates(values: list[str] | None, option: str = "--as-of") -> list[dt.date] | None:
    """Dates from repeated and/or comma-separated ``YYYY-MM-DD`` values (None: no option given)."""
    if not values:
        return None
    parts = [part.strip() for v in values for part in v.split(",")]
    if any(not part for part in parts):
        raise ExitError(f"{option} {','.join(values)!r}: an empty date between commas (expected YYYY-MM-DD,...)")
    return [parse_date(part, option) for part in parts]


@contextmanager
def steps() -> Iterator[Reporter]:
    """The reporter of a long command (``churnwatch.progress.reporter_for`` on stderr): call it
    with each step; library code given it as ``progress`` also shows counted loops."""
    with reporter_for(err) as reporter:
        yield reporter


def config_said(h: Home, config: Path | None) -> str:
    """Which churnwatch.yaml a command reads, in words for an error that asks to declare something there (a
    probe put one in the current folder, which is not read, and got the same error again)."""
    path = given_config(h, config, None) or h.root / CONFIG_FILE_NAME
    if path.exists():
        return f"the file this command reads: {path}"
    return (f"this command reads {path}, which does not exist yet (or the file given with --config); a "
            "churnwatch.yaml in the current folder is not read")


def context(home: Path | None, config: Path | None, data: str | None = None,
            remembered: bool = True, saved: bool = True) -> tuple[Home, Settings]:
    """The home folder and the settings of a command: ``settings.data`` is ``--data``, else the
    source the store recorded and the config's ``data:`` (``features.sources.resolve_data``). The
    config: ``--config``, else the home's churnwatch.yaml, else the ``--config`` file the store's
    latest ``features`` build read (``given_config``), else a data folder's (given or remembered) own.

    ``saved``: the latest settings version saved in the operational store (``churnwatch settings``,
    the workspace's admin pages) overlays the file (``saved_settings``)."""
    from core.store import recorded_source
    from features.sources import resolve_data

    h = Home.resolve(home)
    cfg_path = given_config(h, config, data)
    folder = data or (None if cfg_path or (h.root / CONFIG_FILE_NAME).exists() else recorded_source(h.store, h.root))
    if cfg_path is None and folder and "://" not in folder and Path(folder).is_dir() \
            and not (h.root / CONFIG_FILE_NAME).exists() and (Path(folder) / CONFIG_FILE_NAME).exists():
        cfg_path = Path(folder) / CONFIG_FILE_NAME  # a data folder may carry its own config
    settings = load_settings(cfg_path, h.root)
    if saved:
        settings = saved_settings(h, settings)
    chosen = resolve_data(data, settings.data, h.store, h.root, prefer_recorded=remembered)
    if chosen:
        settings = settings.model_copy(update={"data": chosen})
    return h, settings


def given_config(h: Home, config: Path | None, data: str | None = None) -> Path | None:
    """``--config``, else, for a home without a churnwatch.yaml of its own, the ``--config`` file the
    store's latest ``features`` build read (recorded in the store, as the data source is) while it
    exists, also for another source given with ``--data`` (the README's recurring run, `score --data
    NEW_EXPORT`: next month's export has this month's columns; a probe's first monthly run stopped at
    "required column 'account_id' is missing" with its mapping set aside), unless that source is a folder
    carrying its own churnwatch.yaml (read then); else None."""
    from core.store import recorded_source, source_for_store

    if config is not None or (h.root / CONFIG_FILE_NAME).exists():
        return config
    recorded = recorded_source(h.store, h.root, "config_source")
    if not recorded or not Path(recorded).is_file():
        return None
    source = recorded_source(h.store, h.root)
    other = data is not None and (source is None or source_for_store(data, h.root) != source_for_store(source, h.root))
    if other and "://" not in data and (Path(data) / CONFIG_FILE_NAME).is_file():
        return None
    return Path(recorded)


def saved_settings(h: Home, settings: Settings) -> Settings:
    """``settings`` (from churnwatch.yaml) overlaid by the latest version saved in the operational
    store (``workflow.config_versions``: the file keeps the bootstrap keys, the saved version wins
    for the rest). A home without a configured store and without the default SQLite file has no
    versions: nothing is imported or created (``workflow.db.operations_url``'s default, checked
    here without importing SQLAlchemy)."""
    import os

    configured = settings.operations.url or os.environ.get(OPERATIONS_URL_ENV)
    if not configured and not (h.root / OPERATIONS_SQLITE).exists():
        return settings
    from workflow.config_versions import saved_overlay
    from workflow.db import operations_url

    return saved_overlay(settings, operations_url(h.root, settings.operations.url))


def require_data(settings: Settings) -> str:
    """The configured data source, or a usage error saying how to give one."""
    if not settings.data:
        raise ExitError("no data source: pass --data DIR|FILE.duckdb|URL or set `data:` in churnwatch.yaml")
    return settings.data


def tracking(h: Home):
    """The MLflow client of the home's tracking store (MLflow is imported on first use: it is slow)."""
    from training.registry import setup

    return setup(h.tracking_uri, h.mlflow_artifacts)


def jsonable(obj: object) -> object:
    """A dataclass as a dict (for ``json.dumps``), anything else as it is."""
    return asdict(obj) if is_dataclass(obj) else obj
