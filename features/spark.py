"""The Spark engine: the feature SQL DuckDB runs, transpiled by sqlglot, run by PySpark (issue 17).

One definition of each feature: ``features/timeline.py`` (terms, spine, labels) and
``features/snapshots.py`` / ``features/windows.py`` (every feature) are written once, in
DuckDB's dialect restricted to what sqlglot transpiles to Spark SQL. ``SparkConnection`` is
the seam: the subset of a DuckDB connection those modules use (``execute`` of
``CREATE OR REPLACE TEMP TABLE x AS SELECT ...`` and of plain queries, ``executemany`` of
``INSERT INTO x VALUES``), on a ``SparkSession``; each ``TEMP TABLE`` is computed once,
written as Parquet in the staging folder and read back as a temp view.
Rewrites beyond sqlglot's: DuckDB's 64-bit ``hash`` becomes Spark's 64-bit
``xxhash64`` (Spark's ``hash`` is 32 bits: collisions among millions of accounts), a decimal
literal (``6.0``) a DOUBLE (Spark would divide it as a DECIMAL rounded to 6 digits), the
contract checks' DuckDB functions Spark names otherwise (``ord``, ``suffix``, ``strlen``,
``isfinite``, ``timezone('UTC', x)``, ``regexp_full_match``), a ``row_number()`` without an
order ordered by its partition, ``DESCRIBE`` answered with DuckDB's type names; and the
session runs with ANSI mode off and UTC time, so a division by zero is null and a
timestamp is the wall-clock value, as in DuckDB.

A source Spark reads itself (a Parquet folder, a Spark catalog: ``features.sources.spark_reads``)
is read and checked here too (``features/validate.py`` on this connection, ``open_spark``); only
the raw accounts and subscriptions go to the driver's DuckDB (``to_driver``, Arrow), where the
profile-column discovery runs. Another source (CSV, a DuckDB file, a database) is loaded and
checked in DuckDB and its checked ``clean_*`` tables are handed to Spark as Parquet files in
the staging folder (``start_spark``). The snapshots are written as Parquet partitioned by as-of date
(``<folder>/as_of=YYYY-MM-DD/part-*.parquet``) and registered in the store with the same
metadata and catalogue as a DuckDB build, so ``train``, ``score`` and the reports read them
as before.

Over 400 lines: the seam (``SparkConnection``), the rewrites sqlglot does not make and the
session, staging and hand-over around it are one idea, DuckDB's SQL run on Spark.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from core.errors import ChurnwatchError

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Quiet log4j2 configuration: Spark's own log goes to a file, nothing to the terminal.
_LOG4J = """status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
"""

_CREATE_AS = re.compile(r"^\s*CREATE\s+OR\s+REPLACE\s+TEMP\s+(TABLE|VIEW)\s+(\w+)\s+AS\s+(.*)$", re.S | re.I)
_CREATE_COLS = re.compile(r"^\s*CREATE\s+OR\s+REPLACE\s+TEMP\s+TABLE\s+(\w+)\s*\((.*)\)\s*$", re.S | re.I)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\s+VALUES\s*\(", re.I)
_DESCRIBE = re.compile(r"^\s*DESCRIBE\s+(\w+)\s*$", re.I)


_TYPES = {"DATE": "date", "INTEGER": "int", "BIGINT": "bigint", "VARCHAR": "string", "DOUBLE": "double",
          "BOOLEAN": "boolean", "TIMESTAMP": "timestamp_ntz"}


class SparkError(ChurnwatchError):
    """A Spark job failed: one line naming what is wrong (no Java stack trace)."""


def spark_log_file() -> Path:
    return Path(tempfile.gettempdir()) / f"churnwatch-spark-{os.getpid()}.log"


def spark_session(master: str | None = None, shuffle_partitions: int | None = None,
                  app_name: str = "churnwatch", conf: dict[str, str] | None = None) -> SparkSession:
    """The process's SparkSession (created once; ``master`` default ``local[*]``).

    Spark's log goes to ``spark_log_file()``; the terminal shows churnwatch's messages only.
    A master given by ``spark-submit`` (``spark.master`` already set) is kept when ``master``
    is None. ``conf``: more settings for a new session (e.g. ``spark.sql.warehouse.dir``).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - the spark extra is part of the test install
        raise ChurnwatchError("--engine spark needs PySpark: pip install 'churnwatch[spark]' "
                              "(and a Java 17 runtime)") from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    conf_file = Path(tempfile.gettempdir()) / f"churnwatch-log4j2-{os.getpid()}.properties"
    conf_file.write_text(_LOG4J.format(log=spark_log_file()))
    # read once by the JVM as it starts; removed when this process ends (Spark's log itself stays)
    atexit.register(conf_file.unlink, missing_ok=True)
    java_opts = f"-Dlog4j2.configurationFile=file:{conf_file}"
    builder = SparkSession.builder.appName(app_name)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started us: its master stands
    if master or not under_submit:
        builder = builder.master(master or "local[*]")
    cores = os.cpu_count() or 2
    # Python workers run this interpreter (its packages) unless the cluster says otherwise
    python = os.environ.get("PYSPARK_PYTHON") or sys.executable
    os.environ.setdefault("PYSPARK_PYTHON", python)  # what local workers start with (the conf alone is not read)
    builder = (builder
               .config("spark.pyspark.python", python)
               .config("spark.pyspark.driver.python", sys.executable)
               .config("spark.driver.extraJavaOptions", java_opts)
               .config("spark.executor.extraJavaOptions", java_opts)
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.ansi.enabled", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
               .config("spark.sql.shuffle.partitions", str(shuffle_partitions or max(4, 2 * cores))))
    if not under_submit and (master or "local").startswith("local"):
        # in local mode the driver is the executor too: Spark's 1 GB default heap is too small for the
        # shuffles and joins of the event stages (an OutOfMemoryError there hangs the job instead of failing it)
        builder = builder.config("spark.driver.memory", os.environ.get("CHURNWATCH_SPARK_DRIVER_MEMORY", "3g"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # no Java, a bad master URL: one line, Spark's log named
        raise SparkError(f"could not start Spark ({_first_line(exc)}); Spark's log: {spark_log_file()}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Traceback", "at ", "JVM stacktrace")):
            return line[:500]
    return type(exc).__name__


def spark_error(exc: BaseException, doing: str) -> SparkError:
    """A Spark/Py4J exception as one line: the analysis message (a missing table or column
    is named by Spark's error class), without the Java stack trace."""
    text = _first_line(exc)
    if "Python worker" in text:  # the worker's own exception, its last line, says what went wrong
        raised = [ln.strip() for ln in str(exc).splitlines() if re.match(r"^\s*[\w.]*(Error|Exception)\b.*: ", ln)]
        text = raised[-1] if raised else text
    text = re.sub(r"\s*SQLSTATE: \w+", "", text)
    text = re.sub(r"\s*;\s*line \d+ pos \d+.*$", "", text)
    return SparkError(f"{doing} failed in Spark: {text} (Spark's log: {spark_log_file()})")


def _try_to_timestamp(value: exp.Expression, formats: exp.Expression) -> exp.Expression:
    """Spark's ``try_to_timestamp`` for DuckDB's ``try_strptime(value, format or [formats])`` (the
    first format that reads), the ``strptime`` codes turned into Spark's pattern by sqlglot."""
    fmts = [f.this for f in (formats.expressions if isinstance(formats, exp.Array) else [formats])]
    columns = ", ".join(sorted({c.name for c in value.find_all(exp.Column)})) or "?"
    two_digits = [f for f in fmts if "%y" in f]
    if two_digits:  # DuckDB's %y is 1969-2068, Spark's yy 2000-2099: the same text, another year
        raise SparkError(f"own date column {columns}: the date format {two_digits[0]!r} (date_format or "
                         "date_formats in churnwatch.yaml) has a two-digit year (%y), which Spark reads as "
                         "2000-2099 and DuckDB as 1969-2068: build it with --engine duckdb, or write the dates "
                         "with four-digit years (%Y)")
    weekdays = [f for f in fmts if "%a" in f or "%A" in f]
    if weekdays:  # Spark 3+ refuses a weekday in a pattern it parses (EEE): said here, not as Spark's error
        raise SparkError(f"own date column {columns}: the date format {weekdays[0]!r} (date_format or "
                         "date_formats in churnwatch.yaml) has a weekday name (%a, %A), which Spark cannot "
                         "parse: build it with --engine duckdb, or leave the weekday out of the format")
    spark = Dialect.get_or_raise("spark").generator()
    reads = [exp.Anonymous(this="try_to_timestamp", expressions=[
        value.copy(), sqlglot.parse_one(spark.format_time(exp.StrToTime(this=value, format=f)), read="spark")])
        for f in (formats.expressions if isinstance(formats, exp.Array) else [formats])]
    return reads[0] if len(reads) == 1 else exp.Coalesce(this=reads[0], expressions=reads[1:])


#: DuckDB functions Spark has under another name, the same value: the first character's code, a
#: suffix test, the length in bytes (``features.validate.trimmed``)
_SAME_IN_SPARK = {"ord": "ascii", "suffix": "endswith", "strlen": "octet_length"}


def to_spark_sql(duckdb_sql: str) -> str:
    """DuckDB SQL -> Spark SQL (sqlglot), with ``hash`` -> ``xxhash64`` (64-bit keys) and
    ``try_strptime`` -> ``try_to_timestamp`` (a company's own dates in a declared format,
    ``features.profile``: every value was read by DuckDB first, so a value Spark would read
    otherwise stops the build before Spark sees it)."""
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "hash":
            return exp.Anonymous(this="xxhash64", expressions=node.expressions)
        if isinstance(node, exp.Anonymous) and node.name.lower() in _SAME_IN_SPARK:
            return exp.Anonymous(this=_SAME_IN_SPARK[node.name.lower()], expressions=node.expressions)
        if isinstance(node, exp.Anonymous) and node.name.lower() == "isfinite":
            (x,) = node.expressions
            return exp.paren(exp.and_(exp.not_(exp.IsNan(this=x.copy())),
                                      exp.NEQ(this=exp.Abs(this=x.copy()),
                                              expression=exp.cast(exp.Literal.string("Infinity"), "DOUBLE"))))
        if isinstance(node, exp.Anonymous) and node.name.lower() == "timezone":
            zone, value = node.expressions
            if zone.name.upper() != "UTC":
                raise SparkError(f"timezone({zone.sql()}, ...): only UTC is read on Spark")
            return value  # an instant in a UTC session: cast to TIMESTAMP_NTZ, its UTC wall-clock time
        if isinstance(node, exp.Window) and isinstance(node.this, exp.RowNumber) and not node.args.get("order") \
                and node.args.get("partition_by"):
            # DuckDB numbers a partition's rows in any order (the contract's duplicates: rows alike in
            # every partition column); Spark wants an order: the partition's columns, all alike there
            node.set("order", exp.Order(expressions=[exp.Ordered(this=e.copy(), nulls_first=True)
                                                     for e in node.args["partition_by"]]))
            return node
        if isinstance(node, exp.RegexpFullMatch):  # Spark's RLIKE finds; anchored, it matches the whole
            pattern = node.expression
            if not isinstance(pattern, exp.Literal):
                raise SparkError(f"regexp_full_match with a computed pattern: {node.sql()}")
            return exp.RegexpLike(this=node.this, expression=exp.Literal.string(f"^(?:{pattern.this})$"))
        if isinstance(node, exp.Anonymous) and node.name.lower() == "try_strptime":
            return _try_to_timestamp(*node.expressions)
        if isinstance(node, exp.Literal) and node.is_number and "." in node.this:
            # Spark keeps 6.0 a DECIMAL and rounds x / 6.0 to 6 digits; DuckDB divides as DOUBLE
            return exp.cast(node.copy(), "DOUBLE")
        return node

    return tree.transform(swap).sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)


