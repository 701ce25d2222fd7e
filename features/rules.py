"""The contract's rules for rows and values that cannot be true, and the default data end.

Rows set aside (kept out of the features; counted by table and reason with one example row
in ``ValidationReport`` and ``<home>/reports/run-summary.json``). The first rule that holds
names the reason:

============================  ==========================================================
reason                        rows
============================  ==========================================================
``missing_<column>``          a null in a non-nullable column (e.g. ``missing_account_id``)
``duplicate_account``         a second ``accounts`` row for the same account_id
``unknown_account``           an account_id not in ``accounts`` (or, without that table,
                              not in ``subscriptions``)
``before_1990``               a row dated before ``PLAUSIBLE_START`` (a placeholder such
                              as 1900-01-01, not a real date)
``end_before_start``          a term whose ``end_date <= start_date``
``duplicate_term``            a term identical to another one in every column of the file, the
                              company's own included (an exported twice row: its MRR would count
                              twice). Two terms of one account over the same days that differ in
                              plan, MRR, seats or an own column (a subscription id) are kept: they
                              are add-ons and their MRR is summed.
``non_finite_mrr``            a term whose MRR is NaN or infinite
``negative_mrr``              a term with ``mrr < 0``
``implausible_mrr``           a term with ``mrr > MAX_MONEY`` (1e15, in any currency)
``non_finite_quantity``       an event whose quantity is NaN or infinite
``negative_quantity``         an event with ``quantity < 0`` (a count cannot be negative)
``implausible_quantity``      an event with ``quantity > MAX_QUANTITY`` (1e9): sums of such
                              values overflow the engine's integers
``duplicate_ticket``          a ticket identical to another in every column of the file (a row
                              exported or pasted twice would count twice; its own id tells it apart)
``resolved_before_opened``    a ticket resolved before it was opened
``csat_out_of_range``         a CSAT outside 1..5 (NaN included)
``due_before_issued``         an invoice due before it was issued
``void_invoice``              an invoice whose ``status`` is void, draft or canceled (``VOID_STATUSES``)
                              with no ``written_off_at``: never owed, it would read as unpaid for ever
                              (with the day it was voided it was owed until then: a dunning episode)
``duplicate_invoice``         an invoice identical to another in every column of the file
``non_finite_amount``         an invoice amount NaN or infinite
``negative_amount``           an invoice amount below 0 (credit notes included: the
                              invoice features count amounts owed)
``implausible_amount``        an invoice amount above ``MAX_MONEY``
``before_account``            a row of events, tickets, invoices, churn_feedback or
                              interventions dated more than ``ACCOUNT_LEAD_DAYS`` before
                              its account existed (its first term, or ``signed_at`` if
                              earlier): a trial or pilot before signing is kept
``after_data_end``            a row dated at or after the data end (configured: every
                              table, a term starting after it; derived: events, tickets and
                              invoices after a long silence past the subscriptions, or
                              tickets and invoices after a dense event log's end, see
                              ``derive_data_end``)
============================  ==========================================================

Values set aside (the row is kept, the value becomes unknown, i.e. null, and is counted the
same way, see ``VALUE_RULES``): ``negative_seats`` / ``implausible_seats``
(``subscriptions.seats`` below 0 or above ``MAX_SEATS``), ``negative_employees`` /
``implausible_employees`` (``accounts.employees``), ``signed_before_1990`` (``accounts.signed_at``). Setting the
whole row aside would be worse there: a term set aside leaves a gap in the account's
coverage, which reads as a churn that never happened.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import duckdb

from core.errors import DataContractError
from features.contract import KEYED_TABLES, Table
from features.sql import is_in, q

log = logging.getLogger(__name__)

#: Dates before this are placeholders or typing errors, not events of a SaaS business.
PLAUSIBLE_START = dt.date(1990, 1, 1)
#: How long before its first term (or signature) an account's activity may start: trials, pilots.
ACCOUNT_LEAD_DAYS = 365
#: A silence this long (no event, ticket or invoice at all) after the subscriptions' latest
#: date ends the activity the derived data end follows: what comes after it is stray rows.
ACTIVITY_GAP_DAYS = 180
#: The largest share of the activity's dated values that can be stray rows (else it is data).
STRAY_SHARE = 0.01
#: The longest term believed when bounding the data end (five years).
MAX_TERM_DAYS = 5 * 366
#: Tables whose timestamps set the derived data end: (table, columns).
DATA_END_PROBES = {"events": ("occurred_at",), "tickets": ("opened_at", "resolved_at"),
                   "invoices": ("issued_at", "paid_at")}
#: An event log with events on at least this share of its last ``DENSE_DAYS`` days is dense: when it ends more than
#: ``EXPORT_LAG_DAYS`` before the tickets' or invoices' latest dates, its end is the data end (``_events_end``).
DENSE_SHARE = 0.8
DENSE_DAYS = 60
EXPORT_LAG_DAYS = 7
#: Tables whose rows are checked against their account's first date.
ACCOUNT_DATED = ("events", "tickets", "invoices", "churn_feedback", "interventions")


def _day(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


@dataclass(frozen=True)
class Cut:
    """The data end and which tables' rows after it are set aside."""

    data_end: dt.date
    tables: tuple[str, ...]


