"""Unix-epoch timestamps in date and timestamp columns (product-analytics and billing exports).

Mixpanel, Amplitude and Segment exports stamp events in epoch milliseconds, Stripe's API in
epoch seconds. A date or timestamp column whose values are all whole numbers of 12-13 digits
(milliseconds) or 9-10 digits (seconds, a fraction allowed) is read as a moment in UTC; the
decision is made once per column on a sample of its values (at least 90% of them of one unit),
so a column of ISO strings keeps the plain cast (and its speed). A value of an epoch column
that is not such a number stays unparsed, so the contract check still names it.

A company's own numeric column (``features.profile``) is read as an epoch date only when its
name says date (``date_name``) and every value is an epoch time of a date in 1973-2099
(``epoch_values``, ``epoch_number_cast``). Dates before 1970 are negative epoch values
(-315619200 is 1960-01-01, as some tools export a birth date): a column whose name says date and
that holds a negative value is read as such when every value is a whole number of seconds of a
date from 1900 to 2099, or of milliseconds when a value has 12 or more digits (a date in seconds
never has: that would be after the year 5000) and most values lie more than about 3 years from 1970
(``_FAR_SECONDS``: an NPS of -40 or a time zone of -5 named ``nps_at_signup``, ``time_zone`` is no
date); 0 and -1 there are an export's "no date" and read as missing (``signed_epoch_values``,
``EPOCH_SIGNED_SECONDS``, ``UNKNOWN``).
"""

from __future__ import annotations

import re
from typing import Literal

import duckdb

from features.sql import q

_MS = "[0-9]{12,13}([.]0*)?"  # a fraction of zeros: milliseconds read from a float column (pandas int64 with NaN)
_SECONDS = "[0-9]{9,10}([.][0-9]*)?"
_PATTERN = {"ms": _MS, "s": _SECONDS}
_SCALE = {"ms": 1_000, "s": 1_000_000}
_TEMPORAL_SOURCES = ("DATE", "TIMESTAMP", "TIME")
#: Name words of a date or time (``created_at``, ``signup_ts``, ``birth_date``, ``customerSince``) ...
_DATE_WORDS = frozenset({"date", "dt", "time", "timestamp", "ts", "epoch", "at", "on", "since", "dob", "birth",
                         "birthday", "birthdate", "born", "founded", "created", "joined", "signup", "registered",
                         # Stripe's and Paddle's bare moments: trial_start, trial_end, period_end, expires
                         "start", "end", "started", "ended", "expires", "expiry", "expiration", "updated",
                         "modified", "paid", "due", "canceled", "cancelled", "renewed"})
#: ... and words of a duration, count or amount, which a date's name does not have (``session_seconds``,
#: ``time_on_site_ms``, ``days_since_signup``); ``epoch`` in a name wins over them
_NOT_DATE_WORDS = frozenset({"duration", "elapsed", "seconds", "secs", "sec", "minutes", "mins", "hours", "hrs",
                             "days", "weeks", "months", "years", "count", "num", "number", "total", "amount", "size",
                             "length", "age", "spent"})
#: Epoch values read as dates lie in [1973-03-03, 2100-01-01): 9 or more digits of seconds, below
#: 2100 (a 10-digit number can reach 2286), so an amount or a phone number does not pass
EPOCH_DATE_SECONDS = (100_000_000, 4_102_444_800)
#: Epoch values of a column with dates before 1970 (negative values) lie in [1900-01-01, 2100-01-01)
EPOCH_SIGNED_SECONDS = (-2_208_988_800, 4_102_444_800)
#: A value of this size or more (12 digits) is milliseconds: in seconds it would be a date after 5000
_MS_FROM = 100_000_000_000
_WHOLE = "-?[0-9]+([.]0*)?"
#: A column with negative values is a date only when most of its values lie at least this far from
#: 1970 (1e8 s, about 3 years: before 1966-10-31 or after 1973-03-03), as the unsigned rule's do:
#: small signed numbers (-40, -5, 1200) are scores, offsets and amounts, whatever the name says
_FAR_SECONDS = 100_000_000
#: Values of a column with dates before 1970 that mean "no date" (read as missing), as SQL
UNKNOWN = "(0, -1)"


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


def date_name(column: str) -> bool:
    """Whether a column's name says it holds a date or a moment: a date word (``_DATE_WORDS``) and no
    word of a duration, count or amount, or the word ``epoch``; words split at ``_``, ``-``, spaces,
    dots and camelCase."""
    words = set(re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column).lower().replace(".", "_").replace("-", "_")
                .replace(" ", "_").split("_")) - {""}
    return "epoch" in words or bool(words & _DATE_WORDS and not words & _NOT_DATE_WORDS)


