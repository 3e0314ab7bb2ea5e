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
import sys
import threading
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz, process
from sqlalchemy.orm import Session, sessionmaker

from bot.customers.normalize import LEGAL_SUFFIXES, email_domain, normalize_name
from storage.db import transaction
from storage.repositories.customer_search import (
    MIN_FTS_TERM,
    AddressRow,
    Candidate,
    CustomerRow,
    CustomerSearchRepository,
    VocabularyMark,
    fts_typo_expression,
)

MAX_QUERY_CHARS = 200  # longer input is cut here: no company name is longer, and trigram work grows with it
MAX_LIMIT = 100
FUZZY_CUTOFF = 75.0  # `fuzzy_ratio` below this is a different name rather than a typo
FUZZY_WEIGHT = 0.89  # keeps every fuzzy score under the lowest prefix score (0.90)
CITY_SCORE = 0.85
INTERNAL_ID_SCORE = 0.95
WORDS_CAP = 500  # candidates per word stage: fetching and scoring each name costs
SQLITE_FTS_CAP = 500  # candidates of SQLite's trigram last resort
COMPLETIONS_CAP = 64  # words a word being typed may become, looked up as one group; more: left to scoring
PG_CANDIDATES_MIN = 100  # candidates of the last-resort trigram stage (at least; 4x `limit` if more)
TYPO_MIN_WORD = 4  # a shorter lone word has so many one-edit neighbours that they match most names
TYPO_MIN_WORD_BESIDE_OTHERS = 3  # beside other words, which narrow the match, "hwk" is worth a try
# Left out of the name lookups (never required, never suspected of being a typo), though still scored:
# so common ("and" comes from every "&") that looking them up reads a large part of any index.
NEVER_A_TYPO = frozenset({"and", "of", "the", "for", "de"})
PRESELECT_MIN = 50
_LETTERS = "abcdefghijklmnopqrstuvwxyz"  # normalised names are made of these, digits and spaces
_DIGITS = "0123456789"  # tried in spellings of words that hold a digit ("b2b"), not of every word

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
    one, since people search while typing; a long one that matches no word well may be two neighbouring
    name words whose space was lost or mistyped); the pairs are averaged by word length, then blended
    with the whole-string ratio so that, of two names that contain the query equally well, the shorter
    wins.
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
        if best < FUZZY_CUTOFF and len(qw) >= 2 * MIN_FTS_TERM:
            for a, b in pairwise(n_words):
                best = max(best, fuzz.ratio(qw, a + b))
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


def one_edit_spellings(word: str) -> set[str]:
    """Every string one edit from `word`: a letter dropped, two neighbours swapped, one replaced or added.

    These are the usual typos (Damerau distance 1). About 54 per letter (digits too when the word has
    one), so a 10-letter word gives ~560, each an entry lookup in PostgreSQL's word index, most finding
    nothing.
    """
    alphabet = _LETTERS + (_DIGITS if any(ch.isdigit() for ch in word) else "")
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    found = {a + b[1:] for a, b in splits if b}
    found |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    found |= {a + c + b[1:] for a, b in splits if b for c in alphabet}
    found |= {a + c + b for a, b in splits for c in alphabet}
    found.discard(word)
    return found


# One typo away from a long legal form ("Companny", "Incorporatd"): dropped from the end of a query as
# `normalize_name` drops the legal form itself, since no normalised name ends with one. Short forms
# ("corp", "inc") are left alone: their one-edit neighbours are real words ("crop", "core").
_MISSPELT_LEGAL_FORMS = (
    frozenset(
        spelling for suffix in LEGAL_SUFFIXES if len(suffix) >= 6 for spelling in one_edit_spellings(suffix)
    )
    - LEGAL_SUFFIXES
)


def normalize_query_name(query: str) -> str:
    """`normalize_name` of a query, less a misspelt long legal form at its end ("acme tools companny")."""
    nq = normalize_name(query)
    while " " in nq and nq.rsplit(" ", 1)[1] in _MISSPELT_LEGAL_FORMS:
        nq = normalize_name(nq.rsplit(" ", 1)[0])
    return nq


