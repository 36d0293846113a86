"""Transaction API benchmark: signed transactions per second, and latency at a fixed rate.

    python -m benchmarks.bench_api [--concurrency 64] [--count 20000] [--rate 500]
        [--rate-seconds 10] [--b-keys 4] [--driver-procs 1] [--driver raw|httpx] [--quick]

A measurement, not a test: it asserts nothing about timings. `pishkhan serve --workers 2` (dev
mode, a rate limit too high to matter) and benchmarks/floor_app.py (bare FastAPI, one row per
request, 2 workers) run one after the other, each on a fresh database of the PostgreSQL server
named by PISHKHAN_TEST_PG_URL (`make bench-api` starts a durable one), driven over loopback from
this separate process (or --driver-procs processes) with asyncio:

1. closed loop: `--concurrency` clients, each with one request in flight, `--count` in all;
   the rate of accepted (201) requests over the phase (after an untimed warm-up).
2. open loop: `--rate` requests/s for `--rate-seconds`, each sent at its scheduled time, and
   latency counted from that time (no coordinated omission).

Every transaction is signed before the clock starts (tests/e2e/client.py): each client registers
a key A and `--b-keys` keys B; A signs key.suspend / key.reinstate of the B keys in turn. The work
timed is checked: a receipt per client passes audit.receipt_check and the ledger grew by exactly
the accepted count, else the exit status is 1. Progress to stderr, the report to stdout.

The driver speaks HTTP/1.1 itself (RawPool): on the 2-core benchmark machine httpx.AsyncClient
spent about 6 ms of CPU per request against 0.2 ms here, and the driver shares the CPUs with the
server (`--driver httpx` measures with httpx instead).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from sqlalchemy import create_engine, text

from audit.receipt_check import check_receipt
from benchmarks.bench_ledger import (
    judge,
    load_average,
    log,
    machine_lines,
    percentile,
    postgresql_engine,
)
from tests.e2e.client import (
    ApiClient,
    Lane,
    encode,
    free_port,
    national_id,
    pishkhan_server,
    running,
)

PG_URL_ENV = "PISHKHAN_TEST_PG_URL"
QUICK = {"concurrency": 8, "count": 400, "rate": 100.0, "rate_seconds": 3.0, "b_keys": 2}
DRIVERS = ("raw", "httpx")
HIGH_RATE_LIMIT_PER_MINUTE = 10**9
REGISTER_THREADS = 8
HTTP_TIMEOUT_S = 60.0
START_DELAY_S = 0.2  # from the drivers' common start signal to the first request
# Idle keep-alive connections are dropped after this long: uvicorn closes them after 5 s, and a
# request sent on a connection the server is closing would fail without reaching it.
MAX_IDLE_S = 2.0
OPEN_LOOP_MAX_CONNECTIONS = 256  # beyond it, open-loop requests queue in the driver (timed)
WARMUP_PER_CLIENT = 5
MAX_CLOSED_PHASE_S = 120.0
SIGNED_WINDOW_S = 300.0  # the server refuses a created_at further than this from its clock
KEPT_ERRORS = 5
HTTP_CREATED = 201
SEED = 2024
REPO = Path(__file__).resolve().parents[1]
JSON = {"Content-Type": "application/json"}

TARGET_RATE = 1000.0  # accepted signed transactions/s
TARGET_FLOOR_RATIO = 0.5
TARGET_P99_MS = 50.0
TARGET_OFFERED_RATE = 500.0

# --- HTTP ----------------------------------------------------------------------------------------


class Pool(Protocol):
    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]: ...
    async def aclose(self) -> None: ...


class RawPool:
    """At most max_connections HTTP/1.1 keep-alive connections over asyncio streams: just what
    the benchmark needs (POST, then the status and a Content-Length body). Raises OSError,
    asyncio.IncompleteReadError or ValueError (an answer it cannot read); the connection is
    then dropped."""

    def __init__(self, base: str, max_connections: int) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer, since_s = self._idle.pop()
            if time.monotonic() - since_s < MAX_IDLE_S:
                return reader, writer
            writer.close()  # the server may have closed it already: never send on it
        return await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        async with self._slots:
            reader, writer = await self._connection()
            try:
                status, content, keep = await self._exchange(reader, writer, path, headers, body)
            except BaseException:
                writer.close()
                raise
            if keep:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return status, content

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        path: str,
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, bytes, bool]:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{lines}"
        writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        answer = await reader.readuntil(b"\r\n\r\n")
        length, keep = None, True
        for line in answer.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                keep = value != b"close"
        if length is None:
            raise ValueError("an answer without Content-Length")
        return int(answer[9:12]), await reader.readexactly(length), keep

    async def aclose(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()


class HttpxPool:
    def __init__(self, base: str, max_connections: int) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=None)
        self._http = httpx.AsyncClient(base_url=base, limits=limits, timeout=HTTP_TIMEOUT_S)

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        response = await self._http.post(path, content=body, headers=headers)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._http.aclose()


# --- the driver ---------------------------------------------------------------------------------


@dataclass
class Job:
    """One phase's work for one driver: its clients' headers and bodies, in order.

    depends: a client's request j is valid only once its request j - depends was answered (the
    same B key's previous state change); 0 when requests are independent.
    """

    base: str
    path: str
    lanes: list[tuple[dict[str, str], list[bytes]]]
    rate_per_s: float | None  # None: closed loop
    max_connections: int
    depends: int = 0
    driver: str = "raw"


@dataclass
class Outcome:
    """What a driver saw: per request its (scheduled, answered) monotonic times and status."""

    scheduled_s: list[float] = field(default_factory=list)
    done_s: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    samples: list[bytes] = field(default_factory=list)  # each client's last 201 answer
    errors: list[str] = field(default_factory=list)
    held: int = 0  # open loop: sent late because the request it depends on was unanswered
    start_s: float = math.inf
    cpu_s: float = 0.0


async def _post(pool: Pool, job: Job, lane: int, body: bytes, at: float, out: Outcome) -> bytes:
    """Post one body, record (at, answered, status); the answer when 201, else b""."""
    try:
        status, content = await pool.post(job.path, job.lanes[lane][0], body)
    except (OSError, ValueError, asyncio.IncompleteReadError, httpx.HTTPError) as exc:
        status, content = 0, type(exc).__name__.encode()  # counted, never accepted
    out.scheduled_s.append(at)
    out.done_s.append(time.monotonic())
    out.statuses.append(status)
    if status != HTTP_CREATED and len(out.errors) < KEPT_ERRORS:
        out.errors.append(f"{status}: {content[:300]!r}")
    return content if status == HTTP_CREATED else b""


async def _closed(pool: Pool, job: Job, t0: float, out: Outcome) -> None:
    async def client(lane: int) -> None:
        last = b""
        for body in job.lanes[lane][1]:
            last = await _post(pool, job, lane, body, time.monotonic(), out) or last
        out.samples.extend([last] if last else [])

    await asyncio.sleep(max(0.0, t0 - time.monotonic()))
    await asyncio.gather(*(client(i) for i in range(len(job.lanes))))


def open_schedule(job: Job) -> list[tuple[float, int, int]]:
    """(offset s, client, body index) of every request, by time: slot k is sent at k / rate by
    client k mod clients, so one client's requests are `clients` slots apart."""
    assert job.rate_per_s is not None
    clients = len(job.lanes)
    slots = [
        ((i + j * clients) / job.rate_per_s, i, j)
        for i, (_, bodies) in enumerate(job.lanes)
        for j in range(len(bodies))
    ]
    return sorted(slots)


