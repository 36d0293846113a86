"""What payments gives the domains above it, on SQLite and PostgreSQL: fines issued with
bill.issue, the unpaid payables of a debtor (and tax clearance from them), cancelling a payable
nobody is paying, and the paid hooks, run once in the payment's own transaction when a payable
becomes paid through a real payment (the service in process, sandbox provider)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine

from payments import paid_hooks, payable_store, payment_flow
from payments.intents import INTENT_TTL_S
from payments.payable_store import StoredPayable, unpaid_payables
from payments.payables import Payable, PayableKind, PayableStatus, apply_payment
from signatures.canonical import JsonValue
from tax.clearance import overdue_tax
from tests.db.payments_world import World
from tests.db.test_payments_api import (
    AMOUNT,
    balances,
    bill_numbers,
    pay,
    payable,
    payment,
    tx_id,
)
from tests.db.test_payments_store import DEBTOR, OTHER_DEBTOR, T0, a_payable, add_intent
from tests.db.test_transactions_pipeline import new_party, problem, signed

DUE = date(2025, 4, 20)


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as connection:
        yield connection


def _owed(
    payable_id: str,
    kind: PayableKind,
    *,
    due_on: date = DUE,
    debtor: str = DEBTOR,
    paid_minor: int = 0,
    cancelled: bool = False,
) -> StoredPayable:
    stored = a_payable(payable_id, debtor=debtor)
    owed: Payable = replace(stored.payable, kind=kind, due_on=due_on)
    if paid_minor:
        owed = apply_payment(owed, amount_minor=paid_minor)
    if cancelled:
        owed = replace(owed, status=PayableStatus.CANCELLED)
    return replace(stored, payable=owed)


# --- unpaid payables and tax clearance -----------------------------------------------------------


def test_unpaid_payables_filters_by_kind_status_and_due_day(conn: Connection) -> None:
    rows = [
        _owed("fine-late", PayableKind.FINE, due_on=date(2025, 3, 1), paid_minor=400),
        _owed("fine-open", PayableKind.FINE, due_on=date(2025, 4, 1)),
        _owed("fine-paid", PayableKind.FINE, paid_minor=1000),
        _owed("fine-cancelled", PayableKind.FINE, cancelled=True),
        _owed("fine-other", PayableKind.FINE, debtor=OTHER_DEBTOR),
        _owed("tax-due-today", PayableKind.TAX, due_on=date(2025, 5, 1)),
        _owed("tax-overdue", PayableKind.TAX, due_on=date(2025, 4, 30)),
        _owed("fee-open", PayableKind.FEE),
    ]
    for row in rows:
        payable_store.insert_payable(conn, row)

    def ids(found: list[StoredPayable]) -> list[str]:
        return [s.payable.payable_id for s in found]

    fines = unpaid_payables(conn, debtor=DEBTOR, kinds=(PayableKind.FINE,))
    assert ids(fines) == ["fine-late", "fine-open"]  # oldest due first; paid, cancelled left out
    assert fines[0] == rows[0]  # the whole row, partly paid
    both = unpaid_payables(conn, debtor=DEBTOR, kinds={PayableKind.FINE, PayableKind.TAX})
    assert ids(both) == ["fine-late", "fine-open", "tax-overdue", "tax-due-today"]
    due_before = unpaid_payables(
        conn, debtor=DEBTOR, kinds=(PayableKind.TAX,), due_before=date(2025, 5, 1)
    )
    assert ids(due_before) == ["tax-overdue"]  # due on the day itself is not before it
    assert ids(unpaid_payables(conn, debtor=DEBTOR, kinds=(PayableKind.FINE,), limit=1)) == [
        "fine-late"
    ]
    assert unpaid_payables(conn, debtor="ir-nid:0000000000", kinds=(PayableKind.FINE,)) == []
    assert ids(overdue_tax(conn, taxpayer=DEBTOR, on=date(2025, 5, 1))) == ["tax-overdue"]
    assert ids(overdue_tax(conn, taxpayer=DEBTOR, on=date(2025, 5, 2))) == [
        "tax-overdue",
        "tax-due-today",
    ]
    assert overdue_tax(conn, taxpayer=DEBTOR, on=date(2025, 4, 30)) == []
    with pytest.raises(ValueError, match="kind"):
        unpaid_payables(conn, debtor=DEBTOR, kinds=())
    for limit in (0, payable_store.MAX_DEBTS_LISTED + 1):
        with pytest.raises(ValueError):
            unpaid_payables(conn, debtor=DEBTOR, kinds=(PayableKind.FINE,), limit=limit)


# --- cancelling a payable nobody pays ------------------------------------------------------------


def _status(conn: Connection, payable_id: str) -> str:
    found = payable_store.get_payable(conn, payable_id)
    assert found is not None
    return found.payable.status.value


def test_an_open_or_partly_paid_payable_is_cancelled_once(conn: Connection) -> None:
    now = T0 + timedelta(days=1)
    payable_store.insert_payable(conn, _owed("open", PayableKind.FEE))
    payable_store.insert_payable(conn, _owed("part", PayableKind.FEE, paid_minor=300))
    payable_store.insert_payable(conn, _owed("paid", PayableKind.FEE, paid_minor=1000))
    assert payment_flow.cancel_open_payable(conn, "open", now=now)
    assert _status(conn, "open") == "cancelled"
    assert not payment_flow.cancel_open_payable(conn, "open", now=now)  # already
    assert payment_flow.cancel_open_payable(conn, "part", now=now)
    part = payable_store.get_payable(conn, "part")
    assert part is not None and part.payable.paid_minor == 300  # stays refundable
    assert not payment_flow.cancel_open_payable(conn, "paid", now=now)
    assert _status(conn, "paid") == "paid"
    assert not payment_flow.cancel_open_payable(conn, "missing", now=now)


def _reserved(conn: Connection, payable_id: str, *, created_at: datetime) -> str:
    stored = _owed(payable_id, PayableKind.FEE)
    payable_store.insert_payable(conn, stored)
    intent = add_intent(conn, f"intent-{payable_id}", stored, created_at=created_at)
    payable_store.update_payable(conn, replace(stored, active_intent_id=intent.intent.intent_id))
    return intent.intent.intent_id


def test_a_payable_being_paid_is_not_cancelled(conn: Connection) -> None:
    now = T0 + timedelta(seconds=INTENT_TTL_S)
    in_progress = _reserved(conn, "busy", created_at=now - timedelta(seconds=1))
    assert not payment_flow.cancel_open_payable(conn, "busy", now=now)
    busy = payable_store.get_payable(conn, "busy")
    assert busy is not None and busy.active_intent_id == in_progress
    assert busy.payable.status is PayableStatus.OPEN
    # Past its time to live the intent expires now and the payable is cancelled …
    stale = _reserved(conn, "stale", created_at=T0 - timedelta(seconds=1))
    assert payment_flow.cancel_open_payable(conn, "stale", now=now)
    assert _status(conn, "stale") == "cancelled"
    expired = payment_flow.lock_intent(conn, stale)
    assert expired is not None and expired.intent.state.value == "expired"
    # … unless the answer to its charge was lost: the provider may hold the money.
    unknown = _reserved(conn, "unknown", created_at=T0 - timedelta(seconds=1))
    payment_flow.mark_outcome_unknown(conn, unknown, at=T0)
    assert not payment_flow.cancel_open_payable(conn, "unknown", now=now)
    assert _status(conn, "unknown") == "open"


# --- fines through bill.issue --------------------------------------------------------------------


def _issue(w: World, debtor: str, *, kind: str, instalments: bool = False) -> object:
    bill_id, payment_id = bill_numbers()
    payload: dict[str, JsonValue] = {
        "kind": kind,
        "debtor": debtor,
        "amount": {"amount_minor": AMOUNT, "currency": "IRR"},
        "transfers": [
            {"account": "agency_revenue:water-tehran", "amount_minor": AMOUNT, "category": "fine"}
        ],
        "due_on": "2026-12-20",
        "reference": bill_id,
        "payment_id": payment_id,
        "allows_instalments": instalments,
    }
    body = signed(w.agency, "bill.issue", payload)
    return w.client.post("/v1/transactions", json=body, headers=w.agency.headers)


def test_bill_issue_issues_fines_and_bills_only(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    fine_id = tx_id(_issue(w, citizen.subject, kind="fine"))
    assert payable(w, citizen, fine_id)["kind"] == "fine"
    for kind in ("fee", "tax"):
        body = problem(_issue(w, citizen.subject, kind=kind), 400, "payload-invalid")
        assert body["errors"] == [
            {
                "field": "/envelope/payload/kind",
                "rule": "not_a_bill",
                "message": "bill.issue issues bills and fines only",
            }
        ]


# --- paid hooks through a real payment -----------------------------------------------------------


@dataclass
class Recorder:
    """A paid hook that records what it saw (and what the transaction saw), or raises."""

    seen: list[tuple[str, str, int]] = field(default_factory=list)
    fail: bool = False

    def __call__(self, conn: Connection, paid: Payable, at: datetime) -> None:
        if self.fail:
            raise RuntimeError("the hook failed")
        stored = payable_store.get_payable(conn, paid.payable_id)
        assert stored is not None and at.tzinfo is not None
        # In the payment's own transaction: the payable is already written as paid.
        self.seen.append((paid.payable_id, stored.payable.status.value, stored.payable.paid_minor))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    hook = Recorder()
    paid_hooks.register_paid_hook(hook)
    paid_hooks.register_paid_hook(hook)  # idempotent: it still runs once per payable
    try:
        yield hook
    finally:
        paid_hooks.unregister_paid_hook(hook)
    assert hook not in paid_hooks.paid_hooks()


def test_the_hook_runs_once_when_the_payable_becomes_paid(world: World, recorder: Recorder) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    fine_id = tx_id(_issue(w, citizen.subject, kind="fine", instalments=True))
    part = tx_id(pay(w, citizen, payable_id=fine_id, amount_minor=AMOUNT - 70_000))
    assert payment(w, citizen, part)["state"] == "succeeded"
    assert payable(w, citizen, fine_id)["status"] == "partially_paid"
    assert recorder.seen == []  # an instalment does not pay it
    rest = tx_id(pay(w, citizen, payable_id=fine_id, amount_minor=70_000))
    assert payment(w, citizen, rest)["state"] == "succeeded"
    assert recorder.seen == [(fine_id, "paid", AMOUNT)]
    problem(pay(w, citizen, payable_id=fine_id, amount_minor=1_000), 409, "payable-already-paid")
    assert recorder.seen == [(fine_id, "paid", AMOUNT)]


def test_a_hook_that_raises_rolls_the_payment_back(world: World, recorder: Recorder) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    fine_id = tx_id(_issue(w, citizen.subject, kind="fine"))
    recorder.fail = True
    body = signed(
        citizen,
        "payment.create",
        {
            "payable_id": fine_id,
            "amount": {"amount_minor": AMOUNT, "currency": "IRR"},
            "provider": "sandbox",
            "payment_method": "4242424242424242",
        },
    )
    headers = {**citizen.headers, "Idempotency-Key": "pay-the-fine"}
    first = w.client.post("/v1/transactions", json=body, headers=headers)
    intent_id = tx_id(first)  # the signed instruction stands
    assert payment(w, citizen, intent_id)["state"] == "created"  # its booking rolled back
    assert payable(w, citizen, fine_id)["status"] == "open"
    assert balances(w) == {}
    assert recorder.seen == []
    # The payer's retry asks the provider again (same charge key) and books it, hook and all.
    recorder.fail = False
    again = w.client.post("/v1/transactions", json=body, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert payment(w, citizen, intent_id)["state"] == "succeeded"
    assert payable(w, citizen, fine_id)["status"] == "paid"
    assert recorder.seen == [(fine_id, "paid", AMOUNT)]
    assert len(w.sandbox.settlements(w.clock().date())) == 1  # charged once at the provider
    assert balances(w)[("agency_revenue:water-tehran", "IRR")] == -AMOUNT


def test_hooks_run_only_for_a_paid_payable(conn: Connection) -> None:
    with pytest.raises(ValueError, match="paid"):
        paid_hooks.run_paid_hooks(conn, _owed("x", PayableKind.FINE).payable, at=T0)