class NameVocabulary:
    """Every word of every mirrored company name, in memory: which spellings of a typo are real words,
    and which words a word being typed may become, are then answered without the database.

    A typo's candidate spellings are ~450 for an 8-letter word, nearly all absent; looking each up in an
    index cost 5-15 ms at 1M customers, a set lookup costs nanoseconds, and only the few real words go
    to the database. Current by construction: migration 0007's triggers add each new word to
    `ns_customer_name_words` in the writer's transaction, and `refresh` (once per name search that needs
    it) reads only the words added since the previous read: nothing, one indexed round trip, in the
    steady state. So a search sees every word committed before it started. Words are never dropped: one
    whose last customer was renamed or deleted costs one lookup that finds nothing, never a wrong answer.

    Memory: about 95 bytes per distinct word (the string, its set slot and its place in the sorted list):
    27 MB measured for 283,000 distinct words; the benchmark's 1M synthetic customers have ~3,600.
    Thread-safe: readers only test membership and bisect lists that are replaced, never changed in place.
    """

    _RECENT_MAX = 2_048  # words added since the last merge are kept in a small sorted list

    def __init__(self) -> None:
        self._words: set[str] = set()
        self._sorted: list[str] = []  # every word but the recent ones, in code-point order
        self._recent: list[str] = []
        self._mark: VocabularyMark | None = None
        self._lock = threading.Lock()

    def __contains__(self, word: object) -> bool:
        return word in self._words

    def __len__(self) -> int:
        return len(self._words)

    def refresh(self, repo: CustomerSearchRepository) -> None:
        """Add the words written since the last refresh (all of them the first time)."""
        words, mark = repo.name_words_since(self._mark)
        with self._lock:
            fresh = sorted({w for w in words if w not in self._words})
            if fresh:
                self._words.update(fresh)
                recent = sorted(self._recent + fresh)
                if len(recent) > max(self._RECENT_MAX, len(self._sorted) // 8):
                    self._sorted, self._recent = sorted(self._sorted + recent), []
                else:
                    self._recent = recent
            # Any mark whose words are all merged is correct; the later one re-reads less.
            if self._mark is None or mark.order >= self._mark.order:
                self._mark = mark

    def approximate_bytes(self) -> int:
        """Memory held: the words, the set and the sorted lists (the strings are shared)."""
        words = list(self._words)
        return (
            sum(sys.getsizeof(w) for w in words)
            + sys.getsizeof(self._words)
            + sys.getsizeof(self._sorted)
            + sys.getsizeof(self._recent)
        )

    def known(self, spellings: Iterable[str]) -> set[str]:
        """The real words among `spellings`."""
        return self._words.intersection(spellings)

    def completions(self, prefix: str, cap: int) -> list[str]:
        """The words starting with `prefix` (itself included) in code-point order, at most `cap` + 1 of
        them: more than `cap` means there are too many to list."""
        found: list[str] = []
        for words in (self._sorted, self._recent):
            i = bisect_left(words, prefix)
            end = min(len(words), i + cap + 1)
            while i < end and words[i].startswith(prefix):
                found.append(words[i])
                i += 1
        return sorted(found)[: cap + 1]


class CustomerSearch:
    """Ranked customer lookup over the mirror.

    `digest` is `FederalIdCipher.digest`, so that a typed EIN finds the mirror's `tax_number_digest` (the
    mirror keeps no tax number in clear). Without it (no Federal ID key configured) an EIN finds no
    customer by tax number: "12-3456789" finds nothing, nine bare digits only an entity or internal id.
    """

    def __init__(self, sessions: sessionmaker[Session], digest: Callable[[str], str] | None = None) -> None:
        self._sessions = sessions
        self._digest = digest
        self._vocabulary = NameVocabulary()

    @property
    def vocabulary(self) -> NameVocabulary:
        """The in-memory name vocabulary (loaded by the first name search that needs it)."""
        return self._vocabulary

    def search(self, query: str, *, limit: int = 25, sales_rep_id: int | None = None) -> list[CustomerMatch]:
        """The best `limit` customers for `query`, best first; [] for a blank query."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, not {type(query).__name__}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")
        q = clean_query(query)
        if not q:
            return []
        with transaction(self._sessions, readonly=True) as session:
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
            if self._digest is not None:
                d = "".join(ch for ch in compact if ch.isdigit())
                found = repo.by_tax_number(self._digest(d), sales_rep_id=sales_rep_id, limit=limit)
                yield from exact(found, MatchedOn.TAX_NUMBER)
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
        by_entity_id = repo.by_entity_id(q, sales_rep_id=sales_rep_id, limit=limit)
        by_city = repo.by_city(q, sales_rep_id=sales_rep_id, limit=limit)
        yield from exact(by_entity_id, MatchedOn.ENTITY_ID)
        yield from exact(by_city, MatchedOn.CITY, CITY_SCORE)
        yield from self._by_name(
            repo,
            normalize_query_name(q),
            limit=limit,
            sales_rep_id=sales_rep_id,
            last_resort=not by_entity_id and not by_city,
            typo_stage=len({c.internal_id for c in (*by_entity_id, *by_city)}) < limit,
        )

    def _by_name(
        self,
        repo: CustomerSearchRepository,
        nq: str,
        *,
        limit: int,
        sales_rep_id: int | None,
        last_resort: bool = True,
        typo_stage: bool = True,
    ) -> Iterable[_Hit]:
        """Name candidates, cheapest stage first, stopping as soon as there are `limit` good answers:

        1. names starting with the query (a B-tree range: exact and prefix matches);
        2. names holding every query word as a whole word, the last one maybe still being typed (any
           word starting with it); the vocabulary says first whether every word exists at all;
        3. only when stage 1 found nothing, names within one typo of each query word: the vocabulary
           gives each word's real spellings one edit away (a lone word may also be two words whose space
           was lost), and one query asks for them all. A name that matches as typed means the query
           is spelt right: the typo stage would only add names ranked below every prefix match (fuzzy
           scores stay under 0.90), at the cost of the dearest stage.
        4. when nothing at all was found and `last_resort`: trigrams (PostgreSQL: `q <% name`; SQLite:
           the trigram FTS5 typo expression), for two typos in one word. The caller says no when the
           query has already found something else (a city, an entity id), so that only an otherwise
           empty answer waits for it.
        `typo_stage`: the caller says no when exact answers (a city, 0.85; an entity id, 1.0) already
        fill the page: a name found only through a typo would need a fuzzy ratio of 95.5 or more, a
        name all but identical to the whole query, to rank among them ("Tempe" is a city, not a typo).
        All candidates are then scored alike, so skipping a stage drops fuzzy tails, never reorders.
        """
        if not nq:
            return
        seen: dict[int, Candidate] = {}

        def add(candidates: Iterable[Candidate]) -> None:
            for c in candidates:
                seen.setdefault(c.internal_id, c)

        def enough() -> bool:
            if len(seen) < limit:
                return False
            good = 0
            for c in seen.values():
                if name_score(nq, c.name_normalized) is not None:
                    good += 1
                    if good >= limit:
                        return True
            return False

        add(repo.name_prefix(nq, sales_rep_id=sales_rep_id, limit=limit))
        typed_right = bool(seen)
        # The common little words narrow nothing and cost most to look up (a fifth of all names hold
        # "and"): they are left to the scoring, unless they are all the query has.
        words = [w for w in nq.split() if w not in NEVER_A_TYPO] or nq.split()
        if not enough():
            vocabulary = self._vocabulary
            vocabulary.refresh(repo)
            add(self._all_words(repo, vocabulary, words, sales_rep_id=sales_rep_id))
            if typo_stage and not typed_right and not enough():
                add(self._one_typo(repo, vocabulary, words, sales_rep_id=sales_rep_id))
        if not seen and last_resort:
            if repo.dialect == "postgresql":
                cap = max(4 * limit, PG_CANDIDATES_MIN)
                add(repo.name_candidates_pg(nq, sales_rep_id=sales_rep_id, limit=cap))
            else:
                expression = fts_typo_expression(words)
                if expression is not None:
                    add(repo.name_fts_sqlite(expression, sales_rep_id=sales_rep_id, limit=SQLITE_FTS_CAP))
        yield from _scored(nq, list(seen.values()), limit)

    @staticmethod
    def _all_words(
        repo: CustomerSearchRepository,
        vocabulary: NameVocabulary,
        words: list[str],
        *,
        sales_rep_id: int | None,
    ) -> list[Candidate]:
        """Stage 2: every word but the last whole, the last whole or as the start of a word.

        A last word with more than `COMPLETIONS_CAP` completions, or shorter than three characters, is
        left to the scoring beside other words (each of its completions would be one more lookup, or
        each row of the other words one more check: 10-25 ms at 1M for a common word and "pr"); alone,
        it is looked up by its first completions only.
        """
        *whole, last = words
        if any(w not in vocabulary for w in whole):
            return []  # a word no name holds: no name holds them all
        groups = [[w] for w in dict.fromkeys(whole)]
        completions = vocabulary.completions(last, COMPLETIONS_CAP) if len(last) >= MIN_FTS_TERM else None
        if completions is not None and not completions:
            return []  # no word starts with it
        if completions is not None and (len(completions) <= COMPLETIONS_CAP or not groups):
            groups.append(completions[:COMPLETIONS_CAP])
        if not groups:
            return []  # a lone word shorter than a trigram: stage 1 has answered it
        return repo.name_word_groups([groups], sales_rep_id=sales_rep_id, limit=WORDS_CAP)

    @staticmethod
    def _one_typo(
        repo: CustomerSearchRepository,
        vocabulary: NameVocabulary,
        words: list[str],
        *,
        sales_rep_id: int | None,
    ) -> list[Candidate]:
        """Stage 3: each word as typed or one edit away (the real words only), the last one maybe a start.

        A lone word must be longer than one beside others, which narrow the match: a short word has many
        neighbours. A last word being typed with too many completions is left to the scoring, as in
        stage 2. A lone word may also be two words whose space was lost or mistyped ("acmeindustrial",
        "acmexindustrial"): every split into two real words, or into a real word and one a typo away.
        """
        min_len = TYPO_MIN_WORD if len(words) == 1 else TYPO_MIN_WORD_BESIDE_OTHERS
        groups: list[list[str]] = []
        for i, word in enumerate(words):
            alternatives = vocabulary.known((word,))
            if len(word) >= min_len and word not in NEVER_A_TYPO:
                alternatives |= vocabulary.known(one_edit_spellings(word))
            if i == len(words) - 1 and len(words) > 1:
                completions = (
                    vocabulary.completions(word, COMPLETIONS_CAP) if len(word) >= MIN_FTS_TERM else None
                )
                if completions is None or len(completions) > COMPLETIONS_CAP:
                    break  # being typed, with too many possible ends: left to the scoring
                alternatives.update(completions)
            if word not in NEVER_A_TYPO and alternatives & NEVER_A_TYPO:
                alternatives -= NEVER_A_TYPO  # "ann" for "and": a lookup of a fifth of all names
                if not alternatives:
                    continue  # left to the scoring, as "and" itself is
            if not alternatives:
                groups = []
                break
            groups.append(sorted(alternatives))
        found = repo.name_word_groups([groups], sales_rep_id=sales_rep_id, limit=WORDS_CAP) if groups else []
        if len(words) == 1 and not found:
            found = repo.name_word_groups(
                _lost_space_splits(words[0], vocabulary), sales_rep_id=sales_rep_id, limit=WORDS_CAP
            )
        return found

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


def _lost_space_splits(word: str, vocabulary: NameVocabulary) -> list[list[list[str]]]:
    """Clauses for a word that is two words run together: every split into two real words (>= 3
    characters each); failing that, into a real word and one a typo away from a real word."""
    splits = [(word[:i], word[i:]) for i in range(MIN_FTS_TERM, len(word) - MIN_FTS_TERM + 1)]
    exact = [[[a], [b]] for a, b in splits if a in vocabulary and b in vocabulary]
    if exact:
        return exact
    clauses: list[list[list[str]]] = []
    for a, b in splits:
        if a in vocabulary and (near := vocabulary.known(one_edit_spellings(b))):
            clauses.append([[a], sorted(near)])
        elif b in vocabulary and (near := vocabulary.known(one_edit_spellings(a))):
            clauses.append([sorted(near), [b]])
    return clauses


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
