"""The outbox: a decision's Slack updates are owed in the database from the decision's own transaction, so a
process that dies after answering Slack loses nothing, and every delivery is made once, in order.

On both databases, against the mock Slack Web API. "Dies" is modelled by making the decision through the
service (which commits it, with its outbox row held by the caller) and never delivering: that is what a web
process SIGKILLed between its answer and its outbox thread leaves behind (the reliability suite does it for
real, `tests/test_reliability.py`).
"""

# ruff: noqa: F811  (the `desk` fixture is imported from test_slack_approvals and named by each test)
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.decisions.service import Decided
from bot.notifications import FIRST_RETRY_DELAY, LINE_EVENT, SlackNotifier
from storage.db import transaction
from storage.models import OutboxMessage
from storage.repositories.outbox import OUTBOX_LEASE, OutboxRepository
from storage.types import utcnow
from tests.test_slack_approvals import (  # noqa: F401
    ANALYST,
    ANALYSTS_CHANNEL,
    MANAGER,
    Desk,
    desk,
)


class Clock:
    """The notifier's and the decision service's clock, moved by hand."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@pytest.fixture
def clock(desk: Desk) -> Iterator[Clock]:
    c = Clock()
    assert desk.container.notifier is not None and desk.container.decisions is not None
    desk.container.notifier.clock = c
    desk.container.decisions.clock = c
    yield c


def notifier(desk: Desk) -> SlackNotifier:
    assert desk.container.notifier is not None
    return desk.container.notifier


def approve(desk: Desk, app_id: int, user: str = ANALYST, limit: str = "25000") -> Decided:
    """A decision committed by a process that then dies: nothing delivers it."""
    assert desk.container.decisions is not None and desk.container.roles is not None
    return desk.container.decisions.approve(
        app_id, desk.container.roles.actor(user), terms="Net 30", credit_limit=limit
    )


def rows(desk: Desk, app_id: int) -> list[OutboxMessage]:
    with transaction(desk.container.sessions) as s:
        found = s.scalars(select(OutboxMessage).where(OutboxMessage.application_id == app_id))
        return sorted(found, key=lambda r: r.id)


def thread_lines(desk: Desk, app_id: int) -> list[str]:
    _, ts = desk.app_message(app_id)
    return [
        str(c.args["text"])
        for c in desk.slack.calls("chat.postMessage")
        if c.ok and c.args.get("thread_ts") == ts
    ]


def updates_of(desk: Desk, app_id: int) -> list[dict[str, Any]]:
    _, ts = desk.app_message(app_id)
    return [c.args for c in desk.slack.calls("chat.update") if c.ok and c.args.get("ts") == ts]


def test_decision_is_owed_in_its_own_transaction_and_delivered_once(desk: Desk, clock: Clock) -> None:
    app_id = desk.submit()
    decided = approve(desk, app_id)
    (row,) = rows(desk, app_id)
    assert decided.owed is not None and decided.owed.id == row.id
    assert row.done_at is None and row.kind == "decision" and row.payload["actor"] == ANALYST
    assert row.due_at == row.created_at + OUTBOX_LEASE  # held by the process that decided
    assert notifier(desk).deliver(app_id, decided.owed) == 1
    (row,) = rows(desk, app_id)
    assert row.done_at is not None and row.error is None
    assert len(updates_of(desk, app_id)) == 1
    assert [t for t in thread_lines(desk, app_id) if f"<@{ANALYST}> approved" in t] == thread_lines(
        desk, app_id
    )
    assert len(thread_lines(desk, app_id)) == 1
    # A retried delivery and the repair pass add nothing.
    clock.advance(OUTBOX_LEASE * 2)
    assert notifier(desk).deliver(app_id) == 0
    assert notifier(desk).deliver_due() == 0
    assert len(thread_lines(desk, app_id)) == 1 and len(updates_of(desk, app_id)) == 1


def test_updates_of_a_process_that_died_are_delivered_by_the_repair_pass(desk: Desk, clock: Clock) -> None:
    app_id = desk.submit()
    approve(desk, app_id)  # the process dies here: committed and answered, nothing sent to Slack
    assert notifier(desk).deliver_due() == 0  # its lease runs: it may still be delivering
    assert updates_of(desk, app_id) == [] and thread_lines(desk, app_id) == []
    clock.advance(OUTBOX_LEASE + timedelta(seconds=1))
    assert notifier(desk).deliver_due() == 1
    (update,) = updates_of(desk, app_id)
    assert "Approved" in str(update["blocks"])
    (line,) = thread_lines(desk, app_id)
    assert f"<@{ANALYST}> approved" in line
    assert rows(desk, app_id)[0].done_at is not None
    assert notifier(desk).deliver_due() == 0
    assert len(thread_lines(desk, app_id)) == 1


def test_a_failed_delivery_is_retried_later_and_its_line_posted_once(desk: Desk, clock: Clock) -> None:
    app_id = desk.submit()
    decided = approve(desk, app_id)
    desk.slack.fail_next("chat.postMessage", error="internal_error", status=500)  # the thread line
    assert notifier(desk).deliver(app_id, decided.owed) == 0
    (row,) = rows(desk, app_id)
    assert row.done_at is None and row.attempts == 1 and row.error == "the thread line failed"
    assert row.due_at == clock() + FIRST_RETRY_DELAY or row.due_at > clock()  # not before the retry time
    assert notifier(desk).deliver_due() == 0 and thread_lines(desk, app_id) == []
    clock.advance(FIRST_RETRY_DELAY + timedelta(seconds=1))
    assert notifier(desk).deliver_due() == 1
    assert len(thread_lines(desk, app_id)) == 1
    assert len(updates_of(desk, app_id)) == 2  # the update is repeated (the same content), the line is not
    (row,) = rows(desk, app_id)
    assert row.done_at is not None and row.attempts == 2


def test_retries_back_off_and_give_up_after_the_set_attempts(desk: Desk, clock: Clock) -> None:
    app_id = desk.submit()
    decided = approve(desk, app_id)
    notifier(desk).outbox_max_attempts = 3
    desk.slack.fail_next("chat.update", error="internal_error", status=500, times=3)
    assert notifier(desk).deliver(app_id, decided.owed) == 0
    waits = []
    for _ in range(2):
        (row,) = rows(desk, app_id)
        waits.append(row.due_at - clock())
        clock.advance(row.due_at - clock() + timedelta(seconds=1))
        notifier(desk).deliver_due()
    assert waits[1] > waits[0]  # 5 s, then 10 s
    (row,) = rows(desk, app_id)
    assert row.done_at is not None and row.attempts == 3
    assert row.error is not None and row.error.startswith("gave up after 3 attempts")
    assert thread_lines(desk, app_id) == []


def test_decisions_are_delivered_in_the_order_they_were_made(desk: Desk, clock: Clock) -> None:
    app_id = desk.submit()
    recommended = approve(desk, app_id, limit="75000")  # above the band: a recommendation
    assert desk.container.decisions is not None and desk.container.roles is not None
    confirmed = desk.container.decisions.confirm(app_id, desk.container.roles.actor(MANAGER))
    assert recommended.outcome == "awaiting_manager" and confirmed.outcome == "approved"
    # The confirmation's process delivers first; the recommendation's process died holding its row.
    assert notifier(desk).deliver(app_id, confirmed.owed) == 0
    assert thread_lines(desk, app_id) == []
    clock.advance(OUTBOX_LEASE + timedelta(seconds=1))
    assert notifier(desk).deliver_due() == 2
    lines = thread_lines(desk, app_id)
    assert len(lines) == 2 and "recommend" in lines[0] and "confirmed" in lines[1]
    # Managers are not asked about an approval that no longer waits for them.
    posted_to = {c.args["channel"] for c in desk.slack.calls("chat.postMessage") if c.ok}
    assert posted_to == {ANALYSTS_CHANNEL}
    assert "Approved" in str(updates_of(desk, app_id)[-1]["blocks"])


def test_a_decision_before_its_announcement_gets_its_line_when_announced(desk: Desk, clock: Clock) -> None:
    desk.slack.fail_next("chat.postMessage", error="internal_error", status=500)  # the announcement
    app_id = desk.submit()
    decided = approve(desk, app_id)
    assert notifier(desk).deliver(app_id, decided.owed) == 0
    (row,) = rows(desk, app_id)
    assert row.done_at is None and row.error == "the application's message is not posted yet"
    assert row.attempts == 0  # waiting is not a failed attempt
    assert notifier(desk).announce_missing(older_than=timedelta(0)) == 1
    (line,) = thread_lines(desk, app_id)
    assert f"<@{ANALYST}> approved" in line
    assert rows(desk, app_id)[0].done_at is not None


def test_an_overtaken_holder_cannot_finish_the_row(desk: Desk, clock: Clock) -> None:
    app_id = desk.submit()
    decided = approve(desk, app_id)
    assert decided.owed is not None
    now: Callable[[], datetime] = clock
    with transaction(desk.container.sessions) as s:
        assert OutboxRepository(s).take(app_id, now=now(), lease=OUTBOX_LEASE) is None  # still held
    clock.advance(OUTBOX_LEASE + timedelta(seconds=1))
    with transaction(desk.container.sessions) as s:
        taken = OutboxRepository(s).take(app_id, now=now(), lease=OUTBOX_LEASE)
    assert taken is not None and taken.taken_over and taken.attempts == 2
    with transaction(desk.container.sessions) as s:
        repo = OutboxRepository(s)
        assert repo.finish(decided.owed, now=now()) is False  # the first holder's token is stale
        assert repo.retry_at(decided.owed, now(), error="x") is False
        assert repo.finish(taken, now=now()) is True
        assert repo.pending_count() == 0


def test_delivered_rows_are_pruned_after_a_week(desk: Desk, clock: Clock) -> None:
    app_id = desk.submit()
    decided = approve(desk, app_id)
    notifier(desk).deliver(app_id, decided.owed)
    assert notifier(desk).prune_outbox() == 0
    clock.advance(timedelta(days=8))
    assert notifier(desk).prune_outbox() == 1
    assert rows(desk, app_id) == []


class Killed(BaseException):
    """The process dies (not an error anything catches)."""


def posted_then_killed(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> int:
    """An approval whose holder posts its thread line and is killed before it records the delivery: the one
    window a lease cannot close. Returns the application's id."""
    app_id = desk.submit()
    decided = approve(desk, app_id)

    def killed(*_: Any, **__: Any) -> bool:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(notifier(desk), "_settle", killed)
        with pytest.raises(Killed):
            notifier(desk).deliver(app_id, decided.owed)
    assert len(thread_lines(desk, app_id)) == 1  # Slack has it; the row does not know
    assert rows(desk, app_id)[0].done_at is None
    return app_id


