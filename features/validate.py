"""Contract checks: rename, type-check and clean the raw tables; set bad rows aside.

Two outcomes for bad input, never a silent drop (DESIGN §1):

* **errors** (``DataContractError``, naming table, column and an example row): a required
  table or column is missing; a value does not parse as the column's type (a wrong
  file or a wrong column mapping, almost always); every row of a required table is set
  aside. (Empty required tables, a table in two formats and unreadable files are refused
  when loading, in ``features/sources.py`` and ``features/csvfiles.py``; how a value is read
  when a plain cast would misread it, epoch stamps, ``$1,234.50``, Zendesk's ``good``, instants,
  a company size's band ``11-50``, is ``features/casting.py``'s.)
* **values read from bands** (``accounts.employees``' ``11-50``: its midpoint) are counted per column,
  with each band's reading (``TableReport.readings``), and printed by ``churnwatch features``.
* **rows set aside** (counted by table and reason, with one example row per reason, in
  ``ValidationReport`` and then ``<home>/reports/run-summary.json``), and **values set aside**
  (the row kept, one value made unknown), by the rules of ``features/rules.py``.

Data end: ``data_end`` from the config, else derived, bounded by the subscriptions
(``features.rules.derive_data_end``; a warning when the activity runs far past them).

The same statements run on DuckDB or, for ``--engine spark`` on a source Spark reads itself, on a
``features.spark.SparkConnection`` (sqlglot writes them as Spark SQL). Two differences, both of
cost, not of result: DuckDB keys the events as it checks them (``create_event_keys``, the feature
stages' input) and leaves ``checked_events`` a view; Spark writes ``checked_events`` once
(its stages key ``clean_events`` themselves). The content hash is each engine's own row hash
(``hash`` / ``xxhash64``): ``ValidationReport.engine`` says whose.

Over 400 lines: typing, the checks and the report are one pass over each table and share their
SQL helpers; the event types' spellings are read in the same place (``typed_events``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

import duckdb

from core.errors import DataContractError
from core.settings import Settings
from features.casting import band_readings, cast_check, column_casts, read_as
from features.contract import (
    DATED_START,
    DATED_SUBSCRIPTIONS,
    DUCKDB_TYPES,
    MONEY_UNITS,
    NOT_EMPTY,
    TABLES,
    Table,
    check_column_mapping,
    check_column_units,
    money_columns,
)
from features.dates import check_date_formats
from features.profile import check_no_contract_columns
from features.rules import (
    ACCOUNT_DATED,
    DATA_END_PROBES,
    EXTRAS_TELL_APART,
    ROW_EXTRAS,
    Cut,
    create_account_first,
    derive_data_end,
    q,
    row_reasons,
    value_rules,
)
from features.spec import HIGH_PRIORITY, event_families, family_key, passive_types
from features.sql import engine_of, lit, not_in
from features.timeline import OPEN_ENDED_FROM, day_number, dn, from_day_number

log = logging.getLogger(__name__)


@dataclass
class TableReport:
    rows_in: int = 0
    rows_kept: int = 0
    content_hash: int = 0  # sum of row hashes of the kept rows (order-independent)
    first_at: dt.datetime | dt.date | None = None  # the kept rows' earliest time column value
    set_aside: dict[str, int] = field(default_factory=dict)
    examples: dict[str, dict] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)  # canonical columns the source has
    values_set_aside: dict[str, int] = field(default_factory=dict)  # reason -> values made null
    value_examples: dict[str, dict] = field(default_factory=dict)
    #: column -> {"values": n, "distinct": k, "bands": {band: its reading}}: values read from bands (``11-50``: 31)
    readings: dict[str, dict] = field(default_factory=dict)
    #: events: each type's first day and rows among the kept events (``_bulk_start``), from the report's pass
    types: dict[str, tuple[dt.date, int]] = field(default_factory=dict)


@dataclass
class ValidationReport:
    """What the contract checks kept and set aside, per table."""

    data_end: dt.date
    data_start: dt.date  # the first event's day: the default schedule starts 90 days later
    tables: dict[str, TableReport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: event type -> {spelling: events} over every event row (``features.spec.event_families``)
    event_families: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the engine that ran the checks: its row hash made the tables' ``content_hash``
    engine: str = "duckdb"

    @property
    def event_spellings(self) -> dict[str, dict[str, int]]:
        """The event types the export spells in more than one way (each read as one type)."""
        return {k: v for k, v in self.event_families.items() if len(v) > 1}

    def absent_inputs(self) -> frozenset[str]:
        """Tables the source lacks (``tickets``) and optional columns of present tables it
        lacks (``tickets.priority``): features made from them are unknown (null), not 0."""
        out = {name for name in TABLES if name not in self.tables}
        for name, rep in self.tables.items():
            out |= {f"{name}.{c}" for c in TABLES[name].column_names if c not in rep.columns}
        return frozenset(out)

    @property
    def total_set_aside(self) -> int:
        return sum(sum(t.set_aside.values()) for t in self.tables.values())

    def to_dict(self) -> dict:
        return {
            "data_start": self.data_start.isoformat(),
            "data_end": self.data_end.isoformat(),
            "tables": {
                name: {"rows_in": t.rows_in, "rows_kept": t.rows_kept, "set_aside": t.set_aside,
                       "examples": t.examples, "values_set_aside": t.values_set_aside,
                       "value_examples": t.value_examples, "readings": t.readings}
                for name, t in self.tables.items()
            },
            "warnings": self.warnings,
            "event_spellings": self.event_spellings,
        }


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def _example(con: duckdb.DuckDBPyConnection, sql: str) -> dict | None:
    cur = con.execute(sql + " LIMIT 1")
    row = cur.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cur.description]
    return {k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v) for k, v in zip(names, row)}


def _source_columns(con: duckdb.DuckDBPyConnection, table: Table, mapping: dict[str, str]) -> dict[str, str]:
    """canonical column -> the source's column, after the configured renames."""
    present = _columns(con, f"raw_{table.name}")
    for theirs in mapping:
        if theirs not in present:
            raise DataContractError(
                f"{table.name}: column mapping names '{theirs}' but the table has "
                f"{', '.join(present)}", table=table.name, column=theirs)
    renamed = {mapping.get(c, c): c for c in present}
    return {c.name: renamed[c.name] for c in table.columns if c.name in renamed}


