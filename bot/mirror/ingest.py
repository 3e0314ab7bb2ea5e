"""Ingest: bring the customer mirror up to date with NetSuite, incrementally and resumably.

One run, in order:

1. **Lists**: terms and sales reps (small; read whole, written only where they changed) and the
   currency codes customers refer to.
2. **Customers** changed since the last run, by SuiteQL keyset paging on
   ``(lastmodifieddate, id)`` (netsuite.md §2.4): the scan starts ``MIRROR_OVERLAP_MINUTES`` before
   the stored watermark, with ``>=``, because NetSuite's clock, time zone and whole-second
   precision make an exact cursor unsafe. A re-read customer whose ``(id, lastmodified)`` the mirror
   already holds is deduplicated: its address book and contacts are not fetched again, and its
   row is written only if a value (a balance) differs. Each page of up to 1000 customers is one
   batch: the customers, the complete address-book and contact sets of the changed ones, and the
   scan's cursor are committed in one transaction -- a run that dies resumes from the last batch.
3. **Deletions** from ``deletedrecord``, keyset-paged the same way with their own watermark.
4. A **full** run (``--full``, or the very first run) re-reads every customer and then removes
   mirrored customers it did not see, which also repairs deletions ``deletedrecord`` no longer lists.

Memory stays bounded by three pages: rows are streamed page by page and written in batches, and
while one batch is written the next page and its address books and contacts are read in a worker
thread (``IngestOptions.read_ahead``), at most one batch ahead -- so the NetSuite wait overlaps the
database writes instead of adding to them. The reader keeps up to ``requests_in_flight`` requests
going at once: the page after the one it maps is asked for as soon as that one is in, and its
address and contact queries all together. A run that fails or is stopped discards what was read
ahead; nothing of it was committed.

Checkpoints (``mirror_checkpoints``): ``customers`` holds the watermark of the last finished run;
``customers:run`` or ``customers:full-run`` exist only while a run is in progress, holding its
cursor and start time -- whichever exists when a run starts is resumed, whatever was asked.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.orm import Session, sessionmaker

from bot.customers.normalize import email_domain, normalize_name
from netsuite import mapping, queries
from netsuite.client import NetSuiteClient
from netsuite.errors import ProtocolError
from netsuite.factory import build_client
from netsuite.mapping import Cursor
from netsuite.suiteql import MAX_PAGE_SIZE, ROW_CAP, SuiteQLPage, format_datetime, run_query
from storage.db import transaction
from storage.repositories import mirror_write as mw
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.container import Container
    from bot.settings import Settings

log = structlog.get_logger(__name__)

DONE_CHECKPOINT = "customers"
RUN_CHECKPOINT = "customers:run"
FULL_RUN_CHECKPOINT = "customers:full-run"
DELETIONS_CHECKPOINT = "customer_deletions"

MAX_PAGES = 200_000
"""Bound on pages per scan (200 million rows at 1000 a page): a loop that never ends is a bug."""

READ_AHEAD_JOIN_SECONDS = 120.0
"""How long a stopped run waits for its reader thread to finish the request it is in."""

MAX_REQUESTS_IN_FLIGHT = 8
REQUEST_THREAD = "mirror-ingest-request"

Stage = Literal["lists", "customers", "deletions", "prune"]
T = TypeVar("T")


class NetSuiteNotConfigured(RuntimeError):
    """Ingest was asked for but no NetSuite connection is configured."""


@dataclass(frozen=True)
class IngestOptions:
    """How a run reads NetSuite. ``timezone`` is the zone SuiteQL renders datetimes in
    (UNCONFIRMED which: the integration user's; ``NETSUITE_SUITEQL_TIMEZONE``)."""

    overlap: timedelta = timedelta(minutes=60)
    page_size: int = MAX_PAGE_SIZE
    child_batch_size: int = 400
    """Customer ids per address/contact query: ~750 address lines, so usually one page each."""
    timezone: tzinfo = UTC
    read_ahead: bool = True
    """Read the next page (and its children) in a worker thread while a batch is written."""
    requests_in_flight: int = 3
    """With ``read_ahead``: NetSuite requests sent at once -- the next page and the address and
    contact queries of the current one -- so NetSuite works on one while the last answer is parsed
    and mapped here. Each still holds a slot of the shared concurrency limiter."""

    def __post_init__(self) -> None:
        if self.overlap < timedelta(0):
            raise ValueError("overlap must not be negative")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        if not 1 <= self.child_batch_size <= queries.MAX_IDS_PER_QUERY:
            raise ValueError(f"child_batch_size must be 1..{queries.MAX_IDS_PER_QUERY}")
        if not 1 <= self.requests_in_flight <= MAX_REQUESTS_IN_FLIGHT:
            raise ValueError(f"requests_in_flight must be 1..{MAX_REQUESTS_IN_FLIGHT}")

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestOptions:
        return cls(
            overlap=timedelta(minutes=settings.mirror_overlap_minutes),
            timezone=ZoneInfo(settings.netsuite_suiteql_timezone),
        )


@dataclass(frozen=True)
class IngestProgress:
    """Reported after each committed batch. ``total`` is an estimate (None: not known yet --
    SuiteQL counts at most 100,000 rows per statement)."""

    stage: Stage
    done: int
    total: int | None
    changed: int


ProgressCallback = Callable[[IngestProgress], None]


@dataclass
class IngestReport:
    """What one run did."""

    mode: Literal["full", "incremental"]
    resumed: bool
    started_at: datetime
    finished_at: datetime | None = None
    seconds: float = 0.0
    customers_read: int = 0
    customers_changed: int = 0
    addresses_written: int = 0
    contacts_written: int = 0
    customers_deleted: int = 0
    customers_pruned: int = 0
    terms: int = 0
    sales_reps: int = 0
    pages: int = 0
    watermark: str | None = None
    write_seconds: float = 0.0
    """Time spent in the customer batches' transactions (mapping and NetSuite reads excluded)."""
    read_wait_seconds: float = 0.0
    """Time the writer waited for the next batch to be read from NetSuite and mapped; with
    read-ahead, the part of the NetSuite time that did not overlap the writes."""

    def summary(self) -> str:
        return (
            f"{self.mode} run{' (resumed)' if self.resumed else ''}: "
            f"{self.customers_read} customers read, {self.customers_changed} new or changed, "
            f"{self.addresses_written} addresses, {self.contacts_written} contacts, "
            f"{self.customers_deleted + self.customers_pruned} removed, {self.terms} terms, "
            f"{self.sales_reps} sales reps in {self.seconds:.1f}s; watermark {self.watermark}"
        )


@dataclass(frozen=True)
class IngestParts:
    """What a run needs, for callers without a container (benchmarks, scripts)."""

    sessions: sessionmaker[Session]
    client: NetSuiteClient
    options: IngestOptions = field(default_factory=IngestOptions)


@dataclass(frozen=True)
class _Plan:
    full: bool
    resumed: bool
    checkpoint: str
    cursor: Cursor
    started_at: datetime
    previous: Cursor | None


@dataclass
class _Batch:
    customers: list[mapping.CustomerValues]
    refresh: list[int]
    addresses: list[mapping.AddressValues]
    contacts: list[mapping.ContactValues]
    cursor: Cursor
    rows_read: int
    total_results: int | None


class MirrorIngest:
    """Runs ingests against one NetSuite client and one database."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: NetSuiteClient,
        options: IngestOptions | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.options = options or IngestOptions()
        self._clock = clock

    def run(self, full: bool = False, progress: ProgressCallback | None = None) -> IngestReport:
        """One run (see the module docstring). Exceptions propagate; what was committed stays,
        and the next run resumes from it."""
        began = time.monotonic()
        notify = progress or _ignore
        currencies = mapping.currency_codes(run_query(self.client, mapping.CURRENCY_CODES))
        plan = self._plan(full)
        report = IngestReport(
            mode="full" if plan.full else "incremental", resumed=plan.resumed, started_at=plan.started_at
        )
        log.info("mirror.ingest.start", mode=report.mode, resumed=plan.resumed, cursor=plan.cursor.time)
        self._lists(report)
        notify(IngestProgress("lists", report.terms + report.sales_reps, None, 0))
        final = self._customers(plan, currencies, report, notify)
        self._deletions(plan, report, notify)
        self._finish(plan, final, report, notify)
        report.finished_at = self._clock()
        report.seconds = time.monotonic() - began
        log.info("mirror.ingest.done", summary=report.summary())
        return report

    # ---- planning and finishing ----------------------------------------------------------------

    def _plan(self, full: bool) -> _Plan:
        """Resume a run in progress, or start a full or incremental one (committed at once).

        An interrupted full run is always resumed (the mirror is incomplete until it ends); an
        interrupted incremental one is resumed unless a full run is asked for, which replaces it.
        """
        now = self._clock()
        with transaction(self.sessions) as session:
            previous = _cursor_of(mw.get_checkpoint(session, DONE_CHECKPOINT))
            running_full = mw.get_checkpoint(session, FULL_RUN_CHECKPOINT)
            running = mw.get_checkpoint(session, RUN_CHECKPOINT)
            if running_full is not None and running_full.run_started_at is not None:
                if running is not None:
                    mw.delete_checkpoint(session, RUN_CHECKPOINT)
                cursor = _cursor_of(running_full) or Cursor.start()
                return _Plan(True, True, FULL_RUN_CHECKPOINT, cursor, running_full.run_started_at, previous)
            if running is not None and running.run_started_at is not None and not full:
                cursor = _cursor_of(running) or Cursor.start()
                return _Plan(False, True, RUN_CHECKPOINT, cursor, running.run_started_at, previous)
            if running is not None:
                mw.delete_checkpoint(session, RUN_CHECKPOINT)
            if full or previous is None:
                plan = _Plan(True, False, FULL_RUN_CHECKPOINT, Cursor.start(), now, previous)
            else:
                start = previous.moved_back(self.options.overlap, self.options.timezone)
                plan = _Plan(False, False, RUN_CHECKPOINT, start, now, previous)
            mw.save_checkpoint(
                session,
                plan.checkpoint,
                watermark=plan.cursor.time,
                last_key=plan.cursor.key,
                run_started_at=now,
            )
            return plan

    def _finish(self, plan: _Plan, final: Cursor, report: IngestReport, notify: ProgressCallback) -> None:
        """Prune after a full run; advance the watermark (never backwards); end the run."""
        watermark = max(final, plan.previous) if plan.previous is not None else final
        with transaction(self.sessions) as session:
            if plan.full:
                report.customers_pruned = mw.prune_customers_not_mirrored_since(session, plan.started_at)
            mw.save_checkpoint(
                session,
                DONE_CHECKPOINT,
                watermark=watermark.time,
                last_key=watermark.key,
                run_started_at=None,
            )
            mw.delete_checkpoint(session, plan.checkpoint)
        report.watermark = watermark.time
        if plan.full:
            notify(IngestProgress("prune", report.customers_pruned, report.customers_pruned, 0))

    # ---- lists ---------------------------------------------------------------------------------

    def _lists(self, report: IngestReport) -> None:
        terms = [mapping.term(row) for row in run_query(self.client, queries.TERMS)]
        reps = [mapping.sales_rep(row) for row in run_query(self.client, queries.SALES_REPS)]
        now = self._clock()
        with transaction(self.sessions) as session:
            mw.replace_terms(session, terms, mirrored_at=now)
            mw.replace_sales_reps(session, reps, mirrored_at=now)
        report.terms, report.sales_reps = len(terms), len(reps)

    # ---- customers -----------------------------------------------------------------------------

    def _customers(
        self,
        plan: _Plan,
        currencies: dict[int, str],
        report: IngestReport,
        notify: ProgressCallback,
    ) -> Cursor:
        """Scan changed customers from the plan's cursor; returns the last cursor reached."""
        cursor = plan.cursor
        total: int | None = None
        batches = self._batches(plan, currencies)
        reader: AbstractContextManager[Iterator[_Batch]] = (
            ReadAhead(batches, name="mirror-ingest-reader")
            if self.options.read_ahead
            else nullcontext(batches)
        )
        with reader as ordered:  # leaving it stops the reader, on errors too
            for batch in _timed(ordered, report):
                if batch.total_results is not None and batch.total_results < ROW_CAP:
                    total = report.customers_read + batch.total_results
                began = time.perf_counter()
                self._write_batch(plan, batch, report)
                report.write_seconds += time.perf_counter() - began
                cursor = batch.cursor
                report.pages += 1
                report.customers_read += batch.rows_read
                report.customers_changed += len(batch.refresh)
                notify(IngestProgress("customers", report.customers_read, total, report.customers_changed))
        return cursor

    def _batches(self, plan: _Plan, currencies: dict[int, str]) -> Iterator[_Batch]:
        """The scan's batches, read from NetSuite and mapped, in keyset order (no writes).

        With read-ahead and more than one request in flight, requests go through a small pool:
        the next page is asked for as soon as the current one is in, and the current page's
        address and contact queries meanwhile. Leaving (done, failed or closed) cancels what has
        not started and waits for what has.
        """
        pool: ThreadPoolExecutor | None = None
        if self.options.read_ahead and self.options.requests_in_flight > 1:
            pool = ThreadPoolExecutor(self.options.requests_in_flight, thread_name_prefix=REQUEST_THREAD)
        try:
            for rows, total_results in self._keyset(
                queries.CUSTOMERS_MODIFIED_SINCE, plan.cursor, mapping.customer_cursor, pool
            ):
                yield self._read_batch(rows, total_results, currencies, full=plan.full, pool=pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _write_batch(self, plan: _Plan, batch: _Batch, report: IngestReport) -> None:
        """One transaction: the batch's customers, their complete child sets, the cursor."""
        now = self._clock()
        with transaction(self.sessions) as session:
            mw.upsert_customers(session, batch.customers, mirrored_at=now, only_if_changed=not plan.full)
            report.addresses_written += mw.replace_addresses(session, batch.refresh, batch.addresses)
            report.contacts_written += mw.replace_contacts(session, batch.refresh, batch.contacts)
            mw.save_checkpoint(
                session,
                plan.checkpoint,
                watermark=batch.cursor.time,
                last_key=batch.cursor.key,
                run_started_at=plan.started_at,
            )

    def _read_batch(
        self,
        rows: Sequence[dict[str, Any]],
        total_results: int | None,
        currencies: dict[int, str],
        *,
        full: bool,
        pool: ThreadPoolExecutor | None = None,
    ) -> _Batch:
        """Map one page; fetch address books and contacts of the customers that changed."""
        latest: dict[int, dict[str, Any]] = {}
        for row in rows:  # keyset order: a customer edited mid-run comes again later, newer
            latest[mapping.customer_id(row)] = row
        values = [self._customer_values(row, currencies) for row in latest.values()]
        if full:
            refresh = [v["internal_id"] for v in values]
        else:
            with transaction(self.sessions, readonly=True) as session:  # beside the writer
                stored = mw.stored_versions(session, latest)
            refresh = [
                v["internal_id"]
                for v in values
                if v["internal_id"] not in stored or stored[v["internal_id"]] != v["last_modified"]
            ]
        addresses: list[mapping.AddressValues] = []
        contacts: list[mapping.ContactValues] = []
        size = self.options.child_batch_size
        chunks = [refresh[start : start + size] for start in range(0, len(refresh), size)]
        if pool is None:
            for ids in chunks:
                addresses += self._addresses(ids)
                contacts += self._contacts(ids)
        else:  # all at once; the results are taken in order
            pending = [
                (pool.submit(self._addresses, ids), pool.submit(self._contacts, ids)) for ids in chunks
            ]
            for found_addresses, found_contacts in pending:
                addresses += found_addresses.result()
                contacts += found_contacts.result()
        return _Batch(
            values,
            refresh,
            _unique(addresses),
            _unique(contacts),
            mapping.customer_cursor(rows[-1]),
            len(rows),
            total_results,
        )

    def _addresses(self, ids: list[int]) -> list[mapping.AddressValues]:
        q = queries.with_id_list(queries.CUSTOMER_ADDRESSES, len(ids))
        return [mapping.address(row) for row in run_query(self.client, q, ids)]

    def _contacts(self, ids: list[int]) -> list[mapping.ContactValues]:
        q = queries.with_id_list(queries.CUSTOMER_CONTACTS, len(ids))
        return [c for row in run_query(self.client, q, ids) if (c := mapping.contact(row))]

    def _customer_values(self, row: dict[str, Any], currencies: dict[int, str]) -> mapping.CustomerValues:
        values = mapping.customer(row, currencies, self.options.timezone)
        name = values["company_name"] or values["entity_id"]
        values["name_normalized"] = normalize_name(name)[:200] or None if name else None
        values["email_domain"] = email_domain(values["email"]) if values["email"] else None
        return values

    # ---- deletions -----------------------------------------------------------------------------

    def _deletions(self, plan: _Plan, report: IngestReport, notify: ProgressCallback) -> None:
        """Remove customers ``deletedrecord`` lists since the deletion watermark (minus overlap).

        With no watermark yet (the first run, a full one) start from the run's own start: what
        was deleted before it is absent from the full read and pruned at its end.
        """
        with self.sessions() as session:
            stored = _cursor_of(mw.get_checkpoint(session, DELETIONS_CHECKPOINT))
        tz = self.options.timezone
        if stored is None:
            start = Cursor(format_datetime(plan.started_at, tz), 0).moved_back(self.options.overlap, tz)
        else:
            start = stored.moved_back(self.options.overlap, tz)
        seen = 0
        for rows, _total in self._keyset(queries.DELETED_CUSTOMERS_SINCE, start, _deleted_cursor):
            ids = [mapping.deleted_customer(row)[0] for row in rows]
            cursor = _deleted_cursor(rows[-1])
            keep = max(cursor, stored) if stored is not None else cursor
            with transaction(self.sessions) as session:
                report.customers_deleted += mw.delete_customers(session, ids)
                mw.save_checkpoint(
                    session, DELETIONS_CHECKPOINT, watermark=keep.time, last_key=keep.key, run_started_at=None
                )
            seen += len(rows)
            notify(IngestProgress("deletions", seen, None, report.customers_deleted))
        if stored is None and seen == 0:
            with transaction(self.sessions) as session:
                mw.save_checkpoint(
                    session, DELETIONS_CHECKPOINT, watermark=start.time, last_key=0, run_started_at=None
                )

    # ---- paging --------------------------------------------------------------------------------

    def _keyset(
        self,
        q: str,
        start: Cursor,
        cursor_of: Callable[[dict[str, Any]], Cursor],
        pool: ThreadPoolExecutor | None = None,
    ) -> Iterator[tuple[list[dict[str, Any]], int | None]]:
        """Pages of a ``(time, key)`` keyset statement from ``start``: each page asks for the rows
        strictly after the previous page's last row, at offset 0 (no 100,000-row cap). With a
        ``pool`` the next page is requested before the current one is handed out."""

        def fetch(cursor: Cursor) -> SuiteQLPage:
            return self.client.suiteql_page(q, cursor.params(), limit=self.options.page_size, offset=0)

        cursor = start
        pending: Future[SuiteQLPage] | None = pool.submit(fetch, cursor) if pool is not None else None
        for _ in range(MAX_PAGES):
            page = pending.result() if pending is not None else fetch(cursor)
            if not page.items:
                return
            last = cursor_of(page.items[-1])
            if last <= cursor:
                raise ProtocolError(200, None, f"keyset cursor did not advance past {cursor}")
            if pool is not None and page.has_more:
                pending = pool.submit(fetch, last)
            yield page.items, page.total_results
            if not page.has_more:
                return
            cursor = last
        raise ProtocolError(None, None, f"keyset scan stopped after {MAX_PAGES} pages")


class ReadAhead(Generic[T]):
    """Iterate ``source`` in a worker thread, at most one item ahead of the consumer.

    The worker produces item n+1 while the consumer works on item n, then waits until the
    consumer takes it: memory holds two items at most, whatever the length of ``source``. An
    exception in ``source`` is raised by the consumer's ``next()``, after the items before it.
    :meth:`close` (also on leaving a ``with`` block) stops the worker and waits for it, so no
    request is still running when the caller goes on (a resumed run, a test's next step).
    """

    _POLL_SECONDS = 0.1

    def __init__(self, source: Iterator[T], *, name: str = "read-ahead") -> None:
        self._source = source
        self._items: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._slot = threading.Semaphore(1)  # items produced but not yet taken
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._slot.acquire(timeout=self._POLL_SECONDS):
                    continue
                if self._stop.is_set():
                    return
                try:
                    item = next(self._source)
                except StopIteration:
                    self._items.put(("done", None))
                    return
                self._items.put(("item", item))
        except BaseException as exc:  # handed to the consumer, which raises it
            self._items.put(("error", exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()  # a generator is closed by the thread that runs it

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        while True:
            try:
                kind, value = self._items.get(timeout=self._POLL_SECONDS)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._items.empty():
                    self._finished = True
                    raise RuntimeError("the read-ahead worker ended without a result") from None
        if kind == "item":
            self._slot.release()  # taken: the worker may read the next one meanwhile
            return value  # type: ignore[no-any-return]
        self._finished = True
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop reading ahead; wait for the worker to finish what it is doing."""
        self._finished = True
        self._stop.set()
        self._thread.join(READ_AHEAD_JOIN_SECONDS)
        if self._thread.is_alive():  # pragma: no cover - a request outlived every client timeout
            log.warning("mirror.ingest.reader_still_running", seconds=READ_AHEAD_JOIN_SECONDS)

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _timed(batches: Iterator[_Batch], report: IngestReport) -> Iterator[_Batch]:
    """``batches``, adding the time spent waiting for each to ``report.read_wait_seconds``."""
    for _ in range(MAX_PAGES):
        began = time.perf_counter()
        batch = next(batches, None)
        report.read_wait_seconds += time.perf_counter() - began
        if batch is None:
            return
        yield batch


def _deleted_cursor(row: dict[str, Any]) -> Cursor:
    return mapping.deleted_customer(row)[1]


def _cursor_of(checkpoint: mw.Checkpoint | None) -> Cursor | None:
    if checkpoint is None or checkpoint.watermark is None:
        return None
    return Cursor(checkpoint.watermark, checkpoint.last_key or 0)


def _unique(rows: list[Any]) -> list[Any]:
    """Drop repeated (customer, address/contact) pairs, keeping the first (a unique key)."""
    seen: set[tuple[int, int]] = set()
    result = []
    for row in rows:
        key = (row["customer_id"], row.get("address_id", row.get("contact_id")))
        if key not in seen:
            seen.add(key)
            result.append(row)
    return result


def _ignore(_: IngestProgress) -> None:
    return None


# ---- entry points ------------------------------------------------------------------------------


def client_of(container: Container) -> NetSuiteClient | None:
    """The container's NetSuite client, if it has one (``container.netsuite`` or ``extras``)."""
    found = getattr(container, "netsuite", None) or container.extras.get("netsuite")
    return found if isinstance(found, NetSuiteClient) else None


def run_ingest(
    source: Container | IngestParts, full: bool = False, progress: ProgressCallback | None = None
) -> IngestReport:
    """Run one ingest with a container's dependencies (the worker job, the CLI) or explicit parts.

    Without a client on the container one is built from its settings for this run and closed
    after. Raises :class:`NetSuiteNotConfigured` when NetSuite is not configured.
    """
    if isinstance(source, IngestParts):
        return MirrorIngest(source.sessions, source.client, source.options).run(full, progress)
    options = IngestOptions.from_settings(source.settings)
    client = client_of(source)
    if client is not None:
        return MirrorIngest(source.sessions, client, options).run(full, progress)
    built = build_client(source.settings, source.redis)
    if built is None:
        raise NetSuiteNotConfigured("NetSuite is not configured: set NETSUITE_ACCOUNT_ID and credentials")
    try:
        return MirrorIngest(source.sessions, built, options).run(full, progress)
    finally:
        built.close()
