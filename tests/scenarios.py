"""The reliability scenarios of issue #7, shared by ``tests/test_reliability.py`` (short) and
``benchmarks/reliability.py`` (long): each one sets up real processes, disturbs them, and returns
a :class:`Outcome` with what was requested, completed, lost and duplicated.

Scenarios (each function's docstring says exactly what it does):

* :func:`web_kill` -- gunicorn workers SIGKILLed while syncs are requested through Slack;
* :func:`pg_restart` -- a private PostgreSQL cluster restarted and crashed during syncs;
* :func:`ns_faults` -- NetSuite 429 storms, 500s, drops, timeouts and slow answers;
* :func:`slack_429` -- the Slack Web API answering 429 for a while;
* :func:`load` -- minutes of mixed signed Slack traffic against gunicorn.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.container import Container, build_container
from bot.mirror.ingest import IngestParts, run_ingest
from bot.sandbox.signing import slash_command_body
from bot.sandbox.slack_api import MockSlackServer, SlackUser
from netsuite.emulator import EmulatorServer
from netsuite.emulator.faults import FaultRule
from storage.db import transaction
from storage.models import AuditEvent, Decision, OutboxMessage, SyncRequest, SyncStatus
from tests.conftest import TEST_FEDERAL_ID_KEY, make_settings, valid_application
from tests.harness import (
    ANALYST,
    ANALYST_ID,
    INTAKE_TOKEN,
    LEASE_SECONDS,
    PostgresCluster,
    RedisServer,
    Requested,
    SlackAttempts,
    SlackSyncRequester,
    WebServer,
    WorkerPool,
    all_final,
    announcement_of,
    approve_body,
    connections_to,
    details_body,
    emulator_settings,
    existing_customers,
    plan_applications,
    redis_server_binary,
    reject_body,
    request_syncs,
    requested_in_database,
    signed_headers,
    slack_env,
    slack_tally,
    statuses,
    tally,
    wait_until,
    worker_env,
)

FINAL = {s.value for s in SyncStatus} - {SyncStatus.PENDING.value, SyncStatus.RUNNING.value}
OUTBOX_LEASE_SECONDS = 60
"""The web processes' hold on a decision's Slack updates (the shortest the setting allows): a killed
worker's updates are delivered by the worker's repair pass this long after the decision."""


@dataclass
class Outcome:
    """One scenario's result: the four figures, and what else was measured (``notes``)."""

    scenario: str
    requested: int = 0
    completed: int = 0
    lost: int = 0
    duplicated: int = 0
    unit: str = "syncs"
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.completed == self.requested

    def line(self) -> str:
        notes = ", ".join(f"{k} {v}" for k, v in self.notes.items())
        return (
            f"{self.scenario}: {self.unit} requested={self.requested} completed={self.completed} "
            f"lost={self.lost} duplicated={self.duplicated} ({self.seconds:.0f} s; {notes})"
        )


# ---- the stack ------------------------------------------------------------------------------------


@dataclass
class Stack:
    """Everything one scenario runs against; built by :func:`stack`."""

    workdir: Path
    database_url: str
    redis: RedisServer
    ns: EmulatorServer
    slack: MockSlackServer
    container: Container
    workers: WorkerPool
    env: dict[str, str]
    web: WebServer | None = None

    def settle(self, requested: list[Requested], seconds: float) -> bool:
        """Wait until no sync is pending or running (restarting workers that quit); False if
        some still are after ``seconds``."""

        def settled() -> bool:
            self.workers.supervise()
            try:
                return all_final(self.container, requested)
            except Exception:  # the database is away for a moment
                return False

        try:
            wait_until(settled, seconds, "every sync to finish", step=0.2)
        except AssertionError:
            return False
        return True


@contextlib.contextmanager
def stack(
    database_url: str,
    workdir: Path,
    *,
    customers: int = 60,
    latency_ms: float = 10.0,
    worker_processes: int = 1,
    worker_threads: int = 4,
    web_workers: int = 0,
    web_threads: int = 8,
    extra_env: dict[str, str] | None = None,
    seed: int = 31,
    concurrency_cap: int | None = None,
) -> Iterator[Stack]:
    """A private ``redis-server``, a NetSuite emulator (``customers`` mirrored, then
    ``latency_ms`` per request), a mock Slack Web API, ``worker_processes`` ``credit-desk
    worker`` processes and, with ``web_workers``, ``credit-desk serve``; all on the database at
    ``database_url`` (migrated, empty)."""
    binary = redis_server_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    users = [SlackUser(ANALYST_ID, "Ana Analyst", "ana@credit.example")]
    with (
        RedisServer(binary, workdir / "redis") as redis_server,
        EmulatorServer(seed=seed, customers=customers, concurrency_cap=concurrency_cap) as ns,
        MockSlackServer(users=users) as slack,
    ):
        container = build_container(
            make_settings(
                database_url=database_url,
                redis_url=redis_server.url,
                federal_id_key=TEST_FEDERAL_ID_KEY,
                **emulator_settings(ns.url),
                default_terms="Net 30,Net 45",
                sync_lease_seconds=LEASE_SECONDS,
                log_level="WARNING",
            ),
            migrate_now=False,
        )
        settings = {
            **slack_env(slack.url),
            "DEFAULT_TERMS": "Net 30,Net 45",
            "MIRROR_INTERVAL_MINUTES": "0",
            "LOG_LEVEL": "WARNING",
            "OUTBOX_LEASE_SECONDS": str(OUTBOX_LEASE_SECONDS),
            "OUTBOX_REPAIR_SECONDS": "1",
            **(extra_env or {}),
        }
        env = worker_env(database_url, redis_server.url, ns.url, **settings)
        pool = WorkerPool(env, workdir)
        s = Stack(workdir, database_url, redis_server, ns, slack, container, pool, env)
        try:
            assert container.netsuite is not None
            run_ingest(IngestParts(container.sessions, container.netsuite), full=True)  # the mirror
            ns.app.config.latency_ms = latency_ms
            for _ in range(worker_processes):
                pool.start(worker_threads)
            if web_workers:
                s.web = WebServer(env, workdir, workers=web_workers, threads=web_threads).start()
            yield s
        finally:
            if s.web is not None:
                s.web.stop()
            for w in pool.workers:
                if w.alive():
                    w.kill()
            container.close()


