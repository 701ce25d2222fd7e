"""core.files: a file is replaced whole or left as it was; OS errors name the path and the cause."""

from __future__ import annotations

import errno
import os

import pytest

from core.errors import StorageError
from core.files import atomic_path, atomic_write_text, storage_error


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "report.html"
    atomic_write_text(target, "<p>first</p>")
    atomic_write_text(target, "<p>second</p>")
    assert target.read_text(encoding="utf-8") == "<p>second</p>"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def test_failure_inside_keeps_the_old_file(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("killed mid-write")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_one_line_naming_path(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StorageError, match=r"cannot write .*ro/x\.txt: permission denied"):
            atomic_write_text(folder / "x.txt", "x")
    finally:
        folder.chmod(0o700)


def test_disk_full_is_worded():
    exc = storage_error(__import__("pathlib").Path("/h/store.duckdb"), OSError(errno.ENOSPC, "No space left on device"))
    assert str(exc) == "cannot write /h/store.duckdb: the disk is full"
