"""Ledger benchmark: append throughput, proof latency and whole-ledger verification.

    python -m benchmarks.bench_ledger [--sizes 10000,100000,1000000]
        [--backends sqlite,postgresql] [--proofs 1000] [--single 1000] [--quick] [--workdir DIR]

A measurement, not a test: it asserts nothing about timings. It does check that the work it
times is correct (the first proofs verify against store.root_at, the roots agree with the signed
checkpoints, and the whole-ledger report is consistent) and exits 1 when it is not. SQLite runs
on a fresh file (WAL, synchronous=FULL, as api.database.make_engine sets); PostgreSQL on a fresh
database on the server named by PISHKHAN_TEST_PG_URL (`make bench-ledger` starts a durable one).
Progress goes to stderr, the report (a Markdown table) to stdout.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from api.database import make_engine, migrate
from api.routes.ledger import read_snapshot  # the HTTP API's read-only connection
from api.verify_ledger import check_ledger
from audit.ledger_check import LedgerReport
from ledger import merkle, store
from ledger.note import NoteSigner, sign_note

PG_URL_ENV = "PISHKHAN_TEST_PG_URL"
BACKENDS = ("sqlite", "postgresql")
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK = {"sizes": "1000,5000", "proofs": 200, "single": 50}
BATCH_LEAVES = 256
LEAF_BYTES = 400  # about the size of a canonical-JSON ledger leaf
CHECKED_PROOFS = 5  # proofs per kind and size verified against store.root_at
ORIGIN = "bench.pishkhan.example/ledger"
SEED = 6962

TARGET_BATCH_SQLITE = 20_000  # leaves/s, batched appends on SQLite
TARGET_INCLUSION_P99_MS = 2.0  # at 10**6 leaves, both backends
TARGET_INCLUSION_AT = 1_000_000
TARGET_VERIFY = 200_000  # leaves/s, whole-ledger verification


@dataclass(frozen=True)
class Row:
    backend: str
    metric: str
    size: int
    value: float | str
    unit: str
    target: str = ""
    status: str = ""


@dataclass
class Run:
    """One backend's engine, signer and the rows measured so far."""

    backend: str
    engine: Engine
    signer: NoteSigner
    rng: random.Random
    rows: list[Row] = field(default_factory=list)
    last_root: bytes = merkle.EMPTY_ROOT  # root of the newest checkpoint append signed
    report: LedgerReport | None = None

    def sign(self, body: str) -> str:
        return sign_note(body, [self.signer])

    def add(self, metric: str, size: int, value: float | str, unit: str, **kw: str) -> None:
        self.rows.append(Row(self.backend, metric, size, value, unit, **kw))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def judge(ok: bool) -> str:
    return "met" if ok else "**missed**"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


# --- backends -------------------------------------------------------------------------------


@contextmanager
def sqlite_engine(workdir: Path) -> Iterator[Engine]:
    path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def postgresql_engine(admin_url: str) -> Iterator[Engine]:
    import psycopg
    from psycopg import sql

    admin = make_url(admin_url)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"pishkhan_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    engine = make_engine(admin.set(database=name).render_as_string(hide_password=False))
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --- appends --------------------------------------------------------------------------------


def append_leaves(run: Run, leaves: Sequence[bytes]) -> None:
    """One transaction, as the service makes it: begin, append, commit."""
    with run.engine.begin() as conn:
        result = store.append(
            conn, leaves, origin=ORIGIN, sign_note=run.sign, now=datetime.now(UTC)
        )
    run.last_root = result.checkpoint.root_hash


def grow(run: Run, sizes: Sequence[int]) -> Iterator[int]:
    """Grow the ledger to each size in batches of BATCH_LEAVES; yield after each size."""
    size, total_s, total_leaves = 0, 0.0, 0
    for target in sizes:
        phase_leaves, phase_s = target - size, 0.0
        while size < target:
            n = min(BATCH_LEAVES, target - size)
            leaves = [os.urandom(LEAF_BYTES) for _ in range(n)]
            start = time.perf_counter()
            append_leaves(run, leaves)
            phase_s += time.perf_counter() - start
            size += n
        total_s, total_leaves = total_s + phase_s, total_leaves + phase_leaves
        rate = phase_leaves / phase_s if phase_s else 0.0
        run.add(f"append, batches of {BATCH_LEAVES}, phase to size", target, rate, "leaves/s")
        log(f"{run.backend}: grew to {target} at {rate:,.0f} leaves/s")
        yield target
    rate = total_leaves / total_s if total_s else 0.0
    kw = {}
    if run.backend == "sqlite":
        kw = {"target": f"≥ {TARGET_BATCH_SQLITE:,}", "status": judge(rate >= TARGET_BATCH_SQLITE)}
    run.add(f"append, batches of {BATCH_LEAVES}, whole build", size, rate, "leaves/s", **kw)


