"""The worker side of a sync: run one durable ``sync_requests`` row against NetSuite.

One run, in order:

1. **Claim** the row: ``pending -> running`` for a due row, counting the attempt, in one
   conditional UPDATE. A row someone else holds (or that is not due, or was cancelled) is left
   alone. The attempt number is the run's fencing token: every later change of the row requires
   it, so a run presumed dead (its row taken back by the reconcile pass and run again) can never
   overwrite the newer run's outcome.
2. **Re-read** the customer (expanded), and its contacts when the contact is to be written. For a
   new customer the record is looked up by our external id: a previous attempt may have created it.
3. **Decide per field**: NetSuite already holds our value -> nothing to write; NetSuite's value
   differs from what the analyst saw (``seen_values``) -> a **conflict**, not written, reported
   with the new value; otherwise -> written.
4. **Write** through the connector: PATCH an existing customer, PUT-upsert a new one by external
   id (a retry finds the record instead of making a second); the address book as one complete,
   merged line set with ``replace=addressBook`` (never a dropped or doubled line); terms by name to
   internal id (no match fails, never a guess); the statements contact updated (matched by email)
   or upserted by external id, then attached with the configured role; the Tax Reg. Number as
   settings say. The clear Federal ID is read only here, never logged, and masked out of any error
   text NetSuite echoes.
5. **Read back and verify** each written field, **update the mirror** rows of the customer, audit
   before and after per field, and finish the row: ``succeeded`` (with the record id and URL),
   ``conflict`` (nothing written, only differences), or ``failed``.

Errors: NetSuite's typed errors decide. Retryable ones (429, 5xx, timeouts, transport) put the row
back to ``pending`` with a jittered exponential ``next_attempt_at`` until ``max_attempts``; user
errors and the last attempt end in ``failed`` with NetSuite's own detail. Outcomes go to a
:class:`SyncObserver` after the commit (the Slack thread).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import structlog
from sqlalchemy.orm import Session, sessionmaker

from bot.applications.schemas import ApplicationOut
from bot.applications.service import to_out
from bot.customers.normalize import email_domain, normalize_name
from bot.federal_id import digits, mask
from bot.sync import SyncOptions
from bot.sync.compare import (
    Digest,
    NetSuiteSide,
    OurSide,
    display_netsuite,
    display_ours,
    fingerprint,
    in_sync,
    our_side,
    side_from_record,
)
from bot.sync.fields import SyncField, parse_fields
from bot.sync.service import TARGET_KEY, SyncRequestView, request_view, target_of
from netsuite import mapping, queries
from netsuite.addressbook import REPLACE as ADDRESS_BOOK_REPLACE
from netsuite.addressbook import DesiredAddress, merge_address_book
from netsuite.client import NetSuiteClient
from netsuite.errors import NetSuiteError
from netsuite.errors import NotFound as NetSuiteNotFound
from netsuite.suiteql import run_query
from netsuite.writes import (
    CustomerRecord,
    TermNotFound,
    address_body,
    company_name_body,
    contact_body,
    external_id_for,
    new_customer_body,
    read_customer,
    record_url,
    resolve_term,
    tax_number_body,
    terms_body,
)
from storage.db import retry_transient, transaction
from storage.models import ApplicationStatus, CreditApplication, NetSuiteLink, OutboxKind
from storage.models import SyncStatus as St
from storage.repositories import mirror_write
from storage.repositories.audit import AuditRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.sync import SyncRepository
from storage.types import utcnow

log = structlog.get_logger(__name__)

WORKER = "credit-desk"
"""The audit actor of the worker's own actions."""
BILLING_LABEL = "Billing"
FINISH_RETRY_SECONDS = 120.0
"""How long a run keeps trying to record its outcome while the database is away (at most half the lease)."""


@runtime_checkable
class SyncObserver(Protocol):
    """Told about each finished sync, after its row committed (the Slack thread implements it)."""

    def on_succeeded(self, sync: SyncRequestView) -> None: ...

    def on_conflict(self, sync: SyncRequestView) -> None: ...

    def on_failed(self, sync: SyncRequestView) -> None: ...


