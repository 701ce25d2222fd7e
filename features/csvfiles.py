"""Reading a contract table from a CSV file with explicit options, and its errors in our words.

DuckDB's CSV sniffer guesses the dialect from a sample; one ragged row can make it guess a
one-column file (the header then reads as a single column named ``account_id,user_id,...``).
So the header is parsed here (``csv`` module, UTF-8 with or without a BOM), its delimiter is
the one of ``, ; TAB |`` it holds most often, and DuckDB reads every column as text with the
dialect fixed and ``strict_mode`` on. A row with more or fewer fields than the header, or a
file that is not UTF-8, is a ``DataContractError`` naming the file, its line (1 = the header)
and, for an encoding error, the column: never DuckDB's 30 lines of parser settings.

Missing values: spreadsheets and BI tools write an empty cell as ``N/A``, ``#N/A``, ``null`` or
``-`` as often as leaving it empty; each of ``MISSING`` (the whole field, case as listed) reads as
null, in every column, as an empty field does. ``NA`` is not one of them: it is a region code (North
America, Namibia) as often as a missing value.

Encoding choice: a file that is not UTF-8 is refused (not read as latin-1 with a warning).
Exports in Chinese are often GBK; read as latin-1 they would become silent mojibake in CSM,
industry and notes values, which end up in reports and alerts. The message says how to fix it.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb

from core.errors import DataContractError
from features.sql import lit

DELIMITERS = (",", ";", "\t", "|")
#: Fields read as null (missing), besides the empty one: spreadsheet and BI-tool spellings of "no value".
MISSING = ("N/A", "n/a", "#N/A", "null", "NULL", "Null", "-")
_LINE = re.compile(r"CSV Error on Line: (\d+)")
#: How much of a bad line a message quotes.
QUOTE_CHARS = 200


def _first_line(file: Path) -> bytes:
    with file.open("rb") as fh:
        return fh.readline()


def delimiter_of(header: str) -> str:
    """A CSV file's field separator: the one of ``DELIMITERS`` its header line holds most often."""
    return max(DELIMITERS, key=header.count)


def read_header(file: Path, table: str) -> tuple[list[str], str]:
    """The header's column names and the file's delimiter.

    Raises:
        DataContractError: the file is empty, its header is not UTF-8, or a column name is
            empty or repeated.
    """
    raw = _first_line(file)
    try:
        line = raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataContractError(
            f"{file}: line 1 (the header) is not UTF-8 text ({_quote(raw)}); save the file as UTF-8",
            table=table) from exc
    if not line.strip():
        raise DataContractError(f"{file}: the file is empty (no header line)", table=table)
    delimiter = delimiter_of(line)
    names = [n.strip() for n in next(csv.reader([line], delimiter=delimiter))]
    blank = [i + 1 for i, n in enumerate(names) if not n]
    if blank:
        hint = ("; pandas writes its row index so: save with `to_csv(..., index=False)`"
                if blank == [1] and len(names) > 1 else "")
        raise DataContractError(f"{file}: header column {blank[0]} has no name (header: {line[:QUOTE_CHARS]!r})"
                                + hint, table=table)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataContractError(f"{file}: column {repeated[0]!r} appears twice in the header", table=table,
                                column=repeated[0])
    return names, delimiter


def load_csv(con: duckdb.DuckDBPyConnection, table: str, file: Path) -> None:
    """``raw_<table>``: every column of ``file`` as text (casting and its errors are ours).

    Raises:
        DataContractError: a bad header, a ragged row or a non-UTF-8 byte, naming the line.
    """
    names, delimiter = read_header(file, table)
    columns = "{" + ", ".join(f"{lit(n)}: 'VARCHAR'" for n in names) + "}"
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE raw_{table} AS SELECT * FROM read_csv(?, header = true, "
            f"auto_detect = false, columns = {columns}, delim = {lit(delimiter)}, quote = '\"', "
            "escape = '\"', strict_mode = true, null_padding = false, encoding = 'utf-8', "
            f"nullstr = [{', '.join(lit(m) for m in ('', *MISSING))}])", [str(file)])
    except duckdb.Error as exc:
        raise csv_error(exc, file, table, names, delimiter) from exc


def csv_error(exc: duckdb.Error, file: Path, table: str, names: list[str], delimiter: str) -> DataContractError:
    """A DuckDB CSV error as one message naming the file, the line and what is wrong in it."""
    text = str(exc)
    found = _LINE.search(text)
    line_no = int(found.group(1)) if found else None
    if "unicode" in text.lower() or "utf-8" in text.lower():
        return _encoding_error(file, table, names, delimiter, line_no)
    if line_no is None:
        first = text.splitlines()[0] if text else type(exc).__name__
        return DataContractError(f"{file}: not a readable CSV file ({first})", table=table)
    line = _read_line(file, line_no).decode("utf-8", errors="replace").rstrip("\r\n")
    reason = _engine_reason(text)
    fields = next(csv.reader([line], delimiter=delimiter), [])
    if reason.startswith("Expected Number of Columns") and len(fields) != len(names):
        return DataContractError(
            f"{file}: line {line_no} has {len(fields)} fields where the header has {len(names)} "
            f"({', '.join(names)})", table=table, example={"line": line_no, "text": line[:QUOTE_CHARS]})
    return DataContractError(f"{file}: line {line_no} cannot be read as CSV ({reason})", table=table,
                             example={"line": line_no, "text": line[:QUOTE_CHARS]})


def _engine_reason(text: str) -> str:
    """DuckDB's one-line reason: the last non-empty line before its "Possible fixes"."""
    lines = text.splitlines()
    end = next((i for i, ln in enumerate(lines) if ln.startswith("Possible")), len(lines))
    return next((ln.strip() for ln in reversed(lines[1:end]) if ln.strip()), "a malformed row")


def _read_line(file: Path, line_no: int) -> bytes:
    with file.open("rb") as fh:
        for i, raw in enumerate(fh, start=1):
            if i == line_no:
                return raw
    return b""


def _quote(raw: bytes) -> str:
    return repr(raw[:QUOTE_CHARS].rstrip(b"\r\n"))[1:]


def first_non_utf8_line(file: Path) -> tuple[int, bytes] | None:
    """The first line (1-based) of ``file`` that is not valid UTF-8, and its bytes."""
    with file.open("rb") as fh:
        for i, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return i, raw
    return None


def _encoding_error(file: Path, table: str, names: list[str], delimiter: str,
                    line_no: int | None) -> DataContractError:
    bad = first_non_utf8_line(file)
    if bad is None:  # DuckDB saw something we cannot find again: say what it said
        where = f"line {line_no}" if line_no else "a line"
        return DataContractError(f"{file}: {where} is not UTF-8 text; save the file as UTF-8", table=table)
    line_no, raw = bad
    fields = raw.rstrip(b"\r\n").split(delimiter.encode())
    index = next((i for i, f in enumerate(fields) if not _is_utf8(f)), None)
    column = names[index] if index is not None and index < len(names) else None
    where = f"line {line_no}" + (f", column {column}" if column else "")
    shown = fields[index] if index is not None else raw.rstrip(b"\r\n")
    return DataContractError(
        f"{file}: {where} is not UTF-8 text; the file's encoding is not UTF-8 (latin-1 or GBK?): "
        "save it as UTF-8", table=table, column=column,
        example={"line": line_no, "column": column, "value": shown.decode("utf-8", errors="replace")})


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
