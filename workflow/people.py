"""Users and teams: the people tasks are assigned to and escalated through.

A user has a role (``csm``, ``lead``, ``admin``), a team, a manager (the user a lead's
escalation goes to) and a language. An account's CSM in the CRM data (``accounts.csm``) maps to
the user whose ``crm_name`` (or e-mail) matches it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.errors import ChurnwatchError
from workflow.audit import record
from workflow.db import METADATA

ROLES = ("csm", "lead", "admin")

TEAMS = sa.Table(
    "teams", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("lead_id", sa.Integer, nullable=True),  # users.id; not a foreign key: users refer to teams
    sa.Column("channel", sa.String(200), nullable=True),  # a webhook name for the team's escalations
)

USERS = sa.Table(
    "users", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320), nullable=True, unique=True),
    sa.Column("crm_name", sa.String(200), nullable=True, unique=True),
    sa.Column("role", sa.String(20), nullable=False, server_default="csm"),
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), nullable=True),
    sa.Column("manager_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("lang", sa.String(10), nullable=False, server_default="en"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("password_hash", sa.String(200), nullable=True),  # migration 0005; set by workspace.auth
    sa.CheckConstraint("role IN ('csm', 'lead', 'admin')", name="role"),
)


class PeopleError(ChurnwatchError):
    """A user that does not exist, or a user's details that cannot be stored (named)."""


def user_row(conn: Connection, user_id: int | None) -> dict[str, Any] | None:
    """One user as a dict, or None."""
    if user_id is None:
        return None
    row = conn.execute(sa.select(USERS).where(USERS.c.id == user_id)).mappings().first()
    return dict(row) if row else None


def find_user(conn: Connection, who: str) -> dict[str, Any]:
    """The user named by ``who``: an id, an e-mail, a CRM name or a name (in that order).

    Raises:
        PeopleError: nobody matches, naming ``who``.
    """
    text = str(who).strip()
    conds = [USERS.c.email == text, USERS.c.crm_name == text, USERS.c.name == text]
    if text.isdigit():
        conds.insert(0, USERS.c.id == int(text))
    for cond in conds:
        row = conn.execute(sa.select(USERS).where(cond).order_by(USERS.c.id)).mappings().first()
        if row:
            return dict(row)
    raise PeopleError(f"unknown user {who!r}: give a user id, e-mail, CRM name or name (churnwatch users list)")


def add_user(conn: Connection, *, name: str, actor: str, email: str | None = None, crm_name: str | None = None,
             role: str = "csm", team: str | None = None, manager: str | None = None, lang: str = "en") -> dict:
    """Add a user (and its team when new) inside the caller's transaction; audited.

    Raises:
        PeopleError: an empty name, an unknown role or manager, an e-mail or CRM name already taken.
    """
    if not name or not name.strip():
        raise PeopleError("a user needs a name")
    if role not in ROLES:
        raise PeopleError(f"role {role!r} is not one of {', '.join(ROLES)}")
    for column, value in (("email", email), ("crm_name", crm_name)):
        if value and conn.execute(sa.select(USERS.c.id).where(USERS.c[column] == value)).first():
            raise PeopleError(f"a user with {column} {value!r} already exists")
    team_id = _team_id(conn, team, actor) if team else None
    manager_id = find_user(conn, manager)["id"] if manager else None
    values = dict(name=name.strip(), email=email or None, crm_name=crm_name or None, role=role, team_id=team_id,
                  manager_id=manager_id, lang=lang)
    uid = conn.execute(USERS.insert().values(**values)).inserted_primary_key[0]
    if role == "lead" and team_id is not None:
        lead = conn.execute(sa.select(TEAMS.c.lead_id).where(TEAMS.c.id == team_id)).scalar()
        if lead is None:
            conn.execute(TEAMS.update().where(TEAMS.c.id == team_id).values(lead_id=uid))
    record(conn, actor=actor, entity="user", entity_id=uid, action="create", after=values)
    return {"id": uid, **values}


def _team_id(conn: Connection, team: str, actor: str) -> int:
    """The id of team ``team``, created (audited) when new."""
    team_id = conn.execute(sa.select(TEAMS.c.id).where(TEAMS.c.name == team)).scalar()
    if team_id is None:
        team_id = conn.execute(TEAMS.insert().values(name=team)).inserted_primary_key[0]
        record(conn, actor=actor, entity="team", entity_id=team_id, action="create", after={"name": team})
    return team_id


