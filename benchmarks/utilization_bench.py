"""Time to build a `/utilization` reply for a rep with 5,000 customers in a 1M-customer mirror.

    python benchmarks/utilization_bench.py [--size 1000000] [--book 5000] [--backends sqlite,postgresql]
                                           [--rounds 200] [--pg-url URL]

Builds a deterministic synthetic mirror at schema revision 0001 with bulk inserts (so that later
migrations, 0006's indexes among them, are built over existing rows, as in production), then times
`UtilizationService.answer` plus `blocks.utilization.dashboard_message` for the big rep, per kind of
request. The rep is mapped by `UTILIZATION_REP_OVERRIDES`, so no Slack call is made: this measures the
database and the builders. Not a test: it asserts nothing about time. `base ms` is the p50 of a primary-key
read through the same session factory, to compare machines.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import fakeredis
from slack_sdk import WebClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blocks.utilization import dashboard_message  # noqa: E402
from bot.customers.search import CustomerSearch  # noqa: E402
from bot.decisions.policy import RoleDirectory  # noqa: E402
from bot.utilization.service import Dashboard, SlackEmails, UtilizationOptions, UtilizationService  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import make_engine, make_session_factory, transaction  # noqa: E402
from storage.models import NsCustomer  # noqa: E402

SEED = 20261201
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
BIG_REP = 1
REPS = 200
USER = "U0BENCHREP"
COLUMNS = (
    "internal_id",
    "entity_id",
    "company_name",
    "name_normalized",
    "currency",
    "terms_id",
    "sales_rep_id",
    "credit_limit",
    "balance",
    "unbilled_orders",
    "overdue_balance",
    "days_overdue",
    "credit_hold",
    "is_inactive",
    "mirrored_at",
)
WORDS = ("acme", "globex", "initech", "umbrella", "stark", "wayne", "tyrell", "cyberdyne", "hooli", "wonka")
TAILS = (
    "Supply",
    "Industrial",
    "Trading",
    "Foods",
    "Logistics",
    "Builders",
    "Metals",
    "Plastics",
    "Textiles",
)
KINDS = ("all, page 1", "all, page 20", "over 80", "overdue", "name", "over 50 overdue")


def rows(size: int, book: int) -> Iterator[tuple[Any, ...]]:
    """`book` customers for rep 1, the rest spread over reps 2..REPS; amounts in cents."""
    rnd = random.Random(SEED)
    for i in range(1, size + 1):
        rep = BIG_REP if i <= book else 2 + i % (REPS - 1)
        name = f"{rnd.choice(WORDS).title()} {rnd.choice(TAILS)} {i}"
        limit = None if rnd.random() < 0.05 else rnd.choice([0, 5_000, 10_000, 25_000, 50_000, 100_000]) * 100
        balance = int((limit or 20_000_00) * rnd.uniform(-0.1, 1.3))
        overdue = int(max(0, balance) * rnd.random()) if rnd.random() < 0.2 else 0
        yield (
            i,
            f"CUST-{i}",
            name,
            name.lower(),
            "USD",
            1,
            rep,
            limit,
            balance,
            int(rnd.random() * 500_000) if rnd.random() < 0.3 else 0,
            overdue,
            rnd.randint(1, 120) if overdue else 0,
            "ON" if rnd.random() < 0.02 else "AUTO",
            rnd.random() < 0.03,
            "2026-12-01 00:00:00",
        )


def load(engine: Engine, size: int, book: int) -> None:
    batch: list[tuple[Any, ...]] = []
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy(f"COPY ns_customers ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows(size, book):
                    copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
        return
    insert = f"INSERT INTO ns_customers ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"  # noqa: S608
    with engine.begin() as conn:
        for row in rows(size, book):
            batch.append(row)
            if len(batch) == 20_000:
                conn.exec_driver_sql(insert, batch)
                batch = []
        if batch:
            conn.exec_driver_sql(insert, batch)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextlib.contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    admin = create_engine(
        pg_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    name = f"credit_desk_util_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(backend: str, url: str, size: int, book: int, rounds: int) -> dict[str, Any]:
    engine = make_engine(url)
    started = time.perf_counter()
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ns_terms (internal_id, name, is_inactive, mirrored_at) "
                "VALUES (1, 'Net 30', false, '2026-12-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO ns_sales_reps (internal_id, name, email, is_inactive, mirrored_at) "
                "VALUES (1, 'Big Rep', 'big@bench.example', false, '2026-12-01 00:00:00')"
            )
        )
    load(engine, size, book)
    with contextlib.redirect_stdout(io.StringIO()):
        migrate.upgrade(engine)
    if backend == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE ns_customers"))
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    build_s = time.perf_counter() - started
    sessions = make_session_factory(engine)
    options = UtilizationOptions(rep_overrides={USER: BIG_REP}, page_size=10)
    service = UtilizationService(
        sessions,
        options,
        RoleDirectory({}),
        SlackEmails(fakeredis.FakeRedis()),
        search=CustomerSearch(sessions),
    )
    client = WebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/api/")  # noqa: S106 (never called)
    requests = {
        "all, page 1": ("", 0),
        "all, page 20": ("", 19),
        "over 80": ("over 80", 0),
        "overdue": ("overdue", 0),
        "name": ("acme supply", 0),
        "over 50 overdue": ("over 50 overdue", 0),
    }
    base: list[float] = []
    for i in range(rounds):
        t = time.perf_counter()
        with transaction(sessions, readonly=True) as s:
            s.get(NsCustomer, 1 + i)
        base.append((time.perf_counter() - t) * 1000)
    timings: dict[str, list[float]] = {k: [] for k in requests}
    for _ in range(3):  # warm caches
        for q, page in requests.values():
            service.answer(USER, q, client, page=page)
    for _ in range(rounds):
        for kind, (q, page) in requests.items():
            t = time.perf_counter()
            answer = service.answer(USER, q, client, page=page)
            assert isinstance(answer, Dashboard), answer
            dashboard_message(answer)
            timings[kind].append((time.perf_counter() - t) * 1000)
    engine.dispose()
    every = [v for vs in timings.values() for v in vs]
    return {
        "backend": backend,
        "build_s": build_s,
        "base": statistics.median(base),
        "p50": percentile(every, 50),
        "p99": percentile(every, 99),
        "max": max(every),
        "kinds": {k: (percentile(v, 50), percentile(v, 99)) for k, v in timings.items()},
    }


def report(results: list[dict[str, Any]], size: int, book: int) -> str:
    lines = [
        f"{size:,} customers, one rep with {book:,}; reply = UtilizationService.answer + dashboard_message",
        f"{'backend':<11} {'build s':>8} {'base ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
    ]
    for r in results:
        lines.append(
            f"{r['backend']:<11} {r['build_s']:>8.1f} {r['base']:>8.2f} "
            f"{r['p50']:>8.2f} {r['p99']:>8.2f} {r['max']:>8.2f}"
        )
    lines.append("")
    lines.append("p50 / p99 ms by request  " + "  ".join(f"{r['backend']:>18}" for r in results))
    for kind in KINDS:
        cells = "  ".join(f"{r['kinds'][kind][0]:>8.2f} / {r['kinds'][kind][1]:<7.2f}" for r in results)
        lines.append(f"{kind:<24} {cells}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--book", type=int, default=5_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    if not 1 <= args.book <= args.size or args.rounds < 1:
        parser.error("need 1 <= book <= size and rounds >= 1")
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {backend!r}")
        with database(backend, args.pg_url) as url:
            results.append(run(backend, url, args.size, args.book, args.rounds))
            print(report(results[-1:], args.size, args.book), flush=True)
    print()
    print(report(results, args.size, args.book))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
