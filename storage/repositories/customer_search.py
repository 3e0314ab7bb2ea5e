"""The SQL behind customer search, for PostgreSQL and SQLite (the ranking lives in `bot.customers.search`).

Every lookup returns `Candidate`s (internal id and normalised name) and never decides the final order:
the service scores them in Python, so both databases rank the same rows the same way. Name candidates
are found by whole words on both, through the same question, `name_word_groups`: "names holding one
word of each of these groups" (a group is a word, or the few real spellings of a typo, or the words a
word being typed may become). Which words exist the service knows from the name vocabulary,
`ns_customer_name_words` (migration 0007), read incrementally with `name_words_since`.

- PostgreSQL: the word GIN index of migration 0005 (`string_to_array(name, ' ')`): one `@>` for the
  single words, one `&&` per group. Trigram similarity (`q <% name`, GIN of 0002) is kept as the last
  resort for a query no word stage could answer (two typos in one word), because every trigram of a
  common word lists a large part of the table: one such word cost 10-50 ms at 1M rows, a word lookup
  about one.
- SQLite: the FTS5 `unicode61` table `ns_customers_word_fts` (0007), whose second column is the sales
  rep, so a rep's search is one more term of the same FTS5 query and reads only that rep's names. The
  trigram FTS5 table `ns_customers_fts` (0002) is the last resort, with the "other words plus half of
  this one" typo expression (see `fts_typo_expression`).
- Both: a name prefix is a range scan of a code-point-ordered B-tree (SQLite's plain index; on
  PostgreSQL the `COLLATE "C"` index, with the internal id since 0007), so the first names come back
  in the same order. One rep's prefix on SQLite is narrowed by the word FTS5 table first.

Queries and names reaching the FTS expression builders are already normalised (`[0-9a-z ]` only), and
every value is a bound parameter (SQLAlchemy Core statements, and a few fixed plain-text ones), so user
input never becomes SQL or FTS syntax.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnClause, TextClause

from storage.models import NsCustomer, NsCustomerAddress

FTS_TABLE = "ns_customers_fts"  # trigram (0002)
MIN_FTS_TERM = 3  # the trigram tokenizer cannot match a string shorter than one trigram
TYPO_CHUNK_MIN_WORD = 6  # a word this long is split in two halves of >= 3 characters each
# Below pg_trgm's default of 0.6, which misses one typo in a short word ("widgit" shares 4 of its 7
# trigrams with "widget"). Lower still would let one common word of the query pull in every name that
# contains it, and each of those rows is re-checked.
WORD_SIMILARITY_THRESHOLD = 0.5


@dataclass(frozen=True)
class Candidate:
    internal_id: int
    name_normalized: str


@dataclass(frozen=True)
class CustomerRow:
    internal_id: int
    entity_id: str | None
    company_name: str | None
    name_normalized: str | None
    is_inactive: bool
    default_billing_address_id: int | None


@dataclass(frozen=True)
class AddressRow:
    customer_id: int
    address_id: int
    city: str | None
    region: str | None
    default_billing: bool


def fts_typo_expression(words: Sequence[str]) -> str | None:
    """FTS5 query that survives one typo: for each word, "all the other words, and half of this one".

    A single edit leaves one half of a long word intact, and leaves every other word intact, so the
    misspelt name is always among the candidates; words too short to split are simply left out of their
    own clause. So a lone word shorter than six characters gets no typo tolerance: any of its trigrams
    would match a large part of the table, and pg_trgm's threshold refuses most such words too.
    """
    terms = [w for w in words if len(w) >= MIN_FTS_TERM]
    clauses: list[str] = []
    for i, word in enumerate(terms):
        parts = [f'"{w}"' for j, w in enumerate(terms) if j != i]
        if len(word) >= TYPO_CHUNK_MIN_WORD:
            half = len(word) // 2
            parts.append(f'("{word[:half]}" OR "{word[half:]}")')
        if parts:
            clauses.append("(" + " AND ".join(parts) + ")")
    return " OR ".join(dict.fromkeys(clauses)) or None


def fts_word_groups_expression(
    clauses: Sequence[Sequence[Sequence[str]]], *, sales_rep_id: int | None = None
) -> str:
    """FTS5 query on the word table: for one of the clauses, one word of each of its groups, in the name
    column; and, for a rep, the rep's id in the rep column."""
    terms = " OR ".join(
        "(" + " AND ".join("(" + " OR ".join(f'"{w}"' for w in group) + ")" for group in clause) + ")"
        for clause in clauses
    )
    expression = f"name_normalized : ({terms})"
    if sales_rep_id is not None:
        expression += f' AND sales_rep_id : "{int(sales_rep_id)}"'
    return expression


