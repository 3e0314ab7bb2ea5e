"""Which container job functions see: thread bindings (embedded workers) and the process binding."""

from __future__ import annotations

import threading
from typing import Any, cast

from bot import jobs


def test_process_binding_replaces_the_calling_threads_own_binding() -> None:
    old, new, other = (cast(Any, object()) for _ in range(3))
    jobs.bind_container(old, thread_only=True)
    jobs.bind_container(new)
    assert jobs.current_container() is new

    seen: list[Any] = []

    def embedded() -> None:  # another thread keeps its own binding
        jobs.bind_container(other, thread_only=True)
        jobs.bind_container(new)
        seen.append(jobs.current_container())
        jobs.bind_container(other, thread_only=True)
        seen.append(jobs.current_container())

    t = threading.Thread(target=embedded)
    t.start()
    t.join()
    assert seen == [new, other]
    assert jobs.current_container() is new
