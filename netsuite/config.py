"""Everything the NetSuite client needs, as one frozen, validated value.

Built by whoever wires the application (from ``Settings``) and passed in; nothing here reads the
environment. Secrets are ``SecretStr`` so that logs and reprs never show them.
"""

from __future__ import annotations

from typing import Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from netsuite.hosts import NetSuiteHosts, hosts_for, normalise_base_url, validate_account_id

AuthMode = Literal["oauth2", "tba"]
JwtAlgorithm = Literal["PS256", "ES256"]
OAuth2Scope = Literal["rest_webservices", "restlets", "suite_analytics"]


class NetSuiteConfig(BaseModel):
    """Connection, credentials and resilience settings for one NetSuite account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str = Field(description="Account id, e.g. 1234567 or 1234567_SB1.")
    base_url: str | None = Field(
        None, description="Replaces https://<account>.suitetalk.api.netsuite.com (emulator, proxy)."
    )
    auth_mode: AuthMode = Field("oauth2", description="OAuth 2.0 M2M (preferred) or TBA.")

    # OAuth 2.0 client credentials (netsuite.md §4.2)
    oauth2_client_id: str | None = Field(None, description="Integration record's client id.")
    oauth2_certificate_id: str | None = Field(
        None, description="Certificate ID from the M2M setup; sent as the JWT `kid`."
    )
    oauth2_private_key_pem: SecretStr | None = Field(
        None, description="PEM private key matching the uploaded certificate."
    )
    oauth2_algorithm: JwtAlgorithm = Field("PS256", description="RSA-PSS (PS256) or EC P-256 (ES256).")
    oauth2_scope: tuple[OAuth2Scope, ...] = Field(("rest_webservices",), min_length=1)
    oauth2_scope_as_list: bool = Field(
        True,
        description=(
            "Send `scope` as a JSON array (Oracle's sample assertion) rather than a space-separated "
            "string (Oracle's table). UNCONFIRMED which the token endpoint requires."
        ),
    )
    oauth2_assertion_lifetime_seconds: int = Field(
        300, ge=30, le=3500, description="JWT assertion lifetime; NetSuite wants under 60 minutes."
    )
    oauth2_token_refresh_margin_seconds: float = Field(
        120.0, ge=0, le=1800, description="Fetch a new access token this long before expiry."
    )

    # Token-based authentication (OAuth 1.0a, HMAC-SHA256; netsuite.md §4.1)
    tba_consumer_key: str | None = None
    tba_consumer_secret: SecretStr | None = None
    tba_token_id: str | None = None
    tba_token_secret: SecretStr | None = None

    # HTTP timeouts (seconds)
    connect_timeout_seconds: float = Field(10.0, gt=0, le=120)
    read_timeout_seconds: float = Field(60.0, gt=0, le=900)
    write_timeout_seconds: float = Field(30.0, gt=0, le=900)
    pool_timeout_seconds: float = Field(10.0, gt=0, le=120)

    # Retries (netsuite.md §3.3)
    max_attempts: int = Field(7, ge=1, le=20, description="Attempts per request, the first included.")
    max_unauthorized_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of a 401 after the token refresh (NetSuite answers 401 under load).",
    )
    backoff_base_seconds: float = Field(1.0, gt=0, le=60)
    backoff_max_seconds: float = Field(60.0, gt=0, le=600)

    # Cross-process concurrency (engineering.md, "NetSuite concurrency limit")
    concurrency_limit: int = Field(5, ge=1, le=100, description="Requests in flight, all processes.")
    lease_seconds: float = Field(
        90.0, gt=0, le=3600, description="Slot lease; longer than one request can take."
    )
    slot_wait_seconds: float = Field(
        60.0, ge=0, le=3600, description="Longest wait for a free slot before giving up."
    )

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        return validate_account_id(value)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return normalise_base_url(value) if value else None

    @field_validator(
        "oauth2_client_id",
        "oauth2_certificate_id",
        "tba_consumer_key",
        "tba_token_id",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.auth_mode == "oauth2":
            missing = [
                name
                for name in ("oauth2_client_id", "oauth2_certificate_id", "oauth2_private_key_pem")
                if not _present(getattr(self, name))
            ]
        else:
            missing = [
                name
                for name in (
                    "tba_consumer_key",
                    "tba_consumer_secret",
                    "tba_token_id",
                    "tba_token_secret",
                )
                if not _present(getattr(self, name))
            ]
        if missing:
            raise ValueError(f"auth_mode={self.auth_mode} needs {', '.join(missing)}")
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_max_seconds must be at least backoff_base_seconds")
        # A request that outlives its lease lets one more request in than the account allows.
        floor = self.connect_timeout_seconds + self.read_timeout_seconds
        if self.lease_seconds <= floor:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must exceed connect + read timeout ({floor})"
            )
        return self

    @property
    def hosts(self) -> NetSuiteHosts:
        return hosts_for(self.account_id, self.base_url)

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout_seconds,
            read=self.read_timeout_seconds,
            write=self.write_timeout_seconds,
            pool=self.pool_timeout_seconds,
        )


def _present(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value().strip())
    return bool(value)
