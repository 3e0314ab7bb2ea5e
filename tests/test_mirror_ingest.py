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
from bot.mirror.ingest import DONE_CHECKPOINT, FULL_RUN_CHECKPOINT, RUN_CHECKPOINT, ReadAhead
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


def test_upserts_keep_the_sqlite_search_index_consistent(env: Env) -> None:
    if env.engine.dialect.name != "sqlite":
        pytest.skip("the FTS5 index is SQLite's")
    env.ingest().run()
    env.state.edit_customer(1010, company_name="Quetzalcoatl Trading LLC")
    env.ingest().run()
    with env.engine.connect() as conn:
        conn.execute(text("INSERT INTO ns_customers_fts(ns_customers_fts) VALUES ('integrity-check')"))
        found = conn.execute(
            text("SELECT rowid FROM ns_customers_fts WHERE ns_customers_fts MATCH :q"),
            {"q": '"quetzalcoatl"'},
        ).all()
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
    return [t for t in threading.enumerate() if t.name == "mirror-ingest-reader" and t.is_alive()]


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
