"""Payments benchmark: paid bills per second, end to end over HTTP, on the sandbox provider.

    python -m benchmarks.bench_payments [--concurrency 32] [--count 2000] [--clients 16]
        [--driver raw|httpx] [--quick] [--workdir DIR]

A measurement, not a test: it asserts nothing about timings. `pishkhan serve --workers 2` (dev
mode: the sandbox provider is on; a rate limit too high to matter) runs on a fresh database of
the PostgreSQL server named by PISHKHAN_TEST_PG_URL (`make bench-payments` starts a durable one)
and is driven over loopback from this process with bench_api's driver.

Setup, untimed: the agency `agency:water-tehran` and `--clients` citizens register a key each;
the agency issues one bill per payment to come (`bill.issue`, split between two revenue
accounts), driven like the payments, so its rate is reported as well. Then each citizen's
`payment.create` bodies (sandbox card 4242…) are signed, a warm-up runs, and the closed loop
times `--count` payments with `--concurrency` in flight: a 201 comes only after the sandbox
charge is applied, so each one is a paid bill.

The work is checked afterwards, else the exit status is 1: sampled receipts pass
audit.receipt_check and the ledger grew by exactly the accepted transactions (bench_api's
check); every accepted payment is `succeeded` (up to SAMPLED_PAYMENTS over GET /v1/payments/{id},
all of them in SQL), as many payables are paid and sandbox charges made as payments accepted,
and the journal balances in every currency. Progress to stderr, the report to stdout.
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
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select

from benchmarks.bench_api import (
    DRIVERS,
    HIGH_RATE_LIMIT_PER_MINUTE,
    HTTP_TIMEOUT_S,
    JSON,
    PG_URL_ENV,
    WARMUP_PER_CLIENT,
    Stack,
    check_work,
    closed_count,
    lane_counts,
    pg_database,
    pg_line,
    register_lanes,
    run_phase,
)
from benchmarks.bench_ledger import load_average, log, machine_lines
from payments.bill_ids import make_bill_id, make_payment_id
from payments.schema import journal_postings, payables, payment_intents, sandbox_charges
from signatures.canonical import JsonValue
from signatures.jws import PrivateKey
from tests.e2e.client import (
    TRANSACTIONS,
    ApiClient,
    Lane,
    ServerInfo,
    pishkhan_server,
    signed_body,
)

QUICK = {"concurrency": 4, "count": 40, "clients": 2}
SEED = 1404
AGENCY = "agency:water-tehran"
WATER_ACCOUNT = "agency_revenue:water-tehran"
SEWAGE_ACCOUNT = "agency_revenue:municipality"
COMPANY_CODE = "317"
SERVICE_TYPE = 1  # water
YEAR_DIGIT = 5
PERIOD = 3
DUE_ON = "2026-12-20"
CURRENCY = "IRR"
FIRST_SUBSCRIBER = 10_000_000  # 8 digits: a subscriber code never starts with 0
MAX_BILLS = 89_999_999  # subscriber codes have at most 8 digits
AMOUNT_THOUSANDS = (100, 50_000)  # IRR thousands: 100,000 to 50,000,000 IRR
SEWAGE_PERCENT = 20
CARD = "4242424242424242"  # the sandbox's card that succeeds
SAMPLED_PAYMENTS = 50
SUCCEEDED = "succeeded"
PAID = "paid"


@dataclass(frozen=True)
class Bill:
    debtor: str
    bill_id: str
    payment_id: str
    amount_minor: int


# --- bills and bodies (pure but for the signing clock) --------------------------------------------


def plan_bills(
    debtors: Sequence[str], counts: Sequence[int], rng: random.Random
) -> list[list[Bill]]:
    """counts[i] bills for lane i, owed by debtors[i]; every (bill ID, payment ID) distinct.
    Raises ValueError beyond MAX_BILLS."""
    if sum(counts) > MAX_BILLS:
        raise ValueError(f"at most {MAX_BILLS:,} bills: subscriber codes have 8 digits")
    subscribers = iter(range(FIRST_SUBSCRIBER, FIRST_SUBSCRIBER + sum(counts)))
    lanes = []
    for debtor, count in zip(debtors, counts, strict=True):
        bills = []
        for subscriber in (next(subscribers) for _ in range(count)):
            amount_minor = 1000 * rng.randint(*AMOUNT_THOUSANDS)
            bill_id = make_bill_id(
                str(subscriber), company_code=COMPANY_CODE, service_type=SERVICE_TYPE
            )
            payment_id = make_payment_id(
                bill_id=bill_id, amount_minor=amount_minor, year_digit=YEAR_DIGIT, period=PERIOD
            )
            bills.append(Bill(debtor, bill_id, payment_id, amount_minor))
        lanes.append(bills)
    return lanes


def _amount(bill: Bill) -> dict[str, JsonValue]:
    return {"amount_minor": bill.amount_minor, "currency": CURRENCY}


def bill_payload(bill: Bill) -> dict[str, JsonValue]:
    """The bill.issue payload: the amount split between water and sewage."""
    sewage_minor = bill.amount_minor * SEWAGE_PERCENT // 100
    water_minor = bill.amount_minor - sewage_minor
    return {
        "kind": "bill",
        "debtor": bill.debtor,
        "amount": _amount(bill),
        "transfers": [
            {"account": WATER_ACCOUNT, "amount_minor": water_minor, "category": "water_charge"},
            {"account": SEWAGE_ACCOUNT, "amount_minor": sewage_minor, "category": "sewage"},
        ],
        "due_on": DUE_ON,
        "reference": bill.bill_id,
        "payment_id": bill.payment_id,
        "allows_instalments": False,
    }


def payment_payload(bill: Bill) -> dict[str, JsonValue]:
    """The payment.create payload: the bill named by its two numbers, paid by card."""
    return {
        "bill_id": bill.bill_id,
        "payment_id": bill.payment_id,
        "amount": _amount(bill),
        "provider": "sandbox",
        "payment_method": CARD,
    }


def issue_body(agency_key: PrivateKey, bill: Bill) -> bytes:
    return signed_body(
        agency_key, type_name="bill.issue", signer=AGENCY, payload=bill_payload(bill)
    )


def payment_body(debtor_key: PrivateKey, bill: Bill) -> bytes:
    payload = payment_payload(bill)
    return signed_body(debtor_key, type_name="payment.create", signer=bill.debtor, payload=payload)


class BillCursor:
    """Each lane's bills in order: next(lane, count) hands out the lane's next `count`."""

    def __init__(self, bills: list[list[Bill]]) -> None:
        self.bills = bills
        self.taken = [0] * len(bills)

    def next(self, lane: int, count: int) -> list[Bill]:
        """Raises ValueError when the lane has fewer bills left."""
        first = self.taken[lane]
        if first + count > len(self.bills[lane]):
            raise ValueError(f"lane {lane} has {len(self.bills[lane]) - first} bills left")
        self.taken[lane] += count
        return self.bills[lane][first : first + count]


# --- checks --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Books:
    """What the database holds after the run."""

    intents_by_state: dict[str, int]
    paid_payables: int
    sandbox_charges: int
    totals_by_currency: dict[str, int]


def payment_problems(books: Books, accepted: int, sampled: dict[str, str]) -> list[str]:
    """What is wrong with the payments: `sampled` maps payment ids read over HTTP to their
    state. Empty when every accepted payment succeeded, was charged once and paid its bill, and
    the journal balances."""
    problems = []
    if books.intents_by_state != ({SUCCEEDED: accepted} if accepted else {}):
        problems.append(f"payments by state {books.intents_by_state}, not {accepted} succeeded")
    if books.paid_payables != accepted:
        problems.append(f"{books.paid_payables} payables paid, not {accepted}")
    if books.sandbox_charges != accepted:
        problems.append(f"{books.sandbox_charges} sandbox charges, not {accepted}")
    unbalanced = {c: t for c, t in books.totals_by_currency.items() if t != 0}
    if unbalanced:
        problems.append(f"the journal does not balance: {unbalanced}")
    if not accepted:
        problems.append("no payment accepted")
    wrong = {i: s for i, s in sampled.items() if s != SUCCEEDED}
    if wrong or not sampled:
        problems.append(f"{len(wrong)} of {len(sampled)} sampled payments not {SUCCEEDED}: {wrong}")
    return problems


def read_books(db_url: str, sample_size: int) -> tuple[Books, list[tuple[str, str]]]:
    """The counts of Books, and a random sample of (payment id, payer)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            state = payment_intents.c.state
            by_state = conn.execute(select(state, func.count()).group_by(state)).all()
            paid = select(func.count()).select_from(payables).where(payables.c.status == PAID)
            charges = select(func.count()).select_from(sandbox_charges)
            amount = journal_postings.c.amount_minor
            totals = select(journal_postings.c.currency, func.sum(amount)).group_by(
                journal_postings.c.currency
            )
            chosen = select(payment_intents.c.id, payment_intents.c.payer).order_by(func.random())
            books = Books(
                {s: int(n) for s, n in by_state},
                int(conn.execute(paid).scalar_one()),
                int(conn.execute(charges).scalar_one()),
                {c: int(t) for c, t in conn.execute(totals).all()},
            )
            sample = [(i, p) for i, p in conn.execute(chosen.limit(sample_size)).all()]
    finally:
        engine.dispose()
    return books, sample


