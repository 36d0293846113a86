"""The Stripe adapter, driving the real `stripe` SDK against localstripe on 127.0.0.1.

Every socket the tests open is checked to be a loopback one (autouse guard), the fake server is
checked to listen on 127.0.0.1 only, and the pure mappings are also tested on recorded-shape
JSON of today's API (what localstripe does not model).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
import requests
import stripe

from payments import stripe_provider
from payments.errors import (
    PaymentFieldError,
    ProviderError,
    ProviderTimeoutError,
    UnsupportedWebhookEventError,
    WebhookSignatureError,
)
from payments.providers import ChargeRequest, PaymentProvider, ProviderStatus, SettlementKind
from payments.stripe_mapping import (
    charge_result_from_payment_intent,
    provider_event_from_stripe_event,
    refund_result_from_refund,
    settlement_from_balance_transaction,
)
from payments.stripe_provider import StripeProvider
from tests.localstripe_server import TEST_API_KEY, LocalStripe, running_localstripe

SECRET = "whsec_pishkhan_test_secret_0001"
NEW_SECRET = "whsec_pishkhan_test_secret_0002"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NOW_S = int(NOW.timestamp())
CARD_3DS = "4000000000003220"  # localstripe: requires authentication


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens an IP connection to a non-loopback address."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            assert ipaddress.ip_address(host).is_loopback, f"non-loopback connect to {host}"
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripe]:
    with running_localstripe() as server:
        assert urlsplit(server.api_base).hostname == "127.0.0.1"
        yield server


@pytest.fixture
def provider(localstripe: LocalStripe) -> StripeProvider:
    return StripeProvider(
        api_key=TEST_API_KEY, webhook_secrets=[SECRET], api_base=localstripe.api_base, timeout_s=10
    )


@pytest.fixture
def raw(localstripe: LocalStripe) -> stripe.StripeClient:
    """The SDK itself, for what the adapter does not do (setting up cards, checking state)."""
    session = requests.Session()
    session.trust_env = False
    return stripe.StripeClient(
        TEST_API_KEY,
        base_addresses={"api": localstripe.api_base},
        http_client=stripe.RequestsClient(timeout=10, session=session),
    )


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def offline() -> StripeProvider:
    """A provider whose API base refuses connections: any call would fail as a timeout."""
    return StripeProvider(
        api_key=TEST_API_KEY,
        webhook_secrets=[SECRET, NEW_SECRET],
        api_base=f"http://127.0.0.1:{_closed_port()}",
        timeout_s=1,
    )


def _key() -> str:
    return f"test-{uuid.uuid4()}"


def _request(pm: str = "pm_card_visa", amount: int = 5000, currency: str = "EUR") -> ChargeRequest:
    return ChargeRequest(f"int_{uuid.uuid4().hex}", amount, currency, pm, _key())


def _card(raw: stripe.StripeClient, number: str) -> str:
    # Raw card numbers: localstripe's way to pick its test behaviour (Stripe.js does it live).
    params: Any = {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2030}}
    params["card"]["cvc"] = "123"
    return raw.v1.payment_methods.create(params).id


def _authenticate(raw: stripe.StripeClient, pi_id: str, *, success: bool) -> None:
    """Stand-in for the payer completing (or failing) the 3-D Secure challenge in Stripe.js."""
    secret = raw.v1.payment_intents.retrieve(pi_id).client_secret
    raw.raw_request(
        "post", f"/v1/payment_intents/{pi_id}/_authenticate", client_secret=secret, success=success
    )


# --- the fake server itself ---------------------------------------------------------------------


def test_localstripe_listens_on_loopback_only(localstripe: LocalStripe) -> None:
    # A socket on the wildcard address (0.0.0.0 or a dual-stack ::) would hold the port on every
    # address, 127.0.0.2 included; one bound to 127.0.0.1 leaves it free there.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.2", localstripe.port))
        probe.listen()
    with socket.create_connection(("127.0.0.1", localstripe.port), timeout=5):
        pass


# --- charges ------------------------------------------------------------------------------------


def test_successful_charge(provider: StripeProvider, raw: stripe.StripeClient) -> None:
    request = _request(amount=1234, currency="USD")
    result = provider.create_charge(request)
    assert result.status is ProviderStatus.SUCCEEDED
    assert (result.provider, result.amount_minor, result.currency) == ("stripe", 1234, "USD")
    assert result.failure_code is None and result.action_url is None
    created = raw.v1.payment_intents.retrieve(result.provider_ref)
    assert created.currency == "usd"
    assert created.metadata.to_dict() == {"intent_id": request.intent_id}
    assert provider.retrieve_charge(result.provider_ref) == result


def test_same_idempotency_key_makes_one_payment_intent(
    provider: StripeProvider, raw: stripe.StripeClient
) -> None:
    request = _request()
    first = provider.create_charge(request)
    again = provider.create_charge(request)
    assert again == first
    intents = raw.v1.payment_intents.list({"limit": 100}).data
    assert [
        pi.id for pi in intents if pi.metadata.to_dict() == {"intent_id": request.intent_id}
    ] == [first.provider_ref]
    charges = [
        c
        for c in raw.v1.charges.list({"limit": 100}).data
        if c.payment_intent == first.provider_ref
    ]
    assert len(charges) == 1


def test_idempotency_key_reused_for_another_amount_is_refused(provider: StripeProvider) -> None:
    request = _request()
    provider.create_charge(request)
    with pytest.raises(ProviderError) as caught:
        provider.create_charge(
            ChargeRequest(request.intent_id, 9999, "EUR", "pm_card_visa", request.idempotency_key)
        )
    assert (caught.value.code, caught.value.retryable) == ("idempotency_key_reused", False)


def test_declined_card_is_a_failed_result(provider: StripeProvider) -> None:
    result = provider.create_charge(_request(pm="pm_card_chargeCustomerFail"))
    assert result.status is ProviderStatus.FAILED
    assert result.failure_code == "card_declined"
    assert result.provider_ref.startswith("pi_")
    assert provider.retrieve_charge(result.provider_ref) == result


def test_three_d_secure_then_confirm_action(
    provider: StripeProvider, raw: stripe.StripeClient
) -> None:
    result = provider.create_charge(_request(pm=_card(raw, CARD_3DS)))
    assert result.status is ProviderStatus.REQUIRES_ACTION
    assert provider.confirm_action(result.provider_ref, idempotency_key=_key()).status is (
        ProviderStatus.REQUIRES_ACTION
    )  # the payer has not answered the challenge yet
    _authenticate(raw, result.provider_ref, success=True)
    done = provider.confirm_action(result.provider_ref, idempotency_key=_key())
    assert (done.status, done.provider_ref, done.amount_minor) == (
        ProviderStatus.SUCCEEDED,
        result.provider_ref,
        5000,
    )


def test_three_d_secure_failed_challenge(
    provider: StripeProvider, raw: stripe.StripeClient
) -> None:
    result = provider.create_charge(_request(pm=_card(raw, CARD_3DS)))
    _authenticate(raw, result.provider_ref, success=False)
    failed = provider.confirm_action(result.provider_ref, idempotency_key=_key())
    assert failed.status is ProviderStatus.FAILED
    assert failed.failure_code == "payment_intent_authentication_failure"


def test_confirm_action_confirms_an_intent_waiting_for_confirmation(
    provider: StripeProvider, raw: stripe.StripeClient
) -> None:
    waiting = raw.v1.payment_intents.create(
        {"amount": 700, "currency": "eur", "payment_method": "pm_card_visa"}
    )
    assert provider.retrieve_charge(waiting.id).status is ProviderStatus.REQUIRES_ACTION
    key = _key()
    confirmed = provider.confirm_action(waiting.id, idempotency_key=key)
    assert confirmed.status is ProviderStatus.SUCCEEDED
    assert provider.confirm_action(waiting.id, idempotency_key=key) == confirmed


def test_cancel(provider: StripeProvider, raw: stripe.StripeClient) -> None:
    pending = provider.create_charge(_request(pm=_card(raw, CARD_3DS)))
    cancelled = provider.cancel_charge(pending.provider_ref, idempotency_key=_key())
    assert cancelled.status is ProviderStatus.CANCELLED
    # Cancelling again (another key, so no replay) reports the cancelled charge again.
    assert provider.cancel_charge(pending.provider_ref, idempotency_key=_key()) == cancelled


def test_a_succeeded_charge_cannot_be_cancelled(provider: StripeProvider) -> None:
    paid = provider.create_charge(_request())
    with pytest.raises(ProviderError) as caught:
        provider.cancel_charge(paid.provider_ref, idempotency_key=_key())
    assert caught.value.retryable is False
    assert provider.retrieve_charge(paid.provider_ref).status is ProviderStatus.SUCCEEDED


# --- refunds ------------------------------------------------------------------------------------


def test_partial_then_full_refund(provider: StripeProvider, raw: stripe.StripeClient) -> None:
    paid = provider.create_charge(_request(amount=5000))
    key = _key()
    first = provider.refund(
        paid.provider_ref, amount_minor=2000, currency="EUR", idempotency_key=key
    )
    assert (first.succeeded, first.amount_minor, first.currency) == (True, 2000, "EUR")
    assert first.charge_ref == paid.provider_ref and first.provider_ref.startswith("re_")
    replay = provider.refund(
        paid.provider_ref, amount_minor=2000, currency="EUR", idempotency_key=key
    )
    assert replay == first
    rest = provider.refund(
        paid.provider_ref, amount_minor=3000, currency="EUR", idempotency_key=_key()
    )
    assert rest.succeeded and rest.provider_ref != first.provider_ref
    refunds = raw.v1.refunds.list({"payment_intent": paid.provider_ref}).data
    assert sorted(r.amount for r in refunds) == [2000, 3000]


def test_refund_in_another_currency_is_refused_before_money_moves(
    provider: StripeProvider, raw: stripe.StripeClient
) -> None:
    paid = provider.create_charge(_request(currency="EUR"))
    with pytest.raises(ProviderError) as caught:
        provider.refund(paid.provider_ref, amount_minor=100, currency="USD", idempotency_key=_key())
    assert caught.value.code == "currency_mismatch"
    assert raw.v1.refunds.list({"payment_intent": paid.provider_ref}).data == []


# --- refused before any call (the offline provider would time out if it called) ---------------


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (ChargeRequest("int_1", 1000, "IRR", "pm_card_visa", "k"), "currency_not_supported"),
        (ChargeRequest("int_1", 1000, "ISK", "pm_card_visa", "k"), "currency_not_supported"),
        (ChargeRequest("int_1", 0, "EUR", "pm_card_visa", "k"), "amount_out_of_range"),
        (ChargeRequest("int_1", 100_000_000, "EUR", "pm_card_visa", "k"), "amount_out_of_range"),
        (ChargeRequest("int_1", 100, "EUR", "pm_card_visa", ""), "invalid_idempotency_key"),
        (
            ChargeRequest("int_1", 100, "EUR", "pm_card_visa", "a\r\nX: y"),
            "invalid_idempotency_key",
        ),
        (ChargeRequest("int_1", 100, "EUR", "pm_card_visa", "k" * 256), "invalid_idempotency_key"),
        (ChargeRequest("int_1", 100, "EUR", "pm/../x", "k"), "invalid_payment_method"),
        (ChargeRequest("", 100, "EUR", "pm_card_visa", "k"), "invalid_intent_id"),
    ],
)
def test_charge_refused_before_calling(
    offline: StripeProvider, request_: ChargeRequest, code: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        offline.create_charge(request_)
    assert not isinstance(caught.value, ProviderTimeoutError)
    assert (caught.value.code, caught.value.retryable) == (code, False)


@pytest.mark.parametrize("ref", ["", "ch_123", "pi_../../v1/charges", "pi_a b"])
def test_bad_charge_reference_refused_before_calling(offline: StripeProvider, ref: str) -> None:
    for call in (
        lambda: offline.retrieve_charge(ref),
        lambda: offline.cancel_charge(ref, idempotency_key="k"),
        lambda: offline.confirm_action(ref, idempotency_key="k"),
        lambda: offline.refund(ref, amount_minor=1, currency="EUR", idempotency_key="k"),
    ):
        with pytest.raises(ProviderError) as caught:
            call()
        assert caught.value.code == "invalid_reference"


# --- transport failures and HTTP errors ---------------------------------------------------------


def test_connection_refused_is_an_unknown_outcome(offline: StripeProvider) -> None:
    with pytest.raises(ProviderTimeoutError) as caught:
        offline.create_charge(_request())
    assert (caught.value.retryable, caught.value.code, caught.value.provider) == (
        True,
        "connection_error",
        "stripe",
    )


def test_no_answer_in_time_is_an_unknown_outcome() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections into the backlog, never answers
        slow = StripeProvider(
            api_key=TEST_API_KEY,
            webhook_secrets=[SECRET],
            api_base=f"http://127.0.0.1:{silent.getsockname()[1]}",
            timeout_s=0.2,
        )
        with pytest.raises(ProviderTimeoutError):
            slow.retrieve_charge("pi_123")


class _CannedStripe(BaseHTTPRequestHandler):
    answer: ClassVar[tuple[int, dict[str, Any]]] = (500, {})

    def _reply(self) -> None:
        status, body = self.answer
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _reply

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def canned() -> Iterator[StripeProvider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CannedStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield StripeProvider(
        api_key=TEST_API_KEY,
        webhook_secrets=[SECRET],
        api_base=f"http://127.0.0.1:{server.server_address[1]}",
        timeout_s=5,
    )
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize(
    ("status", "error", "code", "retryable"),
    [
        (500, {"type": "api_error", "message": "boom"}, None, True),
        (503, {"type": "api_error"}, None, True),
        (429, {"type": "invalid_request_error", "message": "slow down"}, "rate_limit", True),
        (409, {"type": "invalid_request_error", "message": "concurrent request"}, None, True),
        (
            400,
            {"type": "invalid_request_error", "code": "parameter_invalid_integer"},
            "parameter_invalid_integer",
            False,
        ),
        (401, {"type": "invalid_request_error", "message": "bad key"}, None, False),
        (400, {"type": "idempotency_error", "message": "reused"}, "idempotency_key_reused", False),
        (
            402,
            {"type": "card_error", "code": "card_declined", "charge": "ch_1"},
            "card_error_without_payment_intent",
            False,
        ),
    ],
)
def test_http_errors(
    canned: StripeProvider, status: int, error: dict[str, Any], code: str | None, retryable: bool
) -> None:
    _CannedStripe.answer = (status, {"error": error})
    with pytest.raises(ProviderError) as caught:
        canned.create_charge(_request())
    assert not isinstance(caught.value, ProviderTimeoutError)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


def test_an_answer_that_is_not_a_payment_intent_is_refused(canned: StripeProvider) -> None:
    _CannedStripe.answer = (200, {"id": "pi_1", "object": "payment_intent", "status": "weird"})
    with pytest.raises(ProviderError) as caught:
        canned.retrieve_charge("pi_1")
    assert (caught.value.code, caught.value.retryable) == ("malformed_response", False)


# --- settlements --------------------------------------------------------------------------------


def _day_of(raw: stripe.StripeClient, pi_id: str) -> date:
    return datetime.fromtimestamp(raw.v1.payment_intents.retrieve(pi_id).created, UTC).date()


def test_settlements_of_the_day(
    provider: StripeProvider, raw: stripe.StripeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = provider.create_charge(_request(amount=4200, currency="GBP"))
    declined = provider.create_charge(_request(pm="pm_card_chargeCustomerFail"))
    refund = provider.refund(
        paid.provider_ref, amount_minor=200, currency="GBP", idempotency_key=_key()
    )
    day = _day_of(raw, paid.provider_ref)
    lines = provider.settlements(day)
    mine = {(s.provider_ref, s.kind): s for s in lines}
    assert mine[(paid.provider_ref, SettlementKind.CHARGE)].amount_minor == 4200
    assert mine[(refund.provider_ref, SettlementKind.REFUND)].amount_minor == 200
    assert all(s.currency == "GBP" for s in (mine[(paid.provider_ref, SettlementKind.CHARGE)],))
    assert all(s.settled_on == day and s.provider == "stripe" for s in lines)
    assert declined.provider_ref not in {s.provider_ref for s in lines}
    assert lines == sorted(lines, key=lambda s: (s.kind.value, s.provider_ref))
    monkeypatch.setattr(stripe_provider, "SETTLEMENT_PAGE_SIZE", 1)
    assert provider.settlements(day) == lines  # the same, one transaction per page
    assert provider.settlements(day - timedelta(days=1)) == []


def test_too_many_settlement_pages_is_refused(
    provider: StripeProvider, raw: stripe.StripeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = provider.create_charge(_request())
    provider.create_charge(_request())
    monkeypatch.setattr(stripe_provider, "SETTLEMENT_PAGE_SIZE", 1)
    monkeypatch.setattr(stripe_provider, "MAX_SETTLEMENT_PAGES", 1)
    with pytest.raises(ProviderError) as caught:
        provider.settlements(_day_of(raw, paid.provider_ref))
    assert caught.value.code == "too_many_settlements"


# Shapes recorded from Stripe's API reference (balance transaction with `source` expanded).
_CHARGE_TXN: dict[str, Any] = {
    "id": "txn_1",
    "object": "balance_transaction",
    "amount": 4620,  # converted to the account's settlement currency
    "currency": "usd",
    "exchange_rate": 1.1,
    "created": 1777636800,  # 2026-05-01T12:00:00Z
    "fee": 164,
    "net": 4456,
    "type": "charge",
    "source": {
        "id": "ch_1",
        "object": "charge",
        "amount": 4200,
        "amount_captured": 4200,
        "currency": "eur",
        "payment_intent": "pi_1",
    },
}


def test_settlement_mapping_of_an_expanded_charge() -> None:
    line = settlement_from_balance_transaction(_CHARGE_TXN)
    assert line is not None
    assert (line.provider_ref, line.kind, line.amount_minor, line.currency, line.settled_on) == (
        "pi_1",
        SettlementKind.CHARGE,
        4200,  # what the payer paid, not the converted or net amount
        "EUR",
        date(2026, 5, 1),
    )


def test_settlement_mapping_of_a_refund_and_of_unexpanded_sources() -> None:
    source = {"id": "re_1", "object": "refund", "amount": 700, "currency": "eur"}
    refund_txn = {"id": "txn_2", "amount": -700, "currency": "eur", "created": 1777636800}
    refund_txn |= {"type": "refund", "source": {**source, "payment_intent": "pi_1"}}
    line = settlement_from_balance_transaction(refund_txn)
    assert line is not None and (line.provider_ref, line.kind, line.amount_minor) == (
        "re_1",
        SettlementKind.REFUND,
        700,
    )
    bare = settlement_from_balance_transaction({**refund_txn, "source": "re_1"})
    assert bare is not None and (bare.provider_ref, bare.amount_minor, bare.currency) == (
        "re_1",
        700,
        "EUR",
    )
    direct = settlement_from_balance_transaction(
        {**_CHARGE_TXN, "source": {**_CHARGE_TXN["source"], "payment_intent": None}}
    )
    assert direct is not None and direct.provider_ref == "ch_1"


@pytest.mark.parametrize("kind", ["payout", "stripe_fee", "adjustment", "transfer"])
def test_settlement_mapping_skips_other_types(kind: str) -> None:
    assert settlement_from_balance_transaction({**_CHARGE_TXN, "type": kind}) is None


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"source": None}, "/source"),
        ({"source": {"id": "ch_1", "amount": "42", "currency": "eur"}}, "/source/amount"),
        ({"created": "yesterday"}, "/created"),
        ({"type": 7}, "/type"),
        ({"source": {**_CHARGE_TXN["source"], "currency": "xx"}}, "/source/currency"),
    ],
)
def test_settlement_mapping_refuses_malformed(change: dict[str, Any], pointer: str) -> None:
    with pytest.raises(PaymentFieldError) as caught:
        settlement_from_balance_transaction({**_CHARGE_TXN, **change})
    assert caught.value.errors[0].pointer == pointer


# --- PaymentIntent and Refund mappings ------------------------------------------------------------

_PI: dict[str, Any] = {"id": "pi_1", "object": "payment_intent", "amount": 5000, "currency": "eur"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("requires_action", ProviderStatus.REQUIRES_ACTION),
        ("requires_confirmation", ProviderStatus.REQUIRES_ACTION),
        ("processing", ProviderStatus.PROCESSING),
        ("requires_capture", ProviderStatus.PROCESSING),
        ("succeeded", ProviderStatus.SUCCEEDED),
        ("canceled", ProviderStatus.CANCELLED),
        ("requires_payment_method", ProviderStatus.FAILED),
    ],
)
def test_payment_intent_statuses(status: str, expected: ProviderStatus) -> None:
    result = charge_result_from_payment_intent({**_PI, "status": status})
    assert result.status is expected
    assert (result.failure_code is None) == (expected is not ProviderStatus.FAILED)


def test_failure_codes_prefer_the_decline_code() -> None:
    def code(error: object) -> str | None:
        pi = {**_PI, "status": "requires_payment_method", "last_payment_error": error}
        return charge_result_from_payment_intent(pi).failure_code

    assert (
        code({"code": "card_declined", "decline_code": "insufficient_funds"})
        == "insufficient_funds"
    )
    assert code({"code": "card_declined", "decline_code": None}) == "card_declined"
    assert code(None) == "payment_failed"


def test_action_url_from_a_redirect() -> None:
    url = "https://hooks.stripe.com/3d_secure_2/hosted?x=1"
    pi = {
        **_PI,
        "status": "requires_action",
        "next_action": {"type": "redirect_to_url", "redirect_to_url": {"url": url}},
    }
    assert charge_result_from_payment_intent(pi).action_url == url
    sdk = {**pi, "next_action": {"type": "use_stripe_sdk", "use_stripe_sdk": {}}}
    assert charge_result_from_payment_intent(sdk).action_url is None


def test_unknown_payment_intent_status_is_refused() -> None:
    with pytest.raises(PaymentFieldError) as caught:
        charge_result_from_payment_intent({**_PI, "status": "mystery"})
    assert caught.value.errors[0].pointer == "/status"


@pytest.mark.parametrize(
    ("status", "reason", "succeeded", "failure_code"),
    [
        ("succeeded", None, True, None),
        ("pending", None, True, None),
        ("failed", "expired_or_canceled_card", False, "expired_or_canceled_card"),
        ("canceled", None, False, "canceled"),
        ("requires_action", None, False, "requires_action"),
    ],
)
def test_refund_statuses(
    status: str, reason: str | None, succeeded: bool, failure_code: str | None
) -> None:
    refund = {
        "id": "re_1",
        "amount": 10,
        "currency": "eur",
        "status": status,
        "failure_reason": reason,
    }
    result = refund_result_from_refund(refund, charge_ref="pi_1")
    assert (result.succeeded, result.failure_code, result.charge_ref) == (
        succeeded,
        failure_code,
        "pi_1",
    )


# --- webhooks -----------------------------------------------------------------------------------


def _sign(body: bytes, secret: str, timestamp_s: int = NOW_S) -> str:
    """Stripe's scheme, computed independently of the SDK: HMAC-SHA256 of "<t>.<raw body>"."""
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return f"t={timestamp_s},v1={mac.hexdigest()}"


