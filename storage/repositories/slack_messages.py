"""The Slack messages we posted about applications: claimed before posting, so a retry never posts twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import CreditApplication, SlackMessage


class SlackMessageRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, application_id: int, purpose: str) -> SlackMessage | None:
        return self.session.scalar(
            select(SlackMessage).where(
                SlackMessage.application_id == application_id, SlackMessage.purpose == purpose
            )
        )

    def claim(
        self, application_id: int, purpose: str, channel: str, *, now: datetime, stale_after: timedelta
    ) -> bool:
        """True if the caller should post: nobody has, and nobody is posting (a claim older than
        `stale_after` without a ts is taken over: its poster died)."""
        existing = self.get(application_id, purpose)
        if existing is None:
            try:
                with self.session.begin_nested():
                    self.session.add(
                        SlackMessage(
                            application_id=application_id, purpose=purpose, channel=channel, created_at=now
                        )
                    )
            except IntegrityError:
                return False
            return True
        if existing.ts is not None:
            return False
        taken = self.session.execute(
            update(SlackMessage)
            .where(
                SlackMessage.id == existing.id,
                SlackMessage.ts.is_(None),
                SlackMessage.created_at < now - stale_after,
            )
            .values(created_at=now, channel=channel)
        )
        return bool(taken.rowcount)  # type: ignore[attr-defined]

    def posted(self, application_id: int, purpose: str, *, channel: str, ts: str, now: datetime) -> None:
        self.session.execute(
            update(SlackMessage)
            .where(SlackMessage.application_id == application_id, SlackMessage.purpose == purpose)
            .values(channel=channel, ts=ts, posted_at=now)
        )

    def release(self, application_id: int, purpose: str) -> None:
        """Give up a claim whose post failed, so that the next pass tries again at once."""
        self.session.execute(
            update(SlackMessage)
            .where(
                SlackMessage.application_id == application_id,
                SlackMessage.purpose == purpose,
                SlackMessage.ts.is_(None),
            )
            .values(created_at=datetime(2000, 1, 1).astimezone())
        )

    def for_application(self, application_id: int) -> list[SlackMessage]:
        stmt = (
            select(SlackMessage)
            .where(SlackMessage.application_id == application_id, SlackMessage.ts.is_not(None))
            .order_by(SlackMessage.id)
        )
        return list(self.session.scalars(stmt))

    def unannounced(self, *, created_before: datetime, limit: int = 100) -> list[int]:
        """Applications with no analysts' message yet (the post was lost, or never queued)."""
        posted = exists().where(
            SlackMessage.application_id == CreditApplication.id,
            SlackMessage.purpose == "application",
            SlackMessage.ts.is_not(None),
        )
        stmt = (
            select(CreditApplication.id)
            .where(~posted, CreditApplication.created_at < created_before)
            .order_by(CreditApplication.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def due_reminders(self, *, cutoff: datetime, limit: int = 100) -> list[SlackMessage]:
        """Manager requests still waiting whose last post or reminder is older than `cutoff`."""
        stmt = (
            select(SlackMessage)
            .join(CreditApplication, CreditApplication.id == SlackMessage.application_id)
            .where(
                CreditApplication.status == "awaiting_manager",
                SlackMessage.purpose.startswith("manager_"),
                SlackMessage.ts.is_not(None),
                func.coalesce(SlackMessage.reminded_at, SlackMessage.posted_at) < cutoff,
            )
            .order_by(SlackMessage.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def mark_reminded(self, message_id: int, *, previous: datetime | None, now: datetime) -> bool:
        """Conditional: of two workers reminding at once, one wins."""
        condition = (
            SlackMessage.reminded_at.is_(None) if previous is None else SlackMessage.reminded_at == previous
        )
        result = self.session.execute(
            update(SlackMessage)
            .where(and_(SlackMessage.id == message_id, or_(condition)))
            .values(reminded_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
