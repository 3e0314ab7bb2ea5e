"""Nothing lost, nothing doubled: syncs survive a SIGKILLed worker and a Redis restart.

Real processes against a real Redis: each test starts its OWN ``redis-server`` on a free loopback
port (no persistence, so a restart loses everything in it, as a production Redis without AOF
does), an in-process NetSuite emulator with latency so that syncs are really in flight, and
``credit-desk worker`` processes (``python -m bot worker``) on SQLite or PostgreSQL. The syncs
are requested the way Slack requests them (:class:`bot.sync.service.SyncService`), then:

* a worker is SIGKILLed, together with its RQ work horse, while one sync's PATCH is on the wire
  (the emulator holds it, and applies it after the worker is gone); a new worker takes over and
  the reconcile pass hands the dead worker's row back once its lease ran out;
* Redis is shut down without saving and started again on the same port, with syncs queued (and
  once more while a worker is running): the queue is gone, the rows are not, and the reconcile
  pass queues them again.

Every test prints ``requested / completed / lost / duplicated`` and requires every sync to end
``succeeded`` exactly once, every requested field to be in NetSuite, and no customer, contact or
address line to exist twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from rq import Queue
from sqlalchemy import func, select

from bot.applications.schemas import ApplicationIn
from bot.container import Container
from bot.decisions.policy import Actor, Role
from bot.mirror.ingest import IngestParts, run_ingest
from bot.sync import jobs as sync_jobs
from bot.sync.fields import SyncField
from netsuite.emulator import EmulatorServer
from netsuite.writes import external_id_for
from storage.db import transaction
from storage.models import AuditEvent, NsCustomer, SyncRequest, SyncStatus
from storage.repositories.sync import SyncRepository
from tests.conftest import TEST_FEDERAL_ID_KEY, service_unavailable, valid_application

pytestmark = pytest.mark.services

ACCOUNT = "1234567_SB1"
ANALYST = Actor("U0ANALYST", frozenset({Role.ANALYST}))
EIN = "12-3456789"
TERMS = "Net 45"
CREDIT_LIMIT = Decimal("40000.00")
BILLING_LINE1 = "100 Congress Ave"
EXTERNAL_ID_PREFIX = "credit-desk-"
REDIS_SERVER = os.environ.get("CREDIT_DESK_REDIS_SERVER", "/usr/bin/redis-server")

LATENCY_MS = 10.0
"""Per NetSuite request: a sync (a dozen requests) is in flight most of the time, yet short."""
LEASE_SECONDS = 4.0
"""SYNC_LEASE_SECONDS in these tests: above the longest sync here (about 1 s), so a live sync is
never taken back, and short enough that a dead worker's row comes back within the test."""
RECONCILE_SECONDS = 0.5
HELD_PATCH_SECONDS = 1.5
"""How long the emulator holds the PATCH the worker is killed in (shorter than the lease: the
held write lands before the row is handed to the next worker, as a slow NetSuite would do it)."""
DEADLINE_SECONDS = 45.0


# ---- a private Redis server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


# ---- worker processes ---------------------------------------------------------------------------