def _check_required(con: duckdb.DuckDBPyConnection, table: Table, cols: dict[str, str]) -> None:
    """Every required column present."""
    raw = f"raw_{table.name}"
    for col in table.columns:
        if col.required and col.name not in cols:
            present = _columns(con, raw)
            raise DataContractError(
                f"{table.name}: required column '{col.name}' is missing "
                f"(columns found: {', '.join(present)}; map yours with column_mapping)",
                table=table.name, column=col.name, example=_example(con, f"SELECT * FROM {raw}"))


def _check_columns(con: duckdb.DuckDBPyConnection, table: Table, cols: dict[str, str], source_types: dict[str, str],
                   casts: dict[str, str]) -> None:
    """Every value castable (one scan for all columns); ``casts``: ``source_casts``."""
    raw = f"raw_{table.name}"
    found = {name: cast_check(table, name, src, source_types, casts) for name, src in cols.items()}
    conds = {name: cond for name, cond in found.items() if cond}
    if not conds:
        return
    counts = con.execute(
        "SELECT " + ", ".join(f"count_if({c})" for c in conds.values()) + f" FROM {raw}").fetchone()
    for (name, cond), bad in zip(conds.items(), counts):
        if bad:
            mixed = mixed_epoch_units(con, raw, cols[name], cond) if table.column(name).type in (
                "date", "timestamp") else ""
            raise DataContractError(
                f"{table.name}.{name}: {bad} value(s) are not of type {table.column(name).type}"
                + (mixed or read_as(table.column(name), source_types[cols[name]])), table=table.name, column=name,
                example=_example(con, f"SELECT * FROM {raw} WHERE {cond}"))


def mixed_epoch_units(con: duckdb.DuckDBPyConnection, raw: str, column: str, bad: str) -> str:
    """The hint of a date column whose values are Unix epoch numbers of two units: the values that do
    not read (``bad``) are seconds (9-10 digits) where the column is read in milliseconds (12-13), or the
    reverse (a second SDK stamping in seconds: a probe's Amplitude export, 1% of it); "" otherwise."""
    digits = f"length(regexp_extract(CAST({q(column)} AS VARCHAR), '^\\s*([0-9]+)([.][0-9]*)?\\s*$', 1))"
    s_bad, ms_bad, n_bad, s_all, ms_all = con.execute(
        f"SELECT count_if(({bad}) AND {digits} BETWEEN 9 AND 10), count_if(({bad}) AND {digits} BETWEEN 12 AND 13), "
        f"count_if({bad}), count_if({digits} BETWEEN 9 AND 10), count_if({digits} BETWEEN 12 AND 13) "
        f"FROM {raw}").fetchone()
    if n_bad and s_bad == n_bad and ms_all > s_all:
        return (f": they are Unix epoch seconds (9-10 digits) in a column of epoch milliseconds ({ms_all:,} values "
                "of 12-13 digits): the column mixes the two units; write every value in one (seconds x 1000)")
    if n_bad and ms_bad == n_bad and s_all > ms_all:
        return (f": they are Unix epoch milliseconds (12-13 digits) in a column of epoch seconds ({s_all:,} values "
                "of 9-10 digits): the column mixes the two units; write every value in one (milliseconds / 1000)")
    return ""


def trimmed(expr: str) -> str:
    """SQL: ``NULLIF(TRIM(expr), '')``, TRIM skipped where it cannot change the value.

    TRIM removes Unicode space separators (U+0020 the only ASCII one) and copies every
    string: over the user id of every event that was most of a pass. An ASCII string (as
    many bytes as characters) that starts with a printable character other than a space and
    does not end with a space is kept as it is (TRIM would not change it); every other
    string is trimmed, so the value is the same either way (tests/features/test_fast_build.py).
    """
    return (f"CASE WHEN ord({expr}) BETWEEN 33 AND 126 AND NOT suffix({expr}, ' ') "
            f"AND strlen({expr}) = length({expr}) THEN {expr} ELSE NULLIF(TRIM({expr}), '') END")


def _event_type_expr(cols: dict[str, str]) -> str:
    """SQL: ``events.event_type`` as the contract reads it (text, trimmed), before families."""
    return trimmed(f"CAST({q(cols['event_type'])} AS VARCHAR)")


def _family_names(con: duckdb.DuckDBPyConnection, cols: dict[str, str], settings: Settings
                  ) -> dict[str, dict[str, int]]:
    """The events' types as families (one pass over the event type column): ``{name: {spelling: n}}``.

    Spellings that differ only in case, spaces, '-' or '_' are one type, named as ``event_roles``
    names it, else by its most frequent spelling (``features.spec.event_families``).
    """
    expr = _event_type_expr(cols)
    counts = {t: n for t, n in con.execute(f"SELECT {expr} AS t, count(*) FROM raw_events GROUP BY 1").fetchall()
              if t is not None}
    return event_families(counts, settings.event_roles.named_types())


def _typed_parts(table: Table, cols: dict[str, str], casts: dict[str, str] | None = None,
                 renamed: dict[str, str] | None = None, divisors: dict[str, int] | None = None) -> dict[str, str]:
    """Canonical column -> its SQL in ``typed_X``; ``casts``: column -> how it is read when not by a plain
    cast (``source_casts``); ``renamed``: event type spelling -> its family's name; ``divisors``: money
    column -> what its values are divided by (cents: 100)."""
    parts: dict[str, str] = {}
    for col in table.columns:
        target = DUCKDB_TYPES[col.type]
        if col.name in (casts or {}):
            expr = (casts or {})[col.name]
        elif table.name == "events" and col.name == "event_type" and renamed:
            expr = _event_type_expr(cols)
            expr = f"CASE {expr} " + " ".join(f"WHEN {lit(a)} THEN {lit(b)}" for a, b in renamed.items()) \
                + f" ELSE {expr} END"
        elif col.name in cols:
            expr = f"CAST({q(cols[col.name])} AS {target})"
            if table.name == "events" and col.name == "user_id":  # an e-mail in any letter case is one user
                expr = f"CASE WHEN {expr} LIKE '%@%' THEN {trimmed(f'lower({expr})')} ELSE {trimmed(expr)} END"
            elif col.type == "string":
                expr = trimmed(expr)
        else:
            expr = f"CAST(NULL AS {target})"
        if table.name == "events" and col.name == "quantity":
            expr = f"COALESCE({expr}, 1.0)"
        if col.null_is:  # declared after the column it falls back to (contract.py)
            expr = f"COALESCE({expr}, {parts[col.null_is]})"
        if (divisors or {}).get(col.name, 1) != 1 and col.name in cols:
            expr = f"({expr}) / {float(divisors[col.name])}"
        parts[col.name] = expr
    return parts


