"""The `mirror_refresh` worker job (one ingest run, never two at once) and its schedule.

Worker processes enqueue it every `MIRROR_INTERVAL_MINUTES` (`bot.scheduler.periodic_tasks`).
A run that finds another one holding the lock returns at once (the next tick catches up); the
lock's TTL is renewed after every batch, so a long full run keeps it and a crashed worker's lock
lapses after `LOCK_TTL_SECONDS`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis
import structlog
from redis.exceptions import LockError
from rq import Queue

from bot.jobs import current_container
from bot.mirror.ingest import (
    IngestProgress,
    IngestReport,
    NetSuiteNotConfigured,
    ProgressCallback,
    run_ingest,
)

if TYPE_CHECKING:
    from bot.container import Container

log = structlog.get_logger(__name__)

LOCK_KEY = "credit-desk:mirror:ingest"
LOCK_TTL_SECONDS = 600
JOB_TIMEOUT_SECONDS = 6 * 3600
"""RQ job timeout for a refresh (a first full run of a large account takes a while)."""


def run_exclusive(
    container: Container, full: bool = False, progress: ProgressCallback | None = None
) -> IngestReport | None:
    """One ingest under the mirror lock, or ``None`` at once when another run holds it.

    The lock lives in the container's Redis, so it spans processes only with a shared Redis
    (on embedded defaults the in-process stand-in covers this process alone).
    """
    lock = container.redis.lock(LOCK_KEY, timeout=LOCK_TTL_SECONDS, blocking=False)
    if not lock.acquire(blocking=False):
        return None

    def renew(event: IngestProgress) -> None:
        lock.reacquire()
        if progress is not None:
            progress(event)

    try:
        return run_ingest(container, full=full, progress=renew)
    finally:
        try:
            lock.release()
        except LockError:  # expired meanwhile; nothing to give back
            log.warning("mirror.refresh.lock_lost")


def mirror_refresh(full: bool = False) -> dict[str, Any]:
    """Bring the customer mirror up to date; returns the run's report as a dict (RQ keeps it)."""
    container = current_container()
    try:
        report = run_exclusive(container, full=full)
    except NetSuiteNotConfigured as exc:
        log.warning("mirror.refresh.skipped", reason=str(exc))
        return {"skipped": str(exc)}
    if report is None:
        log.info("mirror.refresh.skipped", reason="another ingest holds the lock")
        return {"skipped": "another ingest is running"}
    from bot.utilization.alerts import alert_after_refresh

    return {
        "utilization_alerts": alert_after_refresh(container, report.started_at),
        "mode": report.mode,
        "resumed": report.resumed,
        "customers_read": report.customers_read,
        "customers_changed": report.customers_changed,
        "customers_removed": report.customers_deleted + report.customers_pruned,
        "watermark": report.watermark,
        "seconds": round(report.seconds, 3),
    }


# ---- schedule -----------------------------------------------------------------------------------

QUEUE = "netsuite"
TICK_KEY = "credit-desk:mirror:tick:"


def enqueue_due_refresh(
    redis_client: redis.Redis, interval_minutes: int, now: datetime | None = None
) -> bool:
    """Enqueue `mirror_refresh` once per interval slot, whichever process asks first.

    The slot is ``floor(epoch minutes / interval)``; a ``SET NX`` on its key elects one enqueuer
    across every worker sharing the Redis. A missed slot needs no catch-up: the next run is
    incremental and covers the gap. Returns whether this call enqueued.
    """
    if interval_minutes <= 0:
        return False
    moment = now or datetime.now(UTC)
    slot = int(moment.timestamp() // 60) // interval_minutes
    if not redis_client.set(f"{TICK_KEY}{slot}", "1", nx=True, ex=interval_minutes * 120):
        return False
    Queue(QUEUE, connection=redis_client).enqueue(
        mirror_refresh,
        job_id=f"mirror-refresh-{slot}",
        job_timeout=JOB_TIMEOUT_SECONDS,
        result_ttl=24 * 3600,
    )
    log.info("mirror.refresh.enqueued", slot=slot)
    return True