def _event(event_type: str, obj: dict[str, Any], event_id: str = "evt_1") -> bytes:
    event: dict[str, Any] = {"id": event_id, "object": "event", "api_version": "2026-10-28.endive"}
    event |= {"created": NOW_S - 5, "livemode": False, "type": event_type, "data": {"object": obj}}
    return json.dumps(event, indent=2).encode()  # indented: the exact bytes are what is signed


_DECLINE = {"code": "card_declined", "decline_code": "insufficient_funds"}
_FAILED_PI = {**_PI, "status": "requires_payment_method", "last_payment_error": _DECLINE}
_REFUNDED_CHARGE = {
    "id": "ch_1",
    "object": "charge",
    "amount": 5000,
    "amount_refunded": 5000,
    "currency": "eur",
    "payment_intent": "pi_1",
    "refunded": True,
}


@pytest.mark.parametrize(
    ("event_type", "obj", "status", "failure_code"),
    [
        (
            "payment_intent.succeeded",
            {**_PI, "status": "succeeded"},
            ProviderStatus.SUCCEEDED,
            None,
        ),
        ("payment_intent.payment_failed", _FAILED_PI, ProviderStatus.FAILED, "insufficient_funds"),
        (
            "payment_intent.processing",
            {**_PI, "status": "processing"},
            ProviderStatus.PROCESSING,
            None,
        ),
        (
            "payment_intent.requires_action",
            {**_PI, "status": "requires_action"},
            ProviderStatus.REQUIRES_ACTION,
            None,
        ),
        ("payment_intent.canceled", {**_PI, "status": "canceled"}, ProviderStatus.CANCELLED, None),
        ("charge.refunded", _REFUNDED_CHARGE, ProviderStatus.SUCCEEDED, None),
    ],
)
def test_webhook_event_mapping(
    offline: StripeProvider,
    event_type: str,
    obj: dict[str, Any],
    status: ProviderStatus,
    failure_code: str | None,
) -> None:
    body = _event(event_type, obj)
    event = offline.parse_webhook(body, {"Stripe-Signature": _sign(body, SECRET)}, now=NOW)
    assert (event.provider, event.event_id, event.charge_ref) == ("stripe", "evt_1", "pi_1")
    assert (event.status, event.failure_code) == (status, failure_code)
    assert (event.amount_minor, event.currency) == (5000, "EUR")
    assert event.occurred_at == NOW - timedelta(seconds=5)


