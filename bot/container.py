"""Build every long-lived dependency once, at start-up, and hand them around.

Nothing in the product creates an engine, a Redis client or a Slack app at import time; the web process, the
worker and the CLI each call `build_container(settings)` and pass the result down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import redis
import structlog
from slack_bolt import App as BoltApp
from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.applications.service import ApplicationService
from bot.federal_id import FederalIdCipher, generate_key, load_or_create_key_file
from bot.observability import Metrics
from bot.settings import Settings
from storage import migrate
from storage.db import make_engine, make_session_factory
from storage.redis import make_redis

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
    extras: dict[str, object] = field(default_factory=dict)

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


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


def build_slack(settings: Settings) -> tuple[WebClient | None, BoltApp | None]:
    if settings.slack_bot_token is None or settings.slack_signing_secret is None:
        return None, None
    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    app = BoltApp(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        token_verification_enabled=False,  # no auth.test call at start-up: start even if Slack is down
        process_before_response=False,
    )
    return client, app


def build_container(settings: Settings, *, migrate_now: bool | None = None) -> Container:
    engine = make_engine(settings.database_dsn)
    if migrate_now if migrate_now is not None else settings.should_auto_migrate:
        migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    cipher = federal_id_cipher(settings)
    slack_client, bolt = build_slack(settings)
    container = Container(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=make_redis(settings.redis_url.get_secret_value() if settings.redis_url is not None else None),
        metrics=Metrics(),
        cipher=cipher,
        applications=ApplicationService(sessions, cipher) if cipher is not None else None,
        slack_client=slack_client,
        bolt=bolt,
    )
    if bolt is not None:
        from handlers import register_all

        register_all(bolt, container)
    return container
