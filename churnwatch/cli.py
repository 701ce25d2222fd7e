"""The ``churnwatch`` command line: a thin shell over the packages (DESIGN §8).

One command module per stage in ``churnwatch/commands`` on the shared options of
``churnwatch.options``; this module builds the Typer app from them and is the console entry point.

Exit codes: 0 done; 2 bad input or usage (one or two lines naming what is wrong), a full
disk, a read-only home or a store held by another process (one line naming the file);
3 a monitored alarm.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from pathlib import Path

import duckdb
import typer

from churnwatch.commands import (
    admin,
    data,
    demo,
    diagnosis,
    features,
    insights,
    monitoring,
    outreach,
    review,
    serving,
    training,
    workflow,
    workspace,
)
from churnwatch.options import ExitError, err
from core.engine import disk_cause, store_error
from core.errors import ChurnwatchError, StorageError
from core.files import CAUSES, storage_error

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="churnwatch: early warning for customer churn.")

# the order of ``churnwatch --help``: the flow, then the people's views
for module in (data, features, training, serving, workflow, demo, monitoring, insights, diagnosis, review, outreach,
               workspace, admin):
    module.register(app)


# OSError numbers that are the disk's or the file system's fault, not a bug
STORAGE_ERRNOS = set(CAUSES)


def main() -> None:
    """Entry point: our errors become a short message and exit 2; usage errors exit 2 (click).

    A full disk, a read-only file system or a lock that escaped the library's own translation
    (:class:`core.errors.StorageError`) is said in one line naming the file, exit 2.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # MLflow logs every failed query of its sqlite store with a traceback before raising it; the
    # error itself still reaches us (one line for a full or read-only disk, else its traceback)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    try:
        app(standalone_mode=True)
    except ExitError as exc:
        _fail(str(exc), exc.code)
    except ChurnwatchError as exc:
        _fail(str(exc), 2)
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is the disk's fault
        storage = storage_problem(exc)
        if storage is None:
            raise
        _fail(str(storage), 2)


def _fail(message: str, code: int) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def storage_problem(exc: BaseException) -> StorageError | None:
    """The one-line :class:`StorageError` for an exception (or one it was raised from) that a
    full disk, a read-only file system, missing permission or a lock caused; None otherwise."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            path = Path(exc.filename or "a file")
            if exc.errno in (errno.EACCES, errno.EPERM):  # reading as well as writing
                return StorageError(f"cannot access {path}: permission denied")
            return storage_error(path, exc)
        if isinstance(exc, duckdb.Error) and (found := store_error(exc)) is not None:
            return found
        if _is_sqlite(exc) and (cause := disk_cause(str(exc))) is not None:
            return StorageError(f"cannot write {_tracking_file()}: {_sqlite_cause(cause)}")
        exc = exc.__cause__ or exc.__context__
    return None


def _is_sqlite(exc: BaseException) -> bool:
    """An error of MLflow's sqlite tracking store (sqlite3, SQLAlchemy or MLflow's wrapper)."""
    return type(exc).__module__.split(".")[0] in {"sqlite3", "sqlalchemy", "mlflow"}


def _sqlite_cause(cause: str) -> str:
    """SQLite says "readonly database" for a read-only file system and a file without write
    permission alike; the file system's flags tell which."""
    if cause != "the file system is read-only":
        return cause
    path = Path(_tracking_file())
    try:
        read_only = bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return "the database is read-only (read-only file system or no write permission)"
    return cause if read_only else "the database file is read-only (no write permission)"


def _tracking_file() -> str:
    """The sqlite file MLflow was pointed at in this process (the home's ``mlflow.db``)."""
    mlflow = sys.modules.get("mlflow")
    uri = mlflow.get_tracking_uri() if mlflow is not None else ""
    return uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else "the MLflow tracking store"


if __name__ == "__main__":
    main()
