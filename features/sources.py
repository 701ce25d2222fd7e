"""Data sources: read the raw contract tables into a DuckDB connection.

Four kinds (DESIGN §1): a folder of Parquet/CSV files (default), a DuckDB file, a
SQLAlchemy URL (PostgreSQL is the one tested; read through SQLAlchemy/psycopg because
DuckDB's postgres extension cannot be installed offline), and tables of a Spark catalog
(``spark-catalog://DATABASE[?events=db.table&...]``, issue 17: read through the process's
SparkSession, e.g. spark-submit's with its Hive metastore). Each loads table ``X`` as the
DuckDB table ``raw_X`` with the source's own column names and types; renaming,
validation and casting happen afterwards in ``features/validate.py``. With ``--engine spark`` a
Parquet folder or a Spark catalog is read by Spark itself instead (``spark_reads``): ``raw_X`` is
then a Spark view of a ``features.spark.SparkConnection``, no row passing through the driver.

Over 400 lines: each source kind and how each engine reads it (a Parquet folder's parts, footer by
footer, on Spark) are kept in this one home.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.errors import DataContractError
from features.contract import NOT_EMPTY, TABLES
from features.csvfiles import load_csv
from features.sql import engine_of

log = logging.getLogger(__name__)

#: Files of a data folder that look like data (``FolderSource.unread``); other files (a README) are not said.
DATA_SUFFIXES = (".csv", ".parquet", ".tsv", ".jsonl", ".ndjson", ".xlsx", ".xls", ".gz", ".zip", ".bz2", ".zst")
#: Compressed files and archives: "unpack it"
ARCHIVES = (".gz", ".zip", ".bz2", ".zst")
#: Suffixes said only for a file named after a table (``events.json``; not ``manifest.json``)
SAID_IF_A_TABLE = (".json", ".txt")


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

    def unread(self) -> list[str]:
        """A sentence per data file of the folder that no table is read from (a probe's API company put its
        daily usage rollup, ``usage_daily.csv``, beside the tables: 0 event types and not a word; a gzipped
        ``events.csv.gz`` was passed over alike)."""
        return [sentence for _, sentence in self._unread()]

    def meant_for_absent_tables(self) -> list[str]:
        """The sentences of ``unread`` about a file named after a table that has no file read
        (``events.jsonl`` and no ``events.csv``): the table was meant, and building without it would
        leave its features unknown for everyone (a probe's Mixpanel export: 0 events, exit 0, one warning)."""
        return [sentence for table, sentence in self._unread() if table in TABLES and not self.candidates(table)]

    def _unread(self) -> list[tuple[str, str]]:
        said = []
        read = {c.name.lower() for t in TABLES for c in self.candidates(t)}  # a case-blind file system too
        for f in sorted(self.path.iterdir()):
            name = f.name.lower()
            table = name.split(".")[0]
            # a .json or .txt named after a table (events.json) is said; any other (a manifest, notes) is not
            data = name.endswith(DATA_SUFFIXES) or (table in TABLES and name.endswith(SAID_IF_A_TABLE))
            if f.name.startswith((".", "~$")) or not (f.is_file() and data) or name in read:
                continue
            suffix = Path(name).suffix
            if name.endswith(ARCHIVES):
                how = "unpack it"
            elif suffix in (".jsonl", ".ndjson", ".json"):  # a product-analytics export: three lines of pandas
                how = "save it as CSV or Parquet (JSON lines as Mixpanel exports them: README, \"Bring your data\")"
            elif suffix not in (".csv", ".parquet"):
                how = "save it as CSV or Parquet"
            else:  # Events.csv on a case-sensitive file system, events.2024.csv: the table's name and the suffix
                how = f"name it {table}{suffix}"
            said.append((table, f"{f.name}: not read: a table is read from {table}.csv or {table}.parquet; {how}"
                        if table in TABLES else
                        f"{f.name}: not read: churnwatch reads the tables {', '.join(TABLES)} "
                        "(<table>.csv, <table>.parquet or a <table>/ folder of Parquet); "
                        + ("unpack it; " if name.endswith(ARCHIVES) else "")
                        + "usage counts per day or per period become events (README, \"Bring your data\")"))
        return said

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
        parts = sorted(file.glob("*.parquet")) if file.is_dir() else [file]
        schemas = _part_schemas(parts) if file.is_dir() or file.suffix == ".parquet" else None
        if schemas and len({frozenset(s.names) for s in schemas}) > 1:  # Spark would fill the gap with nulls
            raise DataContractError(_columns_differ(file, parts, schemas), table=table)
        if engine_of(con) == "spark":  # read by Spark's executors (``spark_reads``: a CSV never comes here)
            _read_parquet_spark(con, table, parts, file, schemas)
        elif file.is_dir() or file.suffix == ".parquet":
            _load_parquet(con, table, parts, file, by_name=bool(schemas and _typed_in_some(schemas)))
        else:
            load_csv(con, table, file)
        log.info("loaded %s from %s", table, file)
        return True


def _load_parquet(con: duckdb.DuckDBPyConnection, table: str, parts: list[Path], shown: Path,
                  by_name: bool = False) -> None:
    """``raw_<table>`` as a DuckDB view over the Parquet files, of the first file's schema; ``by_name``
    (a column of no type in some parts, typed in others: DuckDB cannot cast the others' values to a
    first part's NULL type) with the schemas of all parts combined, so every part's values are kept."""
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{table} AS SELECT * FROM read_parquet("
                    f"[{', '.join(_lit(str(p)) for p in parts)}]{', union_by_name = true' if by_name else ''})")
        con.execute(f"SELECT * FROM raw_{table} LIMIT 0")
    except duckdb.Error as exc:
        raise DataContractError(f"{shown}: not a readable Parquet file ({first_line(exc)})",
                                table=table) from exc


def _part_schemas(parts: list[Path]) -> list | None:
    """Every part's Arrow schema (its footer), or None when a file cannot be read (the engine then
    says what is wrong with it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return [pq.read_schema(p) for p in parts]
    except (OSError, pa.ArrowException):
        return None


def _columns_differ(shown: Path, parts: list[Path], schemas: list) -> str:
    """The message for Parquet parts whose columns differ: one column, a part with it and one without."""
    every = set().union(*(s.names for s in schemas))
    column = sorted(c for c in every if any(c not in s.names for s in schemas))[0]
    has = next(p for p, s in zip(parts, schemas) if column in s.names)
    lacks = next(p for p, s in zip(parts, schemas) if column not in s.names)
    return (f"{shown}: its Parquet parts do not have the same columns: '{column}' is in {has.name} but not in "
            f"{lacks.name}; write every part with the same columns (empty where a value is unknown)")


def _untyped(schema) -> frozenset[str]:
    """The columns of no type (pandas' all-null ones) of one part."""
    import pyarrow as pa

    return frozenset(f.name for f in schema if pa.types.is_null(f.type))


def _typed_in_some(schemas: list) -> set[str]:
    """The columns of no type in some parts and of a type in others."""
    untyped = set().union(*(_untyped(s) for s in schemas))
    return {c for c in untyped if any(c in s.names and c not in _untyped(s) for s in schemas)}


def _read_parquet_spark(run, table: str, parts: list[Path], shown: Path, schemas: list | None) -> None:
    """``raw_<table>`` as a Spark view over the Parquet files (read where used, not through the driver),
    its columns of the types DuckDB reads them as.

    Spark refuses nanosecond timestamps (pandas writes them): those columns are read as their
    integer nanoseconds (``spark.sql.legacy.parquet.nanosAsLong``) and made microsecond timestamps,
    rounded as DuckDB rounds them (a wall-clock time, or an instant where the file says UTC). A column
    of no type (pandas' all-null one) Spark reads as INT, DuckDB as NULL: made Spark's
    NULL type, which casts to any type. Spark takes one part's schema for all, so parts that differ
    in either (nanoseconds in some, microseconds in others; no type in some, a type in others) are
    read in groups of one kind each and unioned by column name: every part keeps its values."""
    groups = _spark_fixes(parts, schemas)
    try:
        from pyspark.sql import functions as F

        def micros(c: str):  # rounded to the nearest microsecond, as DuckDB casts them
            col = f"(`{c.replace('`', '``')}` + 500)"
            return F.timestamp_micros(F.expr(f"({col} - pmod({col}, 1000)) div 1000"))

        if any(nanos for (nanos, _), _ in groups):
            run.spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
        frame = None
        for (nanos, untyped), group in groups:
            read = run.spark.read.parquet(*(str(p) for p in group))
            if nanos or untyped:
                fixed = {c: micros(c).cast("timestamp" if zoned else "timestamp_ntz") for c, zoned in nanos}
                read = read.withColumns({**fixed, **{c: F.lit(None) for c in untyped}})
            frame = read if frame is None else frame.unionByName(read)
    except Exception as exc:
        from features.spark import spark_error

        raise DataContractError(f"{shown}: not a readable Parquet file ({spark_error(exc, 'reading it')})",
                                table=table) from exc
    run.register(f"raw_{table}", frame, persist=False)


def _spark_fixes(parts: list[Path], schemas: list | None) -> list[tuple[tuple[tuple, frozenset[str]], list[Path]]]:
    """The parts in groups of the same fixes: ((nanosecond timestamps as (column, True for an instant
    or False for a wall-clock time), ...), columns of no type) -> the group's parts."""
    import pyarrow as pa

    if schemas is None:
        return [(((), frozenset()), parts)]  # Spark says what is wrong with the file
    groups: dict[tuple, list[Path]] = {}
    for part, schema in zip(parts, schemas):
        nanos = tuple((f.name, f.type.tz is not None) for f in schema
                      if pa.types.is_timestamp(f.type) and f.type.unit == "ns")
        groups.setdefault((nanos, _untyped(schema)), []).append(part)
    return list(groups.items())


def spark_reads(source: Source) -> str | None:
    """None when Spark reads every table of ``source`` itself (a Spark catalog, a folder of Parquet
    files), else why not: then ``--engine spark`` loads and checks the tables in DuckDB on the driver
    and hands the checked ones to Spark (``features.spark.start_spark``)."""
    if isinstance(source, SparkCatalogSource):
        return None
    if not isinstance(source, FolderSource):
        return f"a {source.describe().split()[0]} source is read by the driver"
    for table in TABLES:
        csv = [f for f in source.candidates(table) if f.suffix == ".csv"]
        if csv:
            return f"{csv[0].name} is a CSV file (DuckDB reads its types)"
    return None


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


#: How a Spark catalog source is spelled: ``spark-catalog://DATABASE`` (``catalog.database`` too;
#: empty = the session's current database), the contract tables by their own names in it, or per
#: table ``?events=db.web_clicks&tickets=support.tickets`` (a table named there must exist).
SPARK_CATALOG = "spark-catalog://"


@dataclass(frozen=True)
class SparkCatalogSource:
    """Tables of a Spark catalog (Hive metastore, Unity, Glue, or the session's own), read by
    the process's SparkSession: as Spark views for ``--engine spark`` (the contract checks run
    there), else handed to DuckDB as Arrow."""

    database: str = ""
    tables: tuple[tuple[str, str], ...] = ()  # (contract table, catalog table) named in the spec

    @classmethod
    def parse(cls, spec: str) -> SparkCatalogSource:
        from urllib.parse import parse_qsl, urlsplit

        parts = urlsplit(spec)
        named = parse_qsl(parts.query, keep_blank_values=True)
        unknown = [k for k, _ in named if k not in TABLES]
        if unknown:
            raise DataContractError(f"data source {spec}: '{unknown[0]}' is not a table of the contract "
                                    f"({', '.join(TABLES)})")
        empty = [k for k, v in named if not v]
        if empty:
            raise DataContractError(f"data source {spec}: no catalog table given for '{empty[0]}'")
        return cls(parts.netloc + parts.path.rstrip("/"), tuple(named))

    @property
    def spec(self) -> str:
        from urllib.parse import urlencode

        return SPARK_CATALOG + self.database + (f"?{urlencode(self.tables)}" if self.tables else "")

    def describe(self) -> str:
        return f"Spark catalog {self.database or '(current database)'}"

    def table_name(self, table: str) -> str:
        return dict(self.tables).get(table) or (f"{self.database}.{table}" if self.database else table)

    def load(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        """Load ``raw_<table>`` from the catalog table (a Spark view on a ``SparkConnection``, else
        Arrow through the driver).

        Raises:
            DataContractError: the database or a table named in the spec (``?events=...``) does
                not exist, or the catalog cannot be read (one line, Spark's log named).
        """
        from features.spark import naive_utc, spark_error, spark_session

        spark = spark_session()
        name = self.table_name(table)
        try:
            if self.database and not spark.catalog.databaseExists(self.database):
                raise DataContractError(f"{self.describe()}: no such database in the Spark catalog",
                                        table=table)
            exists = spark.catalog.tableExists(name)
        except DataContractError:
            raise
        except Exception as exc:  # a catalog that cannot be reached, a malformed name
            raise DataContractError(str(spark_error(exc, f"looking up {name} in the Spark catalog")),
                                    table=table) from exc
        if not exists:
            if table in dict(self.tables):
                raise DataContractError(f"{self.describe()}: table {name} (given for '{table}') does not exist",
                                        table=table)
            return False
        if engine_of(con) == "spark":  # read where used, by the executors
            try:
                frame = spark.table(name)
            except Exception as exc:
                raise DataContractError(str(spark_error(exc, f"reading {name}")), table=table) from exc
            con.register(f"raw_{table}", frame, persist=False)
            log.info("reading %s from Spark table %s", table, name)
            return True
        try:
            arrow = spark.table(name).toArrow()
        except Exception as exc:
            raise DataContractError(str(spark_error(exc, f"reading {name}")), table=table) from exc
        con.register("_incoming", naive_utc(arrow))
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{table} AS SELECT * FROM _incoming")
        con.unregister("_incoming")
        log.info("loaded %s from Spark table %s", table, name)
        return True


Source = FolderSource | DuckDBSource | SqlAlchemySource | SparkCatalogSource


def open_source(spec: str | Path) -> Source:
    """Pick the source kind from its spelling: ``spark-catalog://DATABASE``, URL (``scheme://``),
    ``*.duckdb`` file, or folder.

    Raises:
        DataContractError: the path does not exist or is not a folder / DuckDB file.
    """
    text = str(spec)
    if text.startswith(SPARK_CATALOG):
        return SparkCatalogSource.parse(text)
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
        "a SQLAlchemy URL (postgresql+psycopg://...) or spark-catalog://DATABASE")


def source_spec(source: Source | str | Path) -> str:
    """The source as a string ``open_source`` reads back (a path or a URL)."""
    if isinstance(source, str | Path):
        return str(source)
    if isinstance(source, SparkCatalogSource):
        return source.spec
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
        DataContractError: a required table (subscriptions) is missing, or it or the events have no rows.
    """
    loaded = [name for name in TABLES if source.load(con, name)]
    for name, table in TABLES.items():
        if table.required and name not in loaded:
            raise DataContractError(
                f"{source.describe()}: required table '{name}' not found "
                f"(expected {name}.parquet or {name}.csv, or a table named {name})", table=name)
        if (table.required or name in NOT_EMPTY) and name in loaded and not con.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM raw_{name} LIMIT 1)").fetchone()[0]:
            kind = "required table" if table.required else "table"
            hint = "" if table.required else f" (a source without {NOT_EMPTY[name]} leaves the table out)"
            raise DataContractError(f"{source.describe()}: {kind} '{name}' has no rows{hint}", table=name)
    return loaded
