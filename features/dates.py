"""Dates as spreadsheets and warehouses write them: a declared format, and YYYYMMDD numbers.

A date written ``3/5/2024`` is the 3rd of May or the 5th of March; churnwatch never guesses which.
``churnwatch.yaml`` says it, as a ``strptime`` format (DuckDB's, the same codes as Python's):
``date_format`` for every date and timestamp column of the source, ``date_formats`` per column
(``{table: {column: format}}``, which wins): a contract column by its contract name, or a company's
own column of ``accounts`` / ``subscriptions`` by its name in the source (``OWN_DATE_TABLES``; read
with the same ``DateFormat`` by ``features.profile``, which decides which own columns are dates and
checks their values). How a column with a format is read:

* an ISO value (``2024-03-05``, ``2024-03-05 14:22``) is read as ISO in any case: it is never
  ambiguous, and a source whose tables come from several tools mixes both (a format that would
  read an ISO date as another day is refused);
* any other value is read with the format, or with the format followed by a time of day
  (``%H:%M``, ``%H:%M:%S``, ``%I:%M %p``, ``%I:%M:%S %p``) unless the format has one;
* a value that reads neither way stops ``features`` with the column, the format and the value.

The source-wide ``date_format`` leaves alone a column typed as a date by its source (Parquet, a
database) and one in Unix epoch numbers (``features.epoch``); a per-column format leaves alone
only a column its source types (it has no text to read; a zoned one's text would lose its zone).

Integer dates (``20240305``, as warehouse exports write them): a column the format ``%Y%m%d``
is declared for reads them; without a format, a column whose values are all 8-digit numbers (the
first ``SAMPLE`` of them, then every one) is read as YYYYMMDD when every value is a valid date
from 1900 to 2099 (``YEARS``), and stops ``features`` naming a value that is not. A float column
(``20240305.0``, pandas' way with a missing value) reads the same.

The reading is SQL run by DuckDB when the contract's typed views are made
(``features/casting.py``), so every path that reads the source, the feature build, the few
accounts ``explain`` and ``report`` read (``features/subset.py``) and the Spark engine (handed
the checked tables), reads one date the same way. An own column's reading is part of the profile
SQL, which Spark runs too (``features.spark.to_spark_sql`` writes ``try_strptime`` as Spark's
``try_to_timestamp``), after DuckDB has read every value of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from core.errors import ConfigError, DataContractError
from core.settings import Settings
from features.contract import TABLES, Table
from features.sql import lit, q

#: The format of integer dates such as 20240305.
YYYYMMDD = "%Y%m%d"
#: Years an undeclared YYYYMMDD column's values must fall in: [1900, 2100).
YEARS = (1900, 2100)
#: A value read with a declared format must give a year from this on (a 2-digit year is no date).
MIN_YEAR = 1000
#: Tables whose own (non-contract) columns become features (``features.profile``): ``date_formats``
#: may name those columns, by their names in the source.
OWN_DATE_TABLES = ("accounts", "subscriptions")
#: Values looked at before every value of a column is read as YYYYMMDD.
SAMPLE = 1000
#: Times of day tried after a format without one (a spreadsheet's ``3/5/2024 14:22``).
TIMES = (" %H:%M:%S", " %H:%M", " %I:%M:%S %p", " %I:%M %p")
_TEMPORAL_SOURCES = ("DATE", "TIMESTAMP", "TIME")
_EIGHT_DIGITS = "[0-9]{8}([.]0*)?"
#: Dates a format is tried on when it is checked: the day above 12 tells day-first from month-first.
_PROBE = "2024-11-23"
_ISO_PROBES = ("2024-03-05", "2024-11-23", "2024-03-05 14:22:05")


def formats_of(fmt: str) -> list[str]:
    """The formats tried on one value (each must match the whole value): ``fmt`` alone, then with
    each time of day (``TIMES``); ``fmt`` alone when it has a time already (``%H``, ``%I``)."""
    if "%H" in fmt or "%I" in fmt or "%-H" in fmt or "%-I" in fmt:
        return [fmt]
    return [fmt] + [fmt + t for t in TIMES]


def _text(column_sql: str, fmt: str) -> str:
    """SQL: the value as trimmed text; for ``%Y%m%d`` without a float's ``.0`` (``20240305.0``;
    the regular expression only where there is a point: it costs more than the date's parse)."""
    text = f"TRIM(CAST({column_sql} AS VARCHAR))"
    if fmt != YYYYMMDD:
        return text
    return f"CASE WHEN contains({text}, '.') THEN regexp_replace({text}, '[.]0*$', '') ELSE {text} END"


