"""Queued NetSuite syncs through `credit-desk worker` processes, against a capped, slow NetSuite.

    python benchmarks/sync_bench.py [--syncs 1000] [--workers 4] [--latency-ms 150] [--cap 5]
                                    [--database postgresql|sqlite] [--pg-url URL] [--new-share 0.5]

What it sets up (all on 127.0.0.1, all built and torn down by the script):

* a ``redis-server`` of its own on a free port (no persistence), ``--redis-server`` to locate it;
* a NetSuite emulator in this process with ``--latency-ms`` per request and a concurrency cap of
  ``--cap`` (a request beyond the cap gets NetSuite's 429);
* the database: a fresh PostgreSQL database at ``--pg-url`` (dropped afterwards) or an SQLite file;
* the mirror (one full ingest), then ``--syncs`` approved applications, each linked and with a sync
  requested as Slack requests it (:class:`bot.sync.service.SyncService`): ``--new-share`` of them
  new customers (every field, two shipping locations, a contact), the rest existing customers
  (every field that differs, except the Tax Reg. Number the mirror cannot see);
* ``--workers`` ``credit-desk worker`` processes with ``NETSUITE_CONCURRENCY_LIMIT=--cap`` (the
  Redis lease limiter shared by all of them).

The workers start suspended (RQ's ``suspend``); once all of them listen, every sync is queued,
the workers are resumed and the clock runs until the last row is final. Printed:

* **throughput as a fraction of the cap-bound ideal**. A sync makes ``k`` HTTP requests one after
  another (``k`` = requests the emulator served / syncs, measured), each taking at least the
  latency ``L``; at most ``cap`` requests may be in flight, so no arrangement of workers can
  finish more than ``ideal = cap / (k * L)`` syncs per second. ``fraction = achieved / ideal``
  (goal >= 0.9). Also: ``mean in flight`` (total time requests spent in the emulator / window:
  ``cap`` is the ceiling) and the worker-bound ceiling ``min(workers, cap) / (k * L)``: a worker
  runs one sync at a time, so fewer workers than slots cannot fill the cap.
* **429s we caused**: the emulator's concurrency refusals. Nothing else talks to this emulator,
  so every 429 is ours (goal 0: the limiter keeps us at ``cap``); and the most requests ever in
  flight.
* **duplicates** (must be 0) and lost syncs, counted as the fault tests count them
  (:func:`tests.test_sync_faults.tally`): a second customer with our external id, a second
  contact with our email, an address line of ours twice, a sync recorded as succeeded twice.
* **peak worker memory**: the peak RSS (``VmHWM``) of each worker process, the largest RSS seen
  in a work horse (RQ forks one per job; sampled every 0.2 s), the peak of all of them together
  as PSS (shared pages split between the processes sharing them), and ``ru_maxrss`` over all
  children of the script.

The harness (private Redis, worker processes, requesting syncs, the tally) is the fault tests'
(``tests/test_sync_faults.py``), so the benchmark and the tests count the same way.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python benchmarks/sync_bench.py`

from rq import Worker
from rq.suspension import resume, suspend
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from bot.container import Container, build_container
from bot.mirror.ingest import IngestParts, run_ingest
from bot.settings import Settings
from bot.sync import jobs as sync_jobs
from netsuite.emulator import EmulatorServer
from storage import migrate
from storage.db import make_engine, transaction
from storage.models import SyncRequest, SyncStatus
from tests.conftest import TEST_FEDERAL_ID_KEY
from tests.test_sync_faults import (
    ACCOUNT,
    RedisServer,
    Requested,
    WorkerProcess,
    child_pids,
    existing_customers,
    request_syncs,
    tally,
    worker_env,
)

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
EMULATOR_TBA = {
    f"netsuite_tba_{name}": "unused"
    for name in ("consumer_key", "consumer_secret", "token_id", "token_secret")
}
"""The emulator runs without authentication; TBA values only satisfy the client's settings."""
FINAL = {s.value for s in SyncStatus} - {SyncStatus.PENDING.value, SyncStatus.RUNNING.value}


