"""DuckDB errors in a person's words, and transactions that leave nothing half-done.

A full disk, a read-only file system, no permission or a store another process holds
becomes one :class:`core.errors.StorageError` line naming the file; ``while_held`` retries
opening a store another process holds (DuckDB lets one process write a file, and a writer
excludes every reader) for a few seconds, saying once that it waits and who holds it, then
names the holder; ``transaction`` commits a block whole or rolls it back (only when a
transaction is still open, so "cannot rollback - no transaction is active" never hides the
real error).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import duckdb

from core.errors import StorageError
from core.files import CAUSES

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCK_WAIT_SECONDS = 5.0  # how long opening a store waits for another process to let go of it
# how often it tries meanwhile: the service's live reads hold the store for moments, back to back
# under load; a try every 0.5 s could miss every gap between them for 5 s (a CI run did)
LOCK_POLL_SECONDS = 0.05

# what the operating system said inside a DuckDB error, and how a person reads it
DISK_CAUSES = (("No space left on device", errno.ENOSPC), ("Disk quota exceeded", errno.EDQUOT),
               ("Read-only file system", errno.EROFS), ("Permission denied", errno.EACCES),
               ("database or disk is full", errno.ENOSPC), ("readonly database", errno.EROFS))
LOCK_HELD = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
FILE_NAMED = re.compile(r'file "(?P<path>[^"]+)"')


def disk_cause(text: str) -> str | None:
    """The storage cause ("the disk is full", ...) a DuckDB or SQLite message names, or None."""
    lowered = text.lower()
    for said, code in DISK_CAUSES:
        if said.lower() in lowered:
            return CAUSES[code]
    return None


def store_error(exc: duckdb.Error, store: Path | None = None) -> StorageError | None:
    """A DuckDB error caused by the disk or another process as one line naming the file, or None.

    The file is the one DuckDB names (the store, its ``.wal``), else ``store``.
    """
    text = str(exc)
    named = FILE_NAMED.search(text)
    path = Path(named["path"]) if named else store
    lock = LOCK_HELD.search(text)
    if lock:
        return StorageError(f"cannot open {path or 'the store'}: another process holds it "
                            f"(PID {lock['pid']}, {lock['program']}); wait for it to finish or stop it")
    cause = disk_cause(text)
    if cause is None:
        return None
    return StorageError(f"cannot write {path or 'the store'}: {cause}")


@contextlib.contextmanager
def storage_errors(store: Path) -> Iterator[None]:
    """Turn DuckDB errors caused by the disk (full, read-only, no permission, locked) into a
    :class:`StorageError` naming the file; other errors pass unchanged."""
    try:
        yield
    except duckdb.Error as exc:
        translated = store_error(exc, store)
        if translated is None:
            raise
        raise translated from exc


def while_held(attempt: Callable[[], T], store: Path, wait_seconds: float = LOCK_WAIT_SECONDS) -> T:
    """``attempt()`` (opening or attaching ``store``), retried while another process holds the file.

    The first time it finds the store held it logs a warning naming the process and how long it
    waits; after ``wait_seconds`` the lock is a :class:`StorageError` naming the holder (PID and
    program). Other storage errors (disk full, read-only, no permission) are raised as
    ``StorageError`` at once; any other DuckDB error passes unchanged.
    """
    deadline, said = time.monotonic() + wait_seconds, False
    while True:
        try:
            return attempt()
        except duckdb.Error as exc:
            translated = store_error(exc, store)
            if translated is None:
                raise
            lock = LOCK_HELD.search(str(exc))
            if lock is None or time.monotonic() >= deadline:
                raise translated from exc
            if not said:
                log.warning("%s is held by another process (PID %s, %s); waiting up to %.0f s",
                            store, lock["pid"], lock["program"], wait_seconds)
                said = True
            time.sleep(max(0.0, min(LOCK_POLL_SECONDS, deadline - time.monotonic())))


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if one is still open: after a failed write DuckDB has
    often ended it already, and "cannot rollback - no transaction is active" would hide why."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB transaction around the block: committed when it ends, rolled back when it raises.

    A process killed before the COMMIT leaves nothing of the block behind (DuckDB replays only
    committed transactions from its write-ahead log); a failed COMMIT is not rolled back (there
    is no transaction left to roll back) and its error reaches the caller.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        try:
            rollback(con)
        except duckdb.Error as exc:  # the database was invalidated: the first error tells why
            log.warning("rollback after an error failed: %s", exc)
        raise
    con.execute("COMMIT")
