"""The Redis factory and background jobs, on fakeredis and on the real server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from rq import SimpleWorker

from bot import jobs
from bot.worker import EmbeddedWorker
from storage.redis import make_redis


def test_factory_gives_a_working_client_with_lua(redis_url: str | None) -> None:
    client = make_redis(redis_url)
    try:
        assert client.ping()
        client.set("credit-desk:test:k", "v")
        script = "redis.call('INCRBY', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])"
        assert client.eval(script, 1, "credit-desk:test:n", 5) == b"5"
        assert client.get("credit-desk:test:k") == b"v"
        assert client.time()[0] > 1_700_000_000  # the limiter reads the server's clock
    finally:
        client.delete("credit-desk:test:k", "credit-desk:test:n")
        client.close()


def test_fake_clients_share_a_server_only_when_told() -> None:
    import fakeredis

    server = fakeredis.FakeServer()
    a, b, c = make_redis(None, fake_server=server), make_redis(None, fake_server=server), make_redis(None)
    a.set("k", "1")
    assert b.get("k") == b"1"
    assert c.get("k") is None


def test_a_job_runs_through_rq(redis_url: str | None, container_factory: Any, tmp_path: Any) -> None:
    container = container_factory(database_url=f"sqlite:///{tmp_path / 'x.db'}", redis_url=redis_url)
    q = jobs.queue(container.redis)
    job = q.enqueue(jobs.record_heartbeat, "hello", job_id="heartbeat-1")
    jobs.bind_container(container)
    SimpleWorker([q], connection=container.redis).work(burst=True)
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == "hello"
    assert container.redis.get("credit-desk:heartbeat") == b"hello"


def test_embedded_worker_thread_runs_jobs(container_factory: Any, tmp_path: Any) -> None:
    container = container_factory(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert container.settings.run_embedded_worker
    with EmbeddedWorker(container, poll_seconds=0.05):
        job = jobs.queue(container.redis, "netsuite").enqueue(jobs.record_heartbeat, "from-thread")
        deadline = time.monotonic() + 10
        while job.get_status(refresh=True) != "finished" and time.monotonic() < deadline:
            time.sleep(0.05)
    assert job.get_status(refresh=True) == "finished"
    assert container.redis.get("credit-desk:heartbeat") == b"from-thread"


def test_job_without_a_container_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "_process_container", [])
    monkeypatch.setattr(jobs, "_local", type(jobs._local)())
    with pytest.raises(RuntimeError, match="no container bound"):
        jobs.current_container()
