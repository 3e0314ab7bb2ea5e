"""The processes behind `credit-desk demo` and `credit-desk dev`, all on 127.0.0.1 and free ports.

`DemoStack` starts, in one process: the NetSuite emulator, the mock Slack Web API (the "Slack" the app talks
to: ``SLACK_API_URL`` points at it), the web app under a real threaded HTTP server, and the embedded job
worker, on embedded defaults (a fresh SQLite file and the in-process Redis stand-in). Its settings are built
from explicit values only, never from the environment or a ``.env`` file, so a developer's own configuration
cannot leak into the demo (or the demo's into theirs).

`credit-desk dev` uses the other helpers here: `missing_dev_settings` names what a real Slack workspace needs,
`emulator_settings` points the NETSUITE_* settings at an in-process emulator, and `check_slack_connection`
asks Slack whether the tokens work before Socket Mode starts, so a bad token is one clear sentence instead of
a reconnect loop.
"""

from __future__ import annotations

import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from werkzeug.serving import BaseWSGIServer

from bot.container import Container, build_container
from bot.federal_id import generate_key
from bot.sandbox import DEFAULT_WORKSPACE
from bot.sandbox.loopback import serve_in_thread, stop_serving
from bot.sandbox.signing import SignedSlackClient
from bot.sandbox.slack_api import MockSlackServer, SlackChannel, SlackUser
from bot.settings import Settings
from bot.worker import EmbeddedWorker
from netsuite.emulator import EmulatorServer

EMULATOR_ACCOUNT_ID = "1234567_SB1"
LOOPBACK = "127.0.0.1"
DEV_DATABASE_URL = "sqlite:///credit-desk-dev.db"
_T = TypeVar("_T")


@dataclass(frozen=True)
class Person:
    """Someone in the pretend workspace, and the part they play in the story."""

    user_id: str
    name: str
    email: str
    role: str


ANALYST = Person("U0DEMOANA1", "Ana", "ana@credit-desk-demo.example", "credit analyst")
MANAGER = Person("U0DEMOMIA1", "Mia", "mia@credit-desk-demo.example", "credit manager")
MANAGERS_CHANNEL = SlackChannel(id="C0DEMOMGR1", name="credit-managers")
ANALYSTS_CHANNEL_ID = DEFAULT_WORKSPACE.channel_id
APPROVAL_LIMIT = Decimal("50000")


@dataclass(frozen=True)
class DemoOptions:
    """What the demo starts. ``workdir`` holds the SQLite file; ``step_timeout`` bounds every wait."""

    workdir: Path
    customers: int = 300
    seed: int = 7
    step_timeout: float = 20.0

    def __post_init__(self) -> None:
        if not 10 <= self.customers <= 100_000:
            raise ValueError(f"customers must be between 10 and 100000, got {self.customers}")
        if self.step_timeout <= 0:
            raise ValueError(f"step_timeout must be positive, got {self.step_timeout}")


