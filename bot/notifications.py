"""Outbound Slack: post new applications, reflect decisions, ask and remind managers.

The one place that turns domain events into Slack Web API calls (the services never see Slack). Each post is
claimed in the database first (`slack_messages`), so a retried job or two workers never post it twice, and
its channel and ts are kept so that later decisions update the same message and thread under it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

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
from bot.decisions.service import Decided, DecisionOutcome, DecisionService, Outcome
from bot.sync.service import SyncRequestView
from storage.db import transaction
from storage.repositories.slack_messages import SlackMessageRepository
from storage.types import utcnow

log = structlog.get_logger(__name__)

APPLICATION = "application"
MANAGER_CHANNEL = "manager_channel"
STALE_CLAIM = timedelta(minutes=2)
RATE_LIMIT_PATIENCE = timedelta(seconds=60)
"""How long one Slack call keeps waiting out HTTP 429s (honouring ``Retry-After``) before it gives up.
A 429 means Slack did nothing, so sending again cannot double a message. Kept well under
``STALE_CLAIM``: a post still waiting must never see its claim taken over by the repair pass."""


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

    # --- new applications ---------------------------------------------------------------------

    def announce(self, application_id: int) -> bool:
        """Post a new application in the analysts' channel, once. True if this call posted it."""
        if not self.analysts_channel:
            log.warning(
                "slack.announce_skipped", reason="ANALYSTS_CHANNEL is not set", application_id=application_id
            )
            return False
        state = self.decisions.get(application_id)
        return self._post_once(
            application_id,
            APPLICATION,
            self.analysts_channel,
            blocks=application_message(state.application, state.decisions),
            text=application_text(state.application),
        )

    # --- decisions ----------------------------------------------------------------------------

    def publish_decision(self, decided: Decided) -> None:
        """Update every message about the application, add an audit line to its thread, and ask managers
        when the approval now needs one. The application is read now, so a late update never shows an
        older state than the one stored."""
        outcome = self.decisions.view(decided)
        app = outcome.application
        with transaction(self.sessions, readonly=True) as session:
            messages = [
                (m.purpose, m.channel, m.ts) for m in SlackMessageRepository(session).for_application(app.id)
            ]
        for purpose, channel, ts in messages:
            assert ts is not None
            if purpose == APPLICATION:
                blocks = application_message(app, outcome.decisions)
            else:
                blocks = manager_request_message(app, outcome.recommendation, outcome.decisions)
            self._call("chat_update", channel=channel, ts=ts, blocks=blocks, text=application_text(app))
        if outcome.decision is not None and outcome.outcome != Outcome.ALREADY_DECIDED:
            thread = next(((c, t) for p, c, t in messages if p == APPLICATION), None)
            if thread is not None:
                self._call(
                    "chat_postMessage",
                    channel=thread[0],
                    thread_ts=thread[1],
                    text=decision_thread_text(outcome.decision, app),
                )
        if outcome.outcome == Outcome.AWAITING_MANAGER:
            self.ask_managers(outcome)

    def ask_managers(self, outcome: DecisionOutcome) -> None:
        app = outcome.application
        blocks = manager_request_message(app, outcome.recommendation, outcome.decisions)
        text = f"Manager approval needed: {application_text(app)}"
        if self.managers_channel:
            self._post_once(app.id, MANAGER_CHANNEL, self.managers_channel, blocks=blocks, text=text)
        recommender = outcome.recommendation.actor if outcome.recommendation else None
        for manager in sorted(self.roles.user_ids(Role.MANAGER)):
            if manager == recommender:
                continue
            self._post_once(app.id, manager_dm(manager), manager, blocks=blocks, text=text)

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
        return self._call("chat_postMessage", **kwargs) is not None

    def sync_requested(self, sync: SyncRequestView, *, scheduled: bool) -> None:
        self.post_in_thread(sync.application_id, sync_requested_text(sync, scheduled))

    def sync_finished(self, sync: SyncRequestView, outcome: str) -> None:
        text = {"succeeded": "Synced to NetSuite", "conflict": "NetSuite changed meanwhile"}.get(
            outcome, "The NetSuite sync failed"
        )
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
            if self._call("chat_postMessage", channel=channel, thread_ts=ts, text=reminder_text(app, waited)):
                sent += 1
        return sent

    def announce_missing(self, *, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Post applications whose announcement was lost (a job lost with Redis, a Slack outage)."""
        if not self.analysts_channel:
            return 0
        with transaction(self.sessions, readonly=True) as session:
            ids = SlackMessageRepository(session).unannounced(created_before=self.clock() - older_than)
        return sum(1 for app_id in ids if self.announce(app_id))

    # --- internals ----------------------------------------------------------------------------

    def _post_once(
        self, application_id: int, purpose: str, channel: str, *, blocks: list[dict[str, Any]], text: str
    ) -> bool:
        now = self.clock()
        with transaction(self.sessions) as session:
            if not SlackMessageRepository(session).claim(
                application_id, purpose, channel, now=now, stale_after=STALE_CLAIM
            ):
                return False
        response = self._call("chat_postMessage", channel=channel, blocks=blocks, text=text)
        with transaction(self.sessions) as session:
            repo = SlackMessageRepository(session)
            if response is None:
                repo.release(application_id, purpose)
                return False
            repo.posted(
                application_id,
                purpose,
                channel=str(response.get("channel") or channel),
                ts=str(response["ts"]),
                now=self.clock(),
            )
        return True

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        """One Web API call; None if it failed (logged). A 429 is waited out and sent again, for up to
        ``rate_limit_patience``: the message is owed, and Slack did nothing with the refused call."""
        deadline = time.monotonic() + self.rate_limit_patience.total_seconds()
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
        self.notifier.sync_finished(sync, "succeeded")

    def on_conflict(self, sync: SyncRequestView) -> None:
        self.notifier.sync_finished(sync, "conflict")

    def on_failed(self, sync: SyncRequestView) -> None:
        self.notifier.sync_finished(sync, "failed")
