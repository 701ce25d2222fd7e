"""Start the BentoML service: in the foreground as this process (``churnwatch serve``), or in a
subprocess that is waited for until ready (tests, benchmarks).

``bentoml serve`` runs an arbiter that starts the worker processes. The foreground server
replaces the CLI process (``exec``), so a SIGTERM or SIGINT sent to ``churnwatch serve`` reaches
the arbiter itself, which stops its workers before it exits: nothing is left answering. A
background server gets its own process group, and stopping it signals the whole group.

Before the foreground server starts, ``check_model`` loads the model it will serve in the CLI
process: a missing, damaged or altered bundle is then one error naming the file (exit 2), not
workers that fail to start and are restarted by BentoML's arbiter for ever. Should a worker
still fail to load (the bundle changed after the check, or ``bentoml serve`` was run directly),
``model_unloadable`` stops the whole server instead: the worker asks the arbiter to stop and
leaves a note that makes the arbiter exit with code 2 (``exit_2_after_failed_worker``).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NoReturn

from core.errors import RegistryError
from core.home import Home

log = logging.getLogger(__name__)

SERVICE = "serving.service:ChurnService"
STOP_GRACE_SECONDS = 20
WORKER_MODULE = ("_bentoml_impl", "worker")  # BentoML 1.4 runs workers as `python -m _bentoml_impl.worker.service`


def serve_command(port: int, host: str = "127.0.0.1", target: str = SERVICE) -> list[str]:
    """The ``python -m bentoml serve`` command line for ``target`` on ``host:port``."""
    return [sys.executable, "-m", "bentoml", "serve", target, "--host", host, "--port", str(port)]


def check_model(home: Home, model: str | None) -> str:
    """Load the model a server of ``home`` would serve (``--model``, default the champion) here,
    before BentoML starts; return what its workers should load.

    A bundle folder is returned as given; a registry model is pinned to the version checked
    (``models:/churnwatch/N``), so the workers load exactly that one even if the alias moves.

    Raises:
        ModelBundleError: the folder does not exist, or a file is missing, damaged or altered.
        RegistryError: no such version or alias, no champion, or no model store in ``home``.
    """
    from training.bundle import ModelBundle
    from training.registry import MODEL_NAME, load_version, resolve_version, setup

    if model and not model.startswith("models:/"):
        ModelBundle.load(Path(model))
        return model
    if not os.environ.get("MLFLOW_TRACKING_URI") and not home.mlflow_db.exists():
        raise RegistryError(f"no model store in {home.root} (no {home.mlflow_db.name}): train and promote a model "
                            "there, or pass --model with a bundle folder")
    client = setup(home.tracking_uri, home.mlflow_artifacts)
    version = resolve_version(client, model)
    load_version(client, version)
    return f"models:/{MODEL_NAME}/{version}"


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


# -- a model that cannot be loaded stops the server -------------------------------------------
def model_unloadable(exc: BaseException) -> NoReturn:
    """Stop this process with exit code 2 after a model failed to load; in a BentoML worker, stop
    the arbiter too (else it restarts the worker every few seconds, for ever) and leave the note
    that makes it exit 2 as well."""
    if not in_bentoml_worker():
        sys.stderr.write(f"error: cannot load the model, not starting the server: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(2)
    log.error("cannot load the model, stopping the server: %s", exc)
    arbiter = os.getppid()
    if _is_bentoml_serve(arbiter):
        _failure_note(arbiter).write_text(str(exc), encoding="utf-8")
        os.kill(arbiter, signal.SIGTERM)
    # leave at once: unwinding through the ASGI lifespan would log the error again as a traceback
    logging.shutdown()
    sys.stderr.flush()
    os._exit(2)


def exit_2_after_failed_worker() -> None:
    """In BentoML's arbiter: exit with code 2 (not 0) when a worker stopped the server because it
    could not load the model. Call once at import; a no-op in any other process."""
    if in_bentoml_worker() or not _is_bentoml_serve(os.getpid()):
        return
    note = _failure_note(os.getpid())

    def _exit_code() -> None:
        if note.exists():
            reason = note.read_text(encoding="utf-8")
            note.unlink(missing_ok=True)
            sys.stderr.write(f"error: a worker could not load the model: {reason}\n")
            sys.stderr.flush()
            os._exit(2)

    atexit.register(_exit_code)


def in_bentoml_server() -> bool:
    """Whether this process is BentoML's arbiter (``bentoml serve``) or one of its workers."""
    return in_bentoml_worker() or _is_bentoml_serve(os.getpid())


def in_bentoml_worker() -> bool:
    """Whether this process is a BentoML service worker (started by the arbiter)."""
    return Path(sys.argv[0] if sys.argv else "").parts[-3:-1] == WORKER_MODULE


def _is_bentoml_serve(pid: int) -> bool:
    import psutil

    try:
        command = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    return any(Path(a).name in ("bentoml", "bentoml.__main__") or a == "bentoml" for a in command) \
        and "serve" in command


def _failure_note(arbiter_pid: int) -> Path:
    return Path(tempfile.gettempdir()) / f"churnwatch-serve-{arbiter_pid}.failed"
