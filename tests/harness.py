"""Real processes and servers for the fault and reliability tests and the benchmarks built on them.

Everything binds to 127.0.0.1 and is owned by the caller (started here, stopped here):

* :class:`RedisServer`: a ``redis-server`` of our own on a free port, without persistence, so a
  restart loses every queue as a production Redis without AOF does;
* :class:`PostgresCluster`: a PostgreSQL cluster of our own (``initdb`` into a temporary
  directory as the ``postgres`` user, a free port), which may be restarted or crashed
  (``pg_ctl stop -m immediate``) without disturbing the shared server on 5432;
* :class:`WorkerProcess`: ``credit-desk worker`` (``python -m bot worker``) and its work horses;
* :class:`WebServer`: ``credit-desk serve`` (gunicorn) whose worker processes can be SIGKILLed;
* requesting syncs as Slack requests them, through :class:`bot.sync.service.SyncService`
  (:func:`request_syncs`) or through signed ``/slack/events`` requests of the link and pick
  modals (:class:`SlackSyncRequester`);
* :func:`tally`: what became of requested syncs -- completed, lost, duplicated -- checked in the
  database and in NetSuite (the emulator's own state).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import redis as redis_lib
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from blocks.ids import ActionId, BlockId, CallbackId
from bot.applications.schemas import ApplicationIn
from bot.container import Container
from bot.decisions.policy import Actor, Role
from bot.sandbox.signing import (
    block_actions_payload,
    button_action,
    interaction_body,
    new_trigger_id,
    sign,
    view_submission_payload,
)
from bot.sync.fields import SyncField
from netsuite.emulator import EmulatorServer
from netsuite.writes import external_id_for
from storage import migrate
from storage.db import make_engine, transaction
from storage.models import AuditEvent, NsCustomer, SyncRequest, SyncStatus
from storage.repositories.sync import SyncRepository
from tests.conftest import TEST_FEDERAL_ID_KEY, service_unavailable, valid_application

ACCOUNT = "1234567_SB1"
ANALYST_ID = "U0ANALYST"
ANALYST = Actor(ANALYST_ID, frozenset({Role.ANALYST}))
EIN = "12-3456789"
TERMS = "Net 45"
CREDIT_LIMIT = Decimal("40000.00")
BILLING_LINE1 = "100 Congress Ave"
EXTERNAL_ID_PREFIX = "credit-desk-"
REDIS_SERVER = os.environ.get("CREDIT_DESK_REDIS_SERVER", "/usr/bin/redis-server")
POSTGRES_BIN = os.environ.get("CREDIT_DESK_POSTGRES_BIN", "")
"""Directory of ``initdb`` and ``pg_ctl``; empty: the newest ``/usr/lib/postgresql/*/bin``."""
SIGNING_SECRET = "reliability-signing-secret"
BOT_TOKEN = "xoxb-reliability"
INTAKE_TOKEN = "reliability-intake-token"
CHANNEL = "C0CREDITQ1"

LEASE_SECONDS = 4.0
"""SYNC_LEASE_SECONDS of the workers started here: above the longest sync in these runs (about
1 s), so a live sync is never taken back, and short enough that a dead worker's row comes back
within a test."""
RECONCILE_SECONDS = 0.5


# ---- small things ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], seconds: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (an RQ worker's work horse, gunicorn's workers), from ``/proc``."""
    found: list[int] = []
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return found
    for task in tasks.iterdir():
        try:
            found.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue  # the thread ended meanwhile
    return found


def rss_kb(pid: int) -> int | None:
    """Resident set size of a process (``VmRSS``), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def base_env() -> dict[str, str]:
    """This process's environment without any Credit Desk connection settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_"))}


# ---- a private Redis server ---------------------------------------------------------------------


def redis_server_binary() -> str:
    """The redis-server executable; skips (or fails with CREDIT_DESK_REQUIRE_SERVICES=1) without one."""
    found = shutil.which(REDIS_SERVER)
    if found is None:
        service_unavailable("redis-server", FileNotFoundError(f"no executable at {REDIS_SERVER}"))
    assert found is not None
    return found


class RedisServer:
    """A ``redis-server`` of our own on ``127.0.0.1`` without persistence (``--save ""``,
    ``--appendonly no``), so that restarting it loses every queue exactly as a production Redis
    without AOF does, and no other test's Redis is disturbed."""

    def __init__(self, binary: str, workdir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.proc is not None:
            raise RuntimeError("this redis-server is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "redis.log").open("ab")
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",  # no snapshots ...
            "appendonly": "no",  # ... and no AOF: a restart starts empty
            "dir": str(self.workdir),
            "daemonize": "no",
            "loglevel": "warning",
        }
        self.proc = subprocess.Popen(
            [self.binary, *(arg for name, value in options.items() for arg in (f"--{name}", value))],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        client = self.client()
        try:
            wait_until(lambda: self._pings(client), timeout, f"redis-server on port {self.port} to answer")
        finally:
            client.close()
        return self

    def _pings(self, client: redis_lib.Redis) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see {self.workdir}")
        try:
            return bool(client.ping())
        except redis_lib.ConnectionError:
            return False

    def shutdown_nosave(self, timeout: float = 10.0) -> None:
        """``SHUTDOWN NOSAVE``: the server exits and everything in it is gone."""
        if self.proc is None:
            return
        client = self.client()
        try:
            client.shutdown(nosave=True)  # returns once the server closed the connection
        finally:
            client.close()
        self.proc.wait(timeout)
        self.proc = None

    def restart(self) -> None:
        """Shut down without saving, then start again on the same port."""
        self.shutdown_nosave()
        self.start()
        self.restarts += 1

    def connected_clients(self) -> int:
        client = self.client()
        try:
            return int(client.info("clients")["connected_clients"])
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# ---- a private PostgreSQL cluster -----------------------------------------------------------------


def postgres_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``; skips (fails when services are required)
    without one."""
    candidates = [Path(POSTGRES_BIN)] if POSTGRES_BIN else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    service_unavailable("initdb/pg_ctl", FileNotFoundError("no /usr/lib/postgresql/*/bin/initdb"))
    raise AssertionError("unreachable")