_BODY = _event("payment_intent.succeeded", {**_PI, "status": "succeeded"})


def _parse(provider: StripeProvider, body: bytes, header: str | None, now: datetime = NOW) -> Any:
    headers = {} if header is None else {"stripe-signature": header}  # lower case on purpose
    return provider.parse_webhook(body, headers, now=now)


def _rule(provider: StripeProvider, body: bytes, header: str | None, now: datetime = NOW) -> str:
    with pytest.raises(WebhookSignatureError) as caught:
        _parse(provider, body, header, now)
    return caught.value.rule


def test_webhook_signature_checks(offline: StripeProvider) -> None:
    assert _parse(offline, _BODY, _sign(_BODY, SECRET)).status is ProviderStatus.SUCCEEDED
    tampered = _BODY.replace(b"5000", b"5001")
    assert _rule(offline, tampered, _sign(_BODY, SECRET)) == "no_matching_signature"
    assert (
        _rule(offline, _BODY, _sign(_BODY, "whsec_someone_else_entirely"))
        == "no_matching_signature"
    )
    reserialised = json.dumps(json.loads(_BODY)).encode()  # same JSON, other bytes
    assert _rule(offline, reserialised, _sign(_BODY, SECRET)) == "no_matching_signature"
    assert _rule(offline, _BODY, None) == "missing_header"


