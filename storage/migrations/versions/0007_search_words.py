"""customer search by whole words: the name vocabulary (both databases) and SQLite's word FTS5 table

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00

Why (measured at 1M mirrored customers, see benchmarks/README.md): a typo was found by looking up every
spelling one edit away from each query word (~450 for an 8-letter word) in an index, nearly all of them
absent, and SQLite had only trigram FTS5, whose typo expression reads a large part of the table.

- `ns_customer_name_words` (both): every distinct word of `ns_customers.name_normalized`, one row each.
  Search holds it in memory (`bot.customers.search.NameVocabulary`), so the spellings of a typo are
  checked against a set and only the few real words go to the database. Triggers add the words of every
  inserted or renamed customer, in the writer's own transaction; nothing is ever removed (a word whose
  last customer went costs one lookup that finds nothing). Only names made of `[0-9a-z ]` (every name
  `normalize_name` makes) are split into words. How a search learns of words added since it last looked:
  - SQLite: `id` (AUTOINCREMENT) grows with each new word, and SQLite commits one writer at a time, so
    "ids above the highest read" is exactly what was added since;
  - PostgreSQL: `added_xid` is the adding transaction; rows not visible to the last snapshot read are
    those of transactions at or after its `xmax` or in progress then (its `xip` list), and the index on
    `added_xid` finds just those. A sequence could not do this: its numbers commit out of order.
  PostgreSQL's triggers run `INSERT ... ON CONFLICT DO NOTHING` once per statement for inserted
  customers and once per renamed customer: a word that is known costs one primary-key probe. Two
  writers adding the same new word at once wait on each other for that word, as for any unique key.
- `ns_customers_word_fts` (SQLite): an FTS5 table with the `unicode61` tokenizer (whole words) over the
  name and the sales rep (external content `ns_customers`, rowid = `internal_id`, `detail=column` so
  that the rep column can be filtered, no column sizes: nothing ranks by FTS5). "Every query word" is
  then an intersection of word lists, and a rep's search reads only names of that rep. Three triggers
  keep it in step as 0002's do for the trigram table (the update one fires only when the name, the rep
  or the id really changes, so the mirror's upserts of unchanged names cost nothing here).
- PostgreSQL: `ix_ns_customers_name_c` (0005) becomes `ix_ns_customers_name_c_id`, the same with the
  internal id, the tie-break of the prefix search's order: with it a prefix that starts thousands of
  names stops after the first 25 index entries, where the planner read and sorted them all (10-18 ms
  for "keystone" at 1M).

All are built from the rows already mirrored. PostgreSQL needs no new word index: its word GIN index of
0005 answers the same questions as SQLite's word FTS5 table.

Heads-up for later migrations (as in 0002): a SQLite batch rewrite of `ns_customers` drops its triggers,
these included; such a migration must create them again and run `INSERT INTO
ns_customers_word_fts(ns_customers_word_fts) VALUES ('rebuild')`.

The downgrade drops the triggers, the tables and the PostgreSQL functions, and puts 0005's
`ix_ns_customers_name_c` back in place of `ix_ns_customers_name_c_id`.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: the words of one name, as the rows of json_each over '["w1","w2",...]'. Only names of
# `[0-9a-z ]` get here (the triggers' WHEN), so no word can break the JSON.
_SQLITE_NEW_WORDS = """
    INSERT INTO ns_customer_name_words (word)
    SELECT DISTINCT value FROM json_each('["' || replace({name}, ' ', '","') || '"]')
    WHERE value <> '' AND value NOT IN (SELECT word FROM ns_customer_name_words)