class PostgresCluster:
    """A PostgreSQL cluster of our own: ``initdb`` into a temporary directory and ``pg_ctl`` on a
    free loopback port, run as the ``postgres`` user when we are root (``initdb`` refuses root).

    ``restart()`` is ``pg_ctl restart -m fast`` (sessions are terminated, the server comes back);
    ``crash()`` is ``pg_ctl stop -m immediate`` (no checkpoint: the next start runs crash
    recovery), and ``start()`` brings it back on the same port."""

    def __init__(self, bin_dir: Path, workdir: Path | None = None, port: int | None = None) -> None:
        self.bin_dir = bin_dir
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="credit-desk-pg-"))
        self.port = port or free_port()
        self.data = self.workdir / "data"
        self.log = self.workdir / "postgres.log"
        self.running = False
        self.restarts = 0
        self.crashes = 0
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                + (self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "")
            )
        return result

    def init(self) -> PostgresCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run(
            self.bin_dir / "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        return self

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200 -c full_page_writes=off"
        )

    def start(self) -> PostgresCluster:
        self._run(self.bin_dir / "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(),
                  "-w", "-t", "60", "start")  # fmt: skip
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        if not self.running:
            return
        self._run(self.bin_dir / "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is terminated, the server comes back."""
        self._run(self.bin_dir / "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(),
                  "-m", "fast", "-w", "-t", "60", "restart")  # fmt: skip
        self.running = True
        self.restarts += 1

    def crash(self, down_seconds: float = 0.0) -> None:
        """``pg_ctl stop -m immediate`` (as a crash: no checkpoint), ``down_seconds`` of outage,
        then start again (crash recovery)."""
        self.stop("immediate")
        self.crashes += 1
        time.sleep(down_seconds)
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None, *, migrated: bool = True) -> str:
        """A new database in this cluster (migrated to head); returns its URL."""
        name = name or f"credit_desk_{uuid.uuid4().hex[:8]}"
        admin = create_engine(self.url().replace("postgresql://", "postgresql+psycopg://", 1),
                              isolation_level="AUTOCOMMIT")  # fmt: skip
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            admin.dispose()
        url = make_url(self.url(name)).render_as_string(hide_password=False)
        if migrated:
            engine = make_engine(url)
            try:
                migrate.upgrade(engine)
            finally:
                engine.dispose()
        return url

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        self.init()
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.destroy()


def connections_to(admin_url: str, database: str) -> int:
    """Sessions connected to ``database`` (``pg_stat_activity``), read through ``admin_url``."""
    engine = make_engine(admin_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %(d)s", {"d": database}
                ).scalar_one()
            )
    finally:
        engine.dispose()


# ---- worker processes ---------------------------------------------------------------------------


def emulator_settings(netsuite_url: str) -> dict[str, str]:
    """Settings (lower-case names, as ``Settings`` takes them) for a client of the NetSuite emulator at
    ``netsuite_url``. The emulator runs without authentication; the TBA values only satisfy the client's
    settings."""
    return {
        "netsuite_account_id": ACCOUNT,
        "netsuite_base_url": netsuite_url,
        "netsuite_auth_mode": "tba",
        "netsuite_tba_consumer_key": "ck",
        "netsuite_tba_consumer_secret": "cs",
        "netsuite_tba_token_id": "tk",
        "netsuite_tba_token_secret": "ts",
        "netsuite_subsidiary_id": "1",
        "netsuite_contact_role_id": "2",
    }


