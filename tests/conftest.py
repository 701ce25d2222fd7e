"""Shared fixtures. Services (PostgreSQL) are started by the session itself."""

from __future__ import annotations

import pytest

from tests.services import postgres_server


@pytest.fixture(scope="session")
def pg_url():
    """A real PostgreSQL server on a free port of 127.0.0.1 (skipped, or failed in CI, if absent)."""
    yield from postgres_server()