class _ExplicitSettings(Settings):
    """Settings from the values passed in alone: no environment variables, no ``.env`` file."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def emulator_netsuite_values(emulator_url: str) -> dict[str, Any]:
    """NETSUITE_* values that point Credit Desk at an emulator (its authentication is off, so the TBA
    credentials are random: they only have to be well-formed), with record links into the emulator."""
    return {
        "netsuite_account_id": EMULATOR_ACCOUNT_ID,
        "netsuite_base_url": emulator_url,
        "netsuite_auth_mode": "tba",
        "netsuite_tba_consumer_key": secrets.token_hex(16),
        "netsuite_tba_consumer_secret": SecretStr(secrets.token_hex(16)),
        "netsuite_tba_token_id": secrets.token_hex(16),
        "netsuite_tba_token_secret": SecretStr(secrets.token_hex(16)),
        "netsuite_max_attempts": 3,
        "netsuite_record_url_template": f"{emulator_url}/services/rest/record/v1/customer/{{id}}",
    }


def demo_settings(workdir: Path, slack_api_url: str, emulator_url: str) -> Settings:
    """Embedded defaults for the demo: a fresh SQLite file in ``workdir``, fakeredis, one process."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{workdir / 'credit-desk-demo.db'}",
        "redis_url": None,
        "auto_migrate": True,
        "federal_id_key": generate_key(),
        "slack_bot_token": f"xoxb-demo-{secrets.token_hex(8)}",
        "slack_signing_secret": secrets.token_hex(16),
        "slack_api_url": slack_api_url,
        "analysts_channel": ANALYSTS_CHANNEL_ID,
        "managers_channel": MANAGERS_CHANNEL.id,
        "analysts": ANALYST.user_id,
        "managers": MANAGER.user_id,
        "analyst_approval_limit": APPROVAL_LIMIT,
        "intake_api_token": secrets.token_urlsafe(24),
        "mirror_interval_minutes": 0,  # the demo ingests once, explicitly
        "sync_schedule": "instant",
        "sync_retry_base_seconds": 0.5,
        "sync_retry_max_seconds": 2.0,
        "slack_listener_threads": 8,
        "embedded_worker": True,
        "log_level": "WARNING",
        "log_format": "console",
        **emulator_netsuite_values(emulator_url),
    }
    return _ExplicitSettings(**values)


