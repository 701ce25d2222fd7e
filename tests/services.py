"""Test helpers for external services (a real PostgreSQL server) started by the test session.

Import these from ``tests/conftest.py``, for example::

    from tests.services import postgres_server as _postgres_server

    @pytest.fixture(scope="session")
    def postgres_url():
        yield from _postgres_server()

When a service cannot be provided (binaries not installed, ...) the tests that need it are
skipped, unless ``CHURNWATCH_REQUIRE_SERVICES=1`` (set by ``.ci/run``), in which case they fail.

``CHURNWATCH_PG_BIN`` may point at a directory holding ``initdb`` and ``pg_ctl`` to use
instead of the ones found under ``/usr/lib/postgresql/*/bin`` or on ``PATH``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from serving.launch import free_port

REQUIRE_ENV = "CHURNWATCH_REQUIRE_SERVICES"
PG_BIN_ENV = "CHURNWATCH_PG_BIN"

PG_USER = "churnwatch"
PG_DATABASE = "churnwatch"
PG_SUPERUSER = "postgres"  # bootstrap superuser created by initdb
PG_SYSTEM_USER = "postgres"  # OS user that runs the server when the tests run as root

STARTUP_TIMEOUT_S = 30
COMMAND_TIMEOUT_S = 120
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it
LOG_TAIL_LINES = 40
INSTALL_HINT = "apt-get install postgresql"


def require_services() -> bool:
    """True when missing services must fail the tests instead of skipping them."""
    return os.environ.get(REQUIRE_ENV, "").strip() == "1"


def service_missing(reason: str) -> NoReturn:
    """Skip the current test (or fail it when services are required) with *reason*."""
    if require_services():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1, so this is a failure)", pytrace=False)
    pytest.skip(f"{reason}; skipped")


def _version_key(bin_dir: str) -> tuple[int, ...]:
    version = Path(bin_dir).parent.name  # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def find_pg_bin() -> Path | None:
    """Directory holding ``initdb`` and ``pg_ctl`` (newest version first), or None."""

    def usable(directory: Path) -> bool:
        return all(os.access(directory / tool, os.X_OK) for tool in ("initdb", "pg_ctl"))

    override = os.environ.get(PG_BIN_ENV)
    if override:
        directory = Path(override)
        return directory if usable(directory) else None
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=_version_key,
        reverse=True,
    )
    for candidate in candidates:
        if usable(Path(candidate)):
            return Path(candidate)
    # Other layouts (e.g. Fedora, Homebrew) put the server binaries on PATH.
    initdb = shutil.which("initdb")
    if initdb and usable(Path(initdb).parent):
        return Path(initdb).parent
    return None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _server_env() -> dict[str, str]:
    """Environment for the server tools: no PG* settings leaking in from the caller."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


def _log_tail(log_file: Path) -> str:
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(server log is empty)"


