"""Invoice benchmark: signed invoices accepted per second, in batches of 1,000, over HTTP.

    python -m benchmarks.bench_invoices [--concurrency 4] [--count 40] [--batch 1000]
        [--sellers 4] [--lines 2] [--driver raw|httpx] [--quick] [--workdir DIR]

A measurement, not a test: it asserts nothing about timings. `pishkhan serve --workers 2` (dev
mode, a rate limit too high to matter) runs on a fresh database of the PostgreSQL server named by
PISHKHAN_TEST_PG_URL (`make bench-invoices` starts a durable one) and is driven over loopback
from this process with bench_api's driver.

Setup, untimed: `--sellers` legal entities (ir-lid, role business) register a key each; seller i
issues under its own memory ID (BN0000, BN0001, …) with serials counting up from 1. Each
`tax.invoice.submit` body carries `--batch` original type-1 invoices of pattern 1 (sale) in ir,
`--lines` lines each at the standard VAT rate (10 % since 1403) with their exact arithmetic, sold
to one of BUYERS; issued a minute before they are signed, and **pre-signed** by their seller
(EdDSA) before the clock starts. After bench_api's warm-up (WARMUP_PER_CLIENT batches per lane),
the closed loop times `--count` batches with `--concurrency` in flight (lane i signs as seller
i mod --sellers). The rate reported is invoices recorded per second: accepted batches × batch.

The work is checked afterwards, else the exit status is 1: sampled receipts pass
audit.receipt_check and the ledger grew by exactly the accepted transactions (bench_api's check);
every sampled 201 result recorded its whole batch (accepted = --batch, rejected = 0); the table
tax_invoices holds exactly accepted batches × batch rows and tax_memory_ids one row per seller;
up to SAMPLED_INVOICES recorded invoices are read back by their seller over
GET /v1/tax/invoices/{tax_id}. Progress to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select

from benchmarks.bench_api import (
    DRIVERS,
    HIGH_RATE_LIMIT_PER_MINUTE,
    HTTP_TIMEOUT_S,
    JSON,
    PG_URL_ENV,
    REGISTER_THREADS,
    Stack,
    check_work,
    closed_count,
    pg_database,
    pg_line,
    run_phase,
)
from benchmarks.bench_ledger import load_average, log, machine_lines
from signatures.canonical import JsonValue
from signatures.jws import PrivateKey
from tax.invoice_schema import tax_invoices, tax_memory_ids
from tax.invoices import MAX_BATCH_INVOICES
from tax.tax_ids import make_tax_id
from tests.e2e.client import TRANSACTIONS, ApiClient, ServerInfo, legal_id, pishkhan_server
from tests.e2e.client import signed_body as sign_body

QUICK = {"concurrency": 2, "count": 4, "batch": 50, "sellers": 2}
SEED = 1403
SUBMIT = "tax.invoice.submit"
JURISDICTION = "ir"
MEMORY_ID_PREFIX = "BN"
MAX_SELLERS = 10_000  # memory IDs BN0000 … BN9999
MAX_LINES = 3  # 1,000 invoices of 3 lines are about 0.76 MB: under the envelope's 1 MiB
VAT_RATE = Decimal("0.10")  # ir vat.rate.standard since 1403-01-01
PRODUCT_CODE = "2330001234567"
UNIT_CODE = "164"
PRICE_RANGE_MINOR = (10_000, 50_000_000)  # IRR
QUANTITY_RANGE_THOUSANDTHS = (1, 100_000)  # 0.001 to 100
ISSUED_BEFORE_SIGNING = timedelta(minutes=1)
BUYERS = 16
SAMPLED_INVOICES = 50
HTTP_OK = 200


@dataclass
class Seller:
    """A registered seller and the next serial its memory ID issues."""

    subject: str
    token: str
    key: PrivateKey
    memory_id: str
    next_serial: int = 1


def memory_id_of(index: int) -> str:
    """Seller `index`'s memory ID. Raises ValueError beyond MAX_SELLERS."""
    if not 0 <= index < MAX_SELLERS:
        raise ValueError(f"at most {MAX_SELLERS} sellers")
    return f"{MEMORY_ID_PREFIX}{index:04d}"


