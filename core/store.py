"""The snapshot store: a DuckDB file keyed by (account_id, as_of).

Tables:

* ``snapshots``: keys, ``churn_label`` (null = unlabelled), ``labelled`` and every
  feature in catalogue order.
* ``snapshot_meta``: one row per build: the catalogue as JSON, data start and end,
  horizon, grace, source description, input hash, build time, the data source as
  given (``data_source``: relative to the home folder when inside it, so a copied home
  still works; a database URL without its password), the ``--config`` file given to
  ``features`` (``config_source``, the same way) and the company's own columns used and
  not used (``profile``). The latest row describes the ``snapshots`` columns.

Over 400 lines: every statement on the store's tables is written here, the one home of its schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from core.engine import LOCK_WAIT_SECONDS, rollback, storage_errors, while_held
from core.errors import StoreError
from core.files import atomic_write_text, storage_error
from core.time import Horizon

log = logging.getLogger(__name__)

SNAPSHOTS = "snapshots"
#: a build in account partitions (``features.pipeline``) appends each partition's rows here, in the
#: store itself; ``write_snapshots`` then renames it to ``snapshots`` (or moves its rows there)
SNAPSHOTS_STAGED = "snapshots_staged"
META = "snapshot_meta"
HISTORY = "score_history"
TABLE_ROWS = "table_rows"  # the feature values of a flat table scored with `score --table`
WATERFALLS = "score_waterfalls"  # each score's SHAP waterfall as JSON (serving.waterfalls)

HISTORY_DDL = f"""
CREATE TABLE IF NOT EXISTS {HISTORY} (
    account_id VARCHAR, as_of DATE, churn_probability DOUBLE, health_score INTEGER, tier VARCHAR,
    reasons_en JSON, strengths_en JSON, reasons_zh JSON, strengths_zh JSON,
    playbook_action VARCHAR, playbook_owner VARCHAR, respond_within VARCHAR,
    model_version VARCHAR, scored_at TIMESTAMP)
