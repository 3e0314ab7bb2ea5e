"""Find customers in the NetSuite mirror by name (typo-tolerant), entity id, tax number, email domain or city.

One results contract on PostgreSQL and SQLite: the database only proposes candidates (see
`storage.repositories.customer_search`); scoring and ordering happen here, in Python, so the same data
gives the same `CustomerMatch` list on both.

What a query is taken to mean:
- an EIN (`12-3456789`, or nine digits): the tax number, by its keyed digest and by the raw value;
- `@acme.com` or `ap@acme.com`: the email domain; a bare `acme.com` is tried as a domain and a name;
- an identifier (`CUST-123`, `C123`, digits): the entity id, and for digits the internal id too;
- anything else: the company name (typo-tolerant, legal suffixes ignored), the city, and the entity id
  (NetSuite entity ids may be names when auto-numbering is off).

Scores run from 0 to 1 and rank exact > prefix > fuzzy:
    1.0        exact name, entity id, tax number or email domain
    0.95       internal id
    0.90-0.99  name starting with the query (longer share of the name ranks higher)
    0.85       city
    < 0.90     fuzzy name (`fuzzy_ratio` scaled by 0.89, at least `FUZZY_CUTOFF`)
Ties are broken by normalised name, then internal id. Lookups that can match thousands of customers
equally (a city, a shared email domain) take the lowest internal ids or the first names in code-point
order, identically on both databases.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz, process
from sqlalchemy.orm import Session, sessionmaker

from bot.customers.normalize import email_domain, normalize_name
from storage.repositories.customer_search import (
    AddressRow,
    Candidate,
    CustomerRow,
    CustomerSearchRepository,
    fts_all_words_expression,
    fts_typo_expression,
)

MAX_QUERY_CHARS = 200  # longer input is cut here: no company name is longer, and trigram work grows with it
MAX_LIMIT = 100
FUZZY_CUTOFF = 75.0  # `fuzzy_ratio` below this is a different name rather than a typo
FUZZY_WEIGHT = 0.89  # keeps every fuzzy score under the lowest prefix score (0.90)
CITY_SCORE = 0.85
INTERNAL_ID_SCORE = 0.95
SQLITE_FTS_CAP = 500  # candidates per FTS stage: fetching each name costs an index search
SQLITE_REP_BOOK_CAP = 5_000  # a rep with at most this many customers is re-ranked whole, without FTS
PG_CANDIDATES_MIN = 100
PRESELECT_MIN = 50

_EIN = re.compile(r"\d{2}-?\d{7}")
_IDENTIFIER = re.compile(r"[A-Za-z]{0,10}[-_]?\d{1,18}")
_BARE_DOMAIN = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}")
_MAX_BIGINT = 2**63 - 1


class MatchedOn(enum.StrEnum):
    NAME = "name"
    ENTITY_ID = "entity_id"
    INTERNAL_ID = "internal_id"
    TAX_NUMBER = "tax_number"
    EMAIL_DOMAIN = "email_domain"
    CITY = "city"


class CustomerMatch(BaseModel):
    """One customer found, the same on every database."""

    model_config = ConfigDict(frozen=True)

    internal_id: int
    entity_id: str | None
    company_name: str | None
    city: str | None  # of the matched address for a city match, else of the default billing address
    state: str | None
    score: float = Field(ge=0.0, le=1.0)
    matched_on: MatchedOn
    is_inactive: bool


class _Hit:
    __slots__ = ("internal_id", "matched_on", "name", "score")

    def __init__(self, internal_id: int, name: str, score: float, matched_on: MatchedOn) -> None:
        self.internal_id = internal_id
        self.name = name
        self.score = score
        self.matched_on = matched_on


def clean_query(query: str) -> str:
    """The query as searched: control characters (NUL included) dropped, spaces collapsed, length capped."""
    printable = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in query)
    return " ".join(printable.split())[:MAX_QUERY_CHARS].strip()


def fuzzy_ratio(query: str, name: str) -> float:
    """0-100: how closely the words of `query` appear in `name`, in any order, the last one maybe unfinished.

    Each query word is paired with its closest name word (the last query word may also be the start of
    one, since people search while typing); the pairs are averaged by word length, then blended with the
    whole-string ratio so that, of two names that contain the query equally well, the shorter wins.
    """
    q_words = query.split()
    n_words = name.split()
    if not q_words or not n_words:
        return 0.0
    total = 0.0
    for k, qw in enumerate(q_words):
        typing = k == len(q_words) - 1
        best = 0.0
        for nw in n_words:
            best = max(best, fuzz.ratio(qw, nw))
            if typing and len(nw) > len(qw):
                best = max(best, fuzz.ratio(qw, nw[: len(qw)]))
        total += best * len(qw)
    words = total / sum(len(w) for w in q_words)
    return 0.85 * words + 0.15 * fuzz.ratio(query, name)


def name_score(query: str, name: str) -> float | None:
    """How well normalised `name` answers normalised `query`, on the scale in the module docstring."""
    if not name:
        return None
    if name == query:
        return 1.0
    if name.startswith(query):
        return 0.90 + 0.09 * len(query) / len(name)
    ratio = fuzzy_ratio(query, name)
    if ratio < FUZZY_CUTOFF:
        return None
    return FUZZY_WEIGHT * ratio / 100.0


class CustomerSearch:
    """Ranked customer lookup over the mirror.

    `digest` is `FederalIdCipher.digest`, so that a typed EIN finds the mirror's `tax_number_digest`;
    without it only a raw `tax_number` can match.
    """

    def __init__(self, sessions: sessionmaker[Session], digest: Callable[[str], str] | None = None) -> None:
        self._sessions = sessions
        self._digest = digest

    def search(self, query: str, *, limit: int = 25, sales_rep_id: int | None = None) -> list[CustomerMatch]:
        """The best `limit` customers for `query`, best first; [] for a blank query."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, not {type(query).__name__}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")
        q = clean_query(query)
        if not q:
            return []
        with self._sessions() as session:
            repo = CustomerSearchRepository(session)
            hits: dict[int, _Hit] = {}
            for hit in self._lookups(repo, q, limit=limit, sales_rep_id=sales_rep_id):
                best = hits.get(hit.internal_id)
                if best is None or hit.score > best.score:
                    hits[hit.internal_id] = hit
            ranked = sorted(hits.values(), key=lambda h: (-h.score, h.name, h.internal_id))[:limit]
            return self._matches(repo, ranked, city=q)

    # --- understanding the query ---------------------------------------------------------------

    def _lookups(
        self, repo: CustomerSearchRepository, q: str, *, limit: int, sales_rep_id: int | None
    ) -> Iterable[_Hit]:
        def exact(candidates: Sequence[Candidate], on: MatchedOn, score: float = 1.0) -> Iterable[_Hit]:
            return (_Hit(c.internal_id, c.name_normalized, score, on) for c in candidates)

        compact = q.replace(" ", "")
        if _EIN.fullmatch(compact):
            d = "".join(ch for ch in compact if ch.isdigit())
            digest = self._digest(d) if self._digest is not None else None
            raw = [f"{d[:2]}-{d[2:]}", d]
            yield from exact(
                repo.by_tax_number(digest, raw, sales_rep_id=sales_rep_id, limit=limit), MatchedOn.TAX_NUMBER
            )
            if not compact.isdigit():  # "12-3456789" is nothing but a tax number
                return
        if "@" in q:
            domain = email_domain(q)
            if domain:
                found = repo.by_email_domain(domain, sales_rep_id=sales_rep_id, limit=limit)
                yield from exact(found, MatchedOn.EMAIL_DOMAIN)
            return
        if _IDENTIFIER.fullmatch(compact):
            found = repo.by_entity_id(compact, sales_rep_id=sales_rep_id, limit=limit)
            if compact != q:
                found += repo.by_entity_id(q, sales_rep_id=sales_rep_id, limit=limit)
            yield from exact(found, MatchedOn.ENTITY_ID)
            if compact.isdigit() and int(compact) <= _MAX_BIGINT:
                found = repo.by_internal_id(int(compact), sales_rep_id=sales_rep_id)
                yield from exact(found, MatchedOn.INTERNAL_ID, INTERNAL_ID_SCORE)
            return
        if _BARE_DOMAIN.fullmatch(q.lower()):
            found = repo.by_email_domain(q.lower(), sales_rep_id=sales_rep_id, limit=limit)
            yield from exact(found, MatchedOn.EMAIL_DOMAIN)
        yield from exact(repo.by_entity_id(q, sales_rep_id=sales_rep_id, limit=limit), MatchedOn.ENTITY_ID)
        yield from exact(repo.by_city(q, sales_rep_id=sales_rep_id, limit=limit), MatchedOn.CITY, CITY_SCORE)
        yield from self._by_name(repo, normalize_name(q), limit=limit, sales_rep_id=sales_rep_id)

    def _by_name(
        self, repo: CustomerSearchRepository, nq: str, *, limit: int, sales_rep_id: int | None
    ) -> Iterable[_Hit]:
        if not nq:
            return
        if repo.dialect == "postgresql":
            cap = max(4 * limit, PG_CANDIDATES_MIN)
            yield from _scored(nq, repo.name_candidates_pg(nq, sales_rep_id=sales_rep_id, limit=cap), limit)
            return
        # SQLite: a small book of one sales rep is re-ranked whole, which needs no index at all.
        if sales_rep_id is not None and repo.rep_book_size(sales_rep_id) <= SQLITE_REP_BOOK_CAP:
            yield from _scored(nq, repo.rep_book(sales_rep_id), limit)
            return
        # Otherwise cheapest first, stopping as soon as there are enough good answers:
        # prefix (plain index) -> every word as a substring (FTS5) -> one typo allowed (FTS5).
        seen: dict[int, Candidate] = {}
        for c in repo.name_prefix_sqlite(nq, sales_rep_id=sales_rep_id, limit=limit):
            seen[c.internal_id] = c
        words = nq.split()
        for expression in (fts_all_words_expression(words), fts_typo_expression(words)):
            if sum(1 for c in seen.values() if name_score(nq, c.name_normalized)) >= limit:
                break
            if expression is None:
                continue
            for c in repo.name_fts_sqlite(expression, sales_rep_id=sales_rep_id, limit=SQLITE_FTS_CAP):
                seen.setdefault(c.internal_id, c)
        yield from _scored(nq, list(seen.values()), limit)

    # --- building results ----------------------------------------------------------------------

    def _matches(
        self, repo: CustomerSearchRepository, ranked: list[_Hit], *, city: str
    ) -> list[CustomerMatch]:
        ids = [h.internal_id for h in ranked]
        customers = repo.customers(ids)
        addresses = repo.addresses(ids)
        matches = []
        for hit in ranked:
            row = customers.get(hit.internal_id)
            if row is None:  # deleted between the lookup and now
                continue
            address = _display_address(row, addresses.get(hit.internal_id, []), hit, city)
            matches.append(
                CustomerMatch(
                    internal_id=row.internal_id,
                    entity_id=row.entity_id,
                    company_name=row.company_name,
                    city=address.city if address else None,
                    state=address.region if address else None,
                    score=round(hit.score, 4),
                    matched_on=hit.matched_on,
                    is_inactive=row.is_inactive,
                )
            )
        return matches


