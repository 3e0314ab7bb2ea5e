"""The NetSuite sync engine against the emulator over loopback HTTP, on SQLite and PostgreSQL.

Link, compare, request and run: exactly the ticked fields are written; a new customer is
upserted by external id and never doubled; the address book keeps lines we do not own; a value
changed in NetSuite after the analyst looked is not overwritten; errors retry or fail as
NetSuite's typed errors say; the reconcile pass finds jobs lost with Redis.
"""

from __future__ import annotations

import json
import time as wall
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from rq import Queue
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot import jobs as bot_jobs
from bot.applications.schemas import ApplicationIn
from bot.applications.service import ApplicationService, to_out
from bot.decisions.policy import Actor, ApprovalPolicy, Role
from bot.decisions.service import DecisionService
from bot.federal_id import FederalIdCipher
from bot.mirror.ingest import IngestParts, run_ingest
from bot.sync import SyncOptions
from bot.sync import jobs as sync_jobs
from bot.sync.compare import NO_CUSTOMER, compare, fingerprint, our_side, side_from_mirror, side_from_record
from bot.sync.executor import RecordingObserver, SyncExecutor, _redact
from bot.sync.fields import SyncField, parse_fields
from bot.sync.schedule import SyncSchedule
from bot.sync.service import InvalidSyncRequest, NotAllowed, SyncService
from bot.worker import ThreadWorker
from netsuite.client import NetSuiteClient
from netsuite.config import NetSuiteConfig
from netsuite.emulator import EmulatorServer
from netsuite.limiter import LocalLimiter
from netsuite.writes import (
    CustomerRecord,
    TermNotFound,
    WriteOptions,
    external_id_for,
    resolve_term,
    tax_number_body,
)
from storage.db import make_engine, make_session_factory, transaction
from storage.models import AuditEvent, CreditApplication, NsCustomer, SyncRequest, SyncStatus
from tests.conftest import TEST_FEDERAL_ID_KEY, valid_application

ACCOUNT = "1234567_SB1"
EIN = "12-3456789"
ANALYST = Actor("U0ANALYST", frozenset({Role.ANALYST}))
OUTSIDER = Actor("U0NOBODY")
ALL = list(SyncField)


