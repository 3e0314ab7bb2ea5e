"""The company's sync schedule: "instant" or "daily at HH:MM <zone>", across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from bot.sync.schedule import SyncSchedule

CHICAGO = "America/Chicago"


def test_parse_instant_and_daily_forms() -> None:
    assert SyncSchedule.parse("instant").instant
    assert SyncSchedule.parse("  Instant ") == SyncSchedule()
    daily = SyncSchedule.parse("daily at 18:30 America/Chicago")
    assert (daily.at, daily.zone) == (time(18, 30), CHICAGO)
    assert SyncSchedule.parse("daily 7:05 in Europe/Berlin") == SyncSchedule(time(7, 5), "Europe/Berlin")
    assert SyncSchedule.parse("daily at 23:59") == SyncSchedule(time(23, 59), "UTC")
    assert daily.describe() == "daily at 18:30 America/Chicago"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hourly", "not understood"),
        ("daily at 24:00 UTC", "not a time of day"),
        ("daily at 12:61 UTC", "not a time of day"),
        ("daily at 12:00 Mars/Olympus", "unknown time zone"),
        ("", "not understood"),
    ],
)
def test_parse_refuses_bad_schedules(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyncSchedule.parse(text)


@freeze_time("2026-06-10 15:00:00+00:00")
def test_instant_is_now() -> None:
    now = datetime.now(UTC)
    assert SyncSchedule().next_slot(now) == now


@freeze_time("2026-06-10 15:00:00+00:00")  # 10:00 CDT
def test_daily_slot_later_today_and_tomorrow() -> None:
    now = datetime.now(UTC)
    later = SyncSchedule(time(18, 30), CHICAGO).next_slot(now)
    assert later == datetime(2026, 6, 10, 23, 30, tzinfo=UTC)  # 18:30 CDT = UTC-5
    earlier = SyncSchedule(time(9, 0), CHICAGO).next_slot(now)
    assert earlier == datetime(2026, 6, 11, 14, 0, tzinfo=UTC)  # tomorrow 09:00 CDT


@freeze_time("2026-06-10 23:30:00+00:00")
def test_a_click_exactly_at_the_slot_runs_now() -> None:
    now = datetime.now(UTC)
    assert SyncSchedule(time(18, 30), CHICAGO).next_slot(now) == now


@freeze_time("2026-03-07 20:00:00+00:00")  # Saturday before the spring-forward night (CST, UTC-6)
def test_daily_slot_keeps_local_time_across_spring_forward() -> None:
    schedule = SyncSchedule(time(18, 30), CHICAGO)
    first = schedule.next_slot(datetime.now(UTC))
    assert first == datetime(2026, 3, 8, 0, 30, tzinfo=UTC)  # Sat 18:30 CST
    second = schedule.next_slot(first.replace(minute=31))
    assert second == datetime(2026, 3, 8, 23, 30, tzinfo=UTC)  # Sun 18:30 CDT: 23 hours later


@freeze_time("2026-03-08 06:00:00+00:00")  # 00:00 CST on the night clocks jump 02:00 -> 03:00
def test_a_slot_inside_the_gap_runs_after_it() -> None:
    slot = SyncSchedule(time(2, 30), CHICAGO).next_slot(datetime.now(UTC))
    assert slot == datetime(2026, 3, 8, 8, 30, tzinfo=UTC)  # 03:30 CDT, once
    assert slot.astimezone(ZoneInfo(CHICAGO)).hour == 3


@freeze_time("2026-11-01 05:00:00+00:00")  # 00:00 CDT; 01:30 happens twice tonight
def test_a_repeated_wall_time_runs_once_at_the_first() -> None:
    schedule = SyncSchedule(time(1, 30), CHICAGO)
    first = schedule.next_slot(datetime.now(UTC))
    assert first == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 CDT
    after = schedule.next_slot(datetime(2026, 11, 1, 6, 31, tzinfo=UTC))
    assert after == datetime(2026, 11, 2, 7, 30, tzinfo=UTC)  # not 01:30 CST the same night


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        SyncSchedule(time(1, 0)).next_slot(datetime(2026, 1, 1))  # noqa: DTZ001
