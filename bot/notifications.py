"""Outbound Slack: post new applications, reflect decisions, ask and remind managers.

The one place that turns domain events into Slack Web API calls (the services never see Slack). Each post is
claimed in the database first (`slack_messages`), so a retried job or two workers never post it twice, and
its channel and ts are kept so that later decisions update the same message and thread under it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from blocks.applications import (
    application_message,
    application_text,
    decision_thread_text,
    manager_request_message,
    reminder_text,
)
from blocks.sync import sync_requested_text, sync_result_blocks
from bot.applications.service import ApplicationService
from bot.decisions.policy import Role, RoleDirectory
from bot.decisions.service import DecisionOutcome, DecisionService, Outcome, decision_from_payload
from bot.sync.service import SyncRequestView, request_view
from storage.db import retry_transient, transaction
from storage.models import OutboxKind
from storage.repositories.outbox import OUTBOX_LEASE, Held, OutboxRepository
from storage.repositories.slack_messages import SlackMessageRepository
from storage.repositories.sync import SyncRepository
from storage.types import utcnow

log = structlog.get_logger(__name__)

APPLICATION = "application"
MANAGER_CHANNEL = "manager_channel"
STALE_CLAIM = timedelta(minutes=2)
RATE_LIMIT_PATIENCE = timedelta(seconds=60)
"""How long one Slack call keeps waiting out HTTP 429s (honouring ``Retry-After``) before it gives up.
A 429 means Slack did nothing, so sending again cannot double a message. Kept well under
``STALE_CLAIM``: a post still waiting must never see its claim taken over by the repair pass."""


LEASE_MARGIN = timedelta(seconds=45)
"""A delivery stops waiting out 429s this long before its lease ends: room for its last call's HTTP timeout
(slack_sdk's default is 30 s), so the thread line is never posted by two deliverers."""
OUTBOX_MAX_ATTEMPTS = 20
FIRST_RETRY_DELAY = timedelta(seconds=5)
MAX_RETRY_DELAY = timedelta(minutes=10)
"""A failed delivery is tried again after 5 s, 10 s, 20 s ... at most 10 minutes apart: 20 attempts span
about two hours of Slack trouble before the row is given up (logged as an error; the audit table has it)."""
WAIT_RETRY = timedelta(seconds=10)
ANNOUNCEMENT_WAIT = timedelta(hours=1)
"""A decision's audit line waits this long for the application's message to be posted, then goes without."""
OUTBOX_KEEP = timedelta(days=7)
LINE_EVENT = "credit_desk_outbox_line"
"""Message metadata event type of the thread lines the outbox posts (event_payload: outbox_id)."""
MAX_THREAD_PAGES = 10


SYNC_RESULT_TEXT = {"succeeded": "Synced to NetSuite", "conflict": "NetSuite changed meanwhile"}
_RESULT_OF = {"succeeded": "succeeded", "conflict": "conflict"}  # a sync's final status -> its message


@dataclass(frozen=True)
class _Result:
    status: Literal["done", "retry", "wait", "give_up"]
    why: str | None = None


def manager_dm(user_id: str) -> str:
    return f"manager_dm:{user_id}"


class SlackNotifier:
    def __init__(
        self,
        client: WebClient,
        sessions: sessionmaker[Session],
        applications: ApplicationService,
        decisions: DecisionService,
        roles: RoleDirectory,
        *,
        analysts_channel: str | None,
        managers_channel: str | None,
        reminder_after: timedelta,
        clock: Callable[[], datetime] = utcnow,
        rate_limit_patience: timedelta = RATE_LIMIT_PATIENCE,
        sleep: Callable[[float], None] = time.sleep,
        outbox_lease: timedelta = OUTBOX_LEASE,
        outbox_max_attempts: int = OUTBOX_MAX_ATTEMPTS,
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.applications = applications
        self.decisions = decisions
        self.roles = roles
        self.analysts_channel = analysts_channel
        self.managers_channel = managers_channel
        self.reminder_after = reminder_after
        self.clock = clock
        self.rate_limit_patience = rate_limit_patience
        self.sleep = sleep
        self.outbox_lease = outbox_lease
        self.outbox_max_attempts = outbox_max_attempts

    # --- new applications ---------------------------------------------------------------------

    def announce(self, application_id: int) -> bool:
        """Post a new application in the analysts' channel, once. True if this call posted it."""
        if not self.analysts_channel:
            log.warning(
                "slack.announce_skipped", reason="ANALYSTS_CHANNEL is not set", application_id=application_id
            )
            return False
        state = self.decisions.get(application_id)
        posted = self._post_once(
            application_id,
            APPLICATION,
            self.analysts_channel,
            blocks=application_message(state.application, state.decisions),
            text=application_text(state.application),
        )
        if posted:  # decisions made before the message existed owe their thread lines
            with transaction(self.sessions, readonly=True) as session:
                owed = OutboxRepository(session).next_pending(application_id) is not None
            if owed:
                with transaction(self.sessions) as session:
                    OutboxRepository(session).wake(application_id, now=self.clock())
                self.deliver(application_id)
        return bool(posted)

    # --- decisions ----------------------------------------------------------------------------

    def deliver(self, application_id: int, held: Held | None = None) -> int:
        """Deliver what the outbox owes about the application, oldest first; `held` is a row the caller
        already holds (the decision it just made). Returns how many rows were delivered.

        Rows go one at a time in order, so audit lines appear in the order the decisions were made: a caller
        whose row is not the oldest lets it go to whoever holds the older one (or takes the older one, if
        nobody does). Runs on the web process's outbox pool after a decision, in the worker after an
        announcement, and in the repair pass for rows whose holder died or whose delivery failed."""
        delivered = 0
        while True:
            if held is not None:
                held = self._in_order(application_id, held)
            if held is None:
                with transaction(self.sessions) as session:
                    held = OutboxRepository(session).take(
                        application_id, now=self.clock(), lease=self.outbox_lease
                    )
                if held is None:
                    return delivered
                if held.taken_over:
                    log.warning("outbox.taken_over", application_id=application_id, outbox_id=held.id)
            result = self._deliver_one(held)
            if not self._settle(held, result):
                return delivered
            delivered += 1
            held = None

    def deliver_due(self, *, limit: int = 100) -> int:
        """The repair pass: deliver rows whose holder died (lease over) or whose retry time came."""
        with transaction(self.sessions, readonly=True) as session:
            due = OutboxRepository(session).due_applications(now=self.clock(), limit=limit)
        return sum(self.deliver(app_id) for app_id in due)

    def _in_order(self, application_id: int, held: Held) -> Held | None:
        """`held` if it is the application's oldest owed row; else let it go (due at once) and None."""
        with transaction(self.sessions, readonly=True) as session:
            first = OutboxRepository(session).next_pending(application_id)
        if first is None or first[0] == held.id:
            return held
        with transaction(self.sessions) as session:
            OutboxRepository(session).retry_at(
                held, self.clock(), error="an older message goes first", count=False
            )
        return None

    def _deliver_one(self, held: Held) -> _Result:
        if held.kind == OutboxKind.DECISION:
            return self._deliver_decision(held)
        if held.kind in (OutboxKind.SYNC_REQUESTED, OutboxKind.SYNC_FINISHED):
            return self._deliver_sync(held)
        return _Result("give_up", f"unknown outbox kind {held.kind!r}")

    def _thread(self, application_id: int) -> tuple[str, str] | None:
        with transaction(self.sessions, readonly=True) as session:
            message = SlackMessageRepository(session).get(application_id, APPLICATION)
            return (message.channel, message.ts) if message is not None and message.ts else None

    def _deliver_sync(self, held: Held) -> _Result:
        """A line in the application's thread: a sync was requested, or how it ended."""
        sync_id = int(held.payload["sync_id"])
        with transaction(self.sessions, readonly=True) as session:
            row = SyncRepository(session).get(sync_id)
            view = request_view(session, row) if row is not None else None
        if view is None:
            return _Result("give_up", f"sync {sync_id} no longer exists")
        thread = self._thread(held.application_id)
        if thread is None:
            if self.analysts_channel and self.clock() - held.created_at < ANNOUNCEMENT_WAIT:
                return _Result("wait", "the application's message is not posted yet")
            return _Result("done")  # there is no thread to write in
        if held.kind == OutboxKind.SYNC_REQUESTED:
            text, blocks = sync_requested_text(view, bool(held.payload.get("scheduled"))), None
        else:
            status = str(held.payload["status"])
            text = SYNC_RESULT_TEXT.get(status, "The NetSuite sync failed")
            blocks = sync_result_blocks(view, _RESULT_OF.get(status, "failed"))
        return self._thread_line(held, thread, text, blocks, self._deadline(held))

    def _deadline(self, held: Held) -> float:
        """When (`time.monotonic()`) this delivery stops waiting out Slack's 429s: well before its lease ends,
        so that nobody takes the row over while it may still post (a Web API call may take up to its HTTP
        timeout)."""
        return time.monotonic() + (held.token - self.clock()).total_seconds() - LEASE_MARGIN.total_seconds()

    def _thread_line(
        self,
        held: Held,
        thread: tuple[str, str],
        text: str,
        blocks: list[dict[str, Any]] | None,
        deadline: float,
    ) -> _Result:
        """Post the row's line in the thread, once. The line carries the row's id in its message metadata; a
        row that was tried before (its holder died, or a call failed, perhaps after Slack had posted) first
        reads the thread back and posts only if the line is not there."""
        if time.monotonic() >= deadline:
            return _Result("retry", "the lease is nearly over")
        if held.attempts > 1:
            found = self._line_posted(thread, held.id, deadline)
            if found:
                log.info("outbox.already_posted", application_id=held.application_id, outbox_id=held.id)
                return _Result("done")
            if found is None:  # cannot read the thread (no history scope): post; a doubled line beats none
                log.warning("outbox.unchecked", application_id=held.application_id, outbox_id=held.id)
        kwargs: dict[str, Any] = {
            "channel": thread[0],
            "thread_ts": thread[1],
            "text": text,
            "metadata": {"event_type": LINE_EVENT, "event_payload": {"outbox_id": held.id}},
        }
        if blocks:
            kwargs["blocks"] = blocks
        if self._call("chat_postMessage", deadline, **kwargs) is None:
            return _Result("retry", "the thread line failed")
        return _Result("done")

    def _line_posted(self, thread: tuple[str, str], outbox_id: int, deadline: float) -> bool | None:
        """Whether the thread holds the line of outbox row `outbox_id`; None if the thread cannot be read."""
        cursor: str | None = None
        for _ in range(MAX_THREAD_PAGES):
            page = self._call(
                "conversations_replies",
                deadline,
                channel=thread[0],
                ts=thread[1],
                include_all_metadata=True,
                limit=200,
                **({"cursor": cursor} if cursor else {}),
            )
            if page is None:
                return None
            for message in page.get("messages") or []:
                meta = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == LINE_EVENT and payload.get("outbox_id") == outbox_id:
                    return True
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or not cursor:
                return False
        return None

    def _deliver_decision(self, held: Held) -> _Result:
        """Update every message about the application (as it stands now, so a late delivery never shows an
        older state), ask managers if the approval still awaits one, and add the decision's audit line to
        the thread. The line goes last: it is the one call that is not safe to repeat."""
        outcome, decision = decision_from_payload(held.payload)
        deadline = self._deadline(held)
        state = self.decisions.get(held.application_id)
        app = state.application
        with transaction(self.sessions, readonly=True) as session:
            messages = [
                (m.purpose, m.channel, m.ts) for m in SlackMessageRepository(session).for_application(app.id)
            ]
        thread = next(((c, t) for p, c, t in messages if p == APPLICATION and t is not None), None)
        if thread is None and self.analysts_channel and self.clock() - held.created_at < ANNOUNCEMENT_WAIT:
            # The application's own message is not posted yet: it will show this decision when it is, and
            # its poster delivers the audit line right after (the repair pass too, if that poster dies).
            return _Result("wait", "the application's message is not posted yet")
        for purpose, channel, ts in messages:
            assert ts is not None
            if purpose == APPLICATION:
                blocks = application_message(app, state.decisions)
            else:
                blocks = manager_request_message(app, state.recommendation, state.decisions)
            if (
                self._call(
                    "chat_update", deadline, channel=channel, ts=ts, blocks=blocks, text=application_text(app)
                )
                is None
            ):
                return _Result("retry", f"chat.update of the {purpose} message failed")
        if outcome == Outcome.AWAITING_MANAGER and app.status == Outcome.AWAITING_MANAGER.value:
            asked = DecisionOutcome(outcome, app, decision, state.decisions)
            if not self.ask_managers(asked, deadline=deadline):
                return _Result("retry", "a manager's request failed")
        if thread is not None:
            return self._thread_line(held, thread, decision_thread_text(decision, app), None, deadline)
        return _Result("done")

    def _settle(self, held: Held, result: _Result) -> bool:
        """Record how the delivery went; True if the row is done with and the next one may go."""
        now = self.clock()

        def record() -> bool:
            with transaction(self.sessions) as session:
                repo = OutboxRepository(session)
                if result.status == "done":
                    repo.finish(held, now=now)
                    return True
                if result.status == "wait":
                    repo.retry_at(held, now + WAIT_RETRY, error=result.why or "waiting", count=False)
                    return False
                about = log.bind(
                    application_id=held.application_id,
                    outbox_id=held.id,
                    attempts=held.attempts,
                    error=result.why,
                )
                if result.status == "give_up" or held.attempts >= self.outbox_max_attempts:
                    about.error("outbox.gave_up")
                    repo.finish(held, now=now, error=f"gave up after {held.attempts} attempts: {result.why}")
                    return True
                retry = now + min(MAX_RETRY_DELAY, FIRST_RETRY_DELAY * 2 ** (held.attempts - 1))
                about.warning("outbox.retry", at=retry.isoformat())
                repo.retry_at(held, retry, error=result.why or "failed")
                return False

        return retry_transient(record, seconds=30, what="outbox.settle")

    def ask_managers(self, outcome: DecisionOutcome, *, deadline: float | None = None) -> bool:
        """Post the request in the managers' channel and to each manager (but the recommender), once each.
        False if a post failed (it is owed: call again)."""
        app = outcome.application
        blocks = manager_request_message(app, outcome.recommendation, outcome.decisions)
        text = f"Manager approval needed: {application_text(app)}"
        ok = True
        if self.managers_channel:
            ok &= (
                self._post_once(
                    app.id,
                    MANAGER_CHANNEL,
                    self.managers_channel,
                    blocks=blocks,
                    text=text,
                    deadline=deadline,
                )
                is not None
            )
        recommender = outcome.recommendation.actor if outcome.recommendation else None
        for manager in sorted(self.roles.user_ids(Role.MANAGER)):
            if manager == recommender:
                continue
            ok &= (
                self._post_once(
                    app.id, manager_dm(manager), manager, blocks=blocks, text=text, deadline=deadline
                )
                is not None
            )
        return ok

    # --- syncs -----------------------------------------------------------------------------------

    def post_in_thread(
        self, application_id: int, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> bool:
        """A message under the application's message in the analysts' channel (if it was posted)."""
        with transaction(self.sessions, readonly=True) as session:
            message = SlackMessageRepository(session).get(application_id, APPLICATION)
            where = (message.channel, message.ts) if message is not None and message.ts else None
        if where is None:
            return False
        kwargs: dict[str, Any] = {"channel": where[0], "thread_ts": where[1], "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        return self._call("chat_postMessage", None, **kwargs) is not None

    def sync_finished(self, sync: SyncRequestView, outcome: str) -> None:
        text = SYNC_RESULT_TEXT.get(outcome, "The NetSuite sync failed")
        self.post_in_thread(sync.application_id, text, sync_result_blocks(sync, outcome))

    # --- reminders and repair -----------------------------------------------------------------

    def remind_managers(self) -> int:
        """Remind under each manager request that has waited longer than the set time. Returns how many."""
        now = self.clock()
        with transaction(self.sessions, readonly=True) as session:
            due = [
                (m.id, m.application_id, m.channel, m.ts, m.reminded_at, m.posted_at)
                for m in SlackMessageRepository(session).due_reminders(cutoff=now - self.reminder_after)
            ]
        sent = 0
        for message_id, app_id, channel, ts, reminded_at, posted_at in due:
            with transaction(self.sessions) as session:
                if not SlackMessageRepository(session).mark_reminded(
                    message_id, previous=reminded_at, now=now
                ):
                    continue
            app = self.decisions.get(app_id).application
            waited = int((now - (posted_at or now)).total_seconds() // 60)
            if self._call(
                "chat_postMessage", None, channel=channel, thread_ts=ts, text=reminder_text(app, waited)
            ):
                sent += 1
        return sent

    def announce_missing(self, *, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Post applications whose announcement was lost (a job lost with Redis, a Slack outage)."""
        if not self.analysts_channel:
            return 0
        with transaction(self.sessions, readonly=True) as session:
            ids = SlackMessageRepository(session).unannounced(created_before=self.clock() - older_than)
        return sum(1 for app_id in ids if self.announce(app_id))

    def prune_outbox(self, *, older_than: timedelta = OUTBOX_KEEP) -> int:
        """Forget delivered outbox rows after a while (the audit table keeps every decision)."""
        with transaction(self.sessions) as session:
            return OutboxRepository(session).prune(done_before=self.clock() - older_than)

    # --- internals ----------------------------------------------------------------------------

    def _post_once(
        self,
        application_id: int,
        purpose: str,
        channel: str,
        *,
        blocks: list[dict[str, Any]],
        text: str,
        deadline: float | None = None,
    ) -> bool | None:
        """True if this call posted the message, False if it was posted (or is being posted) already, None
        if the post failed (the claim is given up, so the next try goes at once)."""
        now = self.clock()
        with transaction(self.sessions) as session:
            if not SlackMessageRepository(session).claim(
                application_id, purpose, channel, now=now, stale_after=STALE_CLAIM
            ):
                return False
        response = self._call("chat_postMessage", deadline, channel=channel, blocks=blocks, text=text)
        with transaction(self.sessions) as session:
            repo = SlackMessageRepository(session)
            if response is None:
                repo.release(application_id, purpose)
                return None
            repo.posted(
                application_id,
                purpose,
                channel=str(response.get("channel") or channel),
                ts=str(response["ts"]),
                now=self.clock(),
            )
        return True

    def _call(self, method: str, deadline: float | None = None, /, **kwargs: Any) -> dict[str, Any] | None:
        """One Web API call; None if it failed (logged). A 429 is waited out and sent again, for up to
        ``rate_limit_patience`` (and not past ``deadline``, a `time.monotonic()` value): the message is owed,
        and Slack did nothing with the refused call."""
        patience = time.monotonic() + self.rate_limit_patience.total_seconds()
        deadline = patience if deadline is None else min(deadline, patience)
        while True:
            try:
                response = getattr(self.client, method)(**kwargs)
            except SlackApiError as exc:
                status = exc.response.status_code if exc.response is not None else None
                wait = _retry_after(exc) if status == 429 else None
                if wait is not None and time.monotonic() + wait <= deadline:
                    log.info("slack.rate_limited", method=method, retry_after=round(wait, 2))
                    self.sleep(wait)
                    continue
                log.warning(
                    "slack.call_failed",
                    method=method,
                    error=exc.response.get("error") if exc.response is not None else str(exc),
                    status=status,
                )
                return None
            except OSError as exc:  # Slack unreachable (URLError is an OSError); the next pass repairs
                log.warning("slack.unreachable", method=method, error=str(exc)[:200])
                return None
            return dict(response.data) if isinstance(response.data, dict) else {}


def _retry_after(exc: SlackApiError) -> float:
    """Seconds to wait after a 429: Slack's ``Retry-After`` (1 s if absent), plus up to a second of
    jitter so that the calls refused together do not all come back in the same instant."""
    headers = getattr(exc.response, "headers", None) or {}
    raw = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        seconds = max(0.0, float(raw)) if raw is not None else 1.0
    except (TypeError, ValueError):
        seconds = 1.0
    return seconds + random.uniform(0.0, 1.0)


class SlackSyncObserver:
    """Tells the application's Slack thread how each sync ended (the sync engine's `SyncObserver`)."""

    def __init__(self, notifier: SlackNotifier) -> None:
        self.notifier = notifier

    def on_succeeded(self, sync: SyncRequestView) -> None:
        self._tell(sync, "succeeded")

    def on_conflict(self, sync: SyncRequestView) -> None:
        self._tell(sync, "conflict")

    def on_failed(self, sync: SyncRequestView) -> None:
        self._tell(sync, "failed")

    def _tell(self, sync: SyncRequestView, outcome: str) -> None:
        if sync.owed is not None:  # owed in the database: delivered once, even if this process dies now
            self.notifier.deliver(sync.application_id, sync.owed)
        else:
            self.notifier.sync_finished(sync, outcome)