def row_reasons(table: Table, cut: Cut | None, known_accounts: str | None,
                account_first: bool) -> list[tuple[str, str]]:
    """(reason, SQL condition over a ``typed_X`` row) in priority order.

    ``account_first``: the row has columns ``_account_first`` (its account's first date) and
    ``_account_known`` (1 when the account is in ``known_accounts``, else null), from table
    ``account_first`` (``create_account_first`` with the same ``known_accounts``).
    """
    out = [(f"missing_{c.name}", f"{q(c.name)} IS NULL") for c in table.columns if not c.nullable]
    if table.name == "accounts":
        out.append(("duplicate_account", "row_number() OVER (PARTITION BY account_id) > 1"))
    if known_accounts is not None and table.name in KEYED_TABLES:
        # with ``account_first`` the row carries ``_account_known`` from that join (one join, not two:
        # over the event log each is a tenth of a pass)
        out.append(("unknown_account", "_account_known IS NULL" if account_first else
                    f"account_id NOT IN (SELECT account_id FROM {known_accounts})"))
    if table.time_column:
        out.append(("before_1990", f"{q(table.time_column)} < {_day(PLAUSIBLE_START)}"))
    out += _table_reasons(table)
    if account_first and table.time_column:
        out.append(("before_account", f"CAST({q(table.time_column)} AS DATE) < "
                                      f"_account_first - INTERVAL {ACCOUNT_LEAD_DAYS} DAY"))
    if cut is not None and table.time_column and table.name in cut.tables:
        # a term's start is the first midnight after it (``features.validate.first_midnight``): one begun
        # during the export's last day starts on the data end, and is a customer then
        after = ">" if table.name == "subscriptions" else ">="
        out.append(("after_data_end", f"{q(table.time_column)} {after} {_day(cut.data_end)}"))
    return out


#: Tables whose rows are duplicates only when alike in every column of the file, the company's own
#: too (two add-on subscriptions, invoices or tickets with their own ids and the same dates and amounts
#: are two): their ``typed_X`` carries ``ROW_EXTRAS``, a hash of the columns the contract does not read.
EXTRAS_TELL_APART = ("subscriptions", "tickets", "invoices")
ROW_EXTRAS = "_row_extras"


def _table_reasons(table: Table) -> list[tuple[str, str]]:
    every = ", ".join(q(c) for c in table.column_names)  # a row identical to another in every column
    if table.name in EXTRAS_TELL_APART:
        every += f", {ROW_EXTRAS}"
    if table.name == "subscriptions":
        return [("end_before_start", "end_date IS NOT NULL AND end_date <= start_date"),
                ("duplicate_term", f"row_number() OVER (PARTITION BY {every}) > 1"),
                ("non_finite_mrr", "NOT isfinite(mrr)"),
                ("negative_mrr", "mrr < 0"),
                ("implausible_mrr", f"mrr > {MAX_MONEY:.0f}")]
    if table.name == "events":
        return [("non_finite_quantity", "NOT isfinite(quantity)"),
                ("negative_quantity", "quantity < 0"),
                ("implausible_quantity", f"quantity > {MAX_QUANTITY:.0f}")]
    if table.name == "tickets":
        return [("duplicate_ticket", f"row_number() OVER (PARTITION BY {every}) > 1"),
                ("resolved_before_opened", "resolved_at < opened_at"),
                ("csat_out_of_range", "csat IS NOT NULL AND (NOT isfinite(csat) OR csat < 1 OR csat > 5)")]
    if table.name == "invoices":
        return [("void_invoice", f"{is_in('lower(TRIM(status))', list(VOID_STATUSES))} AND written_off_at IS NULL"),
                ("duplicate_invoice", f"row_number() OVER (PARTITION BY {every}) > 1"),
                ("due_before_issued", "due_at < issued_at"),
                ("non_finite_amount", "NOT isfinite(amount)"),
                ("negative_amount", "amount < 0"),
                ("implausible_amount", f"amount > {MAX_MONEY:.0f}")]
    return []


