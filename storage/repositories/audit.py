"""Audit events: who did what to which record, when, with before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from storage.models import AuditEvent
from storage.types import utcnow

_INSERT = insert(cast(Table, AuditEvent.__table__))


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        *,
        entity_type: str,
        entity_id: str | int,
        action: str,
        actor: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """One Core INSERT, sent at once: callers never read the event back, and a prebuilt statement keeps
        paths that hold SQLite's write lock (decisions) short."""
        self.session.execute(
            _INSERT,
            {
                "entity_type": entity_type,
                "entity_id": str(entity_id),
                "action": action,
                "actor": actor,
                "before": before,
                "after": after,
                "detail": detail,
                "occurred_at": at or utcnow(),
            },
        )

    def for_entity(self, entity_type: str, entity_id: str | int) -> list[AuditEvent]:
        stmt = (
            select(AuditEvent)
            .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == str(entity_id))
            .order_by(AuditEvent.id)
        )
        return list(self.session.scalars(stmt))