def worker_env(database_url: str, redis_url: str, netsuite_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``credit-desk worker`` (or ``serve``) talking to our Redis, database
    and emulator (:func:`emulator_settings`)."""
    env = base_env()
    env.update({name.upper(): value for name, value in emulator_settings(netsuite_url).items()})
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        FEDERAL_ID_KEY=TEST_FEDERAL_ID_KEY,
        NETSUITE_READ_TIMEOUT_SECONDS="10",
        SYNC_LEASE_SECONDS=str(LEASE_SECONDS),
        SYNC_RECONCILE_SECONDS=str(RECONCILE_SECONDS),
        SYNC_RETRY_BASE_SECONDS="0.2",
        SYNC_RETRY_MAX_SECONDS="1",
        SYNC_MAX_ATTEMPTS="10",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def slack_settings(slack_api_url: str) -> dict[str, str]:
    """Settings (lower-case names, as ``Settings`` takes them) for one workspace on a mock Slack Web API:
    our bot token and signing secret, one analyst, the analysts' channel."""
    return {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack_api_url,
        "analysts": ANALYST_ID,
        "analysts_channel": CHANNEL,
    }


def slack_env(slack_api_url: str, **extra: str) -> dict[str, str]:
    """The environment of a process on a mock Slack Web API (:func:`slack_settings`), with the intake API
    open and no manager band."""
    return {
        **{name.upper(): value for name, value in slack_settings(slack_api_url).items()},
        "ANALYST_APPROVAL_LIMIT": "1000000",
        "INTAKE_API_TOKEN": INTAKE_TOKEN,
        "INTAKE_RATE_LIMIT": "0",
        **extra,
    }


class WorkerProcess:
    """One ``credit-desk worker`` process (``python -m bot worker``) and its RQ work horses.

    RQ forks a work horse per job and puts it in a process group of its own, so killing "the
    worker" as a crashed machine would means killing the worker and its horse by their ids."""

    def __init__(self, env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed = False  # by the test
        self.replaced = False  # quit by itself and a new one was started

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the worker is not running")
        return self.proc.pid

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def horses(self) -> list[int]:
        return child_pids(self.pid) if self.alive() else []

    def kill(self) -> list[int]:
        """SIGKILL the worker and its work horse at once (no warm shutdown, no cleanup); returns
        the horse pids that were killed."""
        if self.proc is None:
            return []
        horses = self.horses()
        self.killed = True
        self.proc.send_signal(signal.SIGKILL)
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        return horses

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM: RQ finishes the current job), SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class WorkerPool:
    """Worker processes that are started again when they quit by themselves, as systemd's
    ``Restart=always`` would (RQ quits on an unexpected Redis error while a job runs)."""

    def __init__(self, env: dict[str, str], workdir: Path, prefix: str = "worker") -> None:
        self.env = env
        self.workdir = workdir
        self.prefix = prefix
        self.workers: list[WorkerProcess] = []
        self.exits: list[int] = []

    def start(self, threads: int = 4) -> WorkerProcess:
        env = {**self.env, "WORKER_THREADS": str(threads)}
        log = self.workdir / f"{self.prefix}-{len(self.workers) + 1}.log"
        w = WorkerProcess(env, self.workdir, log)
        self.workers.append(w)
        return w.start()

    def supervise(self) -> None:
        for w in list(self.workers):
            if w.proc is not None and w.proc.poll() is not None and not (w.killed or w.replaced):
                w.replaced = True
                self.exits.append(w.proc.returncode)
                self.start(int(w.env.get("WORKER_THREADS", "4")))

    def alive(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.alive()]

    def stop(self) -> None:
        for w in self.workers:
            w.stop(timeout=10)

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log_text()[-tail:]}" for w in self.workers)


# ---- the web process ------------------------------------------------------------------------------