#: A time of day with a UTC offset or ``Z`` at the end of an ISO text (``2024-03-05T14:22:05.123+01:00``);
#: no backslashes, so the pattern reads the same in DuckDB and in Spark SQL.
OFFSET_TIME = "[ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)? *(Z|z|[+-][0-9]{2}(:?[0-9]{2})?) *$"


def has_offset(src: str) -> str:
    """SQL: true where the text ``src`` ends in a time with a UTC offset or ``Z`` (``OFFSET_TIME``)."""
    return f"regexp_matches({src}, '{OFFSET_TIME}')"


def utc_time(src: str) -> str:
    """SQL: the text ``src`` with an offset as the instant's wall-clock time in UTC (a TIMESTAMP);
    NULL where it does not read. DuckDB's plain cast would drop the offset."""
    return f"timezone('UTC', TRY_CAST({src} AS TIMESTAMPTZ))"


def offset_text_cast(src: str, target: str) -> str:
    """SQL: ISO text read as ``target``; a time with a UTC offset is the instant, in UTC (the day of
    ``2024-06-30T23:30-05:00`` is July 1), as a Parquet timestamp with a time zone reads; text without
    one is the wall-clock time it says."""
    return (f"CASE WHEN {has_offset(src)} THEN CAST({utc_time(src)} AS {target}) "
            f"ELSE TRY_CAST({src} AS {target}) END")


def date_read(column_sql: str, fmt: str, duckdb_type: str, first: str | None = None) -> str:
    """SQL: ``column_sql`` as ``duckdb_type`` (DATE or TIMESTAMP) with ``fmt`` (and a time of day after
    it, ``formats_of``), else as ISO; NULL where it reads neither way. ``first``: the one of
    ``formats_of(fmt)`` most of the column is written in (``first_format``), tried alone first: a
    format that does not match costs DuckDB about eight times one that does (measured on 2 M values);
    None (no value in the format: an ISO column beside a source-wide format): ISO first."""
    text = _text(column_sql, fmt)
    rest = [f for f in formats_of(fmt) if f != first]
    tries = ([f"try_strptime({text}, {lit(first)})"] if first else []) + (
        [f"try_strptime({text}, [{', '.join(lit(f) for f in rest)}])"] if rest else [])
    # a value matches at most one of the formats (each must match the whole value, and they differ in
    # the time after the date), so the first that reads is the reading, checked once
    read = tries[0] if len(tries) == 1 else f"COALESCE({', '.join(tries)})"
    # DuckDB's %Y takes two digits too ('05/03/24' -> year 24): such a value does not read, so the
    # checks name it; a declared %Y%m%d reads 8 digits only ('2024035' is no date)
    reads = (f"length({text}) = 8 AND " if fmt == YYYYMMDD else "") + f"year({read}) >= {MIN_YEAR}"
    # ISO only as ISO writes it (DuckDB's cast also reads '15/02/24' as the year 15); an offset is applied,
    # the instant in UTC, as without a format (a probe's Chargebee export with day-first dates and an analytics
    # export in ISO with offsets: every event 5-8 hours off, silently)
    iso = offset_text_cast(text, "TIMESTAMP")
    is_iso = f"substr({text}, 5, 1) = '-' AND TRY_CAST({text} AS TIMESTAMP) IS NOT NULL"  # reads an offset too
    # no value in the format (an ISO column beside a source-wide format): ISO first. CASE, not COALESCE:
    # DuckDB evaluates a COALESCE's CASE argument on every value, a CASE's branch only where it is
    # taken (2 M CSV events, load + checks: day-first 10.4 -> 2.6 CPU s, ISO beside a format 11.2 -> 3.1)
    whens = [(reads, read), (is_iso, iso)] if first else [(is_iso, iso), (reads, read)]
    return f"CAST(CASE {' '.join(f'WHEN {c} THEN {v}' for c, v in whens)} END AS {duckdb_type})"


