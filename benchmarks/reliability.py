"""Reliability suite (issue #7): processes killed, servers restarted, NetSuite and Slack misbehaving,
and minutes of load -- each run counts what was requested, completed, lost and duplicated.

    python benchmarks/reliability.py [--scenario all|web-kill|worker-kill|redis-restart|pg-restart|ns-faults|
                                                 slack-429|load] [--minutes 3] [--scale 1.0]

Run it through the shared lock: ``flock /tmp/credit-desk-bench.lock python benchmarks/reliability.py``.

Everything is started and torn down by the script, on 127.0.0.1: a PostgreSQL cluster of its own
(``initdb`` into a temporary directory as the ``postgres`` user, a free port; a fresh database per
scenario; the shared server on 5432 is never touched), a ``redis-server`` of its own per scenario
(no persistence), a NetSuite emulator and a mock Slack Web API in this process, ``credit-desk
worker`` processes and ``credit-desk serve`` (gunicorn). Scenarios (``tests/scenarios.py`` has
each one's exact description; ``tests/test_reliability.py`` runs short versions in CI):

* ``web-kill``: gunicorn workers SIGKILLed every 1.5 s while analysts request syncs through
  signed Slack link and pick submissions and approve applications; unanswered submissions are
  sent again; a second row counts the Slack messages the approvals owe;
* ``worker-kill``: ``credit-desk worker`` processes (one threaded, one forking) SIGKILLed mid-sync
  every 1.5 s and started again;
* ``redis-restart``: the ``redis-server`` (no persistence) restarted while syncs are queued and run;
* ``pg-restart``: the cluster restarted (``-m fast``) and crashed (``-m immediate``, 2 s down)
  five times while syncs are requested and run, each time with a NetSuite request on the wire;
* ``ns-faults``: 429 storms, 500s, dropped connections, writes held past the read timeout, slow
  answers and customers whose PATCH always fails, during a batch of syncs; failed syncs are
  retried as a person would;
* ``slack-429``: Slack answers 429 with ``Retry-After`` for 20 s on chat.postMessage,
  chat.update and views.open while applications arrive and are decided;
* ``load``: ``--minutes`` of mixed signed Slack traffic from 8 closed-loop clients.

The table gives requested / completed / lost / duplicated per scenario (lost and duplicated must
be 0); the lines under it what else each scenario measured. Exit status 1 if any scenario lost
or doubled anything or left something unfinished.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python benchmarks/reliability.py`

from tests import scenarios
from tests.harness import PostgresCluster, postgres_bin_dir
from tests.scenarios import Outcome

SCENARIOS = ("web-kill", "worker-kill", "redis-restart", "pg-restart", "ns-faults", "slack-429", "load")


def run_scenario(name: str, cluster: PostgresCluster, work: Path, args: argparse.Namespace) -> list[Outcome]:
    k = args.scale

    def n(value: int) -> int:
        return max(2, round(value * k))

    workdir = work / name
    if name == "web-kill":
        return scenarios.web_kill(
            cluster.create_database(),
            workdir,
            syncs=n(300),
            decisions=n(100),
            clients=6,
            web_workers=3,
            think_seconds=0.5,
            kill_every=1.5,
            max_kills=n(40),
            settle_seconds=300,
        )
    if name == "worker-kill":
        return [
            scenarios.worker_kill(
                cluster.create_database(),
                workdir,
                syncs=n(200),
                latency_ms=150.0,
                kill_every=1.5,
                max_kills=n(20),
                settle_seconds=300,
            )
        ]
    if name == "redis-restart":
        return [
            scenarios.redis_restart(
                cluster.create_database(),
                workdir,
                syncs=n(200),
                latency_ms=100.0,
                restarts=n(6),
                every=3.0,
                settle_seconds=300,
            )
        ]
    if name == "pg-restart":
        return [
            scenarios.pg_restart(
                cluster,
                workdir,
                syncs=n(120),
                clients=4,
                web_workers=2,
                think_seconds=0.5,
                outages=("restart", "crash", "restart", "crash", "crash"),
                hold_seconds=1.0,
                down_seconds=2.0,
                lease_seconds=900.0,  # production's default: no sync may need the lease to finish
                settle_seconds=300,
            )
        ]
    if name == "ns-faults":
        return [
            scenarios.ns_faults(
                cluster.create_database(),
                workdir,
                syncs=n(120),
                storm_429=n(300),
                errors_500=n(80),
                drops=n(20),
                timeouts=n(20),
                slow=n(60),
                doomed=2,
                worker_processes=2,
                settle_seconds=600,
            )
        ]
    if name == "slack-429":
        return [
            scenarios.slack_429(
                cluster.create_database(),
                workdir,
                before=n(40),
                during=n(30),
                decisions=n(40),
                details=n(30),
                storm_seconds=20.0,
                retry_after=3,
                clients=6,
                deliver_seconds=180,
            )
        ]
    if name == "load":
        return scenarios.load(
            cluster.create_database(),
            workdir,
            minutes=args.minutes,
            clients=args.clients,
            web_workers=2,
            web_threads=8,
            on_progress=print,
        )
    raise ValueError(f"unknown scenario {name!r}")


def table(outcomes: list[Outcome]) -> str:
    header = (
        f"{'scenario':25} {'unit':15} {'requested':>9} {'completed':>9} {'lost':>5} {'duplicated':>10} "
        f"{'time':>6}"
    )
    lines = [header, "-" * len(header)]
    for o in outcomes:
        lines.append(
            f"{o.scenario:25} {o.unit:15} {o.requested:>9} {o.completed:>9} {o.lost:>5} {o.duplicated:>10} "
            f"{o.seconds:>5.0f}s"
        )
    return "\n".join(lines)


def details(outcomes: list[Outcome]) -> str:
    lines: list[str] = []
    for o in outcomes:
        lines.append(f"{o.scenario}:")
        lines.extend(f"  {key.strip()}: {value}" for key, value in o.notes.items())
        for problem in o.problems[:15]:
            lines.append(f"  ! {problem}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario", default="all", help="all, or a comma-separated list of: " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the load scenario")
    parser.add_argument("--clients", type=int, default=8, help="closed-loop clients of the load scenario")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sizes of the other scenarios")
    args = parser.parse_args(argv)
    chosen = SCENARIOS if args.scenario == "all" else tuple(s.strip() for s in args.scenario.split(","))
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)} or all")
    if args.minutes <= 0 or args.scale <= 0 or args.clients < 1:
        parser.error("--minutes and --scale must be positive, --clients at least 1")
    work = Path(tempfile.mkdtemp(prefix="reliability-"))
    outcomes: list[Outcome] = []
    print(f"reliability suite: {', '.join(chosen)}; {os.cpu_count()} cores; logs in {work}")
    with PostgresCluster(postgres_bin_dir()) as cluster:
        for name in chosen:
            clock = time.monotonic()
            print(f"--- {name} ...", flush=True)
            got = run_scenario(name, cluster, work, args)
            for o in got:
                print(f"    {o.line()}", flush=True)
            print(f"--- {name} done in {time.monotonic() - clock:.0f} s", flush=True)
            outcomes.extend(got)
    print()
    print(table(outcomes))
    print()
    print(details(outcomes))
    ok = all(o.ok for o in outcomes)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\nsomething was lost, doubled or left unfinished; logs kept in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