class _Cursor:
    def __init__(self, rows: list[tuple], names: list[str]) -> None:
        self._rows = rows
        self.description = [(n,) for n in names]

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple]:
        return list(self._rows)


@dataclass
class SparkConnection:
    """The part of a DuckDB connection the feature SQL uses, on a SparkSession."""

    spark: SparkSession
    #: which engine runs the SQL (``features.validate`` asks: DuckDB keys the events as it checks them)
    engine = "spark"
    #: the temp views made (dropped by ``close``)
    views: set[str] = field(default_factory=set)
    schemas: dict[str, str] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)
    #: where the checked tables are handed over as Parquet (``table_from_duckdb``); removed by ``close``
    staging: Path | None = None
    _stage: int = 0

    def register(self, name: str, frame: DataFrame, persist: bool = True) -> None:
        """``frame`` as temp view ``name``; ``persist``: computed now and written as Parquet in
        ``staging/stages/`` (read back as a plain file scan), else a view computed where it is read.

        Written files, not ``DataFrame.persist``: a cached frame keeps its whole lineage, and every
        later statement re-analysed the plans of all the stages before it (the wide feature stages
        cost seconds of JVM time each on a few MB); a file scan cuts the lineage, and its size
        gives the optimiser real statistics (small tables are broadcast). Without a staging folder
        (a bare ``SparkConnection``) the frame is locally checkpointed instead.
        """
        if persist:
            try:
                if self.staging is None:
                    frame = frame.localCheckpoint(eager=True)
                else:
                    self._stage += 1  # a new file each time: a stage may read the view it replaces
                    file = self.staging / "stages" / f"{name}-{self._stage}"
                    frame.write.mode("overwrite").parquet(str(file))
                    frame = self.spark.read.parquet(str(file))
            except Exception as exc:
                raise spark_error(exc, f"building {name}") from exc
            log.info("spark: %s ready", name)
        frame.createOrReplaceTempView(name)
        self.views.add(name)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> _Cursor:
        if params:
            raise NotImplementedError("SparkConnection.execute takes no parameters")
        m = _CREATE_AS.match(sql)
        if m:
            kind, name, select = m.groups()
            spark_sql = to_spark_sql(select)
            self.statements.append(spark_sql)
            self.register(name, self._sql(spark_sql, name), persist=kind.upper() == "TABLE")
            return _Cursor([], [])
        m = _DESCRIBE.match(sql)
        if m:  # (column, its type as DuckDB names it): what the contract checks read a source column as
            fields = self._table(m.group(1)).schema.fields
            return _Cursor([(f.name, duckdb_type(f.dataType.simpleString())) for f in fields],
                           ["column_name", "column_type"])
        m = _CREATE_COLS.match(sql)
        if m:  # an empty table with typed columns, filled by executemany
            name = m.group(1)
            self.schemas[name] = ", ".join(f"{c.split()[0]} {_TYPES[c.split()[1].upper()]}"
                                           for c in m.group(2).split(","))
            self.register(name, self.spark.createDataFrame([], self.schemas[name]), persist=False)
            return _Cursor([], [])
        spark_sql = to_spark_sql(sql)
        frame = self._sql(spark_sql, "a query")
        try:
            rows = [tuple(r) for r in frame.collect()]
        except Exception as exc:
            raise spark_error(exc, "a query") from exc
        return _Cursor(rows, frame.columns)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        m = _INSERT.match(sql)
        if not m or m.group(1) not in self.schemas:
            raise NotImplementedError(f"SparkConnection.executemany: {sql[:60]}")
        name = m.group(1)
        frame = self.spark.table(name).unionByName(self.spark.createDataFrame(list(rows), self.schemas[name]))
        self.register(name, frame)

    def _table(self, name: str) -> DataFrame:
        try:
            return self.spark.table(name)
        except Exception as exc:
            raise spark_error(exc, f"reading {name}") from exc

    def to_driver(self, con: duckdb.DuckDBPyConnection, name: str, rows: bool = True) -> None:
        """Copy Spark's ``name`` into DuckDB table ``name`` through Arrow: for a small table the
        driver reads itself (the raw accounts and subscriptions, ``features.profile``); ``rows=False``
        copies its columns only (the other tables' columns nothing reads are listed, as a DuckDB
        build lists them)."""
        try:
            frame = self._table(name)
            arrow = (frame if rows else frame.limit(0)).toArrow()
        except SparkError:
            raise
        except Exception as exc:
            raise spark_error(exc, f"reading {name}") from exc
        con.register("_incoming", naive_utc(arrow))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _incoming")
        con.unregister("_incoming")

    def _sql(self, spark_sql: str, what: str) -> DataFrame:
        try:
            return self.spark.sql(spark_sql)
        except Exception as exc:  # AnalysisException: a missing table or column, named
            raise spark_error(exc, f"building {what}") from exc

    def table_from_duckdb(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        """Copy DuckDB's ``name`` (table or view) into a Spark temp view of the same name.

        The rows go through a Parquet file in ``staging`` (written by DuckDB, read by Spark),
        not through the driver's heap: a ``createDataFrame`` of millions of events would hold
        them all in the JVM driver (1 GB by default) and fail there with an OutOfMemoryError.
        """
        if self.staging is None:
            raise ChurnwatchError("SparkConnection.table_from_duckdb needs a staging folder")
        self.staging.mkdir(parents=True, exist_ok=True)
        file = self.staging / f"{name}.parquet"
        target = str(file).replace("'", "''")
        # Spark reads no nanosecond timestamps (a raw export's TIMESTAMP_NS): microseconds, as Arrow gave
        described = [('"' + str(row[0]).replace('"', '""') + '"', str(row[1]).upper())
                     for row in con.execute(f"DESCRIBE {name}").fetchall()]
        columns = ", ".join(f"CAST({c} AS TIMESTAMP) AS {c}" if t.startswith("TIMESTAMP_NS") else c
                            for c, t in described)
        con.execute(f"COPY (SELECT {columns} FROM {name}) TO '{target}' (FORMAT PARQUET, ROW_GROUP_SIZE 1000000)")
        try:
            frame = self.spark.read.parquet(str(file))
        except Exception as exc:
            raise spark_error(exc, f"reading {file}") from exc
        self.register(name, frame, persist=False)  # already a file: read where used

    def close(self) -> None:
        for name in self.views:
            self.spark.catalog.dropTempView(name)
        self.views.clear()
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)


