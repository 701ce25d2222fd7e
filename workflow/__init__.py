"""The retention workflow (issue 15): what people change, in the operational store.

The analytical store (snapshots, score history) stays in DuckDB (``core.store``); users, teams,
tasks, alerts and their deliveries, tags, sequences, emails, exit interviews, review findings
and the audit log of every change live here, in SQLite by default or PostgreSQL for a team
(SQLAlchemy, migrations with Alembic: ``workflow.db``).

It sits between training and serving in the import flow: it may use ``core``, ``features`` and
``training`` (reason wording), and the service, monitoring and insights use it.
"""
