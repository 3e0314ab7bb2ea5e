"""The customer mirror ingest against the NetSuite emulator over real HTTP, on SQLite and PostgreSQL.

The oracle is the emulator's own account state (`EmulatorState`), never the SuiteQL answers the
ingest itself read, so a mapping mistake shows up as a difference.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.customers.normalize import email_domain, normalize_name
from bot.mirror import IngestOptions, IngestProgress, IngestReport, MirrorIngest
from bot.mirror.ingest import (
    DONE_CHECKPOINT,
    FULL_RUN_CHECKPOINT,
    REQUEST_THREAD,
    RUN_CHECKPOINT,
    ReadAhead,
)
from netsuite import mapping
from netsuite.client import NetSuiteClient
from netsuite.config import NetSuiteConfig
from netsuite.emulator import EmulatorServer, EmulatorState
from netsuite.errors import ServerError
from netsuite.limiter import LocalLimiter
from storage.db import make_engine, make_session_factory
from storage.models import MirrorCheckpoint, NsCustomer
from storage.repositories import mirror_write as mw

CUSTOMERS = 200
PAGE = 50
MIRROR_TABLES = ("ns_customers", "ns_customer_addresses", "ns_customer_contacts", "ns_terms", "ns_sales_reps")


@dataclass
class Env:
    ns: EmulatorServer
    engine: Engine
    sessions: sessionmaker[Session]
    client: NetSuiteClient

    @property
    def state(self) -> EmulatorState:
        return self.ns.state

    def ingest(self, **options: Any) -> MirrorIngest:
        values: dict[str, Any] = {"page_size": PAGE, "child_batch_size": 25}
        values.update(options)
        return MirrorIngest(self.sessions, self.client, IngestOptions(**values))


def tba_config(url: str, **overrides: Any) -> NetSuiteConfig:
    values: dict[str, Any] = {
        "account_id": "1234567_SB1",
        "base_url": url,
        "auth_mode": "tba",
        "tba_consumer_key": "ck",
        "tba_consumer_secret": "cs",
        "tba_token_id": "tk",
        "tba_token_secret": "ts",
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
    }
    values.update(overrides)
    return NetSuiteConfig(**values)


@pytest.fixture
def env(database_url: str) -> Iterator[Env]:
    engine = make_engine(database_url)
    with EmulatorServer(seed=31, customers=CUSTOMERS) as ns:
        client = NetSuiteClient(tba_config(ns.url, max_attempts=1), None, LocalLimiter(4))
        try:
            yield Env(ns, engine, make_session_factory(engine), client)
        finally:
            client.close()
            engine.dispose()


# ---- the oracle ---------------------------------------------------------------------------------


def expected_mirror(state: EmulatorState) -> dict[str, Any]:
    """What the mirror must hold for the emulator's account, built from its records."""
    currencies = {c.id: c.symbol for c in state.base.currencies}
    customers: dict[int, dict[str, Any]] = {}
    addresses: set[tuple[Any, ...]] = set()
    contacts: set[tuple[Any, ...]] = set()
    for _, load in state.scan_customers():
        c = load()
        billing, shipping = c.default_billing_line(), c.default_shipping_line()
        customers[c.id] = {
            "entity_id": c.entity_id,
            "external_id": c.external_id,
            "company_name": c.company_name,
            "name_normalized": normalize_name(c.company_name),
            "email": c.email,
            "email_domain": email_domain(c.email) if c.email else None,
            "phone": c.phone,
            "currency": currencies[c.currency_id],
            "terms_id": c.terms_id,
            "sales_rep_id": c.sales_rep_id,
            "credit_limit": c.credit_limit,
            "balance": c.balance,
            "unbilled_orders": c.unbilled_orders,
            "overdue_balance": c.overdue_balance,
            "days_overdue": c.days_overdue,
            "credit_hold": c.credit_hold,
            "is_inactive": c.is_inactive,
            "default_billing_address_id": billing.nkey if billing else None,
            "default_shipping_address_id": shipping.nkey if shipping else None,
            "last_modified": c.last_modified,
        }
        for line in c.address_book:
            a = line.address
            addresses.add(
                (c.id, line.nkey, line.label, line.default_billing, line.default_shipping, a.addressee,
                 a.attention, a.addr1, a.addr2, a.city, a.state, a.zip, a.country)
            )  # fmt: skip
        for person in state.contacts_of_customer(c.id):
            if not person.is_inactive:
                name = " ".join(p for p in (person.first_name, person.last_name) if p) or person.entity_id
                contacts.add((c.id, person.id, name, person.email, person.phone))
    terms = {(t.id, t.name, t.days_until_net_due, t.is_inactive) for t in state.base.terms}
    reps = {
        (e.id, f"{e.first_name} {e.last_name}", e.email, e.is_inactive)
        for e in state.base.employees
        if e.is_sales_rep
    }
    return {
        "customers": customers,
        "addresses": addresses,
        "contacts": contacts,
        "terms": terms,
        "reps": reps,
    }


