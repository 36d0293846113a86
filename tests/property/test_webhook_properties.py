"""Hypothesis: webhook signatures verify exactly when untouched and in time, header parsing only
ever refuses with WebhookSignatureError, the delivery schedule keeps its invariants, and event
payloads round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from payments.errors import WebhookSignatureError
from payments.webhook_schedule import (
    MAX_ATTEMPTS,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    OutboundEvent,
    OutboundEventType,
    decode_event,
    encode_event,
    new_delivery,
    record_attempt,
    replay,
)
from payments.webhook_signing import (
    DEFAULT_TOLERANCE_S,
    MAX_SECRETS,
    MIN_SECRET_BYTES,
    ed25519_key_set,
    ed25519_kid,
    sign_ed25519,
    sign_hmac,
    verify_ed25519,
    verify_hmac,
)
from signatures.canonical import MAX_SAFE_INTEGER, JsonValue

bodies = st.binary(max_size=256)
secrets_ = st.binary(min_size=MIN_SECRET_BYTES, max_size=48)
secret_lists = st.lists(secrets_, min_size=1, max_size=MAX_SECRETS, unique=True)
timestamps = st.integers(min_value=0, max_value=4_102_444_800)  # up to 2100
skews = st.integers(min_value=-DEFAULT_TOLERANCE_S, max_value=DEFAULT_TOLERANCE_S)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
KID = ed25519_kid(KEY.public_key())
KEYS = ed25519_key_set([KEY.public_key()])


@given(bodies, secret_lists, timestamps, skews, st.data())
def test_hmac_verifies_with_any_one_of_the_signing_secrets(
    body: bytes, secrets: list[bytes], t: int, skew: int, data: st.DataObject
) -> None:
    header = sign_hmac(body, secrets=secrets, timestamp_s=t)
    receiver = data.draw(st.sampled_from(secrets))
    assert verify_hmac(body, header, secrets=[receiver], now_s=t + skew) == t


@given(bodies, secret_lists, timestamps, st.data())
def test_hmac_refuses_any_changed_body(
    body: bytes, secrets: list[bytes], t: int, data: st.DataObject
) -> None:
    header = sign_hmac(body, secrets=secrets, timestamp_s=t)
    other = data.draw(bodies.filter(lambda b: b != body))
    try:
        verify_hmac(other, header, secrets=secrets, now_s=t)
    except WebhookSignatureError as exc:
        assert exc.rule == "no_matching_signature"
    else:
        raise AssertionError("a changed body verified")


@given(
    bodies, secrets_, timestamps, st.integers(min_value=DEFAULT_TOLERANCE_S + 1, max_value=10**9)
)
def test_hmac_refuses_outside_the_window_both_ways(
    body: bytes, secret: bytes, t: int, distance: int
) -> None:
    header = sign_hmac(body, secrets=[secret], timestamp_s=t)
    for now_s in (t + distance, t - distance):
        try:
            verify_hmac(body, header, secrets=[secret], now_s=now_s)
        except WebhookSignatureError as exc:
            assert exc.rule == "timestamp_out_of_window"
        else:
            raise AssertionError("a timestamp outside the window verified")


@given(st.one_of(st.none(), st.text(max_size=300)), bodies)
def test_any_hmac_header_text_is_refused_only_with_webhook_signature_error(
    header: str | None, body: bytes
) -> None:
    try:
        verify_hmac(body, header, secrets=[b"s" * MIN_SECRET_BYTES], now_s=0)
    except WebhookSignatureError as exc:
        assert exc.rule
    else:
        raise AssertionError("random text verified")


@given(st.one_of(st.none(), st.text(max_size=300)), bodies)
def test_any_ed25519_header_text_is_refused_only_with_webhook_signature_error(
    header: str | None, body: bytes
) -> None:
    try:
        verify_ed25519(body, header, public_keys=KEYS, now_s=0)
    except WebhookSignatureError as exc:
        assert exc.rule
    else:
        raise AssertionError("random text verified")


@given(bodies, timestamps, skews)
def test_ed25519_round_trip(body: bytes, t: int, skew: int) -> None:
    header = sign_ed25519(body, private_key=KEY, kid=KID, timestamp_s=t)
    assert verify_ed25519(body, header, public_keys=KEYS, now_s=t + skew) == t


# --- the delivery schedule -----------------------------------------------------------------------

T0 = datetime(2025, 1, 1, tzinfo=UTC)
# An outcome: an HTTP status, or None for "no answer"; or "replay".
outcomes = st.lists(
    st.one_of(st.integers(min_value=100, max_value=599), st.none(), st.just("replay")),
    max_size=30,
)


@given(outcomes)
def test_delivery_invariants(steps: list[int | str | None]) -> None:
    delivery = new_delivery(delivery_id="d", event_id="e", endpoint_id="a", created_at=T0)
    at = T0
    for step in steps:
        at += timedelta(seconds=1)
        if step == "replay":
            delivery = replay(delivery, at=at)
        elif delivery.state in (DeliveryState.PENDING, DeliveryState.FAILED_RETRYING):
            code = step if isinstance(step, int) else None
            attempt = DeliveryAttempt(at, code, None if code else "timeout", 5)
            delivery = record_attempt(delivery, attempt)
        _check(delivery)


def _check(delivery: Delivery) -> None:
    is_open = delivery.state in (DeliveryState.PENDING, DeliveryState.FAILED_RETRYING)
    assert (delivery.next_attempt_at is not None) == is_open
    assert delivery.attempts_since_replay <= MAX_ATTEMPTS
    last = delivery.log[-1] if delivery.log else None
    if delivery.state is DeliveryState.DELIVERED:
        assert isinstance(last, DeliveryAttempt) and last.succeeded
    if delivery.state is DeliveryState.DEAD:
        assert delivery.attempts_since_replay == MAX_ATTEMPTS
        assert isinstance(last, DeliveryAttempt) and not last.succeeded
    if delivery.state is DeliveryState.FAILED_RETRYING:
        assert isinstance(last, DeliveryAttempt) and not last.succeeded
        assert delivery.next_attempt_at is not None and delivery.next_attempt_at > last.at
    if delivery.state is DeliveryState.PENDING:
        assert delivery.attempts_since_replay == 0


# --- event payloads ------------------------------------------------------------------------------

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=15,
)
events = st.builds(
    OutboundEvent,
    event_id=st.from_regex(r"[A-Za-z0-9_.:-]{1,40}", fullmatch=True),
    type=st.sampled_from(OutboundEventType),
    created_at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    data=st.dictionaries(texts, json_values, max_size=5),
)


@given(events)
def test_events_round_trip_through_their_canonical_bytes(event: OutboundEvent) -> None:
    body = encode_event(event)
    decoded = decode_event(body)
    assert decoded == event
    assert encode_event(decoded) == body
