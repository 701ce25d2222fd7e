"""Unix-epoch timestamps in date and timestamp columns (product-analytics and billing exports).

Mixpanel, Amplitude and Segment exports stamp events in epoch milliseconds, Stripe's API in
epoch seconds. A date or timestamp column whose values are all whole numbers of 12-13 digits
(milliseconds) or 9-10 digits (seconds, a fraction allowed) is read as a moment in UTC; the
decision is made once per column on a sample of its values (at least 90% of them of one unit),
so a column of ISO strings keeps the plain cast (and its speed). A value of an epoch column
that is not such a number stays unparsed, so the contract check still names it.
"""

from __future__ import annotations

import duckdb

from features.rules import q

_MS = "[0-9]{12,13}([.]0*)?"  # a fraction of zeros: milliseconds read from a float column (pandas int64 with NaN)
_SECONDS = "[0-9]{9,10}([.][0-9]*)?"
_PATTERN = {"ms": _MS, "s": _SECONDS}
EPOCH_PATTERNS = _PATTERN  # the text of a value of each unit (regular expressions, whole value)
_SCALE = {"ms": 1_000, "s": 1_000_000}
_TEMPORAL_SOURCES = ("DATE", "TIMESTAMP", "TIME")


def epoch_unit(con: duckdb.DuckDBPyConnection, relation: str, column: str, source_type: str,
               sample: int = 1000) -> str | None:
    """``"ms"``, ``"s"`` or None: the epoch unit of ``relation.column``, judged on up to ``sample``
    non-null values (at least 90% of them must look like one unit; the others are then reported
    by the contract check as values that are not of the column's type)."""
    if source_type.upper().startswith(_TEMPORAL_SOURCES):
        return None
    text = f"TRIM(CAST({q(column)} AS VARCHAR))"
    n, ms, s = con.execute(
        f"SELECT count(*), count_if(regexp_full_match({text}, '{_MS}')), "
        f"count_if(regexp_full_match({text}, '{_SECONDS}')) "
        f"FROM (SELECT {q(column)} FROM {relation} WHERE {q(column)} IS NOT NULL LIMIT {sample})").fetchone()
    if n and ms >= 0.9 * n:
        return "ms"
    if n and s >= 0.9 * n:
        return "s"
    return None


def _matches(text_sql: str, pattern: str) -> str:
    """SQL: the whole of ``text_sql`` matches ``pattern``. ``regexp_matches`` anchored rather than
    ``regexp_full_match``, which Spark lacks: sqlglot writes this one as Spark's ``RLIKE``, so the
    profile stages that read raw dates run on ``--engine spark`` too."""
    return f"regexp_matches({text_sql}, '^(?:{pattern})$')"


def epoch_cast(column_sql: str, unit: str, duckdb_type: str) -> str:
    """SQL: the epoch value ``column_sql`` as ``duckdb_type`` (TIMESTAMP or DATE, UTC); NULL where
    the value is not a number of the unit's digits (a seconds value in a milliseconds column, a
    sentinel such as 99999999999999999: left for the contract check to name, never a cast error
    or a date in 1970)."""
    text = f"TRIM(CAST({column_sql} AS VARCHAR))"
    micros = f"CAST(TRY_CAST({text} AS DOUBLE) * {_SCALE[unit]} AS BIGINT)"
    return (f"CASE WHEN {_matches(text, _PATTERN[unit])} "
            f"THEN CAST(make_timestamp({micros}) AS {duckdb_type}) END")


def any_moment(column_sql: str) -> str:
    """SQL: ``column_sql`` as a TIMESTAMP whether it holds an ISO date/time or epoch seconds or
    milliseconds (decided per value; for a raw column read outside the typed views, such as a
    subscription's start date in the profile features); NULL where it is none of them."""
    text = f"TRIM(CAST({column_sql} AS VARCHAR))"
    return (f"CASE WHEN {_matches(text, _MS)} THEN {epoch_cast(column_sql, 'ms', 'TIMESTAMP')} "
            f"WHEN {_matches(text, _SECONDS)} THEN {epoch_cast(column_sql, 's', 'TIMESTAMP')} "
            f"ELSE TRY_CAST({column_sql} AS TIMESTAMP) END")
