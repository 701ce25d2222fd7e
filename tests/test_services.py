"""The session PostgreSQL server from tests/services.py is real: SQL round-trips through it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from tests.services import free_port

pytestmark = pytest.mark.postgres


@pytest.fixture()
def engine(pg_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(pg_url)
    try:
        yield eng
    finally:
        eng.dispose()


def test_url_points_at_local_churnwatch_database(pg_url: str) -> None:
    url = sa.make_url(pg_url)
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "127.0.0.1"
    assert url.username == "churnwatch"
    assert url.database == "churnwatch"
    assert url.port and url.port > 0


def test_server_is_real_postgresql(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        version = conn.execute(sa.text("SHOW server_version_num")).scalar_one()
        user, database = conn.execute(sa.text("SELECT current_user, current_database()")).one()
        is_superuser = conn.execute(sa.text("SHOW is_superuser")).scalar_one()
    assert int(version) >= 120000
    assert (user, database) == ("churnwatch", "churnwatch")
    assert is_superuser == "on"


def test_create_insert_and_read_back(engine: sa.Engine) -> None:
    metadata = sa.MetaData()
    customers = sa.Table(
        "test_services_customers",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("signup", sa.Date, nullable=False),
        sa.Column("mrr", sa.Numeric(10, 2), nullable=False),
        sa.Column("tags", JSONB, nullable=False),
    )
    rows = [
        {
            "id": 1,
            "name": "Acme",
            "signup": date(2024, 1, 31),
            "mrr": Decimal("99.90"),
            "tags": {"plan": "pro"},
        },
        {
            "id": 2,
            "name": "Zoë GmbH",
            "signup": date(2023, 6, 1),
            "mrr": Decimal("0.00"),
            "tags": {"plan": "free", "seats": 3},
        },
    ]
    metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(customers), rows)
        with engine.connect() as conn:
            got = conn.execute(sa.select(customers).order_by(customers.c.id)).mappings().all()
            total = conn.execute(sa.select(sa.func.sum(customers.c.mrr))).scalar_one()
            pro = (
                conn.execute(
                    sa.select(customers.c.name).where(customers.c.tags["plan"].astext == "pro")
                )
                .scalars()
                .all()
            )
        assert [dict(row) for row in got] == rows
        assert total == Decimal("99.90")
        assert pro == ["Acme"]
    finally:
        metadata.drop_all(engine)


def test_transaction_rollback_is_real(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE test_services_tx (n integer)"))
    try:
        with pytest.raises(RuntimeError), engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO test_services_tx VALUES (1)"))
            raise RuntimeError("roll back")
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM test_services_tx")).scalar_one()
        assert count == 0
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE test_services_tx"))


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
