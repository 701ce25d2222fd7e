"""The score history in the store and what alerts read of it: every query of those tables
(alerts, tasks and deliveries live in the operational store, ``workflow``). Their names and
DDL are declared with the snapshots' in :mod:`core.store`; connections come from
``core.store.connect``.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import duckdb
import pandas as pd

from core.engine import transaction
from core.errors import StoreError
from core.store import HISTORY, HISTORY_DDL, SNAPSHOTS, connect, has_table, snapshot_columns

log = logging.getLogger(__name__)

# --- score history ---------------------------------------------------------------------

def replace_history(con: duckdb.DuckDBPyConnection, history: pd.DataFrame) -> int:
    """Inside the caller's transaction, the rows of ``history`` replace every stored row of
    their as-of dates (whatever the model version), so a re-run after a kill completes the
    date and never duplicates an (account, as-of) pair. Returns rows written.

    Raises:
        StoreError: ``history`` holds an (account, as-of) pair twice (named).
    """
    con.execute(HISTORY_DDL)
    if history.empty:
        return 0
    twice = history[history.duplicated(["account_id", "as_of"])]
    if len(twice):
        first = twice.iloc[0]
        raise StoreError(f"score history rows to write hold {len(twice):,} repeated (account, as-of) pairs, "
                         f"e.g. {first['account_id']} as of {first['as_of']}")
    con.register("incoming_history", history)
    try:
        con.execute(f"DELETE FROM {HISTORY} WHERE as_of IN (SELECT DISTINCT as_of FROM incoming_history)")
        con.execute(f"INSERT INTO {HISTORY} SELECT * FROM incoming_history")
    finally:
        con.unregister("incoming_history")
    return len(history)


def write_history(store: Path, history: pd.DataFrame) -> int:
    """Replace the history rows of the dates in ``history`` in one transaction; returns rows written."""
    with connect(store) as con, transaction(con):
        return replace_history(con, history)


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


def first_scored_high_risk(con: duckdb.DuckDBPyConnection) -> int:
    """Accounts scored once, at high risk, by the newest scoring date, whose score is no new customer's: no
    earlier tier to have entered it from, so no alert. A new customer's is a first score made after an
    earlier date had been scored (by ``scored_at``, or by the dates where the history has none), and it
    alerts (``workflow.alerts._new_customers``, the same rule); so these are the first run's, or a backfill's
    later date. One scored once on an earlier date only is no longer a customer (a probe's backfill: 188 of
    the 238 counted had left)."""
    if not history_has_rows(con):
        return 0
    stamped = con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = 'scored_at'",
                          [HISTORY]).fetchone()[0] and con.execute(
        f"SELECT count(scored_at) FROM {HISTORY}").fetchone()[0]
    earlier = "f.as_of < a.as_of AND f.t <= a.s" if stamped else "f.as_of < a.as_of"  # the same second: one run
    scored_at = "scored_at" if stamped else "CAST(NULL AS TIMESTAMP)"
    return int(con.execute(f"""
        WITH a AS (SELECT account_id, count(*) AS n, max(tier) AS tier, max(as_of) AS as_of, max({scored_at}) AS s
                   FROM {HISTORY} GROUP BY account_id),
             f AS (SELECT as_of, min({scored_at}) AS t FROM {HISTORY} GROUP BY as_of)
        SELECT count(*) FROM a
        WHERE n = 1 AND tier = 'high_risk' AND as_of = (SELECT max(as_of) FROM {HISTORY})
          AND NOT EXISTS (SELECT 1 FROM f WHERE {earlier})""").fetchone()[0])


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


# --- what alerts read -----------------------------------------------------------------------

def history_with_segment(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every score: account_id, as_of, health_score, tier, the snapshot's segment (null for a
    store scored from a flat table, which has no snapshots) and when it was scored; no rows before
    the first score."""
    if not has_table(con, HISTORY):
        return pd.DataFrame(columns=["account_id", "as_of", "health_score", "tier", "segment", "scored_at"])
    stamped = con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = 'scored_at'",
                          [HISTORY]).fetchone()[0]
    scored_at = "h.scored_at" if stamped else "CAST(NULL AS TIMESTAMP)"  # a hand-built history may lack it
    if not has_table(con, SNAPSHOTS) or "segment" not in snapshot_columns(con):
        return con.execute(f"SELECT account_id, as_of, health_score, tier, NULL AS segment, {scored_at} AS scored_at "
                           f"FROM {HISTORY} h").df()
    return con.execute(f"""
        SELECT h.account_id, h.as_of, h.health_score, h.tier, s.segment, {scored_at} AS scored_at
        FROM {HISTORY} h LEFT JOIN {SNAPSHOTS} s ON s.account_id = h.account_id AND s.as_of = h.as_of
    """).df()


FACT_COLUMNS = ("account_id", "as_of", "churn_probability", "reasons_en", "reasons_zh", "mrr", "csm")


def alert_facts(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame) -> pd.DataFrame:
    """For (account_id, as_of) pairs: the score's churn probability and reasons (JSON, English and
    Chinese) and the snapshot's MRR and CSM (null where the store has no snapshots or not those
    columns). Columns ``FACT_COLUMNS``; pairs without a score are left out."""
    found = con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE table_name IN (?, ?) "
                        "AND database_name = current_database()", [HISTORY, SNAPSHOTS]).fetchall()
    history = {c for t, c in found if t == HISTORY}
    snap = {c for t, c in found if t == SNAPSHOTS}
    if keys.empty or not history:
        return pd.DataFrame(columns=list(FACT_COLUMNS))
    pick = [f"h.{c}" if c in history else f"NULL AS {c}" for c in ("churn_probability", "reasons_en", "reasons_zh")]
    pick += [f"s.{c}" if c in snap else f"NULL AS {c}" for c in ("mrr", "csm")]
    join = (f"LEFT JOIN {SNAPSHOTS} s ON s.account_id = h.account_id AND s.as_of = h.as_of" if snap else "")
    wanted = keys[["account_id", "as_of"]].astype({"account_id": str}).assign(as_of=lambda k: pd.to_datetime(
        k["as_of"]).dt.date).drop_duplicates()
    con.register("wanted_facts", wanted)
    try:
        return con.execute(f"""
            SELECT h.account_id, h.as_of, {", ".join(pick)}
            FROM {HISTORY} h JOIN wanted_facts w ON w.account_id = h.account_id AND w.as_of = h.as_of {join}
        """).df()
    finally:
        con.unregister("wanted_facts")
