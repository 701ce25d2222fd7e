"""A full disk, a read-only home and a store held by another process (issue 13, item 5).

A tiny trained and scored home is copied onto a small tmpfs; the disk is filled (a few KB left)
or remounted read-only, and each command that writes must exit 2 with one line naming the file
and the cause, no traceback, and leave no half-written file behind (the report stays the previous
complete version, no temporary siblings). Needs root to mount: skipped with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from churnwatch.cli import app
from core.errors import StorageError
from core.store import connect, read_meta
from tests.stores import copy_home

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("features", "score", "report", "drift", "diagnose", "alerts")
FULL, READ_ONLY = "the disk is full", "the file system is read-only"


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: {result.output[-2000:]}\n{result.exception!r}"
    return result.output


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m churnwatch ...`` in a child process (what a person runs: cli.main, exit codes)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "churnwatch", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {proc.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "64m") -> Iterator[Path]:
    """A fresh tmpfs of ``size`` at ``folder``, always unmounted afterwards."""
    _mount_tmpfs(folder, size)
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave_bytes: int = 2 * 1024) -> None:
    """A big file taking all but ``leave_bytes`` of the file system of ``folder`` (a few KB, less
    than one tmpfs page: a small write of a few rows would otherwise still fit and succeed)."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    with open(folder / f"filler-{len(list(folder.glob('filler-*')))}.bin", "wb") as fh:
        if free > leave_bytes:
            os.posix_fallocate(fh.fileno(), 0, free - leave_bytes)
    assert os.statvfs(folder).f_bavail * st.f_frsize <= leave_bytes


