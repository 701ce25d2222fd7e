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


@pytest.fixture(autouse=True, scope="module")
def _fresh_bentoml_metrics():
    """An in-process BentoML app registers its request metrics in prometheus_client's default
    registry when it starts; a second app in the same process (another test module) would find
    them taken (DuplicateTimeseries). Each module leaves the registry as it found it."""
    from prometheus_client import REGISTRY

    before = set(REGISTRY._collector_to_names)  # noqa: SLF001 - prometheus_client has no public listing
    yield
    for collector in set(REGISTRY._collector_to_names) - before:  # noqa: SLF001
        REGISTRY.unregister(collector)