def measure_single(run: Run, count: int, size: int) -> int:
    """Append `count` leaves, one per transaction; return the new tree size."""
    start = time.perf_counter()
    for _ in range(count):
        append_leaves(run, [os.urandom(LEAF_BYTES)])
    elapsed = time.perf_counter() - start
    rate = count / elapsed if elapsed else 0.0
    run.add("append, 1 leaf per transaction", size + count, rate, "leaves/s")
    log(f"{run.backend}: {count} single-leaf transactions at {rate:,.0f} leaves/s")
    return size + count


# --- proofs ---------------------------------------------------------------------------------


def check_proof(conn: Connection, kind: str, arg: int, size: int, proof: list[bytes]) -> None:
    """Verify a proof against store.root_at: the benchmark must time correct work."""
    root = store.root_at(conn, size)
    if kind == "inclusion":
        leaf_hash = store.get_entry(conn, arg).leaf_hash
        merkle.verify_inclusion(
            leaf_hash=leaf_hash, leaf_index=arg, tree_size=size, proof=proof, root=root
        )
    else:
        first_root = store.root_at(conn, arg)
        merkle.verify_consistency(
            first_size=arg, second_size=size, first_root=first_root, second_root=root, proof=proof
        )


def time_calls(
    conn: Connection, size: int, count: int, rng: random.Random, kind: str
) -> list[float]:
    """Milliseconds per call, sorted; the first CHECKED_PROOFS proofs are verified (untimed).

    Each call is what the HTTP endpoint runs: the proof with its leaf hash and roots, one query.
    """
    timings: list[float] = []
    for i in range(count):
        arg = rng.randrange(size) if kind == "inclusion" else rng.randint(1, size)
        start = time.perf_counter_ns()
        if kind == "inclusion":
            proof = store.inclusion_bundle(conn, leaf_index=arg, tree_size=size).proof
        else:
            proof = store.consistency_bundle(conn, first_size=arg, second_size=size).proof
        timings.append((time.perf_counter_ns() - start) / 1e6)
        if i < CHECKED_PROOFS:
            check_proof(conn, kind, arg, size, proof)
    return sorted(timings)