class LoggingObserver:
    """The observer when nothing else listens: a log line per outcome."""

    def on_succeeded(self, sync: SyncRequestView) -> None:
        log.info("sync.succeeded", sync_id=sync.id, customer=sync.customer_internal_id)

    def on_conflict(self, sync: SyncRequestView) -> None:
        log.info("sync.conflict", sync_id=sync.id, customer=sync.customer_internal_id)

    def on_failed(self, sync: SyncRequestView) -> None:
        log.warning("sync.failed", sync_id=sync.id, error=sync.last_error)


@dataclass
class RecordingObserver:
    """Keeps every notification, in order (tests; a dry run)."""

    events: list[tuple[str, SyncRequestView]] = field(default_factory=list)

    def on_succeeded(self, sync: SyncRequestView) -> None:
        self.events.append(("succeeded", sync))

    def on_conflict(self, sync: SyncRequestView) -> None:
        self.events.append(("conflict", sync))

    def on_failed(self, sync: SyncRequestView) -> None:
        self.events.append(("failed", sync))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


class SyncFailure(Exception):
    """A sync that cannot succeed by trying again; the message is written for people."""


@dataclass(frozen=True)
class _Claim:
    sync_id: int
    attempts: int
    max_attempts: int
    fields: tuple[SyncField, ...]
    seen: dict[str, str]
    application: ApplicationOut
    application_status: str
    federal_id_digest: str | None
    link_id: int
    mode: str
    customer_internal_id: int | None
    external_id: str | None
    terms: list[tuple[str, str, bool]]
    previous_intent: frozenset[str] = frozenset()
    """Fields an earlier attempt of this sync set out to write: if it died half way, NetSuite's value differs
    from what the analyst saw because of *us*, which is no conflict."""


@dataclass
class _Change:
    field: SyncField
    before: str
    after: str


@dataclass
class _Work:
    """What a run did in NetSuite, to be committed."""

    customer_id: str
    created: bool
    written: list[SyncField] = field(default_factory=list)
    unchanged: list[SyncField] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    changes: list[_Change] = field(default_factory=list)
    unverified: list[SyncField] = field(default_factory=list)
    mirror_customer: dict[str, Any] | None = None
    mirror_addresses: list[mapping.AddressValues] = field(default_factory=list)
    mirror_contacts: list[mapping.ContactValues] = field(default_factory=list)