def epoch_values(con: duckdb.DuckDBPyConnection, relation: str,
                 column: str) -> tuple[Literal["s", "ms"] | None, int, int]:
    """(unit, values of that unit, non-null values) of ``relation.column``: the unit (epoch seconds or
    milliseconds) that most of its values are written in within [1973-03-03, 2100-01-01), None when no
    value is; every value is read, not a sample."""
    text = f"TRIM(CAST({q(column)} AS VARCHAR))"
    number = f"TRY_CAST({text} AS DOUBLE)"
    lo, hi = EPOCH_DATE_SECONDS
    n, s, ms = con.execute(f"""
        SELECT count(*), count_if(regexp_full_match({text}, '{_SECONDS}') AND {number} >= {lo}
                                  AND {number} < {hi}),
               count_if(regexp_full_match({text}, '{_MS}') AND {number} >= {lo * 1000}
                        AND {number} < {hi * 1000})
        FROM {relation} WHERE NULLIF({text}, '') IS NOT NULL""").fetchone()
    if not s and not ms:
        return None, 0, n
    return ("ms", ms, n) if ms > s else ("s", s, n)


def signed_epoch_values(con: duckdb.DuckDBPyConnection, relation: str,
                        column: str) -> tuple[Literal["s", "ms"] | None, int, int, int]:
    """(unit, values of that unit, non-null values, values 0 or -1) of ``relation.column`` when it holds
    a negative number below -1 (a date before 1970), else (None, 0, non-null values, 0): the unit is
    milliseconds when a value has 12 or more digits (``_MS_FROM``), else seconds; a value counts when
    it is a whole number of that unit within ``EPOCH_SIGNED_SECONDS`` (1900-2099) other than 0 and -1
    (``UNKNOWN``: an export's "no date", never the first second of 1970); every value is read."""
    text = f"TRIM(CAST({q(column)} AS VARCHAR))"
    number = f"TRY_CAST({text} AS DOUBLE)"
    lo, hi = EPOCH_SIGNED_SECONDS
    whole = f"regexp_full_match({text}, '{_WHOLE}') AND {number} NOT IN {UNKNOWN}"
    n, negative, big, s, ms, unknown, far_s, far_ms = con.execute(f"""
        SELECT count(*), count_if({number} < -1), count_if(abs({number}) >= {_MS_FROM}),
               count_if({whole} AND {number} >= {lo} AND {number} < {hi}),
               count_if({whole} AND {number} >= {lo * 1000} AND {number} < {hi * 1000}),
               count_if({number} IN {UNKNOWN}),
               count_if(abs({number}) >= {_FAR_SECONDS}), count_if(abs({number}) >= {_FAR_SECONDS * 1000})
        FROM {relation} WHERE NULLIF({text}, '') IS NOT NULL""").fetchone()
    if not negative:
        return None, 0, n, 0
    unit, hits, far = ("ms", ms, far_ms) if big else ("s", s, far_s)
    if 2 * far < n - unknown:
        # most values within ~3 years of 1970 (an NPS of -40, a time zone of -5, a credit of -250 whose
        # name has 'at' or 'since'): small numbers, not dates
        return None, 0, n, 0
    return unit, hits, n, unknown


def epoch_number_cast(text_sql: str, unit: str, signed: bool = False) -> str:
    """SQL: the epoch ``unit`` value ``text_sql`` as a TIMESTAMP (UTC), NULL outside the dates
    ``epoch_date`` accepts (``signed``: a column with dates before 1970, ``signed_epoch_values``).
    Read as a number, not matched as text: Spark writes a DOUBLE as ``1.6198272E9``, DuckDB as
    ``1619827200.0``."""
    seconds = f"(TRY_CAST({text_sql} AS DOUBLE) / {1000.0 if unit == 'ms' else 1.0})"
    lo, hi = EPOCH_SIGNED_SECONDS if signed else EPOCH_DATE_SECONDS
    unknown = f" AND TRY_CAST({text_sql} AS DOUBLE) NOT IN {UNKNOWN}" if signed else ""
    return (f"CASE WHEN {seconds} >= {lo} AND {seconds} < {hi}{unknown} "
            f"THEN CAST(make_timestamp(CAST({seconds} * 1000000 AS BIGINT)) AS TIMESTAMP) END")
