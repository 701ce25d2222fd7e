"""How a source column is read as its contract type, when a plain ``CAST`` would misread it.

The cast errors themselves are ``features/validate.py``'s; this module says, per column, what SQL
reads it (``source_casts``), which values count as unreadable (``cast_check``) and what is read (the
hint of the error, ``read_as``):

* dates in a format ``churnwatch.yaml`` declares (``3/5/2024``: ``date_format``), and integer dates
  (``20240305``) in a column of them (``features.dates``);
* Unix-epoch seconds or milliseconds in a date or timestamp column: read as UTC (``features.epoch``);
* numbers written as text by a spreadsheet or a dashboard (``$1,234.50``, ``49,00``: ``features.numbers``);
* bands, as CRMs export a company's size (``11-50``, ``5000+``: ``features.bands``), in a column the
  contract marks ``Column.bands``; ``band_readings`` counts them for the report;
* a column's words (``Column.words``: Zendesk's ``good`` / ``bad`` satisfaction);
* instants (``TIMESTAMP WITH TIME ZONE``, as a warehouse's Parquet export has them): read as UTC,
  not in the reading machine's zone (DuckDB's plain cast uses the session's zone, the machine's).
"""

from __future__ import annotations

from dataclasses import replace

import duckdb

from core.settings import Settings
from features.bands import SHOWN_BANDS, band_cast, band_readings_sql
from features.contract import DUCKDB_TYPES, Column, Table
from features.dates import DateFormat, check_dates, date_formats, offset_text_cast
from features.epoch import epoch_cast, epoch_unit
from features.numbers import number_cast, text_number_mode
from features.sql import lit, q


def epoch_units(con: duckdb.DuckDBPyConnection, table: Table, cols: dict[str, str],
                types: dict[str, str]) -> dict[str, str]:
    """canonical date/timestamp column -> ``"ms"``/``"s"`` where the source stamps it in Unix epoch
    (``types``: source column -> its DuckDB type)."""
    units = {name: epoch_unit(con, f"raw_{table.name}", src, types[src]) for name, src in cols.items()
             if table.column(name).type in ("timestamp", "date")}
    return {name: unit for name, unit in units.items() if unit}


def text_numbers(con: duckdb.DuckDBPyConnection, table: Table, cols: dict[str, str],
                 types: dict[str, str]) -> dict[str, bool]:
    """canonical numeric column -> True (decimal comma) / False (point) where the source writes it
    as text that does not all cast as it is but does as numbers written by a spreadsheet or a
    dashboard (``$1,234.50``, ``49,00``: ``features/numbers.py``); a column with a value that reads
    neither way is left out (its cast error names that value)."""
    numeric = {name: src for name, src in cols.items()
               if table.column(name).type in ("double", "bigint") and types[src] == "VARCHAR"}
    if not numeric:
        return {}
    target = {name: DUCKDB_TYPES[table.column(name).type] for name in numeric}
    failing = con.execute("SELECT " + ", ".join(
        f"count_if({q(src)} IS NOT NULL AND TRY_CAST({q(src)} AS {target[name]}) IS NULL)"
        for name, src in numeric.items()) + f" FROM raw_{table.name}").fetchone()
    out = {}
    for (name, src), bad in zip(numeric.items(), failing):
        mode = text_number_mode(con, f"raw_{table.name}", src) if bad else None
        if mode is not None:
            out[name] = mode
    return out


