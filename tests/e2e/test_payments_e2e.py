"""Paying bills end to end: `pishkhan serve --workers 2` (dev mode: the sandbox provider), real
clients over HTTP, on SQLite and PostgreSQL.

The double-pay race: for each bill, two payers who both hold its bill ID and payment ID send a
payment.create at the same moment, on separate connections, to a server with two worker
processes. Exactly one is accepted (201) and charged; the other gets 409 and is never charged:
the sandbox provider's own records hold exactly one charge per bill, the payable is paid once,
and the journal balances.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import create_engine, func, select, text

from payments.bill_ids import make_bill_id, make_payment_id
from payments.schema import payables, sandbox_charges
from signatures.canonical import JsonValue
from tests.e2e.client import ApiClient, national_id

if TYPE_CHECKING:
    from tests.e2e.conftest import Server

BILLS = 12
AMOUNT = 2_350_000
PROBLEMS = "https://pishkhan.example/problems/"
CONFLICTS = {PROBLEMS + "payment-in-progress", PROBLEMS + "payable-already-paid"}


def _bill_payload(debtor: str, bill_id: str, payment_id: str) -> dict[str, JsonValue]:
    return {
        "kind": "bill",
        "debtor": debtor,
        "amount": {"amount_minor": AMOUNT, "currency": "IRR"},
        "transfers": [
            {"account": "agency_revenue:gas-tehran", "amount_minor": AMOUNT, "category": "gas"}
        ],
        "due_on": "2026-12-31",
        "reference": bill_id,
        "payment_id": payment_id,
    }


def _pay_payload(bill_id: str, payment_id: str) -> dict[str, JsonValue]:
    return {
        "bill_id": bill_id,
        "payment_id": payment_id,
        "amount": {"amount_minor": AMOUNT, "currency": "IRR"},
        "provider": "sandbox",
        "payment_method": "4242424242424242",
    }


def _race(
    a: ApiClient, b: ApiClient, keys: dict[str, object], bill: tuple[str, str]
) -> list[httpx.Response]:
    barrier = threading.Barrier(2)

    def send(client: ApiClient) -> httpx.Response:
        barrier.wait()
        return client.send(keys[client.subject], "payment.create", _pay_payload(*bill))  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(send, [a, b]))


def test_two_payers_racing_for_one_bill_one_is_charged_the_other_409(server: Server) -> None:
    rng = random.Random(2026)
    agency = server.client("agency:gas-tehran", roles=("agency",))
    agency_key = agency.new_key()
    owner, other = (server.client(national_id(rng)) for _ in range(2))
    keys = {owner.subject: owner.new_key(), other.subject: other.new_key()}
    bills = []
    for n in range(BILLS):
        bill_id = make_bill_id(str(4_000 + n), company_code="512", service_type=3)
        payment_id = make_payment_id(bill_id=bill_id, amount_minor=AMOUNT, year_digit=5, period=9)
        r = agency.send(agency_key, "bill.issue", _bill_payload(owner.subject, bill_id, payment_id))
        assert r.status_code == 201, r.text
        bills.append((bill_id, payment_id))
    accepted = []
    for bill in bills:
        responses = _race(owner, other, keys, bill)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409], [r.text for r in responses]
        loser = next(r for r in responses if r.status_code == 409)
        assert loser.json()["type"] in CONFLICTS, loser.text
        winner = next(r for r in responses if r.status_code == 201)
        accepted.append(winner.headers["Location"].rsplit("/", 1)[-1])
    for intent_id in accepted:
        views = [c.get(f"/v1/payments/{intent_id}") for c in (owner, other)]
        states = [v.json()["state"] for v in views if v.status_code == 200]
        assert states == ["succeeded"], [v.text for v in views]
    engine = create_engine(server.env["PISHKHAN_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            charges = conn.scalar(select(func.count()).select_from(sandbox_charges))
            paid = conn.scalar(
                select(func.count()).select_from(payables).where(payables.c.status == "paid")
            )
            sums = conn.execute(
                text("SELECT currency, SUM(amount_minor) FROM journal_postings GROUP BY currency")
            ).all()
    finally:
        engine.dispose()
    assert (charges, paid) == (BILLS, BILLS)
    assert [(currency, int(total)) for currency, total in sums] == [("IRR", 0)]