def first_format(con: duckdb.DuckDBPyConnection, relation: str, column: str, fmt: str,
                 sample: int | None = SAMPLE) -> str | None:
    """The one of ``formats_of(fmt)`` that reads most of up to ``sample`` non-null values of
    ``relation.column`` (None: every value) (None when none reads any: ISO values, say)."""
    text = _text(q(column), fmt)
    options = formats_of(fmt)
    limit = "" if sample is None else f" LIMIT {sample}"
    counts = con.execute("SELECT " + ", ".join(f"count(try_strptime({text}, {lit(f)}))" for f in options)
                         + f" FROM (SELECT {q(column)} FROM {relation} WHERE {q(column)} IS NOT NULL"
                         f"{limit})").fetchone()
    best = max(range(len(options)), key=lambda k: (counts[k], -k))
    return options[best] if counts[best] else None


def yyyymmdd_read(column_sql: str, duckdb_type: str) -> str:
    """SQL: an undeclared YYYYMMDD value as ``duckdb_type``; NULL unless it is 8 digits (a float's
    ``.0`` allowed) of a valid date in ``YEARS``."""
    text = _text(column_sql, YYYYMMDD)
    lo, hi = YEARS
    return (f"CASE WHEN length({text}) = 8 AND {text} >= '{lo}0101' AND {text} < '{hi}0101' "
            f"THEN CAST(try_strptime({text}, '{YYYYMMDD}') AS {duckdb_type}) END")


def looks_yyyymmdd(con: duckdb.DuckDBPyConnection, relation: str, column: str, source_type: str,
                   sample: int = SAMPLE) -> bool:
    """Whether up to ``sample`` non-null values of ``relation.column`` are all 8-digit numbers (a
    float's ``.0`` allowed); a column typed as a date or time by its source never is."""
    if source_type.upper().startswith(_TEMPORAL_SOURCES):
        return False
    text = f"TRIM(CAST({q(column)} AS VARCHAR))"
    n, digits = con.execute(
        f"SELECT count(*), count_if(regexp_full_match({text}, '{_EIGHT_DIGITS}')) "
        f"FROM (SELECT {q(column)} FROM {relation} WHERE {q(column)} IS NOT NULL LIMIT {sample})").fetchone()
    return bool(n) and digits == n


def _date_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if c.type in ("date", "timestamp")]


