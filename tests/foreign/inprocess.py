"""``churnwatch ARGS [--home HOME]`` in this process, for module-scoped fixtures.

The same interface as ``benchmarks.foreign.run_cli`` (a ``CompletedProcess`` with the exit code
and both outputs) through the real entry point ``churnwatch.cli.main`` (argument parsing, error
handling, exit codes), without a child process importing the whole stack again for each step.
An exception that escapes ``main`` is exit 1 with its traceback on stderr, as a child's would be.
The conftest's ``run_cli`` fixture does the same for one test (capsys, monkeypatch are per test).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from pathlib import Path


def run_cli(*args: object, home: Path | None = None) -> subprocess.CompletedProcess:
    from churnwatch.cli import main

    argv = ["churnwatch", *map(str, args), *(["--home", str(home)] if home else [])]
    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_uri = sys.argv, os.environ.pop("MLFLOW_TRACKING_URI", None)
    sys.argv = argv
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:  # noqa: BLE001 - reported as a child process would: exit 1, traceback
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = saved_argv
        os.environ.pop("MLFLOW_TRACKING_URI", None)  # mlflow.set_tracking_uri sets it in-process
        if saved_uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved_uri
        if "workflow.db" in sys.modules:  # the commands' operational-store engines, closed as at a process's exit
            sys.modules["workflow.db"].dispose_all()
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def step_ok(path: dict, step: str) -> subprocess.CompletedProcess:
    """The result of ``step`` in a module fixture's ``{"steps": {name: CompletedProcess}}``, asserted
    to have run and exited 0 (the message: the step's exit code and the end of its output)."""
    r = path["steps"].get(step)
    assert r is not None, f"{step} did not run: an earlier step failed"
    assert r.returncode == 0, f"{step} exited {r.returncode}: {(r.stderr or r.stdout)[-1500:]}"
    return r