# ---- the database ---------------------------------------------------------------------------------


@contextmanager
def database(kind: str, pg_url: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database: an SQLite file in ``workdir`` or a fresh PostgreSQL database."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    admin = create_engine(
        pg_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    name = f"credit_desk_sync_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ---- memory ---------------------------------------------------------------------------------------


def _status_kb(pid: int, key: str, file: str = "status") -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) or of another ``/proc``
    file (``smaps_rollup``: ``Pss``), or None if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass
class MemorySampler:
    """Peak RSS of the worker processes (``VmHWM``) and of their work horses (sampled), and the
    peak of their summed PSS (a forked horse shares most pages with its worker: RSS would count
    them twice)."""

    workers: list[WorkerProcess]
    main_peak_kb: dict[int, int] = field(default_factory=dict)
    horse_peak_kb: int = 0
    total_peak_kb: int = 0
    horses_seen: set[int] = field(default_factory=set)

    def sample(self) -> None:
        total = 0
        for w in self.workers:
            if not w.alive():
                continue
            hwm = _status_kb(w.pid, "VmHWM")
            if hwm is not None:
                self.main_peak_kb[w.pid] = max(self.main_peak_kb.get(w.pid, 0), hwm)
            total += _status_kb(w.pid, "Pss", "smaps_rollup") or 0
            for horse in child_pids(w.pid):
                self.horses_seen.add(horse)
                self.horse_peak_kb = max(self.horse_peak_kb, _status_kb(horse, "VmRSS") or 0)
                total += _status_kb(horse, "Pss", "smaps_rollup") or 0
        self.total_peak_kb = max(self.total_peak_kb, total)


# ---- the run --------------------------------------------------------------------------------------


def worker_settings(args: argparse.Namespace) -> dict[str, str]:
    """Production defaults for the engine; only the concurrency limit follows ``--cap``."""
    return {
        "NETSUITE_CONCURRENCY_LIMIT": str(args.cap),
        "WORKER_THREADS": str(args.threads),
        "NETSUITE_READ_TIMEOUT_SECONDS": "60",
        "SYNC_LEASE_SECONDS": "900",
        "SYNC_RECONCILE_SECONDS": "15",
        "SYNC_RETRY_BASE_SECONDS": "2",
        "SYNC_RETRY_MAX_SECONDS": "10",
        "SYNC_MAX_ATTEMPTS": "5",
        "LOG_LEVEL": "WARNING",
    }


def build(args: argparse.Namespace, database_url: str, redis_url: str, ns_url: str) -> Container:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "federal_id_key": TEST_FEDERAL_ID_KEY,
        "netsuite_account_id": ACCOUNT,
        "netsuite_base_url": ns_url,
        "netsuite_auth_mode": "tba",
        **EMULATOR_TBA,
        "netsuite_subsidiary_id": "1",
        "netsuite_contact_role_id": "2",
        "netsuite_concurrency_limit": args.cap,
        "default_terms": "Net 30,Net 45",
        "log_level": "WARNING",
    }
    settings = Settings(_env_file=None, **values)
    return build_container(settings, migrate_now=False)


