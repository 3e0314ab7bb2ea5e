"""NetSuite links and sync requests: the durable rows every NetSuite write comes from.

Every state change of a sync request is one conditional UPDATE (``WHERE status IN (...)``), so two
workers, a worker and a person, or a double click can never both move the same row: exactly one
sees ``True``. A worker's own changes are also fenced by the attempt number it claimed with, so a
worker that was presumed dead (its row handed to another) cannot overwrite the newer attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.models import NetSuiteLink, NsTerm, SyncRequest, SyncStatus

OPEN_STATUSES = (SyncStatus.PENDING, SyncStatus.RUNNING, SyncStatus.FAILED, SyncStatus.CONFLICT)


class SyncRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # ---- links ----------------------------------------------------------------------------------

    def link_for(self, application_id: int) -> NetSuiteLink | None:
        return self.session.scalar(select(NetSuiteLink).where(NetSuiteLink.application_id == application_id))

    def get_link(self, link_id: int) -> NetSuiteLink | None:
        return self.session.get(NetSuiteLink, link_id)

    def add_link(self, link: NetSuiteLink) -> NetSuiteLink:
        self.session.add(link)
        self.session.flush()
        return link

    # ---- requests -------------------------------------------------------------------------------

    def get(self, sync_id: int, *, fresh: bool = False) -> SyncRequest | None:
        return self.session.get(SyncRequest, sync_id, populate_existing=fresh)

    def get_by_key(self, idempotency_key: str) -> SyncRequest | None:
        return self.session.scalar(select(SyncRequest).where(SyncRequest.idempotency_key == idempotency_key))

    def add(self, row: SyncRequest) -> SyncRequest:
        self.session.add(row)
        self.session.flush()
        return row

    def for_application(self, application_id: int) -> list[SyncRequest]:
        stmt = (
            select(SyncRequest).where(SyncRequest.application_id == application_id).order_by(SyncRequest.id)
        )
        return list(self.session.scalars(stmt))

    def count_for_application(self, application_id: int, status: str) -> int:
        stmt = (
            select(func.count())
            .select_from(SyncRequest)
            .where(SyncRequest.application_id == application_id, SyncRequest.status == status)
        )
        return int(self.session.scalar(stmt) or 0)

    def list_by_status(self, statuses: Iterable[str], limit: int) -> list[SyncRequest]:
        stmt = (
            select(SyncRequest)
            .where(SyncRequest.status.in_([str(s) for s in statuses]))
            .order_by(SyncRequest.next_attempt_at, SyncRequest.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def due_ids(self, now: datetime, limit: int) -> list[int]:
        """Pending rows whose time has come, oldest due first."""
        stmt = (
            select(SyncRequest.id)
            .where(SyncRequest.status == SyncStatus.PENDING.value, SyncRequest.next_attempt_at <= now)
            .order_by(SyncRequest.next_attempt_at, SyncRequest.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def stale_running(self, started_before: datetime, limit: int) -> list[SyncRequest]:
        stmt = (
            select(SyncRequest)
            .where(SyncRequest.status == SyncStatus.RUNNING.value, SyncRequest.started_at < started_before)
            .order_by(SyncRequest.started_at, SyncRequest.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    # ---- transitions ----------------------------------------------------------------------------

    def transition(
        self,
        sync_id: int,
        *,
        from_statuses: Sequence[str],
        to_status: str,
        values: dict[str, Any] | None = None,
        attempts: int | None = None,
    ) -> bool:
        """Move the row to ``to_status`` if it is in one of ``from_statuses`` (and, given
        ``attempts``, still on that attempt). True for exactly one of any racing callers."""
        conditions = [SyncRequest.id == sync_id, SyncRequest.status.in_([str(s) for s in from_statuses])]
        if attempts is not None:
            conditions.append(SyncRequest.attempts == attempts)
        stmt = (
            update(SyncRequest)
            .where(*conditions)
            .values(status=to_status, **(values or {}))
            .execution_options(synchronize_session=False)
        )
        moved: bool = self.session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]
        return moved

    def claim(self, sync_id: int, now: datetime) -> bool:
        """pending -> running for a due row, counting the attempt. False: someone else has it,
        it is not due, or it is no longer pending."""
        stmt = (
            update(SyncRequest)
            .where(
                SyncRequest.id == sync_id,
                SyncRequest.status == SyncStatus.PENDING.value,
                SyncRequest.next_attempt_at <= now,
            )
            .values(
                status=SyncStatus.RUNNING.value,
                attempts=SyncRequest.attempts + 1,
                started_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        claimed: bool = self.session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]
        return claimed

    # ---- mirror look-ups ------------------------------------------------------------------------

    def terms(self) -> list[tuple[str, str, bool]]:
        """The mirrored terms as ``(id, name, inactive)``."""
        rows = self.session.execute(select(NsTerm.internal_id, NsTerm.name, NsTerm.is_inactive))
        return [(str(i), name, bool(inactive)) for i, name, inactive in rows]

    def term_names(self) -> dict[int, str]:
        return {int(i): name for i, name in self.session.execute(select(NsTerm.internal_id, NsTerm.name))}
