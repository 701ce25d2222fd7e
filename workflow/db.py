"""The operational store: one SQLAlchemy engine per URL, its schema migrated by Alembic.

* The URL is ``operations.url`` in ``churnwatch.yaml`` (or ``CHURNWATCH_OPERATIONS_URL``), a
  SQLAlchemy URL such as ``postgresql+psycopg://user@host/db``; by default the SQLite file
  ``<home>/operations.sqlite``.
* ``open_store`` returns an engine whose schema is at the newest revision: every migration under
  ``workflow/migrations/versions`` is applied (``alembic upgrade heads``) the first time a process
  opens a URL. Tables are declared on ``METADATA`` by the module that owns them.
* SQLite runs in WAL mode with a busy timeout and foreign keys on, so the scorer, the service and
  a person's command can write one after the other without "database is locked" errors; a write
  that must not lose a concurrent update uses ``BEGIN IMMEDIATE`` (``write``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from core.errors import ConfigError

URL_ENV = "CHURNWATCH_OPERATIONS_URL"
SQLITE_FILE = "operations.sqlite"
MIGRATIONS = Path(__file__).with_name("migrations")
#: Constraint names that are the same on SQLite and PostgreSQL (Alembic needs names to alter them).
NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s"}
METADATA = sa.MetaData(naming_convention=NAMING)
SQLITE_BUSY_MS = 30_000

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def operations_url(home: Path, configured: str | None = None) -> str:
    """The operational store's URL: ``configured`` (from ``churnwatch.yaml``), else the
    environment's ``CHURNWATCH_OPERATIONS_URL``, else the SQLite file in the home."""
    url = configured or os.environ.get(URL_ENV)
    if url:
        return url
    return f"sqlite:///{(Path(home) / SQLITE_FILE).resolve()}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # The pysqlite driver's own transaction handling is turned off (isolation_level None) so that
    # SQLAlchemy's BEGIN is the one sent; see the SQLAlchemy docs, "Serializable isolation /
    # Savepoints / Transactional DDL" for pysqlite.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("immediate") else "BEGIN")


def create(url: str) -> Engine:
    """A new engine for ``url`` (SQLite gets its pragmas and explicit BEGIN)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"operations.url {url!r} is not a SQLAlchemy URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = sa.create_engine(parsed, pool_pre_ping=True)
    return engine


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration not yet applied (all heads)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def open_store(url: str) -> Engine:
    """The process's engine for ``url``, migrated to the newest schema on first use."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create(url)
            migrate(engine)
            _engines[url] = engine
        return engine


def dispose_all() -> None:
    """Close every engine this process opened (tests, forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction. On SQLite it takes the write lock at BEGIN (``BEGIN IMMEDIATE``), so
    two writers that read then update queue instead of one failing; on PostgreSQL use
    ``SELECT ... FOR UPDATE`` (``with_for_update()``) on the rows read before an update."""
    with engine.connect() as conn:
        conn.info["immediate"] = True
        try:
            with conn.begin():
                yield conn
        finally:
            conn.info.pop("immediate", None)


def store_for(home: Path, configured: str | None = None) -> Engine:
    """The engine of the home's operational store (``Settings.operations.url`` as ``configured``)."""
    return open_store(operations_url(home, configured))
