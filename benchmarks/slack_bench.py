"""Time to the HTTP response on /slack/events: Credit Desk beside a bare Bolt app that only acks.

Both run under gunicorn (gthread) with the same workers and threads, receive the same signed requests from
20 concurrent clients (slash commands, button clicks and modal submissions), in alternating rounds within one
run, so that the ratio between them survives a noisy shared machine.

    python benchmarks/slack_bench.py [--backend sqlite|postgresql] [--requests 1200] [--clients 20]

Credit Desk answers Slack's Web API calls against a loopback mock; every approve submission decides a
different application (seeded through the intake API first), so each one is a real decision.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blocks.ids import ActionId, BlockId, CallbackId  # noqa: E402
from bot.sandbox.signing import (  # noqa: E402
    block_actions_payload,
    button_action,
    interaction_body,
    new_trigger_id,
    sign,
    slash_command_body,
    view_submission_payload,
)
from bot.sandbox.slack_api import MockSlackServer, SlackUser  # noqa: E402

SECRET = "bench-signing-secret"  # noqa: S105 - a loopback benchmark's own secret
TOKEN = "bench-intake-token"  # noqa: S105
ANALYST = "U0BENCHAN1"
FORM = "application/x-www-form-urlencoded"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(args: list[str], env: dict[str, str], cwd: Path, port: int) -> Iterator[str]:
    log = (cwd / f"server-{port}.log").open("w")
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError((cwd / f"server-{port}.log").read_text())
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def requests_for(n: int, app_ids: list[int]) -> list[tuple[str, bytes, str]]:
    """(kind, body, content type): a third each of slash commands, button clicks and submissions."""
    out: list[tuple[str, bytes, str]] = []
    submit_ids = iter(app_ids)
    for i in range(n):
        kind = ("command", "click", "submit")[i % 3]
        if kind == "command":
            body = slash_command_body("/credit", "pending", ANALYST)
        elif kind == "click":
            value = json.dumps({"a": app_ids[i % len(app_ids)]})
            payload = block_actions_payload(
                [button_action(ActionId.DETAILS, value)],
                user_id=ANALYST,
                view={"id": "V0BENCH001", "type": "home", "blocks": [], "state": {"values": {}}},
                trigger_id=new_trigger_id(),
            )
            body = interaction_body(payload)
        else:
            app_id = next(submit_ids)
            view = {
                "type": "modal",
                "callback_id": CallbackId.APPROVE,
                "private_metadata": json.dumps({"a": app_id}, separators=(",", ":")),
                "blocks": [],
            }
            values = {
                BlockId.TERMS: {
                    ActionId.TERMS: {"type": "static_select", "selected_option": {"value": "Net 30"}}
                },
                BlockId.CREDIT_LIMIT: {ActionId.CREDIT_LIMIT: {"type": "plain_text_input", "value": "25000"}},
                BlockId.NOTE: {ActionId.NOTE: {"type": "plain_text_input", "value": None}},
            }
            body = interaction_body(view_submission_payload(view, values, user_id=ANALYST))
        out.append((kind, body.encode(), FORM))
    return out


def fire(
    base: str, batch: list[tuple[str, bytes, str]], clients: int, rate: float | None = None, seed: int = 7
) -> dict[str, list[float]]:
    """Send `batch` from `clients` threads and time each request to its HTTP response (ms).

    `rate=None` is a closed loop: each client sends its next request the moment the last one is answered, so
    the server is saturated and the timings measure its throughput. With `rate` (requests per second over all
    clients) each client sends on its own Poisson schedule (the same seeded schedule for both apps). Requests
    are timed from when they are sent; how late each was sent against its schedule is kept under "_late", so
    that a server slow enough to hold its clients back (coordinated omission) shows there rather than hiding.
    """
    timings: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()
    rng = random.Random(seed)
    per_client = [batch[i::clients] for i in range(clients)]
    gaps = [[rng.expovariate(rate / clients) if rate else 0.0 for _ in items] for items in per_client]
    start_at = time.perf_counter() + 0.2

    def run_client(items: list[tuple[str, bytes, str]], waits: list[float]) -> None:
        due = start_at
        # Paced clients open a connection per request (independent users; an idle keep-alive connection
        # would be closed by gunicorn after 2 s, racing the next request); a closed loop keeps its one.
        keepalive = httpx.Limits(max_keepalive_connections=None if rate is None else 0)
        with httpx.Client(base_url=base, timeout=30, limits=keepalive) as client:
            for (kind, body, ctype), gap in zip(items, waits, strict=True):
                if rate:
                    due += gap
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                headers = {**sign(SECRET, body), "Content-Type": ctype}
                start = time.perf_counter()
                late = (start - due) * 1000 if rate else 0.0
                r = client.post("/slack/events", content=body, headers=headers)
                elapsed = (time.perf_counter() - start) * 1000
                if r.status_code != 200:
                    raise RuntimeError(f"{kind}: {r.status_code} {r.text[:200]}")
                with lock:
                    timings[kind].append(elapsed)
                    timings["all"].append(elapsed)
                    timings["_late"].append(late)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run_client, per_client, gaps))
    return timings


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seed_applications(base: str, n: int) -> list[int]:
    ids = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        for i in range(n):
            body = {
                "reference": f"bench-{uuid.uuid4().hex[:12]}-{i}",
                "business_name": f"Bench Supply {i} LLC",
                "federal_id": "12-3456789",
                "billing_address": {
                    "line1": "1 Main St",
                    "city": "Austin",
                    "state": "TX",
                    "postal_code": "78701",
                },
                "statements_contact": {"name": "Pat", "email": "ap@bench.example"},
                "requested_terms": "Net 30",
                "requested_credit_limit": {"amount": "25000", "currency": "USD"},
                "applicant": {"name": "Jo"},
            }
            r = c.post("/api/applications", json=body)
            r.raise_for_status()
            ids.append(int(r.json()["id"]))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=1200, help="per app and rate, over all rounds")
    parser.add_argument(
        "--rates",
        default="40",
        help="paced loads to measure, requests/s over all clients, comma-separated (0 = closed loop only)",
    )
    parser.add_argument(
        "--saturation-requests",
        type=int,
        default=600,
        help="per app, sent in a closed loop after the paced runs to measure capacity (0 to skip)",
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads per worker, both apps")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="slack-bench-"))
    users = [SlackUser(ANALYST, "Bench Analyst", "analyst@bench.example")]
    with MockSlackServer(users=users) as slack:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_"))},
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.url,
            "INTAKE_API_TOKEN": TOKEN,
            "ANALYSTS": ANALYST,
            "ANALYSTS_CHANNEL": "C0CREDITQ1",
            "ANALYST_APPROVAL_LIMIT": "1000000",
            "WEB_THREADS": str(args.threads),
            "LOG_LEVEL": "WARNING",
            "INTAKE_RATE_LIMIT": "0",  # seeding sends hundreds of applications at once
        }
        pg_name = None
        if args.backend == "postgresql":
            pg_name = f"credit_desk_bench_{uuid.uuid4().hex[:8]}"
            subprocess.run(
                [
                    "psql",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "test",
                    "-c",
                    f'CREATE DATABASE "{pg_name}"',
                ],
                check=True,
                capture_output=True,
            )
            env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{pg_name}"
            env["AUTO_MIGRATE"] = "true"
            env["FEDERAL_ID_KEY"] = Fernet.generate_key().decode()
        rates = [float(r) for r in args.rates.split(",") if float(r) > 0]
        total = args.requests * len(rates) + args.saturation_requests + 30
        submits = total // 3 + 1
        desk_port, bare_port = free_port(), free_port()
        reports: list[tuple[float | None, dict[str, dict[str, list[float]]], dict[str, float]]] = []
        bare_cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            str(args.threads),
            "--bind",
            f"127.0.0.1:{bare_port}",
            "--log-level",
            "warning",
            "benchmarks.bare_bolt:create_app()",
        ]
        desk_cmd = [sys.executable, "-m", "bot", "serve", "--port", str(desk_port)]
        bare_env = {**env, "PYTHONPATH": str(ROOT)}
        try:
            with (
                process(desk_cmd, env, work, desk_port) as desk,
                process(bare_cmd, bare_env, work, bare_port) as bare,
            ):
                app_ids = seed_applications(desk, submits)
                # Let the worker post every announcement first: measure the handlers, not the backlog.
                slack.wait_for("chat.postMessage", len(app_ids), timeout=300)
                batch = requests_for(total, app_ids)
                bare_batch = requests_for(total, app_ids)
                fire(desk, batch[:30], args.clients)  # warm-up (decides 10 applications)
                fire(bare, bare_batch[:30], args.clients)
                phases: list[tuple[float | None, int]] = [(r, args.requests) for r in rates]
                if args.saturation_requests:
                    phases.append((None, args.saturation_requests))
                at = 30
                for rate, n in phases:
                    per_round = n // args.rounds
                    results: dict[str, dict[str, list[float]]] = {
                        "credit-desk": defaultdict(list),
                        "bare": defaultdict(list),
                    }
                    busy = {"credit-desk": 0.0, "bare": 0.0}
                    for r in range(args.rounds):
                        chunk = slice(at + r * per_round, at + (r + 1) * per_round)
                        order = [("credit-desk", desk, batch), ("bare", bare, bare_batch)]
                        if r % 2:
                            order.reverse()
                        for name, base, items in order:
                            began = time.perf_counter()
                            for kind, values in fire(base, items[chunk], args.clients, rate, seed=r).items():
                                results[name][kind].extend(values)
                            busy[name] += time.perf_counter() - began
                    at += per_round * args.rounds
                    reports.append((rate, results, busy))
        finally:
            if pg_name:
                subprocess.run(
                    [
                        "psql",
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-d",
                        "test",
                        "-c",
                        f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)',
                    ],
                    capture_output=True,
                )

    print(
        f"/slack/events, {args.clients} concurrent clients, backend {args.backend}, "
        f"{os.cpu_count()} cores, gunicorn 1 worker x {args.threads} threads, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    for rate, results, busy in reports:
        d_all, b_all = results["credit-desk"]["all"], results["bare"]["all"]
        if rate is None:
            print(
                f"\nclosed loop (each client sends again as soon as it is answered): capacity "
                f"{len(d_all) / busy['credit-desk']:.0f} req/s Credit Desk, {len(b_all) / busy['bare']:.0f} "
                f"req/s bare ({len(d_all) / busy['credit-desk'] / (len(b_all) / busy['bare']):.2f} of bare)"
            )
        else:
            d_late, b_late = results["credit-desk"]["_late"], results["bare"]["_late"]
            print(
                f"\npaced: {rate:g} requests/s over all clients (Poisson arrivals); sent late against the "
                f"schedule p50/p99: Credit Desk {statistics.median(d_late):.1f}/{pct(d_late, 99):.1f} ms, "
                f"bare {statistics.median(b_late):.1f}/{pct(b_late, 99):.1f} ms"
            )
        print(
            f"{'kind':8} {'n':>5} {'desk p50':>9} {'desk p99':>9} {'bare p50':>9} {'bare p99':>9} "
            f"{'p50 ratio':>9}"
        )
        for kind in ("command", "click", "submit", "all"):
            d, b = results["credit-desk"][kind], results["bare"][kind]
            print(
                f"{kind:8} {len(d):>5} {statistics.median(d):>8.1f}ms {pct(d, 99):>8.1f}ms "
                f"{statistics.median(b):>8.1f}ms {pct(b, 99):>8.1f}ms "
                f"{statistics.median(d) / statistics.median(b):>9.2f}"
            )
        if rate is not None:
            print(
                f"goal: desk p99 <= 150 ms ({pct(d_all, 99):.1f}), p50 ratio <= 1.5 "
                f"({statistics.median(d_all) / statistics.median(b_all):.2f})"
            )


if __name__ == "__main__":
    main()
