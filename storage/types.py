"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect
from sqlalchemy.types import TypeDecorator

MONEY_SCALE = 2
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both databases.

    SQLite keeps no zone, so SQLAlchemy hands back naive values there; this type refuses naive
    input (a naive datetime is a bug: whose local time?) and attaches UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """An exact decimal amount stored as integer minor units (cents) on both databases.

    SQLite has no exact decimal type (NUMERIC is stored as a float there), so we keep integers.
    More precision than two places is refused rather than rounded away.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        amount = Decimal(value)
        if amount != amount.quantize(_QUANTUM):
            raise ValueError(f"{amount} has more than {MONEY_SCALE} decimal places")
        return int(amount.scaleb(MONEY_SCALE))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-MONEY_SCALE).quantize(_QUANTUM)


def utcnow() -> datetime:
    return datetime.now(UTC)
