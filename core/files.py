"""Files written whole or not at all: write to a temporary sibling, then rename over the target.

A reader (or a crash, a full disk, a kill) never sees half a file: either the old content or
the new one. Every file churnwatch writes for people (reports, summaries, bundles' files) goes
through here. ``OSError`` on the way out becomes a :class:`core.errors.StorageError` naming the
path and the cause in one line (disk full, read-only, no permission).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.errors import StorageError

__all__ = ["CAUSES", "atomic_path", "atomic_write_bytes", "atomic_write_text", "storage_error"]

#: the storage errors and how a person reads them (DuckDB, SQLite and the CLI word them the same)
CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def storage_error(path: Path, exc: OSError) -> StorageError:
    """One line naming ``path`` and what the operating system said, in words a person reads."""
    cause = CAUSES.get(exc.errno or 0, exc.strerror or str(exc))
    return StorageError(f"cannot write {path}: {cause}")


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    For libraries that write to a path themselves (``save_html``, ``to_parquet``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(name, _mode_for(path))  # mkstemp's 0600 would make the finished file private
    except OSError as exc:
        raise storage_error(path, exc) from exc
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise storage_error(path, exc) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _mode_for(path: Path) -> int:
    """The permissions ``path`` has, or those a new file gets under the process's umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole (fsync before the rename) or leave ``path`` as it was."""
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise storage_error(path, exc) from exc


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` whole or leave ``path`` as it was."""
    atomic_write_bytes(path, text.encode(encoding))