def measure_proofs(run: Run, conn: Connection, size: int, count: int) -> None:
    root = store.root_at(conn, size)
    if root != run.last_root:
        raise RuntimeError(f"{run.backend}: root_at({size}) differs from the signed checkpoint")
    for kind in ("inclusion", "consistency"):
        timings = time_calls(conn, size, count, run.rng, kind)
        p50, p99 = percentile(timings, 0.50), percentile(timings, 0.99)
        run.add(f"{kind} proof p50", size, p50, "ms")
        kw = {}
        if kind == "inclusion" and size == TARGET_INCLUSION_AT:
            kw = {
                "target": f"≤ {TARGET_INCLUSION_P99_MS:g}",
                "status": judge(p99 <= TARGET_INCLUSION_P99_MS),
            }
        run.add(f"{kind} proof p99", size, p99, "ms", **kw)
        log(f"{run.backend}: {kind} at {size}: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    conn.rollback()  # end the snapshot so that the ledger can grow (and SQLite checkpoint)


# --- verification ---------------------------------------------------------------------------


def measure_verify(run: Run) -> None:
    """Whole-ledger verification exactly as `pishkhan audit verify-ledger` runs it."""
    start = time.perf_counter()
    with run.engine.connect() as conn:
        url = run.engine.url.render_as_string(hide_password=False)
        report = check_ledger(conn, verifiers=[run.signer.verifier], origin=ORIGIN, url=url)
    elapsed = time.perf_counter() - start
    run.report = report
    rate = report.entries / elapsed if elapsed else 0.0
    target = {"target": f"≥ {TARGET_VERIFY:,}", "status": judge(rate >= TARGET_VERIFY)}
    run.add("verify whole ledger", report.tree_size, rate, "leaves/s", **target)
    verdict = "consistent" if report.consistent else "INCONSISTENT"
    run.add("verify report", report.tree_size, verdict, "")
    log(
        f"{run.backend}: verified {report.entries} entries, {report.nodes} nodes, "
        f"{report.checkpoints} checkpoints in {elapsed:.2f} s: {verdict}"
    )


def run_backend(backend: str, engine: Engine, args: argparse.Namespace) -> Run:
    run = Run(backend, engine, NoteSigner.generate(ORIGIN), random.Random(SEED))
    with read_snapshot(engine) as reader:
        size = 0
        for size in grow(run, args.sizes):
            measure_proofs(run, reader, size, args.proofs)
    if args.single:
        measure_single(run, args.single, size)
    measure_verify(run)
    return run


# --- report ---------------------------------------------------------------------------------


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_lines() -> list[str]:
    cpu = mem = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    with open("/proc/meminfo", encoding="utf-8") as f:
        kib = next((int(ln.split()[1]) for ln in f if ln.startswith("MemTotal:")), 0)
        mem = f"{kib / 2**20:.1f} GiB"
    return [
        f"- Date (UTC): {datetime.now(UTC):%Y-%m-%d %H:%M}",
        f"- Machine: {cpu}, {os.cpu_count()} CPUs, {mem} RAM",
        f"- Load average at the start: {load_average()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
    ]


def format_value(value: float | str, unit: str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:,.0f}" if unit == "leaves/s" else f"{value:.3f}"


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| backend | metric | tree size | value | unit | target | status |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for r in rows:
        value = format_value(r.value, r.unit)
        lines.append(
            f"| {r.backend} | {r.metric} | {r.size:,} | {value} | {r.unit} | {r.target} | "
            f"{r.status} |"
        )
    return lines


TARGETS = (  # (backend, metric, label) of every row that carries a target
    ("sqlite", f"append, batches of {BATCH_LEAVES}, whole build", "batched appends"),
    *[(b, "inclusion proof p99", f"inclusion p99 at {TARGET_INCLUSION_AT:,}") for b in BACKENDS],
    *[(b, "verify whole ledger", "verification") for b in BACKENDS],
)


def target_lines(runs: Sequence[Run]) -> list[str]:
    """Every target, with its verdict, or a line saying it was not measured."""
    judged = {(r.backend, r.metric): r for run in runs for r in run.rows if r.target}
    lines = ["", "Targets:"]
    for backend, metric, label in TARGETS:
        r = judged.get((backend, metric))
        if r is None:
            lines.append(f"- {backend} {label}: not measured in this run")
        else:
            got = format_value(r.value, r.unit)
            lines.append(f"- {backend} {label}: {got} {r.unit}, target {r.target}: {r.status}")
    return lines


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_ledger", description=__doc__)
    p.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--proofs", type=int, default=1000)
    p.add_argument("--single", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="sizes 1000,5000, proofs 200, single 50")
    p.add_argument("--workdir", type=Path, help="directory for the SQLite file (default: temp)")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    args.sizes = sorted({int(s) for s in str(args.sizes).split(",") if s.strip()})
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown or not args.sizes or min(args.sizes) < 1 or args.proofs < 1:
        p.error(f"bad arguments (unknown backends: {sorted(unknown) or 'none'})")
    return args


def bench_one(backend: str, args: argparse.Namespace, workdir: Path) -> tuple[Run | None, str]:
    """Run one backend; return its run (None when skipped) and a line for the header."""
    if backend == "sqlite":
        with sqlite_engine(workdir) as engine:
            return run_backend(backend, engine, args), f"- SQLite file in {workdir}"
    admin_url = os.environ.get(PG_URL_ENV, "").strip()
    if not admin_url:
        line = f"- PostgreSQL: SKIPPED, {PG_URL_ENV} is not set (run `make bench-ledger`)"
        log(line[2:])
        return None, line
    fast = os.environ.get("PISHKHAN_PG_FAST", "1") != "0"
    with postgresql_engine(admin_url) as engine:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
        durability = "fsync OFF (PISHKHAN_PG_FAST=1)" if fast else "durable (fsync on)"
        return run_backend(backend, engine, args), f"- PostgreSQL {version}, {durability}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    header = machine_lines()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="pishkhan-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for backend in args.backends:
            run, line = bench_one(backend, args, workdir)
            header.append(line)
            if run is not None:
                runs.append(run)
    header.append(
        f"- Leaves of {LEAF_BYTES} random bytes; sizes {args.sizes}; {args.proofs} proofs "
        f"per kind and size; {args.single} single-leaf transactions at the largest size"
    )
    header.append(f"- Load average at the end: {load_average()}")
    print("\n".join(["## Ledger benchmark", "", *header, ""]))
    print("\n".join(table([r for run in runs for r in run.rows])))
    print("\n".join(target_lines(runs)), flush=True)
    bad = [run.backend for run in runs if run.report is None or not run.report.consistent]
    if bad:
        print(f"\nVerification report NOT consistent on: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
