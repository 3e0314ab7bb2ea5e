"""A fixed-window request limit kept in Redis, shared by every web process: the intake API's brake.

Why a fixed window: one `INCR` and one `EXPIRE` in a single round trip, exact on real Redis and on fakeredis,
and easy to explain to a caller (`Retry-After` is the time left in the window). Its known weakness, up to
twice the limit across a window boundary, is acceptable for a brake whose job is to stop floods and token
guessing, not to meter fairly.

The counter's key holds the window's number, so correctness never depends on Redis expiring it: the TTL only
cleans up. Callers pass a key that is not itself a secret (`intake_client_key` hashes bearer tokens).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import structlog

log = structlog.get_logger(__name__)

KEY_PREFIX = "credit-desk:ratelimit"


@dataclass(frozen=True)
class RateDecision:
    """What one hit got: allowed or not, and (when refused) how many whole seconds until the next window."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int


class FixedWindowRateLimiter:
    """At most `limit` hits per `key` in each window of `window_seconds` (windows aligned on the epoch).

    `clock` returns Unix seconds; tests inject one. With `limit == 0` the limiter is off and allows all.
    When Redis cannot be reached the hit is allowed and a warning logged: the limit protects the service,
    and refusing every application because Redis blinked would be the greater harm.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        limit: int,
        window_seconds: int,
        name: str = "intake",
        clock: Callable[[], float] | None = None,
    ) -> None:
        if limit < 0:
            raise ValueError(f"limit must be 0 (off) or more, got {limit}")
        if window_seconds < 1:
            raise ValueError(f"window_seconds must be at least 1, got {window_seconds}")
        if not name or ":" in name:
            raise ValueError(f"name must be a non-empty word without ':', got {name!r}")
        self.redis = client
        self.limit = limit
        self.window_seconds = window_seconds
        self.name = name
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def _now(self) -> float:
        # Looked up at each call (not bound at construction) so that a frozen clock in tests applies.
        return self._clock() if self._clock is not None else time.time()

    def hit(self, key: str) -> RateDecision:
        """Count one request for `key` and say whether it is within the limit."""
        if not key:
            raise ValueError("the rate-limit key must not be empty")
        if not self.enabled:
            return RateDecision(True, 0, 0, 0)
        now = self._now()
        window = math.floor(now / self.window_seconds)
        redis_key = f"{KEY_PREFIX}:{self.name}:{key}:{window}"
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.incr(redis_key)
            pipe.expire(redis_key, self.window_seconds + 1)
            count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            log.warning("ratelimit.unavailable", limiter=self.name, error=type(exc).__name__)
            return RateDecision(True, self.limit, self.limit, 0)
        if count <= self.limit:
            return RateDecision(True, self.limit, self.limit - count, 0)
        window_ends = (window + 1) * self.window_seconds
        return RateDecision(False, self.limit, 0, max(1, math.ceil(window_ends - now)))


def intake_client_key(token_valid: bool, token: str, remote_addr: str | None) -> str:
    """Who an intake request counts against: its bearer token when that token is right, else its address.

    The token is hashed so that no secret becomes a Redis key (keys show up in `MONITOR`, `KEYS` and
    memory reports). Wrong tokens count against the client's address, so guessing is limited per address.
    """
    if token_valid:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "ip:" + (remote_addr or "unknown")
