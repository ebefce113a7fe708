"""Alembic environment: migrations run programmatically on the connection state.py hands over."""

from __future__ import annotations

from alembic import context

from clearsight.auth.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  version_table="clearsight_auth_version")
with context.begin_transaction():
    context.run_migrations()
