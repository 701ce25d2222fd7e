"""`serve` with a bad bundle exits 2 naming the file instead of restarting its workers for ever; a
worker that cannot load its model stops the whole server; a served registry model leaves no
temporary folder behind (issue 13, item 3; that one with the SIGTERM test, test_serve_signals.py).

``churnwatch serve`` checks the model before it starts BentoML: those checks run through ``cli.main``
in this process; ``bentoml serve`` itself (the arbiter's and a worker's load) runs in real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from serving.launch import free_port
from training.manifest import MANIFEST, digest

ROOT = Path(__file__).resolve().parents[2]
EXIT_SECONDS = 240  # imports and a model load on a busy 2-core machine


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENTOML_HOME": str(tmp_path / "bentoml"),
           "BENTOML_DO_NOT_TRACK": "true", "TMPDIR": str(tmp_path / "tmp"), **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"still running after {EXIT_SECONDS} s (restarting its workers?): {err[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # workers left behind, if any
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _reseal(folder: Path) -> None:
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"format": 1, "algorithm": "sha256", "files": {
        n: {"bytes": len(d), "sha256": digest(d)} for n, d in files.items()}}))


@pytest.fixture(scope="module")
def good(trained_setup, tmp_path_factory) -> Path:
    _, _, bundle = trained_setup
    return bundle.save(tmp_path_factory.mktemp("good") / "bundle")


def _truncated(good: Path, tmp_path: Path) -> Path:
    folder = shutil.copytree(good, tmp_path / "truncated")
    data = (folder / "model.txt").read_bytes()
    (folder / "model.txt").write_bytes(data[: len(data) // 2])
    return folder


def _null_calibrator(good: Path, tmp_path: Path) -> Path:
    folder = shutil.copytree(good, tmp_path / "null")
    (folder / "calibrator.json").write_text("null")
    _reseal(folder)
    return folder


def _serve(tmp_path: Path, *args: str, port: int | None = None) -> list[str]:
    return [sys.executable, "-m", "churnwatch", "serve", "--home", str(tmp_path / "home"), "--port",
            str(port or free_port()), *args]


@pytest.fixture
def serve_in_process(run_cli, monkeypatch, tmp_path):
    """``churnwatch serve --home tmp/home ARGS`` through ``cli.main`` in this process: the command checks
    the model before it starts anything; should it get past the check, the test fails instead of this
    process becoming the server."""
    import serving.launch

    def started(*args, **kwargs):
        raise AssertionError("the server was started")

    monkeypatch.setattr(serving.launch, "serve_foreground", started)
    return lambda *args: run_cli("serve", "--home", tmp_path / "home", "--port", free_port(), *args)


@pytest.mark.parametrize("make, name", [(_truncated, "model.txt"), (_null_calibrator, "calibrator.json")])
def test_serve_with_a_damaged_bundle_exits_2_naming_the_file(good, tmp_path, serve_in_process, make, name):
    folder = make(good, tmp_path)
    done = serve_in_process("--model", folder)
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"{folder}/{name}" in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]


def test_serve_with_a_missing_folder_or_no_model_exits_2(tmp_path, serve_in_process):
    missing = serve_in_process("--model", tmp_path / "gone")
    assert missing.returncode == 2 and f"{tmp_path / 'gone'} does not exist" in missing.stderr, missing.stderr
    nothing = serve_in_process()
    assert nothing.returncode == 2 and "no model store" in nothing.stderr, nothing.stderr


def test_bentoml_serve_itself_exits_2_on_a_damaged_bundle(good, tmp_path):
    """Without the CLI's check: the arbiter loads the model when it imports the service."""
    folder = _truncated(good, tmp_path)
    done = _run([sys.executable, "-m", "bentoml", "serve", "serving.service:ChurnService", "--port",
                 str(free_port())], _env(tmp_path, CHURNWATCH_MODEL=str(folder),
                                         CHURNWATCH_HOME=str(tmp_path / "home")))
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"{folder}/model.txt" in done.stderr


def test_a_worker_that_cannot_load_its_model_stops_the_server(tmp_path):
    """No model reachable when the arbiter imports the service (an empty home): the worker's load
    fails, and the server stops with exit 2 instead of restarting the worker every few seconds."""
    (tmp_path / "home").mkdir()
    done = _run([sys.executable, "-m", "bentoml", "serve", "serving.service:ChurnService", "--port",
                 str(free_port())], _env(tmp_path, CHURNWATCH_HOME=str(tmp_path / "home")))
    assert done.returncode == 2, done.stderr[-3000:]
    assert "no champion model" in done.stderr
    assert done.stderr.count("cannot load the model, stopping the server") <= 2, "the worker was restarted"
    assert not list((tmp_path / "tmp").glob("churnwatch-serve-*")), "the arbiter removed the worker's note"


# A served registry model leaves no temporary folder: tests/serving/test_serve_signals.py (one worker).
