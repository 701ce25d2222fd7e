"""The score history, alerts, deliveries and retention tasks in the store: every query of those
tables. Their names and DDL are declared with the snapshots' in :mod:`core.store`; connections
come from ``core.store.connect``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from core.store import (
    ALERT_DDL,
    ALERTS,
    DELIVERIES,
    HISTORY,
    HISTORY_DDL,
    SNAPSHOTS,
    TASK_COLUMNS,
    TASKS,
    connect,
    has_table,
)

# --- score history ---------------------------------------------------------------------

def write_history(store: Path, history: pd.DataFrame) -> int:
    """Replace the history rows of the dates in ``history``; returns rows written."""
    with connect(store) as con:
        con.execute(HISTORY_DDL)
        con.register("incoming", history)
        con.execute("BEGIN TRANSACTION")
        con.execute(f"DELETE FROM {HISTORY} WHERE as_of IN (SELECT DISTINCT as_of FROM incoming)")
        con.execute(f"INSERT INTO {HISTORY} SELECT * FROM incoming")
        con.execute("COMMIT")
        con.unregister("incoming")
    return len(history)


def read_history(store: Path, as_of: dt.date | None = None) -> pd.DataFrame:
    """The score history (or one date's rows), ordered by as_of then account_id."""
    with connect(store, read_only=True) as con:
        if as_of:
            return con.execute(f"SELECT * FROM {HISTORY} WHERE as_of = ? ORDER BY account_id", [as_of]).df()
        return con.execute(f"SELECT * FROM {HISTORY} ORDER BY as_of, account_id").df()


def _where(accounts: list[str] | None = None, dates: list[dt.date] | None = None,
           until: dt.date | None = None) -> tuple[str, list]:
    """SQL condition and parameters on ``account_id`` / ``as_of`` (score history and snapshots)."""
    conds, params = ["TRUE"], []
    if accounts is not None:
        if len(accounts) == 1:
            conds.append("account_id = ?")
            params.append(str(accounts[0]))
        else:
            conds.append("account_id IN (SELECT unnest(?::VARCHAR[]))")
            params.append([str(a) for a in accounts])
    if dates is not None:
        conds.append("as_of IN (SELECT unnest(?::DATE[]))")
        params.append(list(dates))
    if until is not None:
        conds.append("as_of <= ?")
        params.append(until)
    return " AND ".join(conds), params


def history_has_rows(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the score history exists and holds a row."""
    try:
        return con.execute(f"SELECT 1 FROM {HISTORY} LIMIT 1").fetchone() is not None
    except duckdb.CatalogException:
        return False


def history_dates(con: duckdb.DuckDBPyConnection) -> list[dt.date]:
    """The scoring dates, oldest first."""
    return [r[0] for r in con.execute(f"SELECT DISTINCT as_of FROM {HISTORY} ORDER BY 1").fetchall()]


def history_accounts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The scored account ids, sorted."""
    return [r[0] for r in con.execute(f"SELECT DISTINCT account_id FROM {HISTORY} ORDER BY 1").fetchall()]


def history_rows(con: duckdb.DuckDBPyConnection, *, accounts: list[str] | None = None,
                 dates: list[dt.date] | None = None, until: dt.date | None = None, last: int | None = None,
                 columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Score-history rows filtered in SQL, ordered by as_of then account_id (``last``: each
    account's ``last`` latest scores after the other filters; ``columns``: default all)."""
    cond, params = _where(accounts, dates, until)
    cols = "*" if columns is None else ", ".join(columns)
    qualify = ""
    if last is not None:
        qualify = "QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY as_of DESC) <= ?"
        params.append(int(last))
    return con.execute(f"SELECT {cols} FROM {HISTORY} WHERE {cond} {qualify} "
                       "ORDER BY as_of, account_id", params).df()


def history_profiles(con: duckdb.DuckDBPyConnection, profile_columns: tuple[str, ...], *,
                     accounts: list[str] | None = None, dates: list[dt.date] | None = None) -> pd.DataFrame:
    """Scored (account, as-of) pairs with the snapshot's ``profile_columns`` and ``_found`` (False
    when the snapshot row is gone; every profile column NULL then)."""
    cond, params = _where(accounts, dates)
    if has_table(con, SNAPSHOTS):
        return con.execute(f"""
            WITH h AS (SELECT DISTINCT account_id, as_of FROM {HISTORY} WHERE {cond}),
                 s AS (SELECT account_id, as_of, {", ".join(profile_columns)} FROM {SNAPSHOTS} WHERE {cond})
            SELECT h.account_id, h.as_of, {", ".join("s." + c for c in profile_columns)},
                   s.account_id IS NOT NULL AS _found
            FROM h LEFT JOIN s ON s.account_id = h.account_id AND s.as_of = h.as_of
            ORDER BY h.as_of, h.account_id""", params + params).df()
    nulls = ", ".join(f"NULL AS {c}" for c in profile_columns)
    return con.execute(f"SELECT DISTINCT account_id, as_of, {nulls}, FALSE AS _found FROM {HISTORY} "
                       f"WHERE {cond} ORDER BY as_of, account_id", params).df()


# --- alerts, deliveries and retention tasks -------------------------------------------------

def ensure_alert_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the alert, delivery and task tables when missing."""
    for ddl in ALERT_DDL:
        con.execute(ddl)


def history_with_segment(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every score: account_id, as_of, health_score, tier and the snapshot's segment (null for a
    store scored from a flat table, which has no snapshots)."""
    if not has_table(con, SNAPSHOTS):
        return con.execute(f"SELECT account_id, as_of, health_score, tier, NULL AS segment FROM {HISTORY}").df()
    return con.execute(f"""
        SELECT h.account_id, h.as_of, h.health_score, h.tier, s.segment
        FROM {HISTORY} h LEFT JOIN {SNAPSHOTS} s ON s.account_id = h.account_id AND s.as_of = h.as_of
    """).df()


def alert_exists(con: duckdb.DuckDBPyConnection, alert_id: str) -> bool:
    return bool(con.execute(f"SELECT count(*) FROM {ALERTS} WHERE alert_id = ?", [alert_id]).fetchone()[0])


def insert_alert(con: duckdb.DuckDBPyConnection, values: list) -> None:
    """One alert row (the ``alerts`` columns in order)."""
    con.execute(f"INSERT INTO {ALERTS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)


def insert_delivery(con: duckdb.DuckDBPyConnection, alert_id: str, webhook: str) -> None:
    """A pending delivery of ``alert_id`` to ``webhook``."""
    con.execute(f"INSERT INTO {DELIVERIES} VALUES (?, ?, 'pending', 0, NULL, NULL)", [alert_id, webhook])


def insert_task(con: duckdb.DuckDBPyConnection, values: list) -> None:
    """An open retention task: task_id, alert_id, account_id, tier, action, owner, due_at, created_at."""
    con.execute(f"INSERT INTO {TASKS} VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)", values)


def pending_deliveries(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Pending deliveries with their alerts, oldest alert first."""
    return con.execute(f"""
        SELECT d.alert_id, d.webhook, d.attempts, a.* EXCLUDE (alert_id)
        FROM {DELIVERIES} d JOIN {ALERTS} a USING (alert_id) WHERE d.status = 'pending'
        ORDER BY a.created_at""").df()


def mark_delivery(con: duckdb.DuckDBPyConnection, alert_id: str, webhook: str, attempts: int,
                  error: str | None) -> None:
    """Record a delivery attempt: delivered when ``error`` is None, else still pending with the error."""
    if error is None:
        con.execute(f"UPDATE {DELIVERIES} SET status = 'delivered', attempts = ?, last_error = NULL, "
                    "delivered_at = ? WHERE alert_id = ? AND webhook = ?",
                    [attempts, dt.datetime.now(), alert_id, webhook])
    else:
        con.execute(f"UPDATE {DELIVERIES} SET attempts = ?, last_error = ? WHERE alert_id = ? AND webhook = ?",
                    [attempts, error, alert_id, webhook])


def open_tasks(store: Path) -> pd.DataFrame:
    """Open retention tasks, earliest due first (none before the first alert)."""
    with connect(store, read_only=True) as con:
        try:
            return con.execute(f"SELECT * FROM {TASKS} WHERE status = 'open' ORDER BY due_at").df()
        except duckdb.CatalogException:  # no task table yet: no tasks
            return pd.DataFrame(columns=list(TASK_COLUMNS))
