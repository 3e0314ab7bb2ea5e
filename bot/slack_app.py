"""Build the Bolt app: one workspace with a static bot token, or many through Slack's OAuth install flow.

Why this module exists rather than a bare ``App(...)`` in the container:

* **Several processes, one truth.** With OAuth, installations and OAuth ``state`` values live in our
  database (slack-sdk's SQLAlchemy stores on tables made by migration 0003), never in Bolt's default
  per-host files, so any gunicorn worker or replica can finish an install or authorize a request.
* **Token rotation exactly once.** Slack's refresh tokens are single-use: two workers refreshing the
  same installation at once leave one of them holding a dead token (bolt-python #663). Every refresh,
  whether Bolt does it while authorizing a request or we do it before a proactive message, goes through
  :class:`LockedTokenRotation`: a Redis lock per ``(enterprise_id, team_id)``, then a re-read of the
  installation, then rotate-and-save only if the re-read row still needs it.
* **An ack stays sent.** Bolt's thread runner, when a listener raises *after* ``ack()`` (a ``views.open``
  refused with 429, a database error), sets the ack back to None; if the request thread had not yet seen
  the ack (it looks every 10 ms), it waits out Slack's 3 s and answers 404 "didn't call ack()".
  :class:`KeepAcknowledgement` gives every request an :class:`AckOnce`, which refuses that reset.
* **Retries are not new work.** Slack re-delivers an event it thinks we missed; :class:`EventDeduplication`
  remembers ``event_id`` in Redis (``SET NX EX``) so a repeat is acked without running listeners.
* **Enough threads.** Bolt's default listener pool has 5 threads; a few slow listeners would starve the
  next request's ``ack()`` (slack.md §1.2), so the pool is sized from :class:`SlackConfig`.
* **One Web API base URL** (``SLACK_API_URL``) for every client we make, including the OAuth code exchange
  and the token refresh, so the sandbox and tests never reach slack.com.

The manifest (``app.yaml``) must declare exactly :data:`SLASH_COMMANDS`, :data:`BOT_EVENTS` and
:data:`BOT_SCOPES`; ``tests/test_manifest.py`` holds them to that.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

import redis as redis_lib
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from redis import Redis
from slack_bolt import Ack, App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.middleware import Middleware
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation, InstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation import TokenRotator
from sqlalchemy import Engine

__all__ = [
    "BOTS_TABLE",
    "BOT_EVENTS",
    "BOT_SCOPES",
    "EVENTS_PATH",
    "INSTALLATIONS_TABLE",
    "INSTALL_PATH",
    "LIFECYCLE_EVENTS",
    "OAUTH_REDIRECT_PATH",
    "OAUTH_STATES_TABLE",
    "SLASH_COMMANDS",
    "AckOnce",
    "EventDeduplication",
    "InstallationNotFound",
    "KeepAcknowledgement",
    "LockedTokenRotation",
    "LockingInstallationStoreAuthorize",
    "SlackClients",
    "SlackConfig",
    "TokenRotationUnavailable",
    "build_bolt_app",
    "build_slack_clients",
    "run_socket_mode",
    "socket_mode_handler",
]

log = structlog.get_logger(__name__)

# --------------------------------------------------------------------------- what the app declares

#: Slash commands the handlers register; ``app.yaml`` must declare exactly these.
SLASH_COMMANDS: Final = ("/credit", "/utilization")
#: Events API subscriptions; ``app.yaml`` must declare exactly these.
BOT_EVENTS: Final = ("app_home_opened", "app_uninstalled", "tokens_revoked")
#: The events this module answers itself (installation clean-up); handlers must not register them.
LIFECYCLE_EVENTS: Final = ("app_uninstalled", "tokens_revoked")
#: Bot scopes requested at install time; ``app.yaml`` must declare exactly these.
#: ``chat:write.public`` is left out on purpose: the bot is invited to the credit channel once, DMs go
#: through ``im:write``, and slash-command answers use ``response_url``, which needs no membership.
#: ``channels:history`` / ``groups:history`` (public / private credit channel) let a redelivered audit line
#: read its thread back first (``conversations.replies``), so a process killed right after posting one does
#: not make it appear twice; the bot reads only threads under its own messages.
BOT_SCOPES: Final = (
    "commands",
    "chat:write",
    "channels:history",
    "groups:history",
    "users:read",
    "users:read.email",
    "im:write",
    "usergroups:read",
    "files:write",
)

#: One Request URL for events, commands, interactivity and options loads (Bolt routes by body).
EVENTS_PATH: Final = "/slack/events"
INSTALL_PATH: Final = "/slack/install"
OAUTH_REDIRECT_PATH: Final = "/slack/oauth_redirect"
SLACK_AUTHORIZATION_URL: Final = "https://slack.com/oauth/v2/authorize"

#: Table names of slack-sdk's SQLAlchemy stores (created by migration 0003).
INSTALLATIONS_TABLE: Final = "slack_installations"
BOTS_TABLE: Final = "slack_bots"
OAUTH_STATES_TABLE: Final = "slack_oauth_states"

#: Web API timeout for the token refresh: well under the rotation lock's lifetime, so a hung
#: refresh cannot outlive the lock and let a second process refresh the same token.
ROTATION_HTTP_TIMEOUT_S: Final = 10


# --------------------------------------------------------------------------- configuration


class SlackConfig(BaseModel):
    """Everything the Slack wiring needs, independent of how the settings are read.

    Exactly one mode: ``bot_token`` (one workspace, the token from "Install to Workspace") or
    ``client_id`` + ``client_secret`` (any number of workspaces via ``/slack/install``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    signing_secret: SecretStr
    bot_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    redirect_uri: str | None = Field(
        None,
        description="Full OAuth redirect URL; needed when the app lists several redirect URLs.",
    )
    authorization_url: str = SLACK_AUTHORIZATION_URL
    scopes: tuple[str, ...] = BOT_SCOPES
    listener_threads: int = Field(32, ge=1, le=512)
    token_rotation_minutes: int = Field(
        120, ge=1, le=11 * 60, description="Refresh a token this long before it expires."
    )
    rotation_lock_seconds: float = Field(
        30.0, gt=ROTATION_HTTP_TIMEOUT_S, description="Lifetime of the per-team rotation lock."
    )
    rotation_wait_seconds: float = Field(
        15.0, gt=0, description="How long a request waits for another process's rotation."
    )
    state_expiration_seconds: int = Field(600, ge=60, le=3600)
    event_dedupe_seconds: int = Field(3600, ge=60, description="How long an event_id is remembered.")
    redis_prefix: str = Field("credit-desk:slack", min_length=1)

    @field_validator("signing_secret", "bot_token", "client_secret")
    @classmethod
    def _not_blank_secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().strip():
            raise ValueError("must not be blank")
        return v

    @field_validator("client_id")
    @classmethod
    def _not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be blank")
        return v

    @field_validator("redirect_uri")
    @classmethod
    def _redirect_matches_route(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an absolute http(s) URL, got {v!r}")
        if parts.path != OAUTH_REDIRECT_PATH:
            raise ValueError(
                f"must end in {OAUTH_REDIRECT_PATH} (the route that finishes installs), got {v!r}"
            )
        return v

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or any(not s or "," in s or s != s.strip() for s in v):
            raise ValueError("scopes must be a non-empty list of scope names")
        return v

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        oauth_parts = (self.client_id is not None, self.client_secret is not None)
        if any(oauth_parts) and not all(oauth_parts):
            raise ValueError("the OAuth install flow needs both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
        if self.bot_token is not None and all(oauth_parts):
            raise ValueError(
                "set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET "
                "(install flow, several workspaces), not both"
            )
        if self.bot_token is None and not all(oauth_parts):
            raise ValueError("set SLACK_BOT_TOKEN, or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
        if self.rotation_wait_seconds >= self.rotation_lock_seconds:
            raise ValueError("rotation_wait_seconds must be shorter than rotation_lock_seconds")
        return self

    @property
    def mode(self) -> Literal["single_workspace", "oauth"]:
        return "single_workspace" if self.bot_token is not None else "oauth"

    def oauth_credentials(self) -> tuple[str, str]:
        """(client_id, client_secret); only in OAuth mode."""
        if self.client_id is None or self.client_secret is None:
            raise RuntimeError("not in OAuth mode: SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are unset")
        return self.client_id, self.client_secret.get_secret_value()


def _api_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the Slack Web API base URL must be an absolute http(s) URL, got {url!r}")
    return url if url.endswith("/") else url + "/"


# --------------------------------------------------------------------------- errors


class InstallationNotFound(LookupError):
    """Credit Desk is not (or no longer) installed in the workspace asked for."""


class TokenRotationUnavailable(RuntimeError):
    """A token has expired and another process held the rotation lock for too long to wait."""


# --------------------------------------------------------------------------- token rotation


class LockedTokenRotation:
    """Refresh an installation's expiring tokens at most once across every process.

    The check before the lock is only a cheap filter. Under the lock the installation is read again,
    because another process may have rotated (and consumed the refresh token) while we waited; only
    if the fresh row still needs it do we call ``oauth.v2.access`` and save the result, still holding
    the lock so nobody reads the old row in between.
    """

    def __init__(
        self,
        *,
        store: InstallationStore,
        rotator: TokenRotator,
        redis_client: Redis,
        minutes_before_expiration: int,
        lock_seconds: float,
        wait_seconds: float,
        key_prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._rotator = rotator
        self._redis = redis_client
        self._minutes = minutes_before_expiration
        self._lock_seconds = lock_seconds
        self._wait_seconds = wait_seconds
        self._prefix = key_prefix
        self._clock = clock

    def lock_key(self, enterprise_id: str | None, team_id: str | None) -> str:
        return f"{self._prefix}:token-rotation:{enterprise_id or '-'}:{team_id or '-'}"

    def needs_rotation(self, installation: Installation) -> bool:
        """True when a token with a refresh token expires within the configured window."""
        horizon = self._clock() + self._minutes * 60
        bot_due = (
            installation.bot_refresh_token is not None
            and installation.bot_token_expires_at is not None
            and installation.bot_token_expires_at <= horizon
        )
        user_due = (
            installation.user_refresh_token is not None
            and installation.user_token_expires_at is not None
            and installation.user_token_expires_at <= horizon
        )
        return bot_due or user_due

    def refresh_if_needed(self, installation: Installation) -> Installation | None:
        """The installation with fresh tokens, or None when the given one is still good.

        Raises ``SlackTokenRotationError`` when Slack refuses the refresh and
        :class:`TokenRotationUnavailable` when the token has expired and the lock stayed busy.
        """
        if not self.needs_rotation(installation):
            return None
        key = self.lock_key(installation.enterprise_id, installation.team_id)
        lock = self._redis.lock(key, timeout=self._lock_seconds, blocking=True)
        if not lock.acquire(blocking_timeout=self._wait_seconds):
            return self._without_lock(installation, key)
        try:
            current = self._reread(installation)
            refreshed = self._rotator.perform_token_rotation(
                installation=current, minutes_before_expiration=self._minutes
            )
            if refreshed is not None:
                self._store.save(refreshed)
                log.info(
                    "slack.token_rotated",
                    enterprise_id=installation.enterprise_id,
                    team_id=installation.team_id,
                )
                return refreshed
            return current if _tokens(current) != _tokens(installation) else None
        finally:
            with contextlib.suppress(redis_lib.exceptions.LockError):
                lock.release()  # an expired lock is somebody else's now: nothing to release

    def _without_lock(self, installation: Installation, key: str) -> Installation | None:
        """Another process is rotating: use whatever is stored if it has not expired yet.

        Tokens are refreshed ``minutes_before_expiration`` early, so the old token usually still
        works; only an already-expired token is an error.
        """
        current = self._reread(installation)
        expires_at = current.bot_token_expires_at if current.bot_token is not None else None
        if expires_at is not None and expires_at <= self._clock():
            raise TokenRotationUnavailable(
                f"the token for team {installation.team_id} has expired and {key} stayed locked "
                f"for {self._wait_seconds}s"
            )
        log.warning("slack.token_rotation_lock_busy", key=key, team_id=installation.team_id)
        return current if _tokens(current) != _tokens(installation) else None

    def _reread(self, installation: Installation) -> Installation:
        """The stored row as it is now, shaped like the one the caller had.

        Bolt strips the installer's user token before rotating when the request comes from another
        user; the re-read row must not bring it back.
        """
        with_user = installation.user_token is not None
        fresh = self._store.find_installation(
            enterprise_id=installation.enterprise_id,
            team_id=installation.team_id,
            user_id=installation.user_id if with_user else None,
            is_enterprise_install=installation.is_enterprise_install,
        )
        if fresh is None:
            return installation  # deleted meanwhile (uninstall): let the refresh fail loudly
        if not with_user:
            fresh.user_token = None
            fresh.user_refresh_token = None
            fresh.user_token_expires_at = None
            fresh.user_scopes = None
        return fresh


def _tokens(installation: Installation) -> tuple[str | None, str | None]:
    return installation.bot_token, installation.user_token


class LockingInstallationStoreAuthorize(InstallationStoreAuthorize):
    """Bolt's installation-store authorize, with every rotation done by :class:`LockedTokenRotation`.

    Bolt calls ``_rotate_and_save_tokens_if_necessary`` for the installation it found and expects the
    refreshed installation back (or None). We keep Bolt's lookup and ``auth.test`` cache and replace only
    that step. (Bolt's ``find_bot``-only path, used when the store lacks ``find_installation`` or
    ``bot_only=True``, is not taken with the SQLAlchemy store.)
    """

    def __init__(self, *, rotation: LockedTokenRotation, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rotation = rotation

    def _rotate_and_save_tokens_if_necessary(self, installation: Installation | None) -> Installation | None:
        if installation is None:
            return None
        return self._rotation.refresh_if_needed(installation)


# --------------------------------------------------------------------------- acknowledgement


class AckOnce(Ack):
    """Bolt's ``ack``, except that once a listener has acknowledged, the answer can no longer be taken back.

    Bolt's sync ``ThreadListenerRunner`` runs the listener on the listener pool while the request thread
    polls ``ack.response`` every 10 ms for up to 3 s. When the listener raises after ``ack()``, the runner's
    error path sets ``ack.response = None`` ("already acknowledged": slack_bolt/listener/thread_runner.py).
    A request thread that had not looked yet then never sees the ack: it waits out the 3 s, logs
    "<listener> didn't call ack()" and Bolt answers 404, although the listener acked first thing. That is
    what a Details click got while Slack answered ``views.open`` with 429: the refusal comes back in a few
    milliseconds, inside one polling interval. Here the reset is ignored (and logged); the error itself
    still reaches the ``@app.error`` handler, and Slack gets the answer the listener gave.
    """

    def __init__(self) -> None:
        self._response: BoltResponse | None = None
        super().__init__()  # type: ignore[no-untyped-call]  # Bolt's Ack.__init__ is unannotated

    @property
    def response(self) -> BoltResponse | None:
        return self._response

    @response.setter
    def response(self, value: BoltResponse | None) -> None:
        if value is None and self._response is not None:
            log.info("slack.ack_kept", status=self._response.status)
            return
        self._response = value


class KeepAcknowledgement(Middleware):
    """Give each request an :class:`AckOnce` before any listener runs (global middleware are applied
    before the listener runner reads ``context.ack``)."""

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],
    ) -> BoltResponse | None:
        current = req.context.get("ack")
        if not isinstance(current, AckOnce):
            kept = AckOnce()
            if isinstance(current, Ack) and current.response is not None:
                kept.response = current.response  # acked by an earlier middleware: keep that answer
            req.context["ack"] = kept
        return next()


# --------------------------------------------------------------------------- event dedupe


class EventDeduplication(Middleware):
    """Ack an Events API delivery whose ``event_id`` was already seen, without running listeners.

    Slack re-sends an event after 3 s without a 2xx (up to 3 retries), even while the first attempt is
    still being handled; ``event_id`` is identical across re-deliveries. The key is claimed with
    ``SET NX EX`` after authorization, so only deliveries that reach the listeners are remembered.
    If Redis is unreachable the event is processed anyway (a possible duplicate beats a lost event);
    actions that change data must be idempotent in the database regardless.
    """

    def __init__(self, redis_client: Redis, *, ttl_seconds: int, key_prefix: str) -> None:
        if ttl_seconds < 1:
            raise ValueError(f"ttl_seconds must be >= 1, got {ttl_seconds}")
        self._redis = redis_client
        self._ttl = ttl_seconds
        self._prefix = key_prefix

    def key(self, event_id: str) -> str:
        return f"{self._prefix}:event:{event_id}"

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],
    ) -> BoltResponse | None:
        body = req.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if not isinstance(event_id, str) or not event_id:
            return next()
        try:
            first = self._redis.set(self.key(event_id), b"1", nx=True, ex=self._ttl)
        except redis_lib.exceptions.RedisError as exc:
            log.warning("slack.event_dedupe_unavailable", event_id=event_id, error=repr(exc))
            return next()
        if first:
            return next()
        retry_num = req.headers.get("x-slack-retry-num", [None])[0]
        retry_reason = req.headers.get("x-slack-retry-reason", [None])[0]
        log.info("slack.event_duplicate", event_id=event_id, retry_num=retry_num, retry_reason=retry_reason)
        return BoltResponse(status=200, body="")


# --------------------------------------------------------------------------- stores and clients


def _installation_store(config: SlackConfig, engine: Engine) -> SQLAlchemyInstallationStore:
    client_id, _ = config.oauth_credentials()
    return SQLAlchemyInstallationStore(
        client_id=client_id,
        engine=engine,
        bots_table_name=BOTS_TABLE,
        installations_table_name=INSTALLATIONS_TABLE,
    )


def _rotation(
    config: SlackConfig,
    *,
    store: InstallationStore,
    redis_client: Redis,
    api_url: str,
) -> LockedTokenRotation:
    client_id, client_secret = config.oauth_credentials()
    rotator = TokenRotator(
        client_id=client_id,
        client_secret=client_secret,
        client=WebClient(base_url=api_url, timeout=ROTATION_HTTP_TIMEOUT_S),
    )
    return LockedTokenRotation(
        store=store,
        rotator=rotator,
        redis_client=redis_client,
        minutes_before_expiration=config.token_rotation_minutes,
        lock_seconds=config.rotation_lock_seconds,
        wait_seconds=config.rotation_wait_seconds,
        key_prefix=config.redis_prefix,
    )


class SlackClients:
    """WebClients for messages no Slack request triggered (manager notifications, sync results).

    Bolt only rotates tokens while authorizing an incoming request, so a proactive send must rotate
    itself; :meth:`client_for_team` does, under the same lock as request authorization.
    """

    def __init__(
        self,
        *,
        api_url: str,
        bot_token: str | None = None,
        store: InstallationStore | None = None,
        rotation: LockedTokenRotation | None = None,
    ) -> None:
        if (bot_token is None) == (store is None):
            raise ValueError("give bot_token (one workspace) or store (OAuth installs), exactly one")
        if store is not None and rotation is None:
            raise ValueError("OAuth installs need a LockedTokenRotation")
        self._api_url = _api_base_url(api_url)
        self._bot_token = bot_token
        self._store = store
        self._rotation = rotation

    def client_for_team(self, team_id: str | None, enterprise_id: str | None = None) -> WebClient:
        """A client with a valid bot token for the workspace (``team_id``) or org (``enterprise_id``).

        One workspace: the configured token, whatever the team. OAuth: the stored installation,
        rotated first if its token expires soon. Raises :class:`InstallationNotFound`.
        """
        if self._bot_token is not None:
            return WebClient(token=self._bot_token, base_url=self._api_url)
        assert self._store is not None and self._rotation is not None
        if team_id is None and enterprise_id is None:
            raise ValueError("give team_id or enterprise_id")
        installation = self._store.find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=team_id is None,
        )
        if installation is None or installation.bot_token is None:
            raise InstallationNotFound(
                f"Credit Desk is not installed in team={team_id} enterprise={enterprise_id}: "
                f"install it from {INSTALL_PATH}"
            )
        refreshed = self._rotation.refresh_if_needed(installation)
        token = (refreshed or installation).bot_token
        if token is None:  # the refresh answered without a bot token: treat as uninstalled
            raise InstallationNotFound(f"no bot token for team={team_id} enterprise={enterprise_id}")
        return WebClient(token=token, base_url=self._api_url)


def build_slack_clients(
    config: SlackConfig,
    *,
    engine: Engine,
    redis: Redis,
    client_base_url: str,
) -> SlackClients:
    """The :class:`SlackClients` for ``config``'s mode (shares nothing in-process with the Bolt app:
    installations live in the database and the rotation lock in Redis, so any process agrees)."""
    api_url = _api_base_url(client_base_url)
    if config.bot_token is not None:
        return SlackClients(api_url=api_url, bot_token=config.bot_token.get_secret_value())
    store = _installation_store(config, engine)
    return SlackClients(
        api_url=api_url,
        store=store,
        rotation=_rotation(config, store=store, redis_client=redis, api_url=api_url),
    )


# --------------------------------------------------------------------------- the Bolt app


def build_bolt_app(
    config: SlackConfig,
    *,
    engine: Engine,
    redis: Redis,
    client_base_url: str,
    listener_executor: Executor | None = None,
) -> App:
    """A Bolt ``App`` for ``config``'s mode; register listeners with ``handlers.register_all``.

    Start-up makes no network call (no ``auth.test``), so the web app starts while Slack is down.
    ``listener_executor`` defaults to a pool of ``config.listener_threads`` threads.
    """
    api_url = _api_base_url(client_base_url)
    executor = listener_executor or ThreadPoolExecutor(
        max_workers=config.listener_threads, thread_name_prefix="slack-listener"
    )
    signing_secret = config.signing_secret.get_secret_value()
    if config.bot_token is not None:
        app = App(
            name="credit-desk",
            client=WebClient(token=config.bot_token.get_secret_value(), base_url=api_url),
            signing_secret=signing_secret,
            token_verification_enabled=False,
            process_before_response=False,
            listener_executor=executor,
        )
        _acknowledge_lifecycle_events(app)
    else:
        app = _build_oauth_app(config, engine=engine, redis_client=redis, api_url=api_url, executor=executor)
        # Deletes installations on app_uninstalled / tokens_revoked (slack.md §1.5).
        app.enable_token_revocation_listeners()
    app.use(KeepAcknowledgement())
    app.use(
        EventDeduplication(redis, ttl_seconds=config.event_dedupe_seconds, key_prefix=config.redis_prefix)
    )
    return app


def _build_oauth_app(
    config: SlackConfig,
    *,
    engine: Engine,
    redis_client: Redis,
    api_url: str,
    executor: Executor,
) -> App:
    client_id, client_secret = config.oauth_credentials()
    store = _installation_store(config, engine)
    client = WebClient(base_url=api_url)  # no token: used for oauth.v2.access and per-request copies
    oauth_settings = OAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(config.scopes),
        user_scopes=[],
        redirect_uri=config.redirect_uri,
        install_path=INSTALL_PATH,
        install_page_rendering_enabled=False,  # straight to Slack's consent screen
        redirect_uri_path=OAUTH_REDIRECT_PATH,
        authorization_url=config.authorization_url,
        installation_store=store,
        token_rotation_expiration_minutes=config.token_rotation_minutes,
        state_store=SQLAlchemyOAuthStateStore(
            expiration_seconds=config.state_expiration_seconds,
            engine=engine,
            table_name=OAUTH_STATES_TABLE,
        ),
        state_expiration_seconds=config.state_expiration_seconds,
    )
    authorize = LockingInstallationStoreAuthorize(
        rotation=_rotation(config, store=store, redis_client=redis_client, api_url=api_url),
        logger=logging.getLogger(__name__),
        installation_store=store,
        client_id=client_id,
        client_secret=client_secret,
        token_rotation_expiration_minutes=config.token_rotation_minutes,
        cache_enabled=True,  # one auth.test per token per process, not per request
        client=client,
    )
    return App(
        name="credit-desk",
        client=client,
        signing_secret=config.signing_secret.get_secret_value(),
        authorize=authorize,  # type: ignore[arg-type]  # Bolt accepts Authorize instances (app.py)
        installation_store=store,
        oauth_settings=oauth_settings,
        process_before_response=False,
        listener_executor=executor,
    )


