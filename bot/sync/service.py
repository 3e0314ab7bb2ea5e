"""Linking applications to NetSuite customers and requesting, cancelling and retrying syncs.

The Slack side calls this service; the worker (:mod:`bot.sync.executor`) performs the writes.

Rules kept here, each in one transaction with its audit record:

* **Link**: one link per application, to a new customer (created by external id) or an existing
  one from the mirror. Approved and rejected applications may link; relinking is allowed until a
  sync succeeded, and cancels the syncs still open for the old target.
* **Request**: only approved applications sync. The durable ``sync_requests`` row is committed in
  the same transaction as the audit record of the click; its idempotency key is derived from the
  application, the link's target, the fields and what the analyst saw, so a double click (or
  Slack's retry of it) gives one row. "Sync now" is due at once; "Sync" at the company schedule.
* **Cancel / Retry / Sync now**: conditional transitions, so a person and a worker never both move
  a row; a retry gets a fresh attempt budget while the attempt counter (the worker's fencing
  token) keeps counting up.

Refusals are audited (``authorization.refused``) and raised as :class:`NotAllowed` with a sentence
for the person; bad input raises :class:`InvalidSyncRequest` naming the form field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.applications.schemas import ApplicationOut
from bot.applications.service import to_out
from bot.decisions.policy import Actor, Role
from bot.decisions.service import NotAllowed, NotFound
from bot.sync import SyncOptions
from bot.sync.compare import (
    NO_CUSTOMER,
    ComparisonRow,
    NetSuiteSide,
    compare,
    has_value,
    our_side,
    side_from_mirror,
)
from bot.sync.fields import SyncField, parse_fields
from netsuite.writes import external_id_for
from storage.db import transaction
from storage.models import (
    ApplicationStatus,
    CreditApplication,
    NetSuiteLink,
    NsCustomer,
    OutboxKind,
    SyncRequest,
)
from storage.models import SyncStatus as St
from storage.repositories.applications import ApplicationRepository
from storage.repositories.audit import AuditRepository
from storage.repositories.outbox import Held, OutboxRepository
from storage.repositories.sync import OPEN_STATUSES, SyncRepository
from storage.types import utcnow

log = structlog.get_logger(__name__)

__all__ = [
    "TARGET_KEY",
    "Comparison",
    "InvalidSyncRequest",
    "LinkView",
    "NotAllowed",
    "NotFound",
    "SyncRequestView",
    "SyncService",
]

TARGET_KEY = "@target"
"""Reserved key of ``seen_values``: the customer the analyst compared against (``existing:647``
or ``new:<external id>``). A relink changes the target; a request for the old one must not run."""

LINK_MODES = ("new", "existing")


class InvalidSyncRequest(ValueError):
    """Bad input for a link or sync request; ``field`` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _Refused(Exception):
    """Raised inside a transaction; audited and re-raised as NotAllowed once it rolled back."""

    def __init__(self, action: str, why: str) -> None:
        super().__init__(why)
        self.action = action
        self.why = why


@dataclass(frozen=True)
class LinkView:
    application_id: int
    mode: str  # new, existing
    customer_internal_id: int | None
    external_id: str | None
    linked_by: str
    linked_at: datetime

    @property
    def target(self) -> str:
        return target_of(self.mode, self.customer_internal_id, self.external_id)


@dataclass(frozen=True)
class Comparison:
    """The pick modal's content: the application, its link, and one row per mapping."""

    application: ApplicationOut
    link: LinkView
    rows: list[ComparisonRow]
    as_of: datetime | None  # when the mirror last read the customer (None: new customer)

    def seen_values(self, fields: Iterable[SyncField | str]) -> dict[str, str]:
        """The fingerprints to send with a request for ``fields`` (what this comparison showed)."""
        chosen = {SyncField(f) for f in fields}
        seen = {row.field.value: row.seen for row in self.rows if row.field in chosen}
        seen[TARGET_KEY] = self.link.target
        return seen

    @property
    def default_fields(self) -> list[SyncField]:
        return [row.field for row in self.rows if row.default_ticked]