async def _open(pool: Pool, job: Job, t0: float, out: Outcome) -> None:
    answered: dict[tuple[int, int], asyncio.Event] = {}

    async def send(at: float, lane: int, j: int) -> None:
        before = answered.get((lane, j - job.depends)) if job.depends else None
        if before is not None and not before.is_set():
            out.held += 1  # only when the server lags far behind: counted and reported
            await before.wait()
        content = await _post(pool, job, lane, job.lanes[lane][1][j], at, out)
        if content and j == len(job.lanes[lane][1]) - 1:
            out.samples.append(content)
        answered[(lane, j)].set()

    tasks = []
    for offset_s, lane, j in open_schedule(job):
        at = t0 + offset_s
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        answered[(lane, j)] = asyncio.Event()
        tasks.append(asyncio.create_task(send(at, lane, j)))
    await asyncio.gather(*tasks)


async def drive(job: Job, t0: float) -> Outcome:
    """Run the job from monotonic time t0; measure the driver's own CPU time."""
    out = Outcome(start_s=t0)
    pool: Pool = (RawPool if job.driver == "raw" else HttpxPool)(job.base, job.max_connections)
    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        await (_closed if job.rate_per_s is None else _open)(pool, job, t0, out)
    finally:
        await pool.aclose()
    after = resource.getrusage(resource.RUSAGE_SELF)
    out.cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return out