"""

HISTORY_COLUMNS = ("account_id", "as_of", "churn_probability", "health_score", "tier", "reasons_en", "strengths_en",
                   "reasons_zh", "strengths_zh", "playbook_action", "playbook_owner", "respond_within",
                   "model_version", "scored_at")

@dataclass(frozen=True)
class SnapshotMeta:
    """One build's metadata. ``catalogue_json`` is the feature catalogue as JSON
    (``features.spec.Catalogue.to_json``; read it back with ``Catalogue.from_json``)."""

    catalogue_json: str
    data_start: dt.date
    data_end: dt.date
    horizon_days: int
    grace_days: int
    source: str
    input_hash: str
    built_at: dt.datetime
    data_source: str | None = None
    profile: dict = field(default_factory=dict)
    config_source: str | None = None  # the --config file the build read, recorded as data_source is

    @property
    def horizon(self) -> Horizon:
        """The horizon the snapshots were labelled with."""
        return Horizon.of(self)


def source_for_store(data: str | Path, home: Path | None) -> str:
    """How a data source is remembered: a path inside ``home`` relative to it, another
    path absolute, a URL as given but without its password (never stored)."""
    text = str(data)
    if "://" in text:
        from sqlalchemy.engine import URL, make_url
        from sqlalchemy.exc import ArgumentError

        try:
            u = make_url(text)
        except ArgumentError:  # not a SQLAlchemy URL: keep it as given
            return text
        bare = URL.create(u.drivername, username=u.username, host=u.host, port=u.port, database=u.database,
                          query=u.query)
        return bare.render_as_string(hide_password=False)
    path = Path(text).expanduser().resolve()
    if home is not None:
        try:
            return path.relative_to(Path(home).resolve()).as_posix() or "."
        except ValueError:
            pass
    return str(path)


def source_from_store(recorded: str, home: Path | None) -> str:
    """The inverse of ``source_for_store``: a relative path is taken inside ``home``."""
    if "://" in recorded or Path(recorded).is_absolute() or home is None:
        return recorded
    return str((Path(home) / recorded).resolve())


def recorded_source(store: Path, home: Path | None, what: str = "data_source") -> str | None:
    """The data source (``what``: ``data_source``) or the ``--config`` file (``config_source``) the
    latest ``features`` build of ``store`` read, or None (no store, or an older store without the
    record). A store another process holds raises StorageError."""
    if not store.exists():
        return None
    try:
        with connect(store, read_only=True) as con:  # a store held by another process: StorageError
            recorded = getattr(read_meta(con), what)
    except (duckdb.Error, StoreError) as exc:
        log.info("no recorded %s in %s: %s", what, store, exc)
        return None
    return source_from_store(recorded, home) if recorded else None


def connect(store: Path, read_only: bool = False,
            wait_seconds: float = LOCK_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """Open the store. A store another process holds is retried for ``wait_seconds``.

    Raises:
        StoreError: ``read_only`` and the store does not exist.
        StorageError: the store cannot be opened: disk full, read-only file system, no
            permission, or another process still holds it (its PID named).
    """
    if read_only and not store.exists():
        raise StoreError(f"store {store} does not exist: run `churnwatch features` first")
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(store.parent, exc) from exc
    return while_held(lambda: duckdb.connect(str(store), read_only=read_only), store, wait_seconds)


def write_snapshots(con: duckdb.DuckDBPyConnection, rows_table: str, meta: SnapshotMeta,
                    replace_all: bool) -> int:
    """Write ``rows_table`` into ``snapshots``; same-date rows are replaced, never duplicated.

    ``replace_all`` rebuilds the table (the full schedule); otherwise rows of the same
    as-of dates are deleted and the new ones inserted by column name (on-demand dates).
    ``rows_table`` may be a view (the feature build's final projection): it is read once, straight
    into the new table, or, to replace some dates, copied once first (its dates, then its rows).
    ``rows_table`` ``SNAPSHOTS_STAGED`` is the store's own table of a build made in parts: renamed
    (``replace_all``: no copy of the rows) or moved into ``snapshots``, and gone after.
    Returns the number of rows written.
    """
    with storage_errors(store_path(con)):
        return _write_snapshots(con, rows_table, meta, replace_all)


def store_path(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The file of ``con``'s current database (None in memory)."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return Path(row[0]) if row and row[0] else None


def _write_snapshots(con: duckdb.DuckDBPyConnection, rows_table: str, meta: SnapshotMeta, replace_all: bool) -> int:
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
                         "AND database_name = current_database()", [SNAPSHOTS]).fetchone()[0]
    view = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND temporary",
                       [rows_table]).fetchone()[0]
    con.execute("BEGIN TRANSACTION")
    try:
        staged = rows_table == SNAPSHOTS_STAGED
        if staged and (replace_all or not exists):
            con.execute(f"DROP TABLE IF EXISTS {SNAPSHOTS}")
            con.execute(f"ALTER TABLE {SNAPSHOTS_STAGED} RENAME TO {SNAPSHOTS}")
            written = con.execute(f"SELECT count(*) FROM {SNAPSHOTS}").fetchone()[0]
        elif replace_all or not exists:
            con.execute(f"CREATE OR REPLACE TABLE {SNAPSHOTS} AS SELECT * FROM {rows_table}")
            written = con.execute(f"SELECT count(*) FROM {SNAPSHOTS}").fetchone()[0]
        else:
            old = [r[0] for r in con.execute(f"DESCRIBE {SNAPSHOTS}").fetchall()]
            new = [r[0] for r in con.execute(f"DESCRIBE {rows_table}").fetchall()]
            if old != new:
                gone, added = [c for c in old if c not in new], [c for c in new if c not in old]
                what = "; ".join(part for part in (
                    f"missing from this build: {', '.join(gone[:10])}" + (f" and {len(gone) - 10} more"
                                                                          if len(gone) > 10 else "") if gone else "",
                    f"new in this build: {', '.join(added[:10])}" + (f" and {len(added) - 10} more"
                                                                     if len(added) > 10 else "") if added else "",
                ) if part) or "the same columns in another order"
                raise StoreError(
                    f"the store's snapshots have different columns than this build ({len(old)} vs {len(new)}; "
                    f"{what}: an event type or an own column of the data is not what the stored snapshots "
                    "were built from); rebuild all dates (`churnwatch features` without --as-of)")
            if view:  # read twice below (its dates, its rows): computed once
                con.execute(f"CREATE OR REPLACE TEMP TABLE {rows_table}_written AS SELECT * FROM {rows_table}")
                rows_table = f"{rows_table}_written"
            con.execute(f"DELETE FROM {SNAPSHOTS} WHERE as_of IN (SELECT DISTINCT as_of FROM {rows_table})")
            con.execute(f"INSERT INTO {SNAPSHOTS} SELECT * FROM {rows_table}")
            written = con.execute(f"SELECT count(*) FROM {rows_table}").fetchone()[0]
            if staged:
                con.execute(f"DROP TABLE {SNAPSHOTS_STAGED}")
        con.execute(f"""CREATE TABLE IF NOT EXISTS {META} (
            built_at TIMESTAMP, catalogue JSON, data_start DATE, data_end DATE,
            horizon_days INTEGER, grace_days INTEGER, source VARCHAR, input_hash VARCHAR)""")
        # stores written before these columns existed get them on their next build
        con.execute(f"ALTER TABLE {META} ADD COLUMN IF NOT EXISTS data_source VARCHAR")
        con.execute(f"ALTER TABLE {META} ADD COLUMN IF NOT EXISTS profile JSON")
        con.execute(f"ALTER TABLE {META} ADD COLUMN IF NOT EXISTS config_source VARCHAR")
        config_source = meta.config_source
        if config_source is None and not replace_all:  # a build of some dates (score, monitor) keeps the record
            last = con.execute(f"SELECT config_source FROM {META} ORDER BY built_at DESC LIMIT 1").fetchone()
            config_source = last[0] if last else None
        con.execute(f"INSERT INTO {META} (built_at, catalogue, data_start, data_end, horizon_days, grace_days, "
                    "source, input_hash, data_source, profile, config_source) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [meta.built_at, meta.catalogue_json, meta.data_start, meta.data_end,
                     meta.horizon_days, meta.grace_days, meta.source, meta.input_hash, meta.data_source,
                     json.dumps(meta.profile, ensure_ascii=False), config_source])
        con.execute("COMMIT")
    except Exception:
        rollback(con)
        if rows_table == SNAPSHOTS_STAGED:  # refused (other columns): the stored snapshots stay, the parts go
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DROP TABLE IF EXISTS {SNAPSHOTS_STAGED}")
        raise
    return written


def read_meta(con: duckdb.DuckDBPyConnection) -> SnapshotMeta:
    """The latest build's metadata. Raises StoreError on an empty store."""
    try:
        cols = {r[0] for r in con.execute(f"DESCRIBE {META}").fetchall()}
        extra = ", data_source, profile" if "data_source" in cols else ", NULL, NULL"
        extra += ", config_source" if "config_source" in cols else ", NULL"
        row = con.execute(f"SELECT built_at, catalogue, data_start, data_end, horizon_days, grace_days, "
                          f"source, input_hash{extra} FROM {META} ORDER BY built_at DESC LIMIT 1").fetchone()
    except duckdb.CatalogException as exc:
        raise StoreError("the store has no snapshots: run `churnwatch features` first") from exc
    if row is None:
        raise StoreError("the store has no snapshots: run `churnwatch features` first")
    return SnapshotMeta(catalogue_json=row[1], data_start=row[2], data_end=row[3],
                        horizon_days=row[4], grace_days=row[5], source=row[6], input_hash=row[7],
                        built_at=row[0], data_source=row[8], profile=json.loads(row[9]) if row[9] else {},
                        config_source=row[10])


def stored_horizon(store: Path) -> tuple[int, int] | None:
    """(horizon_days, grace_days) of the store's labels, from its latest build (None: no store, no build)."""
    if not Path(store).exists():
        return None
    try:
        with connect(store, read_only=True) as con:
            meta = read_meta(con)
    except StoreError:
        return None
    return int(meta.horizon_days), int(meta.grace_days)


def read_snapshots(store: Path, as_of: list[dt.date] | None = None) -> pd.DataFrame:
    """All snapshots (or those of the given dates), ordered by as_of then account_id."""
    with connect(store, read_only=True) as con:
        read_meta(con)
        if as_of:
            return con.execute(f"SELECT * FROM {SNAPSHOTS} WHERE as_of IN (SELECT unnest(?)) "
                               "ORDER BY as_of, account_id", [list(as_of)]).df()
        return con.execute(f"SELECT * FROM {SNAPSHOTS} ORDER BY as_of, account_id").df()


def snapshots_of(as_of: dt.date) -> str:
    """SQL: the snapshot rows of one as-of date as a relation (for counts taken in the store)."""
    return f"(SELECT * FROM {SNAPSHOTS} WHERE as_of = DATE '{as_of.isoformat()}') snapshots_of_date"


def read_horizon(store: Path) -> Horizon:
    """The horizon the store's latest snapshot build was labelled with."""
    with connect(store, read_only=True) as con:
        return read_meta(con).horizon


def snapshot_rows(store: Path, as_of: dt.date, account_ids: list[str]) -> pd.DataFrame:
    """The snapshot rows of ``as_of`` for ``account_ids`` (unknown ids are absent)."""
    with connect(store, read_only=True) as con:
        return con.execute(f"SELECT * FROM {SNAPSHOTS} WHERE as_of = ? AND account_id IN (SELECT unnest(?))",
                           [as_of, list(account_ids)]).df()


def last_snapshots(store: Path, account_ids: list[str], until: dt.date) -> pd.DataFrame:
    """``account_id``, ``as_of`` and (where the store has it) ``days_to_term_end`` of each account's latest
    snapshot row up to ``until``: where it was last seen active, with the term end it had then."""
    with connect(store, read_only=True) as con:
        end = ", days_to_term_end" if "days_to_term_end" in snapshot_columns(con) else ""
        return con.execute(f"SELECT account_id, as_of{end} FROM {SNAPSHOTS} "
                           "WHERE account_id IN (SELECT unnest(?)) AND as_of <= ? "
                           "QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY as_of DESC) = 1",
                           [list(account_ids), until]).df()


def snapshot_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The snapshot table's columns in order."""
    return [r[0] for r in con.execute(f"DESCRIBE {SNAPSHOTS}").fetchall()]


def snapshot_range(con: duckdb.DuckDBPyConnection, columns: list[str], first: dt.date, last: dt.date) -> pd.DataFrame:
    """``columns`` of the snapshots with ``first <= as_of <= last``, ordered by as_of then account_id."""
    select = ", ".join(f'"{c}"' for c in columns)
    return con.execute(f"SELECT {select} FROM {SNAPSHOTS} WHERE as_of >= ? AND as_of <= ? "
                       "ORDER BY as_of, account_id", [first, last]).df()


def latest_snapshot(store: Path, account_ids: list[str]) -> pd.DataFrame:
    """Each account's latest row (serving); unknown ids are simply absent."""
    return latest_snapshot_and_end(store, account_ids)[0]


def latest_snapshot_and_end(store: Path, account_ids: list[str]) -> tuple[pd.DataFrame, dt.date | None]:
    """``latest_snapshot``'s rows and the store's latest as-of date (None for an empty store), read on
    one connection: serving's live answers judge an account whose latest snapshot is older as no
    longer active."""
    ids = list(dict.fromkeys(account_ids))
    with connect(store, read_only=True) as con:
        read_meta(con)
        latest = con.execute(f"SELECT max(as_of) FROM {SNAPSHOTS}").fetchone()[0]
        # most accounts asked for are active: their latest row is of the latest date, whose row groups
        # the date alone finds (the rows are written date by date); the others take the scan over all dates
        rows = con.execute(f"SELECT * FROM {SNAPSHOTS} WHERE as_of = ? AND list_contains(?, account_id)",
                           [latest, ids]).df()
        rest = sorted(set(ids) - set(rows["account_id"]))
        if rest:
            older = con.execute(
                f"SELECT * FROM {SNAPSHOTS} WHERE account_id IN (SELECT unnest(?)) "
                f"QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY as_of DESC) = 1", [rest]).df()
            rows = pd.concat([rows, older], ignore_index=True) if len(rows) else older
    rows = rows.sort_values("account_id", ignore_index=True)
    return rows, None if latest is None else pd.Timestamp(latest).date()


def latest_presence(store: Path, column: str) -> tuple[dt.date, int, int] | None:
    """The store's latest as-of date, its snapshot rows and how many of them have ``column`` (None: no
    store file, as for rows built in memory, an empty store or no such column). Training's leakage guard
    compares it with the training rows: an end date written only once a subscription ends is on earlier
    rows and missing at the data end."""
    if not Path(store).exists():
        return None
    with connect(store, read_only=True) as con:
        if column not in snapshot_columns(con):
            return None
        found = con.execute(f'SELECT as_of, count(*), count("{column}") FROM {SNAPSHOTS} '
                            f"WHERE as_of = (SELECT max(as_of) FROM {SNAPSHOTS}) GROUP BY as_of").fetchone()
    return None if found is None else (pd.Timestamp(found[0]).date(), int(found[1]), int(found[2]))


def latest_rows(store: Path, columns: list[str]) -> pd.DataFrame | None:
    """``account_id``, ``as_of`` and ``columns`` (those it has) of the snapshot rows of the store's latest
    as-of date (None: no store file, an empty store). Training's leakage guard compares the account
    columns there with the training rows: a value written only once a customer has left (a CRM's churn
    reason) is on earlier rows of the accounts that left and on none of those still active at the data end."""
    if not Path(store).exists():
        return None
    with connect(store, read_only=True) as con:
        stored = set(snapshot_columns(con))
        have = [c for c in columns if c in stored]
        listed = ", ".join('"' + c.replace('"', '""') + '"' for c in ["account_id", "as_of", *have])
        rows = con.execute(f"SELECT {listed} FROM {SNAPSHOTS} "
                           f"WHERE as_of = (SELECT max(as_of) FROM {SNAPSHOTS})").df()
    return rows if len(rows) else None


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """True when the store holds ``table``."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
                            "AND database_name = current_database()", [table]).fetchone()[0])


def write_summary(path: Path, summary: dict) -> None:
    """The run summary as JSON, replaced whole or left as it was (StorageError naming ``path``)."""
    atomic_write_text(path, json.dumps(summary, indent=2, default=str, ensure_ascii=False))


def write_table_rows(store: Path, rows: pd.DataFrame, names: list[str]) -> None:
    """Keep a scored table's feature values (``table_rows``), replacing the rows of its dates."""
    values = rows[names].astype(object).where(rows[names].notna(), None)
    frame = pd.DataFrame({"account_id": rows["account_id"].astype(str).to_numpy(),
                          "as_of": pd.to_datetime(rows["as_of"]).dt.date.to_numpy(),
                          "feature_values": [json.dumps(dict(zip(names, v, strict=True)), default=float)
                                             for v in values.itertuples(index=False)]})
    with connect(store) as con, storage_errors(store):
        con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE_ROWS} (account_id VARCHAR, as_of DATE, feature_values JSON)")
        con.register("incoming", frame)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM {TABLE_ROWS} WHERE as_of IN (SELECT DISTINCT as_of FROM incoming)")
            con.execute(f"INSERT INTO {TABLE_ROWS} SELECT * FROM incoming")
            con.execute("COMMIT")
        except Exception:
            rollback(con)
            raise
        con.unregister("incoming")


