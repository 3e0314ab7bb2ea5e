"""customer search tuning: PostgreSQL name indexes that avoid trigram scans of common words

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00

Why (measured at 1M mirrored customers, see benchmarks/README.md): the trigram GIN index of 0002 reads the
posting list of every trigram in the query, and the trigrams of common words ("international",
"industries") each list a large part of the table; one such word cost 10-50 ms before any row was read.
Two PostgreSQL-only indexes let search avoid that for most queries:

- `ix_ns_customers_name_c`: a B-tree on `name_normalized COLLATE "C"`, so that a name prefix is a range
  scan in code-point order, the order SQLite's plain index gives and the service's tie-break uses,
  whatever the database's collation (the model's own index follows the database collation, which cannot
  answer a code-point range).
- `ix_ns_customers_name_words`: a GIN index on the name's words, `string_to_array(name_normalized, ' ')`
  (normalised names are single-space separated). "Every one of these words" and "one of these spellings
  of a word" become lookups of whole words, cheapest word first, instead of trigram scans.

Neither is a GiST trigram index, which must never sit beside the GIN one (see 0002). SQLite needs
neither: its plain index on `name_normalized` is already in code-point order and FTS5 does the rest.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute('CREATE INDEX ix_ns_customers_name_c ON ns_customers (name_normalized COLLATE "C")')
    op.execute(
        "CREATE INDEX ix_ns_customers_name_words ON ns_customers"
        " USING gin (string_to_array(name_normalized, ' '))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_ns_customers_name_words")
    op.execute("DROP INDEX IF EXISTS ix_ns_customers_name_c")