class WebServer:
    """``credit-desk serve`` (gunicorn, gthread) on a free port. Its worker processes are the
    children of the master; :meth:`kill_worker` SIGKILLs one and gunicorn starts another."""

    def __init__(self, env: dict[str, str], cwd: Path, *, workers: int = 2, threads: int = 8) -> None:
        self.port = free_port()
        self.env = {**env, "WEB_WORKERS": str(workers), "WEB_THREADS": str(threads)}
        self.workers = workers
        self.cwd = cwd
        self.log_path = cwd / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed: list[int] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> WebServer:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.wait_ready(timeout)
        return self

    def worker_pids(self) -> list[int]:
        return child_pids(self.proc.pid) if self.proc is not None and self.proc.poll() is None else []

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"credit-desk serve exited:\n{self.log_text()[-4000:]}")
        try:
            return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the server answers and all its workers are up (each has loaded the app)."""
        wait_until(self._answers, timeout, "credit-desk serve to answer /healthz", step=0.2)
        wait_until(lambda: len(self.worker_pids()) >= self.workers, timeout, "all gunicorn workers", 0.1)

    def kill_worker(self, pid: int | None = None) -> int:
        """SIGKILL one gunicorn worker (the oldest unless ``pid``); returns its pid."""
        pids = self.worker_pids()
        if not pids:
            raise AssertionError("no gunicorn worker to kill")
        victim = pid if pid is not None else min(pids)
        os.kill(victim, signal.SIGKILL)
        self.killed.append(victim)
        return victim

    def rss_kb(self) -> dict[int, int]:
        return {pid: kb for pid in self.worker_pids() if (kb := rss_kb(pid)) is not None}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# ---- applications and syncs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """An approved application that is to be synced (to a new customer, or to an existing one)."""

    application_id: int
    reference: str
    mode: str  # "new" or "existing"
    customer_id: int | None  # the existing customer; None for a new one
    company_name: str
    email: str
    shipping: tuple[tuple[str, str], ...]  # (label, line1) of each shipping location

    def requested(self, sync_id: int, fields: Iterable[SyncField]) -> Requested:
        return Requested(
            sync_id=sync_id,
            application_id=self.application_id,
            reference=self.reference,
            mode=self.mode,
            customer_id=self.customer_id,
            fields=frozenset(fields),
            company_name=self.company_name,
            email=self.email,
            shipping=self.shipping,
        )


@dataclass(frozen=True)
class Requested:
    """One sync as the analyst asked for it."""

    sync_id: int
    application_id: int
    reference: str
    mode: str  # "new" or "existing"
    customer_id: int | None  # the existing customer; None for a new one
    fields: frozenset[SyncField]
    company_name: str
    email: str
    shipping: tuple[tuple[str, str], ...]  # (label, line1) of each shipping location

    @property
    def external_id(self) -> str:
        return external_id_for(EXTERNAL_ID_PREFIX, self.reference)


def existing_customers(container: Container, count: int) -> list[int]:
    """Active mirrored customers, to link applications to."""
    with transaction(container.sessions, readonly=True) as session:
        ids = session.scalars(
            select(NsCustomer.internal_id)
            .where(NsCustomer.is_inactive.is_(False))
            .order_by(NsCustomer.internal_id)
            .limit(count)
        ).all()
    if len(ids) < count:
        raise AssertionError(f"the mirror holds {len(ids)} active customers, {count} needed")
    return list(ids)


def submit_application(container: Container, reference: str, **fields: Any) -> int:
    """A valid application submitted as the intake API does (no Slack request involved); its id."""
    assert container.applications is not None
    body = valid_application(reference, **fields)
    return container.applications.submit(
        ApplicationIn.model_validate(body), source="api", actor="test"
    ).application.id


def plan_applications(container: Container, run: str, new: int, existing: list[int]) -> list[Planned]:
    """Submit and approve ``new`` applications for new customers and one per ``existing``
    customer (the two kinds take turns)."""
    assert container.applications is not None and container.decisions is not None
    plan: list[int | None] = []
    for n in range(max(new, len(existing))):
        if n < new:
            plan.append(None)
        plan.extend(existing[n : n + 1])
    planned: list[Planned] = []
    for n, customer_id in enumerate(plan):
        reference = f"{run}-{n:03d}"
        name = f"Faultline {run} {n:03d} Supply LLC"
        email = f"ap-{reference}@faultline.example"
        body = valid_application(
            reference,
            business_name=name,
            dba=None,
            statements_contact={"name": "Pat Payables", "email": email, "phone": "512-555-0134"},
        )
        app = container.applications.submit(ApplicationIn.model_validate(body), source="api", actor="test")
        app_id = app.application.id
        container.decisions.approve(app_id, ANALYST, terms=TERMS, credit_limit=str(CREDIT_LIMIT))
        planned.append(
            Planned(
                application_id=app_id,
                reference=reference,
                mode="new" if customer_id is None else "existing",
                customer_id=customer_id,
                company_name=name,
                email=email,
                shipping=tuple((s["label"], s["line1"]) for s in body["shipping_locations"]),
            )
        )
    return planned


def fields_to_sync(mode: str, offered: Iterable[SyncField]) -> list[SyncField]:
    """What the analyst ticks: the comparison's default ticks, except (for an existing customer)
    the Tax Reg. Number. The mirror cannot read NetSuite's Tax Reg. Number (SuiteQL does not
    expose it), so NetSuite's own value counts as changed since the analyst looked and is never
    overwritten: a conflict by design (test_sync_engine covers it), not what these runs are about."""
    return [f for f in offered if not (mode == "existing" and f is SyncField.FEDERAL_ID)]


def request_syncs(container: Container, run: str, new: int, existing: list[int]) -> list[Requested]:
    """Approve, link and request a sync for ``new`` new customers and one per ``existing``
    customer through :class:`bot.sync.service.SyncService`, as the Slack handlers call it."""
    service = container.sync
    assert service is not None
    requested: list[Requested] = []
    for p in plan_applications(container, run, new, existing):
        service.link(p.application_id, ANALYST, p.mode, p.customer_id)
        comparison = service.comparison(p.application_id)
        fields = fields_to_sync(p.mode, comparison.default_fields)
        view = service.request(p.application_id, ANALYST, fields, comparison.seen_values(fields))
        assert view.created, view
        requested.append(p.requested(view.id, fields))
    return requested


# ---- requesting syncs through /slack/events --------------------------------------------------------


@dataclass
class SlackAttempts:
    """What happened to one application's link and pick submissions."""

    planned: Planned
    fields: list[SyncField] = field(default_factory=list)
    acknowledged: bool = False  # the pick submission got Slack's empty 200 ("close the modal")
    tries: int = 0  # HTTP requests sent, first tries and retries
    unanswered: int = 0  # requests that got no response (connection dropped, timeout)
    server_errors: int = 0  # 5xx answers
    error: str | None = None  # why it was never acknowledged


