"""Numbers given as bands, the way CRMs and billing tools export a company's size.

HubSpot, Chargebee and LinkedIn-sourced enrichment write ``accounts.employees`` as a band:
``1-10``, ``11-50``, ``1,001-5,000``, ``11 - 50``, ``5000+``, ``10,001+``. A column the contract
marks ``Column.bands`` reads, besides the values that cast as they are:

* a band ``a-b`` (``-`` or an en dash ``–``; ``a <= b``) as its midpoint, rounded half up
  (``11-50`` is 31, ``1-10`` is 6);
* an open band ``a+`` as its lower bound ``a`` (``5000+`` is 5000): the one value it is sure to reach;
* a plain number with thousands separators (``1,200``);

with spaces anywhere and ``,`` between thousands (only where it groups three digits). Any other
text (``unknown``, ``self-employed``) does not read (null): the contract checks name it as a value
that is not of the column's type, with its row, as before. The SQL has no backslashes, so it reads
the same in DuckDB and in Spark SQL (``features/spark.py``).
"""

from __future__ import annotations

from features.sql import lit

#: A whole number, ``,`` between thousands allowed (``10,001``).
_NUMBER = "[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+"
#: A band ``a-b`` and an open band ``a+`` (on the value with its spaces dropped).
_RANGE = f"^({_NUMBER})[-–]({_NUMBER})$"
_OPEN = f"^({_NUMBER})[+]$"
_PLAIN = f"^({_NUMBER})$"
#: What is dropped from a value before it is read: spaces, no-break spaces.
_SPACES = "[ \u00a0\u202f]"


def _bare(expr: str) -> str:
    """SQL: the value as text with its spaces (and no-break spaces) dropped."""
    return f"regexp_replace(CAST({expr} AS VARCHAR), {lit(_SPACES)}, '', 'g')"


def _part(bare: str, pattern: str, group: int) -> str:
    return f"TRY_CAST(replace(regexp_extract({bare}, {lit(pattern)}, {group}), ',', '') AS BIGINT)"


def band_value(expr: str) -> str:
    """SQL: a band's reading (``11-50``: 31, ``5000+``: 5000) as BIGINT; null for any other value,
    a plain number included."""
    bare = _bare(expr)
    low, high = _part(bare, _RANGE, 1), _part(bare, _RANGE, 2)
    return (f"CASE WHEN regexp_matches({bare}, {lit(_RANGE)}) AND {low} <= {high} "
            f"THEN CAST(round((CAST({low} AS DOUBLE) + {high}) / 2) AS BIGINT) "
            f"WHEN regexp_matches({bare}, {lit(_OPEN)}) THEN {_part(bare, _OPEN, 1)} END")


def band_cast(expr: str, target: str = "BIGINT") -> str:
    """SQL: a text value of a column with bands as ``target``: as it casts, else as a number with
    thousands separators, else as a band (``band_value``); null when none reads."""
    bare = _bare(expr)
    plain = f"CASE WHEN regexp_matches({bare}, {lit(_PLAIN)}) THEN {_part(bare, _PLAIN, 1)} END"
    return f"CAST(COALESCE(TRY_CAST({expr} AS {target}), {plain}, {band_value(expr)}) AS {target})"


#: How many of a column's distinct bands a report shows with their readings (the most frequent first).
SHOWN_BANDS = 8


def band_readings_sql(expr: str, relation: str) -> str:
    """SQL: ``(band, its reading, values)`` of every distinct band of ``expr`` in ``relation`` (a value
    that casts as it is is no band), the most frequent first, then by the band's text."""
    value = band_value(expr)
    return (f"SELECT TRIM(CAST({expr} AS VARCHAR)) AS band, {value} AS read_as, count(*) AS n FROM {relation} "
            f"WHERE {value} IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC, 1")
