"""Storage on both databases: types, the conditional state transition, audit, and migrations."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError

from bot.applications import states
from bot.federal_id import FederalIdCipher, generate_key
from storage import migrate
from storage.db import make_engine, make_session_factory, transaction
from storage.models import (
    ApplicationStatus,
    AuditEvent,
    CreditApplication,
    NsCustomer,
    NsCustomerAddress,
    SyncRequest,
)
from storage.repositories.applications import ApplicationRepository
from storage.repositories.audit import AuditRepository


def _application(reference: str = "ref-1", **overrides: object) -> CreditApplication:
    sealed = FederalIdCipher([generate_key()]).seal("12-3456789")
    values: dict[str, object] = dict(
        reference=reference,
        request_fingerprint="f" * 64,
        source="test",
        status=ApplicationStatus.SUBMITTED.value,
        business_legal_name="Acme LLC",
        federal_id_ciphertext=sealed.ciphertext,
        federal_id_last4=sealed.last4,
        federal_id_digest=sealed.digest,
        billing_line1="1 Main St",
        billing_city="Austin",
        billing_region="TX",
        billing_postal_code="78701",
        billing_country="US",
        contact_name="Pat",
        contact_email="ap@acme.example",
        currency="USD",
        requested_credit_limit=Decimal("50000.00"),
        applicant_name="Jo",
    )
    values.update(overrides)
    return CreditApplication(**values)


@pytest.fixture
def sessions(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def test_datetimes_come_back_aware_utc(sessions) -> None:  # type: ignore[no-untyped-def]
    eastern = timezone(timedelta(hours=-5))
    created = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=eastern)
    with transaction(sessions) as s:
        s.add(_application(created_at=created, updated_at=created))
    with transaction(sessions) as s:
        row = ApplicationRepository(s).get_by_reference("ref-1")
        assert row is not None
        assert row.created_at.tzinfo is not None
        assert row.created_at.utcoffset() == timedelta(0)
        assert row.created_at == created
        assert row.created_at.hour == 14  # 09:30 at -05:00 is 14:30 UTC


def test_naive_datetimes_are_refused(sessions) -> None:  # type: ignore[no-untyped-def]
    naive = datetime(2026, 3, 1, 9, 30)  # noqa: DTZ001 - the point of the test
    with pytest.raises(StatementError, match="naive datetime"), transaction(sessions) as s:
        s.add(_application(created_at=naive, updated_at=naive))
        s.flush()


@pytest.mark.parametrize(
    "amount",
    [Decimal("0.01"), Decimal("50000.00"), Decimal("1234567890123.45"), Decimal("99999999999999.99")],
)
def test_money_is_exact(sessions, amount: Decimal) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as s:
        s.add(_application(requested_credit_limit=amount))
    with transaction(sessions) as s:
        row = ApplicationRepository(s).get_by_reference("ref-1")
        assert row is not None
        assert row.requested_credit_limit == amount
        assert str(row.requested_credit_limit) == f"{amount:.2f}"


def test_money_refuses_sub_cent_precision(sessions) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StatementError, match="decimal places"), transaction(sessions) as s:
        s.add(_application(requested_credit_limit=Decimal("10.005")))
        s.flush()


def test_reference_is_unique(sessions) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as s:
        s.add(_application("dup"))
    with pytest.raises(IntegrityError), transaction(sessions) as s:
        s.add(_application("dup"))


def test_transition_is_conditional(sessions) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as s:
        app_id = ApplicationRepository(s).add(_application()).id
    with transaction(sessions) as s:
        repo = ApplicationRepository(s)
        assert repo.transition(
            app_id,
            from_status="submitted",
            to_status="approved",
            terms=("Net 30", Decimal("25000")),
        )
        # A second attempt from the old state changes nothing.
        assert not repo.transition(app_id, from_status="submitted", to_status="rejected")
    with transaction(sessions) as s:
        row = ApplicationRepository(s).get(app_id)
        assert row is not None
        assert row.status == "approved"
        assert row.version == 2
        assert (row.approved_terms, row.approved_credit_limit) == ("Net 30", Decimal("25000.00"))


def test_racing_transitions_give_exactly_one_winner(sessions) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as s:
        app_id = ApplicationRepository(s).add(_application()).id
    n = 8
    barrier = threading.Barrier(n)
    results: list[bool] = []
    lock = threading.Lock()

    def decide(i: int) -> None:
        barrier.wait()
        target = "approved" if i % 2 else "rejected"
        with transaction(sessions) as s:
            moved = ApplicationRepository(s).transition(app_id, from_status="submitted", to_status=target)
            if moved:
                AuditRepository(s).record(
                    entity_type="application",
                    entity_id=app_id,
                    action=f"application.{target}",
                    actor=f"U{i}",
                    before={"status": "submitted"},
                    after={"status": target},
                )
        with lock:
            results.append(moved)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * (n - 1) + [True]
    with transaction(sessions) as s:
        events = AuditRepository(s).for_entity("application", app_id)
        row = ApplicationRepository(s).get(app_id)
        assert row is not None
        assert len(events) == 1
        assert events[0].after == {"status": row.status}


def test_audit_event_keeps_before_and_after(sessions) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    with transaction(sessions) as s:
        AuditRepository(s).record(
            entity_type="application",
            entity_id=7,
            action="application.approved",
            actor="U123",
            before={"status": "submitted", "limit": None},
            after={"status": "approved", "limit": "5000.00"},
            at=at,
        )
    with transaction(sessions) as s:
        (event,) = s.scalars(select(AuditEvent)).all()
        assert (event.actor, event.entity_id, event.occurred_at) == ("U123", "7", at)
        assert event.before == {"status": "submitted", "limit": None}
        assert event.after == {"status": "approved", "limit": "5000.00"}


def test_mirror_and_sync_tables_round_trip(sessions) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as s:
        s.add(
            NsCustomer(
                internal_id=4242,
                entity_id="CUST-4242",
                company_name="Globex",
                balance=Decimal("-12.50"),
                credit_limit=None,
                last_modified=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                addresses=[NsCustomerAddress(address_id=1, default_billing=True, city="Springfield")],
            )
        )
        app_row = ApplicationRepository(s).add(_application())
        from storage.models import NetSuiteLink

        link = NetSuiteLink(
            application_id=app_row.id, mode="existing", customer_internal_id=4242, linked_by="U1"
        )
        s.add(link)
        s.flush()
        s.add(
            SyncRequest(
                idempotency_key="k1",
                application_id=app_row.id,
                link_id=link.id,
                fields=["terms", "billing_address"],
                requested_by="U1",
            )
        )
    with transaction(sessions) as s:
        customer = s.get(NsCustomer, 4242)
        assert customer is not None
        assert customer.balance == Decimal("-12.50")
        assert customer.addresses[0].default_billing is True
        sync = s.scalars(select(SyncRequest)).one()
        assert sync.fields == ["terms", "billing_address"]
        assert sync.status == "pending"
        assert sync.next_attempt_at.tzinfo is not None


def test_state_machine_rules() -> None:
    states.check("submitted", "awaiting_manager")
    states.check("awaiting_manager", "approved")
    with pytest.raises(states.IllegalTransition, match="approved cannot become rejected"):
        states.check("approved", "rejected")
    assert states.FINAL_STATES == {
        ApplicationStatus.APPROVED,
        ApplicationStatus.REJECTED,
        ApplicationStatus.WITHDRAWN,
    }


def test_migrations_are_at_head_and_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert migrate.is_at_head(engine)
        migrate.upgrade(engine)  # again: nothing to do, no error
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_db_upgrade_processes(backend: str, tmp_path: Path, fresh_database) -> None:  # type: ignore[no-untyped-def]
    """Three `credit-desk db upgrade` processes at once on an empty database: all succeed, schema at head."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}" if backend == "sqlite" else fresh_database()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"{out}\n{err}"
        assert "at revision" in out
    engine = make_engine(url)
    try:
        assert migrate.is_at_head(engine)
    finally:
        engine.dispose()