def fts_first_word_expression(query: str, *, sales_rep_id: int) -> str | None:
    """FTS5 query on the word table for names of one rep that may start with `query`: its first word,
    whole if more words follow, else as a word start (`"acm"*`); None for a lone start shorter than
    three characters (too many words begin with it)."""
    first, *rest = query.split() or [""]
    if rest:
        term = f'"{first}"'
    elif len(first) >= MIN_FTS_TERM:
        term = f'"{first}"*'
    else:
        return None
    return f'name_normalized : {term} AND sales_rep_id : "{int(sales_rep_id)}"'


@dataclass(frozen=True)
class VocabularyMark:
    """How far a reader has read the name vocabulary (see `CustomerSearchRepository.name_words_since`).

    SQLite: `order` is the highest word id read. PostgreSQL: `order` is the `xmax` of the snapshot read
    at, and `in_progress` its in-progress transactions (`xip`).
    """

    order: int
    in_progress: tuple[int, ...] = ()


_fts = table(FTS_TABLE, column("rowid"))
# `ns_customers_fts MATCH :expr`: FTS5 matches against the table's own name (all its columns).
_fts_match: ColumnClause[Any] = literal_column(FTS_TABLE)
_SQLITE_WORDS_SINCE = text("SELECT id, word FROM ns_customer_name_words WHERE id > :after ORDER BY id")
# One statement each, so that the words and the snapshot they are measured against are the same one.
_PG_ALL_WORDS = text("SELECT pg_current_snapshot()::text, array(SELECT word FROM ns_customer_name_words)")
_PG_WORDS_SINCE = text(
    "SELECT pg_current_snapshot()::text, array("
    "SELECT word FROM ns_customer_name_words WHERE added_xid >= CAST(:xmax AS xid8)"
    " UNION ALL SELECT word FROM ns_customer_name_words WHERE added_xid = ANY(CAST(:xip AS xid8[])))"
)
_C = NsCustomer
_A = NsCustomerAddress
_CandidateSelect = Select[int, str | None]  # (internal id, normalised name)
# The indexed expression of `ix_ns_customers_name_words` (migration 0005), spelt exactly as indexed: the
# separator must be a literal, since a bound parameter would not match the index expression.
_name_words: ColumnElement[Any] = func.string_to_array(
    _C.name_normalized, literal_column("' '"), type_=ARRAY(Text)
)


def _word_array(words: Sequence[str]) -> ColumnElement[Any]:
    return bindparam(None, list(words), type_=ARRAY(Text))


# SQLite, names of the rows an FTS5 MATCH on the word table finds. Each name is read from the covering
# `(internal_id, name_normalized)` index of 0002: one B-tree search instead of two (the unique index on
# `internal_id`, then the table), a third of the time warm and far fewer pages to keep cached. The
# planner picks the unique index unless told (SQLAlchemy renders no SQLite index hints: plain text,
# every value bound).
_SQLITE_WORD_FTS_NAMES = (
    "SELECT c.internal_id, c.name_normalized FROM ns_customers_word_fts"
    " JOIN ns_customers AS c INDEXED BY ix_ns_customers_id_name"
    " ON c.internal_id = ns_customers_word_fts.rowid"
    " WHERE ns_customers_word_fts MATCH :expression"
)
_SQLITE_WORD_FTS_ANY = text(_SQLITE_WORD_FTS_NAMES + " LIMIT :limit")
_SQLITE_WORD_FTS_PREFIX = text(
    _SQLITE_WORD_FTS_NAMES
    + " AND c.name_normalized >= :low AND c.name_normalized < :high"
    + " ORDER BY c.name_normalized, c.internal_id LIMIT :limit"
)