class SyncExecutor:
    """Runs sync rows. ``reveal_federal_id(application_id)`` is
    :meth:`bot.applications.service.ApplicationService.reveal_federal_id`; ``digest`` is
    :meth:`bot.federal_id.FederalIdCipher.digest`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: NetSuiteClient,
        *,
        reveal_federal_id: Callable[[int], str],
        digest: Digest,
        options: SyncOptions,
        observer: SyncObserver | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        outbox_lease: timedelta | None = None,
    ) -> None:
        """With ``outbox_lease``, each final outcome also owes the team a line in Slack: an outbox row,
        written in the outcome's transaction and held by this executor for that long; the observer
        receives it on the view (``view.owed``) and delivers it."""
        self.outbox_lease = outbox_lease
        self.sessions = sessions
        self.client = client
        self.reveal_federal_id = reveal_federal_id
        self.digest = digest
        self.options = options
        self.observer: SyncObserver = observer or LoggingObserver()
        self.clock = clock
        self.rng = rng or random.Random()

    # ---- the run --------------------------------------------------------------------------------

    def run_sync(self, sync_id: int) -> SyncRequestView | None:
        """Run row ``sync_id`` once if it is due and free; returns its view afterwards, or
        ``None`` when the row was not claimed (someone else has it, not due, not pending)."""
        claim = self._claim(sync_id)
        if claim is None:
            return None
        secrets: list[str] = []
        try:
            work = self._perform(claim, secrets)
        except SyncFailure as exc:
            return self._finish(claim, self._unsuccessful, claim, _redact(str(exc), secrets), retryable=False)
        except NetSuiteError as exc:
            message = _redact(exc.user_message, secrets)
            log.warning("sync.netsuite_error", sync_id=sync_id, status=exc.status, code=exc.code)
            return self._finish(claim, self._unsuccessful, claim, message, retryable=exc.retryable)
        except Exception as exc:
            log.exception("sync.unexpected_error", sync_id=sync_id)
            message = f"Credit Desk hit an unexpected error ({type(exc).__name__})."
            return self._finish(claim, self._unsuccessful, claim, message, retryable=True)
        return self._finish(claim, self._complete, claim, work)

    def _finish(
        self, claim: _Claim, step: Callable[..., SyncRequestView | None], *args: Any, **kwargs: Any
    ) -> SyncRequestView | None:
        """Record the outcome, riding out a database that is briefly away (restarting, failing over):
        what NetSuite did is known only to this run, and the row would otherwise stay ``running``
        until its lease runs out. Safe to repeat: each try is one transaction, fenced by the attempt
        number, so a try whose commit did land makes the next one a no-op."""
        return retry_transient(
            lambda: step(*args, **kwargs),
            seconds=min(FINISH_RETRY_SECONDS, self.options.lease_seconds / 2),
            what=f"sync {claim.sync_id} outcome",
        )

    def _claim(self, sync_id: int) -> _Claim | None:
        now = self.clock()
        with transaction(self.sessions) as session:
            repo = SyncRepository(session)
            if not repo.claim(sync_id, now):
                return None
            row = repo.get(sync_id, fresh=True)
            assert row is not None
            link = repo.get_link(row.link_id)
            app_row = session.get(CreditApplication, row.application_id)
            if link is None or app_row is None:
                raise RuntimeError(f"sync {sync_id} lost its application or link")
            AuditRepository(session).record(
                entity_type="sync",
                entity_id=sync_id,
                action="sync.started",
                actor=WORKER,
                after={"attempt": row.attempts},
                at=now,
            )
            return _Claim(
                sync_id=sync_id,
                attempts=row.attempts,
                max_attempts=row.max_attempts,
                fields=tuple(parse_fields(row.fields)),
                seen=dict(row.seen_values),
                application=to_out(app_row),
                application_status=app_row.status,
                federal_id_digest=app_row.federal_id_digest,
                link_id=link.id,
                mode=link.mode,
                customer_internal_id=link.customer_internal_id,
                external_id=link.external_id,
                terms=repo.terms(),
                previous_intent=frozenset((row.result or {}).get("intent", [])),
            )

    def _perform(self, claim: _Claim, secrets: list[str]) -> _Work:
        if claim.application_status != ApplicationStatus.APPROVED:
            raise SyncFailure(
                f"The application is {claim.application_status}; only approved ones are synced."
            )
        if claim.seen.get(TARGET_KEY) != target_of(claim.mode, claim.customer_internal_id, claim.external_id):
            raise SyncFailure("The application was linked to another customer after this sync was requested.")
        fields = claim.fields
        digest = claim.federal_id_digest
        ein: str | None = None
        if SyncField.FEDERAL_ID in fields:
            ein = self.reveal_federal_id(claim.application.id)
            secrets.extend([ein, digits(ein)])
            digest = self.digest(ein)
        ours = our_side(claim.application, federal_id_digest=digest, style=self.options.company_name_style)

        record = self._read(claim)
        contacts = (
            self._contacts(record.internal_id) if record and SyncField.STATEMENTS_CONTACT in fields else []
        )
        before = side_from_record(record, contacts, self.digest, self.clock())

        work = _Work(customer_id=record.internal_id if record else "", created=record is None)
        to_write: list[SyncField] = []
        for f in fields:
            resumed = f.value in claim.previous_intent  # an earlier attempt died while writing it
            if in_sync(f, ours, before) and not (resumed and f is SyncField.STATEMENTS_CONTACT):
                # (A contact that looks in sync may have been created by the dead attempt but never
                # attached to the customer: that one is written again; the write is idempotent.)
                work.unchanged.append(f)
            elif resumed:
                to_write.append(f)  # NetSuite differs from what the analyst saw because of us: no conflict
            elif fingerprint(f, before, ours) != claim.seen.get(f.value):
                work.conflicts.append(
                    {
                        "field": f.value,
                        "label": f.label,
                        "netsuite_now": display_netsuite(f, before, ours),
                        "ours": display_ours(f, ours),
                    }
                )
            else:
                to_write.append(f)
        if not to_write:
            return self._finish_reading(work, claim, record, ours, before, [])

        self._record_intent(claim, to_write)
        body, replace = self._body(to_write, ours, record, claim, ein)
        customer_id = self._write_customer(claim, record, body, replace)
        work.customer_id = customer_id
        if SyncField.STATEMENTS_CONTACT in to_write:
            self._write_contact(claim, customer_id, ours)
        after = self._read_by_id(customer_id)
        return self._finish_reading(work, claim, after, ours, before, to_write)

    def _record_intent(self, claim: _Claim, to_write: list[SyncField]) -> None:
        """Durably note what this attempt is about to write, before the first write (fenced by attempt)."""
        intent = sorted(claim.previous_intent | {f.value for f in to_write})
        with transaction(self.sessions) as session:
            SyncRepository(session).transition(
                claim.sync_id,
                from_statuses=[St.RUNNING],
                to_status=St.RUNNING,
                values={"result": {"intent": intent}},
                attempts=claim.attempts,
            )

    # ---- reading --------------------------------------------------------------------------------

    def _read(self, claim: _Claim) -> CustomerRecord | None:
        if claim.mode == "existing":
            if claim.customer_internal_id is None:
                raise SyncFailure("The link names no NetSuite customer; link the application again.")
            try:
                return self._read_by_id(str(claim.customer_internal_id))
            except NetSuiteNotFound as exc:
                raise SyncFailure(
                    f"NetSuite customer {claim.customer_internal_id} no longer exists "
                    "(deleted or merged?); link the application again."
                ) from exc
        external_id = self._external_id(claim)
        try:
            raw = self.client.get_customer_by_external_id(external_id)
        except NetSuiteNotFound:
            return None
        return self._record(raw)

    def _read_by_id(self, customer_id: str) -> CustomerRecord:
        return self._record(self.client.get_customer(customer_id))

    def _record(self, raw: dict[str, Any]) -> CustomerRecord:
        try:
            return read_customer(raw, self.options.writes)
        except ValueError as exc:  # e.g. an address book that came back unexpanded or paged
            raise SyncFailure(f"NetSuite's customer record could not be read safely: {exc}") from exc

    def _contacts(self, customer_id: str) -> list[mapping.ContactValues]:
        q = queries.with_id_list(queries.CUSTOMER_CONTACTS, 1)
        return [c for row in run_query(self.client, q, [customer_id]) if (c := mapping.contact(row))]

    def _addresses(self, customer_id: str) -> list[mapping.AddressValues]:
        q = queries.with_id_list(queries.CUSTOMER_ADDRESSES, 1)
        return [mapping.address(row) for row in run_query(self.client, q, [customer_id])]

    def _external_id(self, claim: _Claim) -> str:
        return claim.external_id or external_id_for(
            self.options.external_id_prefix, claim.application.reference
        )

    # ---- writing --------------------------------------------------------------------------------

    def _body(
        self,
        to_write: Sequence[SyncField],
        ours: OurSide,
        record: CustomerRecord | None,
        claim: _Claim,
        ein: str | None,
    ) -> tuple[dict[str, Any], list[str]]:
        body: dict[str, Any] = {}
        replace: list[str] = []
        if SyncField.COMPANY_NAME in to_write:
            body.update(company_name_body(ours.company_name))
        if SyncField.FEDERAL_ID in to_write:
            assert ein is not None
            tax, tax_replace = tax_number_body(ein, self.options.writes, record)
            body.update(tax)
            replace += tax_replace
        if SyncField.CREDIT_TERMS in to_write:
            term_id = self._term_id(ours.terms_name, claim) if ours.terms_name else None
            body.update(terms_body(term_id, ours.credit_limit))
        desired = _desired_addresses(to_write, ours, record)
        if desired:
            existing = list(record.raw_address_lines) if record is not None else []
            body.update(merge_address_book(existing, desired).body())
            replace += list(ADDRESS_BOOK_REPLACE)
        return body, replace

    def _term_id(self, name: str, claim: _Claim) -> str:
        """The mirror's terms first; if it knows no such term (a term added since the last mirror
        run), NetSuite's live list. Never a guess."""
        try:
            return resolve_term(name, claim.terms)
        except TermNotFound:
            live = [(t.id, t.name, t.inactive) for t in self.client.list_terms()]
            try:
                return resolve_term(name, live)
            except TermNotFound as exc:
                raise SyncFailure(str(exc)) from exc

    def _write_customer(
        self, claim: _Claim, record: CustomerRecord | None, body: dict[str, Any], replace: list[str]
    ) -> str:
        if claim.mode == "new":
            external_id = self._external_id(claim)
            if record is None:
                body = {**new_customer_body(external_id, self.options.writes), **body}
            return self.client.upsert_customer_by_external_id(external_id, body, replace)
        assert record is not None
        self.client.update_customer(record.internal_id, body, replace)
        return record.internal_id

    def _write_contact(self, claim: _Claim, customer_id: str, ours: OurSide) -> None:
        contact = ours.contact
        assert contact.name is not None and contact.email is not None
        body = contact_body(contact.name, contact.email, contact.phone, customer_id, self.options.writes)
        wanted = contact.email.strip().casefold()
        match = next(
            (c for c in self._contacts(customer_id) if (c["email"] or "").strip().casefold() == wanted), None
        )
        if match is not None:
            contact_id = str(match["contact_id"])
            self.client.update_contact(contact_id, body)
        else:
            key = external_id_for(self.options.external_id_prefix, claim.application.reference, "-contact")
            contact_id = self.client.upsert_contact_by_external_id(key, body)
        self.client.attach_contact(customer_id, contact_id, self.options.writes.contact_role_id)

    # ---- verifying and the mirror ---------------------------------------------------------------

    def _finish_reading(
        self,
        work: _Work,
        claim: _Claim,
        record: CustomerRecord | None,
        ours: OurSide,
        before: NetSuiteSide,
        written: list[SyncField],
    ) -> _Work:
        if record is None:  # a new customer, and every field in conflict: nothing exists yet
            return work
        contacts = self._contacts(record.internal_id)
        after = side_from_record(record, contacts, self.digest, self.clock())
        for f in written:
            work.changes.append(
                _Change(f, display_netsuite(f, before, ours), display_netsuite(f, after, ours))
            )
            if in_sync(f, ours, after):
                work.written.append(f)
            else:
                work.unverified.append(f)
        addresses = self._addresses(record.internal_id)
        work.mirror_addresses = addresses
        work.mirror_contacts = contacts
        work.mirror_customer = _mirror_customer(record, addresses, self.digest)
        return work

    # ---- finishing ------------------------------------------------------------------------------

    def _complete(self, claim: _Claim, work: _Work) -> SyncRequestView | None:
        now = self.clock()
        url = record_url(self.options.writes, work.customer_id) if work.customer_id else None
        result: dict[str, Any] = {
            "customer_id": work.customer_id or None,
            "url": url,
            "created": work.created and bool(work.written),
            "written": [f.value for f in work.written],
            "unchanged": [f.value for f in work.unchanged],
            "conflicts": work.conflicts,
            "unverified": [f.value for f in work.unverified],
        }
        if work.unverified:
            status = St.FAILED
            error: str | None = (
                "NetSuite did not keep what was written for: "
                + ", ".join(f.label for f in work.unverified)
                + ". Check the record in NetSuite (a workflow or script may change these fields)."
            )
        elif work.conflicts and not work.written:
            status, error = St.CONFLICT, None
        else:
            status, error = St.SUCCEEDED, None
        with transaction(self.sessions) as session:
            repo = SyncRepository(session)
            moved = repo.transition(
                claim.sync_id,
                from_statuses=[St.RUNNING],
                to_status=status.value,
                attempts=claim.attempts,
                values={"result": result, "last_error": error, "completed_at": now},
            )
            if not moved:
                log.warning("sync.lost_claim", sync_id=claim.sync_id, attempt=claim.attempts)
                return None
            audit = AuditRepository(session)
            for change in work.changes:
                audit.record(
                    entity_type="sync",
                    entity_id=claim.sync_id,
                    action="netsuite.field_written",
                    actor=WORKER,
                    before={"field": change.field.value, "netsuite": change.before},
                    after={
                        "field": change.field.value,
                        "netsuite": change.after,
                        "customer_id": work.customer_id,
                    },
                    at=now,
                )
            audit.record(
                entity_type="sync",
                entity_id=claim.sync_id,
                action=f"sync.{status.value}",
                actor=WORKER,
                after=result,
                detail=error,
                at=now,
            )
            if work.customer_id and claim.mode == "new":
                link = session.get(NetSuiteLink, claim.link_id)
                if link is not None and link.customer_internal_id is None:
                    link.customer_internal_id = int(work.customer_id)
            self._update_mirror(session, work, now)
            row = repo.get(claim.sync_id, fresh=True)
            assert row is not None
            view = self._owe(session, request_view(session, row), now)
        self._notify(view)
        return view

    @staticmethod
    def _update_mirror(session: Session, work: _Work, now: datetime) -> None:
        if work.mirror_customer is None:
            return
        customer_id = int(work.customer_id)
        mirror_write.upsert_customers(session, [work.mirror_customer], mirrored_at=now)
        mirror_write.replace_addresses(session, [customer_id], list(work.mirror_addresses))
        mirror_write.replace_contacts(session, [customer_id], list(work.mirror_contacts))

    def _unsuccessful(self, claim: _Claim, message: str, *, retryable: bool) -> SyncRequestView | None:
        now = self.clock()
        again = retryable and claim.attempts < claim.max_attempts
        with transaction(self.sessions) as session:
            repo = SyncRepository(session)
            if again:
                due = now + timedelta(seconds=self.backoff(claim.attempts))
                values: dict[str, Any] = {"next_attempt_at": due, "last_error": message}
                to, action = St.PENDING, "sync.retry_scheduled"
            else:
                values = {"last_error": message, "completed_at": now}
                to, action = St.FAILED, "sync.failed"
            if not repo.transition(
                claim.sync_id,
                from_statuses=[St.RUNNING],
                to_status=to.value,
                attempts=claim.attempts,
                values=values,
            ):
                log.warning("sync.lost_claim", sync_id=claim.sync_id, attempt=claim.attempts)
                return None
            AuditRepository(session).record(
                entity_type="sync",
                entity_id=claim.sync_id,
                action=action,
                actor=WORKER,
                after={
                    "attempt": claim.attempts,
                    "next_attempt_at": values.get("next_attempt_at", now).isoformat(),
                },
                detail=message,
                at=now,
            )
            row = repo.get(claim.sync_id, fresh=True)
            assert row is not None
            view = request_view(session, row)
            if not again:
                view = self._owe(session, view, now)
        if not again:
            self._notify(view)
        return view

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``: exponential, capped, half of it jittered."""
        cap = min(self.options.retry_max_seconds, self.options.retry_base_seconds * 2.0 ** (attempt - 1))
        return cap / 2 + self.rng.uniform(0, cap / 2)

    def reclaim_stale(self, limit: int = 500) -> list[int]:
        """Running rows whose worker died (``started_at`` older than the lease) go back to
        ``pending`` (due now), or to ``failed`` if that was their last attempt. Returns the ids
        made pending, for the reconcile pass to queue."""
        now = self.clock()
        cutoff = now - timedelta(seconds=self.options.lease_seconds)
        returned: list[int] = []
        failed: list[SyncRequestView] = []
        with transaction(self.sessions) as session:
            repo = SyncRepository(session)
            for row in repo.stale_running(cutoff, limit):
                last = row.attempts >= row.max_attempts
                message = "The worker running this sync stopped" + (
                    " during its last attempt." if last else "; it will be tried again."
                )
                values: dict[str, Any] = {"last_error": message}
                values.update({"completed_at": now} if last else {"next_attempt_at": now})
                to = St.FAILED if last else St.PENDING
                if not repo.transition(
                    row.id,
                    from_statuses=[St.RUNNING],
                    to_status=to.value,
                    attempts=row.attempts,
                    values=values,
                ):
                    continue
                AuditRepository(session).record(
                    entity_type="sync",
                    entity_id=row.id,
                    action="sync.failed" if last else "sync.reclaimed",
                    actor=WORKER,
                    before={
                        "status": St.RUNNING.value,
                        "started_at": row.started_at.isoformat() if row.started_at else None,
                    },
                    after={"status": to.value, "attempt": row.attempts},
                    detail=message,
                    at=now,
                )
                if last:
                    session.refresh(row)
                    failed.append(self._owe(session, request_view(session, row), now))
                else:
                    returned.append(row.id)
        for view in failed:
            self._notify(view)
        return returned

    def _owe(self, session: Session, view: SyncRequestView, now: datetime) -> SyncRequestView:
        """Add the outbox row that owes the team this final outcome, in the outcome's transaction."""
        if self.outbox_lease is None:
            return view
        held = OutboxRepository(session).add(
            view.application_id,
            OutboxKind.SYNC_FINISHED,
            {"sync_id": view.id, "status": view.status.value},
            now=now,
            lease=self.outbox_lease,
        )
        return dataclasses.replace(view, owed=held)

    def _notify(self, view: SyncRequestView) -> None:
        handler = {
            St.SUCCEEDED: self.observer.on_succeeded,
            St.CONFLICT: self.observer.on_conflict,
            St.FAILED: self.observer.on_failed,
        }.get(view.status)
        if handler is None:
            return
        try:
            handler(view)
        except Exception:  # the row is final; a failed post must not undo or repeat the write
            log.exception("sync.observer_failed", sync_id=view.id, status=view.status.value)


