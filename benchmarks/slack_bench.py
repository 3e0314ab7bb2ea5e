"""Time to the HTTP response on /slack/events: Credit Desk beside a bare Bolt app that only acks.

Both run under gunicorn (gthread) with the same workers and threads, receive the same signed requests from
20 concurrent clients (slash commands, button clicks and modal submissions), in alternating rounds within one
run, so that the ratio between them survives a noisy shared machine.

    python benchmarks/slack_bench.py [--backend sqlite|postgresql] [--requests 1200] [--clients 20]
                                     [--web-workers N --redis-url redis://127.0.0.1:6379/13]

The clients are cheap, so that a closed loop measures the servers rather than the load generator: every
request is signed and encoded before the clock starts, and the clients are non-blocking sockets on an event
loop in `--generator-procs` processes of their own (no HTTP library, no threads). Several web workers need a
real Redis (`--redis-url`); Credit Desk then runs a `credit-desk worker` process beside `serve`, as deployed.

Credit Desk answers Slack's Web API calls against a loopback mock; every approve submission decides a
different application (seeded through the intake API first), so each one is a real decision.
"""

from __future__ import annotations

import argparse
import errno
import heapq
import itertools
import json
import multiprocessing
import os
import random
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

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
def process(
    args: list[str], env: dict[str, str], cwd: Path, name: str, port: int | None, grace: float = 30
) -> Iterator[int]:
    """Run `args` with its output in `cwd/name.log`; with a port, wait until it answers /healthz."""
    log_path = cwd / f"{name}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while port is not None and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(log_path.read_text())
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()  # `credit-desk worker` finishes its jobs first; the benchmark has no use for them
            proc.wait(10)
        log.close()


