"""Mirror ingest throughput and memory, next to a plain bulk insert of the same rows.

    python benchmarks/ingest_bench.py --customers 100000 --backends sqlite,postgresql

For each backend: a NetSuite emulator with N customers serves on 127.0.0.1 from this process; a
child process (spawned, so the emulator's memory is not counted) runs one full ingest into a fresh,
migrated database and reports its wall time, the time spent inside SuiteQL requests (by the reader
thread, which runs one page ahead of the writes unless --no-read-ahead), the time the writer was
left waiting for NetSuite, the time in the batches' transactions, and its peak RSS. The emulator's
CPU time (this process, otherwise idle meanwhile) is measured around the child.

A second child then reads the mirrored rows back and inserts them into another fresh, migrated
database -- same schema, so the same indexes and, on SQLite, the same FTS5 triggers -- with plain
executemany INSERTs in the same batches (1000 customers with their addresses and contacts per
transaction), timing only the inserts. Printed ratios:

* ingest rows/s : bulk-insert rows/s (end to end, NetSuite included) -- the goal is >= 0.5;
* write rows/s : bulk-insert rows/s, the ingest's batch transactions alone (its upserts, child-set
  replacement and checkpoint against plain INSERTs).

PostgreSQL databases are created in and dropped from the cluster at --pg-url (default
postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, insert, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python benchmarks/ingest_bench.py`

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


# ---- databases ----------------------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, pg_admin_url: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database URL; removed afterwards."""
    from storage import migrate
    from storage.db import make_engine

    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        cleanup = None
    elif backend == "postgresql":
        name = f"credit_desk_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(
            pg_admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)

        def cleanup() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        raise SystemExit(f"unknown backend {backend!r} (sqlite, postgresql)")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        if cleanup is not None:
            cleanup()


# ---- child processes ----------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ingest_child(
    url: str, ns_url: str, page_size: int, child_batch: int, read_ahead: bool, in_flight: int, out: Any
) -> None:
    """Run one full ingest; report seconds, NetSuite time, write time, rows written and peak RSS."""
    from bot.mirror import IngestOptions, MirrorIngest
    from netsuite.client import NetSuiteClient
    from netsuite.config import NetSuiteConfig
    from netsuite.limiter import LocalLimiter
    from storage.db import make_engine, make_session_factory

    dummy = "unused"  # the emulator runs with authentication off
    config = NetSuiteConfig(
        account_id="1234567_SB1", base_url=ns_url, auth_mode="tba", tba_consumer_key=dummy,
        tba_consumer_secret=dummy, tba_token_id=dummy, tba_token_secret=dummy,
    )  # fmt: skip
    engine = make_engine(url)
    client = NetSuiteClient(config, None, LocalLimiter(5))
    waited = [0.0, 0]
    page = client.suiteql_page
    lock = threading.Lock()

    def timed_page(*args: Any, **kwargs: Any) -> Any:  # requests may overlap: NS s is their sum
        began = time.perf_counter()
        try:
            return page(*args, **kwargs)
        finally:
            with lock:
                waited[0] += time.perf_counter() - began
                waited[1] += 1

    client.suiteql_page = timed_page  # type: ignore[method-assign]
    options = IngestOptions(
        page_size=page_size, child_batch_size=child_batch, read_ahead=read_ahead, requests_in_flight=in_flight
    )
    ingest = MirrorIngest(make_session_factory(engine), client, options)
    began = time.perf_counter()
    cpu = _cpu_seconds()
    report = ingest.run(full=True)
    seconds = time.perf_counter() - began
    client.close()
    engine.dispose()
    out.put(
        {
            "seconds": seconds,
            "netsuite_seconds": waited[0],
            "wait_seconds": report.read_wait_seconds,
            "write_seconds": report.write_seconds,
            "requests": waited[1],
            "customers": report.customers_read,
            "rows": report.customers_read + report.addresses_written + report.contacts_written,
            "peak_rss_mb": _peak_rss_mb(),
            "cpu_seconds": _cpu_seconds() - cpu,
        }
    )


