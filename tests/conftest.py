"""Shared fixtures. Services (PostgreSQL) are started by the session itself."""

from __future__ import annotations

import pytest

from tests.services import postgres_server


@pytest.fixture(scope="session")
def pg_url():
    """A real PostgreSQL server on a free port of 127.0.0.1 (skipped, or failed in CI, if absent)."""
    yield from postgres_server()


@pytest.fixture(autouse=True)
def _no_tracking_uri_leak(monkeypatch):
    """Each test starts with the MLFLOW_TRACKING_URI it was given (none in CI): a test that
    points MLflow somewhere must not send later tests' home folders there."""
    import os

    if "MLFLOW_TRACKING_URI" in os.environ:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", os.environ["MLFLOW_TRACKING_URI"])
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