def worker_env(database_url: str, redis_url: str, netsuite_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``credit-desk worker`` talking to our Redis, database and emulator.

    The emulator runs without authentication; the TBA values only satisfy the client's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        FEDERAL_ID_KEY=TEST_FEDERAL_ID_KEY,
        NETSUITE_ACCOUNT_ID=ACCOUNT,
        NETSUITE_BASE_URL=netsuite_url,
        NETSUITE_AUTH_MODE="tba",
        NETSUITE_TBA_CONSUMER_KEY="ck",
        NETSUITE_TBA_CONSUMER_SECRET="cs",
        NETSUITE_TBA_TOKEN_ID="tk",
        NETSUITE_TBA_TOKEN_SECRET="ts",
        NETSUITE_SUBSIDIARY_ID="1",
        NETSUITE_CONTACT_ROLE_ID="2",
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


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (an RQ worker's work horse), from ``/proc``."""
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


# ---- requesting syncs the way Slack does ---------------------------------------------------------


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


def request_syncs(container: Container, run: str, new: int, existing: list[int]) -> list[Requested]:
    """Approve, link and request a sync for ``new`` new customers and one per ``existing``
    customer, ticking what the comparison ticks by default (every row that differs; for an
    existing customer not the Tax Reg. Number, see below)."""
    service = container.sync
    assert service is not None and container.applications is not None and container.decisions is not None
    plan: list[int | None] = []  # new and existing customers take turns in the queue
    for n in range(max(new, len(existing))):
        if n < new:
            plan.append(None)
        plan.extend(existing[n : n + 1])
    requested: list[Requested] = []
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
        mode = "new" if customer_id is None else "existing"
        service.link(app_id, ANALYST, mode, customer_id)
        comparison = service.comparison(app_id)
        fields = comparison.default_fields
        if customer_id is not None:
            # The mirror cannot read a Tax Reg. Number (SuiteQL does not expose it), so NetSuite's
            # own value counts as changed since the analyst looked and is never overwritten: a
            # conflict by design (test_sync_engine covers it), not what these tests are about.
            fields = [f for f in fields if f is not SyncField.FEDERAL_ID]
        view = service.request(app_id, ANALYST, fields, comparison.seen_values(fields))
        assert view.created, view
        requested.append(
            Requested(
                sync_id=view.id,
                application_id=app_id,
                reference=reference,
                mode=mode,
                customer_id=customer_id,
                fields=frozenset(fields),
                company_name=name,
                email=email,
                shipping=tuple((s["label"], s["line1"]) for s in body["shipping_locations"]),
            )
        )
    return requested


# ---- waiting and counting -----------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], seconds: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


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


def report(capsys: pytest.CaptureFixture[str], t: Tally, label: str) -> None:
    """Print the tally into the test output (past pytest's capture)."""
    with capsys.disabled():
        print(f"\n{t.line(label)}")
        for problem in t.problems[:20]:
            print(f"  {problem}")


# ---- the scene ----------------------------------------------------------------------------------


@dataclass
class Scene:
    redis: RedisServer
    ns: EmulatorServer
    container: Container
    database_url: str
    workdir: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)
    """Exit codes of workers that quit on their own (and were started again)."""

    def worker(self, threads: int = 1) -> WorkerProcess:
        env = worker_env(self.database_url, self.redis.url, self.ns.url, WORKER_THREADS=str(threads))
        w = WorkerProcess(env, self.workdir, self.workdir / f"worker-{len(self.workers) + 1}.log")
        self.workers.append(w)
        return w.start()

    def supervise(self) -> None:
        """Start a new worker for each one that quit by itself, as systemd's ``Restart=always``
        would (RQ quits on an unexpected Redis error while a job runs)."""
        for w in list(self.workers):
            if w.proc is not None and w.proc.poll() is not None and not (w.killed or w.replaced):
                w.replaced = True
                self.exits.append(w.proc.returncode)
                self.worker()

    def settle(self, requested: list[Requested]) -> None:
        """Wait until no sync is pending or running, restarting a worker that quit."""

        def settled() -> bool:
            self.supervise()
            return all_final(self.container, requested)

        try:
            wait_until(settled, DEADLINE_SECONDS, "every sync to finish", step=0.1)
        except AssertionError:
            ids = [r.sync_id for r in requested]
            raise AssertionError(f"{statuses(self.container, ids)}\n{self.logs()}") from None

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log_text()[-3000:]}" for w in self.workers)

    def queued(self) -> list[str]:
        client = self.redis.client()
        try:
            return list(Queue(sync_jobs.QUEUE, connection=client).job_ids)
        finally:
            client.close()


