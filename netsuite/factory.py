"""Build the NetSuite client from application settings.

The one place that knows how ``NETSUITE_*`` settings become a :class:`NetSuiteConfig`, and how the
client is wired to the cross-process limiter in Redis. The container calls :func:`build_client`
once at start-up and passes the client around; nothing here keeps a client of its own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import redis

from netsuite.client import NetSuiteClient
from netsuite.config import NetSuiteConfig
from netsuite.hosts import realm
from netsuite.limiter import RedisLeaseSemaphore

if TYPE_CHECKING:
    from bot.settings import Settings

LEASE_MARGIN_SECONDS = 30.0
"""A slot's lease outlives the longest request (connect + read timeout) by this much, so a request
can never still be on the wire after its slot was handed to someone else."""

LIMITER_KEY_PREFIX = "credit-desk:netsuite:slots:"

SLOT_POLL_MIN_SECONDS = 0.005
SLOT_POLL_MAX_SECONDS = 0.05
"""How often a waiting request re-tries for a slot (jittered, growing from min to max). A freed
slot stays idle until some waiter polls, so the ceiling is kept well under a NetSuite round trip;
each poll is one small Lua call, cheap for Redis even with dozens of waiters."""


def config_from_settings(settings: Settings) -> NetSuiteConfig | None:
    """The client configuration, or ``None`` when NetSuite is not configured at all.

    NetSuite counts as configured when ``NETSUITE_ACCOUNT_ID`` or ``NETSUITE_BASE_URL`` is set
    (the same rule ``credit-desk config`` reports). A base URL without an account id is refused:
    the account id is part of every TBA signature, even against the emulator. Missing or
    inconsistent credentials raise ``ValueError`` naming the settings to fix.
    """
    if not settings.netsuite_account_id and not settings.netsuite_base_url:
        return None
    if not settings.netsuite_account_id:
        raise ValueError(
            "NETSUITE_BASE_URL is set but NETSUITE_ACCOUNT_ID is not; set the account id "
            "(the emulator's default is 1234567_SB1)"
        )
    values: dict[str, Any] = {
        "account_id": settings.netsuite_account_id,
        "base_url": settings.netsuite_base_url or None,
        "auth_mode": settings.netsuite_auth_mode,
        "oauth2_client_id": settings.netsuite_oauth2_client_id,
        "oauth2_certificate_id": settings.netsuite_oauth2_certificate_id,
        "oauth2_private_key_pem": settings.netsuite_oauth2_private_key_pem,
        "oauth2_algorithm": settings.netsuite_oauth2_algorithm,
        "tba_consumer_key": settings.netsuite_tba_consumer_key,
        "tba_consumer_secret": settings.netsuite_tba_consumer_secret,
        "tba_token_id": settings.netsuite_tba_token_id,
        "tba_token_secret": settings.netsuite_tba_token_secret,
        "read_timeout_seconds": settings.netsuite_read_timeout_seconds,
        "max_attempts": settings.netsuite_max_attempts,
        "concurrency_limit": settings.netsuite_concurrency_limit,
    }
    connect = NetSuiteConfig.model_fields["connect_timeout_seconds"].default
    values["lease_seconds"] = max(
        NetSuiteConfig.model_fields["lease_seconds"].default,
        connect + settings.netsuite_read_timeout_seconds + LEASE_MARGIN_SECONDS,
    )
    try:
        return NetSuiteConfig(**values)
    except ValueError as exc:
        raise ValueError(f"NetSuite settings are incomplete or inconsistent: {_env_names(exc)}") from exc


def limiter_key(config: NetSuiteConfig) -> str:
    """One key per account: every process talking to the same account shares its slots."""
    return LIMITER_KEY_PREFIX + realm(config.account_id)


def build_limiter(config: NetSuiteConfig, client: redis.Redis) -> RedisLeaseSemaphore:
    """The account-wide lease semaphore, ``NETSUITE_CONCURRENCY_LIMIT`` slots."""
    return RedisLeaseSemaphore(
        client,
        key=limiter_key(config),
        limit=config.concurrency_limit,
        lease_seconds=config.lease_seconds,
        max_wait_seconds=config.slot_wait_seconds,
        min_sleep_seconds=SLOT_POLL_MIN_SECONDS,
        max_sleep_seconds=SLOT_POLL_MAX_SECONDS,
    )


def build_client(settings: Settings, redis_client: redis.Redis) -> NetSuiteClient | None:
    """A NetSuite client sharing the account's concurrency slots through ``redis_client``.

    ``None`` when NetSuite is not configured. The caller owns the client and closes it.
    """
    config = config_from_settings(settings)
    if config is None:
        return None
    return NetSuiteClient(config, None, build_limiter(config, redis_client))


def _env_names(exc: ValueError) -> str:
    """Pydantic's message with field names spelt as the environment variables people set."""
    names = sorted(NetSuiteConfig.model_fields, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    return pattern.sub(lambda m: f"NETSUITE_{m.group(1).upper()}", str(exc))
