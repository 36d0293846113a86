"""The sandbox provider: every magic payment method, idempotency, timeouts, refunds, webhooks and
settlements, all offline and deterministic."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from payments.errors import (
    PaymentFieldError,
    ProviderError,
    ProviderTimeoutError,
    WebhookSignatureError,
)
from payments.providers import (
    ChargeRequest,
    PaymentProvider,
    ProviderStatus,
    Settlement,
    SettlementKind,
)
from payments.sandbox import (
    ACTION_URL_PREFIX,
    MAGIC_METHODS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    OUT_OF_ORDER_LEAD_S,
    SANDBOX_SIGNATURE_HEADER,
    WEBHOOK_DUPLICATE_DELAY_S,
    WEBHOOK_LATE_DELAY_S,
    WEBHOOK_OUT_OF_ORDER_DELAY_S,
    SandboxProvider,
    charge_ref_for,
)
from payments.sandbox_events import event_id_for, parse_sandbox_event
from payments.sandbox_records import Behaviour, InMemorySandboxRecords
from payments.webhook_signing import sign_hmac

SECRET = b"whsec_sandbox_test_secret_01"
OTHER_SECRET = b"whsec_sandbox_test_secret_02"
T0 = datetime(2025, 3, 21, 23, 59, 50, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: int) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def sandbox(clock: Clock) -> SandboxProvider:
    return SandboxProvider(records=InMemorySandboxRecords(), now=clock, webhook_secrets=[SECRET])


def _request(method: str, key: str = "intent_1:charge", amount: int = 1_770_000) -> ChargeRequest:
    return ChargeRequest(
        intent_id="intent_1",
        amount_minor=amount,
        currency="IRR",
        payment_method=method,
        idempotency_key=key,
    )


def test_it_is_a_payment_provider(sandbox: SandboxProvider) -> None:
    provider: PaymentProvider = sandbox
    assert provider.name == "sandbox"


# --- magic payment methods -----------------------------------------------------------------------

OUTCOMES = [
    ("4242424242424242", ProviderStatus.SUCCEEDED, None),
    ("pm_sandbox_success", ProviderStatus.SUCCEEDED, None),
    ("4000000000000002", ProviderStatus.FAILED, "card_declined"),
    ("pm_sandbox_decline", ProviderStatus.FAILED, "card_declined"),
    ("4000000000009995", ProviderStatus.FAILED, "insufficient_funds"),
    ("pm_sandbox_insufficient_funds", ProviderStatus.FAILED, "insufficient_funds"),
    ("4000000000003220", ProviderStatus.REQUIRES_ACTION, None),
    ("pm_sandbox_3ds", ProviderStatus.REQUIRES_ACTION, None),
    ("pm_sandbox_webhook_late", ProviderStatus.SUCCEEDED, None),
    ("pm_sandbox_webhook_twice", ProviderStatus.SUCCEEDED, None),
    ("pm_sandbox_webhook_out_of_order", ProviderStatus.SUCCEEDED, None),
    ("pm_sandbox_settlement_short", ProviderStatus.SUCCEEDED, None),
    ("pm_sandbox_unknown", ProviderStatus.FAILED, "unknown_sandbox_method"),
    ("4111111111111111", ProviderStatus.FAILED, "unknown_sandbox_method"),
    ("PM_SANDBOX_SUCCESS", ProviderStatus.FAILED, "unknown_sandbox_method"),
]


@pytest.mark.parametrize(("method", "status", "failure_code"), OUTCOMES)
def test_magic_methods(
    sandbox: SandboxProvider, method: str, status: ProviderStatus, failure_code: str | None
) -> None:
    result = sandbox.create_charge(_request(method))
    assert (result.status, result.failure_code) == (status, failure_code)
    assert result.provider == "sandbox"
    assert (result.amount_minor, result.currency) == (1_770_000, "IRR")
    expected_url = ACTION_URL_PREFIX + result.provider_ref
    assert result.action_url == (expected_url if status is ProviderStatus.REQUIRES_ACTION else None)
    assert sandbox.retrieve_charge(result.provider_ref) == result


def test_every_magic_method_is_tested() -> None:
    tested = {method for method, _, _ in OUTCOMES} | {
        "pm_sandbox_provider_error",
        "pm_sandbox_timeout",
    }
    assert set(MAGIC_METHODS) <= tested


def test_provider_ref_is_derived_from_the_idempotency_key(sandbox: SandboxProvider) -> None:
    result = sandbox.create_charge(_request("pm_sandbox_success", key="k-42"))
    digest = hashlib.sha256(b"k-42").hexdigest()[:24]
    assert result.provider_ref == charge_ref_for("k-42") == f"sbx_ch_{digest}"


def test_provider_error_is_retryable_and_charges_nothing(sandbox: SandboxProvider) -> None:
    request = _request("pm_sandbox_provider_error")
    with pytest.raises(ProviderError) as exc:
        sandbox.create_charge(request)
    assert (exc.value.code, exc.value.retryable, exc.value.provider) == (
        "sandbox_provider_error",
        True,
        "sandbox",
    )
    assert not isinstance(exc.value, ProviderTimeoutError)
    with pytest.raises(ProviderError) as missing:
        sandbox.retrieve_charge(charge_ref_for(request.idempotency_key))
    assert missing.value.code == "no_such_charge"


def test_timeout_then_retrieve_and_retry_find_the_charge_that_was_made(
    sandbox: SandboxProvider,
) -> None:
    request = _request("pm_sandbox_timeout")
    with pytest.raises(ProviderTimeoutError) as exc:
        sandbox.create_charge(request)
    assert exc.value.retryable
    ref = charge_ref_for(request.idempotency_key)
    assert sandbox.retrieve_charge(ref).status is ProviderStatus.SUCCEEDED
    retried = sandbox.create_charge(request)  # same key: no second charge, no second timeout
    assert (retried.provider_ref, retried.status) == (ref, ProviderStatus.SUCCEEDED)
    assert [s.provider_ref for s in sandbox.settlements(T0.date())] == [ref]


# --- idempotency ---------------------------------------------------------------------------------


def test_same_key_same_request_same_result_one_charge(sandbox: SandboxProvider) -> None:
    first = sandbox.create_charge(_request("pm_sandbox_success"))
    second = sandbox.create_charge(_request("pm_sandbox_success"))
    assert first == second
    assert len(sandbox.settlements(T0.date())) == 1


def test_a_declined_charge_is_also_replayed(sandbox: SandboxProvider) -> None:
    first = sandbox.create_charge(_request("pm_sandbox_decline"))
    assert sandbox.create_charge(_request("pm_sandbox_decline")) == first


@pytest.mark.parametrize(
    "changed",
    [
        _request("pm_sandbox_success", amount=1_770_001),
        _request("pm_sandbox_decline"),
        ChargeRequest("intent_2", 1_770_000, "IRR", "pm_sandbox_success", "intent_1:charge"),
        ChargeRequest("intent_1", 1_770_000, "EUR", "pm_sandbox_success", "intent_1:charge"),
    ],
    ids=["amount", "method", "intent", "currency"],
)
def test_same_key_different_request_is_refused(
    sandbox: SandboxProvider, changed: ChargeRequest
) -> None:
    sandbox.create_charge(_request("pm_sandbox_success"))
    with pytest.raises(ProviderError) as exc:
        sandbox.create_charge(changed)
    assert (exc.value.code, exc.value.retryable) == ("idempotency_key_reused", False)


def test_different_keys_make_different_charges(sandbox: SandboxProvider) -> None:
    a = sandbox.create_charge(_request("pm_sandbox_success", key="a"))
    b = sandbox.create_charge(_request("pm_sandbox_success", key="b"))
    assert a.provider_ref != b.provider_ref


@pytest.mark.parametrize(
    "request_",
    [
        _request("pm_sandbox_success", key=""),
        _request("pm_sandbox_success", key="k" * (MAX_IDEMPOTENCY_KEY_CHARS + 1)),
        _request("pm_sandbox_success", key="کلید"),
        _request("pm_sandbox_success", amount=0),
        _request("pm_sandbox_success", amount=-5),
        ChargeRequest("intent_1", 100, "XXY", "pm_sandbox_success", "k"),
        ChargeRequest("", 100, "IRR", "pm_sandbox_success", "k"),
        ChargeRequest("intent_1", 100, "IRR", "", "k"),
        ChargeRequest("intent_1", 100, "IRR", "p" * 65, "k"),
    ],
)
def test_invalid_requests_are_refused(sandbox: SandboxProvider, request_: ChargeRequest) -> None:
    with pytest.raises(ProviderError) as exc:
        sandbox.create_charge(request_)
    assert (exc.value.code, exc.value.retryable) == ("invalid_request", False)


def test_a_naive_clock_is_refused(clock: Clock) -> None:
    naive = SandboxProvider(
        records=InMemorySandboxRecords(), now=lambda: datetime(2025, 1, 1), webhook_secrets=[SECRET]
    )
    with pytest.raises(ValueError):
        naive.create_charge(_request("pm_sandbox_success"))


def test_bad_webhook_secrets_are_refused_at_construction(clock: Clock) -> None:
    with pytest.raises(ValueError):
        SandboxProvider(records=InMemorySandboxRecords(), now=clock, webhook_secrets=[])
    with pytest.raises(ValueError):
        SandboxProvider(records=InMemorySandboxRecords(), now=clock, webhook_secrets=[b"short"])


# --- 3-D Secure and cancel -----------------------------------------------------------------------


def test_3ds_confirm_succeeds_once_and_settles_that_day(
    sandbox: SandboxProvider, clock: Clock
) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_3ds")).provider_ref
    assert sandbox.settlements(T0.date()) == []
    clock.advance(60)  # past midnight UTC: the charge settles on the day it succeeded
    confirmed = sandbox.confirm_action(ref, idempotency_key="confirm-1")
    assert (confirmed.status, confirmed.action_url) == (ProviderStatus.SUCCEEDED, None)
    assert sandbox.confirm_action(ref, idempotency_key="confirm-1") == confirmed
    assert sandbox.settlements(T0.date()) == []
    assert [s.provider_ref for s in sandbox.settlements(clock.at.date())] == [ref]


def test_cancel_a_challenged_charge(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("4000000000003220")).provider_ref
    cancelled = sandbox.cancel_charge(ref, idempotency_key="cancel-1")
    assert cancelled.status is ProviderStatus.CANCELLED
    assert sandbox.cancel_charge(ref, idempotency_key="cancel-1") == cancelled
    with pytest.raises(ProviderError) as exc:
        sandbox.confirm_action(ref, idempotency_key="confirm-1")
    assert exc.value.code == "charge_not_requiring_action"


@pytest.mark.parametrize("method", ["pm_sandbox_success", "pm_sandbox_decline"])
def test_finished_charges_cannot_be_cancelled_or_confirmed(
    sandbox: SandboxProvider, method: str
) -> None:
    ref = sandbox.create_charge(_request(method)).provider_ref
    with pytest.raises(ProviderError) as cancel:
        sandbox.cancel_charge(ref, idempotency_key="cancel-1")
    assert cancel.value.code == "charge_not_cancellable"
    if method == "pm_sandbox_decline":
        with pytest.raises(ProviderError) as confirm:
            sandbox.confirm_action(ref, idempotency_key="confirm-1")
        assert confirm.value.code == "charge_not_requiring_action"


def test_unknown_charge_refs(sandbox: SandboxProvider) -> None:
    for call in (
        lambda: sandbox.retrieve_charge("sbx_ch_nope"),
        lambda: sandbox.confirm_action("sbx_ch_nope", idempotency_key="k"),
        lambda: sandbox.cancel_charge("sbx_ch_nope", idempotency_key="k"),
        lambda: sandbox.refund("sbx_ch_nope", amount_minor=1, currency="IRR", idempotency_key="k"),
        lambda: sandbox.webhook_deliveries("sbx_ch_nope"),
    ):
        with pytest.raises(ProviderError) as exc:
            call()
        assert exc.value.code == "no_such_charge"


# --- refunds -------------------------------------------------------------------------------------


def test_partial_then_full_refund_then_over_refund(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_success", amount=1000)).provider_ref
    first = sandbox.refund(ref, amount_minor=300, currency="IRR", idempotency_key="r1")
    assert (first.succeeded, first.amount_minor, first.charge_ref) == (True, 300, ref)
    assert first.provider_ref.startswith("sbx_re_")
    with pytest.raises(ProviderError) as over:
        sandbox.refund(ref, amount_minor=701, currency="IRR", idempotency_key="r2")
    assert (over.value.code, over.value.retryable) == ("amount_too_large", False)
    rest = sandbox.refund(ref, amount_minor=700, currency="IRR", idempotency_key="r2")
    assert rest.amount_minor == 700
    with pytest.raises(ProviderError) as done:
        sandbox.refund(ref, amount_minor=1, currency="IRR", idempotency_key="r3")
    assert done.value.code == "charge_already_refunded"


def test_refund_idempotency(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_success", amount=1000)).provider_ref
    first = sandbox.refund(ref, amount_minor=600, currency="IRR", idempotency_key="r1")
    # A retry of the same refund is not a second refund (600 + 600 would exceed 1000).
    assert sandbox.refund(ref, amount_minor=600, currency="IRR", idempotency_key="r1") == first
    with pytest.raises(ProviderError) as exc:
        sandbox.refund(ref, amount_minor=500, currency="IRR", idempotency_key="r1")
    assert exc.value.code == "idempotency_key_reused"


def test_refund_refusals(sandbox: SandboxProvider) -> None:
    declined = sandbox.create_charge(_request("pm_sandbox_decline", key="d")).provider_ref
    with pytest.raises(ProviderError) as not_refundable:
        sandbox.refund(declined, amount_minor=1, currency="IRR", idempotency_key="r1")
    assert not_refundable.value.code == "charge_not_refundable"
    ok = sandbox.create_charge(_request("pm_sandbox_success", key="s")).provider_ref
    with pytest.raises(ProviderError) as currency:
        sandbox.refund(ok, amount_minor=1, currency="EUR", idempotency_key="r2")
    assert currency.value.code == "currency_mismatch"
    for amount in (0, -1):
        with pytest.raises(ProviderError) as invalid:
            sandbox.refund(ok, amount_minor=amount, currency="IRR", idempotency_key="r3")
        assert invalid.value.code == "invalid_request"


# --- webhooks ------------------------------------------------------------------------------------


def _now_of(delivery_after_s: int) -> datetime:
    return T0 + timedelta(seconds=delivery_after_s)


def test_a_normal_charge_sends_one_signed_event(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_success")).provider_ref
    [delivery] = sandbox.webhook_deliveries(ref)
    assert delivery.deliver_after_s == 0
    event = sandbox.parse_webhook(delivery.body, delivery.headers, now=T0)
    assert event.event_id == event_id_for(ref, ProviderStatus.SUCCEEDED)
    assert (event.charge_ref, event.status, event.amount_minor, event.currency) == (
        ref,
        ProviderStatus.SUCCEEDED,
        1_770_000,
        "IRR",
    )
    assert event.occurred_at == T0
    assert event.failure_code is None
    assert set(json.loads(delivery.body)) == {
        "id", "type", "occurred_at", "charge_ref", "intent_id", "amount_minor", "currency",
        "failure_code",
    }  # fmt: skip


def test_a_declined_charge_event_carries_its_failure_code(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_insufficient_funds")).provider_ref
    [delivery] = sandbox.webhook_deliveries(ref)
    event = sandbox.parse_webhook(delivery.body, delivery.headers, now=T0)
    assert (event.status, event.failure_code) == (ProviderStatus.FAILED, "insufficient_funds")


def test_header_lookup_is_case_insensitive(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_success")).provider_ref
    [delivery] = sandbox.webhook_deliveries(ref)
    lower = {SANDBOX_SIGNATURE_HEADER.lower(): delivery.headers[SANDBOX_SIGNATURE_HEADER]}
    assert sandbox.parse_webhook(delivery.body, lower, now=T0).charge_ref == ref


def test_a_late_webhook_is_signed_when_sent(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_webhook_late")).provider_ref
    [delivery] = sandbox.webhook_deliveries(ref)
    assert delivery.deliver_after_s == WEBHOOK_LATE_DELAY_S
    event = sandbox.parse_webhook(delivery.body, delivery.headers, now=_now_of(600))
    assert event.occurred_at == T0  # it happened at once; only the delivery is late
    with pytest.raises(WebhookSignatureError) as exc:  # "sent" 600 s from now: not yet valid
        sandbox.parse_webhook(delivery.body, delivery.headers, now=T0)
    assert exc.value.rule == "timestamp_out_of_window"


def test_a_webhook_delivered_twice_has_one_event_id(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_webhook_twice")).provider_ref
    first, second = sandbox.webhook_deliveries(ref)
    assert (first.deliver_after_s, second.deliver_after_s) == (0, WEBHOOK_DUPLICATE_DELAY_S)
    assert first.body == second.body
    a = sandbox.parse_webhook(first.body, first.headers, now=T0)
    b = sandbox.parse_webhook(second.body, second.headers, now=_now_of(60))
    assert a == b


def test_out_of_order_webhooks_are_ordered_by_occurred_at(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_webhook_out_of_order")).provider_ref
    first, second = sandbox.webhook_deliveries(ref)
    assert (first.deliver_after_s, second.deliver_after_s) == (0, WEBHOOK_OUT_OF_ORDER_DELAY_S)
    arrived_first = sandbox.parse_webhook(first.body, first.headers, now=T0)
    arrived_second = sandbox.parse_webhook(second.body, second.headers, now=_now_of(5))
    assert arrived_first.status is ProviderStatus.SUCCEEDED
    assert arrived_second.status is ProviderStatus.PROCESSING
    assert arrived_second.occurred_at == arrived_first.occurred_at - timedelta(
        seconds=OUT_OF_ORDER_LEAD_S
    )
    assert arrived_first.event_id != arrived_second.event_id


def test_a_3ds_charge_sends_requires_action_then_succeeded(
    sandbox: SandboxProvider, clock: Clock
) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_3ds")).provider_ref
    [challenge] = sandbox.webhook_deliveries(ref)
    assert sandbox.parse_webhook(challenge.body, challenge.headers, now=T0).status is (
        ProviderStatus.REQUIRES_ACTION
    )
    clock.advance(30)
    sandbox.confirm_action(ref, idempotency_key="c")
    [done] = sandbox.webhook_deliveries(ref)
    event = sandbox.parse_webhook(done.body, done.headers, now=clock.at)
    assert (event.status, event.occurred_at) == (ProviderStatus.SUCCEEDED, clock.at)


def test_tampered_body_is_refused(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_success")).provider_ref
    [delivery] = sandbox.webhook_deliveries(ref)
    tampered = delivery.body.replace(b"1770000", b"9770000")
    assert tampered != delivery.body
    with pytest.raises(WebhookSignatureError) as exc:
        sandbox.parse_webhook(tampered, delivery.headers, now=T0)
    assert exc.value.rule == "no_matching_signature"


def test_stale_timestamp_is_refused(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_success")).provider_ref
    [delivery] = sandbox.webhook_deliveries(ref)
    with pytest.raises(WebhookSignatureError) as exc:
        sandbox.parse_webhook(delivery.body, delivery.headers, now=_now_of(301))
    assert exc.value.rule == "timestamp_out_of_window"


def test_missing_header_and_naive_now(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_success")).provider_ref
    [delivery] = sandbox.webhook_deliveries(ref)
    with pytest.raises(WebhookSignatureError) as exc:
        sandbox.parse_webhook(delivery.body, {}, now=T0)
    assert exc.value.rule == "missing_header"
    with pytest.raises(ValueError):
        sandbox.parse_webhook(delivery.body, delivery.headers, now=datetime(2025, 3, 21))


def test_rotation_a_new_receiver_secret_list_still_accepts_the_old_signer(clock: Clock) -> None:
    records = InMemorySandboxRecords()
    old = SandboxProvider(records=records, now=clock, webhook_secrets=[SECRET])
    ref = old.create_charge(_request("pm_sandbox_success")).provider_ref
    [delivery] = old.webhook_deliveries(ref)
    rotated = SandboxProvider(records=records, now=clock, webhook_secrets=[OTHER_SECRET, SECRET])
    assert rotated.parse_webhook(delivery.body, delivery.headers, now=T0).charge_ref == ref
    only_new = SandboxProvider(records=records, now=clock, webhook_secrets=[OTHER_SECRET])
    with pytest.raises(WebhookSignatureError):
        only_new.parse_webhook(delivery.body, delivery.headers, now=T0)


def _signed(body: bytes) -> dict[str, str]:
    return {
        SANDBOX_SIGNATURE_HEADER: sign_hmac(body, secrets=[SECRET], timestamp_s=int(T0.timestamp()))
    }


GOOD_EVENT = {
    "id": "sbx_evt_1",
    "type": "charge.succeeded",
    "occurred_at": "2025-03-21T23:59:50Z",
    "charge_ref": "sbx_ch_1",
    "intent_id": "intent-1",
    "amount_minor": 5,
    "currency": "IRR",
    "failure_code": None,
}


@pytest.mark.parametrize(
    ("changes", "pointers"),
    [
        ({"type": "charge.refunded"}, {"/type"}),
        ({"type": 7}, {"/type"}),
        ({"currency": "RIAL"}, {"/currency"}),
        ({"amount_minor": 0}, {"/amount_minor"}),
        ({"amount_minor": True}, {"/amount_minor"}),
        ({"failure_code": 3}, {"/failure_code"}),
        ({"occurred_at": "2025-03-21T23:59:50+00:00"}, {"/occurred_at"}),
        ({"id": ""}, {"/id"}),
        ({"extra": 1}, {"/extra"}),
        ({"charge_ref": None, "id": None}, {"/charge_ref", "/id"}),
    ],
)
def test_signed_but_malformed_bodies_name_every_member(
    sandbox: SandboxProvider, changes: dict[str, object], pointers: set[str]
) -> None:
    event = {**GOOD_EVENT, **changes}
    body = json.dumps(
        {k: v for k, v in event.items() if v is not None or k == "failure_code"}
    ).encode()
    with pytest.raises(PaymentFieldError) as exc:
        sandbox.parse_webhook(body, _signed(body), now=T0)
    assert {e.pointer for e in exc.value.errors} == pointers


def test_a_hand_made_valid_event_parses(sandbox: SandboxProvider) -> None:
    body = json.dumps(GOOD_EVENT).encode()
    event = sandbox.parse_webhook(body, _signed(body), now=T0)
    assert (event.event_id, event.charge_ref, event.amount_minor) == ("sbx_evt_1", "sbx_ch_1", 5)
    assert event.intent_id == "intent-1"


@pytest.mark.parametrize("body", [b"[1]", b"{", b'{"a":1.5}'])
def test_bodies_that_are_not_objects_or_not_canonical_json(body: bytes) -> None:
    with pytest.raises(PaymentFieldError):
        parse_sandbox_event(body)


# --- settlements ---------------------------------------------------------------------------------


def test_settlements_of_a_day(sandbox: SandboxProvider, clock: Clock) -> None:
    day = T0.date()
    ok = sandbox.create_charge(_request("pm_sandbox_success", key="ok", amount=1000)).provider_ref
    short = sandbox.create_charge(_request("pm_sandbox_settlement_short", key="short", amount=500))
    sandbox.create_charge(_request("pm_sandbox_decline", key="declined"))
    sandbox.create_charge(_request("pm_sandbox_3ds", key="challenged"))
    refund = sandbox.refund(ok, amount_minor=250, currency="IRR", idempotency_key="r1")
    clock.advance(20)  # next UTC day
    late_refund = sandbox.refund(ok, amount_minor=50, currency="IRR", idempotency_key="r2")
    lines = sandbox.settlements(day)
    expected = [
        Settlement("sandbox", ok, SettlementKind.CHARGE, 1000, "IRR", day),
        Settlement("sandbox", short.provider_ref, SettlementKind.CHARGE, 499, "IRR", day),
        Settlement("sandbox", refund.provider_ref, SettlementKind.REFUND, 250, "IRR", day),
    ]
    assert lines == sorted(expected, key=lambda s: (s.kind.value, s.provider_ref))
    assert sandbox.settlements(date(2025, 3, 22)) == [
        Settlement(
            "sandbox", late_refund.provider_ref, SettlementKind.REFUND, 50, "IRR", date(2025, 3, 22)
        )
    ]
    assert sandbox.settlements(date(2025, 3, 20)) == []


def test_behaviour_names_match_their_tokens() -> None:
    for method, behaviour in MAGIC_METHODS.items():
        if method.startswith("pm_sandbox_"):
            assert method == f"pm_sandbox_{behaviour.value}"
    assert "pm_sandbox_unknown" not in MAGIC_METHODS
    assert Behaviour.UNKNOWN not in set(MAGIC_METHODS.values())