# --- invoices and bodies (pure but for the signing clock) -----------------------------------------


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def invoice_line(rng: random.Random) -> tuple[dict[str, JsonValue], int]:
    """A random line at VAT_RATE, its VAT and total exact; and its base before discount."""
    quantity = Decimal(rng.randint(*QUANTITY_RANGE_THOUSANDTHS)) / 1000
    price_minor = rng.randint(*PRICE_RANGE_MINOR)
    base_minor = _half_up(quantity * price_minor)
    discount_minor = rng.randint(0, base_minor // 10)
    after_minor = base_minor - discount_minor
    vat_minor = _half_up(after_minor * VAT_RATE)
    line: dict[str, JsonValue] = {
        "code": PRODUCT_CODE,
        "quantity": str(quantity.normalize()) if quantity % 1 else str(int(quantity)),
        "unit": UNIT_CODE,
        "unit_price_minor": price_minor,
        "discount_minor": discount_minor,
        "vat_rate": str(VAT_RATE),
        "vat_minor": vat_minor,
        "total_minor": after_minor + vat_minor,
    }
    return line, base_minor


def invoice_payload(
    serial: int, *, memory_id: str, buyer: str, issued_at: datetime, lines: int, rng: random.Random
) -> dict[str, JsonValue]:
    """One original type-1 invoice whose lines and totals add up exactly."""
    made = [invoice_line(rng) for _ in range(lines)]
    before = sum(base for _, base in made)
    discount = sum(int(str(line["discount_minor"])) for line, _ in made)
    vat = sum(int(str(line["vat_minor"])) for line, _ in made)
    total = sum(int(str(line["total_minor"])) for line, _ in made)
    return {
        "tax_id": make_tax_id(memory_id, day=issued_at.date(), serial=serial).text,
        "issued_at": issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "type": 1,
        "pattern": 1,
        "subtype": "original",
        "buyer": buyer,
        "lines": [line for line, _ in made],
        "totals": {
            "before_discount_minor": before,
            "discount_minor": discount,
            "after_discount_minor": before - discount,
            "vat_minor": vat,
            "total_minor": total,
        },
    }


def batch_payload(
    seller: Seller, count: int, *, buyers: Sequence[str], lines: int, rng: random.Random
) -> dict[str, JsonValue]:
    """The seller's next `count` invoices (its serials advance), issued a minute ago."""
    issued_at = (datetime.now(UTC) - ISSUED_BEFORE_SIGNING).replace(microsecond=0)
    invoices: list[JsonValue] = []
    for serial in range(seller.next_serial, seller.next_serial + count):
        buyer = buyers[serial % len(buyers)]
        invoices.append(
            invoice_payload(
                serial,
                memory_id=seller.memory_id,
                buyer=buyer,
                issued_at=issued_at,
                lines=lines,
                rng=rng,
            )
        )
    seller.next_serial += count
    return {"jurisdiction": JURISDICTION, "invoices": invoices}


def batch_body(seller: Seller, payload: dict[str, JsonValue]) -> bytes:
    return sign_body(seller.key, type_name=SUBMIT, signer=seller.subject, payload=payload)


def distinct_subjects(count: int, rng: random.Random, *, taken: set[str]) -> list[str]:
    """`count` legal-entity subjects not in `taken` (which grows)."""
    out: list[str] = []
    while len(out) < count:
        subject = legal_id(rng)
        if subject not in taken:
            taken.add(subject)
            out.append(subject)
    return out


# --- checks --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Books:
    """What the database holds after the run."""

    invoices: int
    memory_ids: int


def invoice_problems(
    books: Books,
    *,
    accepted_batches: int,
    batch: int,
    sellers: int,
    results: Sequence[dict[str, JsonValue]],
    viewed: dict[str, int],
) -> list[str]:
    """What is wrong with the invoices: `results` are sampled 201 results, `viewed` maps tax IDs
    read over HTTP to their status. Empty when every accepted batch recorded all its invoices."""
    problems = []
    if books.invoices != accepted_batches * batch:
        problems.append(f"{books.invoices} invoices recorded, not {accepted_batches} × {batch}")
    if books.memory_ids != sellers:
        problems.append(f"{books.memory_ids} memory IDs bound, not {sellers}")
    partial = [r for r in results if (r.get("accepted"), r.get("rejected")) != (batch, 0)]
    if partial or not results:
        problems.append(f"{len(partial)} of {len(results)} sampled batches not wholly recorded")
    unread = {t: s for t, s in viewed.items() if s != HTTP_OK}
    if unread or not viewed:
        problems.append(f"{len(unread)} of {len(viewed)} sampled invoices unreadable: {unread}")
    if not accepted_batches:
        problems.append("no batch accepted")
    return problems


def read_books(db_url: str, sample_size: int) -> tuple[Books, list[tuple[str, str]]]:
    """The counts of Books, and a random sample of (tax ID, seller)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            invoices = select(func.count()).select_from(tax_invoices)
            bound = select(func.count()).select_from(tax_memory_ids)
            chosen = select(tax_invoices.c.tax_id, tax_invoices.c.seller).order_by(func.random())
            books = Books(
                int(conn.execute(invoices).scalar_one()), int(conn.execute(bound).scalar_one())
            )
            sample = [(t, s) for t, s in conn.execute(chosen.limit(sample_size)).all()]
    finally:
        engine.dispose()
    return books, sample


def sampled_results(receipts: Sequence[bytes]) -> list[dict[str, JsonValue]]:
    """The transaction results in the 201 answers the driver kept."""
    return [json.loads(r)["result"] for r in receipts]


def viewed_statuses(
    base: str, tokens: dict[str, str], sample: Sequence[tuple[str, str]]
) -> dict[str, int]:
    """The status of GET /v1/tax/invoices/{tax_id} for each sampled invoice, as its seller."""
    statuses = {}
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S) as http:
        for tax_id, seller in sample:
            api = ApiClient(http, subject=seller, token=tokens[seller])
            statuses[tax_id] = api.get(f"/v1/tax/invoices/{tax_id}").status_code
    return statuses


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Run:
    submitted: Stack
    problems: list[str]


def register_sellers(info: ServerInfo, count: int, rng: random.Random) -> list[Seller]:
    """`count` legal entities with a registered key each (untimed)."""
    subjects = distinct_subjects(count, rng, taken=set())

    def one(index: int) -> Seller:
        subject = subjects[index]
        token = info.token(subject, ("business",))
        with httpx.Client(base_url=info.base, timeout=HTTP_TIMEOUT_S) as http:
            key = ApiClient(http, subject=subject, token=token).new_key()
        return Seller(subject, token, key, memory_id_of(index))

    started = time.perf_counter()
    with ThreadPoolExecutor(REGISTER_THREADS) as pool:
        sellers = list(pool.map(one, range(count)))
    log(f"{count} sellers registered in {time.perf_counter() - started:.1f} s")
    return sellers


def submit_batches(
    info: ServerInfo, sellers: list[Seller], buyers: list[str], args: argparse.Namespace
) -> Stack:
    """A warm-up of WARMUP_PER_CLIENT batches per lane, then the closed loop timed."""
    lanes = [sellers[i % len(sellers)] for i in range(args.concurrency)]
    headers = [{"Authorization": f"Bearer {s.token}", **JSON} for s in lanes]
    stack = Stack(SUBMIT, info.base, TRANSACTIONS, headers)
    rng = random.Random(SEED)

    def bodies(lane: int, count: int) -> list[bytes]:
        seller = lanes[lane]
        return [
            batch_body(
                seller,
                batch_payload(seller, args.batch, buyers=buyers, lines=args.lines, rng=rng),
            )
            for _ in range(count)
        ]

    warmup = run_phase(stack, bodies, "warmup", args, 0)
    run_phase(stack, bodies, "closed", args, closed_count(stack, warmup, args.count))
    return stack


def bench(admin_url: str, workdir: Path, args: argparse.Namespace) -> Run:
    extra = {"PISHKHAN_RATE_LIMIT_PER_MINUTE": str(HIGH_RATE_LIMIT_PER_MINUTE)}
    with (
        pg_database(admin_url) as db_url,
        pishkhan_server(db_url, workdir, extra_env=extra) as info,
    ):
        rng = random.Random(SEED)
        sellers = register_sellers(info, args.sellers, rng)
        buyers = distinct_subjects(BUYERS, rng, taken={s.subject for s in sellers})
        submitted = submit_batches(info, sellers, buyers, args)
        problems = check_work(info.base, submitted, len(sellers))
        books, sample = read_books(db_url, SAMPLED_INVOICES)
        tokens = {s.subject: s.token for s in sellers}
        viewed = viewed_statuses(info.base, tokens, sample)
        log(f"invoices: {len(viewed)} read over HTTP; {books}")
        accepted = sum(s.accepted for s in submitted.results.values())
        problems += invoice_problems(
            books,
            accepted_batches=accepted,
            batch=args.batch,
            sellers=min(args.sellers, args.concurrency),
            results=sampled_results(submitted.samples),
            viewed=viewed,
        )
        return Run(submitted, problems)


# --- report --------------------------------------------------------------------------------------


def report(run: Run, args: argparse.Namespace) -> list[str]:
    """The Markdown table: invoices recorded per second in the timed loop, and the warm-up."""
    lines = [
        f"| phase | invoices/s | batches/s, {args.concurrency} in flight | p50 per batch "
        "| p99 per batch | accepted/sent batches | driver CPU |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, phase in (("timed (closed loop)", "closed"), ("warm-up", "warmup")):
        stats = run.submitted.results[phase]
        lines.append(
            f"| {SUBMIT}, batches of {args.batch:,}, {name} "
            f"| {stats.accepted_per_s * args.batch:,.0f} | {stats.accepted_per_s:,.2f} "
            f"| {stats.p50_ms:,.0f} ms | {stats.p99_ms:,.0f} ms | {stats.accepted}/{stats.sent} "
            f"| {stats.driver_cpu:.0%} |"
        )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_invoices", description=__doc__)
    p.add_argument("--concurrency", type=int, default=4, help="batches in flight")
    p.add_argument("--count", type=int, default=40, help="batches timed (closed loop)")
    p.add_argument("--batch", type=int, default=MAX_BATCH_INVOICES, help="invoices per batch")
    p.add_argument("--sellers", type=int, default=4, help="sellers (each a registered key)")
    p.add_argument("--lines", type=int, default=2, help=f"lines per invoice, 1..{MAX_LINES}")
    p.add_argument("--driver", choices=DRIVERS, default="raw")
    p.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK}")
    p.add_argument("--workdir", type=Path, help="for the server's files and logs (default: temp)")
    args = p.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    if min(args.concurrency, args.count, args.sellers, args.batch) < 1:
        p.error("--concurrency, --count, --sellers and --batch must be at least 1")
    if args.batch > MAX_BATCH_INVOICES:
        p.error(f"a batch holds at most {MAX_BATCH_INVOICES} invoices")
    if not 1 <= args.lines <= MAX_LINES:
        p.error(f"--lines is within 1..{MAX_LINES}")
    if args.sellers > MAX_SELLERS:
        p.error(f"at most {MAX_SELLERS} sellers")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url = os.environ.get(PG_URL_ENV, "").strip()
    if not admin_url:
        print(
            f"bench_invoices: {PG_URL_ENV} is not set: run `make bench-invoices`", file=sys.stderr
        )
        return 2
    header = [*machine_lines(), pg_line(admin_url)]
    with tempfile.TemporaryDirectory(prefix="pishkhan-bench-invoices-") as tmp:
        run = bench(admin_url, args.workdir or Path(tmp), args)
    closed, warmup = run.submitted.results["closed"], run.submitted.results["warmup"]
    header += [
        "- Server: `pishkhan serve --workers 2`, dev mode; driver: this process, asyncio, "
        f"{args.driver} HTTP/1.1 client, over loopback",
        f"- Closed loop: {args.concurrency} batches in flight, {closed.sent} batches of "
        f"{args.batch:,} invoices timed after {warmup.sent} untimed, by {args.sellers} sellers "
        "(EdDSA keys), pre-signed",
        f"- Each invoice: original, type 1, pattern 1, ir, {args.lines} line(s) at 10 % VAT, "
        f"to one of {BUYERS} buyers",
        f"- Load average at the end: {load_average()}",
    ]
    print("\n".join(["## Invoice benchmark", "", *header, "", *report(run, args)]))
    if run.problems:
        print("\nThe work timed is NOT correct: " + "; ".join(run.problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
