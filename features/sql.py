"""Small SQL-building helpers: quoted identifiers, literals and membership tests (sqlglot does the
literals' escaping)."""

from __future__ import annotations

from sqlglot import exp


def q(identifier: str) -> str:
    """Quote a SQL identifier (a column named ``Cancellation Date`` or ``say "hi"``)."""
    return '"' + identifier.replace('"', '""') + '"'


def lit(value: str) -> str:
    """A SQL string literal (sqlglot does the escaping)."""
    return exp.Literal.string(value).sql()


def is_in(column: str, values: list[str] | tuple[str, ...]) -> str:
    """SQL: ``column IN (...)``; FALSE for an empty list (``IN (NULL)`` would be NULL)."""
    return f"{column} IN ({', '.join(lit(v) for v in values)})" if values else "FALSE"


def not_in(column: str, values: list[str] | tuple[str, ...]) -> str:
    return f"{column} NOT IN ({', '.join(lit(v) for v in values)})" if values else "TRUE"


def engine_of(con) -> str:
    """Which engine a connection runs its SQL on: ``"duckdb"``, or ``"spark"`` for a
    ``features.spark.SparkConnection`` (the one seam between the two)."""
    return getattr(con, "engine", "duckdb")
