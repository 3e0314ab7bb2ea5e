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

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rq import Queue
from sqlalchemy import func, select

from bot.container import Container
from bot.mirror.ingest import IngestParts, run_ingest
from bot.sync import jobs as sync_jobs
from netsuite.emulator import EmulatorServer
from storage.db import transaction
from storage.models import AuditEvent, SyncRequest, SyncStatus
from tests.conftest import TEST_FEDERAL_ID_KEY

# The harness lives in tests/harness.py; benchmarks/sync_bench.py imports these names from here.
from tests.harness import (
    ACCOUNT,
    LEASE_SECONDS,
    RedisServer,
    Requested,
    Tally,
    WorkerProcess,
    all_final,
    child_pids,
    emulator_settings,
    existing_customers,
    redis_server_binary,
    request_syncs,
    statuses,
    tally,
    wait_until,
    worker_env,
)

__all__ = [
    "ACCOUNT",
    "RedisServer",
    "Requested",
    "WorkerProcess",
    "child_pids",
    "existing_customers",
    "request_syncs",
    "tally",
    "worker_env",
]

pytestmark = pytest.mark.services

LATENCY_MS = 10.0
"""Per NetSuite request: a sync (a dozen requests) is in flight most of the time, yet short."""
HELD_PATCH_SECONDS = 1.5
"""How long the emulator holds the PATCH the worker is killed in (shorter than the lease: the
held write lands before the row is handed to the next worker, as a slow NetSuite would do it)."""
DEADLINE_SECONDS = 45.0


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
            **emulator_settings(ns.url),
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
