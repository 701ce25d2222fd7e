"""Numbers written as text the way spreadsheets and billing dashboards write them.

A CSV column read as text whose values do not all cast as plain numbers may still be numbers:
``$1,234.50`` (a currency sign and thousands separators), ``49,00`` or ``1.234,50`` (a decimal
comma, as a spreadsheet in a German or French locale saves it, usually with ``;`` between fields),
``1 234,50`` or ``1'234.50`` (a space or an apostrophe between thousands). Such a column is read by
one decimal separator decided for the whole column (never per value: ``1,234`` must not be 1234 on
one row and 1.234 on the next):

* a decimal comma when more values show one (``49,00``, ``1.234,5``: a comma followed by other
  than three digits, or dots between thousands before it) than show a decimal point (``49.00``,
  ``1,234.5``); else a decimal point, so ``1,234`` alone reads as one thousand two hundred
  thirty-four;
* currency signs (``$ € £ ¥``), spaces, no-break spaces and apostrophes are dropped; the
  thousands separator (the other of ``,`` and ``.``) only where it groups three digits;
* a value of another shape does not read (null); the contract checks then name it as a value that
  is not a number, with its row.

Used for the contract's numeric columns (``features/validate.py``), for a company's own
columns (``features/profile.py``) and for a flat table's columns (``training/own_table.py``, through
``read_number_text``); a column whose values all cast as they are is read as before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pandas as pd

from features.sql import lit

#: Currency signs written with a number (the full-width ￥ of Chinese input methods too), and the Chinese money
#: words (``1658.31元``, ``人民币 120``): dropped here, and kept for the reasons' text by
#: ``training.own_table.money_of``.
CURRENCY_SIGNS = "$€£¥\uffe5"
CURRENCY_WORDS = ("元", "人民币")
#: What is dropped from a number written as text: currency signs and words, spaces, no-break spaces, apostrophes.
_DROP = f"[\\s\u00a0\u202f{CURRENCY_SIGNS}']|" + "|".join(CURRENCY_WORDS)
_SIGN = "[-+]?"
#: Whole values that read with a decimal point / comma (thousands grouped by the other separator).
_POINT = _SIGN + r"(\d{1,3}(,\d{3})+|\d+)(\.\d+)?"
_COMMA = _SIGN + r"(\d{1,3}(\.\d{3})+|\d+)(,\d+)?"
#: Values that show which one the column uses (not ``1,234`` or ``1.234``: either could be meant).
_SHOWS_POINT = _SIGN + r"(\d{1,3}(,\d{3})+\.\d+|\d+\.(\d{1,2}|\d{4,})|\d{4,}\.\d+)"
_SHOWS_COMMA = _SIGN + r"(\d{1,3}(\.\d{3})+,\d+|\d+,(\d{1,2}|\d{4,})|\d{4,},\d+)"


def _whole(pattern: str) -> str:
    """The pattern matching a whole value (``regexp_matches`` transpiles to Spark's ``RLIKE``, which,
    like it, matches anywhere in the value)."""
    return f"^({pattern})$"


def _bare(expr: str) -> str:
    return f"regexp_replace(TRIM(CAST({expr} AS VARCHAR)), {lit(_DROP)}, '', 'g')"


def text_number(expr: str, comma: bool, target: str = "DOUBLE") -> str:
    """SQL: ``expr`` (text) read as a number of type ``target``, with a decimal comma or point;
    null when it is not a number of that shape."""
    bare = _bare(expr)
    if comma:
        shape, plain = _COMMA, f"replace(replace({bare}, '.', ''), ',', '.')"
    else:
        shape, plain = _POINT, f"replace({bare}, ',', '')"
    return f"CASE WHEN regexp_matches({bare}, {lit(_whole(shape))}) THEN TRY_CAST({plain} AS {target}) END"


def number_cast(expr: str, comma: bool, target: str = "DOUBLE") -> str:
    """SQL: a text column's value as a number (``text_number``); with a decimal point, a value
    that casts as it is (``1e3``, ``NaN``: the value rules judge it) keeps that cast."""
    shaped = text_number(expr, comma, target)
    return shaped if comma else f"COALESCE(TRY_CAST({expr} AS {target}), {shaped})"


def decimal_comma(con: duckdb.DuckDBPyConnection, relation: str, column: str) -> bool:
    """Whether ``relation.column``'s values show a decimal comma more often than a decimal point."""
    bare = _bare(f'"{column.replace(chr(34), chr(34) * 2)}"')
    comma, point = con.execute(
        f"SELECT count_if(regexp_matches(v, {lit(_whole(_SHOWS_COMMA))})), "
        f"count_if(regexp_matches(v, {lit(_whole(_SHOWS_POINT))})) FROM (SELECT {bare} AS v FROM {relation})"
    ).fetchone()
    return comma > point


