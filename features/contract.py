"""The input data contract: the seven tables churnwatch reads, declared once.

Every loader, validator, the demo generator and the docs read these declarations;
nothing else lists table or column names. Column names are canonical; a user's own
names are mapped onto them by ``Settings.column_mapping``. The ``clean_*`` tables keep
only these columns; any other column of ``accounts`` or ``subscriptions`` is read from
the raw table by ``features/profile.py`` (a company's own attributes as features).

Time semantics: timestamps are naive (the export's local clock); ``date`` columns are
calendar days. A row "exists" at an as-of date ``t`` only if its own timestamp is
``< t`` (see ``features/snapshots.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.errors import ConfigError

ColumnType = Literal["string", "timestamp", "date", "double", "bigint", "boolean"]

#: DuckDB type each contract type is cast to.
DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "double": "DOUBLE",
    "bigint": "BIGINT",
    "boolean": "BOOLEAN",
}


@dataclass(frozen=True)
class Column:
    """One column of a contract table.

    Attributes:
        name: canonical column name.
        type: contract type; values are cast with ``TRY_CAST`` and a value that does
            not cast is a ``DataContractError`` naming table, column and the row.
        required: the column must be present in the source table.
        nullable: a null is allowed; a null in a non-nullable column sets the row
            aside (reason ``missing_<column>``).
        description: what the column means, with its unit.
        money: an amount of money; ``Settings.column_units`` may say the export gives it in
            cents (``MONEY_UNITS``).
        words: text values read as a value of the column's type (None: no value), besides the
            values that cast; e.g. a helpdesk's satisfaction rating written as words.
        null_is: another column of the same row whose value a null here takes (an invoice with
            no due date is due when issued: billing systems such as Stripe leave it empty for
            invoices charged automatically).
        bands: text values that are bands read as a number (``11-50``: its midpoint, 31; ``5000+``:
            its lower bound), as CRMs export a company's size (``features.bands``).
    """

    name: str
    type: ColumnType
    required: bool = True
    nullable: bool = False
    description: str = ""
    money: bool = False
    null_is: str | None = None
    words: tuple[tuple[str, float | None], ...] = ()
    bands: bool = False


#: Satisfaction ratings as help desks export them, on the 1-5 CSAT scale: Zendesk's ``Satisfaction Score`` (good
#: and bad are its top and bottom; offered (asked, not answered) and unoffered (not asked) are no rating), and
#: Freshdesk's ``Satisfaction rating`` of three answers (Happy / Neutral / Unhappy, and the older Awesome / Just
#: Okay / Not Good: top, middle, bottom; a probe's Freshdesk export was refused on them).
SATISFACTION_WORDS: tuple[tuple[str, float | None], ...] = (
    ("good", 5.0), ("bad", 1.0), ("offered", None), ("unoffered", None),
    ("happy", 5.0), ("neutral", 3.0), ("unhappy", 1.0), ("awesome", 5.0), ("just okay", 3.0), ("not good", 1.0))


@dataclass(frozen=True)
class Table:
    """One contract table.

    Attributes:
        name: canonical table name (also the file stem: ``events.parquet``).
        columns: its columns in canonical order.
        required: the table must exist in the source (``subscriptions``, ``events``).
        time_column: the column that dates a row (for the data end and point in time).
        description: what one row is.
    """

    name: str
    columns: tuple[Column, ...]
    required: bool = False
    time_column: str | None = None
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "accounts",
            (
                Column("account_id", "string", description="account key"),
                Column("signed_at", "date", required=False, nullable=True,
                       description="first contract signature"),
                Column("industry", "string", required=False, nullable=True),
                Column("employees", "bigint", required=False, nullable=True, bands=True,
                       description="company head count; a band such as 11-50 (its midpoint) or "
                                   "5000+ (its lower bound), as CRMs export it, is read"),
                Column("region", "string", required=False, nullable=True),
                Column("channel", "string", required=False, nullable=True,
                       description="acquisition channel"),
                Column("csm", "string", required=False, nullable=True,
                       description="customer-success manager who owns the account"),
                Column("segment", "string", required=False, nullable=True,
                       description="account class, e.g. A/B/C"),
            ),
            description="one row per account: static CRM attributes",
        ),
        Table(
            "subscriptions",
            (
                Column("account_id", "string"),
                Column("start_date", "date", description="first day of the term"),
                Column("end_date", "date", nullable=True,
                       description="first day no longer covered (exclusive); null = open-ended"),
                Column("mrr", "double", description="monthly recurring revenue of the term", money=True),
                Column("plan", "string", required=False, nullable=True),
                Column("seats", "bigint", required=False, nullable=True),
            ),
            required=True,
            time_column="start_date",
            description="one row per term (billing period or contract)",
        ),
        Table(
            "events",
            (
                Column("account_id", "string"),
                Column("user_id", "string", required=False, nullable=True),
                Column("occurred_at", "timestamp"),
                Column("event_type", "string"),
                Column("quantity", "double", required=False, nullable=True,
                       description="default 1"),
            ),
            time_column="occurred_at",
            description="product usage and marketing touches (optional: without them the features are "
                        "those of the terms, tickets, invoices and the accounts' columns)",
        ),
        Table(
            "tickets",
            (
                Column("account_id", "string"),
                Column("opened_at", "timestamp"),
                Column("resolved_at", "timestamp", nullable=True),
                Column("priority", "string", required=False, nullable=True,
                       description="low / normal / high / urgent"),
                Column("csat", "double", required=False, nullable=True, words=SATISFACTION_WORDS,
                       description="satisfaction 1-5, given at resolution (good = 5, bad = 1, "
                                   "offered / unoffered = none: Zendesk's words; happy = 5, neutral = 3, "
                                   "unhappy = 1: Freshdesk's)"),
                Column("category", "string", required=False, nullable=True),
            ),
            time_column="opened_at",
            description="support tickets",
        ),
        Table(
            "invoices",
            (
                Column("account_id", "string"),
                Column("issued_at", "date"),
                Column("due_at", "date", nullable=True, null_is="issued_at",
                       description="null = due when issued (charged automatically)"),
                Column("paid_at", "date", nullable=True, description="null = unpaid"),
                Column("amount", "double", money=True),
                Column("status", "string", required=False, nullable=True,
                       description="void, draft or canceled: not owed (the row is set aside, unless it has a "
                                   "written_off_at); other values: not read"),
                Column("written_off_at", "date", required=False, nullable=True,
                       description="the day an unpaid invoice stopped being owed: voided or written off after it "
                                   "went unpaid (Stripe's status_transitions.voided_at or marked_uncollectible_at); "
                                   "overdue until then. null = owed until paid"),
            ),
            time_column="issued_at",
            description="billing",
        ),
        Table(
            "churn_feedback",
            (
                Column("account_id", "string"),
                Column("churned_at", "date"),
                Column("reason_category", "string", required=False, nullable=True,
                       description="product / price / service / competitor / business_change / other"),
                Column("avoidable", "boolean", required=False, nullable=True),
                Column("notes", "string", required=False, nullable=True),
            ),
            time_column="churned_at",
            description="exit interviews (ARTICLE §2)",
        ),
        Table(
            "interventions",
            (
                Column("account_id", "string"),
                Column("occurred_at", "timestamp"),
                Column("playbook", "string", required=False, nullable=True),
                Column("tier", "string", required=False, nullable=True),
                Column("owner", "string", required=False, nullable=True),
            ),
            time_column="occurred_at",
            description="what the CS team did (closed loop)",
        ),
    )
}

#: Tables whose rows must belong to a known account.
#: The raw subscriptions with the contract's reading of their start date in front (``DATED_START``;
#: a view made with the typed views, ``features.validate``): the company's own subscription columns
#: are read from it (``features.profile``), each term dated as ``clean_subscriptions`` dates it,
#: whatever format the export writes its dates in; Spark is handed it under the same name.
DATED_SUBSCRIPTIONS = "dated_subscriptions"
DATED_START = "churnwatch_start_date"
#: Optional tables that are refused when present without rows, or with every row set aside (an export
#: that failed), with what a source without them lacks: the events are optional (a CRM, a help desk
#: and invoices without product analytics), but an empty event log is a broken export more often than
#: a company without any.
NOT_EMPTY = {"events": "product events"}

KEYED_TABLES = ("subscriptions", "events", "tickets", "invoices", "churn_feedback", "interventions")


#: Units a money column can be exported in -> the divisor that makes it currency units
#: (a Stripe export's ``amount`` 2900 in cents is 29.00).
MONEY_UNITS: dict[str, int] = {"currency": 1, "cents": 100}


def money_columns() -> dict[str, list[str]]:
    """table -> its money columns (``Column.money``)."""
    return {t.name: [c.name for c in t.columns if c.money] for t in TABLES.values() if any(c.money for c in t.columns)}


def check_column_units(units: dict[str, dict[str, str]]) -> None:
    """``Settings.column_units`` names only money columns of contract tables (by their contract names).

    Raises:
        ConfigError: an unknown table, or a column that is not a money column.
    """
    money = money_columns()
    for table, columns in units.items():
        if table not in money:
            raise ConfigError(f"column_units: {table!r} has no money column (money columns: "
                              + ", ".join(f"{t}.{c}" for t, cs in money.items() for c in cs) + ")")
        for column in columns:
            if column not in money[table]:
                raise ConfigError(f"column_units: {table}.{column} is not a money column of the contract "
                                  f"({', '.join(money[table])}; use the contract's name, not the export's)")


def check_column_mapping(mapping: dict[str, dict[str, str]]) -> None:
    """``Settings.column_mapping`` names only contract tables and columns.

    Raises:
        ConfigError: an unknown table, or a mapping onto a column the contract does not have.
    """
    for table, columns in mapping.items():
        if table not in TABLES:
            raise ConfigError(f"column_mapping: unknown table {table!r} (known: {', '.join(TABLES)})")
        for source, canonical in columns.items():
            if canonical not in TABLES[table].column_names:
                # a probe's Stripe customers: "Name": name, the README's word for the accounts' names
                hint = (f"; the accounts' names are read from a column named name, or the one "
                        f"email: {{name_column: {source!r}}} names in churnwatch.yaml"
                        if table == "accounts" and canonical in ("name", "company_name", "display_name") else "")
                raise ConfigError(f"column_mapping: {table}: {canonical!r} is not a column of the contract "
                                  f"({', '.join(TABLES[table].column_names)}){hint}")
