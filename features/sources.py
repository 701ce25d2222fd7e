"""Data sources: read the raw contract tables into a DuckDB connection.

Three kinds (DESIGN §1): a folder of Parquet/CSV files (default), a DuckDB file, and a
SQLAlchemy URL (PostgreSQL is the one tested; read through SQLAlchemy/psycopg because
DuckDB's postgres extension cannot be installed offline). Each loads table ``X`` as the
DuckDB table ``raw_X`` with the source's own column names and types; renaming,
validation and casting happen afterwards in ``features/validate.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.errors import DataContractError
from features.contract import TABLES
from features.csvfiles import load_csv

log = logging.getLogger(__name__)


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class FolderSource:
    """A folder with ``<table>.parquet`` or ``<table>.csv`` (or a ``<table>/`` folder of Parquet)."""

    path: Path

    def describe(self) -> str:
        return f"folder {self.path}"

    def candidates(self, table: str) -> list[Path]:
        """The files (or Parquet folder) of ``table`` present in the folder."""
        found = [f for f in (self.path / f"{table}.parquet", self.path / f"{table}.csv") if f.is_file()]
        part_dir = self.path / table
        if part_dir.is_dir() and any(part_dir.glob("*.parquet")):
            found.append(part_dir)
        return found

    def load(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        """Load ``raw_<table>`` from its one file.

        Raises:
            DataContractError: the table is there in two formats (naming both files), or its
                file cannot be read (naming the file and, for a CSV, the line).
        """
        found = self.candidates(table)
        if len(found) > 1:
            raise DataContractError(
                f"table '{table}' is present twice: {' and '.join(str(f) for f in found)}; "
                "keep one of them (churnwatch will not guess which is current)", table=table)
        if not found:
            return False
        file = found[0]
        if file.is_dir():
            _load_parquet(con, table, sorted(file.glob("*.parquet")), file)
        elif file.suffix == ".parquet":
            _load_parquet(con, table, [file], file)
        else:
            load_csv(con, table, file)
        log.info("loaded %s from %s", table, file)
        return True


def _load_parquet(con: duckdb.DuckDBPyConnection, table: str, parts: list[Path], shown: Path) -> None:
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{table} AS SELECT * FROM read_parquet("
                    f"[{', '.join(_lit(str(p)) for p in parts)}])")
        con.execute(f"SELECT * FROM raw_{table} LIMIT 0")
    except duckdb.Error as exc:
        raise DataContractError(f"{shown}: not a readable Parquet file ({first_line(exc)})",
                                table=table) from exc


def first_line(exc: BaseException) -> str:
    """The first line of an engine's message (DuckDB appends pages of context)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class DuckDBSource:
    """Tables of the same names inside a DuckDB database file (opened read-only)."""

    path: Path

    def describe(self) -> str:
        return f"DuckDB file {self.path}"

    def load(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        attached = {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
        if "src" not in attached:
            con.execute("ATTACH ? AS src (READ_ONLY)", [str(self.path)])
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'src' AND table_name = ?",
            [table]).fetchone()[0]
        if not exists:
            return False
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{table} AS SELECT * FROM src.main.{_quote(table)}")
        return True


@dataclass(frozen=True)
class SqlAlchemySource:
    """Tables of the same names in any database SQLAlchemy can reach."""

    url: str

    def describe(self) -> str:
        from sqlalchemy.engine import make_url

        return f"database {make_url(self.url).render_as_string(hide_password=True)}"

    def load(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        import pandas as pd
        import sqlalchemy as sa

        engine = sa.create_engine(self.url)
        try:
            if not sa.inspect(engine).has_table(table):
                return False
            with engine.connect() as conn:
                frame = pd.read_sql_table(table, conn)
        finally:
            engine.dispose()
        con.register("_incoming", frame)
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{table} AS SELECT * FROM _incoming")
        con.unregister("_incoming")
        return True


Source = FolderSource | DuckDBSource | SqlAlchemySource


def open_source(spec: str | Path) -> Source:
    """Pick the source kind from its spelling: URL (``scheme://``), ``*.duckdb`` file, or folder.

    Raises:
        DataContractError: the path does not exist or is not a folder / DuckDB file.
    """
    text = str(spec)
    if "://" in text:
        return SqlAlchemySource(text)
    path = Path(text).expanduser()
    if not path.exists():
        raise DataContractError(f"data source {path} does not exist")
    if path.is_dir():
        return FolderSource(path.resolve())
    if path.suffix in (".duckdb", ".db"):
        return DuckDBSource(path.resolve())
    raise DataContractError(
        f"data source {path}: expected a folder of Parquet/CSV files, a .duckdb file "
        "or a SQLAlchemy URL (postgresql+psycopg://...)")


def source_spec(source: Source | str | Path) -> str:
    """The source as a string ``open_source`` reads back (a path or a URL)."""
    if isinstance(source, str | Path):
        return str(source)
    return source.url if isinstance(source, SqlAlchemySource) else str(source.path)


def resolve_data(data: str | None, configured: str | None, store: Path, home: Path | None,
                 prefer_recorded: bool = True) -> str | None:
    """The data source a command reads (issue 12, item 9).

    ``data`` (``--data``) always wins. Otherwise the source the store's latest
    ``features`` build recorded and the config's ``data:`` (``configured``): the recorded
    one first for the commands that read what ``features`` built (``score``, ``report``,
    ``diagnose``, ``performance``); the config first when ``prefer_recorded`` is false
    (``features`` itself, so an edited config is followed). None when there is none.
    """
    from core.store import recorded_source

    if data:
        return data
    recorded = recorded_source(store, home)
    order = (recorded, configured) if prefer_recorded else (configured, recorded)
    chosen = next((s for s in order if s), None)
    if chosen and chosen == recorded and chosen != configured:
        log.info("data source from the store %s: %s", store, chosen)
    return chosen


def load_raw_tables(source: Source, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Load every contract table the source has as ``raw_<table>``; return their names.

    Raises:
        DataContractError: a required table (subscriptions, events) is missing or has no rows.
    """
    loaded = [name for name in TABLES if source.load(con, name)]
    for name, table in TABLES.items():
        if table.required and name not in loaded:
            raise DataContractError(
                f"{source.describe()}: required table '{name}' not found "
                f"(expected {name}.parquet or {name}.csv, or a table named {name})", table=name)
        if table.required and not con.execute(f"SELECT count(*) FROM (SELECT 1 FROM raw_{name} LIMIT 1)"
                                              ).fetchone()[0]:
            raise DataContractError(f"{source.describe()}: required table '{name}' has no rows", table=name)
    return loaded
