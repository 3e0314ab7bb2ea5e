"""customer search indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00

What each database needs to find customers by name fast (see `storage.repositories.customer_search`):

- PostgreSQL: the `pg_trgm` extension and ONE trigram GIN index on `ns_customers.name_normalized`.
  Never add a GiST trigram index next to it: the planner prefers GiST and queries become ~50x slower.
- SQLite: an FTS5 `tokenize='trigram'` table over `name_normalized` whose content is `ns_customers`
  itself (external content, rowid = `internal_id`), kept in step by three triggers. The triggers hand
  FTS5 exactly the old indexed value on delete/update; an external-content index fed anything else
  is silently corrupted, so the mirror must never write to the FTS table itself.
- Both: case-insensitive lookups by city and entity id (`lower(...)` expression indexes; the city one
  carries `customer_id` so a city lookup reads the index only) and an index on the raw tax number.

Heads-up for later migrations: a SQLite batch (`batch_alter_table`) rewrite of `ns_customers` drops the
table's triggers; such a migration must create them again (copy `_SQLITE_TRIGGERS`) and then run
`INSERT INTO ns_customers_fts(ns_customers_fts) VALUES ('rebuild')`.

The downgrade drops the indexes, the FTS table and the triggers; it leaves the `pg_trgm` extension
installed, because other objects in the database may use it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER ns_customers_fts_insert AFTER INSERT ON ns_customers BEGIN
        INSERT INTO ns_customers_fts(rowid, name_normalized) VALUES (new.internal_id, new.name_normalized);
    END
    """,
    """
    CREATE TRIGGER ns_customers_fts_delete AFTER DELETE ON ns_customers BEGIN
        INSERT INTO ns_customers_fts(ns_customers_fts, rowid, name_normalized)
        VALUES ('delete', old.internal_id, old.name_normalized);
    END
    """,
    """
    CREATE TRIGGER ns_customers_fts_update AFTER UPDATE OF internal_id, name_normalized ON ns_customers
    BEGIN
        INSERT INTO ns_customers_fts(ns_customers_fts, rowid, name_normalized)
        VALUES ('delete', old.internal_id, old.name_normalized);
        INSERT INTO ns_customers_fts(rowid, name_normalized) VALUES (new.internal_id, new.name_normalized);
    END
    """,
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_ns_customers_name_trgm ON ns_customers USING gin (name_normalized gin_trgm_ops)"
        )
    elif dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE ns_customers_fts USING fts5("
            "name_normalized, content='ns_customers', content_rowid='internal_id', tokenize='trigram')"
        )
        for ddl in _SQLITE_TRIGGERS:
            op.execute(ddl)
        op.execute(
            "INSERT INTO ns_customers_fts(ns_customers_fts) VALUES ('rebuild')"
        )  # rows mirrored before 0002
        # FTS5 reads each candidate's name from ns_customers by internal_id, which is not SQLite's rowid
        # there; this covering index makes that one B-tree search instead of two.
        op.execute("CREATE INDEX ix_ns_customers_id_name ON ns_customers (internal_id, name_normalized)")
    else:
        raise NotImplementedError(f"customer search supports PostgreSQL and SQLite, not {dialect}")
    op.execute("CREATE INDEX ix_ns_customers_entity_id_lower ON ns_customers (lower(entity_id))")
    op.execute("CREATE INDEX ix_ns_customers_tax_number ON ns_customers (tax_number)")
    op.execute(
        "CREATE INDEX ix_ns_customer_addresses_city_lower ON ns_customer_addresses (lower(city), customer_id)"
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP INDEX IF EXISTS ix_ns_customer_addresses_city_lower")
    op.execute("DROP INDEX IF EXISTS ix_ns_customers_tax_number")
    op.execute("DROP INDEX IF EXISTS ix_ns_customers_entity_id_lower")
    if dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_ns_customers_name_trgm")
    elif dialect == "sqlite":
        op.execute("DROP INDEX IF EXISTS ix_ns_customers_id_name")
        for trigger in ("ns_customers_fts_update", "ns_customers_fts_delete", "ns_customers_fts_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS ns_customers_fts")
