"""drop the mirror's clear tax number: `ns_customers.tax_number` and its index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00

Why: the column could hold a customer's Federal ID in clear (docs/security.md). Nothing has written it for
a while (the ingest reads no tax numbers and a sync stores only `tax_number_digest`, the keyed digest of
`bot.federal_id.FederalIdCipher.digest`), but search, the link comparison and the credit-increase form
still read it, so any later change that filled it would have put clear Federal IDs in the mirror and in
Slack. Search by Federal ID now goes through the digest alone.

Values still in the column are discarded, not turned into digests: a migration has no Federal ID key.
They are set to NULL before the column goes, so that PostgreSQL (whose DROP COLUMN only hides the column)
writes rows without them; the old row versions, and SQLite's freed pages, keep them until the next VACUUM
(the table is rewritten). Run VACUUM after this migration if the column ever held values.

SQLite: not a batch (`batch_alter_table`) rebuild, which would drop the FTS5 triggers of 0002 and 0007, but
`ALTER TABLE ns_customers DROP COLUMN` (SQLite >= 3.35), after dropping the index; no trigger, view or
other index names the column. An older SQLite (3.34 still has FTS5 trigram, which 0002 needs) cannot drop
a column in place: there the column is only emptied and left, unindexed and unknown to the model.

The downgrade adds the column back (empty, nullable) and its index; the values do not come back.
"""

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_DROP_COLUMN = (3, 35, 0)


def _has_column() -> bool:
    return any(c["name"] == "tax_number" for c in sa.inspect(op.get_bind()).get_columns("ns_customers"))


def upgrade() -> None:
    op.execute("UPDATE ns_customers SET tax_number = NULL WHERE tax_number IS NOT NULL")
    op.execute("DROP INDEX IF EXISTS ix_ns_customers_tax_number")
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < SQLITE_DROP_COLUMN:
        return
    op.execute("ALTER TABLE ns_customers DROP COLUMN tax_number")


def downgrade() -> None:
    if not _has_column():
        op.execute("ALTER TABLE ns_customers ADD COLUMN tax_number VARCHAR(40)")
    op.execute("CREATE INDEX ix_ns_customers_tax_number ON ns_customers (tax_number)")