def actual_mirror(engine: Engine) -> dict[str, Any]:
    fields = list(next(iter(expected_mirror(EmulatorState(1, 1))["customers"].values())))
    with engine.connect() as conn:
        customers = {
            row.internal_id: {name: getattr(row, name) for name in fields}
            for row in conn.execute(select(NsCustomer.__table__))
        }
        addresses = [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT customer_id, address_id, label, default_billing, default_shipping, addressee, "
                    "attention, line1, line2, city, region, postal_code, country FROM ns_customer_addresses"
                )
            )
        ]
        contacts = [
            tuple(row)
            for row in conn.execute(
                text("SELECT customer_id, contact_id, name, email, phone FROM ns_customer_contacts")
            )
        ]
        terms = {
            tuple(r)
            for r in conn.execute(text("SELECT internal_id, name, days_until_due, is_inactive FROM ns_terms"))
        }
        reps = {
            tuple(r)
            for r in conn.execute(text("SELECT internal_id, name, email, is_inactive FROM ns_sales_reps"))
        }
    # Booleans come back as 0/1 from SQLite through raw text() queries.
    addresses_set = {(*r[:3], bool(r[3]), bool(r[4]), *r[5:]) for r in addresses}
    assert len(addresses_set) == len(addresses), "duplicate address rows"
    assert len(set(contacts)) == len(contacts), "duplicate contact rows"
    return {
        "customers": customers,
        "addresses": addresses_set,
        "contacts": set(contacts),
        "terms": {(i, n, d, bool(x)) for i, n, d, x in terms},
        "reps": {(i, n, e, bool(x)) for i, n, e, x in reps},
    }


