"""The ``cli`` fixture: ``churnwatch`` as a user runs it, in-process (one import of the stack)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch, capsys):
    """``cli(home, *args)``: run ``churnwatch ARGS --home HOME`` as a user would; exit code and output."""
    from churnwatch.cli import main

    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def run(home: Path, *args: str) -> Run:
        monkeypatch.setattr(sys, "argv", ["churnwatch", *args, "--home", str(home)])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return Run(code, out.out, out.err)

    return run