# ---- helpers --------------------------------------------------------------------------------------


def _desired_addresses(
    to_write: Sequence[SyncField], ours: OurSide, record: CustomerRecord | None
) -> list[DesiredAddress]:
    """Our address lines for the merge. The billing address updates the current default billing
    line in place -- unless that line is also the default shipping address, which a billing
    change must not move; then a billing line of its own is added (or found by label)."""
    desired: list[DesiredAddress] = []
    shipping_labels = (
        {s.label.casefold() for s in ours.shipping} if SyncField.SHIPPING_LOCATIONS in to_write else set()
    )
    if SyncField.BILLING_ADDRESS in to_write:
        current = record.default_billing if record is not None else None
        in_place = current is not None and not current.default_shipping and current.line_id is not None
        label = (current.label if in_place and current and current.label else None) or BILLING_LABEL
        if label.casefold() in shipping_labels:
            label = next(
                c
                for c in (BILLING_LABEL, "Billing address", "Billing (Credit Desk)")
                if c.casefold() not in shipping_labels
            )
        desired.append(
            DesiredAddress(
                key="billing",
                label=label,
                address=address_body(ours.billing),
                default_billing=True,
                line_id=current.line_id if in_place and current else None,
            )
        )
    if SyncField.SHIPPING_LOCATIONS in to_write:
        for n, location in enumerate(ours.shipping):
            desired.append(
                DesiredAddress(
                    key=f"ship:{n}",
                    label=location.label,
                    address=address_body(location.address),
                    default_shipping=n == 0,
                )
            )
    return desired