def assert_mirror_matches(env: Env) -> None:
    expected, actual = expected_mirror(env.state), actual_mirror(env.engine)
    assert actual["customers"].keys() == expected["customers"].keys()
    for customer_id, values in expected["customers"].items():
        assert actual["customers"][customer_id] == values, customer_id
    for part in ("addresses", "contacts", "terms", "reps"):
        assert actual[part] == expected[part], part


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every mirror row, every column (ids and mirrored_at included)."""
    with engine.connect() as conn:
        return {
            table: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {table}")))  # noqa: S608
            for table in MIRROR_TABLES
        }


def checkpoints(env: Env) -> dict[str, MirrorCheckpoint]:
    with env.sessions() as session:
        return {c.name: c for c in session.scalars(select(MirrorCheckpoint))}


# ---- ingest -------------------------------------------------------------------------------------


def test_full_ingest_matches_the_account_field_by_field(env: Env) -> None:
    report = env.ingest().run()
    assert (report.mode, report.resumed) == ("full", False)
    assert report.customers_read == report.customers_changed == CUSTOMERS
    assert report.pages == -(-CUSTOMERS // PAGE)
    expected = expected_mirror(env.state)
    assert report.addresses_written == len(expected["addresses"])
    assert report.contacts_written == len(expected["contacts"])
    assert_mirror_matches(env)
    # The seed has what the comparison needs to mean something.
    customers = expected["customers"].values()
    assert {c["credit_hold"] for c in customers} >= {"AUTO", "ON"}
    assert any(c["balance"] % 1 for c in customers), "amounts with cents"
    assert any(c["terms_id"] is None for c in customers) and any(c["is_inactive"] for c in customers)
    assert len({c["currency"] for c in customers}) > 1
    done = checkpoints(env)
    assert set(done) == {DONE_CHECKPOINT, "customer_deletions"}
    assert done[DONE_CHECKPOINT].run_started_at is None
    newest = max(expected["customers"].values(), key=lambda c: c["last_modified"])["last_modified"]
    assert done[DONE_CHECKPOINT].watermark == newest.strftime("%Y-%m-%d %H:%M:%S")


def test_an_edit_in_netsuite_shows_up_after_an_incremental_run(env: Env) -> None:
    env.ingest().run()
    before = snapshot(env.engine)
    env.state.edit_customer(
        1007, company_name="Renamed Holdings LLC", credit_limit=Decimal("1234.56"), credit_hold="ON"
    )
    report = env.ingest().run()
    assert (report.mode, report.customers_changed) == ("incremental", 1)
    assert_mirror_matches(env)
    after = snapshot(env.engine)
    for table in MIRROR_TABLES:
        assert len(after[table]) == len(before[table]), table
    with env.sessions() as session:
        row = session.get(NsCustomer, 1007)
        assert row is not None
        assert (row.company_name, row.name_normalized) == ("Renamed Holdings LLC", "renamed holdings")
        assert (row.credit_limit, row.credit_hold) == (Decimal("1234.56"), "ON")
    # Only the edited customer's rows changed.
    changed = [r for r in after["ns_customers"] if r not in before["ns_customers"]]
    assert [r[0] for r in changed] == [1007]


def test_a_deleted_customer_is_removed_with_its_addresses_and_contacts(env: Env) -> None:
    env.ingest().run()
    victim = next(c for c in expected_mirror(env.state)["contacts"])[0]
    env.state.delete_customer(victim)
    report = env.ingest().run()
    assert report.customers_deleted == 1
    assert_mirror_matches(env)
    with env.engine.connect() as conn:
        for table, column in (
            ("ns_customer_addresses", "customer_id"),
            ("ns_customer_contacts", "customer_id"),
        ):
            count = conn.execute(text(f"SELECT count(*) FROM {table} WHERE {column} = :v"), {"v": victim})  # noqa: S608
            assert count.scalar() == 0
    assert env.ingest().run().customers_deleted == 0, "a deletion is applied once"


def test_a_run_over_an_empty_delta_changes_nothing(env: Env) -> None:
    env.ingest().run()
    before = snapshot(env.engine)
    report = env.ingest().run()
    assert report.mode == "incremental"
    assert report.customers_read > 0, "the overlap window re-reads the newest customers"
    assert (report.customers_changed, report.addresses_written, report.contacts_written) == (0, 0, 0)
    assert snapshot(env.engine) == before


class Stop(Exception):
    pass


def test_an_ingest_stopped_by_its_progress_callback_resumes_from_the_checkpoint(env: Env) -> None:
    pages: list[int] = []

    def stop_after_two(event: IngestProgress) -> None:
        if event.stage == "customers":
            pages.append(event.done)
            if len(pages) == 2:
                raise Stop

    with pytest.raises(Stop):
        env.ingest().run(progress=stop_after_two)
    running = checkpoints(env)[FULL_RUN_CHECKPOINT]
    assert running.run_started_at is not None and running.last_key is not None
    with env.sessions() as session:
        assert session.scalar(select(func.count()).select_from(NsCustomer)) == 2 * PAGE
    # An edit meanwhile lands after the cursor and is picked up by the resumed run.
    env.state.edit_customer(1001, credit_limit=Decimal("999.99"))
    report = env.ingest().run()  # not asked for a full run: the interrupted one is resumed
    assert (report.mode, report.resumed) == ("full", True)
    assert report.customers_read == CUSTOMERS - 2 * PAGE + 1
    assert report.customers_pruned == 0
    assert FULL_RUN_CHECKPOINT not in checkpoints(env)
    assert_mirror_matches(env)


def test_an_ingest_killed_by_netsuite_failures_resumes_and_ends_the_same(env: Env) -> None:
    env.ingest().run()
    for customer_id in range(1000, 1100, 3):  # 34 edits: several pages of incremental work
        if env.state.get_customer(customer_id) is not None:
            env.state.edit_customer(customer_id, phone=f"555-{customer_id}")
    done_before = checkpoints(env)[DONE_CHECKPOINT].watermark

    def fail_from_now_on(event: IngestProgress) -> None:
        if event.stage == "customers" and event.done >= 20:
            env.ns.faults.fail(500, times=None, path="suiteql")

    options = {"page_size": 10}
    with pytest.raises(ServerError):
        env.ingest(**options).run(progress=fail_from_now_on)
    assert not reader_threads(), "requests in flight end with the run"
    running = checkpoints(env)
    assert running[RUN_CHECKPOINT].run_started_at is not None
    assert running[DONE_CHECKPOINT].watermark == done_before, "the finished watermark waits for the run"
    env.ns.faults.clear()
    report = env.ingest(**options).run()
    assert (report.mode, report.resumed) == ("incremental", True)
    assert RUN_CHECKPOINT not in checkpoints(env)
    assert_mirror_matches(env)


def test_full_rerun_rewrites_everything_and_prunes_what_netsuite_lost(env: Env) -> None:
    env.ingest().run()
    # A customer NetSuite no longer has and whose deletion the mirror never heard of.
    with mw_session(env) as session:
        mw.upsert_customers(
            session,
            [{"internal_id": 999_999, "company_name": "Ghost LLC", "is_inactive": False}],
            mirrored_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
    report = env.ingest().run(full=True)
    assert (report.mode, report.customers_read, report.customers_pruned) == ("full", CUSTOMERS, 1)
    assert_mirror_matches(env)


def test_the_suiteql_time_zone_setting_is_applied(database_url: str) -> None:
    engine = make_engine(database_url)
    with EmulatorServer(seed=31, customers=20, timezone="America/Los_Angeles") as ns:
        client = NetSuiteClient(tba_config(ns.url), None, LocalLimiter(2))
        zone = ZoneInfo("America/Los_Angeles")
        ingest = MirrorIngest(make_session_factory(engine), client, IngestOptions(timezone=zone))
        try:
            ingest.run()
            ns.state.edit_customer(1003, phone="555-0000")
            assert ingest.run().customers_changed == 1
            with engine.connect() as conn:
                stored = conn.execute(select(NsCustomer.last_modified).where(NsCustomer.internal_id == 1003))
                value = stored.scalar_one()
            edited = ns.state.get_customer(1003)
            assert edited is not None and value == edited.last_modified
        finally:
            client.close()
            engine.dispose()


def fts_rows_matching(env: Env, word: str) -> list[Any]:
    """Rows of SQLite's trigram search index matching ``word``, after FTS5's integrity check (which raises
    if the index and the table disagree)."""
    with env.engine.connect() as conn:
        conn.execute(text("INSERT INTO ns_customers_fts(ns_customers_fts) VALUES ('integrity-check')"))
        return list(
            conn.execute(
                text("SELECT rowid FROM ns_customers_fts WHERE ns_customers_fts MATCH :q"), {"q": f'"{word}"'}
            ).all()
        )


def test_upserts_keep_the_sqlite_search_index_consistent(env: Env) -> None:
    if env.engine.dialect.name != "sqlite":
        pytest.skip("the FTS5 index is SQLite's")
    env.ingest().run()
    env.state.edit_customer(1010, company_name="Quetzalcoatl Trading LLC")
    env.ingest().run()
    found = fts_rows_matching(env, "quetzalcoatl")  # after FTS5's own integrity check
    assert found == [(1010,)]


def test_repeated_rows_in_one_batch_are_refused() -> None:
    rows = [{"internal_id": 1, "company_name": "A"}, {"internal_id": 1, "company_name": "B"}]
    engine = make_engine("sqlite://")
    try:
        with make_session_factory(engine)() as session, pytest.raises(ValueError, match="duplicate keys"):
            mw.upsert_customers(session, rows, mirrored_at=datetime.now(UTC))
    finally:
        engine.dispose()


def mw_session(env: Env) -> Any:
    from storage.db import transaction

    return transaction(env.sessions)


def test_report_summary_reads_well() -> None:
    report = IngestReport(mode="incremental", resumed=True, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    report.customers_read, report.customers_changed, report.watermark = 5, 2, "2026-01-01 00:00:00"
    assert report.summary().startswith("incremental run (resumed): 5 customers read, 2 new or changed")


# ---- mapping ------------------------------------------------------------------------------------


def test_credit_hold_values() -> None:
    assert [mapping.credit_hold(v) for v in ("AUTO", "on", "Off", None, "")] == [
        "AUTO",
        "ON",
        "OFF",
        None,
        None,
    ]
    with pytest.raises(mapping.MappingError, match="oncredithold"):
        mapping.credit_hold("T")


def test_value_readers_refuse_what_they_cannot_read() -> None:
    assert mapping.money("12.5") == Decimal("12.50")
    assert mapping.integer("42") == 42 and mapping.integer("42.0") == 42
    assert mapping.flag("T") is True and mapping.flag(None) is False
    for reader, value in (
        (mapping.money, "1.234"),
        (mapping.money, "abc"),
        (mapping.decimal, "NaN"),
        (mapping.integer, "4.5"),
        (mapping.flag, "maybe"),
        (mapping.timestamp, "3/4/2025"),
    ):
        with pytest.raises(mapping.MappingError):
            reader(value)


def test_timestamps_are_read_in_the_suiteql_zone_and_stored_in_utc() -> None:
    zone = ZoneInfo("America/Los_Angeles")
    assert mapping.timestamp("2025-07-01 10:00:00", zone) == datetime(2025, 7, 1, 17, tzinfo=UTC)
    cursor = mapping.Cursor("2025-07-01 10:00:00", 77)
    assert cursor.moved_back(timedelta(minutes=90), zone) == mapping.Cursor("2025-07-01 08:30:00", 0)
    assert cursor.params() == ["2025-07-01 10:00:00", "2025-07-01 10:00:00", 77]


def test_customer_row_mapping() -> None:
    row = {
        "id": "1042", "entityid": "C1042", "companyname": " Acme LLC ", "isinactive": "F",
        "currency": "2", "currencyname": "British pound", "creditlimit": "5000", "oncredithold": "AUTO",
        "balancesearch": "10.5", "daysoverduesearch": "3", "defaultbillingaddress": "5000010420",
        "lastmodified": "2025-01-02 03:04:05",
    }  # fmt: skip
    values = mapping.customer(row, {2: "GBP"})
    assert values["internal_id"] == 1042 and values["company_name"] == "Acme LLC"
    assert values["currency"] == "GBP" and values["credit_limit"] == Decimal("5000.00")
    assert values["balance"] == Decimal("10.50") and values["days_overdue"] == 3
    assert values["email"] is None and values["terms_id"] is None, "absent columns are null"
    assert values["last_modified"] == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert mapping.customer(row, {})["currency"] is None, "no ISO code for an unknown currency"
    assert mapping.contact({"id": "5", "company": "1042", "isinactive": "T"}) is None


# ---- the worker job -----------------------------------------------------------------------------


def test_the_scheduled_job_fills_the_mirror_once_per_slot_and_never_runs_twice_at_once(
    database_url: str, container_factory: Any
) -> None:
    from rq import Queue, SimpleWorker

    from bot import jobs
    from bot.mirror.jobs import LOCK_KEY, QUEUE, enqueue_due_refresh, mirror_refresh

    with EmulatorServer(seed=31, customers=60) as ns:
        container = container_factory(
            database_url=database_url,
            netsuite_account_id="1234567_SB1",
            netsuite_base_url=ns.url,
            netsuite_auth_mode="tba",
            netsuite_tba_consumer_key="ck",
            netsuite_tba_consumer_secret="cs",
            netsuite_tba_token_id="tk",
            netsuite_tba_token_secret="ts",
        )
        jobs.bind_container(container, thread_only=True)
        try:
            tick = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
            assert enqueue_due_refresh(container.redis, 15, tick)
            assert not enqueue_due_refresh(container.redis, 15, tick + timedelta(minutes=14))
            assert enqueue_due_refresh(container.redis, 15, tick + timedelta(minutes=15))
            assert not enqueue_due_refresh(container.redis, 0, tick), "interval 0: never scheduled"
            queue = Queue(QUEUE, connection=container.redis)
            queued = queue.get_jobs()
            SimpleWorker([queue], connection=container.redis).work(burst=True)
            results = [job.latest_result() for job in queued]
            modes = [r.return_value.get("mode") for r in results if r is not None and r.return_value]
            assert modes == ["full", "incremental"]
            with container.engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM ns_customers")).scalar() == 60
            held = container.redis.lock(LOCK_KEY, timeout=60)
            assert held.acquire(blocking=False)
            try:
                assert mirror_refresh() == {"skipped": "another ingest is running"}
            finally:
                held.release()
            assert mirror_refresh().get("mode") == "incremental"
        finally:
            jobs._local.__dict__.pop("container", None)  # unbind: later tests must not see it


def test_a_full_run_asked_for_replaces_an_interrupted_incremental_one(env: Env) -> None:
    env.ingest().run()
    for customer_id in range(1000, 1030):
        if env.state.get_customer(customer_id) is not None:
            env.state.edit_customer(customer_id, phone="555-0101")

    def stop(event: IngestProgress) -> None:
        if event.stage == "customers":
            raise Stop

    with pytest.raises(Stop):
        env.ingest(page_size=10).run(progress=stop)
    assert RUN_CHECKPOINT in checkpoints(env)
    report = env.ingest().run(full=True)
    assert (report.mode, report.resumed, report.customers_read) == ("full", False, CUSTOMERS)
    assert set(checkpoints(env)) == {DONE_CHECKPOINT, "customer_deletions"}
    assert_mirror_matches(env)


# ---- reading ahead ------------------------------------------------------------------------------


def wipe_mirror(env: Env) -> None:
    with env.engine.begin() as conn:
        for table in ("ns_customer_addresses", "ns_customer_contacts", "ns_customers", "mirror_checkpoints"):
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608


def reader_threads() -> list[threading.Thread]:
    """The run's reader and request threads still alive (none may outlive a run)."""
    return [
        t
        for t in threading.enumerate()
        if (t.name == "mirror-ingest-reader" or t.name.startswith(REQUEST_THREAD)) and t.is_alive()
    ]


