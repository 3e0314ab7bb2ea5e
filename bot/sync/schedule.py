"""When a "Sync" (not "Sync now") runs: at once, or at the company's daily slot.

The schedule is a setting (``SYNC_SCHEDULE``): ``instant``, or ``daily at HH:MM <time zone>``
(``daily at 18:30 America/Chicago``; ``daily 18:30``, ``... in America/Chicago`` and a missing
zone, meaning UTC, are accepted too). Slots are computed in the zone's wall-clock time with
:mod:`zoneinfo`, so they stay at HH:MM local across daylight-saving changes:

* a wall time that does not exist that day (inside the spring-forward gap) runs at the same
  distance after the gap, e.g. 02:30 becomes 03:30 on the day clocks jump from 02:00 to 03:00;
* a wall time that happens twice (fall back) runs once, at its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAILY = re.compile(
    r"^daily(?:\s+at)?\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?:\s+(?:in\s+)?(?P<zone>\S+))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SyncSchedule:
    """``at is None``: instant. Otherwise a daily slot at ``at`` in ``zone``."""

    at: time | None = None
    zone: str = "UTC"

    def __post_init__(self) -> None:
        if self.at is not None and (self.at.tzinfo is not None or self.at.second or self.at.microsecond):
            raise ValueError("a daily slot is a naive HH:MM time")
        _zone(self.zone)

    @property
    def instant(self) -> bool:
        return self.at is None

    @classmethod
    def parse(cls, text: str) -> SyncSchedule:
        """``instant`` or ``daily at HH:MM <zone>``; anything else raises ValueError saying so."""
        value = " ".join(text.split())
        if value.lower() == "instant":
            return cls()
        match = _DAILY.fullmatch(value)
        if match is None:
            raise ValueError(
                f"sync schedule {text!r} is not understood: use 'instant' or "
                "'daily at HH:MM <time zone>', e.g. 'daily at 18:30 America/Chicago'"
            )
        hour, minute = int(match["hour"]), int(match["minute"])
        if hour > 23 or minute > 59:
            raise ValueError(f"sync schedule {text!r}: {hour:02d}:{minute:02d} is not a time of day")
        return cls(time(hour, minute), match["zone"] or "UTC")

    def describe(self) -> str:
        if self.at is None:
            return "instant"
        return f"daily at {self.at:%H:%M} {self.zone}"

    def next_slot(self, now: datetime) -> datetime:
        """The first run time at or after ``now`` (aware), in UTC. Instant: ``now`` itself."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be an aware datetime")
        if self.at is None:
            return now.astimezone(UTC)
        zone = _zone(self.zone)
        day = now.astimezone(zone).date()
        for offset in range(3):  # today, or tomorrow; a third day only guards odd zone data
            slot = _wall_clock(day + timedelta(days=offset), self.at, zone)
            if slot >= now:
                return slot
        raise AssertionError("unreachable: a daily slot exists within three days")


def _wall_clock(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``day at`` in ``zone`` as UTC: a time in a DST gap moves forward by the gap; in a fold,
    the first occurrence (``fold=0``) is taken."""
    local = datetime.combine(day, at, tzinfo=zone)
    return local.astimezone(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like America/Chicago)") from None