class SlackSyncRequester:
    """Requests syncs as an analyst in Slack does: submits the link modal (new or existing
    customer) and then the pick modal it answers with, both as signed ``view_submission``
    requests to ``/slack/events``.

    A request that gets no response (the connection dropped, a timeout) or a 5xx is sent again,
    up to ``max_tries`` times, ``retry_delay`` apart: as Slack re-delivers, or as the person
    presses Submit again. Every retry carries the same modal, so it must not add anything."""

    def __init__(
        self,
        base_url: str,
        *,
        user_id: str = ANALYST_ID,
        timeout: float = 10.0,
        max_tries: int = 8,
        retry_delay: float = 0.5,
    ) -> None:
        self.base_url = base_url
        self.user_id = user_id
        self.timeout = timeout
        self.max_tries = max_tries
        self.retry_delay = retry_delay
        self._local = threading.local()

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        return client  # type: ignore[no-any-return]

    def _submit(
        self, view: dict[str, Any], values: dict[str, Any], out: SlackAttempts
    ) -> httpx.Response | None:
        body = interaction_body(view_submission_payload(view, values, user_id=self.user_id)).encode()
        for n in range(self.max_tries):
            if n:
                time.sleep(self.retry_delay)
            out.tries += 1
            headers = {**sign(SIGNING_SECRET, body), "Content-Type": "application/x-www-form-urlencoded"}
            try:
                response = self._client().post("/slack/events", content=body, headers=headers)
            except httpx.TransportError as exc:
                out.unanswered += 1
                out.error = f"{type(exc).__name__}: {exc}"
                self._local.client = None  # a fresh connection for the retry
                continue
            if response.status_code >= 500:
                out.server_errors += 1
                out.error = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            return response
        return None

    def request(self, planned: Planned) -> SlackAttempts:
        out = SlackAttempts(planned)
        link_view = {
            "type": "modal",
            "callback_id": CallbackId.LINK,
            "private_metadata": json.dumps({"a": planned.application_id}, separators=(",", ":")),
            "blocks": [],
        }
        linked = self._submit(
            link_view, link_values(planned.mode, planned.customer_id, confirm_new=True), out
        )
        if linked is None:
            return out
        answer = (
            linked.json() if linked.headers.get("content-type", "").startswith("application/json") else {}
        )
        pick = answer.get("view") if answer.get("response_action") == "update" else None
        if not isinstance(pick, dict) or pick.get("callback_id") != CallbackId.PICK:
            out.error = f"the link modal answered {linked.status_code} {linked.text[:300]}"
            return out
        offered = [SyncField(v) for v in initial_ticks(pick)]
        out.fields = fields_to_sync(planned.mode, offered)
        picked = self._submit(pick, pick_values(out.fields), out)
        if picked is None:
            return out
        if picked.status_code == 200 and not picked.content:
            out.acknowledged = True
            out.error = None
        else:
            out.error = f"the pick modal answered {picked.status_code} {picked.text[:300]}"
        return out


