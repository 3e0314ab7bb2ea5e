"""Deciding on credit applications: approve, recommend to a manager, confirm, reject — exactly once.

Each decision is one transaction: a conditional status transition (so double clicks, Slack retries and two
analysts at once give one decision), a `decisions` row and an audit event with actor, time, before and after.
A caller that loses the race gets `already_decided` with who decided and when.
Refusals (wrong role, self-approval) are audited too, and raised as `NotAllowed` with a plain explanation.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from sqlalchemy.orm import Session, sessionmaker

from bot.applications.schemas import MAX_CREDIT_LIMIT, ApplicationOut
from bot.applications.service import to_out
from bot.decisions.policy import Actor, ApprovalPolicy, Role
from storage.db import transaction
from storage.models import ApplicationStatus as S
from storage.models import CreditApplication, Decision, OutboxKind
from storage.repositories.applications import ApplicationRepository
from storage.repositories.audit import AuditRepository
from storage.repositories.decisions import DecisionRepository, DecisionRow, DecisionSubject
from storage.repositories.mirror import TermsRepository
from storage.repositories.outbox import OUTBOX_LEASE, Held, OutboxRepository
from storage.types import utcnow

MAX_REASON = 2000


class Outcome(enum.StrEnum):
    SUBMITTED = "submitted"
    WITHDRAWN = "withdrawn"
    APPROVED = "approved"
    AWAITING_MANAGER = "awaiting_manager"
    REJECTED = "rejected"
    ALREADY_DECIDED = "already_decided"


class NotAllowed(Exception):
    """The actor may not do this. The message is written for them."""


class InvalidDecision(ValueError):
    """Bad input for a decision; `field` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(LookupError):
    pass


class _Refused(Exception):
    """Raised inside a transaction; recorded and re-raised as NotAllowed once the transaction is over."""

    def __init__(self, action: str, why: str) -> None:
        super().__init__(why)
        self.action = action
        self.why = why


@dataclass(frozen=True)
class DecisionView:
    kind: str  # approve, recommend, confirm, reject
    actor: str
    terms: str | None
    credit_limit: Decimal | None
    reason: str | None
    decided_at: datetime


@dataclass(frozen=True)
class Decided:
    """What a decision call did: enough to answer the person at once. `DecisionService.view` loads the rest
    (the application and every decision) for the messages that follow, outside the write transaction."""

    outcome: Outcome
    application_id: int
    status: str  # the application's status after the call
    decision: DecisionView | None  # the decision made now, or (already_decided) the last one made
    owed: Held | None = None  # the outbox row of the decision made now, held by the caller


def decision_payload(outcome: Outcome, decision: DecisionView) -> dict[str, Any]:
    """A decision as its outbox row keeps it (JSON)."""
    return {
        "outcome": outcome.value,
        "kind": decision.kind,
        "actor": decision.actor,
        "terms": decision.terms,
        "credit_limit": None if decision.credit_limit is None else str(decision.credit_limit),
        "reason": decision.reason,
        "decided_at": decision.decided_at.isoformat(),
    }


def decision_from_payload(payload: dict[str, Any]) -> tuple[Outcome, DecisionView]:
    limit = payload.get("credit_limit")
    return Outcome(payload["outcome"]), DecisionView(
        kind=payload["kind"],
        actor=payload["actor"],
        terms=payload.get("terms"),
        credit_limit=None if limit is None else Decimal(limit),
        reason=payload.get("reason"),
        decided_at=datetime.fromisoformat(payload["decided_at"]),
    )


@dataclass(frozen=True)
class DecisionOutcome:
    outcome: Outcome
    application: ApplicationOut
    decision: DecisionView | None  # the decision made now, or (already_decided) the last one made
    decisions: tuple[DecisionView, ...]  # all decisions, oldest first

    @property
    def recommendation(self) -> DecisionView | None:
        return next((d for d in reversed(self.decisions) if d.kind == "recommend"), None)


def _view(d: Decision | DecisionRow) -> DecisionView:
    return DecisionView(d.kind, d.actor, d.terms, d.credit_limit, d.reason, d.decided_at)


def _snapshot(status: str, terms: str | None, limit: Decimal | None) -> dict[str, Any]:
    return {
        "status": status,
        "approved_terms": terms,
        "approved_credit_limit": None if limit is None else str(limit),
    }


def parse_credit_limit(raw: str | Decimal) -> Decimal:
    """A credit limit typed by a person: `50000`, `50,000.00`, `$50,000`."""
    text = str(raw).strip().replace(",", "").removeprefix("$").strip()
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidDecision("credit_limit", "Enter an amount, like 50000 or 50,000.00.") from exc
    if not value.is_finite() or value <= 0:
        raise InvalidDecision("credit_limit", "The credit limit must be more than zero.")
    if value > MAX_CREDIT_LIMIT:
        raise InvalidDecision("credit_limit", f"The credit limit must be at most {MAX_CREDIT_LIMIT:,}.")
    if value != value.quantize(Decimal("0.01")):
        raise InvalidDecision("credit_limit", "Use at most two decimal places.")
    return value.quantize(Decimal("0.01"))


