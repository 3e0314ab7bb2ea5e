"""The Redis lease semaphore, each test on fakeredis and on the real server."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from netsuite.limiter import LocalLimiter, RedisLeaseSemaphore, SlotTimeout

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
REQUIRE_SERVICES = os.environ.get("CREDIT_DESK_REQUIRE_SERVICES") == "1"


@pytest.fixture(params=["fakeredis", "redis"])
def client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    if request.param == "fakeredis":
        fake = fakeredis.FakeRedis()
        yield fake
        fake.close()
        return
    request.applymarker(pytest.mark.services)
    real = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        real.ping()
    except redis.RedisError as exc:
        message = f"Redis at {REDIS_URL} is not reachable ({exc})"
        if REQUIRE_SERVICES:
            pytest.fail(message + "; CREDIT_DESK_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(message)
    yield real
    real.close()


@pytest.fixture
def key(client: redis.Redis) -> Iterator[str]:
    name = f"test:netsuite-limiter:{uuid.uuid4().hex}"
    yield name
    client.delete(name)


def server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def semaphore(client: redis.Redis, key: str, limit: int, **kwargs: float) -> RedisLeaseSemaphore:
    kwargs.setdefault("lease_seconds", 30.0)
    kwargs.setdefault("max_wait_seconds", 10.0)
    return RedisLeaseSemaphore(client, key=key, limit=limit, **kwargs)  # type: ignore[arg-type]


def test_exactly_limit_slots_can_be_held(client: redis.Redis, key: str) -> None:
    sem = semaphore(client, key, limit=3)
    leases = [sem.try_acquire() for _ in range(3)]
    assert all(lease is not None for lease in leases)
    assert len({lease.token for lease in leases if lease}) == 3
    assert sem.try_acquire() is None
    assert sem.in_flight() == 3
    assert leases[0] is not None and sem.release(leases[0])
    assert sem.try_acquire() is not None
    assert sem.try_acquire() is None


def test_threads_never_exceed_the_limit(client: redis.Redis, key: str) -> None:
    limit, workers, rounds = 3, 8, 5
    sem = semaphore(client, key, limit=limit)
    lock = threading.Lock()
    state = {"now": 0, "max": 0, "done": 0}
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(rounds):
                with sem.slot():
                    with lock:
                        state["now"] += 1
                        state["max"] = max(state["max"], state["now"])
                    time.sleep(0.002)
                    with lock:
                        state["now"] -= 1
                        state["done"] += 1
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert state["done"] == workers * rounds
    assert 1 <= state["max"] <= limit
    assert sem.in_flight() == 0


def test_an_expired_lease_of_a_dead_holder_frees_its_slot(client: redis.Redis, key: str) -> None:
    sem = semaphore(client, key, limit=2)
    now = server_ms(client)
    # Two holders died: one lease ran out a second ago, one is still valid for a minute.
    client.zadd(key, {"dead-holder": now - 1000, "live-holder": now + 60_000})
    lease = sem.try_acquire()
    assert lease is not None
    assert client.zscore(key, "dead-holder") is None  # swept by the acquire
    assert client.zscore(key, "live-holder") is not None
    assert sem.try_acquire() is None  # the live one still counts
    assert sem.in_flight() == 2


def test_a_lease_expires_on_its_own(client: redis.Redis, key: str) -> None:
    sem = semaphore(client, key, limit=1, lease_seconds=0.05)
    assert sem.try_acquire() is not None
    deadline = time.monotonic() + 10
    lease = None
    while lease is None and time.monotonic() < deadline:  # bounded; no timing asserted
        time.sleep(0.02)
        lease = sem.try_acquire()
    assert lease is not None


def test_release_is_idempotent_and_touches_only_its_own_lease(client: redis.Redis, key: str) -> None:
    sem = semaphore(client, key, limit=2)
    first, second = sem.try_acquire(), sem.try_acquire()
    assert first is not None and second is not None
    assert sem.release(first) is True
    assert sem.release(first) is False
    assert sem.in_flight() == 1
    assert client.zscore(key, second.token) is not None


def test_the_set_expires_after_the_last_lease(client: redis.Redis, key: str) -> None:
    sem = semaphore(client, key, limit=2, lease_seconds=30)
    sem.try_acquire()
    ttl = client.pttl(key)
    assert 29_000 < ttl <= 31_000


def test_slot_releases_when_the_block_raises(client: redis.Redis, key: str) -> None:
    sem = semaphore(client, key, limit=1)
    with pytest.raises(RuntimeError), sem.slot():
        assert sem.in_flight() == 1
        raise RuntimeError("request failed")
    assert sem.in_flight() == 0


def test_acquire_waits_with_jittered_growing_sleeps_and_gives_up(client: redis.Redis, key: str) -> None:
    clock = {"now": 0.0}
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock["now"] += seconds

    sem = RedisLeaseSemaphore(
        client,
        key=key,
        limit=1,
        lease_seconds=30,
        max_wait_seconds=2.0,
        min_sleep_seconds=0.01,
        max_sleep_seconds=0.25,
        sleep=fake_sleep,
        monotonic=lambda: clock["now"],
        rng=random.Random(7),
    )
    holder = sem.try_acquire()
    assert holder is not None
    with pytest.raises(SlotTimeout, match="within 2s"):
        sem.acquire()
    assert sum(sleeps) == pytest.approx(2.0)
    assert all(0 < s <= 0.25 for s in sleeps)
    assert len(set(sleeps)) > len(sleeps) // 2  # jittered, not lock-step
    assert max(sleeps[-5:]) > 0.1  # grew toward the cap

    sem.release(holder)
    assert sem.acquire() is not None  # free again: no wait at all
    assert clock["now"] == pytest.approx(2.0)


def test_a_standing_clock_cannot_make_acquire_loop_forever(client: redis.Redis, key: str) -> None:
    sem = RedisLeaseSemaphore(
        client,
        key=key,
        limit=1,
        lease_seconds=30,
        max_wait_seconds=0.1,
        sleep=lambda s: None,
        monotonic=lambda: 0.0,
    )
    sem.try_acquire()
    with pytest.raises(SlotTimeout):
        sem.acquire()


def test_bad_arguments_are_refused(client: redis.Redis, key: str) -> None:
    for kwargs in ({"limit": 0}, {"lease_seconds": 0}, {"max_wait_seconds": -1}):
        values = {"limit": 1, "lease_seconds": 1.0, **kwargs}
        with pytest.raises(ValueError):
            RedisLeaseSemaphore(client, key=key, **values)  # type: ignore[arg-type]


def test_local_limiter_caps_one_process() -> None:
    limiter = LocalLimiter(1, max_wait_seconds=0.01)
    with limiter.slot(), pytest.raises(SlotTimeout), limiter.slot():
        pass
    with limiter.slot():
        pass