def write_waterfalls(store: Path, frame: pd.DataFrame, dates: list[dt.date]) -> int:
    """Replace the SHAP waterfalls of ``dates`` (``score_waterfalls``: account_id, as_of,
    model_version, waterfall JSON; made by ``serving.waterfalls``) with ``frame``'s, in one
    transaction; returns the rows written."""
    frame = frame[["account_id", "as_of", "model_version", "waterfall"]]
    with connect(store) as con, storage_errors(store):
        con.execute(f"CREATE TABLE IF NOT EXISTS {WATERFALLS} (account_id VARCHAR, as_of DATE, model_version VARCHAR, "
                    "waterfall JSON)")
        con.register("incoming", frame)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM {WATERFALLS} WHERE as_of IN (SELECT unnest(?))", [list(dates)])
            con.execute(f"INSERT INTO {WATERFALLS} SELECT * FROM incoming")
            con.execute("COMMIT")
        except Exception:
            rollback(con)
            raise
        con.unregister("incoming")
    return len(frame)


def feature_rows(store: Path, table_model: bool, as_of: dt.date, account_ids: list[str]) -> pd.DataFrame:
    """The feature rows a bundle scored on ``as_of`` for ``account_ids``: from the snapshots, or
    from ``table_rows`` for a table model; empty when the store has no such table."""
    table = TABLE_ROWS if table_model else SNAPSHOTS
    with connect(store, read_only=True) as con:
        if not has_table(con, table):
            return pd.DataFrame()
        rows = con.execute(f"SELECT * FROM {table} WHERE as_of = ? AND account_id IN (SELECT unnest(?))",
                           [as_of, list(account_ids)]).df()
    if table != TABLE_ROWS or rows.empty:
        return rows
    values = pd.DataFrame([json.loads(v) for v in rows["feature_values"]], index=rows.index)
    return pd.concat([rows[["account_id", "as_of"]], values], axis=1)


def csm_names(store: Path) -> list[str]:
    """The distinct CSMs (``accounts.csm``) of the accounts in the latest snapshots, sorted; none
    when the store has no snapshots or no CSM column."""
    with connect(store, read_only=True) as con:
        if not has_table(con, SNAPSHOTS) or "csm" not in snapshot_columns(con):
            return []
        return [r[0] for r in con.execute(f"SELECT DISTINCT csm FROM {SNAPSHOTS} WHERE csm IS NOT NULL AND "
                                          f"as_of = (SELECT max(as_of) FROM {SNAPSHOTS}) ORDER BY 1").fetchall()]
