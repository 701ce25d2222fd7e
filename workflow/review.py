"""The churn review's findings (ARTICLE §4, issue 15 item 7) as tracked work items.

A finding ("30% of churners found feature X too complex") has a title, a detail, an owner (a
user of ``workflow.people``), a status (``open`` -> ``in_progress`` -> ``done``, or
``dropped``; any status may be set again) and, when it names a fix, the date the change went
live and the metric that should move (``METRICS``). Every change is audit-logged (entity
``finding``). The before/after measurement of a finding and the review report itself are in
``insights.review`` (they use the diagnosis and the closed loop, which sit above this package).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core.errors import ChurnwatchError
from workflow import audit
from workflow.db import METADATA, write
from workflow.people import USERS

ENTITY = "finding"
STATUSES = ("open", "in_progress", "done", "dropped")
#: metric key -> (English, Chinese, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "first_month_health": ("first-month health of new accounts", "新客户首月健康分", True),
    "retention_90d_new": ("90-day retention of new accounts", "新客户 90 天留存率", True),
    "health_mean": ("mean health score", "平均健康分", True),
    "churn_rate": ("churn rate", "流失率", False),
}

FINDINGS = sa.Table(
    "review_findings", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="open"),
    sa.Column("change_date", sa.Date),
    sa.Column("metric", sa.String(40)),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('open', 'in_progress', 'done', 'dropped')", name="status"),
)


class FindingError(ChurnwatchError):
    """A finding cannot be added or changed as asked (named)."""


def _check(metric: str | None, status: str | None = None, title: str | None = None) -> None:
    if metric is not None and metric not in METRICS:
        raise FindingError(f"unknown metric {metric!r} (metrics: {', '.join(METRICS)})")
    if status is not None and status not in STATUSES:
        raise FindingError(f"unknown status {status!r} (statuses: {', '.join(STATUSES)})")
    if title is not None and not title.strip():
        raise FindingError("a finding needs a title")
    if title is not None and len(title) > 300:
        raise FindingError(f"the title has {len(title)} characters; at most 300")


def owner_id(conn: Connection, owner: str, create: bool = False, actor: str = "") -> int:
    """The user named ``owner`` (name, e-mail or CRM name, case-insensitive); ``create`` adds a
    user of that name (role csm) when none matches, else the error lists the known users."""
    key = owner.strip().lower()
    if not key:
        raise FindingError("a finding needs an owner")
    rows = conn.execute(sa.select(USERS.c.id).where(sa.or_(
        sa.func.lower(USERS.c.name) == key, sa.func.lower(USERS.c.email) == key,
        sa.func.lower(USERS.c.crm_name) == key))).scalars().all()
    if len(rows) == 1:
        return int(rows[0])
    if len(rows) > 1:
        raise FindingError(f"{len(rows)} users are called {owner!r}: give the e-mail instead")
    if create:
        uid = int(conn.execute(USERS.insert().values(name=owner.strip(), role="csm")).inserted_primary_key[0])
        audit.record(conn, actor=actor, entity="user", entity_id=str(uid), action="create",
                     after={"name": owner.strip(), "role": "csm"})
        return uid
    known = conn.execute(sa.select(USERS.c.name).order_by(USERS.c.name).limit(20)).scalars().all()
    raise FindingError(f"no user {owner!r}" + (f" (users: {', '.join(known)})" if known else " (no users yet)")
                       + "; add the owner as a new user with --add-owner")


def _public(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["owner"] = conn.execute(sa.select(USERS.c.name).where(USERS.c.id == row["owner_id"])).scalar_one_or_none()
    for k in ("change_date", "created_at", "updated_at"):
        if out.get(k) is not None:
            out[k] = out[k].isoformat()
    return out


def _get(conn: Connection, finding_id: int, lock: bool = False) -> dict[str, Any]:
    q = sa.select(FINDINGS).where(FINDINGS.c.id == finding_id)
    row = conn.execute(q.with_for_update() if lock else q).mappings().first()
    if row is None:
        raise FindingError(f"no finding {finding_id}")
    return dict(row)


def add(engine: Engine, title: str, owner: str, actor: str, detail: str | None = None,
        change_date: dt.date | None = None, metric: str | None = None, add_owner: bool = False) -> dict[str, Any]:
    """Record a finding (status ``open``); returns it with the owner's name."""
    _check(metric, title=title)
    if (change_date is None) != (metric is None):
        raise FindingError("--change-date and --metric go together: a measured fix needs both")
    now = dt.datetime.now(dt.UTC)
    with write(engine) as conn:
        uid = owner_id(conn, owner, add_owner, actor)
        fid = conn.execute(FINDINGS.insert().values(
            title=title.strip(), detail=detail, owner_id=uid, status="open", change_date=change_date, metric=metric,
            created_by=actor, created_at=now, updated_at=now)).inserted_primary_key[0]
        after = _public(conn, _get(conn, fid))
        audit.record(conn, actor=actor, entity=ENTITY, entity_id=str(fid), action="create", after=after, at=now)
    return after


def update(engine: Engine, finding_id: int, actor: str, *, status: str | None = None, owner: str | None = None,
           title: str | None = None, detail: str | None = None, change_date: dt.date | None = None,
           metric: str | None = None, add_owner: bool = False) -> dict[str, Any]:
    """Change a finding; only the fields given change. Returns the finding after the change."""
    _check(metric, status, title)
    now = dt.datetime.now(dt.UTC)
    with write(engine) as conn:
        before_row = _get(conn, finding_id, lock=True)
        values: dict[str, Any] = {k: v for k, v in (("status", status), ("title", title and title.strip()),
                                                    ("detail", detail), ("change_date", change_date),
                                                    ("metric", metric)) if v is not None}
        if owner is not None:
            values["owner_id"] = owner_id(conn, owner, add_owner, actor)
        merged = {**before_row, **values}
        if (merged["change_date"] is None) != (merged["metric"] is None):
            raise FindingError("--change-date and --metric go together: a measured fix needs both")
        if not values:
            raise FindingError("nothing to change: give --status, --owner, --title, --detail, --change-date or "
                               "--metric")
        before = _public(conn, before_row)
        conn.execute(FINDINGS.update().where(FINDINGS.c.id == finding_id).values(updated_at=now, **values))
        after = _public(conn, _get(conn, finding_id))
        audit.record(conn, actor=actor, entity=ENTITY, entity_id=str(finding_id), action="update", before=before,
                     after=after, at=now)
    return after


def list_findings(engine: Engine, status: str | None = None) -> list[dict[str, Any]]:
    """The findings (of one status when given), oldest first."""
    _check(None, status)
    q = sa.select(FINDINGS).order_by(FINDINGS.c.id)
    if status is not None:
        q = q.where(FINDINGS.c.status == status)
    with engine.connect() as conn:
        return [_public(conn, dict(r)) for r in conn.execute(q).mappings().all()]