@pytest.fixture
def scene(database_url: str, tmp_path: Path, container_factory: Any) -> Iterator[Scene]:
    binary = redis_server_binary()
    with (
        RedisServer(binary, tmp_path / "redis") as server,
        EmulatorServer(seed=31, customers=60) as ns,
    ):
        container: Container = container_factory(
            database_url=database_url,
            redis_url=server.url,
            federal_id_key=TEST_FEDERAL_ID_KEY,
            netsuite_account_id=ACCOUNT,
            netsuite_base_url=ns.url,
            netsuite_auth_mode="tba",
            netsuite_tba_consumer_key="ck",
            netsuite_tba_consumer_secret="cs",
            netsuite_tba_token_id="tk",
            netsuite_tba_token_secret="ts",
            netsuite_subsidiary_id="1",
            netsuite_contact_role_id="2",
            default_terms="Net 30,Net 45",
            sync_lease_seconds=LEASE_SECONDS,
        )
        assert container.netsuite is not None
        run_ingest(IngestParts(container.sessions, container.netsuite), full=True)  # the mirror
        ns.app.config.latency_ms = LATENCY_MS  # from now on every request takes a while
        s = Scene(server, ns, container, database_url, tmp_path)
        try:
            yield s
        finally:
            for w in s.workers:
                w.kill() if w.alive() else None


# ---- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 4], ids=["forking", "threaded"])
def test_a_worker_killed_mid_sync_loses_and_doubles_nothing(
    scene: Scene, capsys: pytest.CaptureFixture[str], threads: int
) -> None:
    s = scene
    customers = existing_customers(s.container, 10)
    # The fourth sync in the queue (the second existing customer) has its PATCH held by NetSuite;
    # the worker dies while it is on the wire, and NetSuite applies it after the worker is gone.
    held = s.ns.faults.delay(HELD_PATCH_SECONDS, times=1, method="PATCH", path=rf"/customer/{customers[1]}$")
    first = s.worker(threads)  # starts while the syncs are being requested
    requested = request_syncs(s.container, "kill", new=10, existing=customers)
    victim = requested[3]
    assert victim.customer_id == customers[1]

    wait_until(lambda: held.hits == 1, DEADLINE_SECONDS, "the held PATCH to reach NetSuite")
    horses = first.kill()

    if threads == 1:  # a forking worker runs each job in a work horse; a threaded one in itself
        assert horses, "the worker had no work horse: nothing was killed mid-sync"
    assert statuses(s.container, [victim.sync_id]) == Counter({SyncStatus.RUNNING.value: 1})
    s.worker(threads), s.worker(threads)  # two take over, to keep the test short
    s.settle(requested)

    t = tally(s.container, s.ns, requested)
    report(capsys, t, "killed worker")
    assert (t.requested, t.completed, t.lost, t.duplicated) == (20, 20, 0, 0), t.problems
    with transaction(s.container.sessions, readonly=True) as session:
        row = session.get(SyncRequest, victim.sync_id)
        assert row is not None and row.attempts == 2  # the killed attempt, then the reclaimed one
        reclaimed = session.scalar(
            select(func.count()).where(
                AuditEvent.entity_id == str(victim.sync_id), AuditEvent.action == "sync.reclaimed"
            )
        )
        assert reclaimed == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # Redis is the subject here
def test_a_redis_restart_loses_the_queue_not_the_syncs(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    s = scene
    requested = request_syncs(s.container, "restart", new=6, existing=existing_customers(s.container, 6))
    ids = [r.sync_id for r in requested]
    assert sorted(s.queued()) == sorted(sync_jobs.job_id(i) for i in ids)

    s.redis.restart()  # no worker yet: every sync is only queued

    assert s.queued() == []  # the queue is gone ...
    assert statuses(s.container, ids) == Counter({SyncStatus.PENDING.value: len(ids)})  # ... the rows not
    s.worker()
    wait_until(
        lambda: statuses(s.container, ids)[SyncStatus.SUCCEEDED.value] >= 3,
        DEADLINE_SECONDS,
        "the reconcile pass to queue the syncs again and the worker to run some",
    )
    s.redis.restart()  # and again while the worker is running syncs
    s.settle(requested)

    t = tally(s.container, s.ns, requested)
    report(capsys, t, f"restarted Redis (workers that quit by themselves, exit codes: {s.exits})")
    assert (t.requested, t.completed, t.lost, t.duplicated) == (12, 12, 0, 0), t.problems
