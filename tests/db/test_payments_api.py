"""Payments through the service in process (FastAPI TestClient), on SQLite and PostgreSQL:
bills issued and paid with the sandbox provider, refunds, webhooks, and who may see what.

Every accepted payment's receipt passes the offline verifier; after every scenario the journal
balances per currency.
"""

from __future__ import annotations

from api.payments.runtime import charge_key
from payments import journal_store
from payments.bill_ids import make_bill_id, make_payment_id
from payments.intents import INTENT_TTL_S
from payments.sandbox import charge_ref_for
from signatures.canonical import JsonValue
from signatures.client import generate_private_key
from tests.db.payments_world import World
from tests.db.test_transactions_pipeline import (
    Party,
    assert_verifies,
    new_party,
    problem,
    register,
    signed,
)
from tests.idp import bearer

SANDBOX_SECRET = b"sandbox-test-secret-0123456789abcdef"
SUCCESS = "4242424242424242"
DECLINE = "4000000000000002"
THREE_DS = "4000000000003220"
AMOUNT = 1_770_000  # IRR: 1,770 thousand rials, as in the published vector


_bill_counter = iter(range(10_000, 99_999))


def bill_numbers(amount_minor: int = AMOUNT) -> tuple[str, str]:
    bill_id = make_bill_id(str(next(_bill_counter)), company_code="317", service_type=1)
    payment_id = make_payment_id(bill_id=bill_id, amount_minor=amount_minor, year_digit=5, period=3)
    return bill_id, payment_id


def issue_bill(
    w: World, debtor: str, *, amount_minor: int = AMOUNT, instalments: bool = False
) -> tuple[str, str, str]:
    bill_id, payment_id = bill_numbers(amount_minor)
    share = amount_minor // 3
    payload: dict[str, JsonValue] = {
        "kind": "bill",
        "debtor": debtor,
        "amount": {"amount_minor": amount_minor, "currency": "IRR"},
        "transfers": [
            {
                "account": "agency_revenue:water-tehran",
                "amount_minor": amount_minor - share,
                "category": "water_charge",
            },
            {"account": "agency_revenue:municipality", "amount_minor": share, "category": "sewage"},
        ],
        "due_on": "2026-12-20",
        "reference": bill_id,
        "payment_id": payment_id,
        "allows_instalments": instalments,
    }
    r = w.client.post(
        "/v1/transactions", json=signed(w.agency, "bill.issue", payload), headers=w.agency.headers
    )
    assert r.status_code == 201, r.text
    assert_verifies(r.json(), w.signer)
    return r.headers["Location"].rsplit("/", 1)[-1], bill_id, payment_id


def pay(
    w: World,
    payer: Party,
    *,
    payable_id: str | None = None,
    bill: tuple[str, str] | None = None,
    method: str = SUCCESS,
    amount_minor: int = AMOUNT,
) -> object:
    payload: dict[str, JsonValue] = {
        "amount": {"amount_minor": amount_minor, "currency": "IRR"},
        "provider": "sandbox",
        "payment_method": method,
    }
    if payable_id is not None:
        payload["payable_id"] = payable_id
    if bill is not None:
        payload["bill_id"], payload["payment_id"] = bill
    return w.client.post(
        "/v1/transactions", json=signed(payer, "payment.create", payload), headers=payer.headers
    )


def payment(w: World, party: Party, intent_id: str) -> dict[str, JsonValue]:
    r = w.client.get(f"/v1/payments/{intent_id}", headers=party.headers)
    assert r.status_code == 200, r.text
    body: dict[str, JsonValue] = r.json()
    return body


def payable(w: World, party: Party, payable_id: str) -> dict[str, JsonValue]:
    r = w.client.get(f"/v1/payables/{payable_id}", headers=party.headers)
    assert r.status_code == 200, r.text
    body: dict[str, JsonValue] = r.json()
    return body


def tx_id(r: object) -> str:
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    return str(r.headers["Location"]).rsplit("/", 1)[-1]  # type: ignore[attr-defined]


def balances(w: World) -> dict[tuple[str, str], int]:
    with w.engine.connect() as conn:
        return journal_store.balances(conn)


# --- paying a bill -------------------------------------------------------------------------------