def default_parquet_folder(store: Path) -> Path:
    """Where a Spark build writes its snapshots: ``<store>.snapshots/`` beside the store."""
    return store.with_name(store.stem + ".snapshots")


#: Spark type -> DuckDB type of the snapshot columns read back into the store.
_DUCKDB_TYPES = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE",
                 "boolean": "BOOLEAN", "date": "DATE", "float": "FLOAT", "smallint": "SMALLINT",
                 "tinyint": "TINYINT"}


def naive_utc(arrow):
    """Spark's TIMESTAMP (an instant, shown in the session's UTC) as a wall-clock timestamp in
    UTC, as a Parquet file's would be (DuckDB would otherwise cast it in the local time zone)."""
    import pyarrow as pa

    fields = [pa.field(f.name, pa.timestamp(f.type.unit), f.nullable)
              if pa.types.is_timestamp(f.type) and f.type.tz else f for f in arrow.schema]
    return arrow.cast(pa.schema(fields)) if fields != list(arrow.schema) else arrow


def duckdb_type(spark_type: str) -> str:
    """A Spark column type as DuckDB names it (``DESCRIBE``): Spark's ``timestamp`` is an instant
    (DuckDB's ``TIMESTAMP WITH TIME ZONE``, read as UTC), ``timestamp_ntz`` a wall-clock time."""
    if spark_type == "timestamp":
        return "TIMESTAMP WITH TIME ZONE"
    if spark_type == "timestamp_ntz":
        return "TIMESTAMP"
    if spark_type.startswith("decimal"):
        return spark_type.upper()
    return {"binary": "BLOB", "void": '"NULL"', **_DUCKDB_TYPES}.get(spark_type, spark_type.upper())


