"""Exit interviews and the churn review's findings.

Revision ID: 0004
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exit_interviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("churned_at", sa.Date, nullable=False),
        sa.Column("interviewed_on", sa.Date, nullable=False),
        sa.Column("interviewer", sa.String(200), nullable=False),
        sa.Column("lang", sa.String(10), nullable=False, server_default="en"),
        sa.Column("main_reason", sa.Text, nullable=False),
        sa.Column("asked_for_help", sa.Text),
        sa.Column("do_better", sa.Text),
        sa.Column("instead", sa.Text),
        sa.Column("come_back", sa.Text),
        sa.Column("suggested_category", sa.String(40), nullable=False),
        sa.Column("suggested_avoidable", sa.Boolean),
        sa.Column("suggestion_basis", sa.Text),
        sa.Column("category", sa.String(40)),
        sa.Column("avoidable", sa.Boolean),
        sa.Column("confirmed_by", sa.String(200)),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("account_id", "churned_at", name="uq_exit_interviews_account_id"),
    )
    op.create_table(
        "review_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id", name="fk_review_findings_owner_id_users"),
                  nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="open"),
        sa.Column("change_date", sa.Date),
        sa.Column("metric", sa.String(40)),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'in_progress', 'done', 'dropped')", name="ck_review_findings_status"),
    )


def downgrade() -> None:
    op.drop_table("review_findings")
    op.drop_table("exit_interviews")