class _Server:
    """One throw-away PostgreSQL cluster in a temporary directory."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.as_root = _is_root()
        self.base = self._make_base_dir()
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = 0

    def _make_base_dir(self) -> Path:
        # The directory also holds the unix socket, whose path is limited to ~107 bytes.
        parent = tempfile.gettempdir()
        if len(parent) > 60:
            parent = "/tmp"
        base = Path(tempfile.mkdtemp(prefix="churnwatch-pg-", dir=parent))
        if self.as_root:
            # initdb and the server run as the postgres user: it must own the directory.
            shutil.chown(base, user=PG_SYSTEM_USER, group=None)
            try:
                self._run(["test", "-w", str(base)], timeout=30, tool=False)
            except RuntimeError:
                # The postgres user cannot reach the temp dir (e.g. TMPDIR under /root).
                shutil.rmtree(base, ignore_errors=True)
                base = Path(tempfile.mkdtemp(prefix="churnwatch-pg-", dir="/tmp"))
                shutil.chown(base, user=PG_SYSTEM_USER, group=None)
        return base

    def _run(
        self, argv: list[str], *, timeout: float = COMMAND_TIMEOUT_S, tool: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if tool:
            argv = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self.as_root:
            # initdb and pg_ctl refuse to run as root.
            argv = ["runuser", "-u", PG_SYSTEM_USER, "--", *argv]
        try:
            result = subprocess.run(
                argv,
                cwd="/",  # a directory every user can enter
                env=_server_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{' '.join(argv)} timed out after {timeout:.0f} s") from exc
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise RuntimeError(f"{' '.join(argv)} exited with {result.returncode}:\n{output}")
        return result

    def initdb(self) -> None:
        self._run(
            [
                "initdb",
                "--pgdata",
                str(self.data),
                "--username",
                PG_SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ]
        )

    def _configure(self, port: int) -> None:
        # Written to postgresql.auto.conf, which is read last and overrides postgresql.conf.
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(self.base),
            "max_connections": "50",
            # Throw-away cluster: durability is not needed, speed is.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        lines = [f"{key} = '{value}'" for key, value in settings.items()]
        (self.data / "postgresql.auto.conf").write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        errors = []
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            self._configure(self.port)
            try:
                self._run(
                    [
                        "pg_ctl",
                        "start",
                        "--pgdata",
                        str(self.data),
                        "--log",
                        str(self.log),
                        "--wait",
                        "--timeout",
                        str(STARTUP_TIMEOUT_S),
                    ],
                    timeout=STARTUP_TIMEOUT_S + 15,
                )
            except RuntimeError as exc:
                errors.append(str(exc))
                self.stop()  # in case it half-started
                continue
            self._wait_ready()
            return
        raise RuntimeError(f"pg_ctl start failed {len(errors)} times; last error: {errors[-1]}")

    def _connect(self, user: str, dbname: str):  # -> psycopg.Connection
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            dbname=dbname,
            connect_timeout=5,
            autocommit=True,
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with self._connect(PG_SUPERUSER, "postgres") as conn:
                    conn.execute("SELECT 1")
                return
            except Exception as exc:  # psycopg.OperationalError while starting up
                last_error = exc
                time.sleep(0.2)
        raise RuntimeError(
            f"server on 127.0.0.1:{self.port} not ready after {STARTUP_TIMEOUT_S} s: {last_error}"
        )

    def create_app_database(self) -> None:
        with self._connect(PG_SUPERUSER, "postgres") as conn:
            conn.execute(f"CREATE ROLE {PG_USER} WITH LOGIN SUPERUSER")
            conn.execute(f"CREATE DATABASE {PG_DATABASE} OWNER {PG_USER}")

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        for mode in ("fast", "immediate"):
            try:
                self._run(
                    [
                        "pg_ctl",
                        "stop",
                        "--pgdata",
                        str(self.data),
                        "--mode",
                        mode,
                        "--wait",
                        "--timeout",
                        str(STARTUP_TIMEOUT_S),
                    ],
                    timeout=STARTUP_TIMEOUT_S + 15,
                )
                return
            except RuntimeError:
                if not (self.data / "postmaster.pid").exists():
                    return
        # Last resort: kill the postmaster ourselves (only the one from our own data dir).
        pid = self._postmaster_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def postgres_server() -> Iterator[str]:
    """Start a fresh PostgreSQL server for the test session and yield its SQLAlchemy URL.

    Use it as a session fixture (``yield from postgres_server()``). The URL is
    ``postgresql+psycopg://churnwatch@127.0.0.1:<port>/churnwatch``; the ``churnwatch`` role is a
    superuser and authentication is ``trust``. The server is stopped and its directory removed
    on teardown.
    """
    bin_dir = find_pg_bin()
    if bin_dir is None:
        where = os.environ.get(PG_BIN_ENV) or "/usr/lib/postgresql/*/bin or PATH"
        service_missing(f"PostgreSQL binaries not found in {where} ({INSTALL_HINT})")
    if _is_root():
        import pwd

        try:
            pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            service_missing(
                f"running as root but there is no '{PG_SYSTEM_USER}' user to run the "
                f"PostgreSQL server ({INSTALL_HINT})"
            )
        if shutil.which("runuser") is None:
            service_missing("running as root but 'runuser' (util-linux) is not available")

    server = _Server(bin_dir)
    try:
        failure = None
        try:
            server.initdb()
            server.start()
            server.create_app_database()
        except Exception as exc:
            failure = (
                f"could not start PostgreSQL from {bin_dir} in {server.base}: {exc}\n"
                f"--- server log (last {LOG_TAIL_LINES} lines) ---\n{_log_tail(server.log)}"
            )
        if failure:  # outside the except block: no chained traceback in the report
            pytest.fail(failure, pytrace=False)
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{server.port}/{PG_DATABASE}"
    finally:
        server.stop()
        server.remove()
