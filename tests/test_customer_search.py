"""Customer search over the NetSuite mirror, on SQLite (FTS5) and PostgreSQL (word GIN, pg_trgm) alike."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from bot.customers import search as search_module
from bot.customers.normalize import email_domain, normalize_name
from bot.customers.search import (
    CustomerMatch,
    CustomerSearch,
    MatchedOn,
    NameVocabulary,
    clean_query,
    name_score,
    one_edit_spellings,
)
from bot.federal_id import FederalIdCipher, generate_key
from storage import migrate
from storage.db import make_engine, make_session_factory, transaction
from storage.models import NsCustomer, NsCustomerAddress
from storage.repositories import mirror_write
from storage.repositories.customer_search import (
    CustomerSearchRepository,
    VocabularyMark,
    fts_first_word_expression,
    fts_typo_expression,
    fts_word_groups_expression,
)
from tests.conftest import _empty_pg

CIPHER = FederalIdCipher([generate_key()])


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def add_customer(
    session: Session,
    internal_id: int,
    name: str | None,
    *,
    entity_id: str | None = None,
    tax_number: str | None = None,
    email: str | None = None,
    city: str | None = None,
    state: str | None = None,
    sales_rep_id: int | None = None,
    inactive: bool = False,
) -> NsCustomer:
    """One mirrored customer as the mirror writes it: normalised name, domain and tax digest filled in."""
    customer = NsCustomer(
        internal_id=internal_id,
        entity_id=entity_id if entity_id is not None else f"CUST-{internal_id}",
        company_name=name,
        name_normalized=normalize_name(name) if name is not None else None,
        tax_number_digest=CIPHER.digest(tax_number) if tax_number else None,
        email=email,
        email_domain=email_domain(email) if email else None,
        sales_rep_id=sales_rep_id,
        is_inactive=inactive,
        default_billing_address_id=internal_id * 10 if city else None,
    )
    if city:
        customer.addresses.append(
            NsCustomerAddress(
                address_id=internal_id * 10, default_billing=True, line1="1 Main St", city=city, region=state
            )
        )
    session.add(customer)
    return customer


def seed(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        add_customer(
            s,
            1001,
            "Acme Industrial Supply LLC",
            tax_number="12-3456789",
            email="ap@acme.example",
            city="Austin",
            state="TX",
            sales_rep_id=7,
        )
        add_customer(s, 1002, "Acme Tools Inc.", email="billing@acmetools.example", city="Dallas", state="TX")
        add_customer(s, 1003, "Zenith Acme Partners", city="Round Rock", state="TX", sales_rep_id=8)
        add_customer(s, 1004, "Acne Dermatology Group", city="Austin", state="TX", sales_rep_id=8)
        add_customer(s, 1005, "Harbor Freight Logistics Corp", city="Seattle", state="WA", sales_rep_id=7)
        add_customer(s, 1006, "Northwind Traders Ltd", entity_id="NW-TRADERS", city="Toronto", state="ON")
        add_customer(s, 1007, "Globex Corporation", email="ar@globex.example", city="Springfield", state="IL")
        add_customer(s, 1008, "Acme", city="Boston", state="MA", sales_rep_id=8)
        add_customer(s, 1009, "Industrial Acme Holdings", city="Austin", state="TX", sales_rep_id=7)


def names(matches: list[CustomerMatch]) -> list[str | None]:
    return [m.company_name for m in matches]


# --- normalisation and query building (no database) ---------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Acme Industrial Supply, L.L.C.", "acme industrial supply"),
        ("ACME INDUSTRIAL SUPPLY INC.", "acme industrial supply"),
        ("The Acme Co., Ltd.", "acme"),
        ("Müller & Söhne GmbH", "muller and sohne"),
        ("O'Brien   Tools-Direct Corp", "obrien tools direct"),
        ("Co", "co"),
        ("Co Ltd", "co ltd"),
        ("  ", ""),
    ],
)
def test_normalize_name(raw: str, normalized: str) -> None:
    assert normalize_name(raw) == normalized


def test_email_domain() -> None:
    assert email_domain("AP@Acme.Example") == "acme.example"
    assert email_domain("@acme.example") == "acme.example"
    assert email_domain("acme.example") is None
    assert email_domain("ap@") is None


def test_clean_query_drops_control_characters_and_caps_length() -> None:
    assert clean_query("  acme\x00\tindustrial\n ") == "acme industrial"
    assert len(clean_query("x" * 10_000)) == search_module.MAX_QUERY_CHARS


def test_fts_expressions_quote_words_and_allow_one_typo() -> None:
    assert fts_word_groups_expression([[["acme"], ["industrial", "industrious"]]]) == (
        'name_normalized : ((("acme") AND ("industrial" OR "industrious")))'
    )
    assert fts_word_groups_expression([[["acme"], ["tools"]], [["acmetools"]]], sales_rep_id=7) == (
        'name_normalized : ((("acme") AND ("tools")) OR (("acmetools"))) AND sales_rep_id : "7"'
    )
    assert (
        fts_first_word_expression("acme ind", sales_rep_id=7)
        == 'name_normalized : "acme" AND sales_rep_id : "7"'
    )
    assert (
        fts_first_word_expression("acm", sales_rep_id=7) == 'name_normalized : "acm"* AND sales_rep_id : "7"'
    )
    assert fts_first_word_expression("ac", sales_rep_id=7) is None
    expr = fts_typo_expression(["acme", "industral"])
    assert expr == '("industral") OR ("acme" AND ("indu" OR "stral"))'
    assert fts_typo_expression(["widgit"]) == '(("wid" OR "git"))'
    assert fts_typo_expression(["acne"]) is None  # too short to split: no typo tolerance


# --- search on both databases ---------------------------------------------------------------------


def test_typo_tolerant_name(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    found = CustomerSearch(sessions).search("Acme Industral")
    assert found[0].company_name == "Acme Industrial Supply LLC"
    assert found[0].matched_on is MatchedOn.NAME
    assert 0 < found[0].score < 0.9  # fuzzy tier


def test_legal_suffix_and_case_insensitive(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    found = CustomerSearch(sessions).search("ACME INDUSTRIAL SUPPLY, INC.")
    assert found[0].internal_id == 1001
    assert found[0].score == 1.0


def test_entity_id(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    search = CustomerSearch(sessions)
    for q in ("CUST-1005", "cust-1005"):
        found = search.search(q)
        assert [(m.internal_id, m.matched_on, m.score) for m in found] == [(1005, MatchedOn.ENTITY_ID, 1.0)]
    # a non-numbered entity id is found like a name would be, but as the entity id
    assert search.search("nw-traders")[0].matched_on is MatchedOn.ENTITY_ID
    # bare digits: the internal id too
    assert [(m.internal_id, m.matched_on) for m in search.search("1007")] == [(1007, MatchedOn.INTERNAL_ID)]


def test_tax_number_by_digest(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    search = CustomerSearch(sessions, digest=CIPHER.digest)
    for q in ("12-3456789", "123456789", " 12-345 6789 "):
        found = search.search(q)
        assert [(m.internal_id, m.matched_on) for m in found] == [(1001, MatchedOn.TAX_NUMBER)], q
    assert search.search("98-7654321") == []


def test_tax_number_without_a_digest_function(sessions: sessionmaker[Session]) -> None:
    """No Federal ID key, no digest: the mirror holds tax numbers only as digests, so an EIN finds no
    customer by tax number; nine bare digits are still tried as an entity id and an internal id."""
    with transaction(sessions) as s:
        add_customer(s, 2001, "Digest Tax Co", tax_number="55-1234567")
        add_customer(s, 2002, "Digits Entity Co", entity_id="551234567")
    keyless = CustomerSearch(sessions)
    assert keyless.search("55-1234567") == []
    assert [(m.internal_id, m.matched_on) for m in keyless.search("551234567")] == [
        (2002, MatchedOn.ENTITY_ID)
    ]
    keyed = CustomerSearch(sessions, digest=CIPHER.digest)
    assert [(m.internal_id, m.matched_on) for m in keyed.search("551234567")] == [
        (2001, MatchedOn.TAX_NUMBER),
        (2002, MatchedOn.ENTITY_ID),
    ]


def test_email_domain_search(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    search = CustomerSearch(sessions)
    for q in ("@acme.example", "someone@ACME.example", "acme.example"):
        found = search.search(q)
        assert found[0].internal_id == 1001, q
        assert found[0].matched_on is MatchedOn.EMAIL_DOMAIN
    assert search.search("@nowhere.example") == []


def test_city(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    found = CustomerSearch(sessions).search("austin")
    assert {m.internal_id for m in found} == {1001, 1004, 1009}
    assert all(m.matched_on is MatchedOn.CITY and m.city == "Austin" and m.state == "TX" for m in found)


def test_result_carries_display_address_and_status(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        add_customer(s, 3001, "Dormant Widgets LLC", city="Tulsa", state="OK", inactive=True)
        add_customer(s, 3002, "Addressless Widgets LLC")
    found = {m.internal_id: m for m in CustomerSearch(sessions).search("widgets")}
    assert (found[3001].city, found[3001].state, found[3001].is_inactive) == ("Tulsa", "OK", True)
    assert (found[3002].city, found[3002].state, found[3002].is_inactive) == (None, None, False)


def test_sales_rep_filter(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    search = CustomerSearch(sessions)
    assert {m.internal_id for m in search.search("acme", sales_rep_id=8)} == {1003, 1008}  # not "acne"
    assert {m.internal_id for m in search.search("acme", sales_rep_id=7)} == {1001, 1009}
    assert search.search("acme industral", sales_rep_id=7)[0].internal_id == 1001
    assert search.search("austin", sales_rep_id=7)[0].matched_on is MatchedOn.CITY
    assert {m.internal_id for m in search.search("austin", sales_rep_id=7)} == {1001, 1009}
    assert search.search("CUST-1001", sales_rep_id=8) == []
    assert search.search("acme", sales_rep_id=999) == []
    # names starting with the query, within the rep's (SQLite: the word FTS5 table narrows first)
    assert search.search("acme ind", sales_rep_id=7)[0].internal_id == 1001
    assert [m.internal_id for m in search.search("ac", sales_rep_id=8)] == [1008, 1004]  # too short for FTS
    assert [m.internal_id for m in search.search("acm", sales_rep_id=8)][:1] == [1008]
    # by tax number, email domain and entity id, the rep is a filter too
    assert search.search("@acme.example", sales_rep_id=7)[0].internal_id == 1001
    assert search.search("@acme.example", sales_rep_id=8) == []


def test_rep_search_follows_a_change_of_rep(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    search = CustomerSearch(sessions)
    assert [m.internal_id for m in search.search("zenth acme", sales_rep_id=8)] == [1003]  # word stages
    with transaction(sessions) as s:
        s.execute(update(NsCustomer).where(NsCustomer.internal_id == 1003).values(sales_rep_id=7))
    assert search.search("zenth acme", sales_rep_id=8) == []
    assert search.search("zenith", sales_rep_id=8) == []
    assert [m.internal_id for m in search.search("zenth acme", sales_rep_id=7)] == [1003]
    assert [m.internal_id for m in search.search("zenith", sales_rep_id=7)] == [1003]
    with transaction(sessions) as s:
        CustomerSearchRepository(s).fts_integrity_check()


def test_ranking_exact_then_prefix_then_fuzzy(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    found = CustomerSearch(sessions).search("acme")
    assert found[0].internal_id == 1008 and found[0].score == 1.0  # exact
    prefix = [m.internal_id for m in found if 0.9 <= m.score < 1.0]
    fuzzy = [m.internal_id for m in found if m.score < 0.9]
    assert prefix == [1002, 1001]  # "acme tools" is closer to "acme" than "acme industrial supply"
    assert set(fuzzy) >= {1003, 1009}  # "acme" further into the name
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    assert found.index(next(m for m in found if m.internal_id == 1003)) > found.index(
        next(m for m in found if m.internal_id == 1001)
    )


def test_limit(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        for i in range(30):
            add_customer(s, 4000 + i, f"Widget Works {i:02d} LLC")
    search = CustomerSearch(sessions)
    everything = search.search("widget works", limit=30)
    assert len(everything) == 30
    assert search.search("widget works", limit=5) == everything[:5]
    for bad in (0, -1, 101):
        with pytest.raises(ValueError, match="limit"):
            search.search("widget", limit=bad)


ODD_QUERIES = [
    "",
    "   \t\n",
    "x" * 10_000,
    "acme " * 500,
    "'; DROP TABLE ns_customers; --",
    '" OR 1=1 --',
    "%",
    "_",
    "%acme%",
    "acme*",
    "NEAR(acme industrial)",
    "acme AND",
    "-acme",
    "^acme",
    "acme:industrial",
    "\x00acme",
    "@",
    "@@",
    "a@b",
    "...",
    "Inc.",
    "12-",
    "9" * 40,
    "ñandú 株式会社",
]


def test_odd_queries_return_cleanly(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    search = CustomerSearch(sessions, digest=CIPHER.digest)
    for query in ODD_QUERIES:
        found = search.search(query)
        assert isinstance(found, list), query
        assert all(0.0 <= m.score <= 1.0 for m in found), query
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(NsCustomer)) == 9


def test_meta_characters_are_plain_text(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        add_customer(s, 5001, "100% Pure_Oils (West) Inc")
        add_customer(s, 5002, "1000 Pure Oils West")
    found = CustomerSearch(sessions).search("100% Pure_Oils (West)")
    assert found[0].internal_id == 5001 and found[0].score == 1.0


def test_fts_and_index_follow_mirror_writes(sessions: sessionmaker[Session]) -> None:
    search = CustomerSearch(sessions)
    with transaction(sessions) as s:
        add_customer(s, 6001, "Quillfeather Paper Mills")
    assert [m.internal_id for m in search.search("quillfeather")] == [6001]

    with transaction(sessions) as s:
        s.execute(
            update(NsCustomer)
            .where(NsCustomer.internal_id == 6001)
            .values(
                company_name="Brightwater Paper Mills",
                name_normalized=normalize_name("Brightwater Paper Mills"),
            )
        )
    assert search.search("quillfeather") == []
    assert [m.internal_id for m in search.search("brightwatr")] == [6001]

    with transaction(sessions) as s:  # other columns change without touching the name index
        s.execute(update(NsCustomer).where(NsCustomer.internal_id == 6001).values(email_domain="bw.example"))
    assert [m.internal_id for m in search.search("@bw.example")] == [6001]
    assert [m.internal_id for m in search.search("brightwater paper")] == [6001]

    with transaction(sessions) as s:
        s.delete(s.get(NsCustomer, 6001))
    assert search.search("brightwater") == []
    with transaction(sessions) as s:
        CustomerSearchRepository(s).fts_integrity_check()


def test_fts_rebuild_after_writes_that_bypassed_triggers(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    sqlite = database_url.startswith("sqlite")
    with transaction(sessions) as s:
        if sqlite:
            for trigger in ("ns_customers_fts_insert", "ns_customers_word_fts_insert"):
                s.execute(text(f"DROP TRIGGER {trigger}"))
            s.execute(text("DROP TRIGGER ns_customer_name_words_insert"))
        else:  # a bulk load that skips triggers (the database is shared with later tests: no DROP)
            s.execute(text("SET LOCAL session_replication_role = replica"))
        add_customer(s, 7001, "Silent Loader Inc")
    search = CustomerSearch(sessions)
    if sqlite:  # a typo needs the FTS indexes and the vocabulary, which never heard of it
        assert search.search("silnt loader") == []
    assert "silent" not in vocabulary_of(search)
    with transaction(sessions) as s:
        CustomerSearchRepository(s).rebuild_fts()
    assert [m.internal_id for m in search.search("silnt loader")] == [7001]
    assert "silent" in vocabulary_of(search)  # the same, already loaded vocabulary picked it up
    with transaction(sessions) as s:
        CustomerSearchRepository(s).fts_integrity_check()


def vocabulary_of(search: CustomerSearch) -> NameVocabulary:
    """The search's vocabulary, brought up to date as a search would."""
    vocabulary: NameVocabulary = search._vocabulary
    with transaction(search._sessions, readonly=True) as s:
        vocabulary.refresh(CustomerSearchRepository(s))
    return vocabulary


