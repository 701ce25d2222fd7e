"""Users, teams and the audit log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("lead_id", sa.Integer, nullable=True),
        sa.Column("channel", sa.String(200), nullable=True),
        sa.UniqueConstraint("name", name="uq_teams_name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("crm_name", sa.String(200), nullable=True),
        sa.Column("role", sa.String(20), nullable=False, server_default="csm"),
        sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", name="fk_users_team_id_teams"), nullable=True),
        sa.Column("manager_id", sa.Integer, sa.ForeignKey("users.id", name="fk_users_manager_id_users"),
                  nullable=True),
        sa.Column("lang", sa.String(10), nullable=False, server_default="en"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.UniqueConstraint("crm_name", name="uq_users_crm_name"),
        sa.CheckConstraint("role IN ('csm', 'lead', 'admin')", name="ck_users_role"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("entity", sa.String(50), nullable=False),
        sa.Column("entity_id", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_entity", "audit_log")
    op.drop_table("audit_log")
    op.drop_table("users")
    op.drop_table("teams")