def test_webhook_timestamp_window_is_checked_against_now_both_ways(offline: StripeProvider) -> None:
    header = _sign(_BODY, SECRET)
    assert _parse(offline, _BODY, header, NOW + timedelta(seconds=300)).event_id == "evt_1"
    assert _parse(offline, _BODY, header, NOW - timedelta(seconds=300)).event_id == "evt_1"
    assert _rule(offline, _BODY, header, NOW + timedelta(seconds=301)) == "timestamp_out_of_window"
    assert _rule(offline, _BODY, header, NOW - timedelta(seconds=301)) == "timestamp_out_of_window"


def test_webhook_secret_rotation(offline: StripeProvider) -> None:
    # offline is configured with [SECRET, NEW_SECRET]
    assert _parse(offline, _BODY, _sign(_BODY, SECRET)).event_id == "evt_1"
    assert _parse(offline, _BODY, _sign(_BODY, NEW_SECRET)).event_id == "evt_1"
    other = _sign(_BODY, "whsec_retired_secret_000000").split(",")[1]
    both = f"{_sign(_BODY, NEW_SECRET)},{other}"
    assert _parse(offline, _BODY, both).event_id == "evt_1"
    only_new = StripeProvider(
        api_key=TEST_API_KEY, webhook_secrets=[NEW_SECRET], api_base="http://127.0.0.1:9"
    )
    assert _rule(only_new, _BODY, _sign(_BODY, SECRET)) == "no_matching_signature"


