"""The workspace (issue 16): users' password hashes and language, sign-in attempts, and the
interventions people log (the closed loop's).

Revision ID: 0005
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    with op.batch_alter_table("users") as batch:
        if "password_hash" not in have:
            batch.add_column(sa.Column("password_hash", sa.String(200), nullable=True))
        if "lang" not in have:
            batch.add_column(sa.Column("lang", sa.String(10), nullable=False, server_default="en"))
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(320), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
    )
    op.create_index("ix_login_attempts_username", "login_attempts", ["username", "ip", "at"])
    op.create_table(
        "interventions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("playbook", sa.String(200), nullable=True),
        sa.Column("tier", sa.String(20), nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_interventions_account_id", "interventions", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_interventions_account_id", "interventions")
    op.drop_table("interventions")
    op.drop_index("ix_login_attempts_username", "login_attempts")
    op.drop_table("login_attempts")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_hash")