"""
_SQLITE_SPLITTABLE = "{name} IS NOT NULL AND {name} NOT GLOB '*[^0-9a-z ]*'"

_SQLITE_TRIGGERS = (
    f"""
    CREATE TRIGGER ns_customer_name_words_insert AFTER INSERT ON ns_customers
    WHEN {_SQLITE_SPLITTABLE.format(name="new.name_normalized")}
    BEGIN {_SQLITE_NEW_WORDS.format(name="new.name_normalized")}; END
    """,
    f"""
    CREATE TRIGGER ns_customer_name_words_update AFTER UPDATE OF name_normalized ON ns_customers
    WHEN new.name_normalized IS NOT old.name_normalized
        AND {_SQLITE_SPLITTABLE.format(name="new.name_normalized")}
    BEGIN {_SQLITE_NEW_WORDS.format(name="new.name_normalized")}; END
    """,
    """
    CREATE TRIGGER ns_customers_word_fts_insert AFTER INSERT ON ns_customers BEGIN
        INSERT INTO ns_customers_word_fts (rowid, name_normalized, sales_rep_id)
        VALUES (new.internal_id, new.name_normalized, new.sales_rep_id);
    END
    """,
    """
    CREATE TRIGGER ns_customers_word_fts_delete AFTER DELETE ON ns_customers BEGIN
        INSERT INTO ns_customers_word_fts (ns_customers_word_fts, rowid, name_normalized, sales_rep_id)
        VALUES ('delete', old.internal_id, old.name_normalized, old.sales_rep_id);
    END
    """,
    """
    CREATE TRIGGER ns_customers_word_fts_update AFTER UPDATE OF internal_id, name_normalized, sales_rep_id
    ON ns_customers
    WHEN old.internal_id IS NOT new.internal_id
        OR old.name_normalized IS NOT new.name_normalized
        OR old.sales_rep_id IS NOT new.sales_rep_id
    BEGIN
        INSERT INTO ns_customers_word_fts (ns_customers_word_fts, rowid, name_normalized, sales_rep_id)
        VALUES ('delete', old.internal_id, old.name_normalized, old.sales_rep_id);
        INSERT INTO ns_customers_word_fts (rowid, name_normalized, sales_rep_id)
        VALUES (new.internal_id, new.name_normalized, new.sales_rep_id);
    END
    """,
)
_SQLITE_TRIGGER_NAMES = (
    "ns_customer_name_words_insert",
    "ns_customer_name_words_update",
    "ns_customers_word_fts_insert",
    "ns_customers_word_fts_delete",
    "ns_customers_word_fts_update",
)

_PG_SPLITTABLE = "{name} IS NOT NULL AND {name} !~ '[^0-9a-z ]'"
# Inserted customers: once per statement, over its transition table (the mirror writes a batch of a
# thousand customers with one INSERT ... SELECT), ~7 ms per thousand new customers where a row
# trigger cost ~13. Renamed customers: per row, and only when the name really changed, so that
# upserts of unchanged names (most of an incremental run) cost nothing here.
_PG_FUNCTIONS = (
    """
    CREATE FUNCTION ns_customer_name_words_add_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO ns_customer_name_words (word)
        SELECT DISTINCT w FROM inserted, unnest(string_to_array(inserted.name_normalized, ' ')) AS w
        WHERE inserted.name_normalized !~ '[^0-9a-z ]' AND w <> '' ORDER BY w
        ON CONFLICT (word) DO NOTHING;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION ns_customer_name_words_add_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO ns_customer_name_words (word)
        SELECT DISTINCT w FROM unnest(string_to_array(NEW.name_normalized, ' ')) AS w
        WHERE w <> '' ORDER BY w
        ON CONFLICT (word) DO NOTHING;
        RETURN NULL;
    END
    $$
    """,
)
_PG_TRIGGERS = (
    """
    CREATE TRIGGER ns_customer_name_words_insert AFTER INSERT ON ns_customers
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
    EXECUTE FUNCTION ns_customer_name_words_add_inserted()
    """,
    f"""
    CREATE TRIGGER ns_customer_name_words_update AFTER UPDATE OF name_normalized ON ns_customers
    FOR EACH ROW WHEN (NEW.name_normalized IS DISTINCT FROM OLD.name_normalized
        AND {_PG_SPLITTABLE.format(name="NEW.name_normalized")})
    EXECUTE FUNCTION ns_customer_name_words_add_renamed()
    """,
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE TABLE ns_customer_name_words ("
            "id INTEGER PRIMARY KEY AUTOINCREMENT, word TEXT NOT NULL UNIQUE)"
        )
        op.execute(  # the words of the rows mirrored before 0007
            "INSERT INTO ns_customer_name_words (word) SELECT DISTINCT j.value FROM ns_customers AS c,"
            """ json_each('["' || replace(c.name_normalized, ' ', '","') || '"]') AS j"""
            " WHERE c.name_normalized IS NOT NULL AND c.name_normalized NOT GLOB '*[^0-9a-z ]*'"
            " AND j.value <> ''"
        )
        op.execute(
            "CREATE VIRTUAL TABLE ns_customers_word_fts USING fts5("
            "name_normalized, sales_rep_id, content='ns_customers', content_rowid='internal_id',"
            " tokenize='unicode61', detail='column', columnsize=0)"
        )
        for ddl in _SQLITE_TRIGGERS:
            op.execute(ddl)
        op.execute("INSERT INTO ns_customers_word_fts (ns_customers_word_fts) VALUES ('rebuild')")
    elif dialect == "postgresql":
        op.execute(
            "CREATE TABLE ns_customer_name_words ("
            "word text PRIMARY KEY, added_xid xid8 NOT NULL DEFAULT pg_current_xact_id())"
        )
        op.execute("CREATE INDEX ix_ns_customer_name_words_added_xid ON ns_customer_name_words (added_xid)")
        op.execute(
            "INSERT INTO ns_customer_name_words (word)"
            " SELECT DISTINCT w FROM ns_customers, unnest(string_to_array(name_normalized, ' ')) AS w"
            " WHERE name_normalized !~ '[^0-9a-z ]' AND w <> ''"
        )
        for ddl in (*_PG_FUNCTIONS, *_PG_TRIGGERS):
            op.execute(ddl)
        op.execute(
            "CREATE INDEX ix_ns_customers_name_c_id ON ns_customers"
            ' (name_normalized COLLATE "C", internal_id)'
        )
        op.execute("DROP INDEX ix_ns_customers_name_c")
    else:
        raise NotImplementedError(f"customer search supports PostgreSQL and SQLite, not {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in _SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS ns_customers_word_fts")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ns_customer_name_words_update ON ns_customers")
        op.execute("DROP TRIGGER IF EXISTS ns_customer_name_words_insert ON ns_customers")
        op.execute("DROP FUNCTION IF EXISTS ns_customer_name_words_add_renamed()")
        op.execute("DROP FUNCTION IF EXISTS ns_customer_name_words_add_inserted()")
        op.execute(
            'CREATE INDEX IF NOT EXISTS ix_ns_customers_name_c ON ns_customers (name_normalized COLLATE "C")'
        )
        op.execute("DROP INDEX IF EXISTS ix_ns_customers_name_c_id")
    op.execute("DROP TABLE IF EXISTS ns_customer_name_words")