def uid(prefix: str) -> str:
    """A reference no other test (or backend run against the same emulator) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def ns() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed=23, customers=40) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_faults(ns: EmulatorServer) -> Iterator[None]:
    ns.faults.clear()
    yield
    ns.faults.clear()


def client_config(url: str, **overrides: Any) -> NetSuiteConfig:
    values: dict[str, Any] = {
        "account_id": ACCOUNT,
        "base_url": url,
        "auth_mode": "tba",
        "tba_consumer_key": "ck",
        "tba_consumer_secret": "cs",
        "tba_token_id": "tk",
        "tba_token_secret": "ts",
        "max_attempts": 1,  # surface every failure to the sync engine, which owns retries here
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.02,
    }
    values.update(overrides)
    return NetSuiteConfig(**values)


@dataclass
class Engine:
    sessions: sessionmaker[Session]
    client: NetSuiteClient
    applications: ApplicationService
    decisions: DecisionService
    service: SyncService
    executor: SyncExecutor
    observer: RecordingObserver
    clock: Clock
    cipher: FederalIdCipher
    ns: EmulatorServer

    def approved(self, reference: str, terms: str = "Net 45", limit: str = "40000", **body: Any) -> int:
        data = ApplicationIn.model_validate(valid_application(reference, **body))
        app = self.applications.submit(data, source="api", actor="test").application
        self.decisions.approve(app.id, ANALYST, terms=terms, credit_limit=limit)
        return app.id

    def request(self, app_id: int, fields: list[SyncField], *, now: bool = True) -> int:
        seen = self.service.comparison(app_id).seen_values(fields)
        return self.service.request(app_id, ANALYST, fields, seen, now=now).id

    def row(self, sync_id: int) -> SyncRequest:
        with transaction(self.sessions, readonly=True) as session:
            found = session.get(SyncRequest, sync_id)
            assert found is not None
            return found

    def audits(self) -> list[AuditEvent]:
        with transaction(self.sessions, readonly=True) as session:
            return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


OPTIONS = SyncOptions(
    retry_base_seconds=30,
    retry_max_seconds=600,
    writes=WriteOptions(contact_role_id="2", subsidiary_id="1", account_id=ACCOUNT),
)


@pytest.fixture
def engine(database_url: str, ns: EmulatorServer) -> Iterator[Engine]:
    db = make_engine(database_url)
    sessions = make_session_factory(db)
    cipher = FederalIdCipher([TEST_FEDERAL_ID_KEY])
    clock = Clock(datetime.now(UTC))
    observer = RecordingObserver()
    with NetSuiteClient(client_config(ns.url), None, LocalLimiter(4)) as client:
        run_ingest(IngestParts(sessions, client), full=True)  # the mirror, terms included
        applications = ApplicationService(sessions, cipher)
        yield Engine(
            sessions=sessions,
            client=client,
            applications=applications,
            decisions=DecisionService(sessions, ApprovalPolicy(Decimal("1000000")), default_terms=[]),
            service=SyncService(sessions, OPTIONS, clock=clock),
            executor=SyncExecutor(
                sessions,
                client,
                reveal_federal_id=applications.reveal_federal_id,
                digest=cipher.digest,
                options=OPTIONS,
                observer=observer,
                clock=clock,
            ),
            observer=observer,
            clock=clock,
            cipher=cipher,
            ns=ns,
        )
    db.dispose()


_used: set[int] = set()


def pick_customer(e: Engine, *, lines: int = 2, billing_only_line: bool = False) -> int:
    """A mirrored customer no other test wrote to, with at least ``lines`` address lines."""
    with transaction(e.sessions, readonly=True) as session:
        for customer in session.scalars(select(NsCustomer).order_by(NsCustomer.internal_id)):
            if customer.internal_id in _used or customer.is_inactive or len(customer.addresses) < lines:
                continue
            billing = next((a for a in customer.addresses if a.default_billing), None)
            if billing_only_line and (billing is None or billing.default_shipping):
                continue
            _used.add(customer.internal_id)
            return customer.internal_id
    raise AssertionError("the seed has no suitable customer left")


def emulated(e: Engine, customer_id: int) -> Any:
    found = e.ns.state.get_customer(customer_id)
    assert found is not None
    return found


def customers_by_external_id(ns: EmulatorServer, external_id: str) -> list[int]:
    return [key[1] for key, load in ns.state.scan_customers() if load().external_id == external_id]


# ---- compare: pure ------------------------------------------------------------------------------


def _app_out(**body: Any) -> Any:
    data = ApplicationIn.model_validate(valid_application("cmp-1", **body))
    row = CreditApplication(
        id=1,
        reference=data.reference,
        status="approved",
        source="api",
        business_legal_name=data.business_name,
        business_dba=data.dba,
        federal_id_last4="6789",
        billing_line1=data.billing_address.line1,
        billing_line2=data.billing_address.line2,
        billing_city=data.billing_address.city,
        billing_region=data.billing_address.state,
        billing_postal_code=data.billing_address.postal_code,
        billing_country=data.billing_address.country,
        contact_name=data.statements_contact.name,
        contact_email=str(data.statements_contact.email),
        contact_phone=data.statements_contact.phone,
        currency="USD",
        requested_terms="Net 30",
        requested_credit_limit=Decimal("50000.00"),
        approved_terms="Net 30",
        approved_credit_limit=Decimal("40000.00"),
        applicant_name="Jo",
        created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
        shipping_locations=[],
    )
    return to_out(row)


def test_new_customer_rows_are_all_ticked_and_ein_masked() -> None:
    cipher = FederalIdCipher([TEST_FEDERAL_ID_KEY])
    ours = our_side(_app_out(shipping_locations=[]), federal_id_digest=cipher.digest(EIN))
    rows = compare(ours, NO_CUSTOMER)
    by_field = {r.field: r for r in rows}
    assert [r.field for r in rows] == ALL
    assert by_field[SyncField.COMPANY_NAME].ours == "Acme Industrial Supply LLC dba Acme Supply"
    assert by_field[SyncField.FEDERAL_ID].ours == "**-***6789"
    assert not by_field[SyncField.SHIPPING_LOCATIONS].has_value  # none given: cannot be ticked
    assert not by_field[SyncField.SHIPPING_LOCATIONS].default_ticked
    assert all(r.default_ticked for r in rows if r.field is not SyncField.SHIPPING_LOCATIONS)
    assert all(r.netsuite == "(new customer)" for r in rows)
    assert "3456789" not in json.dumps([r.__dict__ for r in rows], default=str)


def test_rows_equal_to_netsuite_are_not_ticked_and_fingerprints_agree() -> None:
    cipher = FederalIdCipher([TEST_FEDERAL_ID_KEY])
    app = _app_out()
    ours = our_side(app, federal_id_digest=cipher.digest(EIN), style="legal")
    record = CustomerRecord(
        internal_id="5",
        external_id=None,
        entity_id="C5",
        company_name="Acme Industrial Supply LLC",
        email=None,
        terms_id="2",
        terms_name="Net 30",
        credit_limit=Decimal("40000.00"),
        addresses=(),
        raw_address_lines=(),
        tax_number="12 3456789",  # NetSuite's formatting differs; the digits are the same
    )
    live = side_from_record(record, [], cipher.digest)
    rows = {r.field: r for r in compare(ours, live)}
    assert not rows[SyncField.COMPANY_NAME].differs
    assert not rows[SyncField.CREDIT_TERMS].differs
    assert not rows[SyncField.FEDERAL_ID].differs
    assert rows[SyncField.FEDERAL_ID].netsuite == "**-***6789"
    assert rows[SyncField.BILLING_ADDRESS].differs and rows[SyncField.BILLING_ADDRESS].default_ticked
    # The same values read from the mirror give the same fingerprints as the live record.
    mirror = NsCustomer(
        internal_id=5,
        company_name="Acme Industrial Supply LLC",
        terms_id=2,
        credit_limit=Decimal("40000.00"),
        tax_number_digest=cipher.digest(EIN),
        mirrored_at=datetime.now(UTC),
    )
    mirror.addresses = []
    mirror.contacts = []
    seen = side_from_mirror(mirror, {2: "Net 30"})
    for field in (SyncField.COMPANY_NAME, SyncField.CREDIT_TERMS, SyncField.FEDERAL_ID):
        assert fingerprint(field, seen, ours) == fingerprint(field, live, ours)
    changed = side_from_mirror(
        NsCustomer(
            internal_id=5, company_name="Acme", terms_id=2, credit_limit=Decimal("1.00"), mirrored_at=None
        ),
        {2: "Net 30"},
    )
    assert fingerprint(SyncField.CREDIT_TERMS, changed, ours) != fingerprint(
        SyncField.CREDIT_TERMS, live, ours
    )


def test_company_name_styles_and_field_parsing() -> None:
    app = _app_out()
    assert our_side(app, federal_id_digest=None, style="legal").company_name == "Acme Industrial Supply LLC"
    assert our_side(app, federal_id_digest=None, style="dba").company_name == "Acme Supply"
    assert parse_fields(["credit_terms", "company_name", "credit_terms"]) == [
        SyncField.COMPANY_NAME,
        SyncField.CREDIT_TERMS,
    ]
    with pytest.raises(ValueError, match="unknown sync field 'balance'"):
        parse_fields(["balance"])
    assert SyncField.FEDERAL_ID.label == "Federal ID Number → Tax Reg. Number"


def test_write_helpers() -> None:
    terms = [("1", "Net 15", False), ("7", "Net 45", False), ("5", "1% 10 Net 30", True)]
    assert resolve_term(" net  45", terms) == "7"
    with pytest.raises(TermNotFound, match="no active term named '1% 10 Net 30'"):
        resolve_term("1% 10 Net 30", terms)  # inactive: never a guess
    with pytest.raises(TermNotFound, match="2 active terms"):
        resolve_term("Net 15", [*terms, ("9", "NET 15", False)])
    assert external_id_for("credit-desk-", "nuvo-1001") == "credit-desk-nuvo-1001"
    odd = external_id_for("credit-desk-", "acme/2026:7")
    assert odd.startswith("credit-desk-acme-2026-7-") and odd != external_id_for(
        "credit-desk-", "acme-2026-7"
    )
    assert len(external_id_for("credit-desk-", "x" * 100, "-contact")) <= 100
    suitetax = WriteOptions(tax_field="taxRegistration", tax_nexus_country="US")
    current = CustomerRecord(
        "5", None, None, None, None, None, None, None, (), (),
        raw_tax_registrations=(
            {"id": 3, "nexusCountry": {"id": "CA"}, "taxRegistrationNumber": "CA-1"},
            {"id": 4, "nexusCountry": {"id": "US"}, "taxRegistrationNumber": "99-0000001"},
        ),
    )  # fmt: skip
    body, replace = tax_number_body(EIN, suitetax, current)
    assert replace == ["taxRegistration"]
    assert body["taxRegistration"]["items"] == [
        {"id": 3, "nexusCountry": {"id": "CA"}, "taxRegistrationNumber": "CA-1"},
        {"id": 4, "nexusCountry": {"id": "US"}, "taxRegistrationNumber": EIN},
    ]
    assert tax_number_body(EIN, WriteOptions(tax_field="custentity_ein"), None) == (
        {"custentity_ein": EIN},
        [],
    )
    with pytest.raises(ValueError, match="custentity"):
        WriteOptions(tax_field="ein")
    assert _redact("Invalid Field Value 12-3456789 for vatRegNumber", [EIN, "123456789"]) == (
        "Invalid Field Value **-***6789 for vatRegNumber"
    )


# ---- link, request, run -------------------------------------------------------------------------


def test_existing_customer_gets_exactly_the_ticked_fields(engine: Engine) -> None:
    e = engine
    cid = pick_customer(e)
    e.ns.state.edit_customer(cid, vat_reg_number="98-7654321")  # SuiteQL cannot mirror this field
    before = emulated(e, cid)
    app_id = e.approved(uid("sync-existing"))
    e.service.link(app_id, ANALYST, "existing", cid)
    comparison = e.service.comparison(app_id)
    assert comparison.as_of is not None
    ticked = [SyncField.COMPANY_NAME, SyncField.FEDERAL_ID, SyncField.CREDIT_TERMS]
    sync_id = e.request(app_id, ticked)

    view = e.executor.run_sync(sync_id)

    assert view is not None and view.status is SyncStatus.SUCCEEDED, view
    after = emulated(e, cid)
    assert after.company_name == "Acme Industrial Supply LLC dba Acme Supply"
    assert (after.terms_id, after.credit_limit) == (7, Decimal("40000.00"))  # Net 45 by name
    # The analyst saw no Tax Reg. Number (the mirror cannot read it): NetSuite's is not overwritten.
    assert after.vat_reg_number == "98-7654321"
    assert view.result is not None
    assert set(view.result["written"]) == {"company_name", "credit_terms"}
    [conflict] = view.result["conflicts"]
    assert (conflict["field"], conflict["netsuite_now"]) == ("federal_id", "**-***4321")
    # nothing else moved
    for name in ("email", "phone", "entity_id", "external_id", "sales_rep_id", "currency_id"):
        assert getattr(after, name) == getattr(before, name), name
    assert after.address_book == before.address_book
    assert after.contact_roles == before.contact_roles
    assert view.record_url == f"https://1234567-sb1.app.netsuite.com/app/common/entity/custjob.nl?id={cid}"
    # The mirror learnt what the run saw, so the next comparison shows it and the write goes through.
    with transaction(e.sessions, readonly=True) as session:
        mirrored = session.get(NsCustomer, cid)
        assert mirrored is not None and mirrored.company_name == after.company_name
        assert mirrored.credit_limit == Decimal("40000.00")
        assert mirrored.tax_number_digest == e.cipher.digest("98-7654321")
    rows = {r.field: r for r in e.service.comparison(app_id).rows}
    assert rows[SyncField.FEDERAL_ID].differs and not rows[SyncField.COMPANY_NAME].differs
    second = e.executor.run_sync(e.request(app_id, [SyncField.FEDERAL_ID]))
    assert second is not None and second.status is SyncStatus.SUCCEEDED
    assert emulated(e, cid).vat_reg_number == EIN
    assert e.observer.kinds() == ["succeeded", "succeeded"]
    written = [a for a in e.audits() if a.action == "netsuite.field_written"]
    assert sorted(a.after["field"] for a in written if a.after) == [
        "company_name",
        "credit_terms",
        "federal_id",
    ]
    assert "3456789" not in json.dumps([(a.before, a.after, a.detail) for a in e.audits()])
    # a row that already ran is not run again
    assert e.executor.run_sync(sync_id) is None


def test_new_customer_is_upserted_once_even_after_an_unseen_success(engine: Engine) -> None:
    e = engine
    reference = uid("sync-new")
    app_id = e.approved(reference, business_name="Brand New Widgets LLC", dba=None)
    link = e.service.link(app_id, ANALYST, "new")
    assert link.external_id == f"credit-desk-{reference}"
    fields = e.service.comparison(app_id).default_fields
    assert fields == ALL
    sync_id = e.request(app_id, fields)
    # The write lands, then the read-back fails: the run cannot tell it succeeded.
    e.ns.faults.fail(500, times=1, method="GET", path=r"/record/v1/customer/\d+$")

    first = e.executor.run_sync(sync_id)

    assert first is not None and first.status is SyncStatus.PENDING and first.attempts == 1
    assert first.last_error and "internal error" in first.last_error
    assert first.next_attempt_at > e.clock.now
    assert e.executor.run_sync(sync_id) is None  # not due yet
    e.clock.advance(3600)
    second = e.executor.run_sync(sync_id)

    assert second is not None
    assert second.status is SyncStatus.SUCCEEDED, second.last_error
    found = customers_by_external_id(e.ns, f"credit-desk-{reference}")
    assert len(found) == 1
    customer = emulated(e, found[0])
    assert customer.company_name == "Brand New Widgets LLC"
    assert customer.vat_reg_number == EIN and customer.terms_id == 7
    labels = sorted(line.label for line in customer.address_book)
    assert labels == ["Billing", "Main warehouse", "Toronto DC"]
    assert sum(line.default_billing for line in customer.address_book) == 1
    assert sum(line.default_shipping for line in customer.address_book) == 1
    shipping = next(line for line in customer.address_book if line.default_shipping)
    assert shipping.label == "Main warehouse"
    contacts = [c for c in e.ns.state.contacts_of_customer(customer.id) if c.email == "ap@acme.example"]
    assert len(contacts) == 1
    assert [(r.contact_id, r.role_id) for r in customer.contact_roles] == [(contacts[0].id, 2)]
    assert second.customer_internal_id == customer.id  # the link now knows the record
    # The retry finds the first attempt's write: nothing differs; the contact, whose attachment "in sync"
    # cannot see, is written again (idempotently: still one contact, one role, checked above).
    assert second.result is not None
    assert set(second.result["unchanged"]) == {f.value for f in ALL} - {SyncField.STATEMENTS_CONTACT.value}
    assert second.result["written"] == [SyncField.STATEMENTS_CONTACT.value]
    # A further sync of the same application updates the same record.
    with pytest.raises(NotAllowed, match="already written"):
        e.service.link(app_id, ANALYST, "existing", customer.id)


def test_address_book_merge_keeps_foreign_lines_and_never_doubles(engine: Engine) -> None:
    e = engine
    cid = pick_customer(e, lines=2, billing_only_line=True)
    before = emulated(e, cid)
    old_billing = before.default_billing_line()
    foreign = {line.internal_id: line for line in before.address_book if not line.default_billing}
    app_id = e.approved(uid("sync-addresses"))
    e.service.link(app_id, ANALYST, "existing", cid)
    sync_id = e.request(app_id, [SyncField.BILLING_ADDRESS, SyncField.SHIPPING_LOCATIONS])
    # The PATCH is applied but its answer never arrives (client timeout < NetSuite's delay).
    e.ns.faults.delay(1.0, times=1, method="PATCH")
    slow = NetSuiteClient(client_config(e.ns.url, read_timeout_seconds=0.3), None, LocalLimiter(2))
    e.executor.client = slow
    try:
        first = e.executor.run_sync(sync_id)
        assert first is not None and first.status is SyncStatus.PENDING
        assert first.last_error and "did not answer in time" in first.last_error
        _wait_for(
            lambda: any(
                x.method == "PATCH" and x.status == 204 and x.path.endswith(f"/customer/{cid}")
                for x in e.ns.log.entries()
            )
        )
    finally:
        e.executor.client = e.client
        slow.close()
    e.clock.advance(3600)
    second = e.executor.run_sync(sync_id)

    assert second is not None
    assert second.status is SyncStatus.SUCCEEDED, second.last_error
    after = emulated(e, cid)
    by_id = {line.internal_id: line for line in after.address_book}
    for line_id, line in foreign.items():  # lines we do not own survive, content intact
        assert by_id[line_id].address == line.address and by_id[line_id].label == line.label
    billing = after.default_billing_line()
    assert billing is not None and billing.internal_id == old_billing.internal_id  # updated in place
    assert (billing.address.addr1, billing.address.addr2, billing.address.city) == (
        "100 Congress Ave",
        "Suite 400",
        "Austin",
    )
    assert sum(line.default_billing for line in after.address_book) == 1
    assert sum(line.default_shipping for line in after.address_book) == 1
    assert after.default_shipping_line().label == "Main warehouse"
    addresses = [(line.address.addr1, line.address.city) for line in after.address_book]
    assert len(addresses) == len(set(addresses))  # no doubled line after the retry
    assert len(after.address_book) == len(before.address_book) + 2


def _wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = wall.monotonic() + seconds
    while wall.monotonic() < deadline:
        if condition():
            return
        wall.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_value_changed_in_netsuite_after_the_analyst_looked_is_not_written(engine: Engine) -> None:
    e = engine
    cid = pick_customer(e)
    app_id = e.approved(uid("sync-conflict"))
    e.service.link(app_id, ANALYST, "existing", cid)
    fields = [SyncField.COMPANY_NAME, SyncField.CREDIT_TERMS]
    seen = e.service.comparison(app_id).seen_values(fields)
    e.ns.state.edit_customer(cid, credit_limit=Decimal("1234.00"))  # someone in NetSuite, meanwhile
    sync_id = e.service.request(app_id, ANALYST, fields, seen).id

    view = e.executor.run_sync(sync_id)

    assert view is not None and view.status is SyncStatus.SUCCEEDED
    after = emulated(e, cid)
    assert after.credit_limit == Decimal("1234.00")  # not overwritten
    assert after.company_name == "Acme Industrial Supply LLC dba Acme Supply"
    assert view.result is not None and view.result["written"] == ["company_name"]
    [conflict] = view.result["conflicts"]
    assert conflict["field"] == "credit_terms" and "1,234.00" in conflict["netsuite_now"]

    # Only the changed field ticked: nothing written, the row ends in conflict.
    app2 = e.approved(uid("sync-conflict"))
    cid2 = pick_customer(e)
    e.service.link(app2, ANALYST, "existing", cid2)
    seen2 = e.service.comparison(app2).seen_values([SyncField.CREDIT_TERMS])
    e.ns.state.edit_customer(cid2, credit_limit=Decimal("777.00"))
    stamp = emulated(e, cid2).last_modified
    sync2 = e.service.request(app2, ANALYST, [SyncField.CREDIT_TERMS], seen2).id
    view2 = e.executor.run_sync(sync2)
    assert view2 is not None and view2.status is SyncStatus.CONFLICT
    assert emulated(e, cid2).last_modified == stamp and emulated(e, cid2).credit_limit == Decimal("777.00")
    assert e.observer.kinds() == ["succeeded", "conflict"]
    with pytest.raises(NotAllowed, match="NetSuite changed"):
        e.service.retry(sync2, ANALYST)


def test_terms_without_a_match_fail_clearly(engine: Engine) -> None:
    e = engine
    cid = pick_customer(e)
    before = emulated(e, cid)
    app_id = e.approved(uid("sync-terms"))
    with transaction(e.sessions) as session:  # a term NetSuite does not have (renamed since approval)
        session.execute(
            update(CreditApplication).where(CreditApplication.id == app_id).values(approved_terms="Net 99")
        )
    e.service.link(app_id, ANALYST, "existing", cid)
    sync_id = e.request(app_id, [SyncField.CREDIT_TERMS])

    view = e.executor.run_sync(sync_id)

    assert view is not None and view.status is SyncStatus.FAILED and view.attempts == 1
    assert view.last_error and "no active term named 'Net 99'" in view.last_error
    assert "Net 45" in view.last_error  # the terms that do exist are named
    assert (emulated(e, cid).terms_id, emulated(e, cid).credit_limit) == (
        before.terms_id,
        before.credit_limit,
    )
    assert e.observer.kinds() == ["failed"]


def test_user_error_fails_with_netsuite_detail_and_no_retry(engine: Engine) -> None:
    e = engine
    cid = pick_customer(e)
    app_id = e.approved(uid("sync-400"), business_name="A" * 90, dba=None)  # over NetSuite's 83
    e.service.link(app_id, ANALYST, "existing", cid)
    sync_id = e.request(app_id, [SyncField.COMPANY_NAME])

    view = e.executor.run_sync(sync_id)

    assert view is not None and view.status is SyncStatus.FAILED and view.attempts == 1
    assert view.last_error and view.last_error.startswith("NetSuite refused the change:")
    assert "Maximum length is 83" in view.last_error
    e.clock.advance(7200)
    assert e.executor.run_sync(sync_id) is None  # failed rows wait for a person


# ---- the service: requests, refusals, transitions ----------------------------------------------


def test_double_request_gives_one_row_and_refusals_are_audited(engine: Engine) -> None:
    e = engine
    app_id = e.approved(uid("sync-double"))
    e.service.link(app_id, ANALYST, "new")
    fields = [SyncField.COMPANY_NAME, SyncField.CREDIT_TERMS]
    seen = e.service.comparison(app_id).seen_values(fields)
    first = e.service.request(app_id, ANALYST, fields, seen)
    again = e.service.request(app_id, ANALYST, list(reversed(fields)), seen)
    assert first.created and not again.created and again.id == first.id
    with transaction(e.sessions, readonly=True) as session:
        rows = list(session.scalars(select(SyncRequest).where(SyncRequest.application_id == app_id)))
    assert len(rows) == 1
    requested = [a for a in e.audits() if a.action == "sync.requested"]
    assert [a.entity_id for a in requested] == [str(first.id)]

    with pytest.raises(InvalidSyncRequest, match="does not say what NetSuite showed"):
        e.service.request(app_id, ANALYST, [SyncField.FEDERAL_ID], seen)
    with pytest.raises(InvalidSyncRequest, match="needs its Company Name"):
        e.service.request(app_id, ANALYST, [SyncField.CREDIT_TERMS], seen)
    with pytest.raises(NotAllowed, match="Only credit analysts"):
        e.service.request(app_id, OUTSIDER, fields, seen)

    # A rejected application may be linked, never synced.
    data = ApplicationIn.model_validate(valid_application(uid("sync-rejected")))
    rejected = e.applications.submit(data, source="api", actor="test").application.id
    e.decisions.reject(rejected, ANALYST, reason="Too risky")
    e.service.link(rejected, ANALYST, "new")
    seen_r = e.service.comparison(rejected).seen_values(fields)
    with pytest.raises(NotAllowed, match="Only approved applications"):
        e.service.request(rejected, ANALYST, fields, seen_r)
    refusals = [a for a in e.audits() if a.action == "authorization.refused"]
    assert len(refusals) == 2 and refusals[-1].entity_id == str(rejected)


def test_cancel_retry_and_sync_now(engine: Engine) -> None:
    e = engine
    e.service.options = SyncOptions(schedule=SyncSchedule(time(23, 30), "UTC"), writes=OPTIONS.writes)
    cid = pick_customer(e)
    app_id = e.approved(uid("sync-cancel"))
    e.service.link(app_id, ANALYST, "existing", cid)
    sync_id = e.request(app_id, [SyncField.COMPANY_NAME], now=False)
    row = e.row(sync_id)
    assert row.status == "pending" and row.next_attempt_at >= e.clock.now
    assert row.next_attempt_at.time() == time(23, 30)

    cancelled = e.service.cancel(sync_id, ANALYST)
    assert cancelled.status is SyncStatus.CANCELLED
    assert e.service.cancel(sync_id, ANALYST).status is SyncStatus.CANCELLED  # again: same answer
    assert e.executor.run_sync(sync_id) is None
    # The same request after a cancel is a new row (the cancelled one stays as it was).
    fresh = e.request(app_id, [SyncField.COMPANY_NAME], now=False)
    assert fresh != sync_id
    e.service.cancel(fresh, ANALYST)

    retried = e.service.retry(sync_id, ANALYST)
    assert retried.status is SyncStatus.PENDING and retried.next_attempt_at == e.clock.now
    assert retried.max_attempts == retried.attempts + OPTIONS.max_attempts
    done = e.executor.run_sync(sync_id)
    assert done is not None and done.status is SyncStatus.SUCCEEDED
    with pytest.raises(NotAllowed, match="already written"):
        e.service.cancel(sync_id, ANALYST)
    with pytest.raises(NotAllowed, match="already written"):
        e.service.retry(sync_id, ANALYST)

    # "Sync now" on a scheduled request makes it due at once.
    app2 = e.approved(uid("sync-cancel"))
    e.service.link(app2, ANALYST, "new")
    later = e.request(app2, [SyncField.COMPANY_NAME], now=False)
    assert e.executor.run_sync(later) is None  # not due before the slot
    now_view = e.service.sync_now(later, ANALYST)
    assert now_view.next_attempt_at <= e.clock.now
    assert later in [v.id for v in e.service.pending_and_failed()]
    ran = e.executor.run_sync(later)
    assert ran is not None and ran.status is SyncStatus.SUCCEEDED
    open_ids = [v.id for v in e.service.pending_and_failed()]
    assert fresh not in open_ids and sync_id not in open_ids and later not in open_ids
    actions = [a.action for a in e.audits() if a.entity_type == "sync" and a.entity_id == str(sync_id)]
    assert actions[:3] == ["sync.requested", "sync.cancelled", "sync.retried"]


def test_a_held_row_is_left_alone_and_relinking_cancels_open_syncs(engine: Engine) -> None:
    e = engine
    cid = pick_customer(e)
    before = emulated(e, cid)
    app_id = e.approved(uid("sync-relink"))
    e.service.link(app_id, ANALYST, "existing", cid)
    sync_id = e.request(app_id, [SyncField.COMPANY_NAME])
    with transaction(e.sessions) as session:  # another worker claimed it
        session.execute(
            update(SyncRequest)
            .where(SyncRequest.id == sync_id)
            .values(status="running", attempts=1, started_at=e.clock.now)
        )
    assert e.executor.run_sync(sync_id) is None
    assert (e.row(sync_id).status, e.row(sync_id).attempts) == ("running", 1)
    assert e.executor.reclaim_stale() == []  # its lease still runs
    with pytest.raises(NotAllowed, match="running"):
        e.service.link(app_id, ANALYST, "new")
    with pytest.raises(NotAllowed, match="right now"):
        e.service.cancel(sync_id, ANALYST)

    e.clock.advance(OPTIONS.lease_seconds + 1)  # that worker died
    assert e.executor.reclaim_stale() == [sync_id]
    assert e.row(sync_id).status == "pending"
    link = e.service.link(app_id, ANALYST, "new")
    assert (link.mode, link.customer_internal_id) == ("new", None)
    assert e.row(sync_id).status == "cancelled"
    with pytest.raises(NotAllowed, match="linked to another customer"):
        e.service.retry(sync_id, ANALYST)
    assert emulated(e, cid).company_name == before.company_name
    actions = [a.action for a in e.audits() if a.entity_type == "application" and a.entity_id == str(app_id)]
    assert actions.count("netsuite.linked") == 1 and actions.count("netsuite.relinked") == 1


# ---- jobs: the reconcile pass -------------------------------------------------------------------


def test_reconcile_requeues_lost_and_stale_syncs(
    database_url: str, redis_url: str | None, ns: EmulatorServer, container_factory: Any
) -> None:
    container = container_factory(
        database_url=database_url,
        redis_url=redis_url,
        netsuite_account_id=ACCOUNT,
        netsuite_base_url=ns.url,
        netsuite_auth_mode="tba",
        netsuite_tba_consumer_key="ck",
        netsuite_tba_consumer_secret="cs",
        netsuite_tba_token_id="tk",
        netsuite_tba_token_secret="ts",
        default_terms="Net 30,Net 45",
    )
    options = SyncOptions.from_settings(container.settings)
    service = SyncService(
        container.sessions,
        options,
        enqueue=sync_jobs.make_enqueuer(container.redis, options),
    )
    observer = RecordingObserver()
    container.extras[sync_jobs.OBSERVER_KEY] = observer
    reference = uid("sync-reconcile")
    data = ApplicationIn.model_validate(valid_application(reference, business_name="Reconcile Co"))
    app_id = container.applications.submit(data, source="api", actor="test").application.id
    container.decisions.approve(app_id, ANALYST, terms="Net 30", credit_limit="1000")
    service.link(app_id, ANALYST, "new")
    fields = [SyncField.COMPANY_NAME, SyncField.CREDIT_TERMS]
    view = service.request(app_id, ANALYST, fields, service.comparison(app_id).seen_values(fields))
    queue = Queue(sync_jobs.QUEUE, connection=container.redis)
    assert queue.job_ids == [f"sync-{view.id}"]
    assert not sync_jobs.enqueue_sync(container.redis, view.id, job_timeout=60)  # live: a no-op
    assert queue.job_ids == [f"sync-{view.id}"]

    container.redis.flushdb()  # Redis restarted without persistence: the job is gone
    assert queue.job_ids == []
    assert sync_jobs.reconcile(container) == {"reclaimed": 0, "queued": 1}
    assert queue.job_ids == [f"sync-{view.id}"]
    assert sync_jobs.reconcile(container) == {"reclaimed": 0, "queued": 0}  # still queued

    _work(container)
    with transaction(container.sessions, readonly=True) as session:
        row = session.get(SyncRequest, view.id)
        assert row is not None
        assert row.status == "succeeded", row.last_error
    assert len(customers_by_external_id(ns, f"credit-desk-{reference}")) == 1

    # A worker died mid-sync: its row stays "running" until the lease runs out, then is re-run.
    fields2 = [SyncField.COMPANY_NAME]
    data2 = ApplicationIn.model_validate(valid_application(uid("sync-reconcile"), business_name="Stale Co"))
    app2 = container.applications.submit(data2, source="api", actor="test").application.id
    container.decisions.approve(app2, ANALYST, terms="Net 30", credit_limit="1000")
    service.link(app2, ANALYST, "new")
    view2 = service.request(app2, ANALYST, fields2, service.comparison(app2).seen_values(fields2))
    container.redis.flushdb()
    started = datetime.now(UTC) - timedelta(seconds=options.lease_seconds + 5)
    with transaction(container.sessions) as session:
        session.execute(
            update(SyncRequest)
            .where(SyncRequest.id == view2.id)
            .values(status="running", attempts=1, started_at=started)
        )
    assert sync_jobs.reconcile(container) == {"reclaimed": 1, "queued": 1}
    _work(container)
    with transaction(container.sessions, readonly=True) as session:
        row2 = session.get(SyncRequest, view2.id)
        assert row2 is not None and (row2.status, row2.attempts) == ("succeeded", 2)
    assert observer.kinds() == ["succeeded", "succeeded"]


def _work(container: Any) -> None:
    bot_jobs.bind_container(container, thread_only=True)
    worker = ThreadWorker([Queue(sync_jobs.QUEUE, connection=container.redis)], connection=container.redis)
    worker.work(burst=True, logging_level="WARNING")