class DemoStack:
    """Everything the demo drives, started in order and stopped in reverse (also when a start fails).

    >>> with DemoStack(DemoOptions(workdir=tmp)) as stack:
    ...     stack.http.get("/healthz")
    """

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self._exit = ExitStack()
        self._emulator: EmulatorServer | None = None
        self._slack: MockSlackServer | None = None
        self._container: Container | None = None
        self._server: BaseWSGIServer | None = None
        self._http: httpx.Client | None = None
        self._signed: SignedSlackClient | None = None
        self._worker: EmbeddedWorker | None = None

    def start(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def _start(self) -> None:
        from bot.web import create_app

        self.options.workdir.mkdir(parents=True, exist_ok=True)
        self._emulator = self._exit.enter_context(
            EmulatorServer(seed=self.options.seed, customers=self.options.customers, host=LOOPBACK)
        )
        people = [SlackUser(p.user_id, p.name, p.email) for p in (ANALYST, MANAGER)]
        self._slack = self._exit.enter_context(
            MockSlackServer(users=people, channels=[MANAGERS_CHANNEL], host=LOOPBACK)
        )
        settings = demo_settings(self.options.workdir, self._slack.url, self._emulator.url)
        container = build_container(settings, migrate_now=True)
        self._exit.callback(container.close)
        self._container = container
        server, thread = serve_in_thread(create_app(container), LOOPBACK, 0, name="demo-web")
        self._server = server
        self._exit.callback(stop_serving, server, thread)
        self._http = self._exit.enter_context(httpx.Client(base_url=self.web_url, timeout=30.0))
        secret = settings.slack_signing_secret
        assert secret is not None
        self._signed = SignedSlackClient(self._http, secret.get_secret_value())
        self._worker = EmbeddedWorker(container, poll_seconds=0.1).start()
        self._exit.callback(self._worker.stop)

    def close(self) -> None:
        self._exit.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- the running parts ---------------------------------------------------------------------

    @property
    def emulator(self) -> EmulatorServer:
        return _running(self._emulator, "the NetSuite emulator")

    @property
    def slack(self) -> MockSlackServer:
        return _running(self._slack, "the mock Slack server")

    @property
    def container(self) -> Container:
        return _running(self._container, "the app")

    @property
    def http(self) -> httpx.Client:
        """An HTTP client whose base URL is the web app."""
        return _running(self._http, "the web app")

    @property
    def signed(self) -> SignedSlackClient:
        """Posts Slack-signed requests to the web app's ``/slack/events``."""
        return _running(self._signed, "the web app")

    @property
    def web_url(self) -> str:
        server = _running(self._server, "the web app")
        return f"http://{LOOPBACK}:{server.server_port}"

    @property
    def settings(self) -> Settings:
        return self.container.settings


def _running(value: _T | None, what: str) -> _T:
    if value is None:
        raise RuntimeError(f"{what} is not running: use DemoStack as a context manager or call start()")
    return value


# --------------------------------------------------------------------------- credit-desk dev

DEV_REQUIRED = {
    "SLACK_APP_TOKEN": "an app-level token (xapp-...) with connections:write, for Socket Mode",
    "SLACK_BOT_TOKEN": "the bot token (xoxb-...) from OAuth & Permissions after installing the app",
    "SLACK_SIGNING_SECRET": "the signing secret from Basic Information",
}


def missing_dev_settings(settings: Settings) -> list[str]:
    """The settings `credit-desk dev` needs that are unset, as ``NAME: what it is`` lines."""
    present = {
        "SLACK_APP_TOKEN": settings.slack_app_token,
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
        "SLACK_SIGNING_SECRET": settings.slack_signing_secret,
    }
    return [f"{name}: {DEV_REQUIRED[name]}" for name, value in present.items() if value is None]


def emulator_settings(settings: Settings, emulator_url: str) -> Settings:
    """``settings`` with NetSuite replaced by the emulator at ``emulator_url``.

    The database defaults to ``credit-desk-dev.db`` (unless DATABASE_URL was set), so that the emulator's
    customers never land in the mirror of a database later pointed at the real NetSuite.
    """
    update = emulator_netsuite_values(emulator_url)
    if "database_url" not in settings.model_fields_set:
        update["database_url"] = SecretStr(DEV_DATABASE_URL)
    return settings.model_copy(update=update)


class SlackConnectionError(RuntimeError):
    """Slack (or what SLACK_API_URL points at) refused or was unreachable; the message says what to do."""


def check_slack_connection(settings: Settings) -> str:
    """Ask Slack whether the bot token and the app-level token work, before Socket Mode starts.

    Returns the workspace name. Raises :class:`SlackConnectionError` naming the setting at fault: Socket
    Mode's own client would otherwise log the failure and keep retrying.
    """
    bot, app = settings.slack_bot_token, settings.slack_app_token
    if bot is None or app is None:
        raise SlackConnectionError("SLACK_BOT_TOKEN and SLACK_APP_TOKEN must both be set")
    if not app.get_secret_value().startswith("xapp-"):
        raise SlackConnectionError(
            "SLACK_APP_TOKEN must be an app-level token (xapp-...) with connections:write"
        )
    url = settings.slack_api_url
    try:
        identity = WebClient(token=bot.get_secret_value(), base_url=url, timeout=15).auth_test()
    except SlackApiError as exc:
        raise SlackConnectionError(
            f"Slack refused SLACK_BOT_TOKEN (auth.test at {url}: {exc.response.get('error')}). "
            "Copy the Bot User OAuth Token from the app's OAuth & Permissions page."
        ) from exc
    except (SlackRequestError, OSError) as exc:
        raise SlackConnectionError(f"cannot reach the Slack API at {url} (SLACK_API_URL): {exc}") from exc
    try:
        WebClient(token=app.get_secret_value(), base_url=url, timeout=15).apps_connections_open(
            app_token=app.get_secret_value()
        )
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error == "unknown_method":
            raise SlackConnectionError(
                f"the Slack API at {url} (SLACK_API_URL) does not offer Socket Mode "
                "(apps.connections.open: unknown_method). `credit-desk dev` needs the real Slack: "
                "unset SLACK_API_URL; to try Credit Desk without Slack, run `credit-desk demo`."
            ) from exc
        raise SlackConnectionError(
            f"Slack refused SLACK_APP_TOKEN (apps.connections.open at {url}: {error}). Turn Socket Mode on "
            "in the app's settings and make an app-level token with the connections:write scope."
        ) from exc
    except (SlackRequestError, OSError) as exc:
        raise SlackConnectionError(f"cannot reach the Slack API at {url} (SLACK_API_URL): {exc}") from exc
    return str(identity.get("team") or identity.get("team_id") or "your workspace")
