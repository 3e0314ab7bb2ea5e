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
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from sqlalchemy.orm import Session, sessionmaker

from bot.applications.schemas import MAX_CREDIT_LIMIT, ApplicationOut
from bot.applications.service import to_out
from bot.decisions.policy import Actor, ApprovalPolicy, Role
from storage.db import transaction
from storage.models import ApplicationStatus as S
from storage.models import CreditApplication, Decision
from storage.repositories.applications import ApplicationRepository
from storage.repositories.audit import AuditRepository
from storage.repositories.mirror import TermsRepository
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
class DecisionOutcome:
    outcome: Outcome
    application: ApplicationOut
    decision: DecisionView | None  # the decision made now, or (already_decided) the last one made
    decisions: tuple[DecisionView, ...]  # all decisions, oldest first

    @property
    def recommendation(self) -> DecisionView | None:
        return next((d for d in reversed(self.decisions) if d.kind == "recommend"), None)


def _view(d: Decision) -> DecisionView:
    return DecisionView(d.kind, d.actor, d.terms, d.credit_limit, d.reason, d.decided_at)


def _snapshot(row: CreditApplication) -> dict[str, Any]:
    return {
        "status": row.status,
        "approved_terms": row.approved_terms,
        "approved_credit_limit": None
        if row.approved_credit_limit is None
        else str(row.approved_credit_limit),
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
    ) -> None:
        self.sessions = sessions
        self.policy = policy
        self.default_terms = tuple(default_terms)
        self.clock = clock

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

    # --- deciding --------------------------------------------------------------------------------

    def approve(
        self,
        application_id: int,
        actor: Actor,
        *,
        terms: str,
        credit_limit: str | Decimal,
        note: str | None = None,
    ) -> DecisionOutcome:
        """An analyst's or manager's approval. Above the analyst band, an analyst only recommends."""
        self._require(actor, "approve", application_id, Role.ANALYST, Role.MANAGER)
        limit = parse_credit_limit(credit_limit)
        terms = terms.strip()
        if terms not in self.available_terms():
            raise InvalidDecision("terms", f"{terms!r} is not one of the terms NetSuite knows.")
        note = self._text(note, "note", required=False)
        with self._refusals(actor, application_id), transaction(self.sessions) as session:
            row = self._load(session, application_id)
            self._not_own(actor, row, "approve")
            if row.status == S.SUBMITTED:
                manager_needed = self.policy.needs_manager(limit) and not actor.has(Role.MANAGER)
                target, kind = (
                    (S.AWAITING_MANAGER, "recommend") if manager_needed else (S.APPROVED, "approve")
                )
            elif row.status == S.AWAITING_MANAGER and actor.has(Role.MANAGER):
                self._not_recommender(actor, row)
                target, kind = S.APPROVED, "approve"
            else:
                return self._outcome(row, None, Outcome.ALREADY_DECIDED)
            return self._decide(
                session, row, actor, target, kind, terms=terms, credit_limit=limit, reason=note
            )

    def confirm(self, application_id: int, actor: Actor) -> DecisionOutcome:
        """A manager confirms an analyst's recommendation, with the recommended terms and limit."""
        self._require(actor, "confirm", application_id, Role.MANAGER)
        with self._refusals(actor, application_id), transaction(self.sessions) as session:
            row = self._load(session, application_id)
            self._not_own(actor, row, "approve")
            if row.status != S.AWAITING_MANAGER:
                return self._outcome(row, None, Outcome.ALREADY_DECIDED)
            self._not_recommender(actor, row)
            return self._decide(
                session,
                row,
                actor,
                S.APPROVED,
                "confirm",
                terms=row.approved_terms,
                credit_limit=row.approved_credit_limit,
                reason=None,
            )

    def reject(self, application_id: int, actor: Actor, *, reason: str) -> DecisionOutcome:
        """Reject with a reason. Once a manager's word is needed, only a manager rejects."""
        self._require(actor, "reject", application_id, Role.ANALYST, Role.MANAGER)
        text = self._text(reason, "reason", required=True)
        with self._refusals(actor, application_id), transaction(self.sessions) as session:
            row = self._load(session, application_id)
            if row.status == S.AWAITING_MANAGER and not actor.has(Role.MANAGER):
                raise _Refused("reject", "Only a manager can reject an approval that awaits a manager.")
            if row.status not in (S.SUBMITTED, S.AWAITING_MANAGER):
                return self._outcome(row, None, Outcome.ALREADY_DECIDED)
            return self._decide(
                session,
                row,
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
        row: CreditApplication,
        actor: Actor,
        target: S,
        kind: str,
        *,
        terms: str | None,
        credit_limit: Decimal | None,
        reason: str | None,
        keep_terms: bool = True,
    ) -> DecisionOutcome:
        before = _snapshot(row)
        now = self.clock()
        values: dict[str, Any] = (
            {"approved_terms": terms, "approved_credit_limit": credit_limit} if keep_terms else {}
        )
        moved = ApplicationRepository(session).transition(
            row.id, from_status=row.status, to_status=target.value, values=values, at=now
        )
        if not moved:
            session.refresh(row)
            return self._outcome(row, None, Outcome.ALREADY_DECIDED)
        decision = Decision(
            application_id=row.id,
            kind=kind,
            actor=actor.user_id,
            terms=terms,
            credit_limit=credit_limit,
            reason=reason,
            decided_at=now,
        )
        session.add(decision)
        session.flush()
        # Reload only the columns the conditional UPDATE changed (not the row's collections).
        session.refresh(row, ["status", "version", "updated_at", "approved_terms", "approved_credit_limit"])
        AuditRepository(session).record(
            entity_type="application",
            entity_id=row.id,
            action=f"application.{kind}",
            actor=actor.user_id,
            before=before,
            after=_snapshot(row),
            detail=reason,
            at=now,
        )
        return self._outcome(row, decision, Outcome(target.value))

    def _outcome(
        self, row: CreditApplication, made: Decision | None, outcome: Outcome | None
    ) -> DecisionOutcome:
        rows = list(row.decisions)
        if made is not None and made.id not in {d.id for d in rows}:
            rows.append(made)
        decisions = tuple(_view(d) for d in rows)
        chosen = _view(made) if made is not None else (decisions[-1] if decisions else None)
        return DecisionOutcome(outcome or Outcome(row.status), to_out(row), chosen, decisions)

    @contextmanager
    def _refusals(self, actor: Actor, application_id: int) -> Iterator[None]:
        try:
            yield
        except _Refused as refused:
            self._refuse(actor, refused.action, application_id, refused.why)

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
    def _not_own(actor: Actor, row: CreditApplication, action: str) -> None:
        if row.applicant_slack_user_id and row.applicant_slack_user_id == actor.user_id:
            raise _Refused(action, "You submitted this application, so someone else has to decide on it.")

    @staticmethod
    def _not_recommender(actor: Actor, row: CreditApplication) -> None:
        rec = next((d for d in reversed(row.decisions) if d.kind == "recommend"), None)
        if rec is not None and rec.actor == actor.user_id:
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
