"""`churnwatch serve` runs the server in the foreground: SIGTERM stops it and every worker, and leaves no
temporary folder behind."""

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


def _champion_home(good: Path, home: Path) -> None:
    """``home`` with ``good`` logged to its MLflow store, registered and made the champion."""
    import mlflow

    from core.home import Home
    from training.registry import register, set_champion, setup

    h = Home.resolve(home)
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        client = setup(h.tracking_uri, h.mlflow_artifacts)
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(good), artifact_path="bundle")
        set_champion(client, register(client, run.info.run_id), "test")
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_leaves_no_process_listening(trained_setup, tmp_path, workers):
    """With one worker (the default) the home's registered champion is served: the folder its
    model was fetched into is gone after the stop as well (issue 13, item 3); with two, a bundle
    folder (``--model``)."""
    _, _, bundle = trained_setup
    folder = bundle.save(tmp_path / "bundle")
    (tmp_path / "tmp").mkdir()
    if workers == 1:
        _champion_home(folder, tmp_path / "home")
        model = []
    else:
        model = ["--model", str(folder)]
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENTOML_HOME": str(tmp_path / "bentoml"),
           "TMPDIR": str(tmp_path / "tmp")}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "churnwatch", "serve", "--home", str(tmp_path / "home"), *model,
                             "--port", str(port), "--workers", str(workers)],
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
    left = [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("churnwatch-")]
    assert left == [], left
