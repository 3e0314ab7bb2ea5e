"""The intake service: store a validated application once, and show it masked.

Every channel (API, file import, Slack modal) comes through `submit`, so idempotency by the caller's
reference, encryption of the Federal ID and the audit record happen in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.applications.schemas import (
    Address,
    Applicant,
    ApplicationIn,
    ApplicationOut,
    Contact,
    MoneyOut,
    QueueItem,
    ShippingLocation,
)
from bot.federal_id import FederalIdCipher, mask
from storage.db import transaction
from storage.models import ApplicationStatus, CreditApplication
from storage.models import ShippingLocation as ShippingRow
from storage.repositories.applications import ApplicationRepository
from storage.repositories.audit import AuditRepository
from storage.types import utcnow

log = structlog.get_logger(__name__)


class ReferenceConflict(Exception):
    """The reference is already used by an application with different content."""

    def __init__(self, reference: str, existing_id: int) -> None:
        super().__init__(
            f"reference {reference!r} already names application {existing_id} with different content; "
            "use a new reference for a new application"
        )
        self.reference = reference
        self.existing_id = existing_id


@dataclass(frozen=True)
class SubmitResult:
    application: ApplicationOut
    created: bool


class ApplicationService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: FederalIdCipher,
        clock: Callable[[], datetime] = utcnow,
        on_submitted: Callable[[int], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.cipher = cipher
        self.clock = clock
        self.on_submitted = on_submitted

    def submit(self, data: ApplicationIn, *, source: str, actor: str) -> SubmitResult:
        """Store `data` once per reference. A repeat returns the first; different content is refused.

        Two identical requests racing each other give one application: the loser of the unique-key race
        reads the winner's row.
        """
        result = self._store(data, source=source, actor=actor)
        if result.created and self.on_submitted is not None:
            try:
                self.on_submitted(result.application.id)
            except Exception:
                # The application is stored; the periodic pass announces whatever was not announced.
                log.exception("application.on_submitted_failed", application_id=result.application.id)
        return result

    def _store(self, data: ApplicationIn, *, source: str, actor: str) -> SubmitResult:
        fingerprint = data.fingerprint()
        try:
            with transaction(self.sessions) as session:
                repo = ApplicationRepository(session)
                existing = repo.get_by_reference(data.reference)
                if existing is not None:
                    return SubmitResult(self._repeat(existing, fingerprint), created=False)
                row = self._build_row(data, source=data.source or source, fingerprint=fingerprint)
                repo.add(row)
                out = to_out(row)
                AuditRepository(session).record(
                    entity_type="application",
                    entity_id=row.id,
                    action="application.submitted",
                    actor=actor,
                    before=None,
                    after=out.model_dump(mode="json"),
                    at=row.created_at,
                )
                return SubmitResult(out, created=True)
        except IntegrityError:
            with transaction(self.sessions, readonly=True) as session:
                existing = ApplicationRepository(session).get_by_reference(data.reference)
                if existing is None:
                    raise
                return SubmitResult(self._repeat(existing, fingerprint), created=False)

    def get(self, application_id: int) -> ApplicationOut | None:
        with transaction(self.sessions, readonly=True) as session:
            row = ApplicationRepository(session).get(application_id)
            return None if row is None else to_out(row)

    def queue(self, status: str, limit: int) -> tuple[list[ApplicationOut], int]:
        """The oldest `limit` applications in `status`, and how many there are in all."""
        with transaction(self.sessions, readonly=True) as session:
            repo = ApplicationRepository(session)
            rows = repo.list_by_status([status], limit=limit)
            return [to_out(r) for r in rows], repo.count_by_status(status)

    def queues(self, statuses: Sequence[str], limit: int) -> dict[str, tuple[list[QueueItem], int]]:
        """For each status: its oldest `limit` applications and how many there are, in one transaction."""
        with transaction(self.sessions, readonly=True) as session:
            repo = ApplicationRepository(session)
            counts = repo.count_by_statuses(statuses)
            return {
                s: (
                    [_queue_item(r) for r in repo.queue_rows(s, limit)] if counts.get(s) else [],
                    counts.get(s, 0),
                )
                for s in statuses
            }

    def find(self, query: str, limit: int = 10) -> list[ApplicationOut]:
        """`12` or `#12` is an id; anything else a reference or part of a business name."""
        text = query.strip().removeprefix("#")
        with transaction(self.sessions, readonly=True) as session:
            repo = ApplicationRepository(session)
            if text.isdigit():
                row = repo.get(int(text))
                return [to_out(row)] if row is not None else []
            return [to_out(r) for r in repo.search(text[:200], limit)] if text else []

    def reveal_federal_id(self, application_id: int) -> str:
        """The clear Federal ID. Only the NetSuite write needs it; nothing else may show it."""
        with transaction(self.sessions, readonly=True) as session:
            row = ApplicationRepository(session).get(application_id)
            if row is None:
                raise LookupError(f"no application {application_id}")
            return self.cipher.reveal(row.federal_id_ciphertext)

    def _repeat(self, existing: CreditApplication, fingerprint: str) -> ApplicationOut:
        if existing.request_fingerprint != fingerprint:
            raise ReferenceConflict(existing.reference, existing.id)
        return to_out(existing)

    def _build_row(self, data: ApplicationIn, *, source: str, fingerprint: str) -> CreditApplication:
        sealed = self.cipher.seal(data.federal_id)
        now = self.clock()
        bill = data.billing_address
        return CreditApplication(
            reference=data.reference,
            request_fingerprint=fingerprint,
            source=source,
            status=ApplicationStatus.SUBMITTED.value,
            business_legal_name=data.business_name,
            business_dba=data.dba,
            federal_id_ciphertext=sealed.ciphertext,
            federal_id_last4=sealed.last4,
            federal_id_digest=sealed.digest,
            billing_line1=bill.line1,
            billing_line2=bill.line2,
            billing_city=bill.city,
            billing_region=bill.state,
            billing_postal_code=bill.postal_code,
            billing_country=bill.country,
            contact_name=data.statements_contact.name,
            contact_email=str(data.statements_contact.email),
            contact_phone=data.statements_contact.phone,
            currency=data.requested_credit_limit.currency,
            requested_terms=data.requested_terms,
            requested_credit_limit=data.requested_credit_limit.amount,
            applicant_name=data.applicant.name,
            applicant_email=str(data.applicant.email) if data.applicant.email else None,
            applicant_phone=data.applicant.phone,
            applicant_slack_user_id=data.applicant.slack_user_id,
            created_at=now,
            updated_at=now,
            shipping_locations=[
                ShippingRow(
                    position=i,
                    label=loc.label,
                    attention=loc.attention,
                    line1=loc.line1,
                    line2=loc.line2,
                    city=loc.city,
                    region=loc.state,
                    postal_code=loc.postal_code,
                    country=loc.country,
                )
                for i, loc in enumerate(data.shipping_locations)
            ],
        )


def _queue_item(row: Row[Any]) -> QueueItem:
    (app_id, status, name, dba, terms, requested, currency, approved_terms, approved, created_at) = tuple(row)
    return QueueItem(
        id=app_id,
        status=status,
        business_name=name,
        dba=dba,
        requested_terms=terms,
        requested_credit_limit=MoneyOut.model_construct(amount=str(requested), currency=currency),
        approved_terms=approved_terms,
        approved_credit_limit=None
        if approved is None
        else MoneyOut.model_construct(amount=str(approved), currency=currency),
        created_at=created_at,
    )


def to_out(row: CreditApplication) -> ApplicationOut:
    """The public, masked view of a stored application."""
    approved = (
        MoneyOut(amount=str(row.approved_credit_limit), currency=row.currency)
        if row.approved_credit_limit is not None
        else None
    )
    return ApplicationOut(
        id=row.id,
        reference=row.reference,
        status=row.status,
        source=row.source,
        business_name=row.business_legal_name,
        dba=row.business_dba,
        federal_id=mask(row.federal_id_last4),
        billing_address=Address.model_construct(
            line1=row.billing_line1,
            line2=row.billing_line2,
            city=row.billing_city,
            state=row.billing_region,
            postal_code=row.billing_postal_code,
            country=row.billing_country,
        ),
        statements_contact=Contact.model_construct(
            name=row.contact_name, email=row.contact_email, phone=row.contact_phone
        ),
        requested_terms=row.requested_terms,
        requested_credit_limit=MoneyOut(amount=str(row.requested_credit_limit), currency=row.currency),
        approved_terms=row.approved_terms,
        approved_credit_limit=approved,
        shipping_locations=[
            ShippingLocation.model_construct(
                label=s.label,
                attention=s.attention,
                line1=s.line1,
                line2=s.line2,
                city=s.city,
                state=s.region,
                postal_code=s.postal_code,
                country=s.country,
            )
            for s in row.shipping_locations
        ],
        applicant=Applicant.model_construct(
            name=row.applicant_name,
            email=row.applicant_email,
            phone=row.applicant_phone,
            slack_user_id=row.applicant_slack_user_id,
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
