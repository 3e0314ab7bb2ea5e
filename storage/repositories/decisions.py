"""Decisions on credit applications, read and written with Core statements.

A decision runs inside the database's write lock (on SQLite, one writer at a time for the whole app), so this
repository reads only the columns a decision needs and writes without loading ORM objects: every statement and
every object built while the lock is held makes the next person's click wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.orm import Session

from storage.models import CreditApplication, Decision, NsTerm

_APP = cast(Table, CreditApplication.__table__)
_DECISIONS = cast(Table, Decision.__table__)
_TERMS = cast(Table, NsTerm.__table__)

# Statements built once (building one costs more than SQLite takes to run it).
_SUBJECT = select(
    _APP.c.id,
    _APP.c.status,
    _APP.c.applicant_slack_user_id,
    _APP.c.approved_terms,
    _APP.c.approved_credit_limit,
    select(_DECISIONS.c.actor)
    .where(_DECISIONS.c.application_id == _APP.c.id, _DECISIONS.c.kind == "recommend")
    .order_by(_DECISIONS.c.id.desc())
    .limit(1)
    .scalar_subquery(),
    select(func.count())
    .select_from(_TERMS)
    .where(_TERMS.c.name == bindparam("terms"), _TERMS.c.is_inactive.is_(False))
    .scalar_subquery(),
    select(func.count()).select_from(_TERMS).where(_TERMS.c.is_inactive.is_(False)).scalar_subquery(),
).where(_APP.c.id == bindparam("id"))
_INSERT = insert(_DECISIONS)
_LATEST = (
    select(
        _DECISIONS.c.kind,
        _DECISIONS.c.actor,
        _DECISIONS.c.terms,
        _DECISIONS.c.credit_limit,
        _DECISIONS.c.reason,
        _DECISIONS.c.decided_at,
    )
    .where(_DECISIONS.c.application_id == bindparam("id"))
    .order_by(_DECISIONS.c.id.desc())
    .limit(1)
)


@dataclass(frozen=True)
class DecisionSubject:
    """What deciding on an application needs to know of it."""

    id: int
    status: str
    applicant_slack_user_id: str | None
    approved_terms: str | None
    approved_credit_limit: Decimal | None
    last_recommender: str | None  # who recommended the approval that awaits a manager, if anyone
    terms_in_mirror: int  # active NetSuite terms with the name asked about (0 if none was asked about)
    mirror_terms: int  # active NetSuite terms in the mirror (0: the configured list applies)


@dataclass(frozen=True)
class DecisionRow:
    kind: str
    actor: str
    terms: str | None
    credit_limit: Decimal | None
    reason: str | None
    decided_at: datetime


class DecisionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def subject(self, application_id: int, *, terms: str | None = None) -> DecisionSubject | None:
        """The application's state, its latest recommender and, if `terms` is given, whether the mirror
        knows those terms: one statement."""
        row = self.session.execute(_SUBJECT, {"id": application_id, "terms": terms}).one_or_none()
        if row is None:
            return None
        return DecisionSubject(
            row[0], row[1], row[2], row[3], row[4], row[5], int(row[6] or 0), int(row[7] or 0)
        )

    def add(
        self,
        *,
        application_id: int,
        kind: str,
        actor: str,
        terms: str | None,
        credit_limit: Decimal | None,
        reason: str | None,
        at: datetime,
    ) -> DecisionRow:
        self.session.execute(
            _INSERT,
            {
                "application_id": application_id,
                "kind": kind,
                "actor": actor,
                "terms": terms,
                "credit_limit": credit_limit,
                "reason": reason,
                "decided_at": at,
            },
        )
        return DecisionRow(kind, actor, terms, credit_limit, reason, at)

    def latest(self, application_id: int) -> DecisionRow | None:
        row = self.session.execute(_LATEST, {"id": application_id}).one_or_none()
        return None if row is None else DecisionRow(row[0], row[1], row[2], row[3], row[4], row[5])
