"""A cross-process cap on NetSuite requests in flight: a lease semaphore in Redis.

NetSuite's concurrency limit is per account and shared by every integration and process
(netsuite.md §3.2), so an in-process semaphore is not enough. Each holder is a member of a sorted
set scored by its lease expiry, taken from the Redis server's own clock (``TIME``) so that hosts
with skewed clocks agree. Acquiring drops expired members and adds ours only if the count is under
the limit, atomically in one Lua script; releasing is ``ZREM``. A holder that dies without
releasing frees its slot when its lease runs out, so the lease must be longer than any request
(HTTP timeout plus margin) and no longer than needed. Works on Redis and on ``fakeredis[lua]``.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

import redis

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  local lease = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
  -- Let an abandoned set vanish a little after its last lease runs out.
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
  return 1
end
return 0
"""

_IN_FLIGHT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


class SlotTimeout(TimeoutError):
    """No slot came free within the allowed wait."""


@dataclass(frozen=True)
class Lease:
    """Proof of holding one slot; pass it back to ``release``."""

    token: str


class Limiter(Protocol):
    """What the NetSuite client needs from a concurrency limiter."""

    def slot(self) -> AbstractContextManager[Lease]:
        """Hold one slot for the duration of a ``with`` block."""
        ...


class RedisLeaseSemaphore:
    """At most ``limit`` holders across every process sharing ``key`` on one Redis.

    ``max_wait_seconds`` bounds how long :meth:`acquire` waits; between tries it sleeps a small,
    jittered, growing interval so that waiting processes do not retry in lock-step.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        key: str,
        limit: int,
        lease_seconds: float,
        max_wait_seconds: float = 60.0,
        min_sleep_seconds: float = 0.01,
        max_sleep_seconds: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        if max_wait_seconds < 0:
            raise ValueError("max_wait_seconds must not be negative")
        if not 0 < min_sleep_seconds <= max_sleep_seconds:
            raise ValueError("need 0 < min_sleep_seconds <= max_sleep_seconds")
        self._redis = client
        self.key = key
        self.limit = limit
        self._lease_ms = max(1, round(lease_seconds * 1000))
        self._max_wait = max_wait_seconds
        self._min_sleep = min_sleep_seconds
        self._max_sleep = max_sleep_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self._acquire_script = client.register_script(_ACQUIRE)
        self._in_flight_script = client.register_script(_IN_FLIGHT)

    def try_acquire(self) -> Lease | None:
        """One attempt: a lease if a slot is free now, else None."""
        token = uuid.uuid4().hex
        granted = self._acquire_script(keys=[self.key], args=[self.limit, self._lease_ms, token])
        return Lease(token) if int(granted) == 1 else None

    def acquire(self, max_wait_seconds: float | None = None) -> Lease:
        """Wait (bounded) for a slot; raise :class:`SlotTimeout` if none comes free in time."""
        wait = self._max_wait if max_wait_seconds is None else max_wait_seconds
        deadline = self._monotonic() + wait
        # The deadline bounds the loop; the attempt cap also bounds it if the clock stands still.
        max_attempts = int(wait / self._min_sleep) + 2
        pause = self._min_sleep
        for _ in range(max_attempts):
            lease = self.try_acquire()
            if lease is not None:
                return lease
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                break
            self._sleep(min(remaining, self._rng.uniform(self._min_sleep, pause)))
            pause = min(self._max_sleep, pause * 2)
        raise SlotTimeout(
            f"no NetSuite request slot free within {wait:g}s ({self.limit} in use under {self.key})"
        )

    def release(self, lease: Lease) -> bool:
        """Give the slot back. Idempotent: True only the first time (and only if not expired)."""
        return bool(self._redis.zrem(self.key, lease.token))

    def in_flight(self) -> int:
        """Holders whose lease has not run out (for metrics and tests)."""
        return int(self._in_flight_script(keys=[self.key], args=[]))

    @contextmanager
    def slot(self) -> Iterator[Lease]:
        lease = self.acquire()
        try:
            yield lease
        finally:
            self.release(lease)


class LocalLimiter:
    """An in-process limiter for a single process (CLI tools, tests); not shared across processes."""

    def __init__(self, limit: int, max_wait_seconds: float = 60.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._max_wait = max_wait_seconds
        self._semaphore = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self) -> Iterator[Lease]:
        if not self._semaphore.acquire(timeout=self._max_wait):
            raise SlotTimeout(f"no NetSuite request slot free within {self._max_wait:g}s")
        try:
            yield Lease(uuid.uuid4().hex)
        finally:
            self._semaphore.release()