def link_values(mode: str, customer: int | None = None, confirm_new: bool = False) -> dict[str, Any]:
    """The "Link to NetSuite Record" modal's state: ``mode`` (new or existing), the chosen customer, and
    whether "Yes, a new customer" is ticked."""
    return {
        BlockId.LINK_MODE: {
            ActionId.LINK_MODE: {"type": "radio_buttons", "selected_option": {"value": mode}}
        },
        BlockId.LINK_CUSTOMER: {
            ActionId.LINK_CUSTOMER: {
                "type": "external_select",
                "selected_option": {"value": str(customer)} if customer else None,
            }
        },
        BlockId.LINK_CONFIRM_NEW: {
            ActionId.LINK_CONFIRM_NEW: {
                "type": "checkboxes",
                "selected_options": [{"value": "yes"}] if confirm_new else [],
            }
        },
    }


def initial_ticks(pick: dict[str, Any]) -> list[str]:
    element = next(b["element"] for b in pick["blocks"] if b.get("block_id") == BlockId.SYNC_FIELDS)
    return [o["value"] for o in element.get("initial_options", [])]


def pick_values(fields: Iterable[SyncField]) -> dict[str, Any]:
    return {
        BlockId.SYNC_FIELDS: {
            ActionId.SYNC_FIELDS: {
                "type": "checkboxes",
                "selected_options": [{"value": f.value} for f in fields],
            }
        }
    }


def requested_in_database(
    container: Container, attempts: list[SlackAttempts]
) -> tuple[list[Requested], int, int]:
    """The sync rows the Slack requests made: (one :class:`Requested` per row, rows beyond the
    first per application (duplicates), acknowledged requests without any row (lost))."""
    by_app = {a.planned.application_id: a for a in attempts}
    with transaction(container.sessions, readonly=True) as session:
        rows = session.execute(
            select(SyncRequest.id, SyncRequest.application_id, SyncRequest.fields)
            .where(SyncRequest.application_id.in_(list(by_app)))
            .order_by(SyncRequest.id)
        ).all()
    requested: list[Requested] = []
    per_app: Counter[int] = Counter()
    for sync_id, app_id, fields in rows:
        per_app[app_id] += 1
        a = by_app[app_id]
        requested.append(a.planned.requested(sync_id, (SyncField(f) for f in fields)))
    extra = sum(n - 1 for n in per_app.values() if n > 1)
    missing = sum(1 for a in attempts if a.acknowledged and per_app[a.planned.application_id] == 0)
    return requested, extra, missing


# ---- waiting and counting -----------------------------------------------------------------------


def statuses(container: Container, ids: list[int]) -> Counter[str]:
    with transaction(container.sessions, readonly=True) as session:
        rows = session.execute(select(SyncRequest.status).where(SyncRequest.id.in_(ids))).scalars()
        return Counter(rows)


def all_final(container: Container, requested: list[Requested]) -> bool:
    counts = statuses(container, [r.sync_id for r in requested])
    return counts[SyncStatus.PENDING.value] == 0 and counts[SyncStatus.RUNNING.value] == 0


@dataclass
class Tally:
    """What became of the requested syncs, checked in the database and in NetSuite."""

    requested: int = 0
    completed: int = 0
    lost: int = 0
    duplicated: int = 0
    problems: list[str] = field(default_factory=list)
    lost_ids: set[int] = field(default_factory=set)

    def line(self, label: str) -> str:
        return (
            f"{label}: requested={self.requested} completed={self.completed} "
            f"lost={self.lost} duplicated={self.duplicated}"
        )


