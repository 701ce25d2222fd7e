"""Users and teams: the people tasks are assigned to and escalated through.

A user has a role (``csm``, ``lead``, ``admin``), a team, a manager (the user a lead's
escalation goes to) and a language. An account's CSM in the CRM data (``accounts.csm``) maps to
the user whose ``crm_name`` (or e-mail) matches it.
"""

from __future__ import annotations

import sqlalchemy as sa

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
    sa.CheckConstraint("role IN ('csm', 'lead', 'admin')", name="role"),
)
