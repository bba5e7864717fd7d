"""Alembic environment: servewell always hands in an open connection (see migrate.py)."""

from alembic import context

from servewell.registry.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