def bulk_child(source_url: str, target_url: str, batch_customers: int, out: Any) -> None:
    """Insert the mirrored rows into ``target_url`` with plain INSERTs; time the inserts only."""
    from storage.db import make_engine
    from storage.models import NsCustomer, NsCustomerAddress, NsCustomerContact

    tables: list[Table] = [t.__table__ for t in (NsCustomer, NsCustomerAddress, NsCustomerContact)]  # type: ignore[misc]
    source, target = make_engine(source_url), make_engine(target_url)
    with source.begin() as conn:  # fresh statistics for the read-back (not timed)
        conn.execute(text("ANALYZE"))
    inserting = 0.0
    rows = 0
    last = -1
    with source.connect() as read:
        for _ in range(10_000_000):
            customers = [
                dict(r._mapping)
                for r in read.execute(
                    select(tables[0]).where(tables[0].c.internal_id > last).order_by(tables[0].c.internal_id)
                    .limit(batch_customers)
                )
            ]  # fmt: skip
            if not customers:
                break
            first, last = customers[0]["internal_id"], customers[-1]["internal_id"]
            children = [  # the batch is every customer in [first, last]: a range, not a 1000-id list
                [
                    {k: v for k, v in dict(r._mapping).items() if k != "id"}
                    for r in read.execute(
                        select(t).where(t.c.customer_id.between(first, last)).order_by(t.c.id)
                    )
                ]
                for t in tables[1:]
            ]
            began = time.perf_counter()
            with target.begin() as write:
                write.execute(insert(tables[0]), customers)
                for table, batch in zip(tables[1:], children, strict=True):
                    if batch:
                        write.execute(insert(table), batch)
            inserting += time.perf_counter() - began
            rows += len(customers) + sum(len(b) for b in children)
    source.dispose()
    target.dispose()
    out.put({"seconds": inserting, "rows": rows})


def _load() -> str:
    """1, 5 and 15-minute load averages (the machine is shared: read the figures with them)."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def in_child(target: Any, *args: Any) -> dict[str, Any]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result: dict[str, Any] = queue.get()
    process.join()
    if process.exitcode:
        raise SystemExit(f"{target.__name__} failed with exit code {process.exitcode}")
    return result


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--child-batch", type=int, default=400, help="customer ids per address/contact query (ingest default)"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument(
        "--no-read-ahead", action="store_true", help="read NetSuite and write the database in turn"
    )
    parser.add_argument(
        "--requests-in-flight", type=int, default=3, help="NetSuite requests at once (ingest default 3)"
    )
    args = parser.parse_args()

    from netsuite.emulator import EmulatorServer

    workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    print(
        f"ingest benchmark: {args.customers} customers, page {args.page_size}, "
        f"child batch {args.child_batch}, read-ahead {'off' if args.no_read_ahead else 'on'}, "
        f"{args.requests_in_flight} requests in flight; load average {_load()}"
    )
    header = (
        f"{'backend':<11}{'rows':>9}{'ingest s':>10}{'NS s':>8}{'waited s':>10}{'write s':>9}"
        f"{'ingest CPU s':>14}{'emulator CPU s':>16}{'bulk s':>8}{'rows/s':>9}{'bulk rows/s':>12}"
        f"{'ratio':>7}{'write ratio':>13}{'peak RSS MB':>13}"
    )
    lines = []
    try:
        with EmulatorServer(seed=args.seed, customers=args.customers) as ns:
            for backend in args.backends.split(","):
                with fresh_database(backend, args.pg_url, workdir) as url:
                    cpu = time.process_time()
                    ingest = in_child(
                        ingest_child,
                        url,
                        ns.url,
                        args.page_size,
                        args.child_batch,
                        not args.no_read_ahead,
                        args.requests_in_flight,
                    )
                    emulator_cpu = time.process_time() - cpu
                    with fresh_database(backend, args.pg_url, workdir) as target:
                        bulk = in_child(bulk_child, url, target, args.page_size)
                if bulk["rows"] != ingest["rows"]:
                    raise SystemExit(f"row counts differ: ingest {ingest['rows']}, bulk {bulk['rows']}")
                rate = ingest["rows"] / ingest["seconds"]
                write_rate = ingest["rows"] / max(ingest["write_seconds"], 1e-9)
                bulk_rate = bulk["rows"] / bulk["seconds"]
                lines.append(
                    f"{backend:<11}{ingest['rows']:>9}{ingest['seconds']:>10.1f}"
                    f"{ingest['netsuite_seconds']:>8.1f}{ingest['wait_seconds']:>10.1f}"
                    f"{ingest['write_seconds']:>9.1f}{ingest['cpu_seconds']:>14.1f}{emulator_cpu:>16.1f}"
                    f"{bulk['seconds']:>8.1f}{rate:>9.0f}{bulk_rate:>12.0f}{rate / bulk_rate:>7.2f}"
                    f"{write_rate / bulk_rate:>13.2f}{ingest['peak_rss_mb']:>13.0f}"
                )
                print(
                    f"  {backend}: {ingest['requests']} SuiteQL requests, {ingest['customers']} customers; "
                    f"load average {_load()}"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(header)
    for line in lines:
        print(line)
    print("goals: ratio >= 0.5, peak RSS <= 300 MB")


if __name__ == "__main__":
    main()
