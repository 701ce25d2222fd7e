"""The audit log: every change a person or a command makes in the operational store, with who
made it, when, and the record before and after (JSON). Written in the same transaction as the
change it records."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.db import METADATA

AUDIT = sa.Table(
    "audit_log", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("entity", sa.String(50), nullable=False),
    sa.Column("entity_id", sa.String(200), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
    sa.Index("ix_audit_log_entity", "entity", "entity_id"),
)


def _json(value: dict[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)


def record(conn: Connection, *, actor: str, entity: str, entity_id: str, action: str,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           at: dt.datetime | None = None) -> None:
    """Add one audit entry inside the caller's transaction."""
    conn.execute(AUDIT.insert().values(
        at=at or dt.datetime.now(dt.UTC), actor=actor, entity=entity, entity_id=str(entity_id), action=action,
        before=_json(before), after=_json(after)))


def history(conn: Connection, entity: str, entity_id: str) -> list[dict[str, Any]]:
    """The audit entries of one record, oldest first, ``before``/``after`` decoded."""
    rows = conn.execute(sa.select(AUDIT).where(AUDIT.c.entity == entity, AUDIT.c.entity_id == str(entity_id))
                        .order_by(AUDIT.c.id)).mappings().all()
    out = []
    for r in rows:
        d = dict(r)
        d["before"] = json.loads(d["before"]) if d["before"] else None
        d["after"] = json.loads(d["after"]) if d["after"] else None
        out.append(d)
    return out