def test_webhook_header_made_by_the_sdk_is_accepted(offline: StripeProvider) -> None:
    header = stripe.WebhookSignature.generate_signature_header(
        _BODY.decode(), SECRET, timestamp=NOW_S
    )
    assert _parse(offline, _BODY, header).event_id == "evt_1"


@pytest.mark.parametrize(
    ("header", "rule"),
    [
        ("", "missing_header"),
        ("garbage", "malformed_header"),
        ("t=,v1=abc", "malformed_header"),
        (f"v1={'0' * 64}", "missing_timestamp"),
        (f"t={NOW_S},t={NOW_S},v1={'0' * 64}", "duplicate_timestamp"),
        (f"t=12ab,v1={'0' * 64}", "malformed_header"),
        (f"t={NOW_S},v0={'0' * 64}", "no_v1_signature"),
        (f"t={NOW_S}," + ",".join([f"v1={'0' * 64}"] * 20), "header_too_long"),
    ],
)
def test_webhook_malformed_headers(offline: StripeProvider, header: str, rule: str) -> None:
    assert _rule(offline, _BODY, header) == rule


def test_webhook_body_limits(offline: StripeProvider) -> None:
    huge = b" " * (stripe_provider.MAX_WEBHOOK_BODY_BYTES + 1)
    assert _rule(offline, huge, _sign(huge, SECRET)) == "body_too_large"
    latin1 = b'{"id": "\xe9"}'
    assert _rule(offline, latin1, _sign(latin1, SECRET)) == "malformed_body"


