"""Shared fixtures. Services (PostgreSQL) are started by the session itself."""

from __future__ import annotations

import pytest

from tests.services import postgres_server


@pytest.fixture(scope="session")
def pg_url():
    """A real PostgreSQL server on a free port of 127.0.0.1 (skipped, or failed in CI, if absent)."""
    yield from postgres_server()


@pytest.fixture(autouse=True)
def _no_tracking_uri_leak():
    """Each test leaves MLFLOW_TRACKING_URI as it found it (unset in CI): a test that points
    MLflow somewhere must not send later tests' home folders there."""
    import os

    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
