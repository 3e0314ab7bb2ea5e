"""RQ jobs of the sync engine, and the reconcile pass that makes sure no requested write is lost.

The database row is the truth; an RQ job only carries its id (engineering.md, "RQ over durable
rows"). A job can vanish -- a worker killed mid-job, Redis restarted without persistence -- so the
**reconcile pass** runs every ``SYNC_RECONCILE_SECONDS`` in each worker process (one of them wins
each slot):

1. ``running`` rows whose lease ran out (their worker died) go back to ``pending``;
2. every due ``pending`` row without a live job (queued, started, deferred, scheduled) is queued.

The job id is ``sync-<id>``, so queueing a row that already has a live job is a no-op; should two
passes race and queue it twice anyway, the second run finds the row no longer pending (the claim
is a conditional UPDATE) and does nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import redis
import structlog
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from bot.jobs import current_container
from bot.sync import SyncOptions
from bot.sync.executor import LoggingObserver, SyncExecutor, SyncObserver
from netsuite.client import NetSuiteClient
from netsuite.factory import build_client
from storage.db import transaction
from storage.repositories.sync import SyncRepository
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.container import Container

log = structlog.get_logger(__name__)

QUEUE = "netsuite"
LIVE = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED})
RECONCILE_KEY = "credit-desk:sync:reconcile:"
EXECUTOR_KEY = "sync_executor"
OBSERVER_KEY = "sync_observer"
CLIENT_KEY = "sync_netsuite_client"
DUE_BATCH = 500


def job_id(sync_id: int) -> str:
    return f"sync-{sync_id}"


# ---- jobs ---------------------------------------------------------------------------------------


def run_sync_job(sync_id: int) -> dict[str, Any]:
    """The RQ job: run sync row ``sync_id`` (a no-op unless it is due and pending)."""
    executor = sync_executor(current_container())
    if executor is None:
        log.warning("sync.skipped", sync_id=sync_id, reason="NetSuite is not configured")
        return {"sync_id": sync_id, "status": "skipped"}
    view = executor.run_sync(sync_id)
    return {"sync_id": sync_id, "status": view.status.value if view is not None else "not_claimed"}


def reconcile_job() -> dict[str, int]:
    """The reconcile pass as an RQ job (for a manual kick: ``credit-desk`` or a test)."""
    return reconcile(current_container())


# ---- queueing -----------------------------------------------------------------------------------


def has_live_job(connection: redis.Redis, sync_id: int) -> bool:
    try:
        job = Job.fetch(job_id(sync_id), connection=connection)
        status = job.get_status(refresh=False)
    except NoSuchJobError:
        return False
    return status in LIVE


def enqueue_sync(connection: redis.Redis, sync_id: int, *, job_timeout: float, force: bool = False) -> bool:
    """Queue ``run_sync_job(sync_id)`` unless a live job for it exists (``force``: the row was
    taken back from a dead worker, whose job may still look started). True if queued."""
    if not force and has_live_job(connection, sync_id):
        return False
    Queue(QUEUE, connection=connection).enqueue(
        run_sync_job,
        sync_id,
        job_id=job_id(sync_id),
        job_timeout=int(job_timeout),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
    )
    return True


def make_enqueuer(connection: redis.Redis, options: SyncOptions) -> Callable[[int], bool]:
    """The ``enqueue`` callable of :class:`bot.sync.service.SyncService`."""

    def enqueue(sync_id: int) -> bool:
        return enqueue_sync(connection, sync_id, job_timeout=options.lease_seconds)

    return enqueue


def enqueue_due(container: Container, *, force: Collection[int] = (), limit: int = DUE_BATCH) -> int:
    """Queue every due pending row that has no live job; returns how many were queued."""
    options = SyncOptions.from_settings(container.settings)
    with transaction(container.sessions, readonly=True) as session:
        due = SyncRepository(session).due_ids(utcnow(), limit)
    queued = 0
    for sync_id in due:
        if enqueue_sync(container.redis, sync_id, job_timeout=options.lease_seconds, force=sync_id in force):
            queued += 1
    if queued:
        log.info("sync.enqueued_due", queued=queued, due=len(due))
    return queued


def reconcile(container: Container) -> dict[str, int]:
    """Take back rows of dead workers, then queue every due row without a live job."""
    executor = sync_executor(container)
    if executor is None:
        return {"reclaimed": 0, "queued": 0}
    reclaimed = executor.reclaim_stale()
    queued = enqueue_due(container, force=set(reclaimed))
    return {"reclaimed": len(reclaimed), "queued": queued}


# ---- wiring -------------------------------------------------------------------------------------


def sync_executor(container: Container) -> SyncExecutor | None:
    """The container's executor, built once (kept in ``container.extras``); ``None`` when NetSuite
    or the Federal ID key is not configured. A ``SyncObserver`` in ``extras["sync_observer"]``
    receives outcomes (the Slack thread); without one they are logged."""
    found = container.extras.get(EXECUTOR_KEY)
    if isinstance(found, SyncExecutor):
        return found
    if container.applications is None or container.cipher is None:
        return None
    client = _client(container)
    if client is None:
        return None
    observer = container.extras.get(OBSERVER_KEY)
    executor = SyncExecutor(
        container.sessions,
        client,
        reveal_federal_id=container.applications.reveal_federal_id,
        digest=container.cipher.digest,
        options=SyncOptions.from_settings(container.settings),
        observer=observer if isinstance(observer, SyncObserver) else LoggingObserver(),
        # Outcomes owe Slack a line only where something delivers it (the Slack observer).
        outbox_lease=timedelta(seconds=container.settings.outbox_lease_seconds)
        if isinstance(observer, SyncObserver)
        else None,
    )
    container.extras[EXECUTOR_KEY] = executor
    return executor


def _client(container: Container) -> NetSuiteClient | None:
    for key in ("netsuite", CLIENT_KEY):
        found = getattr(container, key, None) or container.extras.get(key)
        if isinstance(found, NetSuiteClient):
            return found
    built = build_client(container.settings, container.redis)
    if built is not None:
        container.extras[CLIENT_KEY] = built
    return built


class SyncReconciler:
    """A daemon thread running :func:`reconcile` every ``poll_seconds`` (worker processes run one).

    Each slot (``floor(now / poll_seconds)``) is won by one process through ``SET NX`` in the
    shared Redis, so N workers do not scan the table N times.
    """

    def __init__(self, container: Container, poll_seconds: float = 15.0) -> None:
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")
        self.container = container
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sync-reconcile", daemon=True)

    def start(self) -> SyncReconciler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self) -> dict[str, int] | None:
        """One pass if this process wins the current slot; ``None`` if another one did."""
        slot = int(time.time() // self.poll_seconds)
        key = f"{RECONCILE_KEY}{slot}"
        if not self.container.redis.set(key, "1", nx=True, ex=max(1, int(self.poll_seconds * 4))):
            return None
        return reconcile(self.container)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # database or Redis away for a moment: the next slot tries again
                log.exception("sync.reconcile.error")
            self._stop.wait(self.poll_seconds)