def test_webhook_naive_now_is_a_programming_error(offline: StripeProvider) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _parse(offline, _BODY, _sign(_BODY, SECRET), NOW.replace(tzinfo=None))


def test_unknown_event_type_is_named_so_the_endpoint_can_ignore_it(offline: StripeProvider) -> None:
    body = _event("customer.created", {"id": "cus_1", "object": "customer"}, event_id="evt_9")
    with pytest.raises(UnsupportedWebhookEventError) as caught:
        _parse(offline, body, _sign(body, SECRET))
    assert (caught.value.event_type, caught.value.event_id, caught.value.provider) == (
        "customer.created",
        "evt_9",
        "stripe",
    )


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (b"not json", ""),
        (b"[1, 2]", ""),
        (_event("payment_intent.succeeded", {**_PI, "amount": "5000"}), "/data/object/amount"),
        (_event("payment_intent.succeeded", {**_PI, "object": "charge"}), "/data/object/object"),
        (
            _event("charge.refunded", {**_REFUNDED_CHARGE, "payment_intent": None}),
            "/data/object/payment_intent",
        ),
        (_event("payment_intent.succeeded", {**_PI, "currency": "zzz"}), "/data/object/currency"),
    ],
)
def test_signed_but_malformed_events(offline: StripeProvider, body: bytes, pointer: str) -> None:
    with pytest.raises(PaymentFieldError) as caught:
        _parse(offline, body, _sign(body, SECRET))
    assert caught.value.errors[0].pointer == pointer


