"""One Redis connection factory: the real server when REDIS_URL is set, an in-process fakeredis otherwise.

Everything else takes the `redis.Redis` this returns, so the same code paths (RQ, locks, the NetSuite
concurrency limiter's Lua script) run on both. fakeredis state lives in this process only, which is why
embedded defaults run the web app and the worker in one process.
"""

from __future__ import annotations

import fakeredis
import redis

SOCKET_TIMEOUT_S = 5.0


def make_redis(url: str | None, *, fake_server: fakeredis.FakeServer | None = None) -> redis.Redis:
    """A client for `url`, or for an in-process fakeredis server (with Lua) when `url` is None.

    Pass the same `fake_server` to share one in-process database between several clients.
    """
    if url is None:
        return fakeredis.FakeRedis(server=fake_server or fakeredis.FakeServer())
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
    )
