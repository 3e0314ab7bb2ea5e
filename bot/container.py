"""Build every long-lived dependency once, at start-up, and hand them around.

Nothing in the product creates an engine, a Redis client or a Slack app at import time; the web process, the
worker and the CLI each call `build_container(settings)` and pass the result down.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import redis
import structlog
from slack_bolt import App as BoltApp
from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.applications.service import ApplicationService
from bot.customers.search import CustomerSearch
from bot.customers.suggest import CustomerSuggester
from bot.decisions.policy import ApprovalPolicy, GroupMembers, Role, RoleDirectory
from bot.decisions.service import DecisionService
from bot.federal_id import FederalIdCipher, generate_key, load_or_create_key_file
from bot.notifications import SlackNotifier, SlackSyncObserver
from bot.observability import Metrics, OutboxCollector
from bot.settings import Settings
from bot.slack_app import SlackClients, SlackConfig, build_bolt_app, build_slack_clients
from bot.slack_directory import SlackGroupMembers
from bot.sync.service import SyncService
from bot.utilization.alerts import UtilizationAlerts
from bot.utilization.service import SlackEmails, UtilizationOptions, UtilizationService
from netsuite.client import NetSuiteClient
from netsuite.factory import build_client
from storage import migrate
from storage.db import make_engine, make_session_factory, transaction
from storage.redis import make_redis
from storage.repositories.outbox import OutboxRepository
from storage.types import utcnow

log = structlog.get_logger(__name__)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    metrics: Metrics
    cipher: FederalIdCipher | None
    applications: ApplicationService | None
    slack_client: WebClient | None
    bolt: BoltApp | None
    slack_clients: SlackClients | None = None
    sync: SyncService | None = None
    customer_search: CustomerSearch | None = None
    suggester: CustomerSuggester | None = None
    netsuite: NetSuiteClient | None = None
    decisions: DecisionService | None = None
    roles: RoleDirectory | None = None
    notifier: SlackNotifier | None = None
    utilization: UtilizationService | None = None
    utilization_alerts: UtilizationAlerts | None = None
    extras: dict[str, object] = field(default_factory=dict)
    outbox: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(16, thread_name_prefix="slack-outbox")
    )
    """Slack updates that follow a decision run here, so that Bolt's listener threads are free for the
    next request as soon as they have answered (a slow Slack API must not delay other people's clicks)."""

    def later(self, fn: Callable[..., object], /, *args: object, **kwargs: object) -> None:
        """Run `fn` on the outbox; a failure is logged (nothing waits for the result)."""

        def run() -> None:
            try:
                fn(*args, **kwargs)
            except Exception:
                log.exception("outbox.failed", task=getattr(fn, "__qualname__", repr(fn)))

        self.outbox.submit(run)

    def close(self) -> None:
        self.outbox.shutdown(wait=True)
        if self.bolt is not None:
            # Let listeners still finishing after their ack (updating Slack) end before the engine goes.
            executor = getattr(self.bolt.listener_runner, "listener_executor", None)
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=False)
        for client in (self.netsuite, self.extras.get("sync_netsuite_client")):
            close = getattr(client, "close", None)
            if callable(close):
                close()
        self.engine.dispose()
        self.redis.close()


def outbox_backlog(sessions: sessionmaker[Session]) -> Callable[[], tuple[int, float]]:
    """The outbox's backlog (rows owed, age of the oldest), read for each metrics scrape."""

    def read() -> tuple[int, float]:
        with transaction(sessions, readonly=True) as session:
            return OutboxRepository(session).backlog(now=utcnow())

    return read


def federal_id_cipher(settings: Settings) -> FederalIdCipher | None:
    """The configured key; on SQLite without one, a key file beside the database (made once)."""
    if settings.federal_id_key is not None:
        return FederalIdCipher.from_setting(settings.federal_id_key.get_secret_value())
    if not settings.is_sqlite:
        return None
    db_path = settings.sqlite_path
    if db_path is None:  # in-memory database: an in-memory key lives exactly as long
        return FederalIdCipher([generate_key()])
    key_path = db_path.with_suffix(".key") if db_path.suffix else Path(f"{db_path}.key")
    if not key_path.exists():
        log.warning(
            "federal_id_key.generated",
            path=str(key_path),
            hint="set FEDERAL_ID_KEY in production; losing this file makes stored Federal IDs unreadable",
        )
    return FederalIdCipher([load_or_create_key_file(key_path)])


def slack_config(settings: Settings) -> SlackConfig | None:
    """The Slack wiring's configuration, or None while Slack is not configured."""
    if settings.slack_signing_secret is None:
        return None
    if settings.slack_bot_token is None and settings.slack_client_id is None:
        return None
    return SlackConfig(
        signing_secret=settings.slack_signing_secret,
        bot_token=settings.slack_bot_token,
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        redirect_uri=settings.slack_redirect_uri,
        listener_threads=settings.slack_listener_threads,
        token_rotation_minutes=settings.slack_token_rotation_minutes,
    )