def test_reading_ahead_gives_the_same_mirror_and_report_as_reading_in_turn(env: Env) -> None:
    in_turn = env.ingest(read_ahead=False).run()
    expected = actual_mirror(env.engine)
    wipe_mirror(env)
    ahead = env.ingest().run()
    assert actual_mirror(env.engine) == expected
    assert_mirror_matches(env)
    for name in ("customers_read", "customers_changed", "addresses_written", "contacts_written", "pages"):
        assert getattr(ahead, name) == getattr(in_turn, name), name
    assert ahead.watermark == in_turn.watermark
    assert ahead.write_seconds > 0 and ahead.read_wait_seconds > 0
    assert not reader_threads()


def test_an_interrupted_read_ahead_run_stops_its_reader_and_resumes_to_the_same_mirror(env: Env) -> None:
    env.ingest(read_ahead=False).run()
    uninterrupted = actual_mirror(env.engine)
    wipe_mirror(env)

    def stop_after_two_pages(event: IngestProgress) -> None:
        if event.stage == "customers" and event.done >= 2 * PAGE:
            raise Stop

    with pytest.raises(Stop):
        env.ingest().run(progress=stop_after_two_pages)
    assert not reader_threads(), "the page read ahead must not outlive the run"
    with env.sessions() as session:  # the page read ahead was never written
        assert session.scalar(select(func.count()).select_from(NsCustomer)) == 2 * PAGE
    report = env.ingest().run()
    assert (report.mode, report.resumed, report.customers_read) == ("full", True, CUSTOMERS - 2 * PAGE)
    assert actual_mirror(env.engine) == uninterrupted