def source_casts(table: Table, cols: dict[str, str], source_types: dict[str, str], epoch: dict[str, str],
                 numbers: dict[str, bool], dates: dict[str, DateFormat] | None = None) -> dict[str, str]:
    """canonical column -> SQL reading its source column as the contract's type (a value that does
    not read: null), for the columns not read by a plain cast: dates in a declared format or as
    YYYYMMDD numbers (``dates``: column -> ``DateFormat``), Unix-epoch stamps
    (UTC), numbers written as text (``$1,234.50``), a type's words (Zendesk's ``good``), and a
    timestamp with a time zone (Parquet from a warehouse or Segment): read as UTC, not in the reading
    machine's zone; bands (``11-50``, ``5000+``) in a column with ``Column.bands`` (a ``BandRead``)."""
    out = {}
    dates = dates or {}
    for name, src in cols.items():
        col = table.column(name)
        target = DUCKDB_TYPES[col.type]
        if name in dates:
            out[name] = dates[name].read(q(src), target)
        elif name in epoch:
            out[name] = epoch_cast(q(src), epoch[name], target)
        elif name in numbers:
            out[name] = number_cast(q(src), numbers[name], target)
        elif col.bands and source_types[src] == "VARCHAR":
            out[name] = BandRead(band_cast(q(src), target))
        elif col.words:  # only where a value is text
            word = f"lower(TRIM(CAST({q(src)} AS VARCHAR)))"
            whens = " ".join(f"WHEN {lit(w)} THEN {'NULL' if v is None else v}" for w, v in col.words)
            out[name] = f"CASE {word} {whens} ELSE TRY_CAST({q(src)} AS {target}) END"
        elif zoned(source_types[src]) and col.type in ("timestamp", "date"):
            out[name] = f"CAST(timezone('UTC', {q(src)}) AS {target})"
        elif source_types[src] == "VARCHAR" and col.type in ("timestamp", "date"):
            out[name] = offset_text_cast(q(src), target)
    return out


def no_value_words(table: Table, name: str, src: str) -> str:
    """SQL: true where ``src`` holds one of the column's words that mean no value (not an error)."""
    empty = [w for w, v in table.column(name).words if v is None]
    return (f"lower(TRIM(CAST({q(src)} AS VARCHAR))) IN ({', '.join(map(lit, empty))})" if empty
            else "false")


def read_as(col: Column, source_type: str) -> str:
    """What the contract reads in a column besides plain values (the hint of a cast error)."""
    if col.words:
        return f" (read: numbers, or one of {', '.join(w for w, _ in col.words)})"
    if col.bands and source_type == "VARCHAR":
        return (" (read: whole numbers, with thousands separators if need be (1,200), or bands as CRMs export "
                "them: 11-50 as its midpoint, 31, and 5000+ as its lower bound, 5000)")
    if col.type in ("date", "timestamp") and source_type == "VARCHAR":
        return (" (read: ISO dates and times such as 2024-03-05, 2024-03-05 14:22 or 2024-03-05T14:22:05.123+01:00,"
                " Unix epoch seconds or milliseconds, or YYYYMMDD numbers; a spreadsheet's 3/5/2024 or 05.03.2024 "
                "is read only in a declared format: date_format: '%d/%m/%Y' (day first) or '%m/%d/%Y' (month "
                "first) in churnwatch.yaml, or save the column as ISO dates)")
    if col.type in ("date", "timestamp") and source_type.upper().startswith(_NUMERIC_TYPES):
        return (" (read from numbers: YYYYMMDD dates such as 20240305, 8 digits, or Unix epoch seconds (9-10 "
                "digits) or milliseconds (12-13 digits); another integer date needs its format declared: "
                "date_formats in churnwatch.yaml)")
    if col.type in ("double", "bigint") and source_type == "VARCHAR":
        return (" (read: numbers, with a currency sign and thousands separators if need be, and one decimal "
                "separator, '.' or ',', for the whole column)")
    return ""


_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_NUMERIC_TYPES = (*_INTEGER_TYPES, "FLOAT", "DOUBLE", "HUGEINT", "DECIMAL")


def zoned(source_type: str) -> bool:
    """An instant type: ``TIMESTAMP WITH TIME ZONE``, spelled ``TIMESTAMPTZ_NS`` for nanoseconds."""
    t = source_type.upper()
    return "TIME ZONE" in t or t.startswith("TIMESTAMPTZ")