def run_job(job: Job) -> Outcome:
    return asyncio.run(drive(job, time.monotonic() + START_DELAY_S))


# --- statistics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    sent: int
    accepted: int
    wall_s: float
    accepted_per_s: float
    p50_ms: float
    p99_ms: float
    driver_cpu: float  # driver CPU seconds per wall second (1.0: one core busy)
    held: int


def summarize(out: Outcome) -> Stats:
    """Accepted/s over the phase (its start to the last answer); latency percentiles, each
    latency from the request's scheduled time to its answer."""
    accepted = out.statuses.count(HTTP_CREATED)
    wall_s = max(max(out.done_s, default=out.start_s) - out.start_s, 1e-9)
    latencies = sorted((d - s) * 1000 for s, d in zip(out.scheduled_s, out.done_s, strict=True))
    p50 = percentile(latencies, 0.50) if latencies else math.nan
    p99 = percentile(latencies, 0.99) if latencies else math.nan
    cpu = out.cpu_s / wall_s
    return Stats(len(out.statuses), accepted, wall_s, accepted / wall_s, p50, p99, cpu, out.held)


def lane_counts(total: int, lanes: int) -> list[int]:
    """How many of `total` requests each client sends (the first ones one more)."""
    return [total // lanes + (1 if i < total % lanes else 0) for i in range(lanes)]


# --- the two stacks ------------------------------------------------------------------------------


@dataclass
class Stack:
    """A server under test: where to post, each client's headers, and what it measured."""

    name: str
    base: str
    path: str
    headers: list[dict[str, str]]
    depends: int = 0  # see Job
    results: dict[str, Stats] = field(default_factory=dict)
    samples: list[bytes] = field(default_factory=list)


Bodies = Callable[[int, int], list[bytes]]  # (client, count) -> its next bodies, in order


def closed_count(stack: Stack, warmup: Stats, count: int) -> int:
    """How many requests the closed loop sends: `count`, or fewer on a slow server.

    Signed bodies go stale (created_at ±300 s): on a server slower than expected, shorten the
    closed loop to about MAX_CLOSED_PHASE_S at the warm-up's rate rather than time refusals.
    """
    cut = min(count, max(len(stack.headers), int(warmup.accepted_per_s * MAX_CLOSED_PHASE_S)))
    if cut < count:
        log(f"{stack.name}: closed loop cut to {cut} (warm-up {warmup.accepted_per_s:.0f}/s)")
    return cut


def run_stack(stack: Stack, bodies: Bodies, args: argparse.Namespace) -> None:
    warmup = run_phase(stack, bodies, "warmup", args, args.count)
    closed = run_phase(stack, bodies, "closed", args, closed_count(stack, warmup, args.count))
    total = round(args.rate * args.rate_seconds)
    if args.rate > closed.accepted_per_s:
        log(f"{stack.name}: {args.rate:g}/s offered is over capacity: the open loop times a queue")
    if total > closed.accepted_per_s * SIGNED_WINDOW_S:
        log(f"{stack.name}: the queue outlasts created_at's window: late bodies will be refused")
    run_phase(stack, bodies, "open", args, total)


def run_phase(
    stack: Stack, bodies: Bodies, phase: str, args: argparse.Namespace, total: int
) -> Stats:
    """Prepare (sign) `total` bodies, then drive them: 'open' loop, else closed loop."""
    clients = len(stack.headers)
    total = WARMUP_PER_CLIENT * clients if phase == "warmup" else total
    started = time.perf_counter()
    lanes = [(stack.headers[i], bodies(i, n)) for i, n in enumerate(lane_counts(total, clients))]
    log(f"{stack.name} {phase}: {total} bodies prepared in {time.perf_counter() - started:.1f} s")
    connections = OPEN_LOOP_MAX_CONNECTIONS if phase == "open" else clients
    rate = args.rate if phase == "open" else None
    job = Job(stack.base, stack.path, lanes, rate, connections, stack.depends, args.driver)
    out = run_job(job)
    stats = stack.results[phase] = summarize(out)
    stack.samples += out.samples
    log(
        f"{stack.name} {phase}: {stats.accepted}/{stats.sent} accepted, "
        f"{stats.accepted_per_s:,.0f}/s, p50 {stats.p50_ms:.1f} ms, p99 {stats.p99_ms:.1f} ms, "
        f"driver CPU {stats.driver_cpu:.0%}, held {stats.held}; errors: {out.errors or 'none'}"
    )
    return stats


@contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    """A fresh, migrated database on the benchmark's PostgreSQL (dropped after): its URL."""
    with postgresql_engine(admin_url) as engine:
        url = engine.url.render_as_string(hide_password=False)
        engine.dispose()  # the server under test makes its own connections
        yield url


def register_lanes(
    base: str, token: Callable[[str], str], *, clients: int, b_keys: int
) -> list[Lane]:
    """`clients` citizens, each with a registered key A and `b_keys` keys B (untimed)."""
    rng, subjects = random.Random(SEED), set[str]()
    while len(subjects) < clients:
        subjects.add(national_id(rng))

    def one(subject: str) -> Lane:
        with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S) as http:
            client = ApiClient(http, subject=subject, token=token(subject))
            return client.lane(b_keys=b_keys)[0]

    with ThreadPoolExecutor(REGISTER_THREADS) as pool:
        return list(pool.map(one, sorted(subjects)))