# --- one contract on both databases -----------------------------------------------------------------


@pytest.fixture
def both_backends(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[dict[str, sessionmaker[Session]]]:
    sqlite_path = tmp_path / "contract.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), sqlite_path)
    pg_url: str = request.getfixturevalue("pg_database")
    _empty_pg(pg_url)
    engines = {"sqlite": make_engine(f"sqlite:///{sqlite_path}"), "postgresql": make_engine(pg_url)}
    yield {name: make_session_factory(engine) for name, engine in engines.items()}
    for engine in engines.values():
        engine.dispose()


@pytest.mark.services
def test_same_results_on_both_databases(both_backends: dict[str, sessionmaker[Session]]) -> None:
    for factory in both_backends.values():
        seed(factory)
        with transaction(factory) as s:
            for i in range(40):
                add_customer(
                    s, 8000 + i, f"Widget Works {i:02d} LLC", city="Austin", state="TX", sales_rep_id=9
                )
    queries = [
        "acme",
        "Acme Industral",
        "acme tools",
        "industrial acme",
        "austin",
        "@acme.example",
        "12-3456789",
        "CUST-1005",
        "nw-traders",
        "1007",
        "harbr freight",
        "widget works",
        "widgit",
        "'; DROP TABLE x; --",
    ]
    results: dict[str, list[list[dict[str, object]]]] = {}
    for backend, factory in both_backends.items():
        search = CustomerSearch(factory, digest=CIPHER.digest)
        results[backend] = [[m.model_dump() for m in search.search(q, limit=10)] for q in queries]
        results[backend] += [[m.model_dump() for m in search.search("widget", limit=10, sales_rep_id=9)]]
    for q, sqlite_result, pg_result in zip(queries, results["sqlite"], results["postgresql"], strict=False):
        assert sqlite_result == pg_result, q
    assert [q for q, found in zip(queries, results["sqlite"], strict=False) if not found] == [
        "'; DROP TABLE x; --"
    ]


# --- the migration -----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    url: str = request.getfixturevalue("fresh_database")()
    return url


def downgrade(engine: Any, revision: str) -> None:
    from alembic import command

    cfg = migrate.alembic_config(engine)
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def test_migration_builds_index_over_existing_rows_and_downgrades(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0001")
        factory = make_session_factory(engine)
        with transaction(factory) as s:
            add_customer(s, 9001, "Preexisting Pumps Inc")
        migrate.upgrade(engine)
        assert [m.internal_id for m in CustomerSearch(factory).search("preexisting pmps")] == [9001]

        downgrade(engine, "0001")
        assert migrate.current_revision(engine) == "0001"
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                leftovers = conn.execute(
                    text(
                        "SELECT name FROM sqlite_master WHERE name LIKE 'ns_customers_%fts%'"
                        " OR name LIKE 'ns_customer_name_words%'"
                    )
                ).all()
            else:
                leftovers = conn.execute(
                    text("SELECT indexname FROM pg_indexes WHERE indexname = 'ix_ns_customers_name_trgm'")
                ).all()
        assert leftovers == []
        with transaction(factory) as s:  # the mirror still writes without the triggers
            add_customer(s, 9002, "Later Pumps Inc")
        migrate.upgrade(engine)
        assert {m.internal_id for m in CustomerSearch(factory).search("pumps")} == {9001, 9002}
    finally:
        engine.dispose()


# --- stages: what runs when, and what it may not change -------------------------------------------


def test_one_edit_spellings() -> None:
    spellings = one_edit_spellings("widgit")
    assert {"widget", "wdigit", "widgt", "widgiit", "wiidgit"} <= spellings  # replace, swap, drop, add
    assert "widgit" not in spellings
    assert "widg1t" not in spellings  # digits only for words that hold one
    assert "b3b" in one_edit_spellings("b2b")
    assert all(len(s) in (5, 6, 7) for s in spellings)


HARBORS = {
    9101: "Harbor",
    9102: "Harbor Freight Logistics",
    9103: "Pacific Harbor Works",
    9104: "Harbar Marine",  # one typo from "harbor": only the typo stage can find it
    9105: "Inland Freight",
}


def seed_harbors(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        for internal_id, name in HARBORS.items():
            add_customer(s, internal_id, name)


def spy_on_typo_stage(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The query words of each run of the typo stage, recorded (the stage still runs)."""
    runs: list[list[str]] = []
    real_one_typo = CustomerSearch._one_typo

    def spy(
        repo: CustomerSearchRepository,
        vocabulary: NameVocabulary,
        words: list[str],
        *,
        sales_rep_id: int | None,
    ) -> object:
        runs.append(words)
        return real_one_typo(repo, vocabulary, words, sales_rep_id=sales_rep_id)

    monkeypatch.setattr(CustomerSearch, "_one_typo", staticmethod(spy))
    return runs


def test_a_name_typed_right_skips_the_typo_stage_and_ranks_as_before(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_harbors(sessions)
    typo_stage_queries = spy_on_typo_stage(monkeypatch)
    search = CustomerSearch(sessions)

    found = search.search("harbor")
    assert typo_stage_queries == []  # an exact match exists: no typo stage
    assert [m.internal_id for m in found] == [9101, 9102, 9103]  # exact, prefix, every word elsewhere
    # The same scores and order as scoring every mirrored name by hand, minus the typo-only one.
    by_hand = sorted(
        (
            (-score, normalize_name(name), internal_id)
            for internal_id, name in HARBORS.items()
            if (score := name_score("harbor", normalize_name(name))) is not None and "harbor" in name.lower()
        )
    )
    assert [(m.internal_id, m.score) for m in found] == [(i, round(-s, 4)) for s, _, i in by_hand]

    found = search.search("harbir")  # nothing starts with it: the typo stage runs and finds both
    assert typo_stage_queries == [["harbir"]]
    assert {9101, 9104} <= {m.internal_id for m in found}
    assert all(m.score < 0.9 for m in found)


def test_a_page_of_cities_needs_no_typo_stage(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with transaction(sessions) as s:
        for i in range(3):
            add_customer(s, 9150 + i, f"Desert Supply {i}", city="Tempe", state="AZ")
        add_customer(s, 9160, "Tenpe Tools")  # one typo from the city's name
    typo_stage_runs = spy_on_typo_stage(monkeypatch)
    search = CustomerSearch(sessions)
    found = search.search("tempe", limit=3)  # three cities fill the page
    assert typo_stage_runs == []
    assert [(m.internal_id, m.matched_on) for m in found] == [(i, MatchedOn.CITY) for i in (9150, 9151, 9152)]
    found = search.search("tempe", limit=5)  # room for more: the typo stage runs, and ranks below
    assert typo_stage_runs == [["tempe"]]
    assert [m.internal_id for m in found] == [9150, 9151, 9152, 9160]


def test_typo_beside_other_words_and_little_words_ignored(sessions: sessionmaker[Session]) -> None:
    seed_harbors(sessions)
    with transaction(sessions) as s:
        add_customer(s, 9201, "Walker & Sons Supply")
        add_customer(s, 9202, "Walker Freight")
    search = CustomerSearch(sessions)
    assert search.search("harbor freihgt")[0].internal_id == 9102  # swapped letters in the second word
    assert search.search("walkr & sons")[0].internal_id == 9201  # "and" neither required nor suspected
    # a misspelt legal form at the end goes as the legal form itself does
    best = search.search("Walker Freight Companny")[0]
    assert (best.internal_id, best.score) == (9202, 1.0)
    # a query of little words only still asks for them
    assert [m.internal_id for m in search.search("and")] == [9201]


class _Recorder:
    """Wraps `CustomerSearchRepository.name_word_groups` to see what the word stages ask the database."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.asked: list[list[list[list[str]]]] = []
        real = CustomerSearchRepository.name_word_groups

        def spy(repo: CustomerSearchRepository, clauses: Any, **kwargs: Any) -> Any:
            self.asked.append([[list(g) for g in clause] for clause in clauses])
            return real(repo, clauses, **kwargs)

        monkeypatch.setattr(CustomerSearchRepository, "name_word_groups", spy)


def no_last_resort(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn the trigram last resort off: what is found then comes from the word stages."""

    def nothing(*args: Any, **kwargs: Any) -> list[Any]:
        return []

    monkeypatch.setattr(CustomerSearchRepository, "name_candidates_pg", nothing)
    monkeypatch.setattr(CustomerSearchRepository, "name_fts_sqlite", nothing)


def test_typo_spellings_are_checked_against_the_vocabulary(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_harbors(sessions)
    no_last_resort(monkeypatch)
    recorder = _Recorder(monkeypatch)
    search = CustomerSearch(sessions)
    found = search.search("harbir")
    assert {9101, 9104} <= {m.internal_id for m in found}
    # Of the ~320 spellings one edit from "harbir", only the real words reach the database.
    (typo_stage,) = recorder.asked
    (clause,) = typo_stage
    (group,) = clause
    vocabulary = vocabulary_of(search)
    assert {"harbor", "harbar"} <= set(group)
    assert all(word in vocabulary for word in group)
    assert len(group) < 10

    recorder.asked.clear()
    assert search.search("harbr freigt")[0].internal_id == 9102  # one typo in each of two words
    assert search.search("inlnd")[0].internal_id == 9105
    assert search.search("xqzvbw") == []  # no word within one edit: nothing asked, nothing found
    assert [clauses for clauses in recorder.asked if any("xqzvbw" in str(c) for c in clauses)] == []

    with transaction(sessions) as s:
        add_customer(s, 9106, "Walker & Sons Supply")
    recorder.asked.clear()
    assert search.search("walkr ann sons")[0].internal_id == 9106
    # "ann" is one edit from "and", which is never looked up (a fifth of all names hold it)
    assert recorder.asked and all(
        "and" not in group for clauses in recorder.asked for c in clauses for group in c
    )


def test_a_word_being_typed_and_a_lost_space(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_harbors(sessions)
    no_last_resort(monkeypatch)
    search = CustomerSearch(sessions)
    # the last word is the start of a word; the first holds the whole word
    assert [m.internal_id for m in search.search("freight harb")] == [9102]
    # a lone word that is two words run together, then with a typo in one of them, or a typo for the space
    for query in ("harborfreight", "harborfreihgt", "harborxfreight", "pacificharbor"):
        assert search.search(query)[0].internal_id in (9102, 9103), query
    # too many completions to list: the last word is left to the scoring beside the other words
    monkeypatch.setattr(search_module, "COMPLETIONS_CAP", 0)
    assert [m.internal_id for m in search.search("freight harb")] == [9102]


def test_two_typos_in_one_word_reach_the_trigram_last_resort(sessions: sessionmaker[Session]) -> None:
    seed_harbors(sessions)
    # "freightlogistics" is no word and is not within one edit of one: only trigrams find it
    assert CustomerSearch(sessions).search("harbor freightlogistics")[0].internal_id == 9102


def test_vocabulary_stays_current_as_the_mirror_is_written(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_harbors(sessions)
    no_last_resort(monkeypatch)
    search = CustomerSearch(sessions)
    assert search.search("harbor")  # loads the vocabulary
    loaded = len(vocabulary_of(search))
    now = datetime.now(UTC)

    def ingest(internal_id: int, name: str) -> None:  # as `bot.mirror` writes a page of customers
        row = {
            "internal_id": internal_id,
            "entity_id": f"CUST-{internal_id}",
            "company_name": name,
            "name_normalized": normalize_name(name),
            "sales_rep_id": 5,
            "is_inactive": False,
        }
        with transaction(sessions) as s:
            mirror_write.upsert_customers(s, [row], mirrored_at=now)

    ingest(9601, "Quorvanth Pumps LLC")  # a word no name held before
    assert [m.internal_id for m in search.search("quorvanh pumps")] == [9601]
    assert [m.internal_id for m in search.search("quorvnth", sales_rep_id=5)] == [9601]
    ingest(9601, "Quorvanth Zelmaric Pumps LLC")  # renamed, through the upsert's update
    assert [m.internal_id for m in search.search("zelmaic pumps")] == [9601]
    known = len(vocabulary_of(search))
    assert known > loaded and {"quorvanth", "zelmaric", "pumps"} <= vocabulary_of(search).known(
        ("quorvanth", "zelmaric", "pumps")
    )
    ingest(9601, "Quorvanth Zelmaric Pumps LLC")  # the same name again: nothing new
    assert len(vocabulary_of(search)) == known

    # a page of customers in one batch (the writer's bulk path on PostgreSQL), each with a new word
    page = [
        {
            "internal_id": 9610 + i,
            "entity_id": f"CUST-{9610 + i}",
            "company_name": f"Brenthavik{i:02d} Pumps",
            "name_normalized": normalize_name(f"Brenthavik{i:02d} Pumps"),
            "sales_rep_id": 6,
            "is_inactive": False,
        }
        for i in range(40)
    ]
    with transaction(sessions) as s:
        mirror_write.upsert_customers(s, page, mirrored_at=now)
    assert [m.internal_id for m in search.search("brenthavk07 pumps")] == [9617]
    assert len(vocabulary_of(search)) == known + 40


def test_vocabulary_learns_a_word_committed_after_a_search_began_reading(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a writer in progress while the vocabulary was read commits later; its words must not be
    lost between the two reads (the snapshot's in-progress list), though ids or transaction numbers after
    it were already read."""
    seed_harbors(sessions)
    no_last_resort(monkeypatch)
    search = CustomerSearch(sessions)
    assert search.search("harbor")
    with transaction(sessions) as writer:
        add_customer(writer, 9701, "Yllandrith Optics")
        writer.flush()  # written, not committed: the writer has its transaction id
        assert search.search("yllandrth optics") == []  # not visible yet
        if sessions.kw["bind"].dialect.name == "postgresql":  # SQLite has one writer at a time
            with transaction(sessions) as other:  # a later writer commits first (no word in common)
                add_customer(other, 9702, "Vostrelline Lenses")
            assert [m.internal_id for m in search.search("vostreline")] == [9702]
    assert [m.internal_id for m in search.search("yllandrth optics")] == [9701]


class _FakeRepo:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.calls = 0

    def name_words_since(self, mark: VocabularyMark | None) -> tuple[list[str], VocabularyMark]:
        self.calls += 1
        after = mark.order if mark is not None else 0
        new = [w for batch in self.batches[after:] for w in batch]
        return new, VocabularyMark(len(self.batches))


def test_name_vocabulary_in_memory() -> None:
    repo = _FakeRepo()
    vocabulary = NameVocabulary()
    repo.batches.append([f"word{i:05d}" for i in range(5000)] + ["acme", "acmetools", "acne"])
    vocabulary.refresh(repo)  # type: ignore[arg-type]
    assert len(vocabulary) == 5003 and "acme" in vocabulary and "acm" not in vocabulary
    assert vocabulary.known({"acme", "acmx", "acne"}) == {"acme", "acne"}
    assert vocabulary.completions("acm", 5) == ["acme", "acmetools"]
    assert len(vocabulary.completions("word", 5)) == 6  # more than the cap: cap + 1 returned
    repo.batches.append(["acmex", "acme"])  # the new word lands in the small sorted list
    vocabulary.refresh(repo)  # type: ignore[arg-type]
    assert vocabulary.completions("acm", 5) == ["acme", "acmetools", "acmex"]
    assert len(vocabulary) == 5004
    repo.batches.append([f"zz{i:05d}" for i in range(3000)])  # enough to merge into the big list
    vocabulary.refresh(repo)  # type: ignore[arg-type]
    assert vocabulary.completions("acm", 5) == ["acme", "acmetools", "acmex"]
    assert vocabulary.completions("zz0299", 50) == [f"zz0299{i}" for i in range(10)]
    assert len(vocabulary) == 8004


def test_search_reads_beside_a_writer(database_url: str, sessions: sessionmaker[Session]) -> None:
    """Search takes no write lock: on SQLite it reads while another transaction holds the lock."""
    seed_harbors(sessions)
    with transaction(sessions) as writer:
        add_customer(writer, 9301, "Pending Harbor Co")
        writer.flush()  # the writer now holds the lock (BEGIN IMMEDIATE on SQLite)
        found = CustomerSearch(sessions).search("harbor")
        assert 9301 not in {m.internal_id for m in found}  # not committed yet
        assert found[0].internal_id == 9101


def test_tuning_migration_indexes(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    pg = engine.dialect.name == "postgresql"
    wanted = {
        "ix_ns_customers_name_c",
        "ix_ns_customers_name_words",
        "ix_ns_customers_name_c_id",
    }
    try:
        migrate.upgrade(engine, "0005")

        def name_indexes() -> set[str]:
            with engine.connect() as conn:
                if engine.dialect.name == "sqlite":
                    rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))
                else:
                    rows = conn.execute(text("SELECT indexname FROM pg_indexes"))
                return {r[0] for r in rows} & wanted

        assert name_indexes() == ({"ix_ns_customers_name_c", "ix_ns_customers_name_words"} if pg else set())
        migrate.upgrade(engine)  # 0007 puts the internal id beside the name
        assert name_indexes() == (
            {"ix_ns_customers_name_c_id", "ix_ns_customers_name_words"} if pg else set()
        )
        factory = make_session_factory(engine)
        with transaction(factory) as s:
            add_customer(s, 9401, "Indexed Pumps Inc")
        assert [m.internal_id for m in CustomerSearch(factory).search("indexd pumps")] == [9401]
        downgrade(engine, "0006")
        assert name_indexes() == ({"ix_ns_customers_name_c", "ix_ns_customers_name_words"} if pg else set())
        downgrade(engine, "0004")
        assert name_indexes() == set()
    finally:
        engine.dispose()


def search_objects(engine: Any) -> set[str]:
    """The tables, triggers and functions of migration 0007 present in the database."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE name LIKE 'ns_customer_name_words%'"
                    " OR name LIKE 'ns_customers_word_fts%'"
                )
            )
        else:
            rows = conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE tablename = 'ns_customer_name_words'"
                    " UNION ALL SELECT tgname FROM pg_trigger WHERE tgname LIKE 'ns_customer_name_words%'"
                    " UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'ns_customer_name_words%'"
                )
            )
        return {r[0] for r in rows}


def test_search_words_migration_over_existing_rows_and_back(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0006")
        factory = make_session_factory(engine)
        with transaction(factory) as s:
            add_customer(s, 9501, "Quaveron Turbines Inc", sales_rep_id=3)
            add_customer(s, 9502, "Quaveron Turbines East", sales_rep_id=4)
            add_customer(s, 9503, None, sales_rep_id=3)  # a customer without a name has no words
        migrate.upgrade(engine)
        with transaction(factory, readonly=True) as s:
            words, _ = CustomerSearchRepository(s).name_words_since(None)
        assert sorted(words) == ["east", "quaveron", "turbines"]
        search = CustomerSearch(factory)
        assert [m.internal_id for m in search.search("quavron turbnes", sales_rep_id=3)] == [9501]
        assert [m.internal_id for m in search.search("turbines east")] == [9502]
        with transaction(factory) as s:
            CustomerSearchRepository(s).fts_integrity_check()

        downgrade(engine, "0006")
        assert search_objects(engine) == set()
        with transaction(factory) as s:  # the mirror still writes without the triggers
            add_customer(s, 9504, "Zephyrine Turbines", sales_rep_id=3)
            s.execute(update(NsCustomer).where(NsCustomer.internal_id == 9501).values(sales_rep_id=4))
        migrate.upgrade(engine)
        assert search_objects(engine)
        search = CustomerSearch(factory)
        assert [m.internal_id for m in search.search("zephyrne", sales_rep_id=3)] == [9504]
        assert [m.internal_id for m in search.search("quaveron", sales_rep_id=4)] == [9501, 9502]
    finally:
        engine.dispose()


def mirror_tax_schema(engine: Any) -> tuple[bool, bool, set[str]]:
    """Whether `ns_customers.tax_number` and its index exist, and the names of the table's triggers."""
    columns = {c["name"] for c in inspect(engine).get_columns("ns_customers")}
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            indexes = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))
            triggers = conn.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ns_customers'")
            )
        else:
            indexes = conn.execute(text("SELECT indexname FROM pg_indexes"))
            triggers = conn.execute(
                text(
                    "SELECT tgname FROM pg_trigger"
                    " WHERE tgrelid = 'ns_customers'::regclass AND NOT tgisinternal"
                )
            )
        index_names = {r[0] for r in indexes}
        trigger_names = {r[0] for r in triggers}
    return "tax_number" in columns, "ix_ns_customers_tax_number" in index_names, trigger_names


def test_dropping_the_clear_tax_number_keeps_customers_and_search(empty_database_url: str) -> None:
    """0009 drops `ns_customers.tax_number` (a Federal ID in clear) from a mirror that has a customer with
    one, keeps the search triggers (no SQLite batch rebuild), and a Federal ID still finds it by digest."""
    engine = make_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0008")
        factory = make_session_factory(engine)
        with transaction(factory) as s:
            add_customer(s, 9601, "Clearcut Tax Supply", tax_number="55-7654321", sales_rep_id=3)
            s.execute(text("UPDATE ns_customers SET tax_number = '55-7654321' WHERE internal_id = 9601"))
        has_column, has_index, triggers = mirror_tax_schema(engine)
        assert has_column and has_index and triggers

        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == "0009"
        assert mirror_tax_schema(engine) == (False, False, triggers)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM ns_customers")).all()
        assert len(rows) == 1 and "55-7654321" not in repr(rows)
        search = CustomerSearch(factory, digest=CIPHER.digest)
        for q in ("55-7654321", "557654321"):
            found = search.search(q, sales_rep_id=3)
            assert [(m.internal_id, m.matched_on) for m in found] == [(9601, MatchedOn.TAX_NUMBER)], q
        with transaction(factory) as s:  # the name triggers still fire for new and renamed customers
            add_customer(s, 9602, "Clearcut Timber Co", sales_rep_id=3)
            s.execute(
                update(NsCustomer)
                .where(NsCustomer.internal_id == 9601)
                .values(company_name="Clearview Tax Supply", name_normalized="clearview tax supply")
            )
        assert [m.internal_id for m in search.search("clearcut")] == [9602]
        assert [m.internal_id for m in search.search("clearveiw")] == [9601]
        with transaction(factory) as s:
            CustomerSearchRepository(s).fts_integrity_check()

        downgrade(engine, "0008")
        assert mirror_tax_schema(engine) == (True, True, triggers)
        with engine.connect() as conn:
            emptied = conn.execute(text("SELECT count(*) FROM ns_customers WHERE tax_number IS NULL"))
            assert emptied.scalar() == 2
        with transaction(factory) as s:  # the mirror still writes at 0008
            add_customer(s, 9603, "Clearwater Tax Partners", tax_number="55-1112223")
        migrate.upgrade(engine)
        assert mirror_tax_schema(engine) == (False, False, triggers)
        assert [m.internal_id for m in search.search("55-1112223")] == [9603]
    finally:
        engine.dispose()


def test_dropping_the_clear_tax_number_on_sqlite_older_than_3_35(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SQLite that cannot `DROP COLUMN` (< 3.35) gets the column emptied and unindexed instead."""
    import sqlite3

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate.upgrade(engine, "0008")
        factory = make_session_factory(engine)
        with transaction(factory) as s:
            add_customer(s, 9701, "Legacy Tax Supply", tax_number="55-7654321")
            s.execute(text("UPDATE ns_customers SET tax_number = '55-7654321'"))
        _, _, triggers = mirror_tax_schema(engine)
        monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
        migrate.upgrade(engine)
        assert mirror_tax_schema(engine) == (True, False, triggers)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT tax_number FROM ns_customers")).all() == [(None,)]
        found = CustomerSearch(factory, digest=CIPHER.digest).search("55-7654321")
        assert [m.internal_id for m in found] == [9701]
        downgrade(engine, "0008")  # the column is there already: only the index comes back
        assert mirror_tax_schema(engine) == (True, True, triggers)
        monkeypatch.undo()
        migrate.upgrade(engine)  # an SQLite that can, later: the column goes
        assert mirror_tax_schema(engine) == (False, False, triggers)
    finally:
        engine.dispose()