def _acknowledge_lifecycle_events(app: App) -> None:
    """One workspace has no installation rows to delete, but the events must still get a 200:
    an unhandled subscribed event is answered 404 and Slack retries it."""

    def _lifecycle(event: dict[str, Any], body: dict[str, Any]) -> None:
        log.warning(
            "slack.app_lifecycle_event",
            event_type=event.get("type"),
            team_id=body.get("team_id"),
            hint="the static SLACK_BOT_TOKEN no longer works once the app is uninstalled or revoked",
        )

    for event_type in LIFECYCLE_EVENTS:
        app.event(event_type)(_lifecycle)


# --------------------------------------------------------------------------- Socket Mode


def socket_mode_handler(app: App, app_token: str) -> SocketModeHandler:
    """A Socket Mode handler for ``app`` (Bolt's built-in client: no extra package needed).

    It reuses ``app.client``, so ``apps.connections.open`` goes to the configured Web API URL.
    Call ``.start()`` (blocks) or ``.close()`` on the result.
    """
    if not app_token.startswith("xapp-"):
        raise ValueError("SLACK_APP_TOKEN must be an app-level token (xapp-...) with connections:write")
    return SocketModeHandler(app, app_token)


def run_socket_mode(app: App, app_token: str) -> None:
    """Serve ``app`` over Socket Mode until the process is stopped (blocks)."""
    handler = socket_mode_handler(app, app_token)
    log.info("slack.socket_mode_starting")
    handler.start()  # type: ignore[no-untyped-call]
