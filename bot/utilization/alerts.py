"""Tell a rep, once, when a customer crosses the "near" or "over" line: run after each mirror refresh.

A customer's level (0 within, 1 near, 2 over; see `bot.utilization.service.standing`) is remembered in
`utilization_alerts` (a row only while at level 1 or 2). After a refresh, only the customers that refresh
wrote are compared with what was remembered; an upward crossing marks the row `alert_due`, and dropping back
below a line forgets it, so the next crossing is told again. Then due alerts are sent, one DM per rep
listing that rep's customers, each with "Request credit increase". A DM is claimed first (a conditional
UPDATE that only one pass wins) and given back if Slack fails, so nobody is told twice and nothing is lost.

The first pass ever takes a baseline of the whole mirror without telling anyone: a customer already over
its limit on the day Credit Desk is installed has not "crossed" anything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from blocks.utilization import alert_message, alert_text
from bot.utilization.service import Level, Standing, UtilizationService
from storage.db import transaction
from storage.repositories.utilization import LevelChange, UtilizationRepository

if TYPE_CHECKING:
    from bot.container import Container

log = structlog.get_logger(__name__)

SCAN_BATCH = 2_000
MAX_DUE_PER_PASS = 5_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class AlertReport:
    """What one pass did."""

    baseline: bool = False
    customers_checked: int = 0
    crossings: int = 0
    alerts_sent: int = 0
    reps_told: int = 0
    unreachable: int = 0  # crossings whose rep has no Slack user (not retried)
    failed: int = 0  # DMs Slack refused (given back, retried next pass)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class UtilizationAlerts:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        service: UtilizationService,
        client: Callable[[], WebClient],
        *,
        batch: int = SCAN_BATCH,
    ) -> None:
        self.sessions = sessions
        self.service = service
        self.client = client
        self.batch = batch

    def _repo(self, session: Session) -> UtilizationRepository:
        o = self.service.options
        return UtilizationRepository(session, includes_orders=o.includes_orders, near_percent=o.near_percent)

    def after_refresh(self, since: datetime) -> AlertReport:
        """Compare the customers written since `since` (the refresh's start), then send what is due."""
        report = AlertReport()
        with transaction(self.sessions, readonly=True) as session:
            report.baseline = not self._repo(session).baseline_taken()
        self._scan(EPOCH if report.baseline else since, report, tell=not report.baseline)
        if report.baseline:
            with transaction(self.sessions) as session:
                self._repo(session).mark_baseline()
            log.info("utilization.alerts.baseline", customers=report.customers_checked)
        self._send_due(report)
        return report

    def _scan(self, since: datetime, report: AlertReport, *, tell: bool) -> None:
        after = 0
        for _ in range(10_000_000 // self.batch + 1):  # bounded: the whole mirror in batches
            with transaction(self.sessions) as session:
                repo = self._repo(session)
                figures = repo.changed_since(since, after_id=after, limit=self.batch)
                if not figures:
                    return
                after = figures[-1].internal_id
                states = repo.alert_states(f.internal_id for f in figures)
                changes = []
                for fig in figures:
                    now = self.service.standing_of(fig).level
                    before = states[fig.internal_id].level if fig.internal_id in states else Level.WITHIN
                    if now == before and (
                        fig.internal_id not in states
                        or states[fig.internal_id].sales_rep_id == fig.sales_rep_id
                    ):
                        continue
                    crossed = tell and now > before
                    report.crossings += int(crossed)
                    changes.append(
                        LevelChange(
                            fig.internal_id, fig.sales_rep_id, int(now), int(now) if crossed else None
                        )
                    )
                repo.save_levels(changes)
                report.customers_checked += len(figures)
            if len(figures) < self.batch:
                return

    def _send_due(self, report: AlertReport) -> None:
        with transaction(self.sessions, readonly=True) as session:
            due = self._repo(session).due_alerts(MAX_DUE_PER_PASS)
        by_rep: dict[int | None, list[int]] = defaultdict(list)
        for state in due:
            by_rep[state.sales_rep_id].append(state.customer_id)
        if not by_rep:
            return
        client = self.client()
        for rep_id, customer_ids in by_rep.items():
            self._tell_rep(client, rep_id, customer_ids, report)

    def _tell_rep(
        self, client: WebClient, rep_id: int | None, customer_ids: list[int], report: AlertReport
    ) -> None:
        with transaction(self.sessions, readonly=True) as session:
            repo = self._repo(session)
            rep = repo.rep(rep_id) if rep_id is not None else None
        user_id = self.service.slack_user_of(rep, client) if rep is not None and not rep.is_inactive else None
        # Claim: only the pass whose UPDATE clears alert_due sends (the level re-read under the claim).
        claimed: list[Standing] = []
        with transaction(self.sessions) as session:
            repo = self._repo(session)
            states = repo.alert_states(customer_ids)
            for cid in customer_ids:
                state = states.get(cid)
                if state is None or state.alert_due is None or not repo.claim_alert(cid, state.alert_due):
                    continue
                fig = repo.customer(cid)
                if fig is not None:
                    claimed.append(self.service.standing_of(fig))
        if not claimed:
            return
        if user_id is None:
            report.unreachable += len(claimed)
            log.warning("utilization.alerts.rep_unreachable", sales_rep_id=rep_id, customers=len(claimed))
            return
        o = self.service.options
        claimed.sort(key=lambda s: (-int(s.level), -(s.percent or 0), s.customer_id))
        try:
            client.chat_postMessage(
                channel=user_id,
                text=alert_text(claimed),
                blocks=alert_message(claimed, near_percent=o.near_percent, includes_orders=o.includes_orders),
            )
        except SlackApiError as exc:
            report.failed += len(claimed)
            log.warning("utilization.alerts.dm_failed", sales_rep_id=rep_id, error=exc.response.get("error"))
            with transaction(self.sessions) as session:
                repo = self._repo(session)
                for s in claimed:
                    repo.release_alert(s.customer_id, int(s.level))
            return
        report.alerts_sent += len(claimed)
        report.reps_told += 1


def alert_after_refresh(container: Container, since: datetime) -> dict[str, Any]:
    """The `mirror_refresh` hook: run a pass if alerts are configured; never fail the refresh over it."""
    alerts = container.utilization_alerts
    if alerts is None:
        return {"skipped": "utilization alerts are off (Slack, a bot token or UTILIZATION_ALERTS)"}
    try:
        return alerts.after_refresh(since).as_dict()
    except Exception as exc:
        log.exception("utilization.alerts.failed")
        return {"error": repr(exc)[:300]}