def check_date_formats(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Every configured format reads a whole date (year, month and day) and reads no ISO date as
    another day; ``date_formats`` names date or timestamp columns of contract tables.

    Raises:
        ConfigError: naming the key and what is wrong with it.
    """
    named = [("date_format", settings.date_format)] if settings.date_format else []
    for table, columns in settings.date_formats.items():
        if table not in TABLES:
            raise ConfigError(f"date_formats: {table!r} is not a table of the contract ({', '.join(TABLES)})")
        dated = _date_columns(TABLES[table])
        for column, fmt in columns.items():
            # a company's own column of accounts or subscriptions goes by its own name (``features.profile``
            # checks that the source has it); any other name must be a contract date column
            own = table in OWN_DATE_TABLES and column not in TABLES[table].column_names
            if column not in dated and not own:
                raise ConfigError(f"date_formats: {table}.{column} is not a date or timestamp column of the "
                                  f"contract ({table}'s: {', '.join(dated) or 'none'}; a mapped column goes by "
                                  "its contract name" + ("; a company's own column by its own name" if table in
                                                         OWN_DATE_TABLES else "") + ")")
            named.append((f"date_formats.{table}.{column}", fmt))
    for key, fmt in named:
        _check_format(con, key, fmt)


def check_own_date_format_keys(con: duckdb.DuckDBPyConnection, settings: Settings, tables: list[str]) -> None:
    """Every ``date_formats`` entry of a loaded ``accounts`` / ``subscriptions`` (``raw_<table>``, in
    ``tables``) names a contract column or one of the source's own columns not mapped to the contract.

    Raises:
        ConfigError: naming the key and what is wrong with it.
    """
    for table in (t for t in tables if t in OWN_DATE_TABLES):
        own = settings.date_formats.get(table, {})
        if not own:
            continue
        known = {r[0] for r in con.execute(f"DESCRIBE raw_{table}").fetchall()}
        mapping = settings.column_mapping.get(table, {})
        for column in own:
            if column in TABLES[table].column_names:
                continue  # a contract column (check_date_formats)
            if column not in known:
                raise ConfigError(f"date_formats.{table}.{column}: not a column of {table} (a contract column "
                                  "goes by its contract name, a company's own column by its name in the source)")
            if mapping.get(column) in TABLES[table].column_names:
                raise ConfigError(f"date_formats.{table}.{column}: the column is mapped to the contract column "
                                  f"{mapping[column]!r}, so its format goes by that name: date_formats: "
                                  f"{{{table}: {{{mapping[column]}: '{own[column]}'}}}}")


def _check_format(con: duckdb.DuckDBPyConnection, key: str, fmt: str) -> None:
    try:
        shown, back = con.execute(f"SELECT strftime(DATE '{_PROBE}', {lit(fmt)}), "
                                  f"CAST(try_strptime(strftime(DATE '{_PROBE}', {lit(fmt)}), {lit(fmt)}) AS DATE)"
                                  ).fetchone()
        iso = [con.execute(f"SELECT CAST(try_strptime({lit(p)}, {lit(fmt)}) AS TIMESTAMP), "
                           f"CAST({lit(p)} AS TIMESTAMP)").fetchone() for p in _ISO_PROBES]
    except duckdb.Error as exc:
        raise ConfigError(f"{key}: {fmt!r} is not a strptime format ({str(exc).splitlines()[0]}); "
                          "for instance '%d/%m/%Y' (5/3/2024 is 5 March) or '%m/%d/%Y' (3/5/2024 is 5 March)"
                          ) from exc
    if back is None or str(back) != _PROBE:
        raise ConfigError(f"{key}: {fmt!r} does not give a whole date: {_PROBE} written with it is {shown!r}, "
                          "read back " + (str(back) if back else "as nothing") + "; a format needs the year "
                          "(%Y or %y), the month (%m, %b or %B) and the day (%d)")
    for probe, (read, as_iso) in zip(_ISO_PROBES, iso):
        if read is not None and read != as_iso:
            raise ConfigError(f"{key}: {fmt!r} reads the ISO date {probe} as {read:%Y-%m-%d %H:%M}; ISO dates "
                              "are always read as ISO, so a format must not read them another way")


@dataclass(frozen=True)
class DateFormat:
    """How one column's dates are read: ``fmt`` as declared ("" for undeclared YYYYMMDD numbers),
    ``first`` the variant of it tried first (``first_format``)."""

    fmt: str
    first: str | None = None

    def read(self, column_sql: str, duckdb_type: str) -> str:
        """SQL: the column as ``duckdb_type``, NULL where a value does not read."""
        if not self.fmt:
            return yyyymmdd_read(column_sql, duckdb_type)
        return date_read(column_sql, self.fmt, duckdb_type, self.first)


def date_formats(con: duckdb.DuckDBPyConnection, table: Table, cols: dict[str, str], types: dict[str, str],
                 epoch: dict[str, str], settings: Settings | None) -> dict[str, DateFormat]:
    """canonical date/timestamp column -> how it is read, unless its source types it as a date or
    time: with its ``date_formats`` entry; else, for a column not in epoch numbers (``epoch``), the
    source's ``date_format``; else ``%Y%m%d`` for a column whose values look like YYYYMMDD
    (``looks_yyyymmdd``). Columns read otherwise are left out."""
    own = settings.date_formats.get(table.name, {}) if settings else {}
    source_wide = settings.date_format if settings else None
    out = {}
    for name, src in cols.items():
        if table.column(name).type not in ("date", "timestamp"):
            continue
        fmt = None
        if types[src].upper().startswith(_TEMPORAL_SOURCES):
            continue  # typed by its source: a format has nothing to read (and text of a zoned one loses its zone)
        if name in own:
            fmt = own[name]
        elif name in epoch:
            continue
        elif source_wide:
            fmt = source_wide
        elif looks_yyyymmdd(con, f"raw_{table.name}", src, types[src]):
            out[name] = DateFormat("")
        if fmt:
            out[name] = DateFormat(fmt, first_format(con, f"raw_{table.name}", src, fmt))
    return out


def check_dates(con: duckdb.DuckDBPyConnection, table: Table, cols: dict[str, str], formats: dict[str, DateFormat],
                reads: dict[str, str], settings: Settings | None) -> None:
    """Every value of the columns read with a format (``formats``; ``reads``: their SQL) reads.

    Raises:
        DataContractError: naming the column, the format (and where it is set) and a value that
            does not read.
    """
    if not formats:
        return
    own = settings.date_formats.get(table.name, {}) if settings else {}
    bad = {name: f"{q(cols[name])} IS NOT NULL AND {reads[name]} IS NULL" for name in formats}
    counts = con.execute("SELECT " + ", ".join(f"count_if({cond})" for cond in bad.values())
                         + f" FROM raw_{table.name}").fetchone()
    for name, n in zip(formats, counts):
        if not n:
            continue
        cur = con.execute(f"SELECT * FROM raw_{table.name} WHERE {bad[name]} LIMIT 1")
        row = dict(zip([d[0] for d in cur.description], cur.fetchone()))
        example = str(row[cols[name]])
        where = f"{table.name}.{name}" + (f" (column {cols[name]!r})" if cols[name] != name else "")
        fmt = formats[name].fmt
        if not fmt:
            lo, hi = YEARS
            message = (f"{where}: its values are 8-digit numbers, read as YYYYMMDD dates, but {n:,} of them "
                       f"are not a date from {lo} to {hi - 1} written so, e.g. {example!r}; fix those values, or "
                       f"declare the format (date_formats: {{{table.name}: {{{name}: '{YYYYMMDD}'}}}} in "
                       "churnwatch.yaml) to read a date of any year")
        else:
            message = unread_dates_message(where, n, fmt, format_setting(table.name, name, fmt, name in own), example)
        raise DataContractError(message, table=table.name, column=name, example=row)


def format_setting(table: str, column: str, fmt: str, per_column: bool) -> str:
    """Where a column's format is set, as ``churnwatch.yaml`` writes it."""
    return f"date_formats: {{{table}: {{{column}: '{fmt}'}}}}" if per_column else f"date_format: '{fmt}'"


def unread_dates_message(where: str, n: int, fmt: str, setting: str, example: str) -> str:
    """The error of ``n`` values of column ``where`` that do not read with ``fmt`` (set by ``setting``)."""
    return (f"{where}: {n:,} value(s) match neither the date format {fmt!r} ({setting} in churnwatch.yaml, "
            f"a time of day allowed after it) nor an ISO date, e.g. {example!r}; fix those values or the format")
