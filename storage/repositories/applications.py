"""Credit applications: insert, look up, and move through states with a conditional UPDATE."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from storage.models import CreditApplication
from storage.types import utcnow

_APP = cast(Table, CreditApplication.__table__)
_TRANSITION = (
    update(_APP)
    .where(_APP.c.id == bindparam("app_id"), _APP.c.status == bindparam("from_status"))
    .values(status=bindparam("to_status"), version=_APP.c.version + 1, updated_at=bindparam("at"))
)
_TRANSITION_WITH_TERMS = _TRANSITION.values(
    approved_terms=bindparam("new_terms"), approved_credit_limit=bindparam("new_limit")
)
# Built once: these run on every App Home open and `/credit pending`, where building the statement cost more
# than running it.
_QUEUE_ROWS = (
    select(
        _APP.c.id,
        _APP.c.status,
        _APP.c.business_legal_name,
        _APP.c.business_dba,
        _APP.c.requested_terms,
        _APP.c.requested_credit_limit,
        _APP.c.currency,
        _APP.c.approved_terms,
        _APP.c.approved_credit_limit,
        _APP.c.created_at,
    )
    .where(_APP.c.status == bindparam("status"))
    .order_by(_APP.c.created_at, _APP.c.id)
    .limit(bindparam("limit"))
)
_COUNT_BY_STATUSES = (
    select(_APP.c.status, func.count())
    .where(_APP.c.status.in_(bindparam("statuses", expanding=True)))
    .group_by(_APP.c.status)
)


class ApplicationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, application: CreditApplication) -> CreditApplication:
        self.session.add(application)
        self.session.flush()
        return application

    def get(self, application_id: int) -> CreditApplication | None:
        return self.session.get(CreditApplication, application_id)

    def get_by_reference(self, reference: str) -> CreditApplication | None:
        return self.session.scalar(select(CreditApplication).where(CreditApplication.reference == reference))

    def list_by_status(self, statuses: Iterable[str], limit: int = 100) -> list[CreditApplication]:
        stmt = (
            select(CreditApplication)
            .where(CreditApplication.status.in_(list(statuses)))
            .order_by(CreditApplication.created_at, CreditApplication.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def queue_rows(self, status: str, limit: int) -> list[Row[Any]]:
        """The oldest `limit` applications in `status`, as the columns a queue line shows."""
        return list(self.session.execute(_QUEUE_ROWS, {"status": status, "limit": limit}))

    def count_by_status(self, status: str) -> int:
        stmt = select(func.count()).select_from(CreditApplication).where(CreditApplication.status == status)
        return int(self.session.scalar(stmt) or 0)

    def count_by_statuses(self, statuses: Iterable[str]) -> dict[str, int]:
        rows = self.session.execute(_COUNT_BY_STATUSES, {"statuses": list(statuses)})
        return {str(row[0]): int(row[1]) for row in rows}

    def search(self, query: str, limit: int = 10) -> list[CreditApplication]:
        """By reference or by part of the legal name or DBA (case-insensitive), newest first."""
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = (
            select(CreditApplication)
            .where(
                or_(
                    CreditApplication.reference == query,
                    CreditApplication.business_legal_name.ilike(pattern, escape="\\"),
                    CreditApplication.business_dba.ilike(pattern, escape="\\"),
                )
            )
            .order_by(CreditApplication.created_at.desc(), CreditApplication.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def transition(
        self,
        application_id: int,
        *,
        from_status: str,
        to_status: str,
        at: datetime | None = None,
        terms: tuple[str | None, Decimal | None] | None = None,
    ) -> bool:
        """Move one application from `from_status` to `to_status`, only if it is still there; with `terms`,
        set the approved terms and credit limit too.

        One conditional UPDATE: of two racing callers exactly one sees True, whatever the database. The
        statements are built once: decisions run this while they hold SQLite's write lock.
        """
        params: dict[str, Any] = {
            "app_id": application_id,
            "from_status": from_status,
            "to_status": to_status,
            "at": at or utcnow(),
        }
        if terms is None:
            result = self.session.execute(_TRANSITION, params)
        else:
            params |= {"new_terms": terms[0], "new_limit": terms[1]}
            result = self.session.execute(_TRANSITION_WITH_TERMS, params)
        moved: bool = result.rowcount == 1  # type: ignore[attr-defined]
        if moved and self.session.identity_map:
            # The row changed under the ORM: whatever this session holds of it is stale (reloaded on use).
            for obj in self.session.identity_map.values():
                if isinstance(obj, CreditApplication) and obj.id == application_id:
                    self.session.expire(obj)
        return moved
