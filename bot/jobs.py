"""Background jobs, run by RQ workers (a `credit-desk worker` process, or a thread inside `serve`).

A job carries only ids; the state it acts on lives in the database (a requested NetSuite write is a durable
row first, and its job merely points at it). Job functions find their dependencies through
`current_container()`, which the worker sets once at start-up.
"""

from __future__ import annotations

import threading

import redis
from rq import Queue

from bot.container import Container

QUEUE_NAMES = ("default", "netsuite")

_local = threading.local()
_process_container: list[Container] = []


def bind_container(container: Container, *, thread_only: bool = False) -> None:
    """Give job functions their dependencies: per process (a worker) or per thread (embedded).

    A process-wide binding also drops the calling thread's own binding: the thread asked for `container`,
    and a container it bound earlier (a closed one, say) must not keep shadowing it."""
    if thread_only:
        _local.container = container
    else:
        _process_container[:] = [container]
        _local.__dict__.pop("container", None)


def current_container() -> Container:
    container = getattr(_local, "container", None)
    if container is not None:
        return container  # type: ignore[no-any-return]
    if not _process_container:
        raise RuntimeError("no container bound: jobs run inside `credit-desk worker` or `serve`")
    return _process_container[0]


def queue(connection: redis.Redis, name: str = "default") -> Queue:
    return Queue(name, connection=connection)


def record_heartbeat(note: str) -> str:
    """A trivial job: proves the path from enqueue to a worker and back to Redis (readiness, tests)."""
    container = current_container()
    container.redis.set("credit-desk:heartbeat", note, ex=3600)
    return note


def announce_application(application_id: int) -> bool:
    """Post a new application in the analysts' channel (once, however often this runs)."""
    notifier = current_container().notifier
    return notifier.announce(application_id) if notifier is not None else False


def tick() -> dict[str, int]:
    """The periodic pass: announce what was not announced, remind managers about waiting approvals."""
    notifier = current_container().notifier
    if notifier is None:
        return {}
    return {
        "announced": notifier.announce_missing(),
        "reminded": notifier.remind_managers(),
        "outbox_pruned": notifier.prune_outbox(),
    }
