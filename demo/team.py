"""The demo's customer-success team in the operational store: every CSM of the demo accounts as a
user, one team with a lead (who approves plans) and an admin (who edits settings), all signed in
with one password made for this demo home and printed at the end of ``churnwatch demo``.

Only for demo homes: a real team adds its people with ``churnwatch users add`` and sets each
password with ``churnwatch users password``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from core.settings import Settings
from core.store import csm_names
from workflow.db import store_for, write
from workflow.people import TEAMS, USERS, add_user, find_user, user_for_csm
from workspace.auth import set_password

TEAM = "Customer success"
LEAD = "Lena Park"
ADMIN = "Ada Admin"
ACTOR = "churnwatch demo"


@dataclass(frozen=True)
class DemoTeam:
    password: str
    csms: list[str]
    lead: str = LEAD
    admin: str = ADMIN


def demo_team(root: Path, store: Path, settings: Settings) -> DemoTeam:
    """Create (or complete) the demo team and give every member the same new password."""
    engine = store_for(root, settings.operations.url)
    names = csm_names(store)
    with write(engine) as conn:
        for who, role in ((LEAD, "lead"), (ADMIN, "admin")):
            if conn.execute(sa.select(USERS.c.id).where(USERS.c.name == who)).first() is None:
                add_user(conn, name=who, actor=ACTOR, role=role, team=TEAM)
        team_id = conn.execute(sa.select(TEAMS.c.id).where(TEAMS.c.name == TEAM)).scalar_one()
        for name in names:
            uid = user_for_csm(conn, name, ACTOR)
            conn.execute(USERS.update().where(USERS.c.id == uid, USERS.c.team_id.is_(None)).values(team_id=team_id))
        members = [find_user(conn, n)["name"] for n in (LEAD, ADMIN, *names)]
    password = secrets.token_urlsafe(9)
    for who in members:
        set_password(engine, who, password, ACTOR)
    return DemoTeam(password=password, csms=names)