def check_work(base: str, stack: Stack, registrations: int) -> list[str]:
    """What is wrong with the work timed: sampled receipts that do not verify, a ledger that did
    not grow by exactly the accepted transactions. Empty when all is well."""
    problems = []
    vkeys = httpx.get(f"{base}/v1/ledger/keys").text.split()
    now = datetime.now(UTC)
    failed = [s for s in stack.samples if not check_receipt(s, trusted_vkeys=vkeys, at=now).passed]
    if failed or not stack.samples:
        problems.append(f"{len(failed)} of {len(stack.samples)} sampled receipts did not verify")
    tree_size = int(httpx.get(f"{base}/v1/ledger/checkpoint").text.split("\n")[1])
    accepted = sum(s.accepted for s in stack.results.values())
    if tree_size != registrations + accepted:
        problems.append(f"tree size {tree_size}, not {registrations} + {accepted} accepted")
    log(f"pishkhan: {len(stack.samples)} receipts checked, tree size {tree_size}")
    return problems


def bench_pishkhan(
    admin_url: str, workdir: Path, args: argparse.Namespace
) -> tuple[Stack, list[str]]:
    extra = {"PISHKHAN_RATE_LIMIT_PER_MINUTE": str(HIGH_RATE_LIMIT_PER_MINUTE)}
    with (
        pg_database(admin_url) as db_url,
        pishkhan_server(db_url, workdir, extra_env=extra) as info,
    ):
        started = time.perf_counter()
        lanes = register_lanes(info.base, info.token, clients=args.concurrency, b_keys=args.b_keys)
        log(f"pishkhan: {len(lanes)} clients registered in {time.perf_counter() - started:.1f} s")
        headers = [{"Authorization": f"Bearer {lane.token}", **JSON} for lane in lanes]
        bodies = [lane.bodies for lane in lanes]
        stack = Stack("pishkhan", info.base, "/v1/transactions", headers, depends=args.b_keys)
        run_stack(stack, lambda i, n: bodies[i](n), args)
        return stack, check_work(info.base, stack, len(lanes) * (1 + args.b_keys))


def floor_bodies(client: int, count: int, sent: list[int]) -> list[bytes]:
    first, sent[client] = sent[client], sent[client] + count
    return [
        encode({"kind": "bill.pay", "ref": f"c{client}-{n}", "amount_minor": n})
        for n in range(first, first + count)
    ]


def bench_floor(admin_url: str, workdir: Path, args: argparse.Namespace) -> Stack:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with pg_database(admin_url) as db_url:
        cmd = [sys.executable, "-m", "benchmarks.floor_app", "--database-url", db_url]
        cmd += ["--port", str(port)]
        log_path = workdir / "floor.log"
        with running(cmd, env=os.environ, cwd=REPO, ready_url=f"{base}/readyz", log_path=log_path):
            sent = [0] * args.concurrency
            stack = Stack("floor", base, "/floor", [JSON] * args.concurrency)
            run_stack(stack, lambda i, n: floor_bodies(i, n, sent), args)
            return stack


# --- report --------------------------------------------------------------------------------------


