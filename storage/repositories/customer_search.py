"""The SQL behind customer search, for PostgreSQL and SQLite (the ranking lives in `bot.customers.search`).

Every lookup returns `Candidate`s (internal id and normalised name) and never decides the final order:
the service scores them in Python, so both databases rank the same rows the same way. What differs is
only how name candidates are found quickly:

- PostgreSQL: whole words, from the word GIN index of migration 0005 (`string_to_array(name, ' ')`):
  "every query word" is one containment test, and a typo is found by asking for the spellings one edit
  away from a query word, next to the other words (`name_spellings_pg`). Trigram scans
  (`LIKE '%w%'` and `q <% name`, GIN of 0002) are kept for what words cannot answer, a lone word being
  typed and a query with two typos, because every trigram of a common word lists a large part of
  the table: one such word cost 10-50 ms at 1M rows, while a word lookup costs about one.
- Both: a name prefix is a range scan of a code-point-ordered B-tree (SQLite's plain index; on
  PostgreSQL the `COLLATE "C"` index of 0005), so the first names come back in the same order.
- SQLite: the FTS5 trigram table `ns_customers_fts`. FTS5 matches substrings only, so typo tolerance
  comes from asking for the query's words minus one (see `fts_typo_expression`) and letting the service
  re-rank with rapidfuzz; every stage is capped so a common word cannot drag in the whole table.

Queries and names reaching the FTS expression builders are already normalised (`[0-9a-z ]` only), and
every value is a bound parameter (the statements are SQLAlchemy Core), so user input never becomes SQL
or FTS syntax.
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
from sqlalchemy.sql.expression import ColumnClause

from storage.models import NsCustomer, NsCustomerAddress

FTS_TABLE = "ns_customers_fts"
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


def fts_all_words_expression(words: Sequence[str]) -> str | None:
    """FTS5 query: every word (>= 3 characters) somewhere in the name, as a substring."""
    terms = [w for w in words if len(w) >= MIN_FTS_TERM]
    return " AND ".join(f'"{w}"' for w in terms) or None


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


_fts = table(FTS_TABLE, column("rowid"))
# `ns_customers_fts MATCH :expr`: FTS5 matches against the table's own name (all its columns).
_fts_match: ColumnClause[Any] = literal_column(FTS_TABLE)
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

    def _run(self, stmt: _CandidateSelect, sales_rep_id: int | None) -> list[Candidate]:
        if sales_rep_id is not None:
            stmt = stmt.where(_C.sales_rep_id == sales_rep_id)
        # Core statements on the session's connection: the ORM result layer costs more than the query
        # when an FTS stage returns hundreds of rows.
        return [Candidate(int(i), name or "") for i, name in self.session.connection().execute(stmt)]

    @staticmethod
    def _base() -> _CandidateSelect:
        return select(_C.internal_id, _C.name_normalized)

    # --- exact lookups -------------------------------------------------------------------------

    def by_tax_number(
        self, digest: str | None, raw_forms: Sequence[str], *, sales_rep_id: int | None, limit: int
    ) -> list[Candidate]:
        """Customers whose tax-number digest equals `digest` or whose raw tax number is one of `raw_forms`."""
        conditions: list[ColumnElement[bool]] = []
        if digest is not None:
            conditions.append(_C.tax_number_digest == digest)
        if raw_forms:
            conditions.append(_C.tax_number.in_(list(raw_forms)))
        if not conditions:
            return []
        stmt = self._base().where(or_(*conditions)).order_by(*self._by_name_order()).limit(limit)
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
        return self._run(stmt, sales_rep_id)

    # --- name candidates -----------------------------------------------------------------------

    def name_prefix(self, query: str, *, sales_rep_id: int | None, limit: int) -> list[Candidate]:
        """Names starting with `query` (an exact one first), in code-point order, from a B-tree range scan.

        Normalised names hold only `[0-9a-z ]`, all below "~", so `[query, query + "~")` is exactly the
        names that start with `query`. On PostgreSQL the comparison is made in the "C" collation, which
        `ix_ns_customers_name_c` (migration 0005) indexes; under any other collation this range would be
        neither the prefix nor indexable.
        """
        name, internal_id = self._by_name_order()
        stmt = self._base().where(name >= query, name < query + "~").order_by(name, internal_id).limit(limit)
        return self._run(stmt, sales_rep_id)

    def name_all_words_pg(
        self, words: Sequence[str], *, sales_rep_id: int | None, limit: int
    ) -> list[Candidate]:
        """PostgreSQL: names holding every query word but the last as a whole word, and the last anywhere.

        The last word may still be being typed ("acme ind"), so it is a substring; the others come from
        the word index, rarest first (GIN intersects its lists that way), and the substring is a filter
        on those rows, not a trigram scan, and only asked when the query's words taken whole find no
        name. A lone word is a trigram `LIKE`; one shorter than a trigram matches too
        much to be worth asking (the prefix stage has answered it). At most `limit` names from each
        query, in no particular order.
        """
        *whole, last = words
        if not whole:
            if len(last) < MIN_FTS_TERM:
                return []
            stmt = self._base().where(_C.name_normalized.contains(last, autoescape=True)).limit(limit)
            return self._run(stmt, sales_rep_id)
        # Every word whole first: one intersection in the index. Only if that finds nothing, the last
        # word as a substring (being typed), checked on each row that holds the other words.
        found = self._run(
            self._base().where(_name_words.op("@>")(_word_array(words))).limit(limit), sales_rep_id
        )
        if found:  # the last word exists whole: it was typed in full
            return found
        seen = {c.internal_id for c in found}
        stmt = (
            self._base()
            .where(_name_words.op("@>")(_word_array(whole)), func.strpos(_C.name_normalized, last) > 0)
            .limit(limit)
        )
        return found + [c for c in self._run(stmt, sales_rep_id) if c.internal_id not in seen]

    def name_spellings_pg(
        self,
        clauses: Sequence[tuple[Sequence[str], Iterable[str]]],
        *,
        sales_rep_id: int | None,
        limit: int,
    ) -> list[Candidate]:
        """PostgreSQL: names that, for at least one of `clauses` (required words, spellings), hold every
        required word and one of the spellings, all as whole words. At most `limit`, in no particular order.

        The whole statement is a few scans of the word index, one per clause, each looking up hundreds
        of spellings (a few microseconds each, most of them absent). A clause without required words
        is estimated to match much of the table, so the planner would scan it instead and test every
        row against every spelling (tens of seconds at 1M rows): sequential scans are off for this
        statement, and on again after it (`SET LOCAL`, this transaction only).
        """
        conditions: list[ColumnElement[bool]] = []
        for required, spellings in clauses:
            variants = sorted(spellings)
            if not variants:
                continue
            condition: ColumnElement[bool] = _name_words.op("&&")(_word_array(variants))
            if required:
                condition = and_(_name_words.op("@>")(_word_array(required)), condition)
            conditions.append(condition)
        if not conditions:
            return []
        stmt = self._base().where(or_(*conditions)).limit(limit)
        self.session.execute(text("SELECT set_config('enable_seqscan', 'off', true)"))
        try:
            return self._run(stmt, sales_rep_id)
        finally:
            self.session.execute(text("SELECT set_config('enable_seqscan', 'on', true)"))

    def name_with_words_pg(
        self, word_sets: Sequence[Sequence[str]], *, sales_rep_id: int | None, limit: int
    ) -> list[Candidate]:
        """PostgreSQL: names holding every word of at least one of `word_sets` as a whole word.

        Each set is one containment test on the word index. At most `limit`, in no particular order.
        """
        conditions = [_name_words.op("@>")(_word_array(ws)) for ws in word_sets if ws]
        if not conditions:
            return []
        return self._run(self._base().where(or_(*conditions)).limit(limit), sales_rep_id)

    def name_candidates_pg(self, query: str, *, sales_rep_id: int | None, limit: int) -> list[Candidate]:
        """PostgreSQL: names similar to `query` by trigram word similarity, best first.

        The last resort (two typos in one query): every trigram of the query is looked up, so a query
        with common words costs 100 ms and more at 1M rows.
        """
        if len(query) < MIN_FTS_TERM:  # too short for trigrams to mean anything: a plain prefix
            stmt = (
                self._base()
                .where(_C.name_normalized.startswith(query, autoescape=True))
                .order_by(*self._by_name_order())
                .limit(limit)
            )
            return self._run(stmt, sales_rep_id)
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
        return self._run(stmt, sales_rep_id)

    def name_fts_sqlite(self, expression: str, *, sales_rep_id: int | None, limit: int) -> list[Candidate]:
        """SQLite: names matching an FTS5 trigram expression (see the `fts_*_expression` builders)."""
        stmt = (
            self._base()
            .select_from(_fts)
            .join(_C, _C.internal_id == _fts.c.rowid)
            .where(_fts_match.op("MATCH")(expression))
            .limit(limit)
        )
        return self._run(stmt, sales_rep_id)

    def rep_book_size(self, sales_rep_id: int) -> int:
        count = self.session.scalar(select(func.count()).where(_C.sales_rep_id == sales_rep_id))
        return int(count or 0)

    def rep_book(self, sales_rep_id: int) -> list[Candidate]:
        """Every named customer of one sales rep: small enough to re-rank in memory without an index."""
        return self._run(self._base().where(_C.name_normalized.is_not(None)), sales_rep_id)

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
            for r in self.session.execute(stmt)
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
        for r in self.session.execute(stmt):
            result.setdefault(int(r[0]), []).append(AddressRow(int(r[0]), int(r[1]), r[2], r[3], bool(r[4])))
        return result

    # --- maintenance (SQLite) ------------------------------------------------------------------

    def rebuild_fts(self) -> None:
        """Rebuild the FTS index from `ns_customers`, after bulk writes that bypassed the triggers."""
        if self.dialect == "sqlite":
            self.session.execute(text("INSERT INTO ns_customers_fts(ns_customers_fts) VALUES ('rebuild')"))

    def fts_integrity_check(self) -> None:
        """Raise if the FTS index disagrees with `ns_customers` (FTS5's own 'integrity-check')."""
        if self.dialect == "sqlite":
            self.session.execute(
                text("INSERT INTO ns_customers_fts(ns_customers_fts, rank) VALUES ('integrity-check', 1)")
            )