def build_slack(
    settings: Settings, *, engine: Engine, redis_client: redis.Redis
) -> tuple[WebClient | None, BoltApp | None, SlackClients | None]:
    """(static-token client, Bolt app, per-team clients); all None while Slack is not configured.

    The static-token client exists only for one workspace; with the install flow, proactive sends
    take `slack_clients.client_for_team(team_id)`, which rotates that workspace's token first.
    """
    config = slack_config(settings)
    if config is None:
        return None, None, None
    clients = build_slack_clients(
        config, engine=engine, redis=redis_client, client_base_url=settings.slack_api_url
    )
    bolt = build_bolt_app(config, engine=engine, redis=redis_client, client_base_url=settings.slack_api_url)
    single = clients.client_for_team(None) if config.mode == "single_workspace" else None
    return single, bolt, clients


def build_roles(settings: Settings, group_members: GroupMembers | None) -> RoleDirectory:
    assignments = {
        Role.ANALYST: settings.id_list(settings.analysts),
        Role.MANAGER: settings.id_list(settings.managers),
        Role.ADMIN: settings.id_list(settings.admins),
    }
    return RoleDirectory(assignments, group_members) if group_members else RoleDirectory(assignments)


def build_container(settings: Settings, *, migrate_now: bool | None = None) -> Container:
    engine = make_engine(settings.database_dsn)
    if migrate_now if migrate_now is not None else settings.should_auto_migrate:
        migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    cipher = federal_id_cipher(settings)
    redis_client = make_redis(
        settings.redis_url.get_secret_value() if settings.redis_url is not None else None
    )
    slack_client, bolt, slack_clients = build_slack(settings, engine=engine, redis_client=redis_client)
    roles = build_roles(settings, SlackGroupMembers(slack_client, redis_client) if slack_client else None)
    # Changes owe the team Slack messages (outbox rows) only where a notifier will deliver them.
    outbox_lease = (
        timedelta(seconds=settings.outbox_lease_seconds)
        if slack_client is not None and cipher is not None
        else None
    )
    decisions = DecisionService(
        sessions,
        ApprovalPolicy(settings.analyst_approval_limit),
        default_terms=sorted(settings.id_list(settings.default_terms)),
        outbox_lease=outbox_lease,
    )

    def announce_later(application_id: int) -> None:
        from bot import jobs

        jobs.queue(redis_client).enqueue(
            jobs.announce_application, application_id, job_id=f"announce-{application_id}"
        )

    applications = (
        ApplicationService(sessions, cipher, on_submitted=announce_later if slack_client else None)
        if cipher is not None
        else None
    )
    notifier = (
        SlackNotifier(
            slack_client,
            sessions,
            applications,
            decisions,
            roles,
            analysts_channel=settings.analysts_channel,
            managers_channel=settings.managers_channel,
            reminder_after=timedelta(minutes=settings.manager_reminder_minutes),
            outbox_lease=timedelta(seconds=settings.outbox_lease_seconds),
        )
        if slack_client is not None and applications is not None
        else None
    )
    from bot.sync import SyncOptions
    from bot.sync import jobs as sync_jobs

    sync_options = SyncOptions.from_settings(settings)
    sync = SyncService(
        sessions,
        sync_options,
        enqueue=sync_jobs.make_enqueuer(redis_client, sync_options),
        outbox_lease=outbox_lease,
    )
    customer_search = CustomerSearch(sessions, digest=cipher.digest if cipher is not None else None)
    utilization = UtilizationService(
        sessions,
        UtilizationOptions.from_settings(settings),
        roles,
        SlackEmails(redis_client),
        search=customer_search,
        applications=applications,
    )
    # Alerts are proactive DMs: they need the one-workspace bot token (the install flow has no team to pick).
    utilization_alerts = (
        UtilizationAlerts(sessions, utilization, lambda: slack_client)
        if slack_client is not None and settings.utilization_alerts
        else None
    )
    container = Container(
        settings=settings,
        sync=sync,
        customer_search=customer_search,
        suggester=CustomerSuggester(customer_search, sessions),
        netsuite=build_client(settings, redis_client),
        engine=engine,
        sessions=sessions,
        redis=redis_client,
        metrics=Metrics(collectors=(OutboxCollector(outbox_backlog(sessions)),)),
        cipher=cipher,
        applications=applications,
        slack_client=slack_client,
        bolt=bolt,
        slack_clients=slack_clients,
        decisions=decisions,
        roles=roles,
        notifier=notifier,
        utilization=utilization,
        utilization_alerts=utilization_alerts,
    )
    if notifier is not None:
        container.extras["sync_observer"] = SlackSyncObserver(notifier)
    if bolt is not None:
        from handlers import register_all

        register_all(bolt, container)
    return container