def customers_for(existing: int) -> int:
    """Customers the emulator needs so that the mirror has ``existing`` active ones (a few are
    generated inactive)."""
    return max(60, existing * 6 // 5 + 20)


def split(total: int) -> tuple[int, int]:
    """``total`` syncs as (new customers, existing customers), half each."""
    new = (total + 1) // 2
    return new, total - new


def sync_outcome(
    name: str, s: Stack, attempts: list[SlackAttempts], started: float, settled: bool
) -> tuple[Outcome, list[Requested]]:
    """Count what became of syncs requested through Slack, per application: *completed* if one of
    its sync rows completed (:func:`tally`); *lost* if it has rows and none completed, or if its
    request was acknowledged and it has no row; *duplicated*: rows beyond one per application,
    plus every customer, contact or address line NetSuite holds twice. An application whose
    request was never acknowledged and has no row is neither (``never acknowledged``)."""
    requested, extra_rows, _ = requested_in_database(s.container, attempts)
    t = tally(s.container, s.ns, requested)
    rows: dict[int, list[int]] = defaultdict(list)
    for r in requested:
        rows[r.application_id].append(r.sync_id)
    out = Outcome(name, requested=len(attempts), seconds=time.monotonic() - started)
    never = 0
    for a in attempts:
        mine = rows.get(a.planned.application_id, [])
        if any(i not in t.lost_ids for i in mine):
            out.completed += 1
        elif mine or a.acknowledged:
            out.lost += 1
            if not mine:
                out.problems.append(f"app {a.planned.application_id}: acknowledged, but no sync row")
        else:
            never += 1
            out.problems.append(f"app {a.planned.application_id}: never acknowledged ({a.error})")
    out.duplicated = t.duplicated + extra_rows
    out.problems.extend(t.problems)
    out.notes.update(
        acknowledged=sum(a.acknowledged for a in attempts),
        resent=sum(a.tries for a in attempts) - 2 * len(attempts),
        unanswered=sum(a.unanswered for a in attempts),
        http_5xx=sum(a.server_errors for a in attempts),
    )
    if never:
        out.notes["never acknowledged"] = never
    if not settled:
        out.problems.append(f"not settled: {statuses(s.container, [r.sync_id for r in requested])}")
    return out, requested


def drive(
    requester: SlackSyncRequester, planned: list[Any], clients: int, think_seconds: float = 0.0
) -> list[SlackAttempts]:
    """``clients`` analysts request the syncs of ``planned`` in parallel, each pausing
    ``think_seconds`` (jittered) before the next one, as people do."""

    def one(p: Any) -> SlackAttempts:
        if think_seconds:
            time.sleep(random.uniform(0.5, 1.5) * think_seconds)
        return requester.request(p)

    with ThreadPoolExecutor(clients, thread_name_prefix="slack-client") as pool:
        return list(pool.map(one, planned))


# ---- 1. web processes SIGKILLed ---------------------------------------------------------------------


def web_kill(
    database_url: str,
    workdir: Path,
    *,
    syncs: int = 12,
    decisions: int = 0,
    clients: int = 4,
    web_workers: int = 3,
    think_seconds: float = 0.5,
    kill_every: float = 0.5,
    max_kills: int = 3,
    latency_ms: float = 10.0,
    settle_seconds: float = 60.0,
) -> list[Outcome]:
    """gunicorn (``web_workers`` processes) receives signed link and pick submissions for
    ``syncs`` approved applications from ``clients`` concurrent "analysts" (each pausing about
    ``think_seconds`` between two applications), while one of its workers is SIGKILLed every
    ``kill_every`` seconds (at most ``max_kills`` times; gunicorn starts a new one). A
    submission that got no answer (or a 5xx) is sent again, unchanged, as Slack re-delivers.
    Every sync whose pick submission was acknowledged must complete exactly once; a sync row
    beyond one per application, or a customer, contact or address line twice, is a duplicate.

    With ``decisions``, that many applications also arrive through the intake API first (and
    are announced by the worker), and are approved through signed submissions during the kills
    (sent again when unanswered); a second row counts the Slack messages those decisions owe (an
    update of the announcement and a line in its thread) -- posted after the answer, on the web
    process's outbox."""
    started = time.monotonic()
    new, existing_count = split(syncs)
    with stack(
        database_url, workdir, customers=customers_for(existing_count), latency_ms=latency_ms,
        web_workers=web_workers,
    ) as s:  # fmt: skip
        assert s.web is not None
        base = s.web.base
        planned = plan_applications(
            s.container, "webkill", new, existing_customers(s.container, existing_count)
        )
        to_decide = [intake(base, f"webkill-decide-{n:04d}") for n in range(decisions)]
        if to_decide:
            wait_until(lambda: set(to_decide) <= announced_ids(s.slack), 120, "announcements", 0.2)
        requester = SlackSyncRequester(base, max_tries=10, retry_delay=0.3)
        result: list[SlackAttempts] = []
        decided: list[bool] = []
        done = threading.Event()

        def run() -> None:
            try:
                with ThreadPoolExecutor(2) as pool:
                    syncing = pool.submit(drive, requester, planned, clients, think_seconds)
                    deciding = pool.submit(decide_all, base, to_decide, think_seconds)
                    result.extend(syncing.result())
                    decided.extend(deciding.result())
            finally:
                done.set()

        thread = threading.Thread(target=run, name="slack-analysts", daemon=True)
        thread.start()
        kills = 0
        while not done.wait(kill_every) and kills < max_kills:
            if len(s.web.worker_pids()) >= 2:  # keep one serving; the others die and come back
                s.web.kill_worker(random.choice(s.web.worker_pids()))
                kills += 1
        thread.join()
        requested, _, _ = requested_in_database(s.container, result)
        settled = s.settle(requested, settle_seconds)
        out, _ = sync_outcome("web-kill", s, result, started, settled)
        s.web.wait_ready(60)
        out.notes = {"web workers killed": kills, **out.notes}
        out.notes["web workers alive at the end"] = len(s.web.worker_pids())
        outcomes = [out]
        if to_decide:
            recorded = _decisions(s.container, to_decide)
            status_of = {"approve": "approved", "reject": "rejected"}
            wanted = {a: status_of[k[0]] for a, k in recorded.items() if k}
            # Survivors post right after each answer; a killed worker's updates wait in the outbox until
            # its lease runs out and the worker's repair pass delivers them.
            owed = len(to_decide) + 2 * len(wanted)
            with contextlib.suppress(AssertionError):
                wait_until(
                    lambda: slack_tally(s.slack, to_decide, wanted).delivered >= owed,
                    OUTBOX_LEASE_SECONDS + 60,
                    "the decisions' Slack messages",
                    0.5,
                )
            time.sleep(2.0)  # a doubled message would arrive by now
            t = slack_tally(s.slack, to_decide, wanted)
            slack_out = Outcome(
                "web-kill: Slack messages",
                unit="Slack messages",
                requested=t.requested,
                completed=t.delivered,
                lost=t.lost,
                duplicated=t.duplicated + sum(max(0, len(k) - 1) for k in recorded.values()),
                seconds=time.monotonic() - started,
                problems=t.problems,
            )
            slack_out.notes = {
                "decisions acknowledged": f"{sum(decided)} of {len(to_decide)}",
                "decisions recorded": len(wanted),
                **_outbox_notes(s.container, to_decide),
            }
            outcomes.append(slack_out)
        return outcomes


def decide_all(base: str, app_ids: list[int], think_seconds: float, max_tries: int = 10) -> list[bool]:
    """Approve each application through a signed submission, one after another, sending it again
    when it got no answer or a 5xx; True for each that was answered (a repeat that finds the
    application decided is answered "already decided")."""
    answered: list[bool] = []
    with httpx.Client(base_url=base, timeout=10) as c:
        for app_id in app_ids:
            time.sleep(random.uniform(0.5, 1.5) * think_seconds)
            body = approve_body(app_id)
            ok = False
            for attempt in range(max_tries):
                if attempt:
                    time.sleep(0.3)
                try:
                    r = c.post("/slack/events", content=body, headers=signed_headers(body))
                except httpx.TransportError:
                    continue
                if r.status_code < 500:
                    ok = r.status_code == 200
                    break
            answered.append(ok)
    return answered


# ---- 2. PostgreSQL restarted and crashed ------------------------------------------------------------


def pg_restart(
    cluster: PostgresCluster,
    workdir: Path,
    *,
    syncs: int = 12,
    clients: int = 3,
    web_workers: int = 2,
    think_seconds: float = 0.5,
    latency_ms: float = 20.0,
    outages: tuple[str, ...] = ("restart", "crash"),
    hold_seconds: float = 1.0,
    down_seconds: float = 2.0,
    lease_seconds: float = 120.0,
    settle_seconds: float = 60.0,
) -> Outcome:
    """A private PostgreSQL cluster (never the shared server) holds the database of gunicorn
    (``web_workers`` processes) and of a ``credit-desk worker``. ``syncs`` syncs are requested
    through signed Slack submissions by ``clients`` analysts (pausing about ``think_seconds``
    between applications) while the cluster goes through ``outages`` in turn. Before each, the
    emulator holds one customer request for ``hold_seconds``, and the outage starts while it is
    on the wire, so that sync finishes (and must record its outcome) with the server gone or just
    back: ``restart`` is ``pg_ctl restart -m fast`` (every session is cut; pooled connections
    are dead); ``crash`` is ``pg_ctl stop -m immediate`` (no checkpoint), ``down_seconds``
    without a server, then a start with crash recovery. Submissions answered 5xx or not at all
    are sent again (as Slack does). The workers run with ``SYNC_LEASE_SECONDS=lease_seconds``,
    longer than the run may wait (``settle_seconds``), so a sync left ``running`` by a failed
    database write counts as lost instead of being rescued by the lease. The web and the
    workers must come back by themselves and every sync complete once; ``/readyz`` must answer
    200 afterwards."""
    started = time.monotonic()
    database_url = cluster.create_database()
    new, existing_count = split(syncs)
    extra = {"SYNC_LEASE_SECONDS": str(lease_seconds)}
    with stack(
        database_url, workdir, customers=customers_for(existing_count), latency_ms=latency_ms,
        web_workers=web_workers, extra_env=extra,
    ) as s:  # fmt: skip
        assert s.web is not None
        planned = plan_applications(
            s.container, "pgrestart", new, existing_customers(s.container, existing_count)
        )
        requester = SlackSyncRequester(s.web.base, max_tries=60, retry_delay=0.5)
        result: list[SlackAttempts] = []
        done = threading.Event()

        def run() -> None:
            try:
                result.extend(drive(requester, planned, clients, think_seconds))
            finally:
                done.set()

        thread = threading.Thread(target=run, name="slack-analysts", daemon=True)
        thread.start()
        performed: list[str] = []
        held_writes = 0
        for outage in outages:
            held = s.ns.faults.delay(hold_seconds, times=1, path=r"/customer/")
            with contextlib.suppress(AssertionError):
                wait_until(lambda rule=held: rule.hits >= 1, 30, "a customer request on the wire", 0.02)
            held_writes += held.hits
            if outage == "restart":
                cluster.restart()
            elif outage == "crash":
                cluster.crash(down_seconds)
            else:
                raise ValueError(f"unknown outage {outage!r}")
            performed.append(outage)
        thread.join()
        requested, _, _ = requested_in_database(s.container, result)
        settled = s.settle(requested, settle_seconds)
        out, _ = sync_outcome("pg-restart", s, result, started, settled)
        ready = httpx.get(f"{s.web.base}/readyz", timeout=10)
        out.notes = {"outages": "+".join(performed), "syncs caught mid-request": held_writes, **out.notes}
        out.notes["readyz after"] = ready.status_code
        if ready.status_code != 200:
            out.problems.append(f"/readyz answered {ready.status_code}: {ready.text[:200]}")
        out.notes.update(_retry_notes(s.container, requested))
        return out


# ---- 3. NetSuite fault storms ------------------------------------------------------------------------


def ns_faults(
    database_url: str,
    workdir: Path,
    *,
    syncs: int = 16,
    storm_429: int = 40,
    errors_500: int = 12,
    drops: int = 4,
    timeouts: int = 4,
    slow: int = 10,
    doomed: int = 1,
    worker_processes: int = 2,
    latency_ms: float = 10.0,
    settle_seconds: float = 120.0,
) -> Outcome:
    """A batch of ``syncs`` syncs (requested as the Slack handlers request them) through
    ``worker_processes`` workers, while the NetSuite emulator injects, in this order of rules:
    a storm of ``storm_429`` 429 ``CONCURRENCY_LIMIT_EXCEEDED`` answers (the first requests),
    ``errors_500`` 500 ``UNEXPECTED_ERROR`` answers (every 5th request), ``drops`` dropped
    connections (every 7th), ``timeouts`` writes held for 2.5 s against a 1 s read timeout
    (NetSuite applies them after the client gave up) and ``slow`` answers held for 0.6 s; and
    for ``doomed`` existing customers every PATCH answers 503 as long as the faults last. The
    client retries each request at most 3 times (``NETSUITE_MAX_ATTEMPTS=3``) and a sync 3 times
    (``SYNC_MAX_ATTEMPTS=3``), so some syncs end ``failed``: those are retried as a person does
    (Retry in Slack, :meth:`SyncService.retry`), after the faults are cleared. Everything must
    then be written exactly once."""
    started = time.monotonic()
    new, existing_count = split(syncs)
    extra = {
        "NETSUITE_MAX_ATTEMPTS": "3",
        "NETSUITE_READ_TIMEOUT_SECONDS": "1",
        "SYNC_MAX_ATTEMPTS": "3",
        "SYNC_RETRY_BASE_SECONDS": "0.5",
        "SYNC_RETRY_MAX_SECONDS": "2",
        "SYNC_LEASE_SECONDS": "30",  # above the longest sync with every retry (3 x 3 attempts)
    }
    with stack(
        database_url, workdir, customers=customers_for(existing_count), latency_ms=latency_ms,
        worker_processes=0, extra_env=extra,
    ) as s:  # fmt: skip
        faults = s.ns.faults
        customers = existing_customers(s.container, existing_count)
        rules = {
            "503 on every PATCH of a doomed customer": faults.add(
                FaultRule(
                    "status", 503, None, "PATCH", "|".join(f"/customer/{c}$" for c in customers[:doomed])
                )
            )
            if doomed
            else faults.fail(503, times=0),
            "429 storm": faults.storm_429(storm_429),
            "500": faults.fail(500, times=errors_500, every=5),
            "dropped": faults.add(FaultRule("drop", times=drops, every=7)),
            # held past the 1 s read timeout; NetSuite applies them afterwards
            "timeout, PATCH held 2.5 s": faults.delay(2.5, times=(timeouts + 1) // 2, method="PATCH"),
            "timeout, PUT held 2.5 s": faults.delay(2.5, times=timeouts // 2, method="PUT"),
            "slow answer, 0.6 s": faults.delay(0.6, times=slow),
        }
        s.ns.stats.reset()
        requested = request_syncs(
            s.container, "nsfaults", new, existing_customers(s.container, existing_count)
        )
        for _ in range(worker_processes):
            s.workers.start(4)
        settled = s.settle(requested, settle_seconds)
        first = statuses(s.container, [r.sync_id for r in requested])
        failed = _failed(s.container, requested)
        faults.clear()
        assert s.container.sync is not None
        for sync_id in failed:
            s.container.sync.retry(sync_id, ANALYST)
        settled = s.settle(requested, settle_seconds) and settled
        t = tally(s.container, s.ns, requested)
        stats = s.ns.stats.snapshot()
        out = Outcome(
            "ns-faults",
            requested=t.requested,
            completed=t.completed,
            lost=t.lost,
            duplicated=t.duplicated,
            seconds=time.monotonic() - started,
            problems=list(t.problems),
        )
        injected = {name: rule.hits for name, rule in rules.items()}
        out.notes = {
            "faults injected": sum(injected.values()),
            **{f"  {k}": v for k, v in injected.items()},
            "NetSuite requests": stats.requests,
            "first pass": dict(first),
            "retried by a person": len(failed),
        }
        if not settled:
            out.problems.append(f"not settled: {statuses(s.container, [r.sync_id for r in requested])}")
        return out


def _failed(container: Container, requested: list[Requested]) -> list[int]:
    with transaction(container.sessions, readonly=True) as session:
        return list(
            session.scalars(
                select(SyncRequest.id).where(
                    SyncRequest.id.in_([r.sync_id for r in requested]),
                    SyncRequest.status == SyncStatus.FAILED.value,
                )
            )
        )


# ---- 4. Slack answers 429 for a while ----------------------------------------------------------------

RATE_LIMITED = ("chat.postMessage", "chat.update", "views.open")


def intake(base: str, reference: str, client: httpx.Client | None = None) -> int:
    """Send one application through the intake API; returns its id."""
    body = valid_application(reference, business_name=f"Reliable {reference} Supply LLC", dba=None)
    headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    c = client or httpx.Client(base_url=base, timeout=30)
    try:
        r = c.post(f"{base}/api/applications", json=body, headers=headers)
    finally:
        if client is None:
            c.close()
    if r.status_code not in (200, 201):
        raise AssertionError(f"intake answered {r.status_code}: {r.text[:300]}")
    return int(r.json()["id"])


def announced_ids(slack: MockSlackServer) -> set[int]:
    """Applications whose announcement Slack accepted."""
    return {a for c in slack.calls("chat.postMessage") if c.ok and (a := announcement_of(c)) is not None}


def slack_429(
    database_url: str,
    workdir: Path,
    *,
    before: int = 8,
    during: int = 6,
    decisions: int = 8,
    details: int = 6,
    storm_seconds: float = 6.0,
    retry_after: int = 1,
    clients: int = 4,
    web_workers: int = 2,
    deliver_seconds: float = 90.0,
) -> Outcome:
    """gunicorn (``web_workers``) and a ``credit-desk worker`` against a mock Slack Web API.
    ``before`` applications arrive through the intake API and are announced. Then Slack answers
    every ``chat.postMessage``, ``chat.update`` and ``views.open`` with HTTP 429 and
    ``Retry-After: retry_after`` for ``storm_seconds``, while ``during`` more applications arrive
    (their announcements are owed), ``decisions`` of the first ones are approved or rejected
    through signed ``/slack/events`` submissions (each owes an update of the application's
    message and an audit line in its thread) and Details is clicked ``details`` times (a modal:
    its trigger lives 3 s, so a refused ``views.open`` is not owed later; counted apart). Every
    owed message must reach Slack once the storm is over, exactly once."""
    started = time.monotonic()
    if decisions > before:
        raise ValueError("decisions are made on the applications announced before the storm")
    with stack(database_url, workdir, web_workers=web_workers, worker_processes=1) as s:
        assert s.web is not None
        base = s.web.base
        first = [intake(base, f"rl-{n:04d}") for n in range(before)]
        wait_until(lambda: set(first) <= announced_ids(s.slack), 60, "the first announcements", 0.2)
        s.slack.rate_limit(RATE_LIMITED, storm_seconds, retry_after=retry_after)
        outcomes: dict[int, str] = {}
        answers: Counter[str] = Counter()
        refused: list[str] = []
        lock = threading.Lock()

        def act(n: int) -> int | None:
            with httpx.Client(base_url=base, timeout=30) as c:
                if n < during:
                    return intake(base, f"rl-late-{n:04d}", c)
                n -= during
                if n < decisions:
                    app_id = first[n]
                    body = approve_body(app_id) if n % 2 == 0 else reject_body(app_id)
                    kind = "decision submission"
                    with lock:
                        outcomes[app_id] = "approved" if n % 2 == 0 else "rejected"
                else:
                    body = details_body(first[(n - decisions) % len(first)])
                    kind = "Details click"
                clock = time.monotonic()
                r = c.post("/slack/events", content=body, headers=signed_headers(body))
                took = time.monotonic() - clock
                with lock:
                    answers[f"{kind} {r.status_code}"] += 1
                    if r.status_code != 200:
                        refused.append(f"{kind} answered {r.status_code} after {took:.1f} s")
                return None

        with ThreadPoolExecutor(clients) as pool:
            late = [i for i in pool.map(act, range(during + decisions + details)) if i is not None]
        owed_ids = first + late

        def delivered() -> bool:
            return slack_tally(s.slack, owed_ids, outcomes).delivered >= len(owed_ids) + 2 * len(outcomes)

        with contextlib.suppress(AssertionError):
            wait_until(delivered, deliver_seconds, "every owed message", 0.25)
        time.sleep(retry_after + 2.0)  # a doubled message would arrive by now
        t = slack_tally(s.slack, owed_ids, outcomes)
        opened = sum(1 for c in s.slack.calls("views.open") if c.ok)
        out = Outcome(
            "slack-429",
            requested=t.requested,
            completed=t.delivered,
            lost=t.lost,
            duplicated=t.duplicated,
            unit="Slack messages",
            seconds=time.monotonic() - started,
            problems=refused + t.problems,
        )
        out.notes = {
            "429s served": t.refused_429,
            "storm": f"{storm_seconds:g} s, Retry-After {retry_after} s",
            "/slack/events answers": dict(sorted(answers.items())),
            "clicks not answered 200": len(refused),
            "Details modals opened": f"{opened} of {details} (a refused trigger is not owed)",
        }
        return out


# ---- 6. job workers SIGKILLed, Redis restarted ---------------------------------------------------------


def _syncs_outcome(name: str, s: Stack, requested: list[Requested], started: float, settled: bool) -> Outcome:
    t = tally(s.container, s.ns, requested)
    out = Outcome(
        name,
        requested=t.requested,
        completed=t.completed,
        lost=t.lost,
        duplicated=t.duplicated,
        seconds=time.monotonic() - started,
        problems=list(t.problems),
    )
    if not settled:
        out.problems.append(f"not settled: {statuses(s.container, [r.sync_id for r in requested])}")
    out.notes.update(_retry_notes(s.container, requested))
    return out


def _retry_notes(container: Container, requested: list[Requested]) -> dict[str, Any]:
    """How many syncs needed more than one attempt, the retries by kind, and the commonest last errors."""
    ids = [r.sync_id for r in requested]
    with transaction(container.sessions, readonly=True) as session:
        rows = session.execute(
            select(SyncRequest.attempts, SyncRequest.last_error).where(SyncRequest.id.in_(ids))
        ).all()
        actions = Counter(
            session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.entity_type == "sync",
                    AuditEvent.entity_id.in_([str(i) for i in ids]),
                    AuditEvent.action.in_(["sync.reclaimed", "sync.retry_scheduled", "sync.failed"]),
                )
            ).all()
        )
    notes: dict[str, Any] = {
        "syncs needing >1 attempt": sum(1 for attempts, _ in rows if attempts > 1),
        "retries": dict(actions) or "none",
    }
    errors = Counter(error[:60] for _, error in rows if error)
    if errors:
        notes["last errors"] = dict(errors.most_common(3))
    return notes


def worker_kill(
    database_url: str,
    workdir: Path,
    *,
    syncs: int = 40,
    latency_ms: float = 150.0,
    kill_every: float = 1.5,
    max_kills: int = 6,
    lease_seconds: float = 100.0,
    concurrency_limit: int = 20,
    settle_seconds: float = 300.0,
) -> Outcome:
    """``syncs`` syncs (half new customers, half existing) are requested and run by two ``credit-desk
    worker`` processes -- one with 4 job threads, one forking a work horse per job -- against a NetSuite
    emulator answering in ``latency_ms``, while a worker is SIGKILLed (with its horse) every
    ``kill_every`` seconds, ``max_kills`` times, each time mid-sync with NetSuite requests on the wire, and
    a new one of the same kind is started, as a supervisor does. A killed sync stays ``running`` until its
    lease (``SYNC_LEASE_SECONDS=lease_seconds``) runs out, then is tried again and must find NetSuite's
    state first. Every sync must complete once: no second customer, contact or address line.

    A killed worker also keeps the NetSuite slots it held (``NETSUITE_CONCURRENCY_LIMIT``, a lease
    semaphore in Redis) until their lease (90 s) runs out; the sync lease must be longer than that, or
    jobs waiting for a slot run into their job timeout (the sync lease) and use up their attempts. So the
    lease here is production-like, and the account gets ``concurrency_limit`` slots so that a run of
    kills does not stall it for the slots' 90 s."""
    started = time.monotonic()
    new, existing_count = split(syncs)
    with stack(
        database_url, workdir, customers=customers_for(existing_count), latency_ms=latency_ms,
        worker_processes=0, concurrency_cap=concurrency_limit,
        extra_env={
            "SYNC_LEASE_SECONDS": str(lease_seconds),
            "NETSUITE_CONCURRENCY_LIMIT": str(concurrency_limit),
        },
    ) as s:  # fmt: skip
        requested = request_syncs(
            s.container, "workerkill", new, existing_customers(s.container, existing_count)
        )
        kinds = {id(s.workers.start(4)): 4, id(s.workers.start(1)): 1}
        kills = horses = in_flight = 0
        while kills < max_kills and not all_final(s.container, requested):
            time.sleep(random.uniform(0.5, 1.5) * kill_every)
            alive = s.workers.alive()
            if not alive:
                break
            victim = random.choice(alive)
            in_flight += statuses(s.container, [r.sync_id for r in requested])[SyncStatus.RUNNING.value]
            horses += len(victim.kill())
            kills += 1
            replacement = s.workers.start(kinds.get(id(victim), 4))
            kinds[id(replacement)] = kinds.get(id(victim), 4)
        settled = s.settle(requested, settle_seconds)
        out = _syncs_outcome("worker-kill", s, requested, started, settled)
        out.notes = {
            "workers killed": kills,
            "work horses killed with them": horses,
            "syncs running at the kills (sum)": in_flight,
            **out.notes,
        }
        return out


def redis_restart(
    database_url: str,
    workdir: Path,
    *,
    syncs: int = 40,
    latency_ms: float = 100.0,
    restarts: int = 3,
    every: float = 2.0,
    settle_seconds: float = 120.0,
) -> Outcome:
    """``syncs`` syncs are requested (each queued as an RQ job) and run by two ``credit-desk worker``
    processes while the ``redis-server`` -- no persistence, as in production without AOF -- is restarted
    ``restarts`` times, ``every`` seconds apart: every queued job is lost each time, and workers whose
    Redis connection breaks mid-job quit and are started again (a supervisor's ``Restart=always``). The
    sync rows are the truth: the reconcile pass queues due rows that have no live job again. Every sync
    must complete once."""
    started = time.monotonic()
    new, existing_count = split(syncs)
    with stack(
        database_url, workdir, customers=customers_for(existing_count), latency_ms=latency_ms,
        worker_processes=2,
    ) as s:  # fmt: skip
        requested = request_syncs(
            s.container, "redisrestart", new, existing_customers(s.container, existing_count)
        )
        done = 0
        for _ in range(restarts):
            time.sleep(random.uniform(0.5, 1.5) * every)
            s.redis.restart()
            done += 1
            s.workers.supervise()
        settled = s.settle(requested, settle_seconds)
        out = _syncs_outcome("redis-restart", s, requested, started, settled)
        out.notes = {
            "Redis restarts": done,
            "workers that quit and were started again": len(s.workers.exits),
            **out.notes,
        }
        return out


# ---- 5. minutes of load ------------------------------------------------------------------------------


@dataclass
class _Load:
    """Shared state of the load clients."""

    undecided: list[int] = field(default_factory=list)  # announced, not yet decided
    decided: dict[int, str] = field(default_factory=dict)  # app id -> "approved" / "rejected"
    known: list[int] = field(default_factory=list)
    created: list[int] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    repeats: int = 0
    repeats_refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load(
    database_url: str,
    workdir: Path,
    *,
    minutes: float = 3.0,
    clients: int = 8,
    web_workers: int = 2,
    web_threads: int = 8,
    seed: int = 30,
    max_requests_per_client: int = 100_000,
    sample_seconds: float = 5.0,
    on_progress: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """``clients`` closed loops send signed Slack requests to gunicorn (``web_workers`` x
    ``web_threads``, PostgreSQL, a private Redis, one ``credit-desk worker``) for ``minutes``
    (each loop bounded also by ``max_requests_per_client``). Mix per iteration: 15 % a new
    application through the intake API, 25 % ``/credit pending``, 20 % Details (a modal), 30 %
    a decision (approve 2:1 reject) on an announced, undecided application, 10 % a repeat of a
    decision already made (a double click: must record nothing). Measured: requests by kind,
    non-2xx answers, p50/p99 per kind, decisions requested vs recorded (lost = requested and
    not recorded as requested, duplicated = a second decision on one application), RSS of the
    gunicorn workers and the job worker (after warm-up vs at the end), database sessions and
    Redis clients (sampled), and afterwards the Slack messages owed for all of it."""
    started = time.monotonic()
    with stack(
        database_url, workdir, web_workers=web_workers, web_threads=web_threads, worker_processes=1
    ) as s:
        assert s.web is not None
        base = s.web.base
        state = _Load()
        db_name = make_url(database_url).database or ""
        with httpx.Client(base_url=base, timeout=30) as c:
            state.created.extend(intake(base, f"load-seed-{n:05d}", c) for n in range(seed))
        wait_until(lambda: set(state.created) <= announced_ids(s.slack), 120, "seed announcements", 0.2)
        state.undecided.extend(state.created)
        state.known.extend(state.created)
        deadline = time.monotonic() + minutes * 60
        stop = threading.Event()

        def watch_announcements() -> None:
            while not stop.wait(0.5):
                seen = announced_ids(s.slack)
                with state.lock:
                    fresh = [i for i in state.created if i in seen and i not in state.known]
                    state.known.extend(fresh)
                    state.undecided.extend(fresh)

        samples: dict[str, list[int]] = defaultdict(list)

        def sample() -> None:
            while not stop.wait(sample_seconds):
                with contextlib.suppress(Exception):
                    samples["db"].append(connections_to(database_url, db_name))
                with contextlib.suppress(Exception):
                    samples["redis"].append(s.redis.connected_clients())
                samples["web_rss"].append(sum(s.web.rss_kb().values()) if s.web else 0)

        def client(number: int) -> None:
            local = random.Random(number)
            counter = 0
            with httpx.Client(base_url=base, timeout=30) as c:
                while time.monotonic() < deadline and counter < max_requests_per_client:
                    counter += 1
                    one_request(c, local, number, counter)

        def one_request(c: httpx.Client, local: random.Random, number: int, counter: int) -> None:
            roll = local.random()
            kind, body, app_id, wanted = "command", b"", 0, ""
            if roll < 0.15:
                kind = "intake"
            elif roll < 0.40:
                kind = "command"
            elif roll < 0.60:
                kind = "click"
            elif roll < 0.90:
                kind = "decision"
                with state.lock:
                    if state.undecided:
                        app_id = state.undecided.pop(local.randrange(len(state.undecided)))
                        wanted = "approved" if local.random() < 2 / 3 else "rejected"
                    else:
                        kind = "command"
            else:
                kind = "repeat"
                with state.lock:
                    if state.decided:
                        app_id = local.choice(list(state.decided))
                        wanted = state.decided[app_id]
                    else:
                        kind = "command"
            clock = time.perf_counter()
            try:
                if kind == "intake":
                    body_json = valid_application(
                        f"load-{number}-{counter}", business_name=f"Load {number} {counter} LLC"
                    )
                    r = c.post(
                        "/api/applications",
                        json=body_json,
                        headers={"Authorization": f"Bearer {INTAKE_TOKEN}"},
                    )
                    if r.status_code == 201:
                        with state.lock:
                            state.created.append(int(r.json()["id"]))
                else:
                    if kind == "command":
                        body = slash_command_body("/credit", "pending", ANALYST_ID).encode()
                    elif kind == "click":
                        with state.lock:
                            target = local.choice(state.known)
                        body = details_body(target)
                    elif kind == "decision":
                        body = approve_body(app_id) if wanted == "approved" else reject_body(app_id)
                    else:  # a second click on a decided application: the opposite decision
                        body = reject_body(app_id) if wanted == "approved" else approve_body(app_id)
                    r = c.post("/slack/events", content=body, headers=signed_headers(body))
            except httpx.HTTPError as exc:
                with state.lock:
                    if kind == "decision":
                        state.decided[app_id] = wanted  # asked for, whatever the answer
                    state.statuses["no answer"] += 1
                    state.failures.append(f"{kind}: {type(exc).__name__}: {exc}")
                return
            elapsed = (time.perf_counter() - clock) * 1000
            with state.lock:
                if kind == "decision":  # only now may a "double click" pick it
                    state.decided[app_id] = wanted
                state.latencies[kind].append(elapsed)
                state.latencies["all"].append(elapsed)
                state.statuses[str(r.status_code)] += 1
                if r.status_code >= 300:
                    state.failures.append(f"{kind}: {r.status_code} {r.text[:200]}")
                if kind == "repeat":
                    state.repeats += 1
                    if r.status_code == 200 and "Already decided" in r.text:
                        state.repeats_refused += 1

        threads = [
            threading.Thread(target=watch_announcements, daemon=True),
            threading.Thread(target=sample, daemon=True),
        ]
        for watcher in threads:
            watcher.start()
        warm = time.monotonic() + min(20.0, minutes * 60 / 6)
        rss_start: dict[str, int] = {}
        load_started = time.monotonic()
        with ThreadPoolExecutor(clients, thread_name_prefix="load-client") as pool:
            futures = [pool.submit(client, n) for n in range(clients)]
            last = time.monotonic()
            while not all(f.done() for f in futures):
                time.sleep(0.5)
                now = time.monotonic()
                if not rss_start and now >= warm:
                    rss_start = _rss(s)
                if on_progress is not None and now - last >= 30:
                    last = now
                    with state.lock:
                        on_progress(f"  {len(state.latencies['all'])} requests after {now - started:.0f} s")
            for f in futures:
                f.result()
        load_seconds = time.monotonic() - load_started
        rss_end = _rss(s)
        stop.set()
        for watcher in threads:
            watcher.join(10)
        if not rss_start:
            rss_start = rss_end
        # Every owed Slack message should arrive (announcements by the worker, updates on the outbox).
        with state.lock:
            created, decided = list(state.created), dict(state.decided)

        def slack_done() -> bool:
            return slack_tally(s.slack, created, decided).delivered >= len(created) + 2 * len(decided)

        with contextlib.suppress(AssertionError):
            wait_until(slack_done, 120, "the owed Slack messages", 0.5)
        time.sleep(2.0)
        recorded = _decisions(s.container, list(decided))
        out = Outcome("load", unit="decisions", requested=len(decided), seconds=time.monotonic() - started)
        status_of = {"approve": "approved", "reject": "rejected"}
        for app_id, wanted in decided.items():
            kinds = recorded.get(app_id, [])
            out.duplicated += max(0, len(kinds) - 1)
            if kinds and status_of.get(kinds[0]) == wanted:
                out.completed += 1
            else:
                out.lost += 1
                out.problems.append(f"application {app_id}: asked {wanted}, recorded {kinds}")
        total = len(state.latencies["all"])
        non_2xx = sum(n for code, n in state.statuses.items() if not code.startswith("2"))
        out.notes = {
            "requests": total,
            "non-2xx or no answer": non_2xx,
            "load window s": round(load_seconds),
            "req/s": round(total / load_seconds, 1),
            **{
                f"{kind} n / p50 / p99 ms": (
                    f"{len(v)} / {statistics.median(v):.0f} / {pct(v, 99):.0f}" if v else "0"
                )
                for kind in ("command", "click", "decision", "repeat", "intake", "all")
                for v in [state.latencies.get(kind, [])]
            },
            "repeats answered 'already decided'": f"{state.repeats_refused} of {state.repeats}",
            "web RSS MiB after warm-up -> end": _mib(rss_start["web"], rss_end["web"]),
            "job worker RSS MiB": _mib(rss_start["worker"], rss_end["worker"]),
            "DB sessions min / max / end": _range(samples["db"]),
            "Redis clients min / max / end": _range(samples["redis"]),
        }
        out.problems.extend(state.failures[:10])
        t = slack_tally(s.slack, created, decided)
        slack_out = Outcome(
            "load: Slack messages",
            unit="Slack messages",
            requested=t.requested,
            completed=t.delivered,
            lost=t.lost,
            duplicated=t.duplicated,
            seconds=out.seconds,
            problems=t.problems,
        )
        return [out, slack_out]


def _mib(before_kb: int, after_kb: int) -> str:
    return f"{before_kb / 1024:.0f} -> {after_kb / 1024:.0f}"


def _range(values: list[int]) -> str:
    return f"{min(values)} / {max(values)} / {values[-1]}" if values else "n/a"


def _rss(s: Stack) -> dict[str, int]:
    from tests.harness import rss_kb

    web = sum(s.web.rss_kb().values()) if s.web else 0
    worker = sum(rss_kb(w.pid) or 0 for w in s.workers.alive())
    return {"web": web, "worker": worker}


def _outbox_notes(container: Container, app_ids: list[int]) -> dict[str, int]:
    """How the decisions' outbox rows were delivered: at the first attempt (normally by the process that
    decided), or later (its holder was killed and the lease ran out, or a delivery failed); and any owed."""
    with transaction(container.sessions, readonly=True) as session:
        rows = session.execute(
            select(OutboxMessage.attempts, OutboxMessage.done_at).where(
                OutboxMessage.application_id.in_(app_ids)
            )
        ).all()
    return {
        "outbox rows delivered at the first attempt": sum(1 for a, d in rows if d is not None and a <= 1),
        "outbox rows delivered later (holder killed or call failed)": sum(
            1 for a, d in rows if d is not None and a > 1
        ),
        "outbox rows still owed": sum(1 for _, d in rows if d is None),
    }


def _decisions(container: Container, app_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    with transaction(container.sessions, readonly=True) as session:
        for app_id, kind in session.execute(
            select(Decision.application_id, Decision.kind)
            .where(Decision.application_id.in_(app_ids))
            .order_by(Decision.id)
        ):
            out[app_id].append(kind)
    return out