def create_typed_view(con: duckdb.DuckDBPyConnection, name: str, settings: Settings,
                      families: dict[str, dict[str, int]] | None = None,
                      readings: dict[str, dict[str, dict]] | None = None) -> list[str]:
    """``typed_X`` over ``raw_X``: the contract's names (after the column mapping) and types.

    Returns the canonical columns the source has (the others are null in ``typed_X``).
    ``families`` (events): filled with the event types' families; every spelling of a family
    reads as its name in ``typed_events``. ``readings``: ``readings[name]`` filled with the
    columns read from bands (``features.casting.band_readings``).

    Raises:
        DataContractError: a required column is missing, or a value does not cast.
    """
    table = TABLES[name]
    cols = _source_columns(con, table, settings.column_mapping.get(name, {}))
    _check_required(con, table, cols)
    # formats, epoch, $1,234.50, words, instants; a term's start and end also with their time of day
    source_types, casts, at = column_casts(con, table, cols, settings,
                                           instants=TERM_INSTANTS if name == "subscriptions" else ())
    _check_columns(con, table, cols, source_types, casts)
    if readings is not None:
        readings[name] = band_readings(con, table, cols, casts)
        for column, found in readings[name].items():
            log.info("%s.%s: %s value(s) read from bands (%s)", name, column, f"{found['values']:,}",
                     ", ".join(f"{b!r} as {v:,}" for b, v in found["bands"].items()))
    renamed: dict[str, str] = {}
    if name == "events":
        found = _family_names(con, cols, settings)
        renamed = {s: fam for fam, spellings in found.items() for s in spellings if s != fam}
        if families is not None:
            families.update(found)
    divisors = {c: MONEY_UNITS[u] for c, u in settings.column_units.get(name, {}).items()}
    parts = _typed_parts(table, cols, casts, renamed, divisors)
    for column, instant in at.items():  # a term's day bounds: the first midnight at or after each instant
        parts[column] = first_midnight(instant)
    select = ", ".join(f"{expr} AS {q(column)}" for column, expr in parts.items())
    if name in EXTRAS_TELL_APART:  # two rows alike in the contract's columns are one row only if alike in all
        extras = [q(c) for c in _columns(con, f"raw_{name}") if c not in set(cols.values())]
        select += f", {'hash(' + ', '.join(extras) + ')' if extras else '0'} AS {ROW_EXTRAS}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW typed_{name} AS SELECT {select} FROM raw_{name}")
    if name == "subscriptions":  # the company's own columns beside the contract's reading of the start
        con.execute(f"CREATE OR REPLACE TEMP VIEW {DATED_SUBSCRIPTIONS} AS SELECT "
                    f"{parts['start_date']} AS {q(DATED_START)}, * FROM raw_subscriptions")
    return list(cols)


#: The subscriptions' columns read as instants before they are days (``first_midnight``).
TERM_INSTANTS = ("start_date", "end_date")


def first_midnight(instant: str) -> str:
    """SQL: the day of the first midnight at or after ``instant`` (a TIMESTAMP expression), which
    is how a term's bounds become days. An as-of date ``t`` is the midnight that starts it, and a
    term ``[start, end)`` covers it when ``start <= t < end``: a billing period ending at
    ``2026-12-01 21:12`` covers 2026-12-01 (it ends on the 2nd), the period renewing then starts on
    the 2nd (no day counted twice, and nothing about a later term decides an earlier one's end), a
    customer who signed at 10:00 on the 1st is one from the 2nd. A date, or a midnight, is its own
    day, and so is an open-ended placeholder (``9999-12-31 23:59:59`` is not moved past the year
    9999). Without it a period renewing later on the data-end day (Stripe, Recurly, RevenueCat) read
    as a customer gone on the day the export was scored."""
    day = f"CAST({instant} AS DATE)"
    return (f"CASE WHEN {instant} > CAST({day} AS TIMESTAMP) AND {day} < DATE '{OPEN_ENDED_FROM.isoformat()}' "
            f"THEN CAST({day} + INTERVAL 1 DAY AS DATE) ELSE {day} END")


def cents_warnings(con: duckdb.DuckDBPyConnection, present: dict[str, list[str]], settings: Settings,
                   median_at_least: float = 1000.0) -> list[str]:
    """Warnings for money columns that look like cents and have no unit in ``column_units``.

    Billing APIs (Stripe, Chargebee, Paddle) export amounts in the smallest currency unit: an
    ``mrr`` of 2900 is 29.00 a month. Every positive value a whole number and their median at
    least ``median_at_least`` looks like that (a plan price of 1,000 whole currency units a month
    or more, with never a fraction, is rarer); ``column_units`` silences it either way.
    """
    out = []
    for table, columns in money_columns().items():
        for column in columns:
            if column not in present.get(table, []) or column in settings.column_units.get(table, {}):
                continue
            n, fractions, median = con.execute(
                f"SELECT count(*), count_if(x <> floor(x)), median(x) FROM (SELECT {q(column)} AS x "
                f"FROM typed_{table}) WHERE x > 0 AND isfinite(x)").fetchone()
            if n and not fractions and median >= median_at_least:
                out.append(f"{table}.{column}: every value is a whole number and the median is {median:,.0f}: if "
                           f"these are cents (billing exports such as Stripe's give amounts in the smallest currency "
                           f"unit), set `column_units: {{{table}: {{{column}: cents}}}}` in churnwatch.yaml; if they "
                           f"are whole currency units, `{column}: currency` silences this warning")
    for w in out:
        log.warning(w)
    return out


#: A column naming the currency of a row's amounts (Stripe ``currency``, Paddle ``currency_code``,
#: Chargebee ``Currency Code``).
CURRENCY_COLUMN = re.compile(r"^(?:.*[_ ])?(?:currency|currency[_ ]?code)$", re.IGNORECASE)


#: A money column whose own name names one currency (``price_in_usd``, ``MRR (EUR)``): its amounts are in
#: that currency whatever a currency column of the row says (RevenueCat exports ``price_in_usd`` beside
#: ``purchased_currency``).
ONE_CURRENCY = re.compile(r"(?:^|[^a-z])(?:usd|eur|gbp|jpy|cny|rmb|aud|cad|chf|inr|brl|mxn|sek|nok|dkk|pln|nzd|sgd|"
                          r"hkd|krw|zar)(?:$|[^a-z])", re.IGNORECASE)
#: Least share of a currency column's values that are currency codes (three letters, ISO 4217): a column
#: named so that holds amounts (RevenueCat's ``price_in_purchased_currency``) is not one.
CODE_SHARE = 0.9


