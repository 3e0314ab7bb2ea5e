"""Customer search benchmark: p50/p99 of 1,000 mixed queries per mirror size, SQLite and PostgreSQL.

    python benchmarks/search_bench.py [--sizes 100000,1000000] [--backends sqlite,postgresql]

For each size it builds a deterministic synthetic mirror (company names from word lists, cities, email
domains, tax numbers, sales reps) with bulk inserts (`executemany` on SQLite, COPY on PostgreSQL) into a
schema at revision 0001, then upgrades to head, so the search indexes (migrations 0002, 0005 and 0007:
trigram and word indexes, the name vocabulary) are built over existing rows exactly as a deployment that
adds them later would. It then runs the same 1,000 queries on every backend: names
with a typo, name prefixes as typed, whole names, entity ids, tax numbers, email domains and cities, plus
some restricted to one sales rep.

Timings are wall-clock per `CustomerSearch.search` call, including the session and the Python re-rank.
Because the machine is shared and noisy, each backend also reports a baseline measured in the same run,
the p50 of a primary-key lookup through the same session factory, and every figure as a multiple of it.
It also reports, per query kind, how often the customer a query was made from is among the results, and
the size of the in-memory name vocabulary the search loaded.

PostgreSQL: a throw-away database `credit_desk_search_bench_<random>` in the cluster at `--pg-url`
(created and dropped here). SQLite: a temporary file, deleted at the end.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.customers.normalize import normalize_name
from bot.customers.search import CustomerSearch
from bot.federal_id import FederalIdCipher
from storage import migrate
from storage.db import make_engine, make_session_factory
from storage.models import NsCustomer

SEED = 20261130
QUERIES = 1_000
BENCH_KEY = "q5kHUmVQqTCNxYTs_ZmmyxLDJY3S3pUdQg0B2uZ1c2U="  # a fixed Fernet key: digests are reproducible
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    """
Abbott Acme Adams Allied Alpine Anchor Apex Archer Arrow Atlas Atlantic Aurora Avalon Bailey Baker Banner
Barrett Beacon Bennett Birch Blackstone Blue Bolt Boulder Bradley Brennan Bridge Bright Brook Bryant Buckeye
Burke Cabot Caldwell Cambridge Cardinal Carlson Carter Cascade Cedar Century Chambers Chandler Chapman
Charter Chester Citadel Clark Clayton Coastal Cobalt Cole Colonial Compass Conrad Copper Cornerstone Crane
Crescent Crest Crown Cypress Dalton Davidson Dawson Delta Diamond Dixon Douglas Drake Dunn Eagle Eastern
Edison Elite Ellis Emerald Empire Evergreen Falcon Fairfield Fenwick Fischer Fleming Fletcher Forbes Foster
Franklin Frontier Fuller Galaxy Garrison Gateway Gibson Glacier Golden Graham Granite Grant Greene Griffin
Hale Hamilton Harbor Harper Hartley Hawk Hayes Heritage Highland Holland Horizon Hudson Hunter Imperial
Iron Jackson Jensen Keystone Kimball Kingston Knight Lakeside Landmark Lawson Legacy Liberty Lincoln Lynx
Madison Magnolia Maple Marshall Maxwell Meridian Metro Midwest Miller Monarch Morgan Morris Murphy Newton
Noble Northern Oak Olympic Omega Orion Pacific Palmer Paramount Parker Patriot Peak Pearson Phoenix Pine
Pinnacle Pioneer Porter Prairie Premier Prescott Quantum Quest Radiant Raven Redwood Reed Regal Reliance
Ridge River Rockwell Rogers Royal Russell Sabre Salem Sawyer Schmidt Sentinel Sequoia Shepherd Sierra
Silver Sterling Stone Summit Sutton Taylor Thornton Titan Tower Trident Union United Valley Vanguard
Vector Victory Vista Walker Wallace Warren Watson Wayne Webster Wells Western Whitman Wilson Windsor Wolf
Yates York Zenith
"""
)

SECOND = _words(
    """
Advanced Applied Precision Industrial Integrated General National Global Regional Metro Quality Superior
Custom Modern Dynamic Strategic Reliable Rapid Standard Universal Continental Coastal Mountain Valley
Allied Consolidated Premier Professional Technical Commercial American Midwest Southern Northern
"""
)

INDUSTRY = _words(
    """