def update_user(conn: Connection, who: str, *, actor: str, email: str | None = None, role: str | None = None,
                team: str | None = None, manager: str | None = None, lang: str | None = None) -> dict:
    """Change an existing user (``find_user``) inside the caller's transaction; audited with before and
    after. A CSM the first alerts created (or ``users import``) is put on a team so: before, ``users add``
    said "already exists" and the lead saw none of that CSM's accounts (a probe's team). A lead put on a
    team without one becomes its lead.

    Raises:
        PeopleError: an unknown user, role or manager; an e-mail another user has.
    """
    user = find_user(conn, who)
    values: dict[str, Any] = {}
    if role is not None:
        if role not in ROLES:
            raise PeopleError(f"role {role!r} is not one of {', '.join(ROLES)}")
        values["role"] = role
    if email is not None:
        other = conn.execute(sa.select(USERS.c.id).where(USERS.c.email == email, USERS.c.id != user["id"])).first()
        if other:
            raise PeopleError(f"a user with email {email!r} already exists")
        values["email"] = email or None
    if team is not None:
        values["team_id"] = _team_id(conn, team, actor) if team else None
    if manager is not None:
        values["manager_id"] = find_user(conn, manager)["id"] if manager else None
    if lang is not None:
        values["lang"] = lang
    if not values:
        return {k: v for k, v in user.items() if k != "password_hash"}
    conn.execute(USERS.update().where(USERS.c.id == user["id"]).values(**values))
    if (values.get("role", user["role"]) == "lead") and values.get("team_id") is not None:
        lead = conn.execute(sa.select(TEAMS.c.lead_id).where(TEAMS.c.id == values["team_id"])).scalar()
        if lead is None:
            conn.execute(TEAMS.update().where(TEAMS.c.id == values["team_id"]).values(lead_id=user["id"]))
    record(conn, actor=actor, entity="user", entity_id=user["id"], action="update",
           before={k: user.get(k) for k in values}, after=values)
    return {k: v for k, v in {**user, **values}.items() if k != "password_hash"}


def list_users(conn: Connection) -> list[dict[str, Any]]:
    """Every user with its team's name, by id."""
    public = [c for c in USERS.c if c.name != "password_hash"]  # never shown, never sent
    rows = conn.execute(sa.select(*public, TEAMS.c.name.label("team")).select_from(
        USERS.outerjoin(TEAMS, USERS.c.team_id == TEAMS.c.id)).order_by(USERS.c.id)).mappings().all()
    return [dict(r) for r in rows]


def user_for_csm(conn: Connection, csm: str | None, actor: str = "churnwatch") -> int | None:
    """The user an account's CSM (``accounts.csm``: a CRM name or an e-mail) maps to; a CSM seen
    for the first time becomes a user (role csm), audited. None when the account has no CSM."""
    if csm is None or (isinstance(csm, float) and csm != csm) or not str(csm).strip():
        return None
    text = str(csm).strip()
    found = conn.execute(sa.select(USERS.c.id).where(sa.or_(USERS.c.crm_name == text, USERS.c.email == text))
                         .order_by(USERS.c.id)).scalar()
    if found is not None:
        return found
    email = text if "@" in text else None
    return add_user(conn, name=text, actor=actor, email=email, crm_name=None if email else text)["id"]


def team_lead(conn: Connection, user_id: int | None) -> int | None:
    """Whom a user's overdue task escalates to first: the lead of the user's team (when that is
    not the user), else the user's manager."""
    user = user_row(conn, user_id)
    if user is None:
        return None
    if user["team_id"] is not None:
        lead = conn.execute(sa.select(TEAMS.c.lead_id).where(TEAMS.c.id == user["team_id"])).scalar()
        if lead is not None and lead != user_id:
            return lead
    return user["manager_id"]


def team_channel(conn: Connection, user_id: int | None) -> str | None:
    """The webhook name of a user's team, if the team has one."""
    user = user_row(conn, user_id)
    if user is None or user["team_id"] is None:
        return None
    return conn.execute(sa.select(TEAMS.c.channel).where(TEAMS.c.id == user["team_id"])).scalar()