def currency_warnings(con: duckdb.DuckDBPyConnection, loaded: set[str],
                      mapping: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Warnings for amounts in several currencies (a currency column of accounts, subscriptions or
    invoices with more than one code): ``mrr`` and ``amount`` are added as they are, across
    currencies, in MRR, MRR at risk and ``metrics``; nothing converts them. A money column mapped from
    a column named for one currency (``mapping``: ``column_mapping``, raw name -> contract name;
    ``ONE_CURRENCY``) is in one currency already; when every one present is, nothing is said."""
    out = []
    mapping = mapping or {}

    def in_one_currency(table: str, column: str) -> bool:
        return any(ONE_CURRENCY.search(raw) for raw, to in mapping.get(table, {}).items() if to == column)

    money = [f"{t}.{c}" for t, cs in money_columns().items() if t in loaded for c in cs
             if not in_one_currency(t, c)]
    if not money:
        return out
    for table in (t for t in ("accounts", *money_columns()) if t in loaded):
        for column in (c for c in _columns(con, f"raw_{table}") if CURRENCY_COLUMN.match(c.strip())):
            found = con.execute(
                f"SELECT c, count(*) AS n FROM (SELECT upper(trim(CAST({q(column)} AS VARCHAR))) AS c "
                f"FROM raw_{table}) WHERE c IS NOT NULL AND c <> '' GROUP BY c ORDER BY n DESC, c").fetchall()
            codes = sum(n for c, n in found if re.fullmatch(r"[A-Z]{3}", c))
            if codes < CODE_SHARE * sum(n for _, n in found):  # amounts, not codes
                continue
            found = [(c, n) for c, n in found if re.fullmatch(r"[A-Z]{3}", c)]
            if len(found) < 2:
                continue
            listed = ", ".join(f"{c} {n:,}" for c, n in found[:5]) + " rows" + \
                (f"; {len(found) - 5} more currencies" if len(found) > 5 else "")
            out.append(f"{table}.{column}: {len(found)} currencies ({listed}): {', '.join(money)} are added as "
                       "they are, across currencies, in MRR, MRR at risk and `churnwatch metrics`; convert the "
                       "amounts to one currency before loading (the currency itself may stay as a column of yours); "
                       "amounts converted already: name each column for the currency (`mrr_usd` mapped to `mrr`, "
                       "`amount_usd` to `amount` in column_mapping), which silences this")
    for w in out:
        log.warning(w)
    return out


def create_empty_clean_table(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """An empty ``clean_X`` with the contract's columns (a table the source does not have)."""
    cols = ", ".join(f"CAST(NULL AS {DUCKDB_TYPES[c.type]}) AS {q(c.name)}" for c in TABLES[name].columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE clean_{name} AS SELECT {cols} LIMIT 0")


def known_accounts_table(name: str, has_accounts: bool) -> str | None:
    """The table whose accounts count as known for ``name`` (unknown ones are set aside)."""
    if has_accounts:
        return "clean_accounts"
    return "clean_subscriptions" if name != "subscriptions" else None


def set_aside_case(name: str, data_end: dt.date | None, known_accounts: str | None,
                   account_first: bool = False, cut_tables: tuple[str, ...] | None = None) -> str:
    """A SQL expression over ``typed_X`` rows: the reason a row is set aside, or NULL to keep it.

    ``data_end`` sets aside the rows of ``cut_tables`` (default: every table) dated at or
    after it; ``account_first``: the rows carry ``_account_first`` (``before_account``).
    """
    reasons = _reasons(name, data_end, known_accounts, account_first, cut_tables)
    if not reasons:
        return "CAST(NULL AS VARCHAR)"
    return "CASE " + " ".join(f"WHEN {cond} THEN '{r}'" for r, cond in reasons) + " END"


def _reasons(name: str, data_end: dt.date | None, known_accounts: str | None,
             account_first: bool, cut_tables: tuple[str, ...] | None) -> list[tuple[str, str]]:
    cut = Cut(data_end, cut_tables if cut_tables is not None else tuple(TABLES)) if data_end else None
    return row_reasons(TABLES[name], cut, known_accounts, account_first)


def clean_columns(name: str, aliased: bool = True) -> list[str]:
    """The ``clean_X`` select list: the contract's columns, a value that breaks a value rule null."""
    bad: dict[str, list[str]] = {}
    for column, _reason, cond in value_rules(name):
        bad.setdefault(column, []).append(cond)
    out = []
    for c in TABLES[name].column_names:
        expr = f"CASE WHEN {' OR '.join(bad[c])} THEN NULL ELSE {q(c)} END" if c in bad else q(c)
        out.append(f"{expr} AS {q(c)}" if aliased and c in bad else expr)
    return out


def _check_table(con: duckdb.DuckDBPyConnection, name: str, case: str, dated: bool) -> None:
    """``checked_X`` (typed rows and the reason to set each aside) and ``clean_X`` (the kept ones)."""
    rows = f"typed_{name}"
    if dated:
        rows = (f"(SELECT x.*, af.first_day AS _account_first, af.known AS _account_known FROM typed_{name} x "
                "LEFT JOIN account_first af ON af.account_id = x.account_id)")
    # DuckDB: events (the big one) stay a view over the source, one pass less (event_keys is the copy the
    # features read); Spark writes them once, read by the report's passes and the feature stages
    kind = "VIEW" if name == "events" and engine_of(con) == "duckdb" else "TABLE"
    con.execute(f"CREATE OR REPLACE TEMP {kind} checked_{name} AS SELECT *, {case} AS _reason FROM {rows}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW clean_{name} AS SELECT {', '.join(clean_columns(name))} "
                f"FROM checked_{name} WHERE _reason IS NULL")


#: the row hashes of the content hash are taken modulo this prime (their sum stays small)
HASH_MODULUS = 1000000007


def account_key(col: str) -> str:
    """SQL: an account's integer key, a 64-bit hash (a collision needs billions of accounts to be
    likely): ``event_keys``' ``aid`` and the feature stages' ``ids`` (``features/windows.py``)."""
    return f"hash({col})"


def event_key_columns(e: str) -> str:
    """The integer keys of an event row aliased ``e``: ``aid`` (``account_key``), ``uid`` (its user's
    hash, null without a user) and ``d`` (its day number); one definition for ``event_keys``, made by
    the checks (``create_event_keys``) or from ``clean_events`` (``key_clean_events``)."""
    return (f"{account_key(f'{e}.account_id')} AS aid, "
            f"CASE WHEN {e}.user_id IS NULL THEN NULL ELSE hash({e}.user_id) END AS uid, "
            f"{dn(f'{e}.occurred_at')} AS d")


def key_clean_events(con) -> None:
    """``event_keys`` and ``event_key_types`` as tables made from ``clean_events`` (every row kept,
    the types sorted): where the contract checks did not leave them (Spark, the tests' builds)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE event_key_types AS
        SELECT CAST(ROW_NUMBER() OVER (ORDER BY event_type) - 1 AS INTEGER) AS fid, event_type
        FROM (SELECT DISTINCT event_type FROM clean_events WHERE event_type IS NOT NULL) t""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE event_keys AS
        SELECT {event_key_columns('e')}, f.fid, e.quantity AS n, CAST(NULL AS INTEGER) AS r
        FROM clean_events e JOIN event_key_types f ON f.event_type = e.event_type""")


def create_event_keys(con: duckdb.DuckDBPyConnection, reasons: list[tuple[str, str]],
                      families: list[str]) -> None:
    """``event_keys``: every event row, read once from the source through the contract checks,
    as integer keys — ``aid`` (account hash), ``fid`` (the event type's position in
    ``families``, table ``event_key_types``), ``uid`` (user hash), ``d`` (day number), ``n``
    (quantity), ``r`` (the position in ``reasons`` of the reason it is set aside, NULL when
    kept) and ``h`` (its row hash for the content hash, as the other tables' report pass).

    The events' report (counts per reason, content hash, data start) is a GROUP BY over it
    and the feature stages key their events from it (``features/windows.py``): one pass over
    the source with strings instead of two (the report's and the features').
    """
    kept = clean_columns("events", aliased=False)
    quantity = kept[TABLES["events"].column_names.index("quantity")]
    codes = ("CASE " + " ".join(f"WHEN {cond} THEN {i}" for i, (_r, cond) in enumerate(reasons)) + " END"
             if reasons else "NULL")
    fam = ", ".join(f"({lit(t)}, {i})" for i, t in enumerate(families)) or "(CAST(NULL AS VARCHAR), -1)"
    con.execute("CREATE OR REPLACE TEMP TABLE event_key_types AS SELECT CAST(fid AS INTEGER) AS fid, event_type "
                f"FROM (VALUES {fam}) AS v(event_type, fid) WHERE fid >= 0")
    rows = ("(SELECT x.*, af.first_day AS _account_first, af.known AS _account_known FROM typed_events x "
            "LEFT JOIN account_first af ON af.account_id = x.account_id)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE event_keys AS
        SELECT k.aid, f.fid, k.uid, k.d, k.n, k.r, k.h FROM (
            SELECT {event_key_columns('e')}, event_type, {quantity} AS n, CAST({codes} AS UTINYINT) AS r,
                   CAST(hash({', '.join(kept)}) % {HASH_MODULUS} AS UINTEGER) AS h
            FROM {rows} e
        ) k LEFT JOIN event_key_types f ON f.event_type = k.event_type""")


def _table_report(con: duckdb.DuckDBPyConnection, name: str, columns: list[str],
                  reasons: list[tuple[str, str]] | None = None) -> TableReport:
    """Rows in, kept and set aside (one pass), and the values set aside, with examples.

    ``reasons`` (events): the counts, content hash and first day come from ``event_keys``
    (``create_event_keys``: its reason codes are positions in ``reasons``), not a pass of their own."""
    cols = ", ".join(q(c) for c in TABLES[name].column_names)
    kept = ", ".join(clean_columns(name, aliased=False))
    rep = TableReport(columns=columns)
    time_col = TABLES[name].time_column
    first = f"min({q(time_col)})" if time_col else "NULL"  # the data start: no pass of its own
    if reasons is None:
        groups = con.execute(f"SELECT _reason, count(*), sum(hash({kept}) % {HASH_MODULUS}), {first} "
                             f"FROM checked_{name} GROUP BY 1 ORDER BY 1 NULLS FIRST").fetchall()
    else:  # the first day, not the first time: only its date is used (the data start)
        # by reason and type in the one pass: the kept rows' types' first days are the log's start (_bulk_start)
        named = dict(con.execute("SELECT fid, event_type FROM event_key_types").fetchall())
        found = con.execute("SELECT r, fid, count(*), sum(h), min(d) FROM event_keys GROUP BY r, fid").fetchall()
        by_reason: dict = {}
        for r, fid, n, digest, d in found:
            event_type = named.get(fid)
            total = by_reason.setdefault(r, [0, 0, None])
            total[0], total[1] = total[0] + n, total[1] + int(digest or 0)
            total[2] = d if total[2] is None or (d is not None and d < total[2]) else total[2]
            if r is None and d is not None and event_type is not None:
                rep.types[event_type] = (from_day_number(d), n)
        groups = sorted(((None if r is None else reasons[r][0], n, digest, None if d is None else from_day_number(d))
                         for r, (n, digest, d) in by_reason.items()), key=lambda g: (g[0] is not None, g[0] or ""))
    for reason, n, digest, first_at in groups:
        rep.rows_in += n
        if reason is None:
            rep.content_hash, rep.first_at = int(digest or 0), first_at
            continue
        rep.set_aside[reason] = n
        rep.examples[reason] = _example(con, f"SELECT {cols} FROM checked_{name} WHERE _reason = '{reason}'") or {}
    rep.rows_kept = rep.rows_in - sum(rep.set_aside.values())
    for _column, reason, cond in value_rules(name):
        where = f"_reason IS NULL AND {cond}"
        n = con.execute(f"SELECT count(*) FROM checked_{name} WHERE {where}").fetchone()[0]
        if n:
            rep.values_set_aside[reason] = n
            rep.value_examples[reason] = _example(con, f"SELECT {cols} FROM checked_{name} WHERE {where}") or {}
    return rep


def _as_date(value: dt.datetime | dt.date | None) -> dt.date | None:
    return value.date() if isinstance(value, dt.datetime) else value


def _data_end(con: duckdb.DuckDBPyConnection, loaded: list[str], settings: Settings
              ) -> tuple[dt.date, tuple[str, ...], list[str]]:
    """(data end, tables whose later rows are set aside, warnings)."""
    if settings.data_end:
        return settings.data_end, tuple(TABLES), []
    data_end, warnings = derive_data_end(con, loaded)
    return data_end, tuple(DATA_END_PROBES), warnings


def _check_not_emptied(con: duckdb.DuckDBPyConnection, report: ValidationReport, has_accounts: bool) -> None:
    """Every row of a required table (or of the events) set aside: nothing to build from (an error, not a
    silent run), with an unknown account's id beside the accounts' (``_id_shapes``)."""
    for name, rep in report.tables.items():
        if (TABLES[name].required or name in NOT_EMPTY) and rep.rows_in and not rep.rows_kept:
            reason, n = max(rep.set_aside.items(), key=lambda kv: kv[1])
            ids = f" {_id_shapes(con, name, rep, has_accounts)}" if reason == "unknown_account" else ""
            raise DataContractError(
                f"{name}: all {rep.rows_in:,} rows were set aside ({n:,} as {reason}){ids}; nothing is left "
                "to build from", table=name, example=rep.examples.get(reason))


def _id_shapes(con: duckdb.DuckDBPyConnection, name: str, rep: TableReport, has_accounts: bool) -> str:
    """"(e.g. 'X'; the accounts' ids look like 'Y')" for the rows of ``name`` set aside as ``unknown_account``,
    and what the example is to a known id when it is one's start or differs from it in case alone: a Salesforce
    report's 15-character id of an 18-character account (a probe's Paddle export: 733 of 2,441 customers left
    the snapshots with no word), an id upper-cased by one tool."""
    known_in = known_accounts_table(name, has_accounts)
    example = (rep.examples.get("unknown_account") or {}).get("account_id")
    known = (con.execute(f"SELECT min(account_id) FROM {known_in}").fetchone() if known_in else None) or (None,)
    text = f"(e.g. {example!r}; the accounts' ids look like {known[0]!r})"
    if not known_in or not isinstance(example, str) or not example:
        return text
    quoted = "'" + example.replace("'", "''") + "'"  # no parameters on Spark: the example as an SQL string
    short = len(example) == 15 and example.isalnum()  # a Salesforce id of 15 characters; 18 with its case suffix
    like = con.execute(f"SELECT min(account_id) FROM {known_in} WHERE lower(account_id) = lower({quoted})"
                       + (f" OR (length(account_id) = 18 AND substr(account_id, 1, 15) = {quoted})" if short else "")
                       ).fetchone()[0]
    if like is None:
        return text
    if like.lower() == example.lower():
        return (f"{text[:-1]}: it differs from the account {like!r} in letter case alone; map the ids as the "
                "accounts write them)")
    return (f"{text[:-1]}: it is the first 15 characters of the account {like!r}, as a Salesforce report writes an "
            "18-character id; map the 18-character ids (Salesforce's CASESAFEID), or join on the first 15)")


#: A table whose account ids are unknown on at least this share of its rows (and ``UNKNOWN_MIN_ROWS``)
#: is refused: its ids are not the accounts' (a help desk's organisation names, an accounting system's
#: contact names); from ``UNKNOWN_WARN`` a warning names the share. A help desk holds some tickets of
#: prospects and former trials, so a share below that is ordinary. The events are only warned about: a
#: freemium product's log is mostly free workspaces that never subscribed.
UNKNOWN_REFUSE = 0.95
UNKNOWN_WARN = 0.25
UNKNOWN_MIN_ROWS = 20


def _check_account_keys(con: duckdb.DuckDBPyConnection, report: ValidationReport, has_accounts: bool) -> None:
    """Refuse a table whose rows nearly all name unknown accounts (set aside as ``unknown_account``, its
    features would read as if the accounts had no tickets or invoices); warn from ``UNKNOWN_WARN``."""
    for name, rep in report.tables.items():
        if name == "subscriptions" and has_accounts:
            _warn_unknown_customers(con, report, rep)
        if name in ("accounts", "subscriptions") or rep.rows_in < UNKNOWN_MIN_ROWS:
            continue
        unknown = rep.set_aside.get("unknown_account", 0)
        share = unknown / rep.rows_in
        if share < UNKNOWN_WARN:
            continue
        where = "accounts" if has_accounts else "subscriptions"
        text = (f"{name}: {unknown:,} of {rep.rows_in:,} rows ({share:.0%}) have an account_id that is not in "
                f"{where} {_id_shapes(con, name, rep, has_accounts)}")
        if share >= UNKNOWN_REFUSE and name != "events":
            raise DataContractError(
                f"{text}: the column mapped to {name}.account_id does not hold the accounts' ids (an organisation "
                f"or contact name, another system's id?). Map the column that does, or join the {name} to the "
                "accounts' ids first (a help desk or accounting export keyed by company name: see the README, "
                f"\"Keys other than the account id\"); without it, leave the {name} out", table=name,
                example=rep.examples.get("unknown_account"))
        message = f"{text}: those rows are set aside, so these accounts' {name} features count without them"
        log.warning(message)
        report.warnings.append(message)


def _warn_unknown_customers(con: duckdb.DuckDBPyConnection, report: ValidationReport, rep: TableReport) -> None:
    """Subscriptions of accounts the accounts table does not hold: those customers leave the snapshots (never
    scored nor trained on), so any of them is said, with how many customers (a probe's Paddle export keyed 30%
    of its subscriptions by a shorter id: 733 of 2,441 customers gone, only a count in the set-aside table)."""
    if not rep.set_aside.get("unknown_account"):
        return
    customers = con.execute("SELECT count(DISTINCT account_id) FROM checked_subscriptions "
                            "WHERE _reason = 'unknown_account'").fetchone()[0]
    kept = con.execute("SELECT count(DISTINCT account_id) FROM clean_subscriptions").fetchone()[0]
    unknown = rep.set_aside["unknown_account"]
    share = unknown / rep.rows_in
    message = (f"subscriptions: {customers:,} customers' terms ({unknown:,} of {rep.rows_in:,} rows, "
               f"{f'{share:.0%}' if share >= 0.01 else 'under 1%'}) name an account_id that is not in accounts "
               f"{_id_shapes(con, 'subscriptions', rep, True)}: those customers are left out (not scored, not trained "
               f"on; {kept:,} customers are kept); add them to the accounts export or map the ids it has")
    log.warning(message)
    report.warnings.append(message)


def data_end_day_warnings(con: duckdb.DuckDBPyConnection, settings: Settings, report: ValidationReport) -> list[str]:
    """A warning when ``data_end`` is set and rows dated that very day are set aside: the data end is the first
    day the export does not cover, and a user writes the export's own day (a probe's Stripe export with
    ``data_end: 2026-11-30``: that day's 4 cancellation requests and 6 failed payments dropped, the customers
    scored healthy, only a line of the set-aside table said it)."""
    if not settings.data_end:
        return []
    day = lit(_as_date(settings.data_end).isoformat())
    found = []
    for name, rep in report.tables.items():
        column = TABLES[name].time_column
        if not rep.set_aside.get("after_data_end") or not column:
            continue
        if name == "events" and report.engine == "duckdb":  # the keyed copy (create_event_keys), not the source again
            n = con.execute("SELECT count(*) FROM event_keys WHERE r IS NOT NULL AND "
                            f"d = {day_number(_as_date(settings.data_end))}").fetchone()[0]
        else:
            n = con.execute(f"SELECT count(*) FROM checked_{name} WHERE _reason = 'after_data_end' "
                            f"AND CAST({q(column)} AS DATE) = CAST({day} AS DATE)").fetchone()[0]
        if n:
            found.append(f"{name} {n:,}")
    if not found:
        return []
    after = _as_date(settings.data_end) + dt.timedelta(days=1)
    message = (f"data_end {settings.data_end} is the first day the export does not cover, and rows dated that day "
               f"are set aside ({', '.join(found)}); if the export runs to the end of that day, set data_end: {after} "
               "(or leave it out: the day after the latest row is read)")
    log.warning(message)
    return [message]


def priority_warnings(con: duckdb.DuckDBPyConnection, report: ValidationReport) -> list[str]:
    """A warning when ``tickets.priority`` has values but none reads as high (``HIGH_PRIORITY``): the
    high-priority ticket count would be 0 on every row (a probe's Intercom export wrote P1..P4)."""
    rep = report.tables.get("tickets")
    if rep is None or "priority" not in rep.columns or not rep.rows_kept:
        return []
    values = con.execute("SELECT lower(priority) AS p, count(*) AS n FROM clean_tickets WHERE priority IS NOT NULL "
                         "GROUP BY lower(priority) ORDER BY n DESC, p").fetchall()
    if not values or any(v in HIGH_PRIORITY for v, _ in values):
        return []
    shown = ", ".join(f"{v} {n:,}" for v, n in values[:6]) + (f", {len(values) - 6} more" if len(values) > 6 else "")
    message = (f"tickets.priority: no value reads as high priority ({shown}); read as high: "
               f"{', '.join(HIGH_PRIORITY)}, so high_priority_tickets_30d counts none. Map your values to "
               "high / normal before loading (a P1 or a Freshdesk 4 as high)")
    log.warning(message)
    return [message]


def unit_warnings(settings: Settings, report: ValidationReport) -> list[str]:
    """A warning per ``event_units`` entry that names no event type of the data (a typo would leave
    the type's counts worded as events without a word)."""
    known = {family_key(t) for t in report.event_families}
    unknown = [t for t in settings.event_units if family_key(t) not in known]
    if not unknown:
        return []
    message = (f"event_units: {', '.join(repr(t) for t in unknown)} is not an event type of the data (types: "
               f"{_types_shown(report)}); its counts keep the word 'events'")
    log.warning(message)
    return [message]


def _types_shown(report: ValidationReport) -> str:
    """The data's event types for a warning about a setting naming none of them: the first eight, quoted."""
    return ", ".join(f"'{t}'" for t in sorted(report.event_families)[:8]) or "none"


#: Accounts with a term at the data end and no product event ever, from this share of them on (and
#: ``UNTRACKED_MIN`` accounts): said at ``features``, as the product export may not cover them
UNTRACKED_SHARE = 0.10
UNTRACKED_MIN = 20


def untracked_warnings(con: duckdb.DuckDBPyConnection, settings: Settings, report: ValidationReport) -> list[str]:
    """A warning when many accounts with a term at the data end have no product event in the log from its
    data start on (the passive roles' types, ``features.spec.PASSIVE_ROLES``, are no product activity):
    their event features are unknown until their first such event (``features.snapshots.final_query``),
    whether they never used the product or the export does not cover them. A probe's Stripe export with
    analytics for half its customers: they read 0, and 741 of 753 were told "Only 0% of seats in use" with
    a training playbook, with no word at ``features``."""
    rep = report.tables.get("events")
    if rep is None or not rep.rows_kept or report.data_end is None:
        return []
    keys = {family_key(t) for t in passive_types(settings.event_roles)}
    passive = [spelling for family, spellings in report.event_families.items() if family_key(family) in keys
               for spelling in spellings]
    if passive and len(passive) == sum(len(v) for v in report.event_families.values()):
        # a billing-only export whose events are its cancellation requests: no product log to complete (a probe's
        # Stripe export was told at every step to "export the events of every customer")
        log.info("events: only %s (no product activity): usage features are unknown for every account",
                 ", ".join(sorted(passive)))
        return []
    end = lit(_as_date(report.data_end).isoformat())
    start = lit(_as_date(report.data_start or report.data_end).isoformat())
    active, untracked = con.execute(f"""
        SELECT count(*) AS active, COALESCE(SUM(CASE WHEN e.account_id IS NULL THEN 1 ELSE 0 END), 0) AS untracked
        FROM (SELECT DISTINCT account_id FROM clean_subscriptions
              WHERE start_date <= CAST({end} AS DATE) AND (end_date IS NULL OR end_date > CAST({end} AS DATE))) a
        LEFT JOIN (SELECT DISTINCT account_id FROM clean_events
                   WHERE {not_in("event_type", passive)} AND CAST(occurred_at AS DATE) >= CAST({start} AS DATE)) e
          ON e.account_id = a.account_id""").fetchone()
    if not active or untracked < max(UNTRACKED_MIN, UNTRACKED_SHARE * active):
        return []
    message = (f"events: {untracked:,} of the {active:,} accounts with a term at the data end "
               f"({untracked / active:.0%}) have no product event in the log: their usage features are "
               "unknown (null), not 0, so no reason calls them inactive. If they are tracked "
               "and never used the product, that is what the model learns from the missing values; if the "
               "product export does not cover them (tracking set up for some customers only), export the events "
               "of every customer")
    log.warning(message)
    return [message]


def role_warnings(settings: Settings, report: ValidationReport) -> list[str]:
    """A warning per ``event_roles`` entry that names no event type of the data: its features stay null (a
    probe's ``cancel_request: [cancellation_scheduled]`` with the events in a file not read: not a word)."""
    known = {family_key(t) for t in report.event_families}
    roles = settings.event_roles
    unknown = {role: [t for t in getattr(roles, role) if family_key(t) not in known]
               for role in type(roles).model_fields}
    said, shown = [], _types_shown(report)
    for role, types in unknown.items():
        if types:
            one = len(types) == 1
            said.append(f"event_roles.{role}: {', '.join(repr(t) for t in types)} "
                        f"{'is not an event type' if one else 'are not event types'} of the data "
                        f"(types: {shown}); the role's features read nothing from {'it' if one else 'them'}")
    for line in said:
        log.warning(line)
    return said


def validate_tables(con: duckdb.DuckDBPyConnection, loaded: list[str], settings: Settings) -> ValidationReport:
    """Turn every ``raw_X`` into ``clean_X`` (canonical names and types) and report.

    Tables not in the source become empty ``clean_X`` tables, so queries need no cases.

    Raises:
        ConfigError: a column mapping or unit onto no contract column, a ``profile.columns`` entry
            for a contract column, a bad date format.
        DataContractError: a missing column, a value of the wrong type, or a required table
            all of whose rows are set aside.
    """
    check_column_mapping(settings.column_mapping)
    check_column_units(settings.column_units)
    check_no_contract_columns(settings)  # before the data: a profile setting cannot change a contract column
    if engine_of(con) == "duckdb":
        check_date_formats(con, settings)
    else:  # probes of the configured formats (no data): DuckDB's strptime is what they are written for
        with duckdb.connect(":memory:") as probe:
            check_date_formats(probe, settings)
    families: dict[str, dict[str, int]] = {}
    readings: dict[str, dict[str, dict]] = {}
    present = {name: create_typed_view(con, name, settings, families, readings) for name in loaded}
    data_end, cut_tables, warnings = _data_end(con, loaded, settings)
    warnings += cents_warnings(con, {n: present[n] for n in loaded}, settings)
    warnings += currency_warnings(con, set(loaded), settings.column_mapping)

    report = ValidationReport(data_end=data_end, data_start=data_end, warnings=warnings, event_families=families,
                              engine=engine_of(con))
    for fam, spellings in report.event_spellings.items():
        log.info("events: %s read as one event type %r", ", ".join(map(repr, spellings)), fam)
    order = ["accounts", "subscriptions"] + [n for n in TABLES if n not in ("accounts", "subscriptions")]
    for name in order:
        if name == "events":  # accounts and subscriptions are clean: each account's first date
            create_account_first(con, known_accounts_table(name, "accounts" in loaded))
        if name not in loaded:
            create_empty_clean_table(con, name)
            continue
        dated = name in ACCOUNT_DATED
        case = set_aside_case(name, data_end, known_accounts_table(name, "accounts" in loaded),
                              account_first=dated, cut_tables=cut_tables)
        _check_table(con, name, case, dated)
        reasons = None
        if name == "events" and report.engine == "duckdb":  # one pass: the report and the features' keys
            reasons = _reasons(name, data_end, known_accounts_table(name, "accounts" in loaded), dated, cut_tables)
            create_event_keys(con, reasons, list(families))
        report.tables[name] = _table_report(con, name, present[name], reasons)
        report.tables[name].readings = readings.get(name, {})
    _check_not_emptied(con, report, "accounts" in loaded)
    _check_account_keys(con, report, "accounts" in loaded)
    report.warnings += data_end_day_warnings(con, settings, report)
    report.warnings += priority_warnings(con, report)
    report.warnings += unit_warnings(settings, report)
    report.warnings += role_warnings(settings, report)
    # the event log's start: before it, activity features would read as zero
    first = report.tables["events"].first_at if "events" in report.tables else _activity_start(report)
    report.data_start = _as_date(first) or data_end
    if "events" in report.tables and first is not None:
        report.data_start = _bulk_start(con, report, data_end)
    report.warnings += untracked_warnings(con, settings, report)  # product events from the data start on
    return report


#: Without events, the data starts with these tables' first row (a CRM, a help desk and an accounting
#: system without product analytics: the help desk's and the invoices' history).
ACTIVITY_TABLES = ("tickets", "invoices")


def _activity_start(report: ValidationReport) -> dt.date | None:
    """The earliest ticket or invoice of a source without events, else its first term's start."""
    firsts = [_as_date(report.tables[n].first_at) for n in ACTIVITY_TABLES
              if n in report.tables and report.tables[n].first_at is not None]
    if not firsts and "subscriptions" in report.tables:
        firsts = [_as_date(report.tables["subscriptions"].first_at)]
    return min((f for f in firsts if f is not None), default=None)


#: Event types that begin before the rest of the log and hold less than this share of its rows in all
#: are a few early events, not the log's start.
EARLY_SHARE = 0.10
#: ... when the rest begins more than this many days after them.
BULK_LATE_DAYS = 30


def _bulk_start(con: duckdb.DuckDBPyConnection, report: ValidationReport, data_end: dt.date) -> dt.date:
    """The event log's start: the first event's day, unless the event types that begin before some
    later day hold under ``EARLY_SHARE`` of the kept events, and that day is more than
    ``BULK_LATE_DAYS`` after the first event; then the latest such day (a warning in ``report`` says
    so). A few events of a type exported from further back (billing's ``cancellation_scheduled`` from
    years before the product analytics start) would otherwise start the as-of dates where usage reads
    as zero; a large type that begins late (a feature launched mid-way) does not move the start."""
    if report.tables["events"].types:  # DuckDB: counted in the events report's pass (_table_report)
        types = [(name, day, n) for name, (day, n) in report.tables["events"].types.items()]
    else:
        rows = con.execute("SELECT event_type, min(CAST(occurred_at AS DATE)), count(*) FROM clean_events "
                           "GROUP BY event_type").fetchall()
        types = [(name, _as_date(d), n) for name, d, n in rows if d is not None]
    first = report.data_start
    if not types:
        return first
    total = sum(n for *_, n in types)
    bulk = first
    for _, day, _ in sorted(types, key=lambda t: t[1]):  # the latest day the types begun before it are few
        if sum(n for _, d, n in types if d < day) < EARLY_SHARE * total:
            bulk = day
    if (bulk - first).days <= BULK_LATE_DAYS or bulk >= data_end:
        return first
    early = sorted((t for t in types if t[1] < bulk), key=lambda t: (t[1], t[0]))
    share = sum(n for *_, n in early) / total
    listed = ", ".join(f"{name!r} from {day} ({n:,} rows)" for name, day, n in early[:4]) + \
        (f" and {len(early) - 4} more" if len(early) > 4 else "")
    begun = ", ".join(repr(name) for name, day, _ in sorted(types) if day == bulk)
    message = (f"events: the log begins on {bulk} ({begun} among the types that begin then), {(bulk - first).days} "
               f"days after the first event; before it only {listed}: {share:.1%} of the rows. The data start "
               f"is {bulk} (not {first}), and the as-of dates follow it: before it the product's use is not in "
               "the log and would read as zero")
    log.warning(message)
    report.warnings.append(message)
    return bulk
