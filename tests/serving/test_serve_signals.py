"""`churnwatch serve` runs the server in the foreground: SIGTERM stops it and every worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from serving.launch import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
EXIT_SECONDS = 10


def _refused(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_leaves_no_process_listening(trained_setup, tmp_path, workers):
    _, _, bundle = trained_setup
    folder = bundle.save(tmp_path / "bundle")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENTOML_HOME": str(tmp_path / "bentoml")}
    proc = subprocess.Popen([sys.executable, "-m", "churnwatch", "serve", "--home", str(tmp_path / "home"),
                             "--model", str(folder), "--port", str(port), "--workers", str(workers)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        assert wait_ready(f"http://127.0.0.1:{port}", 120, proc), "the server never answered /readyz"
        family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert len(family) > 1, "bentoml starts worker processes"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=EXIT_SECONDS)
        assert time.monotonic() - started < EXIT_SECONDS
        assert _refused(port), f"something still listens on port {port}"
        gone, alive = psutil.wait_procs([psutil.Process(p) for p in family if psutil.pid_exists(p)], timeout=5)
        assert not alive, f"processes left after SIGTERM: {[p.pid for p in alive]}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # only if the test failed
        except ProcessLookupError:
            pass