def test_a_bill_paid_with_its_two_numbers_is_paid_once_and_booked_split(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payable_id, bill_id, payment_id = issue_bill(w, citizen.subject)
    r = pay(w, citizen, bill=(bill_id, payment_id))
    intent_id = tx_id(r)
    assert_verifies(r.json(), w.signer)
    recorded = w.client.get(f"/v1/transactions/{intent_id}", headers=citizen.headers).json()
    assert recorded["result"]["state"] == "created"  # what the signed transaction itself did
    view = payment(w, citizen, intent_id)
    assert view["state"] == "succeeded"
    assert [e["to"] for e in view["events"]] == ["created", "succeeded"]  # type: ignore[index,union-attr]
    assert payable(w, citizen, payable_id)["status"] == "paid"
    share = AMOUNT // 3
    books = balances(w)
    assert books[("agency_revenue:water-tehran", "IRR")] == -(AMOUNT - share)
    assert books[("agency_revenue:municipality", "IRR")] == -share
    assert books[("provider_clearing:sandbox", "IRR")] == AMOUNT
    again = pay(w, citizen, payable_id=payable_id)
    problem(again, 409, "payable-already-paid")
    with w.engine.connect() as conn:
        assert len(w.sandbox.settlements(w.clock().date())) == 1
        assert journal_store.balances(conn)[("provider_clearing:sandbox", "IRR")] == AMOUNT


def test_an_amount_that_disagrees_with_the_payment_id_is_refused_naming_the_field(
    world: World,
) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    _, bill_id, payment_id = issue_bill(w, citizen.subject)
    body = problem(
        pay(w, citizen, bill=(bill_id, payment_id), amount_minor=AMOUNT + 1000),
        400,
        "payload-invalid",
    )
    assert body["errors"] == [
        {
            "field": "/envelope/payload/amount/amount_minor",
            "rule": "amount_mismatch",
            "message": "the amount in the payment ID differs from the amount of the bill",
        }
    ]
    wrong_check = payment_id[:-1] + str((int(payment_id[-1]) + 1) % 10)
    body = problem(pay(w, citizen, bill=(bill_id, wrong_check)), 400, "payload-invalid")
    assert body["errors"][0]["rule"] == "payment_id_second_check_digit"  # type: ignore[index]


def test_a_declined_card_fails_the_payment_and_frees_the_bill(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    declined = tx_id(pay(w, citizen, payable_id=payable_id, method=DECLINE))
    view = payment(w, citizen, declined)
    assert (view["state"], view["failure_code"]) == ("failed", "card_declined")
    assert payable(w, citizen, payable_id)["status"] == "open"
    assert balances(w) == {}
    paid = tx_id(pay(w, citizen, payable_id=payable_id))
    assert payment(w, citizen, paid)["state"] == "succeeded"


def test_a_second_payment_while_one_is_in_progress_is_409_and_never_charged(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    first = tx_id(pay(w, citizen, payable_id=payable_id, method=THREE_DS))
    view = payment(w, citizen, first)
    assert view["state"] == "requires_action"
    assert str(view["action_url"]).startswith("https://sandbox.pishkhan.invalid/3ds/")
    second = pay(w, citizen, payable_id=payable_id)
    problem(second, 409, "payment-in-progress")
    assert w.sandbox.settlements(w.clock().date()) == []
    r = w.client.post(f"/v1/payments/{first}/confirm", headers=citizen.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "succeeded"
    causes = [e["cause"] for e in r.json()["events"]]
    assert causes == [
        "payer.created",
        "provider.requires_action",
        "payer.confirmed",
        "provider.succeeded",
    ]
    assert payable(w, citizen, payable_id)["status"] == "paid"


def test_the_payer_cancels_a_challenge_and_may_pay_again(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    first = tx_id(pay(w, citizen, payable_id=payable_id, method=THREE_DS))
    r = w.client.post(f"/v1/payments/{first}/cancel", headers=citizen.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    problem(
        w.client.post(f"/v1/payments/{first}/cancel", headers=citizen.headers),
        409,
        "payment-state-conflict",
    )
    assert (
        payment(w, citizen, tx_id(pay(w, citizen, payable_id=payable_id)))["state"] == "succeeded"
    )


def test_an_abandoned_challenge_expires_and_frees_the_payable(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    first = tx_id(pay(w, citizen, payable_id=payable_id, method=THREE_DS))
    w.clock.advance_past(str(payment(w, citizen, first)["created_at"]), INTENT_TTL_S + 1)
    assert w.client.app.state.payments.expire_due() == 1  # type: ignore[attr-defined]
    assert payment(w, citizen, first)["state"] == "expired"
    assert payable(w, citizen, payable_id)["status"] == "open"
    # ... and the challenge is cancelled at the provider: the payer cannot finish it later.
    ref = charge_ref_for(charge_key(first))
    assert w.sandbox.retrieve_charge(ref).status.value == "cancelled"


# --- webhooks ------------------------------------------------------------------------------------


def _deliver(w: World, body: bytes, headers: dict[str, str]) -> object:
    sent = {"Content-Type": "application/json", **headers}
    return w.client.post("/v1/providers/sandbox/webhooks", content=body, headers=sent)


def test_webhooks_delivered_twice_or_out_of_order_change_nothing_twice(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    for method, expected in (
        ("pm_sandbox_webhook_twice", ["unchanged", "duplicate"]),
        ("pm_sandbox_webhook_out_of_order", ["unchanged", "stale"]),
    ):
        payable_id, *_ = issue_bill(w, citizen.subject)
        intent_id = tx_id(pay(w, citizen, payable_id=payable_id, method=method))
        outcomes = []
        for delivery in w.sandbox.webhook_deliveries(charge_ref_for(charge_key(intent_id))):
            r = _deliver(w, delivery.body, delivery.headers)
            assert r.status_code == 200, r.text  # type: ignore[attr-defined]
            outcomes.append(r.json()["outcome"])  # type: ignore[attr-defined]
        assert outcomes == expected, method
        assert payment(w, citizen, intent_id)["state"] == "succeeded"
    assert balances(w)[("provider_clearing:sandbox", "IRR")] == 2 * AMOUNT


def test_a_forged_or_altered_webhook_is_400_and_applies_nothing(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    intent_id = tx_id(pay(w, citizen, payable_id=payable_id))
    delivery = w.sandbox.webhook_deliveries(charge_ref_for(charge_key(intent_id)))[0]
    altered = delivery.body.replace(b"succeeded", b"failed")
    body = problem(_deliver(w, altered, delivery.headers), 400, "webhook-signature")
    assert body["errors"][0]["rule"] == "no_matching_signature"  # type: ignore[index]
    problem(_deliver(w, delivery.body, {}), 400, "webhook-signature")
    assert payment(w, citizen, intent_id)["state"] == "succeeded"


# --- refunds -------------------------------------------------------------------------------------


def refund(w: World, intent_id: str, amount_minor: int, expected: int) -> object:
    payload: dict[str, JsonValue] = {
        "payment": intent_id,
        "amount": {"amount_minor": amount_minor, "currency": "IRR"},
        "expected_refundable_minor": expected,
        "reason": "meter misread",
    }
    return w.client.post(
        "/v1/transactions",
        json=signed(w.agency, "refund.create", payload),
        headers=w.agency.headers,
    )


def test_partial_refunds_are_compare_and_set_and_book_compensating_entries(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    intent_id = tx_id(pay(w, citizen, payable_id=payable_id))
    first = tx_id(refund(w, intent_id, 300_000, AMOUNT))
    stale = refund(w, intent_id, 100_000, AMOUNT)
    body = problem(stale, 412, "refundable-amount-changed")
    assert "1470000" in str(body["detail"])
    problem(refund(w, intent_id, AMOUNT, AMOUNT - 300_000), 409, "amount-refused")
    view = payment(w, citizen, intent_id)
    assert [(r["refund"], r["state"]) for r in view["refunds"]] == [(first, "succeeded")]  # type: ignore[index,union-attr]
    books = balances(w)
    assert books[("provider_clearing:sandbox", "IRR")] == AMOUNT - 300_000
    refunds = sum(v for (account, _), v in books.items() if account.startswith("agency_refunds:"))
    assert refunds == 300_000
    assert payable(w, citizen, payable_id)["refunded_minor"] == 300_000


def test_only_the_issuing_agency_may_refund_and_others_see_404(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    intent_id = tx_id(pay(w, citizen, payable_id=payable_id))
    other = Party(
        "agency:gas-tehran", bearer("agency:gas-tehran", "agency"), generate_private_key("EdDSA")
    )  # type: ignore[arg-type]
    register(w.client, other)
    payload: dict[str, JsonValue] = {
        "payment": intent_id,
        "amount": {"amount_minor": 1000, "currency": "IRR"},
        "expected_refundable_minor": AMOUNT,
        "reason": "not mine",
    }
    r = w.client.post(
        "/v1/transactions", json=signed(other, "refund.create", payload), headers=other.headers
    )
    problem(r, 404, "payment-not-found")
    problem(
        w.client.get(f"/v1/payments/{intent_id}", headers=other.headers), 404, "payment-not-found"
    )
    stranger = new_party(w.client, w.rng)
    problem(
        w.client.get(f"/v1/payables/{payable_id}", headers=stranger.headers),
        404,
        "payable-not-found",
    )
    problem(
        w.client.get(f"/v1/payments/{intent_id}", headers=stranger.headers),
        404,
        "payment-not-found",
    )
    problem(pay(w, stranger, payable_id=payable_id), 404, "payable-not-found")
    assert payment(w, w.agency, intent_id)["state"] == "succeeded"


def test_lists_show_each_caller_only_its_own(world: World) -> None:
    w = world
    alice, bob = new_party(w.client, w.rng), new_party(w.client, w.rng)
    mine = {issue_bill(w, alice.subject)[0] for _ in range(3)}
    theirs = issue_bill(w, bob.subject)[0]
    r = w.client.get("/v1/payables?limit=2", headers=alice.headers)
    assert r.status_code == 200, r.text
    first = r.json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    r = w.client.get(f"/v1/payables?limit=2&cursor={first['next_cursor']}", headers=alice.headers)
    seen = {p["payable_id"] for p in first["items"] + r.json()["items"]}
    assert seen == mine
    issued = w.client.get("/v1/payables?limit=100", headers=w.agency.headers).json()["items"]
    assert {p["payable_id"] for p in issued} == mine | {theirs}
    problem(w.client.get("/v1/payables?cursor=zzz", headers=alice.headers), 400, "invalid-cursor")


def test_a_charge_whose_answer_timed_out_is_asked_again_never_forgotten(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    first = tx_id(pay(w, citizen, payable_id=payable_id, method="pm_sandbox_timeout"))
    view = payment(w, citizen, first)
    assert (view["state"], view["failure_code"]) == ("created", "charge_outcome_unknown")
    problem(pay(w, citizen, payable_id=payable_id), 409, "payment-in-progress")
    # The payer gives up; the service asks the sandbox again first, finds the charge it made,
    # and books it instead of freeing the bill for a second charge.
    r = w.client.post(f"/v1/payments/{first}/cancel", headers=citizen.headers)
    problem(r, 409, "payment-state-conflict")
    view = payment(w, citizen, first)
    assert (view["state"], view.get("failure_code")) == ("succeeded", None)
    assert payable(w, citizen, payable_id)["status"] == "paid"
    assert balances(w)[("provider_clearing:sandbox", "IRR")] == AMOUNT


def test_the_expiry_sweep_asks_about_a_lost_answer_before_expiring(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    first = tx_id(pay(w, citizen, payable_id=payable_id, method="pm_sandbox_timeout"))
    w.clock.advance_past(str(payment(w, citizen, first)["created_at"]), INTENT_TTL_S + 1)
    assert w.client.app.state.payments.expire_due() == 0  # type: ignore[attr-defined]
    assert payment(w, citizen, first)["state"] == "succeeded"
    assert payable(w, citizen, payable_id)["status"] == "paid"


def _issue_fee(w: World, payload: dict[str, JsonValue]) -> object:
    body = signed(w.agency, "fee.issue", payload)
    return w.client.post("/v1/transactions", json=body, headers=w.agency.headers)


def test_a_fee_is_the_one_in_force_today_with_its_legal_source(world: World) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    payload: dict[str, JsonValue] = {
        "service_code": "passport.issue",
        "debtor": citizen.subject,
        "due_on": "2026-12-31",
        "reference": "case-1",
    }
    payable_id = tx_id(_issue_fee(w, payload))
    view = payable(w, citizen, payable_id)
    assert view["amount"] == {"amount_minor": 25_000_000, "currency": "IRR"}
    assert view["transfers"] == [
        {"account": "agency_revenue:water-tehran", "amount_minor": 25_000_000, "category": "fee"}
    ]
    recorded = w.client.get(f"/v1/transactions/{payable_id}", headers=w.agency.headers).json()
    assert recorded["result"]["fee"]["legal_source"]["reference"].startswith("ILLUSTRATIVE/")
    unknown = _issue_fee(w, {**payload, "service_code": "no.such.service"})
    problem(unknown, 409, "fee-not-in-force")


def test_a_fee_payload_is_judged_by_the_payable_rules(world: World) -> None:
    w = world
    bad: dict[str, JsonValue] = {
        "service_code": "passport.issue",
        "debtor": "ir-nid:0499370898",
        "due_on": "2026-02-30",
        "reference": "case 1",
    }
    body = problem(_issue_fee(w, bad), 400, "payload-invalid")
    rules = {e["field"]: e["rule"] for e in body["errors"]}  # type: ignore[index,union-attr]
    assert rules == {
        "/envelope/payload/debtor": "invalid_check_digit",
        "/envelope/payload/due_on": "invalid_date",
        "/envelope/payload/reference": "invalid_format",
    }