def shown_separators(values: pd.Series) -> tuple[int, int]:
    """(values showing a decimal comma, values showing a decimal point) of text ``values`` (``decimal_comma``'s
    evidence, in pandas): ``1.000`` or ``2,500`` alone show neither."""
    text = values.dropna().astype(str).str.strip().str.replace(_DROP, "", regex=True)
    return (int(text.str.fullmatch(_SHOWS_COMMA).sum()), int(text.str.fullmatch(_SHOWS_POINT).sum()))


def text_number_mode(con: duckdb.DuckDBPyConnection, relation: str, column: str) -> bool | None:
    """For a text column that is not all plain numbers: True (decimal comma) or False (decimal
    point) when every non-empty value reads as a number that way, else None."""
    comma = decimal_comma(con, relation, column)
    ref = f'"{column.replace(chr(34), chr(34) * 2)}"'
    bad = con.execute(
        f"SELECT count(*) FROM {relation} WHERE NULLIF(TRIM(CAST({ref} AS VARCHAR)), '') IS NOT NULL "
        f"AND ({text_number(ref, comma)}) IS NULL").fetchone()[0]
    return None if bad else comma


_SCRATCH = threading.local()


@contextmanager
def scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    """See ``_scratch``; a block inside another one of the same thread gets a connection of its own (the names
    ``given`` and ``t`` are the outer block's)."""
    if getattr(_SCRATCH, "busy", False):
        with duckdb.connect(":memory:") as con:
            con.execute("SET threads TO 1")
            yield con
        return
    _SCRATCH.busy = True
    try:
        with _scratch() as con:
            yield con
    finally:
        _SCRATCH.busy = False


@contextmanager
def _scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    """This thread's in-memory DuckDB (one thread: a column of text is small and the machine is shared) for
    reading a column of text as ``given`` / view ``t``, both dropped after the block. Opened once per thread
    and process: opening one took 30 to 45 ms, a hundred times the reading of a ``/score`` request's few
    values (a flat table's model reads its numbers and dates sent as text)."""
    held = getattr(_SCRATCH, "held", None)
    if held is None or held[0] != os.getpid():  # a forked child opens its own
        con = duckdb.connect(":memory:")
        con.execute("SET threads TO 1")
        held = _SCRATCH.held = (os.getpid(), con)
    con = held[1]
    try:
        yield con
    finally:
        con.execute("DROP VIEW IF EXISTS t")
        con.unregister("given")


def read_number_text(values: pd.Series, comma: bool | None = None) -> tuple[pd.Series, bool]:
    """Text values (None or NaN where blank) read as numbers by this module's rules, in pandas.

    Args:
        values: one column's values as text.
        comma: the column's decimal separator, a comma (True) or a point (False); None: decided from
            the values (``decimal_comma``), as the contract's columns are.

    Returns:
        ``(numbers, comma)``: float64 with the index of ``values`` (NaN where a value is blank or of
        another shape), and the separator used.
    """
    text = values.astype("object").where(values.notna(), None)
    frame = pd.DataFrame({"v": text.map(lambda x: None if x is None else str(x)).to_numpy(dtype=object)})
    with scratch() as con:
        con.register("given", frame)
        con.execute("CREATE TEMP VIEW t AS SELECT CAST(v AS VARCHAR) AS v FROM given")
        if comma is None:
            comma = decimal_comma(con, "t", "v")
        got = con.execute(f"SELECT {number_cast('v', comma)} AS n FROM t").df()["n"]
    return pd.Series(got.to_numpy(dtype="float64"), index=values.index), comma


def read_number_columns(columns: dict[str, pd.Series], commas: dict[str, bool]) -> dict[str, pd.Series]:
    """Several text columns read as numbers as ``read_number_text`` reads one, each with its known decimal
    separator (``commas``: True a comma), in one query: a ``/score`` request of a flat table's model reads a
    few values of each of its number columns, and a query per column cost more than the scoring."""
    frame = pd.DataFrame({f"c{i}": s.astype("object").where(s.notna(), None).map(
        lambda x: None if x is None else str(x)).to_numpy(dtype=object) for i, s in enumerate(columns.values())})
    with scratch() as con:
        con.register("given", frame)
        got = con.execute("SELECT " + ", ".join(f"{number_cast(f'CAST(c{i} AS VARCHAR)', commas[name])} AS n{i}"
                                                for i, name in enumerate(columns)) + " FROM given").df()
    return {name: pd.Series(got[f"n{i}"].to_numpy(dtype="float64"), index=series.index)
            for i, (name, series) in enumerate(columns.items())}
