"""Start the BentoML service in a subprocess and wait until it is ready (CLI, tests, benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request


def start_server(port: int, env: dict[str, str] | None = None, host: str = "127.0.0.1",
                 timeout_seconds: float = 60, quiet: bool = True, target: str = "serving.service:ChurnService",
                 cwd: str | os.PathLike[str] | None = None) -> tuple[subprocess.Popen, str]:
    """``bentoml serve TARGET`` on ``host:port``; returns (process, base URL). ``target`` is the
    service in this repository by default, or a built Bento's tag (``churnwatch:latest``).

    Raises:
        RuntimeError: the server did not answer ``/readyz`` within ``timeout_seconds``
            (the process is killed and its output included).
    """
    full_env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", **(env or {})}
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", target, "--host", host, "--port", str(port)],
                            env=full_env, stdout=out, stderr=out, cwd=cwd)
    base = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if urllib.request.urlopen(base + "/readyz", timeout=2).status == 200:
                return proc, base
        except OSError:  # not listening yet, or still starting
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the service did not become ready on {base} (exit code {proc.poll()})")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
