"""At-least-once delivery of our webhooks to agencies: the retry schedule, the delivery log, replay,
and the event payloads themselves.

A delivery is one event for one agency endpoint. Attempt 1 happens when the delivery is created;
each failed attempt (no answer, or an answer other than 2xx) waits RETRY_DELAYS_S[n − 1] before
attempt n + 1; after MAX_ATTEMPTS failures the delivery is dead (dead-lettered) until an operator
replays it. A replay keeps the log, records itself in it, and starts a fresh schedule.

Receivers must deduplicate on the event id: at-least-once means the same event may arrive twice.

Pure code: no I/O, no clock (every time is passed in, timezone-aware).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from payments.errors import DeliveryReplayLimitError, DeliveryStateError, PaymentFieldError
from signatures.canonical import JsonValue, canonicalize, parse_json
from signatures.envelope import add_field_error, read_utc_timestamp
from signatures.errors import CanonicalFormError, FieldError

RETRY_DELAYS_S = (60, 300, 3600, 86400, 172800)  # 1 min, 5 min, 1 h, 1 day, 2 days
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS_S)
MAX_REPLAYS = 20  # manual replays of one delivery; more is a broken endpoint, not bad luck
MAX_ERROR_CHARS = 500
MAX_ID_CHARS = 128
MIN_HTTP_STATUS = 100
MAX_HTTP_STATUS = 599

_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_ID_CHARS}}}")


def next_attempt_at(*, attempts_made: int, last_attempt_at: datetime) -> datetime | None:
    """When to try again after `attempts_made` failed attempts, or None to give up (dead).

    Raises ValueError when attempts_made < 1 or last_attempt_at is naive.
    """
    if attempts_made < 1:
        raise ValueError("attempts_made counts the failed attempts so far: at least 1")
    _require_aware(last_attempt_at, "last_attempt_at")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    return last_attempt_at + timedelta(seconds=RETRY_DELAYS_S[attempts_made - 1])


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its first attempt (or the first after a replay)
    DELIVERED = "delivered"  # a 2xx answer
    FAILED_RETRYING = "failed_retrying"  # failed, another attempt is scheduled
    DEAD = "dead"  # MAX_ATTEMPTS failed: only a manual replay sends it again


_OPEN_STATES = frozenset({DeliveryState.PENDING, DeliveryState.FAILED_RETRYING})


@dataclass(frozen=True)
class DeliveryAttempt:
    """One HTTP attempt: the status code answered, or an error (timeout, refused connection).

    Raises ValueError when neither status_code nor error is set, the status code is not an HTTP
    status, the error is longer than MAX_ERROR_CHARS, duration_ms < 0, or `at` is naive.
    """

    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    def __post_init__(self) -> None:
        _require_aware(self.at, "at")
        if self.status_code is None and not self.error:
            raise ValueError("an attempt has a status code, an error, or both")
        if self.status_code is not None and not (
            MIN_HTTP_STATUS <= self.status_code <= MAX_HTTP_STATUS
        ):
            raise ValueError("status_code is not an HTTP status code")
        if self.error is not None and len(self.error) > MAX_ERROR_CHARS:
            raise ValueError(f"error is longer than MAX_ERROR_CHARS={MAX_ERROR_CHARS}")
        if self.duration_ms < 0:
            raise ValueError("duration_ms is negative")

    @property
    def succeeded(self) -> bool:
        """True for a 2xx answer: only that counts as delivered (a 3xx is not followed)."""
        return self.status_code is not None and 200 <= self.status_code <= 299


@dataclass(frozen=True)
class DeliveryReplay:
    """A manual replay, kept in the log between the attempts it separates."""

    at: datetime
    previous_state: DeliveryState


LogEntry = DeliveryAttempt | DeliveryReplay


@dataclass(frozen=True)
class Delivery:
    """One event for one agency endpoint, with every attempt and replay so far (oldest first).

    next_attempt_at is set exactly while the state is pending or failed_retrying.
    """

    delivery_id: str
    event_id: str
    endpoint_id: str
    created_at: datetime
    state: DeliveryState
    next_attempt_at: datetime | None
    log: tuple[LogEntry, ...] = field(default=())

    @property
    def attempts_since_replay(self) -> int:
        """Attempts in the current schedule (since creation or the last replay)."""
        count = 0
        for entry in reversed(self.log):
            if isinstance(entry, DeliveryReplay):
                break
            count += 1
        return count

    @property
    def replays(self) -> int:
        return sum(1 for entry in self.log if isinstance(entry, DeliveryReplay))


def new_delivery(
    *, delivery_id: str, event_id: str, endpoint_id: str, created_at: datetime
) -> Delivery:
    """A pending delivery whose first attempt is due at created_at.

    Raises ValueError for an id outside [A-Za-z0-9_.:-]{1,MAX_ID_CHARS} or a naive created_at.
    """
    for name, value in (
        ("delivery_id", delivery_id),
        ("event_id", event_id),
        ("endpoint_id", endpoint_id),
    ):
        _require_id(value, name)
    _require_aware(created_at, "created_at")
    return Delivery(
        delivery_id=delivery_id,
        event_id=event_id,
        endpoint_id=endpoint_id,
        created_at=created_at,
        state=DeliveryState.PENDING,
        next_attempt_at=created_at,
    )


def record_attempt(delivery: Delivery, attempt: DeliveryAttempt) -> Delivery:
    """The delivery after `attempt`: delivered on 2xx, else retrying or dead per the schedule.

    Raises DeliveryStateError when the delivery is delivered or dead (replay it first).
    """
    if delivery.state not in _OPEN_STATES:
        raise DeliveryStateError(
            delivery_id=delivery.delivery_id, state=delivery.state.value, action="record_attempt"
        )
    log = (*delivery.log, attempt)
    if attempt.succeeded:
        return replace(delivery, state=DeliveryState.DELIVERED, next_attempt_at=None, log=log)
    after = next_attempt_at(
        attempts_made=delivery.attempts_since_replay + 1, last_attempt_at=attempt.at
    )
    state = DeliveryState.DEAD if after is None else DeliveryState.FAILED_RETRYING
    return replace(delivery, state=state, next_attempt_at=after, log=log)


def replay(delivery: Delivery, *, at: datetime) -> Delivery:
    """The delivery reset to pending, due at `at`, with the replay recorded in its log.

    Any state may be replayed (an agency that lost a delivered event asks for it again).
    Raises DeliveryReplayLimitError after MAX_REPLAYS replays; ValueError for a naive `at`.
    """
    _require_aware(at, "at")
    if delivery.replays >= MAX_REPLAYS:
        raise DeliveryReplayLimitError(delivery_id=delivery.delivery_id, limit=MAX_REPLAYS)
    entry = DeliveryReplay(at=at, previous_state=delivery.state)
    return replace(
        delivery, state=DeliveryState.PENDING, next_attempt_at=at, log=(*delivery.log, entry)
    )


def due_deliveries(deliveries: Iterable[Delivery], *, now: datetime) -> list[Delivery]:
    """The open deliveries whose next attempt is due at `now`, earliest first (then by id).

    Raises ValueError for a naive `now`.
    """
    _require_aware(now, "now")
    due = [
        delivery
        for delivery in deliveries
        if delivery.state in _OPEN_STATES
        and delivery.next_attempt_at is not None
        and delivery.next_attempt_at <= now
    ]
    return sorted(due, key=lambda d: (d.next_attempt_at or now, d.delivery_id))


# --- event payloads ------------------------------------------------------------------------------


class OutboundEventType(StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    PAYABLE_PAID = "payable.paid"


_EVENT_TYPES = frozenset(item.value for item in OutboundEventType)


@dataclass(frozen=True)
class OutboundEvent:
    """One event for agencies. data must be canonical-profile JSON (integers, no floats).

    Raises ValueError for an event_id outside [A-Za-z0-9_.:-]{1,MAX_ID_CHARS} or a naive
    created_at.
    """

    event_id: str
    type: OutboundEventType
    created_at: datetime
    data: dict[str, JsonValue]

    def __post_init__(self) -> None:
        _require_id(self.event_id, "event_id")
        _require_aware(self.created_at, "created_at")


def encode_event(event: OutboundEvent) -> bytes:
    """The RFC 8785 canonical JSON body: {"created_at", "data", "id", "type"}.

    created_at is RFC 3339 UTC ending in Z (microseconds only when not zero). Raises
    signatures.errors.CanonicalFormError when data is outside the canonical profile or too large.
    """
    return canonicalize(
        {
            "id": event.event_id,
            "type": event.type.value,
            "created_at": format_utc(event.created_at),
            "data": event.data,
        }
    )


def read_event_object(body: bytes) -> dict[str, JsonValue]:
    """The JSON object of a webhook event body, parsed within the canonical profile.

    Raises PaymentFieldError (the canonical form's errors, or the body is not an object).
    """
    try:
        value = parse_json(body)
    except CanonicalFormError as exc:
        raise PaymentFieldError(exc.errors) from None
    if not isinstance(value, dict):
        raise PaymentFieldError((FieldError("", "wrong_type", "the event is a JSON object"),))
    return value


def decode_event(body: bytes) -> OutboundEvent:
    """Parse a body made by encode_event (what an agency does after verifying the signature).

    Raises PaymentFieldError listing every refused member (JSON Pointers into the body).
    """
    value = read_event_object(body)
    errors: list[FieldError] = []
    event_id, type_name, data = value.get("id"), value.get("type"), value.get("data")
    if not isinstance(event_id, str) or _ID.fullmatch(event_id) is None:
        add_field_error(errors, "/id", "invalid_id", f"id is 1 to {MAX_ID_CHARS} id characters")
    if not isinstance(type_name, str) or type_name not in _EVENT_TYPES:
        add_field_error(errors, "/type", "unknown_type", "type is not an outbound event type")
    created_at = read_utc_timestamp(value.get("created_at"), "/created_at", errors)
    if created_at is None:
        add_field_error(errors, "/created_at", "required", "created_at is required")
    if not isinstance(data, dict):
        add_field_error(errors, "/data", "wrong_type", "data is a JSON object")
    for name in sorted(set(value) - {"id", "type", "created_at", "data"}):
        add_field_error(errors, f"/{name}", "unknown_member", "not a member of an event")
    if errors or not (
        isinstance(event_id, str) and isinstance(data, dict) and created_at is not None
    ):
        raise PaymentFieldError(tuple(errors))
    return OutboundEvent(event_id, OutboundEventType(str(type_name)), created_at, data)


def format_utc(at: datetime) -> str:
    """`at` as RFC 3339 UTC ending in Z; fractional seconds only when not zero."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def log_json(log: Sequence[LogEntry]) -> list[JsonValue]:
    """A delivery log as JSON, oldest first: {"kind": "attempt", "at", "status_code", "error",
    "duration_ms"} or {"kind": "replay", "at", "from"} (the state it was replayed from)."""
    entries: list[JsonValue] = []
    for entry in log:
        if isinstance(entry, DeliveryReplay):
            entries.append(
                {"kind": "replay", "at": format_utc(entry.at), "from": entry.previous_state.value}
            )
        else:
            entries.append(
                {
                    "kind": "attempt",
                    "at": format_utc(entry.at),
                    "status_code": entry.status_code,
                    "error": entry.error,
                    "duration_ms": entry.duration_ms,
                }
            )
    return entries


def delivery_log_json(delivery: Delivery) -> Mapping[str, JsonValue]:
    """The delivery log as JSON for the admin delivery view and replay audits."""
    entries = log_json(delivery.log)
    return {
        "delivery_id": delivery.delivery_id,
        "event_id": delivery.event_id,
        "endpoint_id": delivery.endpoint_id,
        "state": delivery.state.value,
        "next_attempt_at": None
        if delivery.next_attempt_at is None
        else format_utc(delivery.next_attempt_at),
        "log": entries,
    }


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _require_id(value: str, name: str) -> None:
    if _ID.fullmatch(value) is None:
        raise ValueError(f"{name} must match [A-Za-z0-9_.:-]{{1,{MAX_ID_CHARS}}}")
