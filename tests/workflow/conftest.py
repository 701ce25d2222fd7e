"""The operational store every workflow test runs on: a SQLite file in the test's folder, and the
real PostgreSQL server the test session starts (a clean schema per test)."""

from __future__ import annotations

import pytest

from workflow import db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = db.operations_url(tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        base = db.create(url)
        with base.begin() as conn:  # a clean schema for each test
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        base.dispose()
    eng = db.open_store(url)
    yield eng
    db.dispose_all()