def _mirror_customer(
    record: CustomerRecord, addresses: Sequence[mapping.AddressValues], digest: Digest
) -> dict[str, Any]:
    """The mirror columns the live record tells us. ``last_modified`` is left alone on purpose:
    the next incremental mirror run then re-reads the whole customer (balances included)."""
    name = record.company_name or record.entity_id
    billing = next((a["address_id"] for a in addresses if a["default_billing"]), None)
    shipping = next((a["address_id"] for a in addresses if a["default_shipping"]), None)
    return {
        "internal_id": int(record.internal_id),
        "entity_id": record.entity_id,
        "external_id": record.external_id,
        "company_name": record.company_name,
        "name_normalized": (normalize_name(name)[:200] or None) if name else None,
        "email": record.email,
        "email_domain": email_domain(record.email) if record.email else None,
        "terms_id": int(record.terms_id)
        if record.terms_id and record.terms_id.lstrip("-").isdigit()
        else None,
        "credit_limit": record.credit_limit,
        "tax_number_digest": digest(record.tax_number) if record.tax_number else None,
        "default_billing_address_id": billing,
        "default_shipping_address_id": shipping,
    }


def _redact(text: str, secrets: Sequence[str]) -> str:
    """Mask any Federal ID NetSuite echoed back (``Invalid Field Value 12-3456789 ...``)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, mask(digits(secret)[-4:]))
    return text