#: Invoice statuses of an invoice that is not owed (Stripe: void, draft; Paddle Billing and Zuora:
#: canceled; others: voided, deleted, cancelled). Stripe's ``uncollectible`` is not among them: it
#: was owed and went unpaid, a signal up to the day it was written off, which the export does not give.
VOID_STATUSES = ("void", "voided", "draft", "deleted", "canceled", "cancelled")


#: Values a row cannot hold, whatever the unit: a quantity of one event, an amount of money
#: (any currency, per month or per invoice), seats of one term, a company's head count.
MAX_QUANTITY = 1e9
MAX_MONEY = 1e15
MAX_SEATS = 10_000_000
MAX_EMPLOYEES = 100_000_000

#: (table, column, reason, SQL condition): a value that becomes null, the row kept.
VALUE_RULES: tuple[tuple[str, str, str, str], ...] = (
    ("subscriptions", "seats", "negative_seats", "seats < 0"),
    ("subscriptions", "seats", "implausible_seats", f"seats > {MAX_SEATS}"),
    ("accounts", "employees", "negative_employees", "employees < 0"),
    ("accounts", "employees", "implausible_employees", f"employees > {MAX_EMPLOYEES}"),
    ("accounts", "signed_at", "signed_before_1990", f"signed_at < {_day(PLAUSIBLE_START)}"),
)


def value_rules(table: str) -> list[tuple[str, str, str]]:
    """(column, reason, condition) of the value rules of ``table``."""
    return [(col, reason, cond) for t, col, reason, cond in VALUE_RULES if t == table]


def create_account_first(con: duckdb.DuckDBPyConnection, known_accounts: str = "clean_accounts") -> None:
    """``account_first``: each account's first date (first term, or ``signed_at`` if earlier), and
    ``known``: 1 when the account is in ``known_accounts`` (``clean_accounts`` or
    ``clean_subscriptions``), else null (``unknown_account``).

    Needs ``clean_accounts`` and ``clean_subscriptions``.
    """
    subs, accs = ("1", "NULL") if known_accounts == "clean_subscriptions" else ("NULL", "1")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE account_first AS
        SELECT account_id, min(d) AS first_day, max(k) AS known FROM (
            SELECT account_id, start_date AS d, {subs} AS k FROM clean_subscriptions
            UNION ALL
            SELECT account_id, signed_at AS d, {accs} AS k FROM clean_accounts
        ) x GROUP BY account_id
    """)


def _subscriptions_latest(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The latest day the subscriptions cover: a term's end, but at most ``MAX_TERM_DAYS``
    after its start (``9999-12-31`` often spells "open-ended"), and at least its start."""
    return con.execute(f"""
        SELECT CAST(max(GREATEST(start_date, LEAST(COALESCE(end_date, start_date),
                                                   start_date + INTERVAL {MAX_TERM_DAYS} DAY))) AS DATE)
        FROM typed_subscriptions WHERE start_date >= {_day(PLAUSIBLE_START)}""").fetchone()[0]


def _activity_days(con: duckdb.DuckDBPyConnection, loaded: list[str]) -> None:
    """``activity_days``: every plausible day with an event, ticket or invoice date."""
    parts = [f"SELECT DISTINCT CAST({q(c)} AS DATE) AS d FROM typed_{name} WHERE {q(c)} >= {_day(PLAUSIBLE_START)}"
             for name, cols in DATA_END_PROBES.items() if name in loaded for c in cols]
    if not parts:  # a source of accounts and subscriptions alone: no activity dates at all
        con.execute("CREATE OR REPLACE TEMP TABLE activity_days (d DATE)")
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE activity_days AS SELECT DISTINCT d FROM ({' UNION ALL '.join(parts)})")


def _stray_from(con: duckdb.DuckDBPyConnection, anchor: dt.date | None) -> dt.date | None:
    """The first activity day after ``anchor`` that follows a silence of more than ``ACTIVITY_GAP_DAYS``."""
    after = f"WHERE d > {_day(anchor)}" if anchor else ""
    return con.execute(f"""
        SELECT min(d) FROM (SELECT d, date_diff('day', lag(d) OVER (ORDER BY d), d) AS gap FROM activity_days)
        {after}{' AND' if after else 'WHERE'} gap > {ACTIVITY_GAP_DAYS}""").fetchone()[0]


def _rows_from(con: duckdb.DuckDBPyConnection, loaded: list[str], day: dt.date
               ) -> tuple[list[tuple[str, int, dt.date]], int]:
    """(``table.column``, rows dated from ``day`` on, the latest of them) per probe column, and
    the number of plausible dated values in all of them."""
    found, total = [], 0
    for name, cols in DATA_END_PROBES.items():
        if name not in loaded:
            continue
        for c in cols:
            n, last, every = con.execute(
                f"SELECT count(*) FILTER (WHERE {q(c)} >= {_day(day)}), CAST(max({q(c)}) AS DATE), "
                f"count(*) FILTER (WHERE {q(c)} >= {_day(PLAUSIBLE_START)}) FROM typed_{name}").fetchone()
            total += every
            if n:
                found.append((f"{name}.{c}", n, last))
    return found, total