def open_spark(master: str | None = None, staging: Path | None = None) -> SparkConnection:
    """A ``SparkConnection`` on the process's session with an empty ``staging`` folder (default: a
    new temporary one) for the stages it writes. On a cluster, ``staging`` must be a folder the
    executors can read (beside the store, like the snapshots Spark writes)."""
    if staging is None:
        staging = Path(tempfile.mkdtemp(prefix="churnwatch-spark-staging-"))
    else:  # what a killed run left there
        shutil.rmtree(staging, ignore_errors=True)
    return SparkConnection(spark_session(master), staging=staging)


def start_spark(con: duckdb.DuckDBPyConnection, loaded: list[str], master: str | None = None,
                staging: Path | None = None) -> SparkConnection:
    """A ``SparkConnection`` holding the checked ``clean_*`` tables of ``con`` (and the raw
    accounts and dated subscriptions, whose own columns the profile features read), handed over as
    Parquet files in ``staging`` (default: a new temporary folder). On a cluster, ``staging``
    must be a folder the executors can read (beside the store, like the snapshots Spark writes)."""
    from features.contract import DATED_SUBSCRIPTIONS, TABLES

    run = open_spark(master, staging)
    for name in TABLES:
        run.table_from_duckdb(con, f"clean_{name}")
    if "accounts" in loaded:
        run.table_from_duckdb(con, "raw_accounts")
    if "subscriptions" in loaded:
        run.table_from_duckdb(con, DATED_SUBSCRIPTIONS)
    return run