def wait_for_workers(container: Container, count: int, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(Worker.all(connection=container.redis)) >= count:
            return
        time.sleep(0.2)
    raise SystemExit(f"only {len(Worker.all(connection=container.redis))} of {count} workers came up")


def final_count(container: Container, ids: list[int]) -> int:
    with transaction(container.sessions, readonly=True) as session:
        statuses = session.scalars(select(SyncRequest.status).where(SyncRequest.id.in_(ids)))
        return sum(1 for s in statuses if s in FINAL)


def run(args: argparse.Namespace) -> dict[str, Any]:
    binary = shutil.which(args.redis_server)
    if binary is None:
        raise SystemExit(f"no redis-server at {args.redis_server}")
    workdir = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    new = round(args.syncs * args.new_share)
    existing = args.syncs - new
    out: dict[str, Any] = {"workdir": str(workdir)}
    with (
        database(args.database, args.pg_url, workdir) as database_url,
        RedisServer(binary, workdir / "redis") as redis_server,
        EmulatorServer(
            seed=11, customers=existing * 6 // 5 + 50, concurrency_cap=args.cap, log_size=args.syncs * 40
        ) as ns,
    ):
        container = build(args, database_url, redis_server.url, ns.url)
        workers: list[WorkerProcess] = []
        try:
            assert container.netsuite is not None and container.sync is not None
            started = time.monotonic()
            run_ingest(IngestParts(container.sessions, container.netsuite), full=True)
            container.sync.enqueue = None  # rows now, jobs all at once when the workers listen
            requested = request_syncs(
                container, "bench", new=new, existing=existing_customers(container, existing)
            )
            print(f"set-up: mirror and {len(requested)} sync requests in {time.monotonic() - started:.0f} s")
            ns.app.config.latency_ms = args.latency_ms
            env = worker_env(database_url, redis_server.url, ns.url, **worker_settings(args))
            # Suspended, the workers start and listen but take no job (their reconcile pass may
            # queue the due rows meanwhile): the clock starts when all of them may go.
            suspend(container.redis)
            for n in range(args.workers):
                workers.append(WorkerProcess(env, workdir, workdir / f"worker-{n + 1}.log").start())
            wait_for_workers(container, args.workers)
            out.update(measure(args, container, ns, workers, requested))
            out["tally"] = tally(container, ns, requested)
        finally:
            for w in workers:
                w.stop()
            out["ru_maxrss_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            container.close()
    shutil.rmtree(workdir, ignore_errors=True)
    return out


def measure(
    args: argparse.Namespace,
    container: Container,
    ns: EmulatorServer,
    workers: list[WorkerProcess],
    requested: list[Requested],
) -> dict[str, Any]:
    ids = [r.sync_id for r in requested]
    memory = MemorySampler(workers)
    clock = time.monotonic()
    queued = sum(sync_jobs.enqueue_sync(container.redis, i, job_timeout=900) for i in ids)
    print(f"queued {queued} syncs ({len(ids) - queued} were already) in {time.monotonic() - clock:.1f} s")
    ns.stats.reset()
    ns.log.clear()
    began = datetime.now(UTC)
    clock = time.monotonic()
    resume(container.redis)  # workers look about once a second
    print("running ...")
    # Bounded: far beyond what the slowest plausible run needs (one sync at a time, 4x latency).
    deadline = clock + len(ids) * 60 * args.latency_ms / 1000 + 300
    done, last_print = 0, 0.0
    while done < len(ids) and time.monotonic() < deadline:
        for _ in range(5):
            memory.sample()
            time.sleep(0.2)
        done = final_count(container, ids)
        if time.monotonic() - last_print >= 15:
            last_print = time.monotonic()
            print(f"  {done}/{len(ids)} final after {last_print - clock:.0f} s")
    memory.sample()
    with transaction(container.sessions, readonly=True) as session:
        rows = list(session.scalars(select(SyncRequest).where(SyncRequest.id.in_(ids))))
    finished = [r.completed_at for r in rows if r.completed_at is not None]
    window = (max(finished) - began).total_seconds() if finished else float("nan")
    stats = ns.stats.snapshot()
    entries = ns.log.entries()
    busy_ms = sum(e.duration_ms for e in entries)
    durations = [
        (r.completed_at - r.started_at).total_seconds() for r in rows if r.completed_at and r.started_at
    ]
    kinds = Counter(_kind(e.method, e.path) for e in entries)
    return {
        "window_s": window,
        "statuses": Counter(r.status for r in rows),
        "attempts": Counter(r.attempts for r in rows),
        "requests": stats.requests,
        "by_status": stats.by_status,
        "rejected": stats.rejected_concurrency,
        "max_in_flight": stats.max_in_flight,
        "mean_request_ms": statistics.fmean(e.duration_ms for e in entries) if entries else 0.0,
        "busy_s": busy_ms / 1000,
        "kinds": kinds,
        "sync_s": statistics.fmean(durations) if durations else 0.0,
        "sync_p95_s": statistics.quantiles(durations, n=20)[-1] if len(durations) > 20 else 0.0,
        "memory": memory,
    }


def _kind(method: str, path: str) -> str:
    if path.endswith("/suiteql"):
        return "SuiteQL"
    tail = "customer" if "/customer" in path else "contact" if "/contact" in path else "other"
    if "/!attach/" in path:
        tail = "attach contact"
    elif "eid:" in path:
        tail += " by external id"
    return f"{method} {tail}"


def report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    t = r["tally"]
    memory: MemorySampler = r["memory"]
    completed = t.completed
    latency = args.latency_ms / 1000
    k = r["requests"] / t.requested
    ideal = args.cap / (k * latency)
    worker_bound = min(args.workers, args.cap) / (k * latency)
    achieved = completed / r["window_s"]
    print()
    print(
        f"sync benchmark: {args.syncs} syncs ({round(args.syncs * args.new_share)} new customers), "
        f"{args.workers} workers, latency {args.latency_ms:g} ms, cap {args.cap}, database {args.database}, "
        f"real Redis (own redis-server)"
    )
    print(f"rows: {dict(r['statuses'])}; attempts per sync: {dict(sorted(r['attempts'].items()))}")
    print(f"requested={t.requested} completed={t.completed} lost={t.lost} duplicated={t.duplicated}")
    for problem in t.problems[:10]:
        print(f"  {problem}")
    print(f"HTTP requests: {r['requests']} ({k:.2f} per sync), by status {dict(r['by_status'])}")
    print("  " + ", ".join(f"{kind} {n}" for kind, n in r["kinds"].most_common()))
    print(
        f"window {r['window_s']:.1f} s; mean request {r['mean_request_ms']:.1f} ms in the emulator; "
        f"mean sync {r['sync_s']:.2f} s (p95 {r['sync_p95_s']:.2f} s) from claim to finish, "
        f"of which {k * latency:.2f} s is k x latency"
    )
    print(
        f"mean in flight {r['busy_s'] / r['window_s']:.2f} of {args.cap}; "
        f"max in flight {r['max_in_flight']}; 429s we caused {r['rejected']} (goal 0)"
    )
    print(
        f"throughput {achieved:.3f} syncs/s; cap-bound ideal {args.cap} / ({k:.2f} x {latency:.3f} s) = "
        f"{ideal:.3f} syncs/s; fraction {achieved / ideal:.3f} (goal >= 0.9)"
    )
    print(
        f"worker-bound ceiling min({args.workers}, {args.cap}) / ({k:.2f} x {latency:.3f} s) = "
        f"{worker_bound:.3f} syncs/s ({worker_bound / ideal:.2f} of ideal); "
        f"throughput is {achieved / worker_bound:.3f} of it"
    )
    mains = ", ".join(f"{kb / 1024:.0f}" for kb in memory.main_peak_kb.values())
    print(
        f"peak worker memory: worker processes VmHWM [{mains}] MiB; largest work horse seen "
        f"{memory.horse_peak_kb / 1024:.0f} MiB ({len(memory.horses_seen)} horses sampled); "
        f"all worker processes and horses together at most {memory.total_peak_kb / 1024:.0f} MiB PSS; "
        f"ru_maxrss of children {r['ru_maxrss_kb'] / 1024:.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--syncs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="job threads per worker (WORKER_THREADS)")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--cap", type=int, default=5)
    parser.add_argument("--new-share", type=float, default=0.5, help="share of syncs to new customers")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="a PostgreSQL cluster to create a database in"
    )
    parser.add_argument("--redis-server", default="/usr/bin/redis-server")
    args = parser.parse_args(argv)
    if args.syncs < 1 or args.workers < 1 or args.cap < 1 or args.latency_ms <= 0:
        parser.error("--syncs, --workers and --cap must be at least 1 and --latency-ms positive")
    if not 0 <= args.new_share <= 1:
        parser.error("--new-share must be between 0 and 1")
    result = run(args)
    report(args, result)
    return 0 if result["tally"].lost == 0 and result["tally"].duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