Aerospace Agriculture Analytics Architecture Automation Automotive Aviation Bakery Beverage Biotech
Building Cabinetry Chemical Cleaning Coatings Components Concrete Construction Consulting Controls
Dairy Data Design Diagnostics Distribution Dynamics Electric Electronics Energy Engineering Environmental
Equipment Fabrication Farms Fasteners Filtration Finishing Flooring Foods Foundry Freight Furniture
Glass Graphics Hardware Healthcare Hydraulics Imaging Instruments Insulation Interiors Irrigation
Landscaping Laboratories Lighting Logistics Lumber Machining Manufacturing Marine Materials Mechanical
Medical Metals Millwork Mining Molding Networks Optics Packaging Paper Pharmaceuticals Plastics Plumbing
Polymers Power Printing Pumps Recycling Robotics Roofing Rubber Safety Sensors Software Solar Staffing
Steel Storage Supply Systems Technologies Textiles Tooling Transport Trucking Valves Welding Wireless
"""
)

TAIL = _words(
    """
Supply Solutions Services Group Partners Works Industries Systems Holdings Enterprises Associates Company
Labs Products Resources Network International Brothers Specialists Outfitters Depot
"""
)

# Invented brand words ("Korvex", "Tamlio"): real customer lists are full of them, and without them every
# name would share its first word with thousands of others, which no real mirror looks like.
BRAND_HEADS = _words("bel cor dra fen gal hal kor lum mar nov ost pra quin ral sol tam ver wyn zan cal")
BRAND_MIDS = ["", "a", "e", "i", "o", "ar", "en", "il", "or", "um"]
BRAND_TAILS = _words("vex lio tek dyn ora ix ton via nex gen tra zo ric bis len mox")
BRAND_SHARE = 0.6

SUFFIX = ["LLC", "Inc.", "Inc", "Corp.", "Corporation", "Co.", "Ltd", "L.L.C.", "LP", "", "", ""]

CITIES = [
    (c.strip(), s)
    for s, names in {
        "TX": "Austin, Dallas, Houston, San Antonio, El Paso, Fort Worth, Round Rock, Plano, Lubbock, Waco",
        "CA": "Los Angeles, San Diego, San Jose, Fresno, Sacramento, Oakland, Long Beach, Irvine",
        "NY": "New York, Buffalo, Rochester, Yonkers, Syracuse, Albany, Ithaca, Utica, Schenectady",
        "IL": "Chicago, Aurora, Naperville, Joliet, Rockford, Springfield, Peoria, Elgin, Champaign",
        "OH": "Columbus, Cleveland, Cincinnati, Toledo, Akron, Dayton, Parma, Canton, Youngstown",
        "GA": "Atlanta, Augusta, Columbus, Macon, Savannah, Athens, Sandy Springs, Roswell, Albany",
        "WA": "Seattle, Spokane, Tacoma, Vancouver, Bellevue, Kent, Everett, Renton, Yakima",
        "CO": "Denver, Colorado Springs, Aurora, Fort Collins, Lakewood, Thornton, Arvada, Boulder, Pueblo",
        "MA": "Boston, Worcester, Springfield, Cambridge, Lowell, Brockton, Quincy, Lynn, New Bedford",
        "FL": "Jacksonville, Miami, Tampa, Orlando, St. Petersburg, Hialeah, Tallahassee, Gainesville",
        "MI": "Detroit, Grand Rapids, Warren, Sterling Heights, Ann Arbor, Lansing, Flint, Dearborn",
        "PA": "Philadelphia, Pittsburgh, Allentown, Erie, Reading, Scranton, Bethlehem, Lancaster",
        "MN": "Minneapolis, Saint Paul, Rochester, Duluth, Bloomington, Brooklyn Park, Plymouth",
        "AZ": "Phoenix, Tucson, Mesa, Chandler, Scottsdale, Glendale, Gilbert, Tempe, Peoria",
        "ON": "Toronto, Ottawa, Mississauga, Brampton, Hamilton, London, Markham, Vaughan, Kitchener",
    }.items()
    for c in names.split(",")
]

SALES_REPS = 200


@dataclass(frozen=True)
class Row:
    internal_id: int
    entity_id: str
    company_name: str
    name_normalized: str
    tax_number: str  # what a query types; the mirror stores only the digest
    tax_number_digest: str
    email: str
    email_domain: str
    sales_rep_id: int
    city: str
    state: str


def generate(n: int, digest: Callable[[str], str]) -> Iterator[Row]:
    """`n` deterministic customers: the same seed gives the same rows on every backend and every run."""
    rnd = random.Random(SEED)
    for internal_id in range(1, n + 1):
        if rnd.random() < BRAND_SHARE:
            first = (rnd.choice(BRAND_HEADS) + rnd.choice(BRAND_MIDS) + rnd.choice(BRAND_TAILS)).capitalize()
        else:
            first = rnd.choice(FIRST)
        shape = rnd.random()
        if shape < 0.35:
            words = [first, rnd.choice(INDUSTRY), rnd.choice(TAIL)]
        elif shape < 0.6:
            words = [first, rnd.choice(SECOND), rnd.choice(INDUSTRY)]
        elif shape < 0.8:
            words = [first, rnd.choice(FIRST), rnd.choice(INDUSTRY), rnd.choice(TAIL)]
        else:
            words = [first, "&", rnd.choice(FIRST), rnd.choice(INDUSTRY)]
        suffix = rnd.choice(SUFFIX)
        name = " ".join(words) + (f" {suffix}" if suffix else "")
        tax = f"{rnd.randrange(10, 99)}-{rnd.randrange(0, 10_000_000):07d}"
        domain = f"{first.lower()}{words[-1].lower()}{internal_id % 50}.example"
        city, state = rnd.choice(CITIES)
        yield Row(
            internal_id=internal_id,
            entity_id=f"CUST-{internal_id}",
            company_name=name,
            name_normalized=normalize_name(name),
            tax_number=tax,
            tax_number_digest=digest(tax),
            email=f"ap@{domain}",
            email_domain=domain,
            sales_rep_id=1 + rnd.randrange(SALES_REPS),
            city=city,
            state=state,
        )


# --- loading -----------------------------------------------------------------------------------------

CUSTOMER_COLUMNS = (
    "internal_id",
    "entity_id",
    "company_name",
    "name_normalized",
    "tax_number_digest",
    "email",
    "email_domain",
    "sales_rep_id",
    "is_inactive",
    "default_billing_address_id",
    "mirrored_at",
)
ADDRESS_COLUMNS = (
    "id",
    "customer_id",
    "address_id",
    "default_billing",
    "default_shipping",
    "line1",
    "city",
    "region",
    "postal_code",
    "country",
)
MIRRORED_AT = "2026-11-30 00:00:00"


def _customer_values(r: Row) -> tuple[Any, ...]:
    return (
        r.internal_id,
        r.entity_id,
        r.company_name,
        r.name_normalized,
        r.tax_number_digest,
        r.email,
        r.email_domain,
        r.sales_rep_id,
        False,
        r.internal_id,
        MIRRORED_AT,
    )


def _address_values(r: Row) -> tuple[Any, ...]:
    country = "CA" if r.state == "ON" else "US"
    return (
        r.internal_id,
        r.internal_id,
        r.internal_id,
        True,
        True,
        "1 Main St",
        r.city,
        r.state,
        "00000",
        country,
    )


def _batches(rows: Iterator[Row], size: int = 20_000) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - constant names


def load_sqlite(engine: Engine, rows: Iterator[Row]) -> None:
    cust_sql = _insert_sql("ns_customers", CUSTOMER_COLUMNS)
    addr_sql = _insert_sql("ns_customer_addresses", ADDRESS_COLUMNS)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for batch in _batches(rows):
            cur.execute("BEGIN")
            cur.executemany(cust_sql, [_customer_values(r) for r in batch])
            cur.executemany(addr_sql, [_address_values(r) for r in batch])
            cur.execute("COMMIT")
        cur.execute("ANALYZE")
        cur.close()
    finally:
        raw.close()


def load_postgresql(engine: Engine, rows: Iterator[Row]) -> None:
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        with driver.cursor() as cur:
            cust_copy = f"COPY ns_customers ({', '.join(CUSTOMER_COLUMNS)}) FROM STDIN"
            addr_copy = f"COPY ns_customer_addresses ({', '.join(ADDRESS_COLUMNS)}) FROM STDIN"
            for batch in _batches(rows, 100_000):
                with cur.copy(cust_copy) as copy:
                    for r in batch:
                        copy.write_row(_customer_values(r))
                with cur.copy(addr_copy) as copy:
                    for r in batch:
                        copy.write_row(_address_values(r))
        driver.commit()
        driver.autocommit = True
        driver.execute("VACUUM ANALYZE ns_customers")
        driver.execute("VACUUM ANALYZE ns_customer_addresses")
        driver.autocommit = False
    finally:
        raw.close()


# --- queries -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    kind: str
    text: str
    source_id: int  # the customer the query was made from: did the search find it?
    sales_rep_id: int | None = None


def _typo(word: str, rnd: random.Random) -> str:
    """One edit (drop, swap, replace or double a letter) away from `word`, somewhere past its first letter."""
    if len(word) < 4:
        return word
    i = rnd.randrange(1, len(word) - 1)
    op = rnd.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1 :]
    if op == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 2:
        return word[:i] + rnd.choice("aeiourstln") + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def make_queries(n: int, digest: Callable[[str], str], count: int = QUERIES) -> list[Query]:
    """A deterministic mix of what people type, sampled from the rows that exist at this size."""
    sample = random.Random(SEED + 1)
    picks = sorted(sample.sample(range(1, n + 1), min(count, n)))
    rows: dict[int, Row] = {}
    wanted = set(picks)
    for row in generate(n, digest):
        if row.internal_id in wanted:
            rows[row.internal_id] = row
    rnd = random.Random(SEED + 2)
    queries: list[Query] = []
    for i in range(count):
        row = rows[picks[i % len(picks)]]
        words = row.company_name.split()
        roll = rnd.random()
        if roll < 0.30:  # a name with one typo in one of its first three words
            j = rnd.randrange(min(3, len(words)))
            typed = [*words[:j], _typo(words[j], rnd), *words[j + 1 : 3]]
            queries.append(Query("name typo", " ".join(typed), row.internal_id))
        elif roll < 0.50:  # typeahead: the first 6 to 16 characters
            prefix = row.company_name[: rnd.randrange(6, 17)].rstrip()
            queries.append(Query("name prefix", prefix, row.internal_id))
        elif roll < 0.60:
            queries.append(Query("whole name", row.company_name, row.internal_id))
        elif roll < 0.70:
            queries.append(Query("entity id", row.entity_id, row.internal_id))
        elif roll < 0.78:
            queries.append(Query("tax number", row.tax_number, row.internal_id))
        elif roll < 0.86:
            queries.append(Query("email domain", "@" + row.email_domain, row.internal_id))
        elif roll < 0.92:
            queries.append(Query("city", row.city, row.internal_id))
        else:  # one rep looking through their own book
            two_words = " ".join(words[:2])
            rep_typed = _typo(two_words, rnd)
            queries.append(
                Query("rep + name typo", rep_typed, row.internal_id, sales_rep_id=row.sales_rep_id)
            )
    return queries


# --- running -----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))
    return ordered[k]


@dataclass
class Result:
    backend: str
    size: int
    build_s: float
    baseline_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    by_kind: dict[str, tuple[float, float]]
    found_rate: float
    hit_rate: dict[str, float]  # per kind: share of queries whose source customer was among the results
    vocabulary_words: int = 0
    vocabulary_bytes: int = 0


def measure(factory: sessionmaker[Session], search: CustomerSearch, queries: list[Query], n: int) -> Result:
    # Baseline: the cheapest round trip through the same session factory (primary-key lookup).
    rnd = random.Random(SEED + 3)
    base: list[float] = []
    for _ in range(300):
        key = rnd.randrange(1, n + 1)
        t0 = time.perf_counter()
        with factory() as session:
            session.execute(select(NsCustomer.company_name).where(NsCustomer.internal_id == key)).one()
        base.append((time.perf_counter() - t0) * 1000)
    for q in queries[:50]:  # warm caches as a running service would have them
        search.search(q.text, sales_rep_id=q.sales_rep_id)
    times: list[float] = []
    kinds: dict[str, list[float]] = {}
    hits: dict[str, list[bool]] = {}
    found = 0
    for q in queries:
        t0 = time.perf_counter()
        matches = search.search(q.text, sales_rep_id=q.sales_rep_id)
        elapsed = (time.perf_counter() - t0) * 1000
        times.append(elapsed)
        kinds.setdefault(q.kind, []).append(elapsed)
        hits.setdefault(q.kind, []).append(any(m.internal_id == q.source_id for m in matches))
        found += bool(matches)
    return Result(
        backend="",
        size=n,
        build_s=0.0,
        baseline_ms=statistics.median(base),
        p50_ms=statistics.median(times),
        p99_ms=percentile(times, 99),
        max_ms=max(times),
        by_kind={k: (statistics.median(v), percentile(v, 99)) for k, v in sorted(kinds.items())},
        found_rate=found / len(queries),
        hit_rate={k: sum(v) / len(v) for k, v in hits.items()},
    )


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'mirror.db'}"


@contextmanager
def postgresql_database(admin_url: str) -> Iterator[str]:
    admin = create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    name = f"credit_desk_search_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_one(backend: str, n: int, queries: list[Query], digest: Callable[[str], str], pg_url: str) -> Result:
    database = sqlite_database() if backend == "sqlite" else postgresql_database(pg_url)
    with database as url:
        engine = make_engine(url)
        try:
            t0 = time.perf_counter()
            migrate.upgrade(engine, "0001")
            loader = load_sqlite if backend == "sqlite" else load_postgresql
            loader(engine, generate(n, digest))
            migrate.upgrade(engine)  # builds the search indexes over the loaded rows
            if backend == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("ANALYZE ns_customers"))
            build_s = time.perf_counter() - t0
            print(f"  {backend:<10} {n:>9,} rows built in {build_s:6.1f} s", file=sys.stderr, flush=True)
            factory = make_session_factory(engine)
            search = CustomerSearch(factory, digest=digest)
            result = measure(factory, search, queries, n)
            result.backend, result.build_s = backend, build_s
            result.vocabulary_words = len(search.vocabulary)
            result.vocabulary_bytes = search.vocabulary.approximate_bytes()
            return result
        finally:
            engine.dispose()


def report(results: list[Result]) -> str:
    out = io.StringIO()
    out.write(
        f"{'size':>9}  {'backend':<10} {'build s':>8} {'base ms':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'p50/base':>9} {'p99/base':>9} {'found':>6}\n"
    )
    for r in results:
        out.write(
            f"{r.size:>9,}  {r.backend:<10} {r.build_s:>8.1f} {r.baseline_ms:>8.2f} {r.p50_ms:>7.2f} "
            f"{r.p99_ms:>7.2f} {r.max_ms:>7.2f} {r.p50_ms / r.baseline_ms:>8.1f}x "
            f"{r.p99_ms / r.baseline_ms:>8.1f}x {r.found_rate:>6.1%}\n"
        )
    out.write("\nname vocabulary in memory: ")
    out.write(
        "; ".join(
            f"{r.backend} {r.size:,}: {r.vocabulary_words:,} words, {r.vocabulary_bytes / 1e6:.1f} MB"
            for r in results
        )
    )
    out.write("\n\np50 / p99 ms by query kind\n")
    kinds = sorted({k for r in results for k in r.by_kind})
    out.write(f"{'kind':<16}" + "".join(f"{f'{r.backend} {r.size:,}':>24}" for r in results) + "\n")
    for kind in kinds:
        cells = "".join(
            f"{f'{r.by_kind[kind][0]:.2f} / {r.by_kind[kind][1]:.2f}':>24}"
            if kind in r.by_kind
            else f"{'-':>24}"
            for r in results
        )
        out.write(f"{kind:<16}{cells}\n")
    out.write("\nshare of queries whose source customer is among the 25 results\n")
    out.write(f"{'kind':<16}" + "".join(f"{f'{r.backend} {r.size:,}':>24}" for r in results) + "\n")
    for kind in kinds:
        cells = "".join(f"{r.hit_rate[kind]:>24.1%}" if kind in r.hit_rate else f"{'-':>24}" for r in results)
        out.write(f"{kind:<16}{cells}\n")
    return out.getvalue()


def parse_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated mirror sizes")
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="cluster to create the bench database in")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in parse_list(args.sizes)]
    except ValueError:
        parser.error("--sizes must be comma-separated integers, e.g. 100000,1000000")
    backends = parse_list(args.backends)
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown or not backends:
        parser.error(f"--backends takes sqlite and/or postgresql, not {sorted(unknown) or 'nothing'}")
    if any(s < 1 for s in sizes):
        parser.error("--sizes must be positive")
    digest = FederalIdCipher([BENCH_KEY]).digest
    results: list[Result] = []
    for n in sizes:
        queries = make_queries(n, digest)
        for backend in backends:
            results.append(run_one(backend, n, queries, digest, args.pg_url))
    print(f"customer search, {QUERIES:,} mixed queries per size and backend (limit 25)\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
