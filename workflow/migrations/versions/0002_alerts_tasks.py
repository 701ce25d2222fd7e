"""Alerts, retention tasks and deliveries (moved from the DuckDB store).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = "status NOT IN ('done', 'cancelled')"


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("episode_start", sa.Date, nullable=False),
        sa.Column("fired_as_of", sa.Date, nullable=False),
        sa.Column("health_score", sa.Integer, nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("segment", sa.String(200)),
        sa.Column("churn_probability", sa.Float),
        sa.Column("mrr", sa.Float),
        sa.Column("expected_loss", sa.Float),
        sa.Column("csm", sa.String(200)),
        sa.Column("top_reason_en", sa.Text),
        sa.Column("top_reason_zh", sa.Text),
        sa.Column("task_id", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("rule", "account_id", "episode_start", name="uq_alerts_rule"),
    )
    op.create_index("ix_alerts_account_id", "alerts", ["account_id"])
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("episode_key", sa.String(200), nullable=False),
        sa.Column("alert_ids", sa.Text, nullable=False, server_default="[]"),
        sa.Column("status", sa.String(20), nullable=False, server_default="open"),
        sa.Column("assignee_id", sa.Integer, sa.ForeignKey("users.id", name="fk_tasks_assignee_id_users")),
        sa.Column("owner_role", sa.String(200)),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("action", sa.Text),
        sa.Column("action_zh", sa.Text),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("plan", sa.Text),
        sa.Column("approved_by", sa.String(200)),
        sa.Column("next_action", sa.Text),
        sa.Column("cancel_reason", sa.Text),
        sa.Column("escalation_level", sa.Integer, nullable=False, server_default="0"),
        sa.Column("escalated_at", sa.DateTime(timezone=True)),
        sa.Column("as_of", sa.Date),
        sa.Column("health_score", sa.Integer),
        sa.Column("churn_probability", sa.Float),
        sa.Column("mrr", sa.Float),
        sa.Column("expected_loss", sa.Float),
        sa.Column("top_reason_en", sa.Text),
        sa.Column("top_reason_zh", sa.Text),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("account_id", "episode_key", name="uq_tasks_account_id"),
        sa.CheckConstraint("status IN ('open', 'plan_drafted', 'approved', 'action_assigned', 'done', "
                           "'cancelled')", name="ck_tasks_status"),
    )
    op.create_index("uq_tasks_open_account", "tasks", ["account_id"], unique=True,
                    sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("webhook", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("http_status", sa.Integer),
        sa.Column("payload", sa.Text),
        sa.Column("lang", sa.String(10), nullable=False, server_default="en"),
        sa.Column("alert_ids", sa.Text, nullable=False, server_default="[]"),
        sa.Column("task_ids", sa.Text, nullable=False, server_default="[]"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("idempotency_key", name="uq_deliveries_idempotency_key"),
        sa.CheckConstraint("kind IN ('digest', 'alert', 'email', 'escalation', 'sequence')", name="ck_deliveries_kind"),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="ck_deliveries_status"),
    )
    op.create_index("ix_deliveries_status", "deliveries", ["status"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_status", "deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_tasks_status", "tasks")
    op.drop_index("uq_tasks_open_account", "tasks")
    op.drop_table("tasks")
    op.drop_index("ix_alerts_account_id", "alerts")
    op.drop_table("alerts")
