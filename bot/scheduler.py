"""Periodic work in worker processes: one thread a task, one process per time slot.

Each task's slot (`floor(now / interval)`) is claimed with `SET NX` in the shared Redis, so with N worker
processes a pass still runs once a slot. What the passes do lives elsewhere (announcing and reminding in
`bot.jobs.tick`, re-queueing syncs in `bot.sync.jobs`, refreshing the mirror in `bot.mirror.jobs`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from bot.container import Container

log = structlog.get_logger(__name__)
SLOT_KEY = "credit-desk:periodic:"


class PeriodicTask:
    def __init__(
        self, container: Container, name: str, interval_seconds: float, run: Callable[[], Any]
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self.container = container
        self.name = name
        self.interval = interval_seconds
        self.run = run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"periodic-{name}", daemon=True)

    def start(self) -> PeriodicTask:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self) -> Any:
        """Run if this process wins the current slot; None if another process did."""
        slot = int(time.time() // self.interval)
        key = f"{SLOT_KEY}{self.name}:{slot}"
        if not self.container.redis.set(key, "1", nx=True, ex=max(1, int(self.interval * 4))):
            return None
        return self.run()

    def _loop(self) -> None:
        from bot import jobs

        jobs.bind_container(self.container, thread_only=True)
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("periodic.failed", task=self.name)
            self._stop.wait(self.interval)


def periodic_tasks(container: Container) -> list[PeriodicTask]:
    """Everything a worker process runs on a timer."""
    from bot import jobs
    from bot.sync.jobs import reconcile

    settings = container.settings
    tasks = [
        PeriodicTask(container, "tick", 60.0, jobs.tick),
        PeriodicTask(
            container, "sync-reconcile", settings.sync_reconcile_seconds, lambda: reconcile(container)
        ),
    ]
    if container.notifier is not None:
        tasks.append(
            PeriodicTask(container, "outbox", settings.outbox_repair_seconds, container.notifier.deliver_due)
        )
    if settings.mirror_interval_minutes > 0 and container.netsuite is not None:
        from bot.mirror.jobs import enqueue_due_refresh

        minutes = settings.mirror_interval_minutes
        refresh = lambda: enqueue_due_refresh(container.redis, minutes)  # noqa: E731
        tasks.append(PeriodicTask(container, "mirror-refresh", 30.0, refresh))
    return tasks
