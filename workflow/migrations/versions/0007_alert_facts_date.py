"""The date of the score an alert's figures are from (``facts_as_of``): the account's latest score for an
episode that still holds when a backfill raises it, else the firing score's (null on older alerts: the
firing score's).

Revision ID: 0007
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("facts_as_of", sa.Date, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("facts_as_of")