def sampled_states(
    base: str, tokens: dict[str, str], receipts: Sequence[bytes], sample: list[tuple[str, str]]
) -> dict[str, str]:
    """The state GET /v1/payments/{id} shows to the payer: first for the payments whose 201
    receipts the driver kept (their id is the Location's last segment), then for the sample."""
    wanted = {
        json.loads(r)["transaction_id"]: json.loads(r)["envelope"]["signer"] for r in receipts
    }
    for intent_id, payer in sample:
        if len(wanted) < max(SAMPLED_PAYMENTS, len(receipts)):
            wanted.setdefault(intent_id, payer)
    states = {}
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S) as http:
        for intent_id, payer in wanted.items():
            r = ApiClient(http, subject=payer, token=tokens[payer]).get(f"/v1/payments/{intent_id}")
            states[intent_id] = r.json().get("state", f"HTTP {r.status_code}")
    return states


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Run:
    issued: Stack
    paid: Stack
    problems: list[str]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


def register(info: ServerInfo, args: argparse.Namespace) -> tuple[list[Lane], PrivateKey]:
    """--clients citizens and the agency, each with a registered key (untimed): the citizens'
    lanes (bench_api's, without B keys) and the agency's key."""
    started = time.perf_counter()
    citizens = register_lanes(info.base, info.token, clients=args.clients, b_keys=0)
    with httpx.Client(base_url=info.base, timeout=HTTP_TIMEOUT_S) as http:
        agency = ApiClient(http, subject=AGENCY, token=info.token(AGENCY, ("agency",)))
        agency_key = agency.new_key()
    elapsed_s = time.perf_counter() - started
    log(f"{len(citizens)} citizens and the agency registered in {elapsed_s:.1f} s")
    return citizens, agency_key


