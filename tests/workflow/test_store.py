"""The operational store: migrations on SQLite and PostgreSQL, the audit log, and writers that
read-then-update without losing each other's changes."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from workflow import db
from workflow.audit import history, record
from workflow.people import USERS


def test_default_url_is_sqlite_in_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv(db.URL_ENV, raising=False)
    assert db.operations_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'operations.sqlite'}"
    assert db.operations_url(tmp_path, "postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    monkeypatch.setenv(db.URL_ENV, "sqlite:////x/y.sqlite")
    assert db.operations_url(tmp_path) == "sqlite:////x/y.sqlite"


def test_migrations_create_every_declared_table(engine):
    names = set(sa.inspect(engine).get_table_names())
    declared = set(db.METADATA.tables)
    assert declared <= names, f"declared but not migrated: {sorted(declared - names)}"
    assert "alembic_version" in names
    db.migrate(engine)  # a second run changes nothing and does not fail


def test_audit_log_round_trip(engine):
    with db.write(engine) as conn:
        row = USERS.insert().values(name="Ana Li", email="ana@example.com", role="csm")
        uid = conn.execute(row).inserted_primary_key[0]
        record(conn, actor="admin", entity="user", entity_id=uid, action="create", after={"name": "Ana Li"})
        record(conn, actor="admin", entity="user", entity_id=uid, action="update",
               before={"name": "Ana Li"}, after={"name": "李安娜"})
    with engine.connect() as conn:
        entries = history(conn, "user", uid)
    assert [e["action"] for e in entries] == ["create", "update"]
    assert entries[1]["before"] == {"name": "Ana Li"} and entries[1]["after"] == {"name": "李安娜"}
    assert entries[0]["actor"] == "admin" and entries[0]["at"] is not None


def test_bad_role_is_refused(engine):
    with pytest.raises(sa.exc.IntegrityError), db.write(engine) as conn:
        conn.execute(USERS.insert().values(name="x", role="boss"))


def test_concurrent_read_then_update_loses_nothing(engine):
    with db.write(engine) as conn:
        uid = conn.execute(USERS.insert().values(name="", role="csm")).inserted_primary_key[0]

    def append(ch: str) -> None:
        for _ in range(25):
            with db.write(engine) as conn:
                name = conn.execute(sa.select(USERS.c.name).where(USERS.c.id == uid).with_for_update()).scalar_one()
                conn.execute(USERS.update().where(USERS.c.id == uid).values(name=name + ch))

    threads = [threading.Thread(target=append, args=(c,)) for c in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        name = conn.execute(sa.select(USERS.c.name).where(USERS.c.id == uid)).scalar_one()
    assert sorted(name) == ["a"] * 25 + ["b"] * 25
