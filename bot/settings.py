"""Settings: one pydantic-settings class read from the environment and an optional `.env`.

Secrets are `SecretStr` so that `repr()`, logs and `credit-desk config` never show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///credit-desk.db"


class Settings(BaseSettings):
    """Everything Credit Desk reads from its environment.

    Field names map to upper-case environment variables (`database_url` <- `DATABASE_URL`).
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Storage
    database_url: SecretStr = Field(
        SecretStr(DEFAULT_DATABASE_URL),
        description="SQLAlchemy URL. Default: an SQLite file in the working directory.",
    )
    redis_url: SecretStr | None = Field(
        None, description="Redis URL. Unset: an in-process fakeredis (embedded defaults)."
    )
    auto_migrate: bool | None = Field(
        None,
        description="Apply migrations at start-up. Default: on for SQLite, off for PostgreSQL.",
    )

    # Slack
    slack_bot_token: SecretStr | None = Field(None, description="Bot token (xoxb-...).")
    slack_signing_secret: SecretStr | None = Field(
        None, description="Signing secret; verifies requests to /slack/events."
    )
    slack_app_token: SecretStr | None = Field(
        None, description="App-level token (xapp-...); turns on Socket Mode."
    )
    slack_client_id: str | None = Field(
        None,
        description=(
            "OAuth client id; with SLACK_CLIENT_SECRET, workspaces install from /slack/install "
            "(instead of one workspace with SLACK_BOT_TOKEN)."
        ),
    )
    slack_client_secret: SecretStr | None = Field(None, description="OAuth client secret.")
    slack_redirect_uri: str | None = Field(
        None,
        description="OAuth redirect URL, https://<host>/slack/oauth_redirect (if the app lists several).",
    )
    slack_token_rotation_minutes: int = Field(
        120, ge=1, le=660, description="Refresh rotating Slack tokens this many minutes before they expire."
    )
    slack_api_url: str = Field(
        "https://slack.com/api/",
        description="Base URL of the Slack Web API (sandboxes and tests point it elsewhere).",
    )

    # Slack: where things go and who may do what
    analysts_channel: str | None = Field(
        None, description="Channel id where new applications are posted for analysts."
    )
    managers_channel: str | None = Field(
        None, description="Channel id where approvals awaiting a manager are posted."
    )
    analysts: str = Field(
        "", description="Analysts: Slack user ids (U...) and user group ids (S...), comma-separated."
    )
    managers: str = Field("", description="Managers: Slack user ids and user group ids, comma-separated.")
    admins: str = Field("", description="Admins: Slack user ids and user group ids, comma-separated.")
    analyst_approval_limit: Decimal = Field(
        Decimal("50000"),
        ge=0,
        description="Largest credit limit an analyst approves alone; above it a manager must confirm.",
    )
    manager_reminder_minutes: int = Field(
        240, ge=1, description="Remind managers about an approval waiting longer than this."
    )
    outbox_lease_seconds: int = Field(
        180,
        ge=60,
        le=3600,
        description="How long a process holds a decision's Slack updates before the repair pass may deliver "
        "them (a web process killed after answering loses nothing; its updates arrive after this).",
    )
    outbox_repair_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="How often a worker delivers Slack updates whose holder died or failed.",
    )
    slack_listener_threads: int = Field(
        32, ge=5, le=512, description="Threads running Slack listeners (Bolt's default of 5 is too few)."
    )

    # NetSuite
    netsuite_account_id: str | None = Field(
        None, description="NetSuite account id, e.g. 1234567 or 1234567_SB1."
    )
    netsuite_base_url: str | None = Field(
        None, description="Override of the account's REST host (the emulator, a proxy)."
    )
    netsuite_concurrency_limit: int = Field(
        5, ge=1, le=100, description="Concurrent NetSuite requests across all processes."
    )
    netsuite_auth_mode: Literal["oauth2", "tba"] = Field(
        "oauth2", description="OAuth 2.0 client credentials (preferred) or Token-Based Authentication."
    )
    netsuite_oauth2_client_id: str | None = Field(None, description="OAuth 2.0: the integration's client id.")
    netsuite_oauth2_certificate_id: str | None = Field(
        None, description="OAuth 2.0: certificate id from the M2M setup (the JWT `kid`)."
    )
    netsuite_oauth2_private_key_pem: SecretStr | None = Field(
        None, description="OAuth 2.0: PEM private key of that certificate."
    )
    netsuite_oauth2_algorithm: Literal["PS256", "ES256"] = Field(
        "PS256", description="OAuth 2.0: JWT algorithm."
    )
    netsuite_tba_consumer_key: str | None = Field(None, description="TBA: consumer key.")
    netsuite_tba_consumer_secret: SecretStr | None = Field(None, description="TBA: consumer secret.")
    netsuite_tba_token_id: str | None = Field(None, description="TBA: token id.")
    netsuite_tba_token_secret: SecretStr | None = Field(None, description="TBA: token secret.")
    netsuite_read_timeout_seconds: float = Field(60.0, gt=0, le=900, description="NetSuite read timeout.")
    netsuite_max_attempts: int = Field(7, ge=1, le=20, description="Attempts per NetSuite request.")
    netsuite_suiteql_timezone: str = Field(
        "UTC",
        description="Time zone of SuiteQL TO_CHAR/TO_TIMESTAMP values (the integration user's; unconfirmed).",
    )
    mirror_interval_minutes: int = Field(
        15, ge=0, description="Refresh the customer mirror this often (0: only by `credit-desk ingest`)."
    )
    mirror_overlap_minutes: int = Field(
        60, ge=0, description="Re-read customers modified this long before the last watermark."
    )
    sync_schedule: str = Field(
        "instant",
        description="When a requested sync is written: `instant`, or `daily at HH:MM <IANA zone>`.",
    )
    sync_max_attempts: int = Field(5, ge=1, le=50, description="Attempts per sync before it fails.")
    sync_retry_base_seconds: float = Field(30.0, gt=0, description="First retry delay of a sync (doubles).")
    sync_retry_max_seconds: float = Field(3600.0, gt=0, description="Longest retry delay of a sync.")
    sync_lease_seconds: float = Field(
        900.0, gt=0, description="A sync running longer than this belongs to a dead worker and is retried."
    )
    sync_reconcile_seconds: float = Field(
        15.0, gt=0, description="How often workers re-queue due syncs whose jobs were lost."
    )
    sync_external_id_prefix: str = Field(
        "credit-desk-", description="External id of a customer we create: this prefix + our reference."
    )
    sync_company_name: Literal["legal", "dba", "legal_dba"] = Field(
        "legal_dba", description="Company Name from the legal name, the DBA, or `Legal dba DBA`."
    )
    netsuite_tax_reg_field: str = Field(
        "vatRegNumber",
        description="Where the Federal ID goes: vatRegNumber, taxRegistration (SuiteTax) or a custentity id.",
    )
    netsuite_tax_nexus_country: str = Field("US", description="Country of the SuiteTax registration line.")
    netsuite_subsidiary_id: str | None = Field(
        None, description="Subsidiary of customers we create (OneWorld)."
    )
    netsuite_new_customer_defaults: str = Field(
        "{}", description="Other values NetSuite requires on a new customer, as a JSON object."
    )
    netsuite_contact_role_id: str | None = Field(
        None, description="Contact role for the statements contact when attached to the customer."
    )
    netsuite_record_url_template: str = Field(
        "https://{account}.app.netsuite.com/app/common/entity/custjob.nl?id={id}",
        description="Link to a customer record in NetSuite, for Slack messages.",
    )
    # Utilization (/utilization, the reps' App Home, alerts)
    utilization_includes_orders: bool = Field(
        False,
        description=(
            "Count unbilled orders against the credit limit, as NetSuite's \"Customer Credit Limit Includes "
            'Orders" preference does: utilization = (balance + unbilled orders) / limit.'
        ),
    )
    utilization_near_percent: int = Field(
        80, ge=1, le=100, description="A customer is near its limit at this utilization (percent)."
    )
    utilization_page_size: int = Field(
        10, ge=1, le=25, description="Customers per page of a `/utilization` reply."
    )
    utilization_rep_overrides: str = Field(
        "",
        description=(
            "Slack users mapped to NetSuite sales reps by hand, for emails that differ: "
            "`U0123ABCD=42,U0456EFGH=57` (Slack user id = sales rep internal id)."
        ),
    )
    utilization_alerts: bool = Field(
        True, description="DM reps after each mirror refresh when a customer crosses the near or over line."
    )
    utilization_chart: bool = Field(
        True, description="Show reps a utilization chart image in App Home (uploaded with files:write)."
    )

    default_terms: str = Field(
        "Due on receipt,Net 15,Net 30,Net 45,Net 60",
        description="Terms offered when the mirror holds none yet (comma-separated).",
    )

    # Intake and data protection
    intake_api_token: SecretStr | None = Field(
        None, description="Bearer token for POST /api/applications. Unset: the intake API is off."
    )
    intake_max_body_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest accepted intake request body."
    )
    intake_rate_limit: int = Field(
        300,
        ge=0,
        description=(
            "Intake API requests allowed per window, per token (per client address for a wrong or missing "
            "token); beyond it `429` with Retry-After. 0 turns the limit off."
        ),
    )
    intake_rate_window_seconds: int = Field(
        60, ge=1, le=86400, description="Length of the intake API's rate-limit window, in seconds."
    )
    federal_id_key: SecretStr | None = Field(
        None,
        description=(
            "Fernet key(s) encrypting the Federal ID at rest; comma-separated, newest first, "
            "to rotate. Unset on SQLite: a key file is made beside the database."
        ),
    )

    # Web and processes
    host: str = Field("127.0.0.1", description="Address `credit-desk serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `credit-desk serve` binds.")
    web_workers: int | None = Field(
        None,
        ge=1,
        description="gunicorn worker processes. Default: 1 on embedded defaults, else 2.",
    )
    web_threads: int = Field(8, ge=1, le=256, description="Threads per gunicorn worker.")
    worker_threads: int = Field(
        4,
        ge=1,
        le=64,
        description="Jobs one `credit-desk worker` runs at once, on threads (1: fork a process per job).",
    )
    embedded_worker: bool | None = Field(
        None,
        description="Run a job worker inside `serve`. Default: on when REDIS_URL is unset.",
    )
    prometheus_multiproc_dir: Path | None = Field(
        None, description="Directory for multi-process metrics. Default: a temporary directory."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["json", "console"] = Field(
        "json", description="json (one object a line) or console (for people)."
    )

    @field_validator("slack_api_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    @field_validator("slack_redirect_uri")
    @classmethod
    def _redirect_path(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v).path != "/slack/oauth_redirect":
            raise ValueError("must be an absolute URL ending in /slack/oauth_redirect")
        return v

    @model_validator(mode="after")
    def _one_slack_mode(self) -> Settings:
        if (self.slack_client_id is None) != (self.slack_client_secret is None):
            raise ValueError("set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET together")
        if self.slack_bot_token is not None and self.slack_client_id is not None:
            raise ValueError(
                "set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET "
                "(install flow, several workspaces), not both"
            )
        return self

    @field_validator("sync_schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        from bot.sync.schedule import SyncSchedule

        SyncSchedule.parse(v)
        return v

    @field_validator("utilization_rep_overrides")
    @classmethod
    def _rep_overrides(cls, v: str) -> str:
        from bot.utilization.service import parse_rep_overrides

        parse_rep_overrides(v)
        return v

    @field_validator("netsuite_base_url")
    @classmethod
    def _no_trailing_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else v

    @property
    def database_dsn(self) -> str:
        """The database URL itself (it may hold a password: never log it; `describe` masks it)."""
        return self.database_url.get_secret_value()

    @staticmethod
    def id_list(value: str) -> frozenset[str]:
        return frozenset(v.strip() for v in value.split(",") if v.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_dsn.startswith("sqlite")

    @property
    def uses_fakeredis(self) -> bool:
        return self.redis_url is None

    @property
    def embedded(self) -> bool:
        """Embedded defaults: the in-process Redis stand-in, so one process does everything."""
        return self.uses_fakeredis

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def run_embedded_worker(self) -> bool:
        return self.embedded if self.embedded_worker is None else self.embedded_worker

    @property
    def effective_web_workers(self) -> int:
        if self.embedded:
            return 1  # fakeredis lives in one process
        return self.web_workers or 2

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_dsn.split(":///", 1)[-1].split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)


@dataclass(frozen=True)
class Feature:
    name: str
    enabled: bool
    why_off: str = ""


def features(settings: Settings) -> list[Feature]:
    """Which features are on, and for want of which setting the others are off."""

    def need(name: str, missing: list[str], extra: str = "") -> Feature:
        if not missing:
            return Feature(name, True)
        return Feature(name, False, f"set {' and '.join(missing)}{extra}")

    slack_missing = [
        n
        for n, v in (
            ("SLACK_BOT_TOKEN", settings.slack_bot_token or settings.slack_client_id),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
        )
        if v is None
    ]
    fid_missing: list[str] = []
    if settings.federal_id_key is None and not settings.is_sqlite:
        fid_missing = ["FEDERAL_ID_KEY"]
    intake_missing = ([] if settings.intake_api_token else ["INTAKE_API_TOKEN"]) + fid_missing
    ns_missing = [] if settings.netsuite_account_id or settings.netsuite_base_url else ["NETSUITE_ACCOUNT_ID"]
    return [
        need("Intake API (POST /api/applications)", intake_missing),
        need("Federal ID encryption", fid_missing),
        need("Slack events (/slack/events)", slack_missing),
        need(
            "Slack install flow (/slack/install, several workspaces)",
            [] if settings.slack_client_id else ["SLACK_CLIENT_ID and SLACK_CLIENT_SECRET"],
            " (one workspace with SLACK_BOT_TOKEN otherwise)",
        ),
        need(
            "Slack Socket Mode",
            [] if settings.slack_app_token else ["SLACK_APP_TOKEN"],
            " (HTTP mode is used otherwise)",
        ),
        need("NetSuite connector", ns_missing),
    ]


def mask_url(url: str) -> str:
    """Hide the password in a URL (postgresql://user:***@host/db)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_secret(value: SecretStr | None) -> str:
    if value is None:
        return "(unset)"
    raw = value.get_secret_value()
    if len(raw) <= 8:
        return "********"
    return f"{raw[:4]}…{'*' * 4} ({len(raw)} chars)"


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """(ENV_NAME, effective value with secrets masked, description) for every setting."""
    rows: list[tuple[str, str, str]] = []
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = mask_secret(value)
            if name in ("redis_url", "database_url"):
                shown = mask_url(value.get_secret_value())
        elif value is None:
            shown = "(unset)"
            if name == "redis_url":
                shown = "(unset: in-process fakeredis)"
        else:
            shown = str(value)
        rows.append((name.upper(), shown, field.description or ""))
    return rows