def test_event_mapping_is_pure_and_needs_no_provider() -> None:
    event = provider_event_from_stripe_event(json.loads(_BODY))
    assert (event.event_id, event.status) == ("evt_1", ProviderStatus.SUCCEEDED)


# --- construction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_key": ""},
        {"webhook_secrets": []},
        {"webhook_secrets": [""]},
        {"webhook_secrets": [SECRET] * 9},
        {"timeout_s": 0},
        {"timeout_s": 121},
        {"api_base": "http://api.stripe.com"},  # plain http off loopback would leak the key
        {"api_base": "https://api.stripe.com/v1"},
        {"api_base": "ftp://127.0.0.1"},
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any]) -> None:
    config: dict[str, Any] = {"api_key": TEST_API_KEY, "webhook_secrets": [SECRET], **kwargs}
    with pytest.raises(ValueError):
        StripeProvider(**config)


def test_the_default_api_base_is_stripe_over_https() -> None:
    assert stripe_provider.DEFAULT_API_BASE == "https://api.stripe.com"
    # Constructs and calls nothing; the annotation makes mypy check it is a PaymentProvider.
    as_provider: PaymentProvider = StripeProvider(api_key=TEST_API_KEY, webhook_secrets=[SECRET])
    assert as_provider.name == "stripe"


def test_the_loopback_guard_refuses_other_addresses() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(AssertionError):
        sock.connect(("192.0.2.1", 443))  # TEST-NET-1; the guard refuses before any packet


def test_a_failed_charge_cannot_be_refunded(provider: StripeProvider) -> None:
    declined = provider.create_charge(_request(pm="pm_card_chargeCustomerFail"))
    with pytest.raises(ProviderError) as caught:
        provider.refund(
            declined.provider_ref, amount_minor=1, currency="EUR", idempotency_key=_key()
        )
    assert (caught.value.code, caught.value.retryable) == ("charge_not_refundable", False)