class DecisionService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        policy: ApprovalPolicy,
        default_terms: Sequence[str],
        clock: Callable[[], datetime] = utcnow,
        *,
        outbox_lease: timedelta | None = OUTBOX_LEASE,
    ) -> None:
        self.sessions = sessions
        self.policy = policy
        self.default_terms = tuple(default_terms)
        self.clock = clock
        self.outbox_lease = outbox_lease

    # --- reading ---------------------------------------------------------------------------------

    def available_terms(self) -> list[str]:
        """Terms an approval may set: NetSuite's active terms from the mirror, else the configured list."""
        with transaction(self.sessions, readonly=True) as session:
            names = TermsRepository(session).active_names()
        return names or list(self.default_terms)

    def get(self, application_id: int) -> DecisionOutcome:
        with transaction(self.sessions, readonly=True) as session:
            row = self._load(session, application_id)
            return self._outcome(row, None, None)

    def view(self, decided: Decided) -> DecisionOutcome:
        """The whole picture after a decision call, as it stands now, for the messages that follow it."""
        with transaction(self.sessions, readonly=True) as session:
            row = self._load(session, decided.application_id)
            return self._outcome(row, decided.decision, decided.outcome)

    # --- deciding --------------------------------------------------------------------------------

    def approve(
        self,
        application_id: int,
        actor: Actor,
        *,
        terms: str,
        credit_limit: str | Decimal,
        note: str | None = None,
    ) -> Decided:
        """An analyst's or manager's approval. Above the analyst band, an analyst only recommends."""
        self._require(actor, "approve", application_id, Role.ANALYST, Role.MANAGER)
        limit = parse_credit_limit(credit_limit)
        terms = terms.strip()
        note = self._text(note, "note", required=False)
        with self._refusals(actor, application_id), transaction(self.sessions) as session:
            subject = self._subject(session, application_id, terms=terms)
            self._check_terms(terms, subject)
            self._not_own(actor, subject, "approve")
            if subject.status == S.SUBMITTED:
                manager_needed = self.policy.needs_manager(limit) and not actor.has(Role.MANAGER)
                target, kind = (
                    (S.AWAITING_MANAGER, "recommend") if manager_needed else (S.APPROVED, "approve")
                )
            elif subject.status == S.AWAITING_MANAGER and actor.has(Role.MANAGER):
                self._not_recommender(actor, subject)
                target, kind = S.APPROVED, "approve"
            else:
                return self._already(session, subject)
            return self._decide(
                session, subject, actor, target, kind, terms=terms, credit_limit=limit, reason=note
            )

    def confirm(self, application_id: int, actor: Actor) -> Decided:
        """A manager confirms an analyst's recommendation, with the recommended terms and limit."""
        self._require(actor, "confirm", application_id, Role.MANAGER)
        with self._refusals(actor, application_id), transaction(self.sessions) as session:
            subject = self._subject(session, application_id)
            self._not_own(actor, subject, "approve")
            if subject.status != S.AWAITING_MANAGER:
                return self._already(session, subject)
            self._not_recommender(actor, subject)
            return self._decide(
                session,
                subject,
                actor,
                S.APPROVED,
                "confirm",
                terms=subject.approved_terms,
                credit_limit=subject.approved_credit_limit,
                reason=None,
            )

    def reject(self, application_id: int, actor: Actor, *, reason: str) -> Decided:
        """Reject with a reason. Once a manager's word is needed, only a manager rejects."""
        self._require(actor, "reject", application_id, Role.ANALYST, Role.MANAGER)
        text = self._text(reason, "reason", required=True)
        with self._refusals(actor, application_id), transaction(self.sessions) as session:
            subject = self._subject(session, application_id)
            if subject.status == S.AWAITING_MANAGER and not actor.has(Role.MANAGER):
                raise _Refused("reject", "Only a manager can reject an approval that awaits a manager.")
            if subject.status not in (S.SUBMITTED, S.AWAITING_MANAGER):
                return self._already(session, subject)
            return self._decide(
                session,
                subject,
                actor,
                S.REJECTED,
                "reject",
                terms=None,
                credit_limit=None,
                reason=text,
                keep_terms=False,
            )

    def record_refusal(self, actor: Actor, action: str, application_id: int | None, why: str) -> None:
        """Audit a refused action (called for refusals decided outside this service, too)."""
        with transaction(self.sessions) as session:
            AuditRepository(session).record(
                entity_type="application" if application_id is not None else "slack",
                entity_id=application_id if application_id is not None else actor.user_id,
                action="authorization.refused",
                actor=actor.user_id,
                after={"attempted": action, "roles": sorted(actor.roles)},
                detail=why,
                at=self.clock(),
            )

    # --- internals -------------------------------------------------------------------------------

    def _decide(
        self,
        session: Session,
        subject: DecisionSubject,
        actor: Actor,
        target: S,
        kind: str,
        *,
        terms: str | None,
        credit_limit: Decimal | None,
        reason: str | None,
        keep_terms: bool = True,
    ) -> Decided:
        """The conditional transition, the decision row, the audit event and the outbox row that owes the team
        the news: five statements in all (with the read of `subject`), because on SQLite every other decision
        waits while they run. The outbox row is held by the caller, who delivers it after the commit."""
        now = self.clock()
        repo = DecisionRepository(session)
        moved = ApplicationRepository(session).transition(
            subject.id,
            from_status=subject.status,
            to_status=target.value,
            at=now,
            terms=(terms, credit_limit) if keep_terms else None,
        )
        if not moved:
            return self._already(session, self._subject(session, subject.id))
        made = repo.add(
            application_id=subject.id,
            kind=kind,
            actor=actor.user_id,
            terms=terms,
            credit_limit=credit_limit,
            reason=reason,
            at=now,
        )
        after_terms, after_limit = (
            (terms, credit_limit) if keep_terms else (subject.approved_terms, subject.approved_credit_limit)
        )
        AuditRepository(session).record(
            entity_type="application",
            entity_id=subject.id,
            action=f"application.{kind}",
            actor=actor.user_id,
            before=_snapshot(subject.status, subject.approved_terms, subject.approved_credit_limit),
            after=_snapshot(target.value, after_terms, after_limit),
            detail=reason,
            at=now,
        )
        view = _view(made)
        outcome = Outcome(target.value)
        owed = (
            OutboxRepository(session).add(
                subject.id,
                OutboxKind.DECISION,
                decision_payload(outcome, view),
                now=now,
                lease=self.outbox_lease,
            )
            if self.outbox_lease is not None  # nobody would deliver it (Slack is not configured)
            else None
        )
        return Decided(outcome, subject.id, target.value, view, owed)

    @staticmethod
    def _already(session: Session, subject: DecisionSubject) -> Decided:
        last = DecisionRepository(session).latest(subject.id)
        return Decided(
            Outcome.ALREADY_DECIDED, subject.id, subject.status, None if last is None else _view(last)
        )

    def _outcome(
        self, row: CreditApplication, made: DecisionView | None, outcome: Outcome | None
    ) -> DecisionOutcome:
        decisions = tuple(_view(d) for d in row.decisions)
        chosen = made if made is not None else (decisions[-1] if decisions else None)
        return DecisionOutcome(outcome or Outcome(row.status), to_out(row), chosen, decisions)

    @contextmanager
    def _refusals(self, actor: Actor, application_id: int) -> Iterator[None]:
        try:
            yield
        except _Refused as refused:
            self._refuse(actor, refused.action, application_id, refused.why)

    def _check_terms(self, terms: str, subject: DecisionSubject) -> None:
        """Terms an approval may set: NetSuite's active terms from the mirror, else the configured list."""
        known = subject.terms_in_mirror > 0 if subject.mirror_terms else terms in self.default_terms
        if not known:
            raise InvalidDecision("terms", f"{terms!r} is not one of the terms NetSuite knows.")

    @staticmethod
    def _subject(session: Session, application_id: int, *, terms: str | None = None) -> DecisionSubject:
        subject = DecisionRepository(session).subject(application_id, terms=terms)
        if subject is None:
            raise NotFound(f"There is no application {application_id}.")
        return subject

    def _load(self, session: Session, application_id: int) -> CreditApplication:
        row = ApplicationRepository(session).get(application_id)
        if row is None:
            raise NotFound(f"There is no application {application_id}.")
        return row

    def _require(self, actor: Actor, action: str, application_id: int, *roles: Role) -> None:
        if not actor.has(*roles):
            names = " or ".join(r.value for r in roles)
            self._refuse(actor, action, application_id, f"Only a credit {names} can {action} applications.")

    @staticmethod
    def _not_own(actor: Actor, subject: DecisionSubject, action: str) -> None:
        if subject.applicant_slack_user_id and subject.applicant_slack_user_id == actor.user_id:
            raise _Refused(action, "You submitted this application, so someone else has to decide on it.")

    @staticmethod
    def _not_recommender(actor: Actor, subject: DecisionSubject) -> None:
        if subject.last_recommender is not None and subject.last_recommender == actor.user_id:
            raise _Refused("confirm", "You recommended this approval; another manager must confirm it.")

    def _refuse(self, actor: Actor, action: str, application_id: int, why: str) -> NoReturn:
        self.record_refusal(actor, action, application_id, why)
        raise NotAllowed(why)

    @staticmethod
    def _text(value: str | None, field: str, *, required: bool) -> str | None:
        text = (value or "").strip()
        if required and not text:
            raise InvalidDecision(field, "Please give a reason.")
        if len(text) > MAX_REASON:
            raise InvalidDecision(field, f"Keep it under {MAX_REASON} characters.")
        return text or None
