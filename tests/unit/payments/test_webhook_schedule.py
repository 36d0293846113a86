"""At-least-once delivery: the retry schedule, the delivery log, replay, and event payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from payments.errors import DeliveryReplayLimitError, DeliveryStateError, PaymentFieldError
from payments.webhook_schedule import (
    MAX_ATTEMPTS,
    MAX_ERROR_CHARS,
    MAX_REPLAYS,
    RETRY_DELAYS_S,
    Delivery,
    DeliveryAttempt,
    DeliveryReplay,
    DeliveryState,
    OutboundEvent,
    OutboundEventType,
    decode_event,
    delivery_log_json,
    due_deliveries,
    encode_event,
    new_delivery,
    next_attempt_at,
    record_attempt,
    replay,
)
from signatures.errors import CanonicalFormError

T0 = datetime(2025, 3, 21, 8, 0, tzinfo=UTC)


def _delivery(delivery_id: str = "dlv_1", at: datetime = T0) -> Delivery:
    return new_delivery(
        delivery_id=delivery_id, event_id="evt_1", endpoint_id="agency:water", created_at=at
    )


def _fail(at: datetime, status_code: int | None = 500) -> DeliveryAttempt:
    error = None if status_code is not None else "timeout"
    return DeliveryAttempt(at=at, status_code=status_code, error=error, duration_ms=120)


def _ok(at: datetime) -> DeliveryAttempt:
    return DeliveryAttempt(at=at, status_code=204, error=None, duration_ms=35)


# --- the schedule --------------------------------------------------------------------------------


def test_the_documented_schedule() -> None:
    assert RETRY_DELAYS_S == (60, 300, 3600, 86400, 172800)
    assert MAX_ATTEMPTS == 6


@pytest.mark.parametrize(
    ("attempts_made", "delay"),
    [(1, timedelta(minutes=1)), (2, timedelta(minutes=5)), (3, timedelta(hours=1)),
     (4, timedelta(days=1)), (5, timedelta(days=2))],
)  # fmt: skip
def test_next_attempt_at_follows_the_schedule(attempts_made: int, delay: timedelta) -> None:
    assert next_attempt_at(attempts_made=attempts_made, last_attempt_at=T0) == T0 + delay


def test_next_attempt_at_gives_up_after_max_attempts() -> None:
    assert next_attempt_at(attempts_made=MAX_ATTEMPTS, last_attempt_at=T0) is None
    assert next_attempt_at(attempts_made=MAX_ATTEMPTS + 3, last_attempt_at=T0) is None


def test_next_attempt_at_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        next_attempt_at(attempts_made=0, last_attempt_at=T0)
    with pytest.raises(ValueError):
        next_attempt_at(attempts_made=1, last_attempt_at=datetime(2025, 1, 1))


# --- attempts ------------------------------------------------------------------------------------


def test_a_new_delivery_is_due_at_once() -> None:
    delivery = _delivery()
    assert delivery.state is DeliveryState.PENDING
    assert delivery.next_attempt_at == T0
    assert delivery.log == ()


def test_2xx_delivers() -> None:
    delivered = record_attempt(_delivery(), _ok(T0))
    assert delivered.state is DeliveryState.DELIVERED
    assert delivered.next_attempt_at is None
    assert delivered.log == (_ok(T0),)


@pytest.mark.parametrize("status_code", [199, 301, 400, 410, 500, 503, None])
def test_anything_but_2xx_is_a_failure(status_code: int | None) -> None:
    after = record_attempt(_delivery(), _fail(T0, status_code))
    assert after.state is DeliveryState.FAILED_RETRYING
    assert after.next_attempt_at == T0 + timedelta(seconds=RETRY_DELAYS_S[0])


def test_failing_every_time_walks_the_schedule_then_dies() -> None:
    delivery = _delivery()
    at = T0
    seen = []
    for _ in range(MAX_ATTEMPTS):
        delivery = record_attempt(delivery, _fail(at))
        if delivery.next_attempt_at is not None:
            seen.append(int((delivery.next_attempt_at - at).total_seconds()))
            at = delivery.next_attempt_at
    assert tuple(seen) == RETRY_DELAYS_S
    assert delivery.state is DeliveryState.DEAD
    assert delivery.next_attempt_at is None
    assert delivery.attempts_since_replay == MAX_ATTEMPTS


def test_success_on_a_retry_delivers() -> None:
    delivery = record_attempt(_delivery(), _fail(T0))
    delivery = record_attempt(delivery, _ok(T0 + timedelta(minutes=1)))
    assert delivery.state is DeliveryState.DELIVERED
    assert len(delivery.log) == 2


@pytest.mark.parametrize("state", [DeliveryState.DELIVERED, DeliveryState.DEAD])
def test_closed_deliveries_refuse_attempts(state: DeliveryState) -> None:
    delivery = _delivery()
    if state is DeliveryState.DELIVERED:
        delivery = record_attempt(delivery, _ok(T0))
    else:
        for _ in range(MAX_ATTEMPTS):
            delivery = record_attempt(delivery, _fail(T0))
    with pytest.raises(DeliveryStateError) as exc:
        record_attempt(delivery, _ok(T0))
    assert (exc.value.delivery_id, exc.value.state) == ("dlv_1", state.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status_code": None, "error": None},
        {"status_code": None, "error": ""},
        {"status_code": 99, "error": None},
        {"status_code": 600, "error": None},
        {"status_code": None, "error": "x" * (MAX_ERROR_CHARS + 1)},
        {"status_code": 200, "error": None, "duration_ms": -1},
        {"status_code": 200, "error": None, "at": datetime(2025, 1, 1)},
    ],
)
def test_attempts_are_validated(kwargs: dict[str, object]) -> None:
    values: dict[str, object] = {"at": T0, "duration_ms": 1, **kwargs}
    with pytest.raises(ValueError):
        DeliveryAttempt(**values)  # type: ignore[arg-type]


def test_an_error_of_exactly_the_limit_is_kept() -> None:
    attempt = DeliveryAttempt(at=T0, status_code=None, error="x" * MAX_ERROR_CHARS, duration_ms=0)
    assert not attempt.succeeded


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "ب"])
def test_ids_are_validated(bad: str) -> None:
    with pytest.raises(ValueError):
        new_delivery(delivery_id=bad, event_id="e", endpoint_id="a", created_at=T0)


# --- replay --------------------------------------------------------------------------------------


def test_replay_of_a_dead_delivery_starts_a_fresh_schedule_and_keeps_the_log() -> None:
    delivery = _delivery()
    for _ in range(MAX_ATTEMPTS):
        delivery = record_attempt(delivery, _fail(T0))
    later = T0 + timedelta(days=5)
    replayed = replay(delivery, at=later)
    assert replayed.state is DeliveryState.PENDING
    assert replayed.next_attempt_at == later
    assert replayed.log[:-1] == delivery.log
    assert replayed.log[-1] == DeliveryReplay(at=later, previous_state=DeliveryState.DEAD)
    assert replayed.attempts_since_replay == 0
    again = record_attempt(replayed, _fail(later))
    assert again.state is DeliveryState.FAILED_RETRYING
    assert again.next_attempt_at == later + timedelta(seconds=RETRY_DELAYS_S[0])


def test_a_delivered_event_can_be_replayed() -> None:
    delivered = record_attempt(_delivery(), _ok(T0))
    replayed = replay(delivered, at=T0 + timedelta(hours=1))
    assert replayed.state is DeliveryState.PENDING
    assert replayed.replays == 1
    assert record_attempt(replayed, _ok(T0)).state is DeliveryState.DELIVERED


def test_replays_are_limited() -> None:
    delivery = _delivery()
    for _ in range(MAX_REPLAYS):
        delivery = replay(delivery, at=T0)
    with pytest.raises(DeliveryReplayLimitError) as exc:
        replay(delivery, at=T0)
    assert exc.value.limit == MAX_REPLAYS


# --- due -----------------------------------------------------------------------------------------


def test_due_deliveries_are_open_and_due_earliest_first() -> None:
    late = _delivery("b", T0 + timedelta(minutes=10))
    early = _delivery("c", T0)
    same_time = _delivery("a", T0)
    retrying = record_attempt(_delivery("d", T0), _fail(T0))  # due at T0 + 1 min
    delivered = record_attempt(_delivery("e", T0), _ok(T0))
    dead = _delivery("f", T0)
    for _ in range(MAX_ATTEMPTS):
        dead = record_attempt(dead, _fail(T0))
    everything = [late, early, same_time, retrying, delivered, dead]
    assert due_deliveries(everything, now=T0) == [same_time, early]
    now = T0 + timedelta(minutes=1)
    assert [d.delivery_id for d in due_deliveries(everything, now=now)] == ["a", "c", "d"]
    with pytest.raises(ValueError):
        due_deliveries(everything, now=datetime(2025, 1, 1))


# --- event payloads ------------------------------------------------------------------------------

EVENT = OutboundEvent(
    event_id="evt_01",
    type=OutboundEventType.PAYMENT_SUCCEEDED,
    created_at=datetime(2025, 3, 21, 11, 30, tzinfo=timezone(timedelta(hours=3, minutes=30))),
    data={"payable_id": "pay_1", "amount_minor": 1_770_000, "currency": "IRR", "split": [1, 2]},
)


def test_encode_event_is_canonical_json_with_utc_time() -> None:
    assert encode_event(EVENT) == (
        b'{"created_at":"2025-03-21T08:00:00Z","data":{"amount_minor":1770000,"currency":"IRR",'
        b'"payable_id":"pay_1","split":[1,2]},"id":"evt_01","type":"payment.succeeded"}'
    )


def test_microseconds_survive() -> None:
    event = OutboundEvent("e", OutboundEventType.REFUND_FAILED, T0.replace(microsecond=5), {})
    body = encode_event(event)
    assert b'"2025-03-21T08:00:00.000005Z"' in body
    assert decode_event(body) == event


def test_decode_event_round_trips() -> None:
    decoded = decode_event(encode_event(EVENT))
    assert decoded == EVENT  # aware datetimes compare by instant
    assert decoded.type is OutboundEventType.PAYMENT_SUCCEEDED


def test_event_types_are_the_five_documented() -> None:
    assert {t.value for t in OutboundEventType} == {
        "payment.succeeded", "payment.failed", "refund.succeeded", "refund.failed", "payable.paid",
    }  # fmt: skip


def test_floats_in_data_are_refused() -> None:
    event = OutboundEvent("e", OutboundEventType.PAYABLE_PAID, T0, {"amount": 1.5})  # type: ignore[dict-item]
    with pytest.raises(CanonicalFormError):
        encode_event(event)


def test_outbound_event_validates() -> None:
    with pytest.raises(ValueError):
        OutboundEvent("", OutboundEventType.PAYABLE_PAID, T0, {})
    with pytest.raises(ValueError):
        OutboundEvent("e", OutboundEventType.PAYABLE_PAID, datetime(2025, 1, 1), {})


@pytest.mark.parametrize(
    ("body", "pointers"),
    [
        (b"[]", {""}),
        (b"{", {""}),
        (b'{"id":"e","type":"x.y","created_at":"2025-03-21T08:00:00Z","data":{}}', {"/type"}),
        (b'{"id":"e","type":["payment.failed"],"created_at":"2025-03-21T08:00:00Z","data":{}}',
         {"/type"}),
        (b'{"id":"a b","type":"payment.failed","created_at":"2025-03-21T08:00:00Z","data":{}}',
         {"/id"}),
        (b'{"id":"e","type":"payment.failed","created_at":"2025-03-21T08:00:00+03:30","data":{}}',
         {"/created_at"}),
        (b'{"id":"e","type":"payment.failed","data":[]}', {"/created_at", "/data"}),
        (b'{"id":"e","type":"payment.failed","created_at":"2025-03-21T08:00:00Z","data":{},"x":1}',
         {"/x"}),
    ],
)  # fmt: skip
def test_decode_event_names_every_refused_member(body: bytes, pointers: set[str]) -> None:
    with pytest.raises(PaymentFieldError) as exc:
        decode_event(body)
    assert {error.pointer for error in exc.value.errors} == pointers


def test_the_delivery_log_as_json() -> None:
    delivery = record_attempt(_delivery(), _fail(T0, None))
    delivery = replay(delivery, at=T0 + timedelta(minutes=2))
    view = delivery_log_json(delivery)
    assert json.loads(json.dumps(view)) == {
        "delivery_id": "dlv_1",
        "event_id": "evt_1",
        "endpoint_id": "agency:water",
        "state": "pending",
        "next_attempt_at": "2025-03-21T08:02:00Z",
        "log": [
            {"kind": "attempt", "at": "2025-03-21T08:00:00Z", "status_code": None,
             "error": "timeout", "duration_ms": 120},
            {"kind": "replay", "at": "2025-03-21T08:02:00Z", "from": "failed_retrying"},
        ],
    }  # fmt: skip