def test_a_line_posted_just_before_its_holder_died_is_not_posted_again(
    desk: Desk, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_id = posted_then_killed(desk, monkeypatch)
    (line,) = thread_lines(desk, app_id)
    clock.advance(OUTBOX_LEASE + timedelta(seconds=1))
    assert notifier(desk).deliver_due() == 1  # reads the thread back, finds its line by metadata
    assert thread_lines(desk, app_id) == [line]
    assert desk.slack.calls("conversations.replies")
    (row,) = rows(desk, app_id)
    assert row.done_at is not None and row.attempts == 2
    _, ts = desk.app_message(app_id)
    (posted,) = [c for c in desk.slack.calls("chat.postMessage") if c.ok and c.args.get("thread_ts") == ts]
    metadata = posted.args["metadata"]
    metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
    assert metadata == {"event_type": LINE_EVENT, "event_payload": {"outbox_id": row.id}}


def test_without_the_history_scope_a_redelivered_line_is_posted_rather_than_lost(
    desk: Desk, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workspace that installed the app before it asked for channels:history: the thread cannot be read
    back, so the line is posted again (at least once, never lost)."""
    app_id = posted_then_killed(desk, monkeypatch)
    desk.slack.fail_next("conversations.replies", error="missing_scope")
    clock.advance(OUTBOX_LEASE + timedelta(seconds=1))
    assert notifier(desk).deliver_due() == 1
    assert len(thread_lines(desk, app_id)) == 2
    assert rows(desk, app_id)[0].done_at is not None


def test_a_failed_first_try_checks_the_thread_and_posts_when_absent(desk: Desk, clock: Clock) -> None:
    """A call that failed may still have been carried out (a timeout after Slack posted): the retry reads the
    thread, finds nothing, and posts once."""
    app_id = desk.submit()
    decided = approve(desk, app_id)
    desk.slack.fail_next("chat.postMessage", error="internal_error", status=500)
    assert notifier(desk).deliver(app_id, decided.owed) == 0
    clock.advance(FIRST_RETRY_DELAY + timedelta(seconds=1))
    before = len(desk.slack.calls("conversations.replies"))
    assert notifier(desk).deliver_due() == 1
    assert len(desk.slack.calls("conversations.replies")) == before + 1
    assert len(thread_lines(desk, app_id)) == 1


def test_metrics_show_what_the_outbox_still_owes(desk: Desk, clock: Clock) -> None:
    def gauges() -> dict[str, float]:
        body = desk.http.get("/metrics").text
        found = {}
        for line in body.splitlines():
            if line.startswith("credit_desk_outbox_"):
                name, value = line.split(" ")
                found[name] = float(value)
        return found

    assert gauges() == {"credit_desk_outbox_pending": 0.0, "credit_desk_outbox_oldest_pending_seconds": 0.0}
    app_id = desk.submit()
    decided = approve(desk, app_id)  # committed, not delivered
    seen = gauges()
    assert seen["credit_desk_outbox_pending"] == 1.0
    assert seen["credit_desk_outbox_oldest_pending_seconds"] >= 0.0
    notifier(desk).deliver(app_id, decided.owed)
    assert gauges()["credit_desk_outbox_pending"] == 0.0


def test_a_scrape_without_a_database_still_answers() -> None:
    from bot.observability import Metrics, OutboxCollector

    def broken() -> tuple[int, float]:
        raise RuntimeError("database unreachable")

    body = Metrics(collectors=(OutboxCollector(broken),)).exposition().decode()
    assert "credit_desk_outbox_pending" not in body and "credit_desk_http_requests_total" in body
