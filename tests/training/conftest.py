"""The ``cli`` fixture: ``churnwatch`` as a user runs it, in-process (one import of the stack)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cli(run_cli, monkeypatch):
    """``cli(home, *args)``: run ``churnwatch ARGS --home HOME`` as a user would (``run_cli`` of
    tests/conftest.py, 250 columns wide); exit code and output."""
    monkeypatch.setenv("COLUMNS", "250")  # after run_cli's own setting: the training tables are wide

    def run(home: Path, *args: str):
        return run_cli(*args, "--home", str(home))

    return run
