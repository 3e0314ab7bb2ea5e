"""The cross-process NetSuite limiter against an account capped at 5 concurrent requests.

    python benchmarks/limiter_bench.py [--processes 10] [--seconds 20] [--redis-url redis://127.0.0.1:6379/9]

A NetSuite emulator (concurrency cap 5, 50-150 ms per request) serves on 127.0.0.1 from this
process. N spawned processes each build a NetSuite client whose limiter is a
`RedisLeaseSemaphore` (limit 5) on the real Redis, built by `netsuite.factory.build_limiter` as
the product builds it, and all start together on a barrier, each
reading customers one request at a time until a deadline. Printed, side by side:

* the most requests the emulator ever had in flight (must not exceed 5) and the 429s it sent;
* throughput against the cap-bound ideal: 5 / (mean time the emulator took to serve a request),
  counted over the window in which every process was still sending.

The same load is then run once more with an in-process limiter per process (the shared limit
split naively: each process thinks it may send 5), to show what the shared limiter prevents.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from typing import Any

CAP = 5


def worker(ns_url: str, redis_url: str | None, seconds: float, offset: int, barrier: Any, out: Any) -> None:
    from netsuite.client import NetSuiteClient
    from netsuite.config import NetSuiteConfig
    from netsuite.factory import build_limiter
    from netsuite.limiter import Limiter, LocalLimiter
    from storage.redis import make_redis

    dummy = "unused"  # the emulator runs with authentication off
    config = NetSuiteConfig(
        account_id="1234567_SB1", base_url=ns_url, auth_mode="tba", tba_consumer_key=dummy,
        tba_consumer_secret=dummy, tba_token_id=dummy, tba_token_secret=dummy,
        backoff_base_seconds=0.05, backoff_max_seconds=1.0, max_attempts=20,
    )  # fmt: skip
    limiter: Limiter
    if redis_url is not None:
        limiter = build_limiter(config.model_copy(update={"concurrency_limit": CAP}), make_redis(redis_url))
    else:
        limiter = LocalLimiter(CAP)
    errors = done = 0
    with NetSuiteClient(config, None, limiter) as client:
        client.get_customer(1000, expand_sub_resources=False)  # open the connection before the start
        barrier.wait()
        deadline = time.monotonic() + seconds
        for n in range(1_000_000):  # bounded; the deadline ends it
            if time.monotonic() >= deadline:
                break
            try:
                client.get_customer(1000 + (offset + n) % 40, expand_sub_resources=False)
                done += 1
            except Exception:  # counted and reported
                errors += 1
        out.put({"done": done, "errors": errors})


def run(ns: Any, processes: int, seconds: float, redis_url: str | None) -> dict[str, Any]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    barrier = context.Barrier(processes + 1)
    procs = [
        context.Process(target=worker, args=(ns.url, redis_url, seconds, i * 7, barrier, queue))
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)  # every worker is connected and warmed up
    ns.stats.reset()
    ns.log.clear()
    results = [queue.get(timeout=seconds + 300) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    stats = ns.stats.snapshot()
    entries = ns.log.entries()
    served = [e.duration_ms for e in entries if e.status == 200]
    # Throughput over the window in which every process was still sending (no ramp-down tail).
    first = min(e.started for e in entries)
    window = [e for e in entries if e.status == 200 and (e.started - first).total_seconds() < seconds - 1]
    mean_ms = statistics.fmean(served)
    ideal = CAP / (mean_ms / 1000)
    achieved = len(window) / (seconds - 1)
    return {
        "ok": len(served),
        "errors": sum(r["errors"] for r in results),
        "max_in_flight": stats.max_in_flight,
        "429": stats.by_status.get(429, 0),
        "mean_ms": mean_ms,
        "achieved": achieved,
        "ideal": ideal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long every process sends")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()

    from netsuite.emulator import EmulatorServer

    print(
        f"limiter benchmark: {args.processes} processes for {args.seconds:g} s each, "
        f"emulator cap {CAP}, latency 50-150 ms"
    )
    rows = []
    with EmulatorServer(seed=3, customers=100, concurrency_cap=CAP, latency_ms=50, jitter_ms=100) as ns:
        for label, redis_url in (("redis lease semaphore", args.redis_url), ("per-process only", None)):
            rows.append((label, run(ns, args.processes, args.seconds, redis_url)))
    print(
        f"{'limiter':<22}{'ok':>6}{'errors':>7}{'max in flight':>14}{'429s':>6}"
        f"{'mean ms':>9}{'req/s':>8}{'ideal req/s':>12}{'fraction':>10}"
    )
    for label, r in rows:
        print(
            f"{label:<22}{r['ok']:>6}{r['errors']:>7}{r['max_in_flight']:>14}{r['429']:>6}"
            f"{r['mean_ms']:>9.1f}{r['achieved']:>8.1f}{r['ideal']:>12.1f}{r['achieved'] / r['ideal']:>10.2f}"
        )
    print(f"goals (redis): max in flight <= {CAP}, fraction >= 0.9")


if __name__ == "__main__":
    main()