def _scored(nq: str, candidates: Sequence[Candidate], limit: int) -> Iterable[_Hit]:
    """Score candidates against the normalised query; keep the best few (more than `limit`, for merging).

    `fuzzy_ratio` runs in Python, so rapidfuzz's C loops first pick the plausible candidates: the best by
    `partial_ratio` (the query as typed, against the closest stretch of the name) and the best by
    `token_set_ratio` (the same words in another order), plus every name the query is a prefix of.
    """
    if not candidates:
        return
    names = [c.name_normalized for c in candidates]
    keep = max(2 * limit, PRESELECT_MIN)
    picked = {i for i, name in enumerate(names) if name.startswith(nq)}
    for scorer in (fuzz.partial_ratio, fuzz.token_set_ratio):
        picked.update(i for _, _, i in process.extract(nq, names, scorer=scorer, processor=None, limit=keep))
    for i in picked:
        score = name_score(nq, names[i])
        if score is not None:
            yield _Hit(candidates[i].internal_id, names[i], score, MatchedOn.NAME)


def _display_address(
    row: CustomerRow, addresses: list[AddressRow], hit: _Hit, query: str
) -> AddressRow | None:
    if not addresses:
        return None
    if hit.matched_on is MatchedOn.CITY:
        wanted = query.lower()
        for a in addresses:
            if (a.city or "").lower() == wanted:
                return a
    for a in addresses:
        if a.address_id == row.default_billing_address_id:
            return a
    for a in addresses:
        if a.default_billing:
            return a
    return addresses[0]