@dataclass(frozen=True)
class SyncRequestView:
    """A sync request as people see it (Slack thread, ``/credit syncs``)."""

    id: int
    application_id: int
    reference: str
    business_name: str
    link_mode: str
    customer_internal_id: int | None
    external_id: str | None
    fields: tuple[SyncField, ...]
    status: St
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    last_error: str | None
    result: dict[str, Any] | None
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    created: bool = False  # request(): False when a repeat returned the existing row
    owed: Held | None = None  # the outbox row telling the team about this (held by the caller), if any

    @property
    def record_url(self) -> str | None:
        return str(self.result["url"]) if self.result and self.result.get("url") else None


def target_of(mode: str, customer_internal_id: int | None, external_id: str | None) -> str:
    return f"existing:{customer_internal_id}" if mode == "existing" else f"new:{external_id}"


def link_view(link: NetSuiteLink) -> LinkView:
    return LinkView(
        link.application_id,
        link.mode,
        link.customer_internal_id,
        link.external_id,
        link.linked_by,
        link.linked_at,
    )


def request_view(session: Session, row: SyncRequest, *, created: bool = False) -> SyncRequestView:
    """The view of ``row`` (reads its application and link in ``session``)."""
    app = session.get(CreditApplication, row.application_id)
    link = session.get(NetSuiteLink, row.link_id)
    return SyncRequestView(
        id=row.id,
        application_id=row.application_id,
        reference=app.reference if app is not None else "",
        business_name=app.business_legal_name if app is not None else "",
        link_mode=link.mode if link is not None else "",
        customer_internal_id=link.customer_internal_id if link is not None else None,
        external_id=link.external_id if link is not None else None,
        fields=tuple(parse_fields(row.fields)),
        status=St(row.status),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        result=row.result,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        created=created,
    )