def _stray_warnings(found: list[tuple[str, int, dt.date]], stray: dt.date, anchor: dt.date | None) -> list[str]:
    return [f"{col}: {n:,} row(s) from {stray} to {last} run far past the subscriptions (latest day they "
            f"cover {anchor}) after {ACTIVITY_GAP_DAYS}+ days without any activity; the data end does not "
            "follow them. If the export really ends later, set data_end in churnwatch.yaml"
            for col, n, last in found]


def derive_data_end(con: duckdb.DuckDBPyConnection, loaded: list[str]) -> tuple[dt.date, list[str]]:
    """The data end when none is configured, and the warnings it raises.

    The day after the latest plausible timestamp in events, tickets and invoices, where the
    subscriptions bound what is plausible: past the latest day they cover, activity that
    resumes after ``ACTIVITY_GAP_DAYS`` of silence is stray rows when they are few (at most
    ``STRAY_SHARE`` of the dated values; typed as 2099, say). Stray rows do not move the data
    end (and with it the as-of dates and the labels) into the future: they are set aside as
    ``after_data_end``, with a warning that says how to set ``data_end``.

    Raises:
        DataContractError: no plausible timestamp at all.
    """
    anchor = _subscriptions_latest(con)
    _activity_days(con, loaded)
    stray = _stray_from(con, anchor)
    found, total = _rows_from(con, loaded, stray) if stray else ([], 0)
    if sum(n for _, n, _ in found) > STRAY_SHARE * total:
        stray, found = None, []  # a real second stretch of activity, not a few stray rows
    before = f"WHERE d < {_day(stray)}" if stray else ""
    latest = con.execute(f"SELECT max(d) FROM activity_days {before}").fetchone()[0]
    if latest is None:
        raise DataContractError("no plausible timestamps in events, tickets or invoices (or none of them in the "
                                "source): cannot tell the data end (set data_end in churnwatch.yaml)",
                                table="events")
    warnings = _stray_warnings(found, stray, anchor) if stray else []
    end = latest + dt.timedelta(days=1)
    if (lagging := _events_end(con, loaded, end, stray)) is not None:
        end, said = lagging
        warnings.append(said)
    for w in warnings:
        log.warning(w)
    return end, warnings


def _events_end(con: duckdb.DuckDBPyConnection, loaded: list[str], end: dt.date, stray: dt.date | None
                ) -> tuple[dt.date, str] | None:
    """The data end a dense event log sets, and the warning, when the tickets or invoices run on more than
    ``EXPORT_LAG_DAYS`` past the day after its last event: tables exported on different days (a probe's
    invoices two weeks after the events and subscriptions moved the data end; on its last dates a third of
    the customers had lapsed, their renewals not yet in the subscriptions, and every account showed a silent
    week). Past a dense log's end nothing says how the accounts used the product either way. None otherwise
    (a log too sparse to tell its end from a quiet spell: the data end stays the latest date)."""
    if "events" not in loaded:
        return None
    cut = f" AND occurred_at < {_day(stray)}" if stray else ""
    last = con.execute(f"SELECT CAST(max(occurred_at) AS DATE) FROM typed_events "
                       f"WHERE occurred_at >= {_day(PLAUSIBLE_START)}{cut}").fetchone()[0]
    if last is None or (end - last).days - 1 <= EXPORT_LAG_DAYS:
        return None
    after = last + dt.timedelta(days=1)
    days = con.execute(f"SELECT count(DISTINCT CAST(occurred_at AS DATE)) FROM typed_events WHERE occurred_at >= "
                       f"{_day(after - dt.timedelta(days=DENSE_DAYS))} AND occurred_at < {_day(after)}").fetchone()[0]
    if days < DENSE_SHARE * DENSE_DAYS:
        return None
    found = [(col, n, day) for col, n, day in _rows_from(con, loaded, after)[0] if not col.startswith("events.")]
    shown = "; ".join(f"{col}: {n:,} row(s) to {day}" for col, n, day in found)
    return after, (f"the events end on {last}, but later dates follow ({shown}): read as tables exported on "
                   f"different days, the data end is {after}, the day after the last event (past it nothing says "
                   "how the accounts used the product), tickets opened and invoices issued from then on are set aside "
                   "as after_data_end (a later payment or resolution is not known yet on that day); if the export "
                   "really ends later, set data_end in churnwatch.yaml")