def issue_bills(
    info: ServerInfo, bills: list[list[Bill]], agency_key: PrivateKey, args: argparse.Namespace
) -> Stack:
    """Issue every bill (setup), driven as the payments are: lane i issues lane i's bills."""
    headers = [_bearer(info.token(AGENCY, ("agency",)))] * len(bills)
    issued = Stack("bill.issue", info.base, TRANSACTIONS, headers)
    cursor = BillCursor(bills)

    def bodies(lane: int, count: int) -> list[bytes]:
        return [issue_body(agency_key, bill) for bill in cursor.next(lane, count)]

    run_phase(issued, bodies, "issue", args, sum(len(b) for b in bills))
    return issued


def pay_bills(
    info: ServerInfo, bills: list[list[Bill]], lanes: list[Lane], args: argparse.Namespace
) -> Stack:
    """Pay the bills: a warm-up of WARMUP_PER_CLIENT per lane, then the closed loop timed."""
    paid = Stack("payment.create", info.base, TRANSACTIONS, [_bearer(ln.token) for ln in lanes])
    cursor = BillCursor(bills)

    def bodies(lane: int, count: int) -> list[bytes]:
        return [payment_body(lanes[lane].signing_key, bill) for bill in cursor.next(lane, count)]

    warmup = run_phase(paid, bodies, "warmup", args, 0)
    run_phase(paid, bodies, "closed", args, closed_count(paid, warmup, args.count))
    return paid