def test_an_incremental_read_ahead_run_fetches_children_only_for_what_changed(env: Env) -> None:
    env.ingest().run()
    edited = [cid for cid in range(1000, 1120, 7) if env.state.get_customer(cid) is not None]
    for customer_id in edited:
        env.state.edit_customer(customer_id, phone=f"555-{customer_id}")
    report = env.ingest(page_size=5).run()  # several pages: the reader runs ahead of the writes
    assert report.mode == "incremental"
    assert report.customers_changed == len(edited)
    assert_mirror_matches(env)


def test_read_ahead_yields_every_item_in_order_then_the_sources_error() -> None:
    def source() -> Iterator[int]:
        yield from range(5)
        raise ValueError("page 6 failed")

    got: list[int] = []
    with ReadAhead(source()) as reader, pytest.raises(ValueError, match="page 6 failed"):
        for item in reader:
            got.append(item)
    assert got == [0, 1, 2, 3, 4]
    with ReadAhead(iter(range(50))) as reader:
        assert list(reader) == list(range(50))
        assert list(reader) == []


def test_read_ahead_stays_one_item_ahead_and_close_stops_the_source() -> None:
    started: list[int] = []
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            for n in range(1000):
                started.append(n)
                yield n
        finally:
            closed.set()

    reader = ReadAhead(source(), name="read-ahead-test")
    for taken in range(10):
        assert next(reader) == taken
        time.sleep(0.01)  # room for an unbounded reader to run away
        assert len(started) <= taken + 2, "more than one item read ahead"
    reader.close()
    assert closed.is_set(), "the source was not closed"
    assert not [t for t in threading.enumerate() if t.name == "read-ahead-test"]
    assert len(started) <= 12
    with pytest.raises(StopIteration):
        next(reader)