def idempotency_key(
    application_id: int, target: str, fields: Iterable[SyncField], seen: Mapping[str, str], generation: int
) -> str:
    """Equal clicks, equal keys. ``generation`` (syncs of the application cancelled so far) lets
    a person ask again for exactly what they cancelled."""
    canonical = json.dumps(
        {
            "application": application_id,
            "target": target,
            "fields": sorted(f.value for f in fields),
            "seen": dict(sorted(seen.items())),
            "generation": generation,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return "sync:" + hashlib.sha256(canonical.encode()).hexdigest()


class SyncService:
    """Link, compare, request, cancel, retry. ``enqueue(sync_id)`` hands a due row to the worker
    (after the commit; if it fails the reconcile pass finds the row)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        options: SyncOptions,
        *,
        enqueue: Callable[[int], Any] | None = None,
        clock: Callable[[], datetime] = utcnow,
        outbox_lease: timedelta | None = None,
    ) -> None:
        """With ``outbox_lease``, each new request also owes the team a line in Slack: an outbox row,
        written with it and held by the caller for that long (see ``bot.notifications``)."""
        self.outbox_lease = outbox_lease
        self.sessions = sessions
        self.options = options
        self.enqueue = enqueue
        self.clock = clock

    # ---- linking --------------------------------------------------------------------------------

    def link(
        self,
        application_id: int,
        actor: Actor,
        mode: str = "new",
        customer_internal_id: int | None = None,
    ) -> LinkView:
        """Link the application to a new customer or to an existing (mirrored) one."""
        self._require(actor, "link", application_id)
        if mode not in LINK_MODES:
            raise InvalidSyncRequest("mode", "Choose New customer or Existing customer.")
        if mode == "existing" and (customer_internal_id is None or customer_internal_id <= 0):
            raise InvalidSyncRequest("customer", "Choose the NetSuite customer to link to.")
        if mode == "new" and customer_internal_id is not None:
            raise InvalidSyncRequest("customer", "A new customer has no NetSuite id yet.")
        now = self.clock()
        with self._refusals(actor, application_id), transaction(self.sessions) as session:
            app = self._load(session, application_id)
            if app.status not in (ApplicationStatus.APPROVED, ApplicationStatus.REJECTED):
                raise _Refused("link", "Decide on the application before linking it to NetSuite.")
            if mode == "existing" and session.get(NsCustomer, customer_internal_id) is None:
                raise InvalidSyncRequest(
                    "customer",
                    f"NetSuite customer {customer_internal_id} is not in Credit Desk's copy of NetSuite "
                    "yet; refresh the mirror or choose another customer.",
                )
            external_id = (
                external_id_for(self.options.external_id_prefix, app.reference) if mode == "new" else None
            )
            repo = SyncRepository(session)
            audit = AuditRepository(session)
            link = repo.link_for(application_id)
            if link is None:
                link = repo.add_link(
                    NetSuiteLink(
                        application_id=application_id,
                        mode=mode,
                        customer_internal_id=customer_internal_id,
                        external_id=external_id,
                        linked_by=actor.user_id,
                        linked_at=now,
                    )
                )
                audit.record(
                    entity_type="application",
                    entity_id=application_id,
                    action="netsuite.linked",
                    actor=actor.user_id,
                    after=_link_snapshot(link),
                    at=now,
                )
                return link_view(link)
            if link.mode == mode and link.customer_internal_id == customer_internal_id:
                return link_view(link)  # the same choice again: nothing changes
            self._relink_allowed(repo, link)
            before = _link_snapshot(link)
            self._cancel_open(session, application_id, actor, now, "the application was linked elsewhere")
            link.mode = mode
            link.customer_internal_id = customer_internal_id
            link.external_id = external_id
            link.linked_by = actor.user_id
            link.linked_at = now
            session.flush()
            audit.record(
                entity_type="application",
                entity_id=application_id,
                action="netsuite.relinked",
                actor=actor.user_id,
                before=before,
                after=_link_snapshot(link),
                at=now,
            )
            return link_view(link)

    def get_link(self, application_id: int) -> LinkView | None:
        with transaction(self.sessions, readonly=True) as session:
            link = SyncRepository(session).link_for(application_id)
            return link_view(link) if link is not None else None

    @staticmethod
    def _relink_allowed(repo: SyncRepository, link: NetSuiteLink) -> None:
        syncs = repo.for_application(link.application_id)
        done = next((s for s in syncs if s.status == St.SUCCEEDED), None)
        if done is not None:
            where = f"customer {link.customer_internal_id}" if link.customer_internal_id else "NetSuite"
            raise _Refused(
                "relink",
                f"This application was already written to {where} (sync #{done.id}), "
                "so it stays linked there.",
            )
        if any(s.status == St.RUNNING for s in syncs):
            raise _Refused("relink", "A sync of this application is running; relink when it has finished.")

    def _cancel_open(
        self, session: Session, application_id: int, actor: Actor, now: datetime, why: str
    ) -> None:
        repo = SyncRepository(session)
        for row in repo.for_application(application_id):
            if row.status in (St.PENDING, St.FAILED, St.CONFLICT) and repo.transition(
                row.id,
                from_statuses=[row.status],
                to_status=St.CANCELLED,
                values={"completed_at": now, "last_error": f"Cancelled: {why}."},
            ):
                AuditRepository(session).record(
                    entity_type="sync",
                    entity_id=row.id,
                    action="sync.cancelled",
                    actor=actor.user_id,
                    before={"status": row.status},
                    after={"status": St.CANCELLED.value},
                    detail=why,
                    at=now,
                )

    # ---- comparing ------------------------------------------------------------------------------

    def comparison(self, application_id: int) -> Comparison:
        """Our values beside the mirror's for the linked customer, one row per mapping."""
        with transaction(self.sessions, readonly=True) as session:
            app = self._load(session, application_id)
            repo = SyncRepository(session)
            link = repo.link_for(application_id)
            if link is None:
                raise InvalidSyncRequest("link", "Link the application to a NetSuite customer first.")
            side = self._mirror_side(session, repo, link)
            ours = our_side(
                to_out(app),
                federal_id_digest=app.federal_id_digest,
                style=self.options.company_name_style,
            )
            return Comparison(to_out(app), link_view(link), compare(ours, side), side.as_of)

    def _mirror_side(self, session: Session, repo: SyncRepository, link: NetSuiteLink) -> NetSuiteSide:
        if link.customer_internal_id is None:
            return NO_CUSTOMER
        customer = session.get(NsCustomer, link.customer_internal_id)
        if customer is None:
            raise NotFound(
                f"NetSuite customer {link.customer_internal_id} is no longer in Credit Desk's copy of "
                "NetSuite (deleted or merged?); link the application again."
            )
        return side_from_mirror(customer, repo.term_names())

    # ---- requesting -----------------------------------------------------------------------------

    def request(
        self,
        application_id: int,
        actor: Actor,
        fields: Iterable[SyncField | str],
        seen_values: Mapping[str, str],
        *,
        now: bool = True,
    ) -> SyncRequestView:
        """Commit a sync request with the audit record of the click; due now or at the schedule.

        ``seen_values`` are :meth:`Comparison.seen_values` of the comparison the analyst looked at.
        A repeat of the same request returns the first row (``created=False``).
        """
        self._require(actor, "sync", application_id)
        try:
            chosen = parse_fields(str(f) for f in fields)
        except ValueError as exc:
            raise InvalidSyncRequest("fields", str(exc)) from exc
        if not chosen:
            raise InvalidSyncRequest("fields", "Tick at least one field to write to NetSuite.")
        seen = self._seen(chosen, seen_values)
        moment = self.clock()
        due = moment if now else self.options.schedule.next_slot(moment)
        try:
            view = self._store_request(application_id, actor, chosen, seen, moment, due)
        except IntegrityError:  # the same click raced us to the unique key: theirs is ours
            key = self._key_for(application_id, chosen, seen)
            with transaction(self.sessions, readonly=True) as session:
                existing = SyncRepository(session).get_by_key(key) if key else None
                if existing is None:
                    raise
                return request_view(session, existing)
        if view.created and view.status is St.PENDING and view.next_attempt_at <= moment:
            self._hand_over(view.id)
        return view

    @staticmethod
    def _seen(chosen: list[SyncField], seen_values: Mapping[str, str]) -> dict[str, str]:
        missing = [f.label for f in chosen if not seen_values.get(f.value)]
        if missing or not seen_values.get(TARGET_KEY):
            raise InvalidSyncRequest(
                "seen_values",
                "The request does not say what NetSuite showed for: "
                + (", ".join(missing) or "the customer")
                + ". Open the comparison again and sync from there.",
            )
        seen = {f.value: str(seen_values[f.value]) for f in chosen}
        seen[TARGET_KEY] = str(seen_values[TARGET_KEY])
        return seen

    def _store_request(
        self,
        application_id: int,
        actor: Actor,
        chosen: list[SyncField],
        seen: dict[str, str],
        moment: datetime,
        due: datetime,
    ) -> SyncRequestView:
        with self._refusals(actor, application_id), transaction(self.sessions) as session:
            app = self._load(session, application_id)
            if app.status != ApplicationStatus.APPROVED:
                raise _Refused(
                    "sync", f"Only approved applications are written to NetSuite; this one is {app.status}."
                )
            repo = SyncRepository(session)
            link = repo.link_for(application_id)
            if link is None:
                raise _Refused("sync", "Link the application to a NetSuite customer first.")
            target = target_of(link.mode, link.customer_internal_id, link.external_id)
            if seen[TARGET_KEY] != target:
                raise InvalidSyncRequest(
                    "seen_values",
                    "The application was linked to another customer since this comparison was made; "
                    "open the comparison again.",
                )
            ours = our_side(
                to_out(app), federal_id_digest=app.federal_id_digest, style=self.options.company_name_style
            )
            empty = [f.label for f in chosen if not has_value(f, ours)]
            if empty:
                raise InvalidSyncRequest("fields", "Nothing to write for: " + ", ".join(empty) + ".")
            if (
                link.customer_internal_id is None
                and link.mode == "new"
                and SyncField.COMPANY_NAME not in chosen
            ):
                raise InvalidSyncRequest(
                    "fields",
                    f"A new NetSuite customer needs its Company Name: tick {SyncField.COMPANY_NAME.label}.",
                )
            generation = repo.count_for_application(application_id, St.CANCELLED)
            key = idempotency_key(application_id, target, chosen, seen, generation)
            existing = repo.get_by_key(key)
            if existing is not None:
                return request_view(session, existing)
            row = repo.add(
                SyncRequest(
                    idempotency_key=key,
                    application_id=application_id,
                    link_id=link.id,
                    fields=[f.value for f in chosen],
                    seen_values=seen,
                    status=St.PENDING.value,
                    attempts=0,
                    max_attempts=self.options.max_attempts,
                    next_attempt_at=due,
                    requested_by=actor.user_id,
                    requested_at=moment,
                )
            )
            AuditRepository(session).record(
                entity_type="sync",
                entity_id=row.id,
                action="sync.requested",
                actor=actor.user_id,
                after={
                    "application_id": application_id,
                    "target": target,
                    "fields": row.fields,
                    "seen_values": seen,
                    "due": due.isoformat(),
                    "schedule": "now" if due <= moment else self.options.schedule.describe(),
                },
                at=moment,
            )
            view = request_view(session, row, created=True)
            if self.outbox_lease is not None:
                held = OutboxRepository(session).add(
                    application_id,
                    OutboxKind.SYNC_REQUESTED,
                    {"sync_id": row.id, "scheduled": due > moment},
                    now=moment,
                    lease=self.outbox_lease,
                )
                view = dataclasses.replace(view, owed=held)
            return view

    def _key_for(self, application_id: int, chosen: list[SyncField], seen: dict[str, str]) -> str | None:
        with transaction(self.sessions, readonly=True) as session:
            repo = SyncRepository(session)
            link = repo.link_for(application_id)
            if link is None:
                return None
            target = target_of(link.mode, link.customer_internal_id, link.external_id)
            generation = repo.count_for_application(application_id, St.CANCELLED)
            return idempotency_key(application_id, target, chosen, seen, generation)

    # ---- managing requests ----------------------------------------------------------------------

    def get(self, sync_id: int) -> SyncRequestView:
        with transaction(self.sessions, readonly=True) as session:
            return request_view(session, self._load_sync(session, sync_id))

    def pending_and_failed(self, limit: int = 50) -> list[SyncRequestView]:
        """Open syncs (pending, running, failed, conflict), soonest due first."""
        with transaction(self.sessions, readonly=True) as session:
            rows = SyncRepository(session).list_by_status(OPEN_STATUSES, limit)
            return [request_view(session, row) for row in rows]

    def cancel(self, sync_id: int, actor: Actor) -> SyncRequestView:
        """Cancel a sync that has not been written: pending, failed or in conflict."""
        self._require(actor, "cancel", self._application_of(sync_id))
        now = self.clock()
        with self._sync_refusals(actor, sync_id), transaction(self.sessions) as session:
            row = self._load_sync(session, sync_id)
            if row.status == St.CANCELLED:
                return request_view(session, row)
            if row.status == St.RUNNING:
                raise _Refused(
                    "cancel", "This sync is being written to NetSuite right now; it cannot be cancelled."
                )
            if row.status == St.SUCCEEDED:
                raise _Refused(
                    "cancel", "This sync was already written to NetSuite; there is nothing to cancel."
                )
            self._move(
                session,
                row,
                actor,
                St.CANCELLED,
                {"completed_at": now, "last_error": f"Cancelled by {actor.user_id}."},
                now,
            )
            return request_view(session, row)

    def retry(self, sync_id: int, actor: Actor) -> SyncRequestView:
        """Run a failed or cancelled sync again now, with a fresh attempt budget."""
        view = self._retry(sync_id, actor)
        self._hand_over(view.id)
        return view

    def sync_now(self, sync_id: int, actor: Actor) -> SyncRequestView:
        """A scheduled sync runs now; a failed or cancelled one is retried."""
        self._require(actor, "sync", self._application_of(sync_id))
        now = self.clock()
        with self._sync_refusals(actor, sync_id), transaction(self.sessions) as session:
            row = self._load_sync(session, sync_id)
            if row.status == St.PENDING:
                if row.next_attempt_at > now:
                    self._move(
                        session, row, actor, St.PENDING, {"next_attempt_at": now}, now, action="sync.now"
                    )
                view = request_view(session, row)
            elif row.status in (St.FAILED, St.CANCELLED):
                view = None
            else:
                raise _Refused("sync", _state_sentence(row))
        if view is None:
            return self.retry(sync_id, actor)
        self._hand_over(view.id)
        return view

    def _retry(self, sync_id: int, actor: Actor) -> SyncRequestView:
        self._require(actor, "retry", self._application_of(sync_id))
        now = self.clock()
        with self._sync_refusals(actor, sync_id), transaction(self.sessions) as session:
            row = self._load_sync(session, sync_id)
            if row.status == St.CONFLICT:
                raise _Refused(
                    "retry",
                    "NetSuite changed since this sync was requested. Review the new values and sync again.",
                )
            if row.status not in (St.FAILED, St.CANCELLED):
                raise _Refused("retry", _state_sentence(row))
            app = self._load(session, row.application_id)
            if app.status != ApplicationStatus.APPROVED:
                raise _Refused("retry", f"The application is {app.status}; only approved ones are synced.")
            link = SyncRepository(session).get_link(row.link_id)
            target = target_of(link.mode, link.customer_internal_id, link.external_id) if link else None
            if target != row.seen_values.get(TARGET_KEY):
                raise _Refused(
                    "retry",
                    "The application is now linked to another customer; open the comparison and sync again.",
                )
            values = {
                "next_attempt_at": now,
                "max_attempts": row.attempts + self.options.max_attempts,
                "last_error": None,
                "completed_at": None,
            }
            self._move(session, row, actor, St.PENDING, values, now, action="sync.retried")
            return request_view(session, row)

    def _move(
        self,
        session: Session,
        row: SyncRequest,
        actor: Actor,
        to: St,
        values: dict[str, Any],
        now: datetime,
        *,
        action: str | None = None,
    ) -> None:
        before = {"status": row.status, "next_attempt_at": row.next_attempt_at.isoformat()}
        repo = SyncRepository(session)
        if not repo.transition(row.id, from_statuses=[row.status], to_status=to.value, values=values):
            session.refresh(row)
            raise _Refused("sync", "This sync changed meanwhile: " + _state_sentence(row))
        session.refresh(row)
        AuditRepository(session).record(
            entity_type="sync",
            entity_id=row.id,
            action=action or f"sync.{to.value}",
            actor=actor.user_id,
            before=before,
            after={"status": row.status, "next_attempt_at": row.next_attempt_at.isoformat()},
            at=now,
        )

    def _hand_over(self, sync_id: int) -> None:
        if self.enqueue is None:
            return
        try:
            self.enqueue(sync_id)
        except Exception:  # Redis away: the row is committed, the reconcile pass will queue it
            log.warning("sync.enqueue_failed", sync_id=sync_id, exc_info=True)

    # ---- refusals and loading -------------------------------------------------------------------

    def record_refusal(self, actor: Actor, action: str, entity: tuple[str, int], why: str) -> None:
        with transaction(self.sessions) as session:
            AuditRepository(session).record(
                entity_type=entity[0],
                entity_id=entity[1],
                action="authorization.refused",
                actor=actor.user_id,
                after={"attempted": action, "roles": sorted(actor.roles)},
                detail=why,
                at=self.clock(),
            )

    def _require(self, actor: Actor, action: str, application_id: int) -> None:
        if not actor.has(Role.ANALYST, Role.MANAGER):
            why = "Only credit analysts and managers can work with NetSuite syncs."
            self.record_refusal(actor, action, ("application", application_id), why)
            raise NotAllowed(why)

    @contextmanager
    def _refusals(self, actor: Actor, application_id: int) -> Iterator[None]:
        try:
            yield
        except _Refused as refused:
            self._refuse(actor, refused.action, ("application", application_id), refused.why)

    @contextmanager
    def _sync_refusals(self, actor: Actor, sync_id: int) -> Iterator[None]:
        try:
            yield
        except _Refused as refused:
            self._refuse(actor, refused.action, ("sync", sync_id), refused.why)

    def _refuse(self, actor: Actor, action: str, entity: tuple[str, int], why: str) -> NoReturn:
        self.record_refusal(actor, action, entity, why)
        raise NotAllowed(why)

    @staticmethod
    def _load(session: Session, application_id: int) -> CreditApplication:
        row = ApplicationRepository(session).get(application_id)
        if row is None:
            raise NotFound(f"There is no application {application_id}.")
        return row

    def _application_of(self, sync_id: int) -> int:
        with transaction(self.sessions, readonly=True) as session:
            return self._load_sync(session, sync_id).application_id

    @staticmethod
    def _load_sync(session: Session, sync_id: int) -> SyncRequest:
        row = SyncRepository(session).get(sync_id)
        if row is None:
            raise NotFound(f"There is no sync #{sync_id}.")
        return row


def _link_snapshot(link: NetSuiteLink) -> dict[str, Any]:
    return {
        "mode": link.mode,
        "customer_internal_id": link.customer_internal_id,
        "external_id": link.external_id,
        "linked_by": link.linked_by,
    }


def _state_sentence(row: SyncRequest) -> str:
    return {
        St.PENDING: "This sync is already waiting to run.",
        St.RUNNING: "This sync is being written to NetSuite right now.",
        St.SUCCEEDED: "This sync was already written to NetSuite.",
        St.FAILED: "This sync failed; use Retry.",
        St.CONFLICT: "NetSuite changed since this sync was requested; review and sync again.",
        St.CANCELLED: "This sync was cancelled.",
    }[St(row.status)]
