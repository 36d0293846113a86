"""Stripe end to end through the service in process (FastAPI TestClient), on SQLite and
PostgreSQL: payment.create with provider "stripe", refunds, inbound Stripe webhooks and the
reconciliation report, against localstripe (tests/localstripe_server.py, a child process on
127.0.0.1; one per module, shared by both databases' runs).

What is paid is a fee in EUR. Bills cannot go through Stripe: bill.issue is IRR only (the
payment ID encodes rials) and Stripe has no IRR, so the world's fee book has one EUR fee, a
currency both payments.currency (exponent 2) and the adapter's STRIPE_CURRENCIES accept. An IRR
bill sent to Stripe is refused before it is signed into the ledger.

Every socket the tests open is checked to be a loopback one (the adapter tests' guard).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from api.payments.runtime import PaymentsRuntime, charge_key, refund_key
from api.settings import Settings
from ledger.note import NoteSigner
from payments import intent_store, journal_store
from payments.bill_ids import DEFAULT_BILL_SERVICE_TYPES
from payments.fees import load_fee_schedules
from payments.handlers import PaymentsConfig
from payments.intents import INTENT_TTL_S
from payments.providers import PaymentProvider
from payments.sandbox import SandboxProvider
from payments.sandbox_sql import SqlSandboxRecords
from payments.schema import provider_events
from payments.stripe_provider import STRIPE_CURRENCIES, StripeProvider
from signatures.canonical import JsonValue
from signatures.client import generate_private_key
from tests.db.conftest import ORIGIN
from tests.db.payments_world import SANDBOX_SECRET, Clock, World
from tests.db.test_payments_api import balances, issue_bill, payable, payment, tx_id
from tests.db.test_transactions_pipeline import (
    Party,
    assert_verifies,
    new_party,
    problem,
    register,
    signed,
)
from tests.idp import bearer, verifier
from tests.localstripe_server import TEST_API_KEY, LocalStripe
from tests.unit.payments import test_stripe_provider as adapter_tests
from tests.unit.payments.test_stripe_provider import CARD_3DS, _authenticate, _card, _sign

# The adapter tests' fixtures, used here by name: the loopback guard (autouse), localstripe
# (one child process per module), the raw SDK client, and a provider whose API refuses
# connections.
_loopback_only = adapter_tests._loopback_only
localstripe = adapter_tests.localstripe
raw = adapter_tests.raw
offline = adapter_tests.offline

WHSEC = "whsec_pishkhan_service_test_0001"
AGENCY = "agency:consular-affairs"
AGENCY_OWNER = "consular-affairs"
FEE_SERVICE = "consular.visa"
FEE_MINOR = 4_500  # EUR 45.00
EUR = "EUR"
VISA = "pm_card_visa"  # localstripe: succeeds
DECLINED = "pm_card_chargeCustomerFail"  # localstripe: card_declined
PARTIAL_REFUND_MINOR = 1_500

EUR_FEE_BOOK = json.dumps(
    {
        "format": "pishkhan.fee_schedules/1",
        "note": "Test data: a consular fee charged in euros, payable through Stripe.",
        "services": [
            {
                "service_code": FEE_SERVICE,
                "title": "Visa fee (test)",
                "periods": [
                    {
                        "valid_from": "2024-01-01",
                        "valid_until": None,
                        "amount_minor": FEE_MINOR,
                        "currency": EUR,
                        "legal_source": {"title": "Test schedule", "reference": "TEST/visa"},
                    }
                ],
            }
        ],
    }
).encode()


# --- the world: the service with the sandbox and Stripe (localstripe) ----------------------------


@pytest.fixture
def stripe_world(engine: Engine, signer: NoteSigner, localstripe: LocalStripe) -> Iterator[World]:
    settings = Settings.model_construct(ledger_origin=ORIGIN, rate_limit_per_minute=10_000)
    clock = Clock()
    sandbox = SandboxProvider(
        records=SqlSandboxRecords(engine), now=clock, webhook_secrets=[SANDBOX_SECRET]
    )
    stripe_provider = StripeProvider(
        api_key=TEST_API_KEY, webhook_secrets=[WHSEC], api_base=localstripe.api_base, timeout_s=10
    )
    providers: dict[str, PaymentProvider] = {"sandbox": sandbox, "stripe": stripe_provider}
    config = PaymentsConfig(
        service_types=DEFAULT_BILL_SERVICE_TYPES,
        fee_book=load_fee_schedules(EUR_FEE_BOOK),
        providers=frozenset(providers),
        currencies={"stripe": STRIPE_CURRENCIES},
    )
    runtime = PaymentsRuntime(engine, config=config, providers=providers, clock=clock)
    app = create_app(
        settings,
        engine=engine,
        checkpoint_signer=signer,
        token_verifier=verifier(),
        payments_runtime_=runtime,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        agency = Party(AGENCY, bearer(AGENCY, "agency"), generate_private_key("EdDSA"))
        register(client, agency)
        yield World(client, engine, signer, clock, sandbox, agency, random.Random(11))
    with engine.connect() as conn:
        totals = journal_store.book_totals(conn)
    assert all(total == 0 for total in totals.values()), totals


def runtime_of(w: World) -> PaymentsRuntime:
    runtime: PaymentsRuntime = w.client.app.state.payments  # type: ignore[attr-defined]
    return runtime


_fee_counter = iter(range(1, 1_000_000))


def issue_fee(w: World, debtor: str) -> str:
    payload: dict[str, JsonValue] = {
        "service_code": FEE_SERVICE,
        "debtor": debtor,
        "due_on": "2026-12-20",
        "reference": f"visa-{next(_fee_counter)}",
    }
    r = w.client.post(
        "/v1/transactions", json=signed(w.agency, "fee.issue", payload), headers=w.agency.headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["result"]["amount"] == {"amount_minor": FEE_MINOR, "currency": EUR}
    return tx_id(r)


def payment_create(
    payer: Party, payable_id: str, *, method: str = VISA, amount: dict[str, JsonValue] | None = None
) -> dict[str, JsonValue]:
    """A signed payment.create through Stripe (the request body)."""
    payload: dict[str, JsonValue] = {
        "payable_id": payable_id,
        "amount": amount or {"amount_minor": FEE_MINOR, "currency": EUR},
        "provider": "stripe",
        "payment_method": method,
    }
    return signed(payer, "payment.create", payload)


def submit(w: World, payer: Party, body: dict[str, JsonValue], *, idempotency_key: str) -> Any:
    headers = {**payer.headers, "Idempotency-Key": idempotency_key}
    return w.client.post("/v1/transactions", json=body, headers=headers)


def pay_stripe(
    w: World,
    payer: Party,
    payable_id: str,
    *,
    method: str = VISA,
    amount: dict[str, JsonValue] | None = None,
) -> Any:
    body = payment_create(payer, payable_id, method=method, amount=amount)
    return w.client.post("/v1/transactions", json=body, headers=payer.headers)


def refund_eur(w: World, intent_id: str, amount_minor: int, expected_minor: int) -> Any:
    payload: dict[str, JsonValue] = {
        "payment": intent_id,
        "amount": {"amount_minor": amount_minor, "currency": EUR},
        "expected_refundable_minor": expected_minor,
        "reason": "visa application withdrawn",
    }
    return w.client.post(
        "/v1/transactions",
        json=signed(w.agency, "refund.create", payload),
        headers=w.agency.headers,
    )


def stripe_ref(w: World, intent_id: str) -> str:
    """The PaymentIntent id the service stored for the intent."""
    with w.engine.connect() as conn:
        stored = intent_store.get_intent(conn, intent_id)
    assert stored is not None and stored.intent.provider_ref is not None
    return stored.intent.provider_ref


def stripe_intents_of(raw: stripe.StripeClient, intent_id: str) -> list[str]:
    """The PaymentIntents at localstripe whose metadata names our intent (every page)."""
    listed = raw.v1.payment_intents.list({"limit": 100}).auto_paging_iter()
    return [pi.id for pi in listed if pi.metadata.to_dict() == {"intent_id": intent_id}]


def charges_of(raw: stripe.StripeClient, pi_id: str) -> list[str]:
    listed = raw.v1.charges.list({"limit": 100}).auto_paging_iter()
    return [c.id for c in listed if c.payment_intent == pi_id]


def adapter_params(intent_id: str) -> Any:
    """The PaymentIntent parameters the adapter sends for a fee paid with VISA, in its order
    (localstripe's idempotency replay compares the exact request bytes)."""
    return {
        "amount": FEE_MINOR,
        "currency": "eur",
        "payment_method": VISA,
        "allowed_payment_method_types": ["card"],
        "confirm": True,
        "metadata": {"intent_id": intent_id},
    }


def stripe_event(w: World, event_type: str, obj: dict[str, Any], *, event_id: str) -> bytes:
    """A Stripe event as Stripe sends it (indented JSON: the exact bytes are what is signed),
    created now on the service's clock."""
    event: dict[str, Any] = {"id": event_id, "object": "event", "api_version": "2026-10-28.endive"}
    event |= {"created": int(w.clock().timestamp()), "livemode": False, "type": event_type}
    event["data"] = {"object": obj}
    return json.dumps(event, indent=2).encode()


def deliver(w: World, body: bytes, *, secret: str = WHSEC, timestamp_s: int | None = None) -> Any:
    at = int(w.clock().timestamp()) if timestamp_s is None else timestamp_s
    headers = {"Content-Type": "application/json", "Stripe-Signature": _sign(body, secret, at)}
    return w.client.post("/v1/providers/stripe/webhooks", content=body, headers=headers)


def members(body: dict[str, JsonValue], key: str) -> list[dict[str, JsonValue]]:
    """The list of objects body[key] (events, refunds, errors), typed for the assertions."""
    value = body[key]
    assert isinstance(value, list)
    found: list[dict[str, JsonValue]] = []
    for item in value:
        assert isinstance(item, dict)
        found.append(item)
    return found


def outcome(r: Any) -> str:
    assert r.status_code == 200, r.text
    return str(r.json()["outcome"])


def three_d_secure_payment(
    w: World, raw: stripe.StripeClient, payer: Party, payable_id: str
) -> tuple[str, str]:
    """A Stripe payment waiting for the payer's 3-D Secure challenge: (intent id, pi id)."""
    intent_id = tx_id(pay_stripe(w, payer, payable_id, method=_card(raw, CARD_3DS)))
    view = payment(w, payer, intent_id)
    assert view["state"] == "requires_action"
    # localstripe answers with next_action use_stripe_sdk (no redirect): no action_url to show.
    assert "action_url" not in view
    return intent_id, stripe_ref(w, intent_id)


# --- paying through Stripe ----------------------------------------------------------------------


def test_a_fee_paid_through_stripe_is_charged_once_with_our_key_and_booked(
    stripe_world: World, raw: stripe.StripeClient
) -> None:
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id = issue_fee(w, citizen.subject)
    body = payment_create(citizen, payable_id)
    r = submit(w, citizen, body, idempotency_key="pay-visa-1")
    intent_id = tx_id(r)
    assert_verifies(r.json(), w.signer)
    view = payment(w, citizen, intent_id)
    assert (view["state"], view["provider"]) == ("succeeded", "stripe")
    assert view["amount"] == {"amount_minor": FEE_MINOR, "currency": EUR}
    assert [e["to"] for e in members(view, "events")] == ["created", "succeeded"]
    assert payable(w, citizen, payable_id)["status"] == "paid"
    assert balances(w) == {
        ("provider_clearing:stripe", EUR): FEE_MINOR,
        (f"agency_revenue:{AGENCY_OWNER}", EUR): -FEE_MINOR,
    }
    pi_id = stripe_ref(w, intent_id)
    assert stripe_intents_of(raw, intent_id) == [pi_id]
    created = raw.v1.payment_intents.retrieve(pi_id)
    assert (created.status, created.amount, created.currency) == ("succeeded", FEE_MINOR, "eur")
    assert len(charges_of(raw, pi_id)) == 1
    # Our key reached Stripe: the same request under charge_key(intent_id) replays Stripe's first
    # answer, and the key with other parameters is refused as reused.
    params = adapter_params(intent_id)
    replay = raw.v1.payment_intents.create(params, {"idempotency_key": charge_key(intent_id)})
    assert replay.id == pi_id
    assert replay.last_response is not None
    assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        other: Any = {**params, "amount": FEE_MINOR + 1}
        raw.v1.payment_intents.create(other, {"idempotency_key": charge_key(intent_id)})
    # Retrying the signed transaction with its Idempotency-Key returns the receipt, charges
    # nothing more.
    again = submit(w, citizen, body, idempotency_key="pay-visa-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == r.content
    assert stripe_intents_of(raw, intent_id) == [pi_id]
    assert len(charges_of(raw, pi_id)) == 1


def test_a_declined_stripe_card_fails_the_payment_and_frees_the_fee(
    stripe_world: World, raw: stripe.StripeClient
) -> None:
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id = issue_fee(w, citizen.subject)
    declined = tx_id(pay_stripe(w, citizen, payable_id, method=DECLINED))
    view = payment(w, citizen, declined)
    assert (view["state"], view["failure_code"]) == ("failed", "card_declined")
    assert members(view, "events")[-1]["detail"] == "card_declined"
    pi_id = stripe_ref(w, declined)
    assert raw.v1.payment_intents.retrieve(pi_id).status == "requires_payment_method"
    assert payable(w, citizen, payable_id)["status"] == "open"
    assert balances(w) == {}
    paid = tx_id(pay_stripe(w, citizen, payable_id))
    assert payment(w, citizen, paid)["state"] == "succeeded"
    assert payable(w, citizen, payable_id)["status"] == "paid"


def test_a_charge_stripe_did_not_answer_is_made_once_when_the_transaction_is_retried(
    stripe_world: World, raw: stripe.StripeClient, offline: StripeProvider
) -> None:
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id = issue_fee(w, citizen.subject)
    providers = runtime_of(w).providers
    reachable = providers["stripe"]
    providers["stripe"] = offline  # connection refused: the outcome is unknown
    body = payment_create(citizen, payable_id)
    first = submit(w, citizen, body, idempotency_key="pay-retry-1")
    intent_id = tx_id(first)
    assert payment(w, citizen, intent_id)["state"] == "created"
    assert payable(w, citizen, payable_id)["status"] == "open"
    problem(pay_stripe(w, citizen, payable_id), 409, "payment-in-progress")
    providers["stripe"] = reachable
    again = submit(w, citizen, body, idempotency_key="pay-retry-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert payment(w, citizen, intent_id)["state"] == "succeeded"
    pi_id = stripe_ref(w, intent_id)
    assert stripe_intents_of(raw, intent_id) == [pi_id]
    assert len(charges_of(raw, pi_id)) == 1
    assert balances(w)[("provider_clearing:stripe", EUR)] == FEE_MINOR


def test_a_charge_stripe_made_but_whose_answer_was_lost_is_booked_when_stripe_reports_it(
    stripe_world: World, raw: stripe.StripeClient, offline: StripeProvider
) -> None:
    # Regression (fails today): the request reached Stripe and charged the card, but its answer
    # was lost (read timeout), so the intent never learned its PaymentIntent id, and the payer
    # did not retry the transaction. Stripe then reports the charge by webhook, with our intent
    # id in its metadata; today that webhook is 409 unknown-charge on every delivery (the
    # intent is looked up by provider_ref only), the sweep expires the intent after 90 minutes
    # without asking Stripe, and the payer's money is never booked.
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id = issue_fee(w, citizen.subject)
    providers = runtime_of(w).providers
    reachable = providers["stripe"]
    providers["stripe"] = offline
    intent_id = tx_id(pay_stripe(w, citizen, payable_id))
    providers["stripe"] = reachable
    assert payment(w, citizen, intent_id)["state"] == "created"
    # What the adapter sent, as Stripe received it (same key, same parameters).
    made = raw.v1.payment_intents.create(
        adapter_params(intent_id), {"idempotency_key": charge_key(intent_id)}
    )
    assert made.status == "succeeded"
    body = stripe_event(w, "payment_intent.succeeded", made.to_dict(), event_id=f"evt_{made.id}")
    first = deliver(w, body)
    assert first.status_code in (200, 409), first.text
    w.clock.advance_past(str(payment(w, citizen, intent_id)["created_at"]), INTENT_TTL_S + 1)
    runtime_of(w).expire_due()
    deliver(w, body)  # Stripe redelivers an event refused with 409 (for up to three days)
    assert payment(w, citizen, intent_id)["state"] == "succeeded"
    assert balances(w).get(("provider_clearing:stripe", EUR)) == FEE_MINOR


def test_three_d_secure_through_stripe_then_the_payer_confirms(
    stripe_world: World, raw: stripe.StripeClient
) -> None:
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id = issue_fee(w, citizen.subject)
    intent_id, pi_id = three_d_secure_payment(w, raw, citizen, payable_id)
    problem(pay_stripe(w, citizen, payable_id), 409, "payment-in-progress")
    _authenticate(raw, pi_id, success=True)
    r = w.client.post(f"/v1/payments/{intent_id}/confirm", headers=citizen.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "succeeded"
    assert [e["cause"] for e in r.json()["events"]] == [
        "payer.created",
        "provider.requires_action",
        "payer.confirmed",
        "provider.succeeded",
    ]
    assert payable(w, citizen, payable_id)["status"] == "paid"
    assert balances(w)[("provider_clearing:stripe", EUR)] == FEE_MINOR


def test_an_irr_bill_sent_to_stripe_is_refused_before_it_is_signed_into_the_ledger(
    stripe_world: World, raw: stripe.StripeClient
) -> None:
    # Stripe has no IRR: the payload check knows the provider's currencies, so the instruction
    # is refused (400, naming the field) instead of being recorded and failing after the commit.
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    bill_amount = payable(w, citizen, payable_id)["amount"]
    assert isinstance(bill_amount, dict)
    body = problem(pay_stripe(w, citizen, payable_id, amount=bill_amount), 400, "payload-invalid")
    assert body["errors"] == [
        {
            "field": "/envelope/payload/amount/currency",
            "rule": "currency_not_supported",
            "message": "the provider does not take this currency",
        }
    ]
    assert payable(w, citizen, payable_id)["status"] == "open"
    assert balances(w) == {}


# --- Stripe webhooks ----------------------------------------------------------------------------


def test_a_stripe_webhook_applies_once_and_its_redelivery_is_a_duplicate(
    stripe_world: World, raw: stripe.StripeClient
) -> None:
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id = issue_fee(w, citizen.subject)
    intent_id, pi_id = three_d_secure_payment(w, raw, citizen, payable_id)
    _authenticate(raw, pi_id, success=True)  # Stripe.js finished; Stripe tells us by webhook
    succeeded = raw.v1.payment_intents.retrieve(pi_id).to_dict()
    assert succeeded["status"] == "succeeded"
    body = stripe_event(w, "payment_intent.succeeded", succeeded, event_id=f"evt_ok_{pi_id}")
    assert outcome(deliver(w, body)) == "applied"
    view = payment(w, citizen, intent_id)
    assert view["state"] == "succeeded"
    assert members(view, "events")[-1]["cause"] == "provider.succeeded"
    assert payable(w, citizen, payable_id)["status"] == "paid"
    assert outcome(deliver(w, body)) == "duplicate"
    assert balances(w)[("provider_clearing:stripe", EUR)] == FEE_MINOR


def test_a_stripe_payment_failed_webhook_fails_the_payment_with_its_code(
    stripe_world: World, raw: stripe.StripeClient
) -> None:
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id = issue_fee(w, citizen.subject)
    intent_id, pi_id = three_d_secure_payment(w, raw, citizen, payable_id)
    _authenticate(raw, pi_id, success=False)
    failed = raw.v1.payment_intents.retrieve(pi_id).to_dict()
    body = stripe_event(w, "payment_intent.payment_failed", failed, event_id=f"evt_ko_{pi_id}")
    assert outcome(deliver(w, body)) == "applied"
    view = payment(w, citizen, intent_id)
    assert (view["state"], view["failure_code"]) == (
        "failed",
        "payment_intent_authentication_failure",
    )
    assert payable(w, citizen, payable_id)["status"] == "open"
    assert outcome(deliver(w, body)) == "duplicate"
    assert balances(w) == {}


def test_stripe_webhooks_with_a_bad_signature_are_400_and_apply_nothing(
    stripe_world: World, raw: stripe.StripeClient
) -> None:
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id = issue_fee(w, citizen.subject)
    intent_id, pi_id = three_d_secure_payment(w, raw, citizen, payable_id)
    _authenticate(raw, pi_id, success=True)
    obj = raw.v1.payment_intents.retrieve(pi_id).to_dict()
    body = stripe_event(w, "payment_intent.succeeded", obj, event_id=f"evt_forged_{pi_id}")
    now_s = int(w.clock().timestamp())
    for response, rule in (
        (deliver(w, body, secret="whsec_someone_else_entirely"), "no_matching_signature"),
        (deliver(w, body, timestamp_s=now_s - 301), "timestamp_out_of_window"),
        (
            w.client.post(
                "/v1/providers/stripe/webhooks",
                content=body,
                headers={"Content-Type": "application/json"},
            ),
            "missing_header",
        ),
    ):
        refused = problem(response, 400, "webhook-signature")
        assert members(refused, "errors")[0]["rule"] == rule
    altered = body.replace(b"succeeded", b"canceled")  # signed, then altered on the way
    header = _sign(body, WHSEC, now_s)
    r = w.client.post(
        "/v1/providers/stripe/webhooks",
        content=altered,
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )
    refused = problem(r, 400, "webhook-signature")
    assert members(refused, "errors")[0]["rule"] == "no_matching_signature"
    assert payment(w, citizen, intent_id)["state"] == "requires_action"
    with w.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(provider_events)).scalar_one() == 0
    # The genuine delivery still applies: nothing above was recorded against the event id.
    assert outcome(deliver(w, body)) == "applied"


def test_an_unsupported_stripe_event_is_ignored_once_its_signature_verifies(
    stripe_world: World,
) -> None:
    w = stripe_world
    customer = {"id": "cus_pishkhan_1", "object": "customer"}
    body = stripe_event(w, "customer.created", customer, event_id="evt_customer_1")
    assert outcome(deliver(w, body)) == "ignored"
    problem(deliver(w, body, secret="whsec_not_ours_000000000"), 400, "webhook-signature")


def test_a_stripe_event_for_a_charge_no_payment_has_is_409_and_not_recorded(
    stripe_world: World, raw: stripe.StripeClient
) -> None:
    w = stripe_world
    # A real PaymentIntent at Stripe that no payment of ours made (or not yet stored).
    params: Any = {"amount": 700, "currency": "eur", "payment_method": VISA, "confirm": True}
    foreign = raw.v1.payment_intents.create(params).to_dict()
    body = stripe_event(w, "payment_intent.succeeded", foreign, event_id="evt_foreign_1")
    problem(deliver(w, body), 409, "unknown-charge")
    problem(deliver(w, body), 409, "unknown-charge")  # redelivered: still not a duplicate
    with w.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(provider_events)).scalar_one() == 0
    assert balances(w) == {}


# --- refunds and reconciliation -----------------------------------------------------------------


def test_a_partial_refund_reaches_stripe_books_and_reconciles(
    stripe_world: World, raw: stripe.StripeClient
) -> None:
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id = issue_fee(w, citizen.subject)
    intent_id = tx_id(pay_stripe(w, citizen, payable_id))
    pi_id = stripe_ref(w, intent_id)
    r = refund_eur(w, intent_id, PARTIAL_REFUND_MINOR, FEE_MINOR)
    refund_id = tx_id(r)
    assert_verifies(r.json(), w.signer)
    view = payment(w, w.agency, intent_id)
    assert [(x["refund"], x["state"]) for x in members(view, "refunds")] == [
        (refund_id, "succeeded")
    ]
    at_stripe = raw.v1.refunds.list({"payment_intent": pi_id}).data
    assert [(x.amount, x.currency, x.status) for x in at_stripe] == [
        (PARTIAL_REFUND_MINOR, "eur", "succeeded")
    ]
    # Our refund key reached Stripe: the same request under it replays the same refund.
    replay = raw.v1.refunds.create(
        {"payment_intent": pi_id, "amount": PARTIAL_REFUND_MINOR},
        {"idempotency_key": refund_key(refund_id)},
    )
    assert replay.id == at_stripe[0].id
    assert balances(w) == {
        ("provider_clearing:stripe", EUR): FEE_MINOR - PARTIAL_REFUND_MINOR,
        (f"agency_revenue:{AGENCY_OWNER}", EUR): -FEE_MINOR,
        (f"agency_refunds:{AGENCY_OWNER}", EUR): PARTIAL_REFUND_MINOR,
    }
    assert payable(w, citizen, payable_id)["refunded_minor"] == PARTIAL_REFUND_MINOR
    problem(refund_eur(w, intent_id, 100, FEE_MINOR), 412, "refundable-amount-changed")
    rest = FEE_MINOR - PARTIAL_REFUND_MINOR
    problem(refund_eur(w, intent_id, rest + 1, rest), 409, "amount-refused")
    # The day's report ties Stripe's balance transactions to the book. The agency sees its own
    # lines only (other tests' charges at the shared localstripe touch no account of this book).
    day = w.clock().date().isoformat()
    report = w.client.get(f"/v1/reconciliation/stripe/{day}", headers=w.agency.headers)
    assert report.status_code == 200, report.text
    lines = {(x["kind"], x["provider_ref"]): x for x in report.json()["lines"]}
    assert set(lines) == {("charge", pi_id), ("refund", at_stripe[0].id)}
    assert {x["status"] for x in lines.values()} == {"matched"}
    assert lines[("charge", pi_id)]["provider_amount_minor"] == FEE_MINOR
    assert lines[("refund", at_stripe[0].id)]["book_amount_minor"] == PARTIAL_REFUND_MINOR


def test_stripe_charge_refunded_webhook_changes_nothing_in_the_book(
    stripe_world: World, raw: stripe.StripeClient
) -> None:
    # charge.refunded maps to the PaymentIntent still succeeded: refunds are tracked through
    # refund.create, never through this event (docs/PAYMENTS.md, "Not built yet").
    w = stripe_world
    citizen = new_party(w.client, w.rng)
    payable_id = issue_fee(w, citizen.subject)
    intent_id = tx_id(pay_stripe(w, citizen, payable_id))
    pi_id = stripe_ref(w, intent_id)
    tx_id(refund_eur(w, intent_id, PARTIAL_REFUND_MINOR, FEE_MINOR))
    before = balances(w)
    (charge_id,) = charges_of(raw, pi_id)
    charge = raw.v1.charges.retrieve(charge_id).to_dict()
    body = stripe_event(w, "charge.refunded", charge, event_id=f"evt_refunded_{charge_id}")
    assert outcome(deliver(w, body)) == "unchanged"
    assert payment(w, citizen, intent_id)["state"] == "succeeded"
    assert balances(w) == before