def bench(admin_url: str, workdir: Path, args: argparse.Namespace) -> Run:
    extra = {"PISHKHAN_RATE_LIMIT_PER_MINUTE": str(HIGH_RATE_LIMIT_PER_MINUTE)}
    with (
        pg_database(admin_url) as db_url,
        pishkhan_server(db_url, workdir, extra_env=extra) as info,
    ):
        citizens, agency_key = register(info, args)
        # Lane i pays as citizen i mod --clients: a citizen may have several payments in flight.
        lanes = [citizens[i % len(citizens)] for i in range(args.concurrency)]
        counts = [WARMUP_PER_CLIENT + n for n in lane_counts(args.count, args.concurrency)]
        bills = plan_bills([lane.subject for lane in lanes], counts, random.Random(SEED))
        issued = issue_bills(info, bills, agency_key, args)
        paid = pay_bills(info, bills, lanes, args)
        registrations = len(citizens) + 1 + issued.results["issue"].accepted
        problems = check_work(info.base, paid, registrations)
        books, sample = read_books(db_url, SAMPLED_PAYMENTS)
        tokens = {lane.subject: lane.token for lane in citizens}
        states = sampled_states(info.base, tokens, paid.samples, sample)
        log(f"payments: {len(states)} read over HTTP; {books}")
        accepted = sum(s.accepted for s in paid.results.values())
        problems += payment_problems(books, accepted, states)
        return Run(issued, paid, problems)


# --- report --------------------------------------------------------------------------------------


def report(run: Run, args: argparse.Namespace) -> list[str]:
    """The Markdown table: paid bills, then the bills' issue (setup, measured the same way)."""
    rows = [
        ("payment.create, paid by the sandbox (timed)", run.paid.results["closed"]),
        ("bill.issue (setup)", run.issued.results["issue"]),
    ]
    lines = [
        f"| transaction | accepted/s, {args.concurrency} in flight | p50 | p99 "
        "| accepted/sent | driver CPU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, stats in rows:
        lines.append(
            f"| {name} | {stats.accepted_per_s:,.0f} | {stats.p50_ms:.1f} ms "
            f"| {stats.p99_ms:.1f} ms | {stats.accepted}/{stats.sent} | {stats.driver_cpu:.0%} |"
        )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_payments", description=__doc__)
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    p.add_argument("--count", type=int, default=2000, help="payments timed (closed loop)")
    p.add_argument("--clients", type=int, default=16, help="citizens (each a registered key)")
    p.add_argument("--driver", choices=DRIVERS, default="raw")
    p.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK}")
    p.add_argument("--workdir", type=Path, help="for the server's files and logs (default: temp)")
    args = p.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    if min(args.concurrency, args.count, args.clients) < 1:
        p.error("--concurrency, --count and --clients must be at least 1")
    if args.count + WARMUP_PER_CLIENT * args.concurrency > MAX_BILLS:
        p.error(f"at most {MAX_BILLS:,} bills")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url = os.environ.get(PG_URL_ENV, "").strip()
    if not admin_url:
        print(
            f"bench_payments: {PG_URL_ENV} is not set: run `make bench-payments`", file=sys.stderr
        )
        return 2
    header = [*machine_lines(), pg_line(admin_url)]
    with tempfile.TemporaryDirectory(prefix="pishkhan-bench-payments-") as tmp:
        run = bench(admin_url, args.workdir or Path(tmp), args)
    closed, warmup = run.paid.results["closed"], run.paid.results["warmup"]
    header += [
        "- Server: `pishkhan serve --workers 2`, dev mode, sandbox provider; driver: this "
        f"process, asyncio, {args.driver} HTTP/1.1 client, over loopback",
        f"- Closed loop: {args.concurrency} in flight, {closed.sent} payments timed after "
        f"{warmup.sent} untimed, by {args.clients} citizens (EdDSA keys), pre-signed",
        f"- Each a distinct water bill, issued by {AGENCY} (bill.issue, split in two transfers) "
        "before the clock starts; a 201 comes after the sandbox charge is applied",
        f"- Load average at the end: {load_average()}",
    ]
    print("\n".join(["## Payments benchmark", "", *header, "", *report(run, args)]))
    if run.problems:
        print("\nThe work timed is NOT correct: " + "; ".join(run.problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
