"""The real processes: `credit-desk serve` (gunicorn) on embedded defaults and with several workers, and
`credit-desk worker` against real Redis."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from redis import Redis

from bot import jobs
from storage.redis import make_redis
from tests.conftest import AUTH, INTAKE_TOKEN, REDIS_URL, service_unavailable, valid_application


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_"))}
    env.update(extra)
    return env


@contextmanager
def running(args: list[str], cwd: Path, env: dict[str, str], port: int) -> Iterator[str]:
    log = (cwd / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError("server exited:\n" + (cwd / "serve.log").read_text())
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("server did not start:\n" + (cwd / "serve.log").read_text())
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_serve_on_embedded_defaults(tmp_path: Path) -> None:
    """README's first command: serve on an SQLite file with fakeredis, accept an application."""
    port = _free_port()
    env = _env(INTAKE_API_TOKEN=INTAKE_TOKEN)
    with running(["serve", "--port", str(port)], tmp_path, env, port) as base:
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        created = httpx.post(f"{base}/api/applications", json=valid_application(), headers=AUTH)
        assert created.status_code == 201, created.text
        app_id = created.json()["id"]
        fetched = httpx.get(f"{base}/api/applications/{app_id}", headers=AUTH)
        assert fetched.json()["federal_id"] == "**-***6789"
        assert httpx.get(f"{base}/api/openapi.json").json()["openapi"].startswith("3.1")
    assert (tmp_path / "credit-desk.db").exists()
    assert (tmp_path / "credit-desk.key").exists()
    log = (tmp_path / "serve.log").read_text()
    assert "embedded_worker.start" in log
    assert INTAKE_TOKEN not in log


@pytest.mark.services
def test_metrics_add_up_across_gunicorn_workers(tmp_path: Path, fresh_database) -> None:  # type: ignore[no-untyped-def]
    redis = make_redis(REDIS_URL)
    try:
        redis.ping()
    except Exception as exc:
        service_unavailable("Redis", exc)
    url = fresh_database()
    env = _env(DATABASE_URL=url, REDIS_URL=REDIS_URL, WEB_WORKERS="3", WEB_THREADS="2")
    upgrade = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert upgrade.returncode == 0, upgrade.stderr
    port = _free_port()
    n = 60
    pattern = re.compile(
        r'credit_desk_http_requests_total\{method="GET",route="/healthz",status="200"\} (\d+(?:\.\d+)?)'
    )

    def healthz_count(base: str) -> float:
        body = httpx.get(f"{base}/metrics").text
        match = pattern.search(body)
        assert match, body[:2000]
        return float(match.group(1))

    with running(["serve", "--port", str(port)], tmp_path, env, port) as base:
        before = healthz_count(base)
        for _ in range(n):
            with httpx.Client() as fresh_connection:  # new connections spread over the workers
                assert fresh_connection.get(f"{base}/healthz").status_code == 200
        seen = [healthz_count(base) - before for _ in range(5)]
    # Every scrape, whichever worker answers it, counts all n requests.
    assert seen == [float(n)] * 5
    log = (tmp_path / "serve.log").read_text()
    booted = set(re.findall(r"Booting worker with pid: (\d+)", log))
    assert len(booted) == 3
    assert "embedded_worker.start" not in log


def real_redis() -> Redis:
    """The real Redis, emptied (a worker process cannot share the tests' in-process stand-in)."""
    redis = make_redis(REDIS_URL)
    try:
        redis.ping()
    except Exception as exc:
        service_unavailable("Redis", exc)
    redis.flushdb()
    return redis


@pytest.mark.services
def test_worker_command_runs_queued_jobs(tmp_path: Path) -> None:
    redis = real_redis()
    job = jobs.queue(redis).enqueue(jobs.record_heartbeat, "from-worker-process")
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}", REDIS_URL=REDIS_URL)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "worker", "--burst"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert job.get_status(refresh=True) == "finished"
    assert redis.get("credit-desk:heartbeat") == b"from-worker-process"
    redis.flushdb()


@pytest.mark.services
def test_threaded_worker_stops_on_sigterm_while_idle(tmp_path: Path) -> None:
    """`credit-desk worker` with job threads, idle, stops soon after SIGTERM (it used to wait out each
    thread's 60 s join: RQ's idle wait never looked at the stop flag)."""
    redis = real_redis()
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}", REDIS_URL=REDIS_URL, WORKER_THREADS="3")
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "worker"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        job = jobs.queue(redis).enqueue(jobs.record_heartbeat, "idle-then-stop")
        deadline = time.monotonic() + 60
        while job.get_status(refresh=True) != "finished" and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
        assert job.get_status(refresh=True) == "finished"
        time.sleep(1.0)  # every job thread is back waiting for work
        proc.terminate()
        try:
            code = proc.wait(30)  # a bound, not a timing: the bug made this several minutes
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("the worker did not stop within 30 s of SIGTERM") from None
        assert code == 0, (tmp_path / "worker.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        redis.flushdb()


def test_worker_command_refuses_fakeredis(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "worker"], env=_env(), cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "REDIS_URL is unset" in done.stderr
