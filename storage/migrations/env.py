"""Alembic environment: runs against the connection `storage.migrate` hands over.

On PostgreSQL the upgrade holds a session-level advisory lock, so two processes running
`credit-desk db upgrade` at once take turns instead of racing (SQLite serialises writers anyway).
"""

from alembic import context
from sqlalchemy import text

from storage.models import Base

MIGRATION_LOCK_KEY = 7_311_044_201  # any constant shared by every Credit Desk process

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through storage.migrate, which passes a connection")
    is_pg = connection.dialect.name == "postgresql"
    if is_pg:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if is_pg:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            connection.commit()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) mode is not supported")
run_migrations_online()
