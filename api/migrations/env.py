"""Alembic environment: the engine is handed in by api.database.migrate (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

engine: Engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, transactional_ddl=True)
    context.run_migrations()
