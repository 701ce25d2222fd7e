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

_MS = "[0-9]{12,13}"
_SECONDS = "[0-9]{9,10}([.][0-9]*)?"
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


def epoch_cast(column_sql: str, unit: str, duckdb_type: str) -> str:
    """SQL: the epoch value ``column_sql`` as ``duckdb_type`` (TIMESTAMP or DATE, UTC); NULL where
    the value is not a number."""
    micros = f"CAST(TRY_CAST(TRIM(CAST({column_sql} AS VARCHAR)) AS DOUBLE) * {_SCALE[unit]} AS BIGINT)"
    return f"CAST(make_timestamp({micros}) AS {duckdb_type})"
