"""Interventions people log (the workspace's "log an intervention"): what the CS team did for an
account, in the operational store, as rows of the data contract's ``interventions`` table
(``account_id``, ``occurred_at``, ``playbook``, ``tier``, ``owner``) that the closed loop
(``insights.closed_loop``) compares with comparable accounts (``as_interventions`` joins them to
the imported ones). Every one is in the audit log.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.errors import ChurnwatchError
from core.vocabulary import TIER_KEYS
from workflow.audit import record
from workflow.db import METADATA, SQLITE_FILE, open_store, operations_url, write

INTERVENTIONS = sa.Table(
    "interventions", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(200), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("playbook", sa.String(200), nullable=True),
    sa.Column("tier", sa.String(20), nullable=True),
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_interventions_account_id", "account_id"),
)
#: the columns of the contract's ``interventions`` table
CONTRACT_COLUMNS = ["account_id", "occurred_at", "playbook", "tier", "owner"]
MAX_NOTE = 4000


class InterventionError(ChurnwatchError):
    """An intervention that cannot be logged (named)."""


def log_intervention(engine: Engine, *, account_id: str, actor: str, playbook: str | None = None,
                     tier: str | None = None, note: str | None = None,
                     occurred_at: dt.datetime | None = None) -> dict[str, Any]:
    """Store one intervention (audited); returns it.

    Raises:
        InterventionError: no account, an unknown tier, a note over ``MAX_NOTE`` characters.
    """
    if not account_id or not str(account_id).strip():
        raise InterventionError("an intervention needs an account id")
    if tier is not None and tier not in TIER_KEYS:
        raise InterventionError(f"unknown tier {tier!r}: one of {', '.join(TIER_KEYS)}")
    if note and len(note) > MAX_NOTE:
        raise InterventionError(f"the note has {len(note):,} characters; at most {MAX_NOTE:,}")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    values = dict(account_id=str(account_id).strip(), occurred_at=occurred_at or now, playbook=playbook or None,
                  tier=tier, owner=actor, note=(note or "").strip() or None, created_at=now)
    with write(engine) as conn:
        iid = conn.execute(INTERVENTIONS.insert().values(**values)).inserted_primary_key[0]
        record(conn, actor=actor, entity="intervention", entity_id=iid, action="create", after=values)
    return {"id": iid, **values}


def interventions_of(engine: Engine, account_id: str) -> list[dict[str, Any]]:
    """An account's logged interventions, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(INTERVENTIONS).where(INTERVENTIONS.c.account_id == str(account_id))
                            .order_by(INTERVENTIONS.c.occurred_at.desc(), INTERVENTIONS.c.id.desc())).mappings()
        return [dict(r) for r in rows]


def as_interventions(engine: Engine, imported: pd.DataFrame | None = None) -> pd.DataFrame:
    """The logged interventions as rows of the contract's ``interventions`` table (naive UTC
    ``occurred_at``), after the ``imported`` ones when given."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*[INTERVENTIONS.c[c] for c in CONTRACT_COLUMNS])).mappings().all()
    logged = pd.DataFrame([dict(r) for r in rows], columns=CONTRACT_COLUMNS)
    logged["occurred_at"] = pd.to_datetime(logged["occurred_at"], utc=True).dt.tz_localize(None)
    if imported is None or imported.empty:
        return logged
    if logged.empty:  # concatenating an empty frame is deprecated in pandas (it would change the dtypes)
        return imported.reset_index(drop=True)
    return pd.concat([imported, logged], ignore_index=True)


def interventions_of_home(home: Path, imported: pd.DataFrame | None = None,
                          configured_url: str | None = None) -> pd.DataFrame:
    """``as_interventions`` of the home's operational store (the ``imported`` ones alone when the
    home has none yet: the default SQLite file is not created just to read it)."""
    url = operations_url(home, configured_url)
    if url.startswith("sqlite:///") and url.endswith(SQLITE_FILE) and not (Path(home) / SQLITE_FILE).exists():
        return imported if imported is not None else pd.DataFrame(columns=CONTRACT_COLUMNS)
    return as_interventions(open_store(url), imported)