def tally(container: Container, ns: EmulatorServer, requested: list[Requested]) -> Tally:
    """Count completed, lost and duplicated syncs.

    *Completed*: the row succeeded, its success was recorded once, and NetSuite holds every
    requested field. *Lost*: anything else (a row not succeeded, a requested field missing from
    NetSuite). *Duplicated*: every extra success record, customer with our external id, contact
    with our email, and address line of ours beyond the first.
    """
    t = Tally(requested=len(requested))
    ids = [r.sync_id for r in requested]
    with transaction(container.sessions, readonly=True) as session:
        rows = {row.id: row for row in session.scalars(select(SyncRequest).where(SyncRequest.id.in_(ids)))}
        successes = dict(
            session.execute(
                select(AuditEvent.entity_id, func.count())
                .where(AuditEvent.entity_type == "sync", AuditEvent.action == "sync.succeeded")
                .group_by(AuditEvent.entity_id)
            ).all()
        )
        terms = {name.casefold(): term_id for term_id, name, _inactive in SyncRepository(session).terms()}
    by_external_id: dict[str, list[int]] = {}
    for key, load in ns.state.scan_customers():
        external_id = load().external_id
        if external_id:
            by_external_id.setdefault(external_id, []).append(key[1])
    for r in requested:
        row = rows.get(r.sync_id)
        recorded = int(successes.get(str(r.sync_id), 0))
        t.duplicated += max(0, recorded - 1)
        missing: list[str] = []
        if row is None or row.status != SyncStatus.SUCCEEDED.value or recorded == 0:
            status = row.status if row is not None else "no row"
            missing.append(f"status {status}, {recorded} success records, {row.last_error if row else ''}")
        elif row.result is not None:
            done = set(row.result.get("written", [])) | set(row.result.get("unchanged", []))
            missing.extend(f.value for f in r.fields if f.value not in done)
        customer_id = r.customer_id
        if r.mode == "new":
            copies = by_external_id.get(r.external_id, [])
            t.duplicated += max(0, len(copies) - 1)
            customer_id = copies[0] if copies else None
        customer = ns.state.get_customer(customer_id) if customer_id is not None else None
        if customer is None:
            missing.append("the NetSuite customer")
        else:
            missing.extend(_missing_in_netsuite(r, customer, ns, terms, t))
        if missing:
            t.lost += 1
            t.lost_ids.add(r.sync_id)
            t.problems.append(f"sync {r.sync_id} ({r.mode}): " + "; ".join(missing))
        else:
            t.completed += 1
    return t


def _missing_in_netsuite(
    r: Requested, customer: Any, ns: EmulatorServer, terms: dict[str, str], t: Tally
) -> list[str]:
    """Requested fields NetSuite does not hold; duplicated lines and contacts go into ``t``."""
    missing: list[str] = []
    if SyncField.COMPANY_NAME in r.fields and customer.company_name != r.company_name:
        missing.append(f"company name is {customer.company_name!r}")
    if SyncField.CREDIT_TERMS in r.fields and (
        str(customer.terms_id) != str(terms[TERMS.casefold()]) or customer.credit_limit != CREDIT_LIMIT
    ):
        missing.append(f"terms {customer.terms_id} / limit {customer.credit_limit}")
    if SyncField.FEDERAL_ID in r.fields and customer.vat_reg_number != EIN:
        missing.append("tax reg. number")
    lines = Counter(line.address.addr1 for line in customer.address_book)
    if SyncField.BILLING_ADDRESS in r.fields:
        billing = customer.default_billing_line()
        if billing is None or billing.address.addr1 != BILLING_LINE1:
            missing.append("default billing address")
        t.duplicated += max(0, lines[BILLING_LINE1] - 1)
    if SyncField.SHIPPING_LOCATIONS in r.fields:
        labels = Counter(line.label for line in customer.address_book)
        for label, line1 in r.shipping:
            if lines[line1] == 0 or labels[label] == 0:
                missing.append(f"shipping location {label!r}")
            t.duplicated += max(0, lines[line1] - 1) + max(0, labels[label] - 1)
    if SyncField.STATEMENTS_CONTACT in r.fields:
        contacts = [c for c in ns.state.contacts_of_customer(customer.id) if c.email == r.email]
        t.duplicated += max(0, len(contacts) - 1)
        attached = {role.contact_id for role in customer.contact_roles}
        if not any(c.id in attached for c in contacts):
            missing.append("statements contact")
    return missing