def test_many_requests_in_flight_give_the_same_mirror_as_one_at_a_time(env: Env) -> None:
    in_turn = env.ingest(read_ahead=False).run()
    expected = actual_mirror(env.engine)
    for in_flight in (2, 6):
        wipe_mirror(env)
        # small pages and id lists: several address and contact queries per page, all at once
        report = env.ingest(page_size=30, child_batch_size=7, requests_in_flight=in_flight).run()
        assert actual_mirror(env.engine) == expected
        assert (report.customers_read, report.addresses_written, report.contacts_written) == (
            in_turn.customers_read,
            in_turn.addresses_written,
            in_turn.contacts_written,
        )
        assert not reader_threads()
    assert_mirror_matches(env)


def test_requests_in_flight_is_bounded() -> None:
    for bad in (0, 9):
        with pytest.raises(ValueError, match="requests_in_flight"):
            IngestOptions(requests_in_flight=bad)


# ---- the batch writes ---------------------------------------------------------------------------

TRICKY_TEXT = [
    "Müller & Söhne GmbH",
    "Tab\\there",
    "line\nbreak",
    "back\\\\slash",
    "quote 'n' \"dq\"",
    "",
    None,
]


def sample_rows(
    first_id: int, count: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Customers with their addresses and contacts: every column type, NULLs, text COPY must escape."""
    zone = ZoneInfo("America/New_York")
    customers, addresses, contacts = [], [], []
    for n in range(count):
        cid = first_id + n
        name = TRICKY_TEXT[n % len(TRICKY_TEXT)]
        customers.append({
            "internal_id": cid, "entity_id": f"C{n}", "external_id": None if n % 3 else f"X-{n}",
            "company_name": name, "name_normalized": normalize_name(name) or None if name else None,
            "email": None if n % 4 == 1 else f"ap{n}@example.com", "email_domain": "example.com",
            "phone": "555-0100", "currency": ("USD", "CAD", None)[n % 3], "terms_id": n % 5 or None,
            "sales_rep_id": 101 + n % 3, "credit_limit": None if n % 5 == 0 else Decimal(n * 1000) / 4,
            "balance": Decimal("-12.30") if n % 2 else Decimal("0.00"), "unbilled_orders": Decimal("1.05"),
            "overdue_balance": Decimal(n), "days_overdue": None if n % 6 == 0 else n,
            "credit_hold": ("AUTO", "ON", "OFF")[n % 3], "is_inactive": n % 7 == 0,
            "default_billing_address_id": 5_000_000_000 + n if n % 2 else None,
            "default_shipping_address_id": None,
            "last_modified": None if n % 8 == 0 else datetime(2025, 3, 9, 1, n % 60, 7, n, tzinfo=zone),
        })  # fmt: skip
        for k in range(n % 3):
            addresses.append({
                "customer_id": cid, "address_id": 5_000_000_000 + n * 10 + k, "label": name,
                "default_billing": k == 0, "default_shipping": k == 1, "addressee": name,
                "attention": None, "line1": f"{n} Main St", "line2": TRICKY_TEXT[(n + k) % len(TRICKY_TEXT)],
                "city": "Austin", "region": "TX", "postal_code": "78701", "country": "US",
            })  # fmt: skip
        if n % 2:
            contacts.append({"customer_id": cid, "contact_id": 20_000_000 + n, "name": name,
                             "email": None, "phone": "555-0101", "role": None})  # fmt: skip
    return customers, addresses, contacts


def stored(engine: Engine, table: str, key: str, offset: int) -> list[tuple[Any, ...]]:
    """Every stored column as the database keeps it (no ORM processing), keyed relative to
    ``offset`` so that two copies of the same rows compare equal; surrogate ids left out."""
    with engine.connect() as conn:
        result = conn.execute(text(f"SELECT * FROM {table} WHERE {key} >= :lo AND {key} < :hi"),  # noqa: S608
                              {"lo": offset, "hi": offset + 1000})  # fmt: skip
        names = list(result.keys())
        out = []
        for row in result:
            values = dict(zip(names, row, strict=True))
            values.pop("id", None)
            values[key] -= offset
            out.append(tuple(sorted(values.items())))
    return sorted(out, key=repr)


@pytest.fixture(params=["one statement", "small statements"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """SQLite: multi-row INSERTs of the default size, or of 3 rows each; PostgreSQL: COPY, or
    executemany (batches below ``COPY_MIN_ROWS``)."""
    if request.param == "small statements":
        monkeypatch.setattr(mw, "SQLITE_ROWS_PER_STATEMENT", 3)
        monkeypatch.setattr(mw, "COPY_MIN_ROWS", 10**6)
    return str(request.param)


def test_batch_writes_store_exactly_what_core_inserts_store(database_url: str, write_path: str) -> None:
    from sqlalchemy import insert

    from storage.db import transaction

    engine = make_engine(database_url)
    stamp = datetime(2026, 2, 3, 4, 5, 6, 789, tzinfo=UTC)
    try:
        core = sample_rows(100_000, 40)
        fast = sample_rows(200_000, 40)
        with engine.begin() as conn:  # the reference: Core's executemany INSERTs
            conn.execute(insert(mw.CUSTOMERS), [{**row, "mirrored_at": stamp} for row in core[0]])
            conn.execute(insert(mw.ADDRESSES), core[1])
            conn.execute(insert(mw.CONTACTS), core[2])
        with transaction(make_session_factory(engine)) as session:
            mw.upsert_customers(session, fast[0], mirrored_at=stamp, only_if_changed=False)
            ids = [row["internal_id"] for row in fast[0]]
            assert mw.replace_addresses(session, ids, fast[1]) == len(fast[1])
            assert mw.replace_contacts(session, ids, fast[2]) == len(fast[2])
        assert stored(engine, "ns_customers", "internal_id", 200_000) == stored(
            engine, "ns_customers", "internal_id", 100_000
        )
        for table in ("ns_customer_addresses", "ns_customer_contacts"):
            assert stored(engine, table, "customer_id", 200_000) == stored(
                engine, table, "customer_id", 100_000
            )
        with make_session_factory(engine)() as session:  # and the ORM reads them back as written
            got = session.get(NsCustomer, 200_003)
            assert got is not None
            assert (got.company_name, got.credit_limit, got.last_modified) == (
                fast[0][3]["company_name"], fast[0][3]["credit_limit"], fast[0][3]["last_modified"],
            )  # fmt: skip
    finally:
        engine.dispose()


def test_batch_upserts_update_only_the_rows_that_changed(database_url: str, write_path: str) -> None:
    from storage.db import transaction

    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    first, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    try:
        rows, _, _ = sample_rows(300_000, 40)
        with transaction(sessions) as session:
            mw.upsert_customers(session, rows, mirrored_at=first)
        changed = [dict(row) for row in rows]
        changed[5]["balance"] = Decimal("99.99")
        changed[17]["company_name"] = None
        with transaction(sessions) as session:
            assert mw.upsert_customers(session, changed, mirrored_at=later) == 40
        with sessions() as session:
            touched = session.scalars(select(NsCustomer.internal_id).where(NsCustomer.mirrored_at == later))
            assert sorted(touched) == [300_005, 300_017]
            assert session.get(NsCustomer, 300_005).balance == Decimal("99.99")  # type: ignore[union-attr]
        with transaction(sessions) as session:  # a full run rewrites every row it sends
            mw.upsert_customers(session, changed, mirrored_at=later, only_if_changed=False)
        with sessions() as session:
            assert (
                session.scalar(
                    select(func.count()).select_from(NsCustomer).where(NsCustomer.mirrored_at == later)
                )
                == 40
            )
    finally:
        engine.dispose()


def test_replacing_children_of_more_customers_than_one_statement_takes(database_url: str) -> None:
    from storage.db import transaction

    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    count = mw.ID_CHUNK * 2 + 7
    try:
        customers, _, _ = sample_rows(400_000, count)
        ids = [row["internal_id"] for row in customers]

        def addresses(label: str) -> list[dict[str, Any]]:
            return [
                {"customer_id": cid, "address_id": cid * 10, "label": label, "default_billing": True,
                 "default_shipping": False, "addressee": None, "attention": None, "line1": None,
                 "line2": None, "city": None, "region": None, "postal_code": None, "country": None}
                for cid in ids
            ]  # fmt: skip

        with transaction(sessions) as session:
            mw.upsert_customers(session, customers, mirrored_at=datetime.now(UTC))
            mw.replace_addresses(session, ids, addresses("old"))
        with transaction(sessions) as session:
            mw.replace_addresses(session, ids, addresses("new"))
        with engine.connect() as conn:
            labels = conn.execute(
                text("SELECT label, count(*) FROM ns_customer_addresses GROUP BY label")
            ).all()
        assert labels == [("new", count)]
    finally:
        engine.dispose()


def test_the_postgresql_staging_table_keeps_nothing_between_transactions(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("COPY and its staging table are PostgreSQL's")
    monkeypatch.setattr(mw, "COPY_MIN_ROWS", 1)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:  # one connection throughout: the staging table is per session
            sessions = sessionmaker(bind=conn)
            batches = [sample_rows(500_000 + 1000 * n, 5)[0] for n in range(3)]

            class Boom(Exception):
                pass

            with pytest.raises(Boom), sessions() as session, session.begin():
                mw.upsert_customers(session, batches[0], mirrored_at=datetime.now(UTC))
                raise Boom  # rolled back: the table made in this transaction goes too
            for batch in batches[1:]:
                with sessions() as session, session.begin():
                    mw.upsert_customers(session, batch, mirrored_at=datetime.now(UTC))
            staged: list[str] = list(
                conn.execute(
                    text("SELECT relname FROM pg_class WHERE relname LIKE :name AND relpersistence = 't'"),
                    {"name": "_mirror_in_%"},
                ).scalars()
            )
            assert len(staged) == 1
            assert conn.execute(text(f'SELECT count(*) FROM "{staged[0]}"')).scalar() == 0  # noqa: S608
            mirrored = conn.execute(select(NsCustomer.internal_id)).scalars().all()
            conn.rollback()
        assert sorted(mirrored) == sorted(row["internal_id"] for batch in batches[1:] for row in batch)
    finally:
        engine.dispose()


def test_the_sqlite_search_index_stays_consistent_with_small_statements(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env.engine.dialect.name != "sqlite":
        pytest.skip("the FTS5 index is SQLite's")
    monkeypatch.setattr(mw, "SQLITE_ROWS_PER_STATEMENT", 7)
    env.ingest().run()
    env.state.edit_customer(1011, company_name="Quetzalcoatl Trading LLC")
    env.ingest().run(full=True)
    found = fts_rows_matching(env, "quetzalcoatl")  # after FTS5's own integrity check
    assert found == [(1011,)]
    assert_mirror_matches(env)


# ---- reading SuiteQL answers ----------------------------------------------------------------------


def test_suiteql_rows_lose_their_links_and_get_lower_case_keys() -> None:
    from netsuite.errors import ProtocolError
    from netsuite.suiteql import parse_page

    data: dict[str, Any] = {
        "items": [
            {"links": [], "id": "1", "companyname": "A"},
            {"links": [], "ID": "2", "CompanyName": "B", "Links": []},
            {"links": [], "id": "3", "companyname": "C", "extra": None},
            {"id": "4"},
        ],
        "hasMore": False,
    }
    page = parse_page(data, 0)
    assert page.items == [
        {"id": "1", "companyname": "A"},
        {"id": "2", "companyname": "B"},
        {"id": "3", "companyname": "C", "extra": None},
        {"id": "4"},
    ]
    assert data["items"][0] == {"links": [], "id": "1", "companyname": "A"}, "the answer is not changed"
    with pytest.raises(ProtocolError, match="not an object"):
        parse_page({"items": [{"id": "1"}, ["2"]]}, 0)


def test_datetimes_in_other_spellings_are_read_or_refused_as_before() -> None:
    from netsuite.errors import ProtocolError
    from netsuite.suiteql import parse_datetime

    assert parse_datetime("2025-01-02 03:04:05") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_datetime(" 2025-1-2 3:4:5 ") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    for bad in ("2025-02-30 00:00:00", "2025-01-02T03:04:05", "2025-01-02 24:00:00", "2025-01-02"):
        with pytest.raises(ProtocolError):
            parse_datetime(bad)


def test_columns_the_rows_leave_out_get_their_defaults_on_insert_only(
    database_url: str, write_path: str
) -> None:
    from storage.db import transaction

    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    try:
        full, _, _ = sample_rows(600_000, 40)
        partial = [{k: v for k, v in row.items() if k != "is_inactive"} for row in full]
        with transaction(sessions) as session:  # rows 0-19 flagged inactive first
            mw.upsert_customers(session, [{**row, "is_inactive": True} for row in full[:20]],
                                mirrored_at=datetime.now(UTC))  # fmt: skip
        with transaction(sessions) as session:
            mw.upsert_customers(session, partial, mirrored_at=datetime.now(UTC), only_if_changed=False)
        with sessions() as session:
            found = session.execute(select(NsCustomer.internal_id, NsCustomer.is_inactive))
            flags = {customer_id: inactive for customer_id, inactive in found}
        assert [flags[600_000 + n] for n in range(40)] == [True] * 20 + [False] * 20
    finally:
        engine.dispose()