def always_casts(source_type: str, target: str) -> bool:
    """True when every value of ``source_type`` casts to the contract type (no scan needed)."""
    src = source_type.upper()
    if target == "string":
        return True
    if target == "double":
        return src.startswith(_NUMERIC_TYPES)
    if target == "bigint":
        return src in _INTEGER_TYPES and src != "UBIGINT"
    if target in ("timestamp", "date"):
        return src == "DATE" or (src.startswith("TIMESTAMP") and not zoned(src))
    if target == "boolean":
        return src == "BOOLEAN"
    return False


class BandRead(str):
    """The SQL of a column's reading that reads bands (``features.bands.band_cast``): the report
    counts the values read from bands (``band_readings``)."""


def band_readings(con: duckdb.DuckDBPyConnection, table: Table, cols: dict[str, str],
                  casts: dict[str, str]) -> dict[str, dict]:
    """canonical column -> ``{"values": n, "distinct": k, "bands": {band: its reading}}`` for each column
    of ``raw_<table>`` read with bands (``BandRead``) that has some: the values read from bands, how many
    distinct bands, and the most frequent ``SHOWN_BANDS`` of them, as the contract checks report them."""
    out = {}
    for name, sql in casts.items():
        if not isinstance(sql, BandRead):
            continue
        found = con.execute(band_readings_sql(q(cols[name]), f"raw_{table.name}")).fetchall()
        if found:
            out[name] = {"values": sum(int(n) for _, _, n in found), "distinct": len(found),
                         "bands": {band: int(value) for band, value, _ in found[:SHOWN_BANDS]}}
    return out


class CheckedRead(str):
    """The SQL of a column's reading whose every value ``column_casts`` has checked already (a date
    format's, ``features.dates.check_dates``): ``cast_check`` does not scan it again."""


def cast_check(table: Table, name: str, src: str, source_types: dict[str, str], casts: dict[str, str]) -> str | None:
    """SQL: true where the source column ``src`` holds a value that does not read as contract column
    ``name`` (None when every value of its type reads, or was checked already: no scan needed)."""
    if isinstance(casts.get(name), CheckedRead):
        return None
    col = table.column(name)
    if name not in casts and always_casts(source_types[src], col.type):
        return None
    read = casts.get(name, f"TRY_CAST({q(src)} AS {DUCKDB_TYPES[col.type]})")
    return f"{q(src)} IS NOT NULL AND NOT {no_value_words(table, name, src)} AND {read} IS NULL"


def column_casts(con: duckdb.DuckDBPyConnection, table: Table, cols: dict[str, str],
                 settings: Settings | None = None,
                 instants: tuple[str, ...] = ()) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(source column -> its DuckDB type, canonical column -> ``source_casts``'s SQL, date column of
    ``instants`` -> its SQL read as a TIMESTAMP, the time of day kept) of ``raw_<table>``;
    ``settings``: the date formats (``date_format``, ``date_formats``).

    The formats themselves are checked once per run (``features.dates.check_date_formats``, by
    ``validate_tables`` and ``load_clean_subset``).

    Raises:
        DataContractError: a value of a column with a date format (declared, or YYYYMMDD) that does
            not read as one, naming the column, the format and the value.
    """
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE raw_{table.name}").fetchall()}
    epoch = epoch_units(con, table, cols, types)
    dates = date_formats(con, table, cols, types, epoch, settings)
    epoch = {n: u for n, u in epoch.items() if n not in dates}
    numbers = text_numbers(con, table, cols, types)
    casts = source_casts(table, cols, types, epoch, numbers, dates)
    check_dates(con, table, cols, dates, casts, settings)
    timed = {n: cols[n] for n in instants if n in cols}
    as_time = Table(table.name, tuple(replace(c, type="timestamp") if c.name in timed else c for c in table.columns))
    at = source_casts(as_time, timed, types, epoch, numbers, dates)
    at = {n: at.get(n, f"TRY_CAST({q(src)} AS TIMESTAMP)") for n, src in timed.items()}
    return types, {name: CheckedRead(sql) if name in dates else sql for name, sql in casts.items()}, at
