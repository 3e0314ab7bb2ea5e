"""Realism knobs: injected faults, traffic statistics and the request log (all thread-safe).

Faults are rules matched in order against each request; a rule fires ``times`` times (``None``:
until removed) and can be limited to a method, a path pattern, every n-th matching request, or to
moments when at least ``min_in_flight`` requests are being served — NetSuite's habit of answering
401 "Invalid login attempt" instead of 429 under load (netsuite.md §3.1).
"""

from __future__ import annotations

import re
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

FaultKind = Literal["status", "delay", "drop"]


@dataclass
class FaultRule:
    """One injected fault.

    * ``status``: answer ``status`` with NetSuite's error body (500 ``UNEXPECTED_ERROR``,
      401 ``INVALID_LOGIN``, 429 ``CONCURRENCY_LIMIT_EXCEEDED``, 503, ...);
    * ``delay``: sleep ``delay_seconds`` and then answer normally (a client timeout shorter than
      the delay sees a read timeout; the work still happens, as on a slow NetSuite);
    * ``drop``: close the connection without any response.
    """

    kind: FaultKind
    status: int = 500
    times: int | None = 1
    method: str | None = None
    path: str | None = None  # regular expression searched in the request path
    delay_seconds: float = 0.0
    min_in_flight: int = 0
    every: int = 1
    hits: int = 0
    _seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("status", "delay", "drop"):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")
        if self.every < 1:
            raise ValueError("every must be >= 1")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError(f"a status fault needs a 4xx/5xx status, got {self.status}")
        if self.path is not None:
            re.compile(self.path)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, path: str, in_flight: int) -> bool:
        if self.exhausted or in_flight < self.min_in_flight:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None


class Faults:
    """The active fault rules of one emulator."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def fail(
        self, status: int = 500, *, times: int | None = 1, method: str | None = None,
        path: str | None = None, every: int = 1,
    ) -> FaultRule:  # fmt: skip
        """Answer the next ``times`` matching requests with ``status``."""
        return self.add(FaultRule("status", status, times, method, path, every=every))

    def delay(
        self, seconds: float, *, times: int | None = 1, method: str | None = None,
        path: str | None = None,
    ) -> FaultRule:  # fmt: skip
        """Hold the next matching requests for ``seconds`` (sleep past the client's timeout)."""
        return self.add(FaultRule("delay", times=times, method=method, path=path,
                                  delay_seconds=seconds))  # fmt: skip

    def drop(self, *, times: int | None = 1, method: str | None = None, path: str | None = None) -> FaultRule:
        """Close the connection of the next matching requests without answering."""
        return self.add(FaultRule("drop", times=times, method=method, path=path))

    def storm_429(self, times: int, *, path: str | None = None) -> FaultRule:
        """A burst of concurrency errors, as when another integration holds every slot."""
        return self.fail(429, times=times, path=path)

    def login_errors_under_load(self, min_in_flight: int, *, times: int | None = None) -> FaultRule:
        """401 INVALID_LOGIN whenever at least ``min_in_flight`` requests are being served."""
        return self.add(FaultRule("status", 401, times, min_in_flight=min_in_flight))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def match(self, method: str, path: str, in_flight: int) -> FaultRule | None:
        """The first rule that fires for this request (counting the hit), or ``None``."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, in_flight):
                    rule._seen += 1
                    if (rule._seen - 1) % rule.every:
                        continue
                    rule.hits += 1
                    return rule
        return None


@dataclass(frozen=True)
class LogEntry:
    """One served request, as the request log keeps it."""

    started: datetime
    method: str
    path: str
    query: str
    status: int  # 0 when the connection was dropped
    in_flight: int  # requests in flight when this one arrived (itself included)
    duration_ms: float
    auth: str  # "off", "bearer", "tba", "none", or "failed: <reason>"
    fault: str | None = None
    body: bytes = b""


@dataclass
class StatsSnapshot:
    requests: int
    in_flight: int
    max_in_flight: int
    by_status: dict[int, int]
    rejected_concurrency: int
    faults_injected: int


@dataclass
class Stats:
    """Counters of the traffic the emulator has seen."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    rejected_concurrency: int = 0
    faults_injected: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enter(self) -> int:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.in_flight

    def leave(self, status: int) -> None:
        with self._lock:
            self.in_flight -= 1
            self.by_status[status] += 1

    def count_rejection(self) -> None:
        with self._lock:
            self.rejected_concurrency += 1

    def count_fault(self) -> None:
        with self._lock:
            self.faults_injected += 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                self.requests,
                self.in_flight,
                self.max_in_flight,
                dict(self.by_status),
                self.rejected_concurrency,
                self.faults_injected,
            )

    def reset(self) -> None:
        """Zero the counters (requests in flight stay counted)."""
        with self._lock:
            self.requests = 0
            self.max_in_flight = self.in_flight
            self.rejected_concurrency = 0
            self.faults_injected = 0
            self.by_status.clear()


class RequestLog:
    """The last ``size`` requests, oldest first."""

    def __init__(self, size: int = 10_000) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=size)
        self._lock = threading.Lock()

    def append(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