def write_parquet_snapshots(run: SparkConnection, con: duckdb.DuckDBPyConnection, folder: Path,
                            replace_all: bool, rows_table: str = "snapshot_rows") -> None:
    """Write Spark's ``rows_table`` as Parquet partitioned by as-of date into ``folder`` and
    leave the rows written as DuckDB view ``rows_table`` in ``con`` (for the store).

    ``replace_all`` replaces the whole folder (the full schedule); otherwise only the
    as-of dates built are replaced (Spark's dynamic partition overwrite).
    """
    frame = run.spark.table(rows_table)
    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    dates = sorted({r[0] for r in frame.select("as_of").distinct().collect()})
    try:
        (frame.write.mode("overwrite").option("partitionOverwriteMode", "static" if replace_all else "dynamic")
         .partitionBy("as_of").parquet(str(folder)))
    except Exception as exc:
        raise spark_error(exc, f"writing the snapshots to {folder}") from exc
    select = ", ".join(f"CAST({c} AS {_DUCKDB_TYPES.get(t, t.upper())}) AS {c}" for c, t in types.items())
    if not dates:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {rows_table} AS SELECT {select} FROM "
                    f"(SELECT {', '.join(f'NULL AS {c}' for c in types)}) LIMIT 0")
        return
    days = ", ".join(f"DATE '{d.isoformat()}'" for d in dates)
    glob = str(folder / "as_of=*" / "*.parquet").replace("'", "''")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {rows_table} AS SELECT {select} FROM "
                f"read_parquet('{glob}', hive_partitioning = true, hive_types = {{'as_of': DATE}}) "
                f"WHERE as_of IN ({days}) ORDER BY as_of, account_id")