@contextlib.contextmanager
def background(target: Callable[[], Any], name: str) -> Iterator[threading.Thread]:
    """Run ``target`` in a thread for the duration of the block (joined at the end; its
    exception, if any, is raised there)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        thread.join()
    if errors:
        raise errors[0]


# ---- Slack messages the app owes ------------------------------------------------------------------


@dataclass
class SlackTally:
    """Messages the app owes Slack, and what the (mock) Slack Web API actually received.

    Owed: one announcement per application (``chat.postMessage`` in the analysts' channel), and
    per decision an update of that message showing the decision (``chat.update``) and one audit
    line in its thread. *Delivered*: a successful call for each; *lost*: owed and never
    delivered (or the message does not show the decision in the end); *duplicated*: every
    successful call beyond the first for the same owed message."""

    requested: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    refused_429: int = 0  # calls Slack answered with 429 (each retried or given up)
    problems: list[str] = field(default_factory=list)

    def line(self, label: str) -> str:
        return (
            f"{label}: requested={self.requested} delivered={self.delivered} lost={self.lost} "
            f"duplicated={self.duplicated} (429s served: {self.refused_429})"
        )


def announcement_of(call: Any) -> int | None:
    """The application a recorded ``chat.postMessage`` announced, or None if it is not an announcement
    (a thread line, a DM, a manager's request)."""
    text = str(call.args.get("text") or "")
    if call.args.get("thread_ts") or not text.startswith("Credit application #"):
        return None
    return int(text.removeprefix("Credit application #").split(" ", 1)[0])


def slack_tally(slack: Any, applications: Iterable[int], decisions: dict[int, str]) -> SlackTally:
    """Count deliveries in ``slack`` (a :class:`bot.sandbox.slack_api.MockSlackServer`) for
    ``applications`` (each owed an announcement) and ``decisions`` (application id -> the status
    its message must end up showing, ``approved`` or ``rejected``; each owed an update and a
    thread line)."""
    t = SlackTally(refused_429=slack.rate_limited())
    posts = [c for c in slack.calls("chat.postMessage") if c.ok]
    updates = [c for c in slack.calls("chat.update") if c.ok]
    announced: dict[int, list[Any]] = {}
    for c in posts:
        app_id = announcement_of(c)
        if app_id is not None:
            announced.setdefault(app_id, []).append(c)
    for app_id in applications:
        t.requested += 1
        found = announced.get(app_id, [])
        t.duplicated += max(0, len(found) - 1)
        if found:
            t.delivered += 1
        else:
            t.lost += 1
            t.problems.append(f"application {app_id}: never announced")
    for app_id, status in decisions.items():
        t.requested += 2
        found = announced.get(app_id, [])
        if not found:
            t.lost += 2
            t.problems.append(f"application {app_id}: no message to update or thread under")
            continue
        channel, ts = found[0].response["channel"], found[0].response["ts"]
        mine = [c for c in updates if c.args.get("ts") == ts]
        t.duplicated += max(0, len(mine) - 1)
        shown = slack.message(channel, ts).text
        if mine and shown.endswith(f": {status}"):
            t.delivered += 1
        else:
            t.lost += 1
            t.problems.append(f"application {app_id}: {len(mine)} updates; the message shows {shown!r}")
        lines = [
            c for c in posts if c.args.get("thread_ts") == ts and str(c.args.get("text", "")).startswith(":")
        ]
        t.duplicated += max(0, len(lines) - 1)
        if lines:
            t.delivered += 1
        else:
            t.lost += 1
            t.problems.append(f"application {app_id}: no decision line in its thread")
    return t


def approve_body(application_id: int, *, user_id: str = ANALYST_ID, terms: str = "Net 30",
                 credit_limit: str = "25000") -> bytes:  # fmt: skip
    """A signed-ready approve modal submission (the analyst approves ``application_id``)."""
    view = {
        "type": "modal",
        "callback_id": CallbackId.APPROVE,
        "private_metadata": json.dumps({"a": application_id}, separators=(",", ":")),
        "blocks": [],
    }
    values = {
        BlockId.TERMS: {ActionId.TERMS: {"type": "static_select", "selected_option": {"value": terms}}},
        BlockId.CREDIT_LIMIT: {ActionId.CREDIT_LIMIT: {"type": "plain_text_input", "value": credit_limit}},
        BlockId.NOTE: {ActionId.NOTE: {"type": "plain_text_input", "value": None}},
    }
    return interaction_body(view_submission_payload(view, values, user_id=user_id)).encode()


def reject_body(application_id: int, *, user_id: str = ANALYST_ID, reason: str = "Thin file") -> bytes:
    """A signed-ready reject modal submission."""
    view = {
        "type": "modal",
        "callback_id": CallbackId.REJECT,
        "private_metadata": json.dumps({"a": application_id}, separators=(",", ":")),
        "blocks": [],
    }
    values = {BlockId.REASON: {ActionId.REASON: {"type": "plain_text_input", "value": reason}}}
    return interaction_body(view_submission_payload(view, values, user_id=user_id)).encode()


def details_body(application_id: int, *, user_id: str = ANALYST_ID) -> bytes:
    """A click on Details in App Home (opens a modal through views.open)."""
    payload = block_actions_payload(
        [button_action(ActionId.DETAILS, json.dumps({"a": application_id}))],
        user_id=user_id,
        view={"id": "V0RELIAB01", "type": "home", "blocks": [], "state": {"values": {}}},
        trigger_id=new_trigger_id(),
    )
    return interaction_body(payload).encode()


def signed_headers(body: bytes) -> dict[str, str]:
    return {**sign(SIGNING_SECRET, body), "Content-Type": "application/x-www-form-urlencoded"}
