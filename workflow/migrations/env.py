"""Alembic environment for the operational store. Run through ``workflow.db.migrate`` (which
passes the connection); ``alembic`` on the command line is not needed."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run the operational store's migrations through workflow.db.migrate (churnwatch does it)")
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
