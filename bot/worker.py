"""RQ workers: the `credit-desk worker` process, and the in-process worker thread of embedded defaults."""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import structlog
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.timeouts import TimerDeathPenalty
from sqlalchemy.orm import configure_mappers

from bot import jobs
from bot.container import Container
from bot.scheduler import PeriodicTask, periodic_tasks

log = structlog.get_logger(__name__)


STOP_CHECK_SECONDS = 2
"""How often an idle threaded worker looks at its stop flag while it waits for a job."""


class ThreadWorker(SimpleWorker):
    """An RQ worker that can live in a thread: no signal handlers, timeouts by timer instead of SIGALRM, and
    a stop request honoured while idle (RQ's dequeue loop goes on waiting after each timeout without
    looking at `_stop_requested`, so an idle worker thread never ended and `credit-desk worker` took its
    full join time, minutes, to stop on SIGTERM)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        if timeout is None:  # burst: one look, no waiting
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        deadline = None if max_idle_time is None else time.monotonic() + max_idle_time
        while not self._stop_requested:
            wait = min(timeout, STOP_CHECK_SECONDS)
            if deadline is not None:
                wait = max(1, min(wait, math.ceil(deadline - time.monotonic())))
            # Our own `max_idle_time` makes RQ give up after one wait of `wait` seconds (None: no job).
            result = super().dequeue_job_and_maintain_ttl(wait, max_idle_time=wait)
            if result is not None:
                return result
            if deadline is not None and time.monotonic() >= deadline:
                return None
        return None  # RQ's loop then ends: the worker stops between jobs


def run_worker(container: Container, *, burst: bool = False, threads: int = 1) -> None:
    """The `credit-desk worker` main loop.

    `threads > 1`: that many jobs at once in this process, on threads sharing its database pool, Redis and
    NetSuite clients (a sync spends nearly all its time waiting for NetSuite, so one process keeps several
    in flight; the NetSuite limiter still caps the account). `threads == 1`: RQ's classic worker, which
    forks a work horse per job (isolation at the price of a fresh process, pool and TLS session per job).

    The periodic tasks run in threads of this process while RQ forks, so two things must not
    cross a fork: pooled database connections (parent and horse would talk over one socket --
    on PostgreSQL, "prepared statement ... already exists" and worse) and a lock some thread
    happens to hold (SQLAlchemy configures mappers under a global lock on the first query; a
    horse forked meanwhile waits for it forever). So mappers are configured before any thread
    starts, and each horse starts with an empty connection pool of its own.
    """
    jobs.bind_container(container)
    configure_mappers()
    if threads > 1 and not burst:
        run_threaded_worker(container, threads)
        return
    os.register_at_fork(after_in_child=lambda: container.engine.dispose(close=False))
    queues = [jobs.queue(container.redis, name) for name in jobs.QUEUE_NAMES]
    worker = Worker(queues, connection=container.redis)
    log.info("worker.start", queues=list(jobs.QUEUE_NAMES))
    tasks = [] if burst else [t.start() for t in periodic_tasks(container)]
    try:
        worker.work(burst=burst, logging_level=container.settings.log_level)
    finally:
        for task in tasks:
            task.stop()


def run_threaded_worker(container: Container, threads: int) -> None:
    """`threads` RQ workers on threads of this process, and the periodic passes, until SIGTERM or SIGINT.

    A warm stop: each worker finishes its job; an idle one notices within `STOP_CHECK_SECONDS`.
    """
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("worker.stopping", signal=signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    queues = [jobs.queue(container.redis, name) for name in jobs.QUEUE_NAMES]
    workers = [ThreadWorker(queues, connection=container.redis, worker_ttl=30) for _ in range(threads)]
    level = container.settings.log_level
    pool = [
        threading.Thread(target=w.work, kwargs={"logging_level": level}, name=f"job-thread-{i}", daemon=True)
        for i, w in enumerate(workers)
    ]
    log.info("worker.start", queues=list(jobs.QUEUE_NAMES), threads=threads)
    tasks = [t.start() for t in periodic_tasks(container)]
    for thread in pool:
        thread.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for w in workers:
            w._stop_requested = True  # RQ's own flag, checked between jobs and after each dequeue timeout
        for task in tasks:
            task.stop()
        for thread in pool:
            thread.join(60.0)


class EmbeddedWorker:
    """Runs queued jobs in a background thread of this process (embedded defaults: fakeredis)."""

    def __init__(
        self,
        container: Container,
        poll_seconds: float = 0.2,
        *,
        periodic: bool = True,
        name: str = "embedded-worker",
    ) -> None:
        self.container = container
        self.poll_seconds = poll_seconds
        self.periodic = periodic
        self._tasks: list[PeriodicTask] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> EmbeddedWorker:
        self._thread.start()
        self._tasks = [t.start() for t in periodic_tasks(self.container)] if self.periodic else []
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for task in self._tasks:
            task.stop()
        self._thread.join(timeout)

    def __enter__(self) -> EmbeddedWorker:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        jobs.bind_container(self.container, thread_only=True)
        queues = [jobs.queue(self.container.redis, name) for name in jobs.QUEUE_NAMES]
        worker = ThreadWorker(queues, connection=self.container.redis)
        log.info("embedded_worker.start", queues=list(jobs.QUEUE_NAMES))
        while not self._stop.is_set():
            try:
                worker.work(burst=True, logging_level="WARNING")
            except Exception:
                log.exception("embedded_worker.error")
            self._stop.wait(self.poll_seconds)
