"""E-mails, tags and re-activation sequences (issue 15 items 4-5).

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "emails",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("lang", sa.String(10), nullable=False),
        sa.Column("to_addr", sa.String(320), nullable=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("message_id", sa.String(300), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("sent_at", TZ, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("sequence", sa.String(64), nullable=True),
        sa.CheckConstraint("status IN ('sent', 'failed', 'skipped')", name="ck_emails_status"),
    )
    op.create_index("ix_emails_account_id", "emails", ["account_id"])
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("name", name="uq_tags_name"),
    )
    op.create_table(
        "account_tags",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("since", TZ, nullable=False),
        sa.Column("until", TZ, nullable=True),
    )
    op.create_index("ix_account_tags_account_id", "account_tags", ["account_id"])
    op.create_index("uq_account_tags_open", "account_tags", ["account_id", "tag"], unique=True,
                    sqlite_where=sa.column("until").is_(None), postgresql_where=sa.column("until").is_(None))
    op.create_table(
        "sequence_enrolments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sequence", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("enrolled_at", TZ, nullable=False),
        sa.Column("ended_at", TZ, nullable=True),
        sa.Column("end_reason", sa.Text, nullable=True),
    )
    op.create_index("ix_sequence_enrolments_account_id", "sequence_enrolments", ["account_id"])
    op.create_index("uq_sequence_enrolments_open", "sequence_enrolments", ["sequence", "account_id"], unique=True,
                    sqlite_where=sa.column("ended_at").is_(None), postgresql_where=sa.column("ended_at").is_(None))
    op.create_table(
        "sequence_steps_sent",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("enrolment_id", sa.Integer, sa.ForeignKey(
            "sequence_enrolments.id", name="fk_sequence_steps_sent_enrolment_id_sequence_enrolments"), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("sent_at", TZ, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("detail", sa.Text, nullable=True),
        sa.UniqueConstraint("enrolment_id", "step", name="uq_sequence_steps_sent_enrolment_id"),
        sa.CheckConstraint("status IN ('sending', 'done', 'failed', 'skipped')", name="ck_sequence_steps_sent_status"),
    )


def downgrade() -> None:
    op.drop_table("sequence_steps_sent")
    op.drop_index("uq_sequence_enrolments_open", "sequence_enrolments")
    op.drop_index("ix_sequence_enrolments_account_id", "sequence_enrolments")
    op.drop_table("sequence_enrolments")
    op.drop_index("uq_account_tags_open", "account_tags")
    op.drop_index("ix_account_tags_account_id", "account_tags")
    op.drop_table("account_tags")
    op.drop_table("tags")
    op.drop_index("ix_emails_account_id", "emails")
    op.drop_table("emails")