def report(pishkhan: Stack, floor: Stack, args: argparse.Namespace) -> list[str]:
    """The Markdown table and the targets."""
    floor_rate = floor.results["closed"].accepted_per_s
    ratio = pishkhan.results["closed"].accepted_per_s / floor_rate if floor_rate else 0.0
    offered = f"at {args.rate:g}/s offered"
    lines = [
        f"| stack | accepted/s, {args.concurrency} in flight | p50 {offered} | p99 {offered} "
        "| accepted (held) at that rate | ratio to floor | driver CPU, closed / open |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for stack in (pishkhan, floor):
        closed, opened = stack.results["closed"], stack.results["open"]
        lines.append(
            f"| {stack.name} | {closed.accepted_per_s:,.0f} | {opened.p50_ms:.1f} ms "
            f"| {opened.p99_ms:.1f} ms | {opened.accepted}/{opened.sent} ({opened.held}) "
            f"| {closed.accepted_per_s / floor_rate if floor_rate else 0.0:.2f} "
            f"| {closed.driver_cpu:.0%} / {opened.driver_cpu:.0%} |"
        )
    rate, opened = pishkhan.results["closed"].accepted_per_s, pishkhan.results["open"]
    p99 = "not measured in this run"
    if args.rate == TARGET_OFFERED_RATE:
        met = opened.p99_ms <= TARGET_P99_MS and opened.accepted == opened.sent
        p99 = f"{opened.p99_ms:.1f} ms, target ≤ {TARGET_P99_MS:g} ms: {judge(met)}"
    return [
        *lines,
        "",
        "Targets:",
        f"- signed transactions: {rate:,.0f}/s, target ≥ {TARGET_RATE:,.0f}: "
        f"{judge(rate >= TARGET_RATE)}",
        f"- ratio to the floor: {ratio:.2f}, target ≥ {TARGET_FLOOR_RATIO}: "
        f"{judge(ratio >= TARGET_FLOOR_RATIO)}",
        f"- p99 at {TARGET_OFFERED_RATE:g}/s offered: {p99}",
    ]


def pg_line(admin_url: str) -> str:
    engine = create_engine(admin_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    fast = os.environ.get("PISHKHAN_PG_FAST", "1") != "0"
    return f"- PostgreSQL {version}, " + ("fsync OFF" if fast else "durable (fsync on)")


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_api", description=__doc__)
    p.add_argument(
        "--concurrency", type=int, default=64, help="clients, one request in flight each"
    )
    p.add_argument("--count", type=int, default=20_000, help="requests of the closed loop")
    p.add_argument("--rate", type=float, default=TARGET_OFFERED_RATE, help="open loop, requests/s")
    p.add_argument("--rate-seconds", type=float, default=10.0)
    p.add_argument("--b-keys", type=int, default=16, help="B keys per client")
    p.add_argument("--driver", choices=DRIVERS, default="raw")
    p.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK}")
    p.add_argument("--workdir", type=Path, help="for the servers' files and logs (default: temp)")
    args = p.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    if min(args.concurrency, args.count, args.b_keys) < 1:
        p.error("--concurrency, --count and --b-keys must be at least 1")
    if not (args.rate > 0 and args.rate_seconds > 0):
        p.error("--rate and --rate-seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url = os.environ.get(PG_URL_ENV, "").strip()
    if not admin_url:
        print(f"bench_api: {PG_URL_ENV} is not set: run `make bench-api`", file=sys.stderr)
        return 2
    header = [*machine_lines(), pg_line(admin_url)]
    with tempfile.TemporaryDirectory(prefix="pishkhan-bench-api-") as tmp:
        workdir = args.workdir or Path(tmp)
        pishkhan, problems = bench_pishkhan(admin_url, workdir, args)
        floor = bench_floor(admin_url, workdir, args)
    header += [
        "- Servers: 2 uvicorn workers each, one server at a time; driver: this process, "
        f"asyncio, {args.driver} HTTP/1.1 client, over loopback",
        f"- Closed loop: {args.concurrency} clients, one request in flight each, "
        f"{pishkhan.results['closed'].sent} requests (floor {floor.results['closed'].sent}); "
        f"open loop: {args.rate:g}/s for {args.rate_seconds:g} s",
        f"- Signed: key.suspend / key.reinstate (EdDSA), pre-signed, {args.b_keys} B keys/client",
        f"- Load average at the end: {load_average()}",
    ]
    print("\n".join(["## API benchmark", "", *header, "", *report(pishkhan, floor, args)]))
    if problems:
        print("\nThe work timed is NOT correct: " + "; ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