KINDS = ("command", "click", "submit")


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds used so far by these processes and all their descendants (Linux /proc; 0 elsewhere)."""
    children: dict[int, list[int]] = defaultdict(list)
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        pid = int(entry.parent.name)
        stats[pid] = fields
        children[int(fields[1])].append(pid)
    total, todo = 0, list(roots)
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += int(stats[pid][11]) + int(stats[pid][12])  # utime, stime (fields 14 and 15)
        todo.extend(children.get(pid, ()))
    return total / os.sysconf("SC_CLK_TCK")


def requests_for(n: int, app_ids: list[int], kinds: tuple[str, ...] = KINDS) -> list[tuple[str, bytes, str]]:
    """(kind, body, content type): slash commands, button clicks and submissions in turn (as many of each)."""
    out: list[tuple[str, bytes, str]] = []
    submit_ids = iter(app_ids)
    for i in range(n):
        kind = kinds[i % len(kinds)]
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
            values: dict[str, dict[str, dict[str, Any]]] = {
                BlockId.TERMS: {
                    ActionId.TERMS: {"type": "static_select", "selected_option": {"value": "Net 30"}}
                },
                BlockId.CREDIT_LIMIT: {ActionId.CREDIT_LIMIT: {"type": "plain_text_input", "value": "25000"}},
                BlockId.NOTE: {ActionId.NOTE: {"type": "plain_text_input", "value": None}},
            }
            body = interaction_body(view_submission_payload(view, values, user_id=ANALYST))
        out.append((kind, body.encode(), FORM))
    return out


def prepare(batch: list[tuple[str, bytes, str]], host: str, keepalive: bool) -> list[tuple[str, bytes]]:
    """Each request as the exact bytes to send: signed now (Slack's replay window is 5 minutes), so that the
    clients only write bytes and read the answer while the clock runs."""
    out = []
    for kind, body, ctype in batch:
        headers = {
            "Host": host,
            "Content-Type": ctype,
            "Content-Length": str(len(body)),
            **sign(SECRET, body),
            "Connection": "keep-alive" if keepalive else "close",
        }
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out.append((kind, f"POST /slack/events HTTP/1.1\r\n{head}\r\n".encode("latin-1") + body))
    return out


class _Client:
    """One simulated Slack client: its requests, their due times and its connection's state."""

    __slots__ = ("buf", "dues", "index", "items", "late", "next", "pending", "sent", "sock")

    def __init__(self, index: int, items: list[tuple[str, bytes]], dues: list[float] | None) -> None:
        self.index = index
        self.items = items
        self.dues = dues  # absolute perf_counter() times (paced), or None (closed loop)
        self.next = 0
        self.sock: socket.socket | None = None
        self.pending = b""
        self.buf = b""
        self.sent = 0.0
        self.late = 0.0


def _response(buf: bytes) -> tuple[int, bool, bytes] | None:
    """(status, server closes, body) once `buf` holds a whole response; None while it does not yet."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = None, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = value.strip().lower() == "close"
    if length is None:
        raise RuntimeError(f"a response without Content-Length: {lines[0]}")
    if len(buf) < end + 4 + length:
        return None
    return status, close, buf[end + 4 : end + 4 + length]


def drive(
    addr: tuple[str, int], clients: list[tuple[list[tuple[str, bytes]], list[float] | None]], start_at: float
) -> list[tuple[str, float, float]]:
    """Run `clients` on one event loop (non-blocking sockets, no threads); (kind, ms to response, ms late).

    A closed-loop client (no due times) keeps one keep-alive connection and sends its next request the moment
    the last is answered; a paced client opens a connection per request at each due time.
    """
    sel = selectors.DefaultSelector()
    results: list[tuple[str, float, float]] = []
    cs = [_Client(n, items, dues) for n, (items, dues) in enumerate(c for c in clients if c[0])]
    timers = [(c.dues[0] if c.dues else start_at, n) for n, c in enumerate(cs)]
    heapq.heapify(timers)
    active = len(cs)

    def begin(c: _Client, due: float) -> None:
        c.sent = time.perf_counter()
        c.late = (c.sent - due) * 1000 if c.dues else 0.0
        c.pending = c.items[c.next][1]
        c.buf = b""
        if c.sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            err = sock.connect_ex(addr)
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
            c.sock = sock
            sel.register(sock, selectors.EVENT_WRITE, c)
        else:
            sel.modify(c.sock, selectors.EVENT_WRITE, c)
            write(c)

    def write(c: _Client) -> None:
        assert c.sock is not None
        try:
            n = c.sock.send(c.pending)
        except BlockingIOError:
            return
        c.pending = c.pending[n:]
        if not c.pending:
            sel.modify(c.sock, selectors.EVENT_READ, c)

    def read(c: _Client) -> None:
        nonlocal active
        assert c.sock is not None
        data = c.sock.recv(65536)
        done = time.perf_counter()
        if not data:
            raise RuntimeError("the server closed the connection before answering")
        c.buf += data
        answer = _response(c.buf)
        if answer is None:
            return
        status, close, body = answer
        kind = c.items[c.next][0]
        if status != 200:
            raise RuntimeError(f"{kind}: {status} {body[:200]!r}")
        results.append((kind, (done - c.sent) * 1000, c.late))
        c.next += 1
        if close or c.dues is not None or c.next == len(c.items):
            sel.unregister(c.sock)
            c.sock.close()
            c.sock = None
        if c.next == len(c.items):
            active -= 1
        elif c.dues is None:
            begin(c, done)
        else:
            heapq.heappush(timers, (c.dues[c.next], c.index))

    while active:
        now = time.perf_counter()
        while timers and timers[0][0] <= now:
            due, n = heapq.heappop(timers)
            begin(cs[n], due)
        timeout = max(0.0, timers[0][0] - time.perf_counter()) if timers else None
        for key, mask in sel.select(timeout):
            c = key.data
            if mask & selectors.EVENT_WRITE:
                if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise RuntimeError("could not connect to the server")
                write(c)
            else:
                read(c)
    sel.close()
    return results


Job = tuple[tuple[str, int], list[tuple[list[tuple[str, bytes]], list[float] | None]], float]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generator_main(conn: Connection) -> None:
    """A load generator process: runs each job it is sent and answers (results, CPU seconds, error)."""
    while (job := conn.recv()) is not None:
        before = _cpu_seconds()
        try:
            results, error = drive(*job), None
        except Exception as exc:  # reported to the parent, which stops the run
            results, error = [], repr(exc)
        conn.send((results, _cpu_seconds() - before, error))


class Generator:
    """`procs` load generator processes (0: the clients run in this process) and their CPU time so far."""

    def __init__(self, procs: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.links: list[tuple[BaseProcess, Connection]] = []
        for _ in range(procs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=generator_main, args=(child,), daemon=True)
            proc.start()
            self.links.append((proc, parent))
        self.cpu = 0.0  # generator processes (or, with procs=0, this whole process), seconds
        self.parent_cpu = 0.0  # this process meanwhile: the mock Slack API's threads
        self.requests = 0

    def close(self) -> None:
        for proc, conn in self.links:
            conn.send(None)
            proc.join(10)

    def fire(
        self,
        base: str,
        batch: list[tuple[str, bytes, str]],
        clients: int,
        rate: float | None = None,
        seed: int = 7,
    ) -> dict[str, list[float]]:
        """Send `batch` from `clients` clients and time each request to its HTTP response (ms).

        `rate=None` is a closed loop: each client sends its next request the moment the last one is
        answered, so the server is saturated and the timings measure its throughput. With `rate` (requests
        per second over all clients) each client sends on its own Poisson schedule (the same seeded schedule
        for both apps). Requests are timed from when they are sent; how late each was sent against its
        schedule is kept under "_late", so that a server slow enough to hold its clients back (coordinated
        omission) shows there rather than hiding. Every request is signed and encoded before the clock
        starts.
        """
        host, port = base.removeprefix("http://").rsplit(":", 1)
        prepared = prepare(batch, f"{host}:{port}", keepalive=rate is None)
        rng = random.Random(seed)
        start_at = time.perf_counter() + 0.3
        per_client: list[tuple[list[tuple[str, bytes]], list[float] | None]] = []
        for i in range(clients):
            items = prepared[i::clients]
            if rate:
                gaps = [rng.expovariate(rate / clients) for _ in items]
                per_client.append((items, list(itertools.accumulate(gaps, initial=start_at))[1:]))
            else:
                per_client.append((items, None))
        addr = (host, int(port))
        parent_before = _cpu_seconds()
        if self.links:
            shares = [per_client[i :: len(self.links)] for i in range(len(self.links))]
            for (_, conn), share in zip(self.links, shares, strict=True):
                conn.send((addr, share, start_at))
            answers = [conn.recv() for _, conn in self.links]
            self.parent_cpu += _cpu_seconds() - parent_before
        else:
            try:
                answers = [(drive(addr, per_client, start_at), _cpu_seconds() - parent_before, None)]
            except Exception as exc:
                answers = [([], 0.0, repr(exc))]
        timings: dict[str, list[float]] = defaultdict(list)
        for results, cpu, error in answers:
            if error is not None:
                raise RuntimeError(f"load generator: {error}")
            self.cpu += cpu
            for kind, elapsed, late in results:
                timings[kind].append(elapsed)
                timings["all"].append(elapsed)
                timings["_late"].append(late)
        self.requests += len(batch)
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


def psql(sql: str) -> None:
    cmd = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c", sql]
    subprocess.run(cmd, check=True, capture_output=True)


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
    parser.add_argument(
        "--web-workers",
        type=int,
        default=1,
        help="gunicorn worker processes, both apps (more than 1 needs --redis-url: fakeredis is per process)",
    )
    parser.add_argument(
        "--redis-url",
        help="run Credit Desk on this Redis with a separate `credit-desk worker` process instead of the "
        "embedded fakeredis and worker thread; its database is FLUSHED first, so give it one of its own "
        "(e.g. redis://127.0.0.1:6379/13)",
    )
    parser.add_argument(
        "--generator-procs",
        type=int,
        default=2,
        help="load generator processes sharing the clients (0: in this process, beside the mock Slack API)",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help="request kinds to send, comma-separated (e.g. one kind alone, to profile it)",
    )
    args = parser.parse_args()
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if not kinds or set(kinds) - set(KINDS):
        parser.error(f"--kinds takes some of {','.join(KINDS)}")
    if args.web_workers > 1 and not args.redis_url:
        parser.error("--web-workers above 1 needs --redis-url (the embedded fakeredis lives in one process)")

    load_before = os.getloadavg()
    # First, before any thread exists: the generator processes, which take no part in anything else.
    generator = Generator(args.generator_procs)
    work = Path(tempfile.mkdtemp(prefix="slack-bench-"))
    users = [SlackUser(ANALYST, "Bench Analyst", "analyst@bench.example")]
    with MockSlackServer(users=users) as slack, ExitStack() as cleanup:
        cleanup.callback(generator.close)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_"))},
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.url,
            "INTAKE_API_TOKEN": TOKEN,
            "ANALYSTS": ANALYST,
            "ANALYSTS_CHANNEL": "C0CREDITQ1",
            "ANALYST_APPROVAL_LIMIT": "1000000",
            "WEB_WORKERS": str(args.web_workers),
            "WEB_THREADS": str(args.threads),
            "LOG_LEVEL": "WARNING",
            "INTAKE_RATE_LIMIT": "0",  # seeding sends hundreds of applications at once
        }
        if args.redis_url:
            import redis

            redis.Redis.from_url(args.redis_url).flushdb()
            env["REDIS_URL"] = args.redis_url
        if args.backend == "postgresql":
            pg_name = f"credit_desk_bench_{uuid.uuid4().hex[:8]}"
            psql(f'CREATE DATABASE "{pg_name}"')
            cleanup.callback(psql, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{pg_name}"
            env["AUTO_MIGRATE"] = "true"
            env["FEDERAL_ID_KEY"] = Fernet.generate_key().decode()
        rates = [float(r) for r in args.rates.split(",") if float(r) > 0]
        total = args.requests * len(rates) + args.saturation_requests + 30
        submits = total * kinds.count("submit") // len(kinds) + 1
        desk_port, bare_port = free_port(), free_port()
        reports: list[
            tuple[float | None, dict[str, dict[str, list[float]]], dict[str, float], dict[str, float]]
        ] = []
        bare_cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(args.web_workers),
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
        desk, bare = f"http://127.0.0.1:{desk_port}", f"http://127.0.0.1:{bare_port}"
        pids = {
            "credit-desk": [cleanup.enter_context(process(desk_cmd, env, work, "credit-desk", desk_port))]
        }
        if args.redis_url:  # after serve has migrated the database
            worker_cmd = [sys.executable, "-m", "bot", "worker"]
            pids["credit-desk"].append(
                cleanup.enter_context(process(worker_cmd, env, work, "worker", None, grace=5))
            )
        bare_env = {**env, "PYTHONPATH": str(ROOT)}
        pids["bare"] = [cleanup.enter_context(process(bare_cmd, bare_env, work, "bare", bare_port))]
        app_ids = seed_applications(desk, submits)
        # Let the worker post every announcement first: measure the handlers, not the backlog.
        slack.wait_for("chat.postMessage", len(app_ids), timeout=300)
        batch = requests_for(total, app_ids, kinds)
        bare_batch = requests_for(total, app_ids, kinds)
        generator.fire(desk, batch[:30], args.clients)  # warm-up (decides 10 applications)
        generator.fire(bare, bare_batch[:30], args.clients)
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
            cpu = {"credit-desk": 0.0, "bare": 0.0}
            for r in range(args.rounds):
                chunk = slice(at + r * per_round, at + (r + 1) * per_round)
                order = [("credit-desk", desk, batch), ("bare", bare, bare_batch)]
                if r % 2:
                    order.reverse()
                for name, base, items in order:
                    began, cpu_before = time.perf_counter(), tree_cpu(pids[name])
                    for kind, values in generator.fire(
                        base, items[chunk], args.clients, rate, seed=r
                    ).items():
                        results[name][kind].extend(values)
                    busy[name] += time.perf_counter() - began - 0.3  # fire() starts the clock 0.3 s on
                    cpu[name] += tree_cpu(pids[name]) - cpu_before
            at += per_round * args.rounds
            reports.append((rate, results, busy, cpu))

    redis_note = (
        f", Redis {args.redis_url} + 1 `credit-desk worker`" if args.redis_url else ", embedded fakeredis"
    )
    print(
        f"/slack/events, {args.clients} concurrent clients, backend {args.backend}{redis_note}, "
        f"{os.cpu_count()} cores, gunicorn {args.web_workers} worker(s) x {args.threads} threads, "
        f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    where = f"{args.generator_procs} processes" if args.generator_procs else "the benchmark process"
    print(
        f"load generator ({where}, pre-signed raw HTTP/1.1): "
        f"{generator.cpu / generator.requests * 1e6:.0f} us CPU per request; "
        f"mock Slack API (benchmark process): {generator.parent_cpu / generator.requests * 1e6:.0f} us"
    )
    for rate, results, busy, cpu in reports:
        d_all, b_all = results["credit-desk"]["all"], results["bare"]["all"]
        server_cpu = (
            f"server CPU per request (all of each app's processes): Credit Desk "
            f"{cpu['credit-desk'] / len(d_all) * 1000:.2f} ms, bare {cpu['bare'] / len(b_all) * 1000:.2f} ms"
        )
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
        print(server_cpu)
        print(
            f"{'kind':8} {'n':>5} {'desk p50':>9} {'desk p99':>9} {'bare p50':>9} {'bare p99':>9} "
            f"{'p50 ratio':>9}"
        )
        for kind in (*kinds, "all"):
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
