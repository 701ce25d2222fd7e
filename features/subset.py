"""The contract checks over a few accounts' rows (what ``explain`` and ``report`` read).

``load_clean_subset`` applies the same checks as ``features.validate.validate_tables`` to the
rows of the wanted accounts only, so showing fifty accounts does not re-validate the whole
event log.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from core.settings import Settings
from features.contract import TABLES
from features.dates import check_date_formats, check_own_date_format_keys
from features.rules import ACCOUNT_DATED, create_account_first
from features.sources import open_source
from features.validate import (
    clean_columns,
    create_empty_clean_table,
    create_typed_view,
    known_accounts_table,
    q,
    set_aside_case,
)


def load_clean_subset(con: duckdb.DuckDBPyConnection, settings: Settings, account_ids: list[str],
                      tables: dict[str, tuple[dt.date | None, dt.date | None]]) -> set[str]:
    """``clean_<table>`` for each of ``tables``: the rows of ``account_ids`` only, and of ``[since, before)``;
    returns the tables the source has (a table it lacks is created empty).

    ``tables`` maps a contract table to ``(since, before)`` bounds on its time column
    (None: unbounded). The same contract checks as ``features.validate.validate_tables``
    (column mapping, type checks, casting, the set-aside reasons incl. unknown accounts,
    ``before_account`` and the configured data end, the values set aside), but over the
    wanted rows only, so showing fifty accounts does not re-validate the whole event log.
    Every set-aside reason is row-local or decided per account (``duplicate_account``,
    ``unknown_account``, ``before_account`` from the account's own first term or signature),
    so filtering by account first keeps exactly the rows the full check keeps. A table the
    source lacks is empty.

    Raises:
        DataContractError: as ``validate_tables`` (a missing column, a value of the wrong type).
    """
    check_date_formats(con, settings)
    src = open_source(settings.data)
    con.execute("CREATE OR REPLACE TEMP TABLE wanted AS SELECT DISTINCT unnest(?::VARCHAR[]) AS account_id",
                [[str(a) for a in account_ids]])
    has_accounts = src.load(con, "accounts")
    dated = [t for t in tables if t in ACCOUNT_DATED]
    # accounts and subscriptions first, whole (for the wanted accounts): each account's first date
    # (``before_account``) is read from them; bounds on subscriptions apply after
    needed = ["accounts", "subscriptions"] if dated else ["accounts"] if has_accounts else ["subscriptions"]
    needed += [t for t in tables if t not in needed]
    loaded = {"accounts"} if has_accounts else set()
    for name in needed:
        table = TABLES[name]
        if dated and name == dated[0]:  # accounts and subscriptions are clean
            create_account_first(con, known_accounts_table(name, has_accounts))
        if name not in loaded:
            if name == "accounts" or not src.load(con, name):
                create_empty_clean_table(con, name)
                continue
            loaded.add(name)
        create_typed_view(con, name, settings)
        first = name in dated
        case = set_aside_case(name, settings.data_end, known_accounts_table(name, has_accounts), account_first=first)
        where, params = ["account_id IN (SELECT account_id FROM wanted)"], []
        since, before = (None, None) if name == "subscriptions" and dated else tables.get(name, (None, None))
        if table.time_column and since is not None:
            where.append(f"{q(table.time_column)} >= ?")
            params.append(since)
        if table.time_column and before is not None:
            where.append(f"{q(table.time_column)} < ?")
            params.append(before)
        rows = f"(SELECT * FROM typed_{name} WHERE {' AND '.join(where)})"
        if first:
            rows = (f"(SELECT x.*, af.first_day AS _account_first, af.known AS _account_known FROM {rows} x "
                    "LEFT JOIN account_first af ON af.account_id = x.account_id)")
        con.execute(f"CREATE OR REPLACE TEMP TABLE clean_{name} AS SELECT {', '.join(clean_columns(name))} FROM ("
                    f"SELECT *, {case} AS _reason FROM {rows}) WHERE _reason IS NULL", params)
    # an own column's date format names a column of the file (the full build checks it in features.profile)
    check_own_date_format_keys(con, settings, sorted(loaded))
    since, before = tables.get("subscriptions", (None, None))
    start = q(TABLES["subscriptions"].time_column)
    if dated and since is not None:
        con.execute(f"DELETE FROM clean_subscriptions WHERE {start} < ?", [since])
    if dated and before is not None:
        con.execute(f"DELETE FROM clean_subscriptions WHERE {start} >= ?", [before])
    return loaded
