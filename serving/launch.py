"""Start the BentoML service: in the foreground as this process (``churnwatch serve``), or in a
subprocess that is waited for until ready (tests, benchmarks).

``bentoml serve`` runs an arbiter that starts the worker processes. The foreground server
replaces the CLI process (``exec``), so a SIGTERM or SIGINT sent to ``churnwatch serve`` reaches
the arbiter itself, which stops its workers before it exits: nothing is left answering. A
background server gets its own process group, and stopping it signals the whole group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SERVICE = "serving.service:ChurnService"
STOP_GRACE_SECONDS = 20


def serve_command(port: int, host: str = "127.0.0.1", target: str = SERVICE) -> list[str]:
    """The ``python -m bentoml serve`` command line for ``target`` on ``host:port``."""
    return [sys.executable, "-m", "bentoml", "serve", target, "--host", host, "--port", str(port)]


def serve_foreground(port: int, env: dict[str, str], host: str = "127.0.0.1", target: str = SERVICE) -> None:
    """Replace this process with the BentoML server (never returns on success).

    Output buffers are flushed first, because ``exec`` discards them.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    command = serve_command(port, host, target)
    os.execve(command[0], command, {"BENTOML_DO_NOT_TRACK": "true", **env})


def start_server(port: int, env: dict[str, str] | None = None, host: str = "127.0.0.1",
                 timeout_seconds: float = 60, quiet: bool = True, target: str = SERVICE,
                 cwd: str | os.PathLike[str] | None = None) -> tuple[subprocess.Popen, str]:
    """``bentoml serve TARGET`` on ``host:port`` in its own process group; returns (process,
    base URL). ``target`` is the service in this repository by default, or a built Bento's tag
    (``churnwatch:latest``).

    Raises:
        RuntimeError: the server did not answer ``/readyz`` within ``timeout_seconds``
            (the process group is killed).
    """
    full_env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", **(env or {})}
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(serve_command(port, host, target), env=full_env, stdout=out, stderr=out, cwd=cwd,
                            start_new_session=True)
    base = f"http://{host}:{port}"
    if wait_ready(base, timeout_seconds, proc):
        return proc, base
    _signal_group(proc, signal.SIGKILL)
    proc.wait()
    raise RuntimeError(f"the service did not become ready on {base} (exit code {proc.poll()})")


def wait_ready(base: str, timeout_seconds: float, proc: subprocess.Popen | None = None) -> bool:
    """True once ``base``/readyz answers 200; False after ``timeout_seconds`` or when ``proc`` exits."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if urllib.request.urlopen(base + "/readyz", timeout=2).status == 200:
                return True
        except OSError:  # not listening yet, or still starting
            time.sleep(0.5)
    return False


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group; SIGKILL to what is left after the grace period."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _signal_group(proc, signal.SIGKILL)  # a worker that outlived its arbiter


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):  # the group is gone already
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
