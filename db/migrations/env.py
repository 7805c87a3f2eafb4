"""Alembic environment: runs against the URL set by db.migrate (never an ini file)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from db.engine import make_engine
from db.migrate import include_object
from db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER via table copy
        compare_type=True,
        include_object=include_object,  # not APScheduler's job table
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
