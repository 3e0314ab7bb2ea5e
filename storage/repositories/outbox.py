"""The outbox: messages owed about applications, held by one deliverer at a time.

A row is written in the transaction of the change it reports, already held by the process that made the
change (`add`), which delivers it at once. Anyone may take a row whose `due_at` has passed (`take`): its
holder died or gave up for a while. `due_at` set by a holder is also its token: `finish` and `retry_at` only
act while the row is still the caller's, so a holder that was overtaken changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from storage.models import OutboxMessage

OUTBOX_LEASE = timedelta(minutes=3)
"""How long a deliverer holds a row before another may take it over. It must outlast one delivery's calls
(`bot.notifications.LEASE_MARGIN`); a setting (`OUTBOX_LEASE_SECONDS`)."""

_OUTBOX = cast(Table, OutboxMessage.__table__)
_C = _OUTBOX.c
_PENDING = _C.done_at.is_(None)

_INSERT = insert(_OUTBOX)
_NEXT = (
    select(_C.id, _C.kind, _C.payload, _C.created_at, _C.due_at, _C.attempts, _C.error)
    .where(_C.application_id == bindparam("application_id"), _PENDING)
    .order_by(_C.id)
    .limit(1)
)
_TAKE = (
    update(_OUTBOX)
    .where(_C.id == bindparam("row_id"), _PENDING, _C.due_at <= bindparam("now"))
    .values(due_at=bindparam("token"), attempts=_C.attempts + 1, error=None)
)
_RELEASE = (
    update(_OUTBOX)
    .where(_C.id == bindparam("row_id"), _PENDING, _C.due_at == bindparam("token"))
    .values(due_at=bindparam("retry_at"), attempts=_C.attempts + bindparam("count"), error=bindparam("error"))
)
_FINISH = (
    update(_OUTBOX)
    .where(_C.id == bindparam("row_id"), _PENDING, _C.due_at == bindparam("token"))
    .values(done_at=bindparam("now"), error=bindparam("error"))
)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Held:
    """An outbox row the caller holds until `token` (its lease's end)."""

    id: int
    application_id: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    token: datetime
    attempts: int  # deliveries started, this one included
    taken_over: bool  # True if an earlier holder's lease ran out (it may have delivered part of it)


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, application_id: int, kind: str, payload: dict[str, Any], *, now: datetime, lease: timedelta
    ) -> Held:
        """A new row, held by the caller for `lease`. One prebuilt INSERT: decisions write it while they hold
        SQLite's write lock."""
        token = now + lease
        result = self.session.execute(
            _INSERT,
            {
                "application_id": application_id,
                "kind": kind,
                "payload": payload,
                "created_at": now,
                "due_at": token,
                "attempts": 1,
            },
        )
        row_id = int(result.inserted_primary_key[0])  # type: ignore[attr-defined]
        return Held(row_id, application_id, kind, payload, now, token, 1, False)

    def next_pending(self, application_id: int) -> tuple[int, datetime] | None:
        """(id, due_at) of the application's oldest row not yet delivered."""
        row = self.session.execute(_NEXT, {"application_id": application_id}).one_or_none()
        return None if row is None else (int(row[0]), row[4])

    def take(self, application_id: int, *, now: datetime, lease: timedelta) -> Held | None:
        """Hold the application's oldest undelivered row if it is due (nobody holds it, or its holder's lease
        ran out). None if there is none or someone else holds it: rows are delivered in order."""
        row = self.session.execute(_NEXT, {"application_id": application_id}).one_or_none()
        if row is None or cast(datetime, row[4]) > now:
            return None
        row_id, kind, payload, created_at, _, attempts, error = cast(
            tuple[int, str, dict[str, Any], datetime, datetime, int, str | None], tuple(row)
        )
        token = now + lease
        taken = self.session.execute(_TAKE, {"row_id": row_id, "now": now, "token": token})
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        # A holder that lets go says why (`retry_at` always sets `error`, taking clears it); a row held before
        # and let go without a word was abandoned: its holder died, perhaps after delivering part of it.
        taken_over = attempts > 0 and error is None
        return Held(int(row_id), application_id, kind, payload, created_at, token, attempts + 1, taken_over)

    def finish(self, held: Held, *, now: datetime, error: str | None = None) -> bool:
        """Delivered (or given up, with `error`). False if the caller no longer held the row."""
        result = self.session.execute(
            _FINISH, {"row_id": held.id, "token": held.token, "now": now, "error": error}
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def retry_at(self, held: Held, when: datetime, *, error: str, count: bool = True) -> bool:
        """Let go of the row until `when`. With `count=False` this delivery does not count as an attempt (it
        waited for something else, such as the application's first message)."""
        result = self.session.execute(
            _RELEASE,
            {
                "row_id": held.id,
                "token": held.token,
                "retry_at": when,
                "count": 0 if count else -1,
                "error": error,
            },
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def wake(self, application_id: int, *, now: datetime) -> int:
        """Make the application's rows that wait for a retry due at once (not those someone holds: a row that
        was let go always says why, in `error`)."""
        result = self.session.execute(
            update(_OUTBOX)
            .where(_C.application_id == application_id, _PENDING, _C.error.is_not(None), _C.due_at > now)
            .values(due_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def due_applications(self, *, now: datetime, limit: int = 100) -> list[int]:
        """Applications with a row that is due: its holder's lease ran out, or its retry time came."""
        stmt = (
            select(_C.application_id)
            .where(_PENDING, _C.due_at <= now)
            .group_by(_C.application_id)
            .order_by(func.min(_C.id))
            .limit(limit)
        )
        return [int(row[0]) for row in self.session.execute(stmt)]

    def pending_count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(_OUTBOX).where(_PENDING)) or 0)

    def backlog(self, *, now: datetime) -> tuple[int, float]:
        """(rows not yet delivered, seconds the oldest of them has waited): one indexed read."""
        row = self.session.execute(
            select(func.count(), func.min(_C.created_at)).select_from(_OUTBOX).where(_PENDING)
        ).one()
        count, oldest = cast(tuple[int | None, datetime | None], tuple(row))
        waited = 0.0 if oldest is None else max(0.0, (now - _aware(oldest)).total_seconds())
        return int(count or 0), waited

    def prune(self, *, done_before: datetime) -> int:
        """Delete rows delivered before `done_before`; the audit table keeps the history."""
        result = self.session.execute(
            delete(_OUTBOX).where(_C.done_at.is_not(None), _C.done_at < done_before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