class CustomerSearchRepository:
    """Read-only lookups over the customer mirror. Takes the caller's `Session`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name
        if self.dialect not in ("postgresql", "sqlite"):
            raise NotImplementedError(f"customer search supports PostgreSQL and SQLite, not {self.dialect}")

    # --- helpers -------------------------------------------------------------------------------

    def _by_name_order(self) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        # Code-point order on both databases, whatever PostgreSQL's collation, so that ties come back
        # identically everywhere; the service sorts the same way.
        name: ColumnElement[Any] = _C.name_normalized.expression
        if self.dialect == "postgresql":
            name = name.collate("C")
        return name, _C.internal_id.expression

    def _run(
        self, stmt: _CandidateSelect, sales_rep_id: int | None, *, rep_index: bool = False
    ) -> list[Candidate]:
        """Run a candidate query, restricted to one sales rep's customers if `sales_rep_id` is given.

        `rep_index`: whether the database may use a rep index for it. Not beside a selective key (an
        entity id, a tax number) nor beside an SQLite FTS5 MATCH: SQLite may walk the rep's ~5,000 rows
        checking each, or run the whole FTS query once per row of the rep (14 ms and 80 ms instead of
        0.2 at 1M, both seen), so there the rep is a filter on the rows found (`sales_rep_id + 0` is no
        indexed expression; FTS5 queries carry the rep as a term of their own).
        """
        if sales_rep_id is not None:
            rep = _C.sales_rep_id if rep_index else _C.sales_rep_id + 0
            stmt = stmt.where(rep == sales_rep_id)
        # Core statements on the session's connection: the ORM result layer costs more than the query
        # when an FTS stage returns hundreds of rows.
        return [Candidate(int(i), name or "") for i, name in self.session.connection().execute(stmt)]

    def _run_text(self, stmt: TextClause, params: dict[str, Any]) -> list[Candidate]:
        rows: Any = self.session.connection().execute(stmt, params)
        return [Candidate(int(i), str(name or "")) for i, name in rows]

    @staticmethod
    def _base() -> _CandidateSelect:
        return select(_C.internal_id, _C.name_normalized)

    # --- exact lookups -------------------------------------------------------------------------

    def by_tax_number(self, digest: str, *, sales_rep_id: int | None, limit: int) -> list[Candidate]:
        """Customers whose tax-number digest (`FederalIdCipher.digest`) is `digest`: the mirror keeps no
        tax number in clear."""
        stmt = (
            self._base().where(_C.tax_number_digest == digest).order_by(*self._by_name_order()).limit(limit)
        )
        return self._run(stmt, sales_rep_id)

    def by_email_domain(self, domain: str, *, sales_rep_id: int | None, limit: int) -> list[Candidate]:
        stmt = self._base().where(_C.email_domain == domain).order_by(*self._by_name_order()).limit(limit)
        return self._run(stmt, sales_rep_id)

    def by_entity_id(self, entity_id: str, *, sales_rep_id: int | None, limit: int) -> list[Candidate]:
        """Case-insensitive exact entity id: `CUST-123`, or a name when auto-numbering is off."""
        stmt = (
            self._base()
            .where(func.lower(_C.entity_id) == entity_id.lower())
            .order_by(*self._by_name_order())
            .limit(limit)
        )
        return self._run(stmt, sales_rep_id)

    def by_internal_id(self, internal_id: int, *, sales_rep_id: int | None) -> list[Candidate]:
        return self._run(self._base().where(_C.internal_id == internal_id), sales_rep_id)

    def by_city(self, city: str, *, sales_rep_id: int | None, limit: int) -> list[Candidate]:
        """Customers with an address in `city` (case-insensitive), lowest internal id first.

        A city can hold thousands of customers who all match equally well; taking them in internal-id
        order walks the `(lower(city), customer_id)` index and stops after `limit`, where ordering by
        name would read every one of them.
        """
        stmt = (
            select(_A.customer_id, _C.name_normalized)
            .join(_C, _C.internal_id == _A.customer_id)
            .where(func.lower(_A.city) == city.lower())
            .order_by(_A.customer_id)
            .limit(limit)
        )
        return self._run(stmt, sales_rep_id, rep_index=True)

    # --- name candidates -----------------------------------------------------------------------

    def name_prefix(self, query: str, *, sales_rep_id: int | None, limit: int) -> list[Candidate]:
        """Names starting with `query` (an exact one first), in code-point order, from a B-tree range scan.

        Normalised names hold only `[0-9a-z ]`, all below "~", so `[query, query + "~")` is exactly the
        names that start with `query`. On PostgreSQL the comparison is made in the "C" collation, which
        `ix_ns_customers_name_c_id` indexes; under any other collation this range would be neither the
        prefix nor indexable. The index holds the internal id after the name (migration 0007), so the
        scan stops after `limit` entries, ties included.

        One rep's names on SQLite: the word FTS5 table first narrows to that rep's names holding the
        query's first word (or a word starting with it, for a lone word), then the same range applies.
        A range scan of all names would read every name with that start (~2,000 for "keystone" at 1M)
        and a scan of the rep's rows every one of them (~5,000), 7-20 ms either way, against ~1 ms.
        """
        name, internal_id = self._by_name_order()
        stmt = self._base().where(name >= query, name < query + "~").order_by(name, internal_id).limit(limit)
        expression = (
            fts_first_word_expression(query, sales_rep_id=sales_rep_id)
            if self.dialect == "sqlite" and sales_rep_id is not None
            else None
        )
        if expression is None:
            return self._run(stmt, sales_rep_id, rep_index=True)
        params = {"expression": expression, "low": query, "high": query + "~", "limit": limit}
        return self._run_text(_SQLITE_WORD_FTS_PREFIX, params)  # the rep is a term of the FTS5 query

    def name_word_groups(
        self,
        clauses: Sequence[Sequence[Sequence[str]]],
        *,
        sales_rep_id: int | None,
        limit: int,
    ) -> list[Candidate]:
        """Names that, for at least one of `clauses`, hold a whole word of every group of that clause.

        A clause is a list of groups and a group a list of words ("acme" AND ("industrial" OR
        "industrious")). At most `limit`, in no particular order.

        PostgreSQL: one `@>` (the single words) and one `&&` per larger group, on the word GIN index.
        SQLite: one FTS5 query on the word table, the rep (if any) as a term of the rep column, so that
        FTS5 intersects the name words with that rep's rows instead of reading every name first.
        """
        clauses = [[list(group) for group in clause if group] for clause in clauses]
        clauses = [clause for clause in clauses if clause]
        if not clauses:
            return []
        if self.dialect == "postgresql":
            conditions: list[ColumnElement[bool]] = []
            for clause in clauses:
                singles = sorted({group[0] for group in clause if len(group) == 1})
                parts = [_name_words.op("@>")(_word_array(singles))] if singles else []
                parts += [_name_words.op("&&")(_word_array(sorted(set(g)))) for g in clause if len(g) > 1]
                conditions.append(and_(*parts))
            stmt = self._base().where(or_(*conditions))
        else:
            expression = fts_word_groups_expression(clauses, sales_rep_id=sales_rep_id)
            params = {"expression": expression, "limit": limit}
            return self._run_text(_SQLITE_WORD_FTS_ANY, params)  # the rep is a term of the FTS5 query
        return self._run(stmt.limit(limit), sales_rep_id, rep_index=True)

    def name_words_since(self, mark: VocabularyMark | None) -> tuple[list[str], VocabularyMark]:
        """The name words added to the vocabulary since `mark` (all of them for None), and the new mark.

        A word committed before this statement started is either in the answer or was in an earlier
        one: SQLite by increasing id (one writer commits at a time); PostgreSQL by the adding transaction,
        measured against the snapshot of the previous read (see migration 0007). May repeat words.
        """
        connection = self.session.connection()
        if self.dialect == "sqlite":
            after = mark.order if mark is not None else 0
            rows = connection.execute(_SQLITE_WORDS_SINCE, {"after": after}).all()
            return [str(r[1]) for r in rows], VocabularyMark(max((int(r[0]) for r in rows), default=after))
        if mark is None:
            row = connection.execute(_PG_ALL_WORDS).one()
        else:
            row = connection.execute(
                _PG_WORDS_SINCE,
                {"xmax": str(mark.order), "xip": "{" + ",".join(str(x) for x in mark.in_progress) + "}"},
            ).one()
        snapshot, words = str(row[0]), row[1]
        _, xmax, xip = snapshot.split(":")
        return [str(w) for w in words], VocabularyMark(int(xmax), tuple(int(x) for x in xip.split(",") if x))

    def name_candidates_pg(self, query: str, *, sales_rep_id: int | None, limit: int) -> list[Candidate]:
        """PostgreSQL: names similar to `query` by trigram word similarity, best first.

        The last resort, when no word stage found a name (two typos in one word, a lost space and a
        typo): every trigram of the query is looked up, so a query with common words costs 100 ms and
        more at 1M rows.
        """
        if len(query) < MIN_FTS_TERM:  # too short for trigrams to mean anything: a plain prefix
            stmt = (
                self._base()
                .where(_C.name_normalized.startswith(query, autoescape=True))
                .order_by(*self._by_name_order())
                .limit(limit)
            )
            return self._run(stmt, sales_rep_id, rep_index=True)
        self.session.execute(
            text("SELECT set_config('pg_trgm.word_similarity_threshold', :t, true)"),
            {"t": str(WORD_SIMILARITY_THRESHOLD)},
        )
        q = literal(query)
        stmt = (
            self._base()
            .where(q.op("<%")(_C.name_normalized))
            .order_by(func.word_similarity(q, _C.name_normalized).desc(), _C.internal_id)
            .limit(limit)
        )
        return self._run(stmt, sales_rep_id, rep_index=True)

    def name_fts_sqlite(self, expression: str, *, sales_rep_id: int | None, limit: int) -> list[Candidate]:
        """SQLite: names matching an FTS5 trigram expression (see the `fts_*_expression` builders): the
        last resort, as trigram similarity is on PostgreSQL."""
        stmt = (
            self._base()
            .select_from(_fts)
            .join(_C, _C.internal_id == _fts.c.rowid)
            .where(_fts_match.op("MATCH")(expression))
            .limit(limit)
        )
        return self._run(stmt, sales_rep_id)

    # --- details -------------------------------------------------------------------------------

    def customers(self, ids: Iterable[int]) -> dict[int, CustomerRow]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        stmt = select(
            _C.internal_id,
            _C.entity_id,
            _C.company_name,
            _C.name_normalized,
            _C.is_inactive,
            _C.default_billing_address_id,
        ).where(_C.internal_id.in_(wanted))
        return {
            int(r[0]): CustomerRow(int(r[0]), r[1], r[2], r[3], bool(r[4]), r[5])
            for r in self.session.connection().execute(stmt)
        }

    def addresses(self, customer_ids: Iterable[int]) -> dict[int, list[AddressRow]]:
        wanted = sorted(set(customer_ids))
        if not wanted:
            return {}
        stmt = (
            select(_A.customer_id, _A.address_id, _A.city, _A.region, _A.default_billing)
            .where(_A.customer_id.in_(wanted))
            .order_by(_A.customer_id, _A.id)
        )
        result: dict[int, list[AddressRow]] = {}
        for r in self.session.connection().execute(stmt):
            result.setdefault(int(r[0]), []).append(AddressRow(int(r[0]), int(r[1]), r[2], r[3], bool(r[4])))
        return result

    # --- maintenance ---------------------------------------------------------------------------

    def rebuild_fts(self) -> None:
        """Bring the search indexes back in step with `ns_customers` after bulk writes that bypassed the
        triggers: SQLite's two FTS tables are rebuilt, and on both databases the vocabulary gets the
        words it lacks (new words get new ids / this transaction's id, so searches pick them up)."""
        if self.dialect == "sqlite":
            self.session.execute(text("INSERT INTO ns_customers_fts(ns_customers_fts) VALUES ('rebuild')"))
            self.session.execute(
                text("INSERT INTO ns_customers_word_fts(ns_customers_word_fts) VALUES ('rebuild')")
            )
            self.session.execute(
                text(
                    "INSERT INTO ns_customer_name_words (word)"
                    " SELECT DISTINCT j.value FROM ns_customers AS c,"
                    """ json_each('["' || replace(c.name_normalized, ' ', '","') || '"]') AS j"""
                    " WHERE c.name_normalized NOT GLOB '*[^0-9a-z ]*' AND j.value <> ''"
                    " AND j.value NOT IN (SELECT word FROM ns_customer_name_words)"
                )
            )
        else:
            self.session.execute(
                text(
                    "INSERT INTO ns_customer_name_words (word)"
                    " SELECT DISTINCT w FROM ns_customers, unnest(string_to_array(name_normalized, ' ')) AS w"
                    " WHERE name_normalized !~ '[^0-9a-z ]' AND w <> '' ON CONFLICT (word) DO NOTHING"
                )
            )

    def fts_integrity_check(self) -> None:
        """Raise if an FTS index disagrees with `ns_customers` (FTS5's own 'integrity-check'; SQLite)."""
        if self.dialect == "sqlite":
            self.session.execute(
                text("INSERT INTO ns_customers_fts(ns_customers_fts, rank) VALUES ('integrity-check', 1)")
            )
            self.session.execute(
                text(
                    "INSERT INTO ns_customers_word_fts(ns_customers_word_fts, rank)"
                    " VALUES ('integrity-check', 1)"
                )
            )