def remount_read_only(folder: Path) -> None:
    proc = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory, demo_home) -> Path:
    """A tiny home (a copy of the session's shared one, tests/conftest.py: demo data, snapshots, a
    champion) with two scored dates and a report; no operational store (alerts, tasks), so that
    ``alerts`` has something to write. Its config watches three features for drift."""
    root = copy_home(demo_home(150, 12, 3), tmp_path_factory.mktemp("disk") / "home")
    config = yaml.safe_load((root / "churnwatch.yaml").read_text(encoding="utf-8"))
    config.update(monitoring={"features": ["logins_30d", "active_days_30d", "logins_30d_change"]})
    (root / "churnwatch.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    with connect(root / "store.duckdb", read_only=True) as con:
        end = read_meta(con).data_end
    cli("score", "--home", str(root), "--as-of", str(end - dt.timedelta(days=28)))
    cli("score", "--home", str(root))
    cli("report", "--home", str(root), "--top", "3")
    for name in ("operations.sqlite", "operations.sqlite-wal", "operations.sqlite-shm"):  # alerts, tasks
        (root / name).unlink(missing_ok=True)
    return root


def mounted_home(template: Path, mount: Path) -> Path:
    """``template`` copied onto ``mount``, its MLflow store already moved there (as any first
    command would do), so that each command fails where it writes its own output."""
    home = mount / "home"
    shutil.copytree(template, home)
    # in a child: MLflow's engine would keep mlflow.db open here and the remount would be refused
    code = ("import sys\nfrom core.home import Home\nfrom training.registry import setup\n"
            "h = Home.resolve(sys.argv[1])\nsetup(h.tracking_uri, h.mlflow_artifacts)")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    subprocess.run([sys.executable, "-c", code, str(home)], check=True, cwd=ROOT,
                   env={**env, "PYTHONPATH": str(ROOT)})
    return home


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def check_whole(path: Path) -> None:
    """A file churnwatch wrote is complete: JSON parses, HTML closes, PNG ends, CSV is not empty."""
    data = path.read_bytes()
    assert data, f"{path} is empty"
    if path.suffix == ".json":
        json.loads(data)
    elif path.suffix == ".html":
        assert data.rstrip().endswith(b"</html>"), f"{path} is truncated"
    elif path.suffix == ".png":
        assert data.endswith(b"IEND\xaeB`\x82"), f"{path} is truncated"


def assert_one_line_error(proc: subprocess.CompletedProcess, home: Path, cause: str) -> str:
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}:\n{text[-3000:]}"
    assert "Traceback" not in text, text[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert f"cannot write {home}" in errors[0] and errors[0].endswith(cause), errors[0]
    return errors[0]


def assert_nothing_half_written(home: Path, before: dict[str, bytes]) -> None:
    leftovers = [p for p in home.rglob("*") if p.name.endswith(".tmp")
                 or (p.name.startswith(".") and str(p.relative_to(home)) not in before)]
    assert not leftovers, leftovers
    for name, data in files_of(home / "reports").items():
        old = before.get(f"reports/{name}")
        if old is None or old != data:
            check_whole(home / "reports" / name)
    report = sorted((home / "reports").glob("churn-report-*.html"))
    assert [p.name for p in report] == [n.split("/")[-1] for n in before if "churn-report-" in n]
    for path in report:
        assert path.read_bytes() == before[f"reports/{path.name}"], f"{path} is not the previous version"


@pytest.mark.parametrize("mode", ["full", "read-only"])
def test_every_writing_command_says_disk_full_or_read_only(template, tmp_path, mode):
    with tmpfs(tmp_path / "mnt") as mount:
        home = mounted_home(template, mount)
        before = files_of(home)
        if mode != "full":
            remount_read_only(mount)
        failures = {}
        for command in COMMANDS:
            if mode == "full":
                fill(mount)  # topped up: what a failed command freed again is taken
            extra = ["--top", "3"] if command == "report" else []
            proc = run(command, "--home", str(home), *extra)
            try:
                line = assert_one_line_error(proc, home, FULL if mode == "full" else READ_ONLY)
                assert_nothing_half_written(home, before)
            except AssertionError as exc:
                failures[command] = str(exc)[:1500]
            else:
                print(f"{mode} {command}: {line}")
        assert not failures, json.dumps(failures, indent=1)
        with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:  # the store is intact
            assert con.execute("SELECT count(DISTINCT as_of) FROM score_history").fetchone()[0] == 2
        ops = home / "operations.sqlite"  # and no alert was half raised
        if ops.exists() and ops.stat().st_size:
            with contextlib.closing(sqlite3.connect(f"file:{ops}?immutable=1", uri=True)) as con:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                assert "alerts" not in tables or con.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0


def test_read_only_home_not_yet_moved_names_the_mlflow_store(template, tmp_path):
    """A copied home whose MLflow store still points at the old folder cannot be rebased on a
    read-only disk: the error names ``mlflow.db``."""
    with tmpfs(tmp_path / "mnt") as mount:
        home = mount / "home"
        shutil.copytree(template, home)
        remount_read_only(mount)
        proc = run("evaluate", "--home", str(home))
        line = assert_one_line_error(proc, home, READ_ONLY)
        assert f"{home / 'mlflow.db'}" in line


@contextlib.contextmanager
def held(store: Path) -> Iterator[subprocess.Popen]:
    """Another process holding ``store`` open for writing until the block ends."""
    child = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time\n"
                              f"con = duckdb.connect({str(store)!r})\nprint('held', flush=True)\ntime.sleep(600)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        yield child
    finally:
        child.kill()
        child.wait()


def test_store_held_by_another_process_names_it(template, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(template, home)
    store = home / "store.duckdb"
    with held(store) as child:
        started = time.monotonic()
        proc = run("alerts", "--home", str(home))
        text = proc.stdout + proc.stderr
        assert proc.returncode == 2, text[-3000:]
        assert "Traceback" not in text
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert errors == [f"error: cannot open {store}: another process holds it (PID {child.pid}, "
                          f"{errors[0].split(', ', 1)[1]}"], proc.stderr
        assert "waiting up to 5 s" in proc.stderr
        assert time.monotonic() - started < 120


def test_connect_waits_for_a_short_lock_then_opens(tmp_path):
    store = tmp_path / "store.duckdb"
    duckdb.connect(str(store)).close()
    with held(store) as child:
        with pytest.raises(StorageError, match=rf"cannot open {store}: another process holds it \(PID {child.pid}"):
            connect(store, wait_seconds=0.2)
        releaser = subprocess.Popen([sys.executable, "-c", f"import os, time; time.sleep(1); os.kill({child.pid}, 9)"])
        t0 = time.monotonic()
        with connect(store, wait_seconds=30) as con:
            assert con.execute("SELECT 42").fetchone()[0] == 42
        assert 0.5 < time.monotonic() - t0 < 30
        releaser.wait()


def test_rollback_only_when_a_transaction_is_open(tmp_path):
    """After a failed COMMIT DuckDB has ended the transaction: ``rollback`` must not raise
    "cannot rollback - no transaction is active" over the real error."""
    from core.engine import rollback

    with duckdb.connect(str(tmp_path / "s.duckdb")) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        rollback(con)  # none open: nothing to do, nothing raised
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO t VALUES (1)")
        rollback(con)
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_cli_safety_net_words_what_escaped():
    """``cli.main``'s net: OSErrors of the disk, DuckDB and MLflow's sqlite messages, also when
    wrapped in another exception, become one line; anything else is not its business."""
    import errno
    import sqlite3

    from churnwatch.cli import storage_problem

    full = OSError(errno.ENOSPC, "No space left on device", "/h/reports/x.html")
    assert str(storage_problem(full)) == "cannot write /h/reports/x.html: the disk is full"
    try:
        try:
            raise OSError(errno.EROFS, "Read-only file system", "/h/reports")
        except OSError as inner:
            raise RuntimeError("library wrapped it") from inner
    except RuntimeError as outer:
        assert str(storage_problem(outer)) == "cannot write /h/reports: the file system is read-only"
    assert str(storage_problem(OSError(errno.EACCES, "Permission denied", "/h/data/a.csv"))) == \
        "cannot access /h/data/a.csv: permission denied"
    wal = duckdb.IOException('IO Error: Could not write file "/h/store.duckdb.wal": No space left on device')
    assert str(storage_problem(wal)) == "cannot write /h/store.duckdb.wal: the disk is full"
    assert str(storage_problem(sqlite3.OperationalError("database or disk is full"))).endswith("the disk is full")
    assert storage_problem(ValueError("No space left on device")) is None
    assert storage_problem(OSError(errno.ENOENT, "No such file", "/h/x")) is None
    assert storage_problem(duckdb.CatalogException("Table with name t does not exist")) is None
