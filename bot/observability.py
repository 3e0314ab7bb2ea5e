"""Structured JSON logs with a request id, and Prometheus metrics that add up across gunicorn workers."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """structlog renders every record (the standard library's too) as one JSON line on stderr."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def multiprocess_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


class Metrics:
    """The product's metrics. One instance per process, built at start-up.

    Under gunicorn with several workers, `PROMETHEUS_MULTIPROC_DIR` is set before anything imports
    prometheus_client (see `bot.serve`); each worker then writes its samples to files there and a scrape
    adds them up through `MultiProcessCollector`.
    """

    def __init__(self, *, collectors: tuple[Collector, ...] = ()) -> None:
        """`collectors` compute gauges when scraped (from the database: the same in every process)."""
        self.collectors = collectors
        self.registry = CollectorRegistry(auto_describe=True)
        for collector in collectors:
            self.registry.register(collector)
        self.http_requests = Counter(
            "credit_desk_http_requests_total",
            "HTTP requests answered, by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "credit_desk_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5),
        )
        self.applications_submitted = Counter(
            "credit_desk_applications_submitted_total",
            "Credit applications received, by source and outcome (created, repeat, invalid, conflict).",
            ["source", "outcome"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text to answer a scrape with: every worker's samples when in multiprocess mode."""
        if multiprocess_dir() is not None:
            registry = CollectorRegistry()
            prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            for collector in self.collectors:
                registry.register(collector)
            return generate_latest(registry)
        return generate_latest(self.registry)


class OutboxCollector(Collector):
    """What the outbox still owes Slack, read when scraped: how many rows, and how long the oldest has
    waited. A count that grows, or an age past a few minutes, means updates are not reaching Slack."""

    def __init__(self, read: Callable[[], tuple[int, float]]) -> None:
        self.read = read  # () -> (pending rows, age of the oldest in seconds)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            pending, oldest = self.read()
        except Exception as exc:  # a scrape must not fail because the database is away
            log.warning("metrics.outbox_unreadable", error=str(exc).splitlines()[0][:200])
            return
        yield GaugeMetricFamily(
            "credit_desk_outbox_pending", "Slack updates owed and not yet delivered (outbox rows).", pending
        )
        yield GaugeMetricFamily(
            "credit_desk_outbox_oldest_pending_seconds",
            "How long the oldest undelivered Slack update has waited (0 when none).",
            oldest,
        )
