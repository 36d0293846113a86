"""The payment intent state machine: states, the table of allowed transitions, provider events.

An intent is one attempt to pay one payable through one provider. Every change of state is an
IntentEvent carrying its cause; the table TRANSITIONS is the whole rule. Terminal states
(succeeded, failed, cancelled, expired) are left only by a "provider.correction" to match the
provider's authoritative outcome (we expired an intent the payer did pay), and never from
succeeded: money already booked is reversed by a refund, not by an edit.

Pure: the clock comes in as `at`/`now`, provider events as values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from payments.currency import exponent
from payments.errors import IntentEventLimitError, IntentTransitionError, ProviderEventMismatchError
from payments.providers import ProviderEvent, ProviderStatus

INTENT_TTL_S = 90 * 60  # as GOV.UK Pay: a payer who has not finished in 90 minutes starts again
MAX_EVENTS_PER_INTENT = 32  # events and applied provider event ids; a real charge needs < 10
MAX_DETAIL_CHARS = 200
MAX_INTENT_AMOUNT_MINOR = 2**53 - 1  # exact in JSON, as every amount


class IntentState(StrEnum):
    CREATED = "created"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Cause(StrEnum):
    PAYER_CREATED = "payer.created"  # only the creation event
    PROVIDER_REQUIRES_ACTION = "provider.requires_action"
    PROVIDER_PROCESSING = "provider.processing"
    PAYER_CONFIRMED = "payer.confirmed"
    PROVIDER_SUCCEEDED = "provider.succeeded"
    PROVIDER_FAILED = "provider.failed"
    PROVIDER_CANCELLED = "provider.cancelled"
    PAYER_CANCELLED = "payer.cancelled"
    EXPIRY = "expiry"
    PROVIDER_CORRECTION = "provider.correction"


_S = IntentState
_C = Cause
TERMINAL_STATES = frozenset({_S.SUCCEEDED, _S.FAILED, _S.CANCELLED, _S.EXPIRED})
EXPIRABLE_STATES = frozenset({_S.CREATED, _S.REQUIRES_ACTION})  # processing: the provider decides

_OPEN_TRANSITIONS: dict[tuple[IntentState, IntentState], frozenset[Cause]] = {
    (_S.CREATED, _S.REQUIRES_ACTION): frozenset({_C.PROVIDER_REQUIRES_ACTION}),
    (_S.CREATED, _S.PROCESSING): frozenset({_C.PROVIDER_PROCESSING}),
    (_S.CREATED, _S.SUCCEEDED): frozenset({_C.PROVIDER_SUCCEEDED}),
    (_S.CREATED, _S.FAILED): frozenset({_C.PROVIDER_FAILED}),
    (_S.CREATED, _S.CANCELLED): frozenset({_C.PAYER_CANCELLED, _C.PROVIDER_CANCELLED}),
    (_S.CREATED, _S.EXPIRED): frozenset({_C.EXPIRY}),
    (_S.REQUIRES_ACTION, _S.PROCESSING): frozenset({_C.PAYER_CONFIRMED, _C.PROVIDER_PROCESSING}),
    (_S.REQUIRES_ACTION, _S.SUCCEEDED): frozenset({_C.PROVIDER_SUCCEEDED}),
    (_S.REQUIRES_ACTION, _S.FAILED): frozenset({_C.PROVIDER_FAILED}),
    (_S.REQUIRES_ACTION, _S.CANCELLED): frozenset({_C.PAYER_CANCELLED, _C.PROVIDER_CANCELLED}),
    (_S.REQUIRES_ACTION, _S.EXPIRED): frozenset({_C.EXPIRY}),
    (_S.PROCESSING, _S.REQUIRES_ACTION): frozenset({_C.PROVIDER_REQUIRES_ACTION}),
    (_S.PROCESSING, _S.SUCCEEDED): frozenset({_C.PROVIDER_SUCCEEDED}),
    (_S.PROCESSING, _S.FAILED): frozenset({_C.PROVIDER_FAILED}),
    (_S.PROCESSING, _S.CANCELLED): frozenset({_C.PROVIDER_CANCELLED}),
}
# Corrections: from a terminal state other than succeeded to the provider's outcome.
_CORRECTIONS = {
    (source, target): frozenset({_C.PROVIDER_CORRECTION})
    for source in (_S.FAILED, _S.CANCELLED, _S.EXPIRED)
    for target in (_S.SUCCEEDED, _S.FAILED, _S.CANCELLED)
    if source is not target
}
TRANSITIONS: Mapping[tuple[IntentState, IntentState], frozenset[Cause]] = MappingProxyType(
    {**_OPEN_TRANSITIONS, **_CORRECTIONS}
)

_STATUS_STATE = {
    ProviderStatus.REQUIRES_ACTION: (_S.REQUIRES_ACTION, _C.PROVIDER_REQUIRES_ACTION),
    ProviderStatus.PROCESSING: (_S.PROCESSING, _C.PROVIDER_PROCESSING),
    ProviderStatus.SUCCEEDED: (_S.SUCCEEDED, _C.PROVIDER_SUCCEEDED),
    ProviderStatus.FAILED: (_S.FAILED, _C.PROVIDER_FAILED),
    ProviderStatus.CANCELLED: (_S.CANCELLED, _C.PROVIDER_CANCELLED),
}


@dataclass(frozen=True)
class Intent:
    """One attempt to pay `payable_id` through `provider`.

    `sequence` counts the events so far (the creation event is 1); `provider_ref` is the
    provider's charge reference once charged; `last_provider_event_at` and
    `applied_provider_event_ids` are what apply_provider_event needs to drop stale and
    duplicate deliveries.
    """

    intent_id: str
    payable_id: str
    provider: str
    amount_minor: int
    currency: str
    state: IntentState
    created_at: datetime
    sequence: int = 1
    provider_ref: str | None = None
    last_provider_event_at: datetime | None = None
    applied_provider_event_ids: frozenset[str] = frozenset()

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(seconds=INTENT_TTL_S)


@dataclass(frozen=True)
class IntentEvent:
    """One change of an intent's state and why; from_state is None only for creation."""

    intent_id: str
    sequence: int
    from_state: IntentState | None
    to_state: IntentState
    cause: Cause
    at: datetime
    provider_event_id: str | None = None
    detail: str = ""  # e.g. the provider's failure code; at most MAX_DETAIL_CHARS


class ProviderEventOutcome(StrEnum):
    APPLIED = "applied"  # the state changed
    UNCHANGED = "unchanged"  # the provider confirmed the state we have
    DUPLICATE = "duplicate"  # this event id was applied before
    STALE = "stale"  # older than the last provider event applied, or behind a terminal state


@dataclass(frozen=True)
class ProviderEventResult:
    """The intent after the event (its applied ids may have grown even when nothing changed)."""

    intent: Intent
    event: IntentEvent | None
    outcome: ProviderEventOutcome

    @property
    def changed(self) -> bool:
        return self.outcome is ProviderEventOutcome.APPLIED


def provider_transition(status: ProviderStatus) -> tuple[IntentState, Cause]:
    """The state a provider status moves an intent to, and the cause it records."""
    return _STATUS_STATE[status]


def is_terminal(state: IntentState) -> bool:
    """Whether `state` is succeeded, failed, cancelled or expired."""
    return state in TERMINAL_STATES


def create_intent(
    *,
    intent_id: str,
    payable_id: str,
    provider: str,
    amount_minor: int,
    currency: str,
    created_at: datetime,
) -> tuple[Intent, IntentEvent]:
    """A new intent in state created, and its creation event (sequence 1, cause payer.created).

    Raises UnknownCurrencyError for a currency payments does not accept, ValueError for an
    amount outside 1..MAX_INTENT_AMOUNT_MINOR or a naive created_at.
    """
    exponent(currency)
    if not 0 < amount_minor <= MAX_INTENT_AMOUNT_MINOR:
        raise ValueError("an intent's amount is 1..MAX_INTENT_AMOUNT_MINOR minor units")
    _check_aware(created_at)
    intent = Intent(
        intent_id=intent_id,
        payable_id=payable_id,
        provider=provider,
        amount_minor=amount_minor,
        currency=currency,
        state=IntentState.CREATED,
        created_at=created_at,
    )
    event = IntentEvent(intent_id, 1, None, IntentState.CREATED, Cause.PAYER_CREATED, created_at)
    return intent, event


def attach_charge(intent: Intent, *, provider_ref: str) -> Intent:
    """The intent with the provider's charge reference recorded.

    Raises ValueError when a different reference is already recorded (one intent, one charge).
    """
    if intent.provider_ref not in (None, provider_ref):
        raise ValueError("the intent already has another charge")
    return replace(intent, provider_ref=provider_ref)


def transition(
    intent: Intent,
    *,
    to: IntentState,
    cause: Cause,
    at: datetime,
    provider_event_id: str | None = None,
    detail: str = "",
) -> tuple[Intent, IntentEvent]:
    """Move `intent` to state `to` for `cause`, returning the new intent and its event.

    Raises IntentTransitionError when TRANSITIONS has no such (from, to, cause),
    IntentEventLimitError when the intent already has MAX_EVENTS_PER_INTENT events, ValueError
    for a naive `at`.
    """
    if cause not in TRANSITIONS.get((intent.state, to), frozenset()):
        raise IntentTransitionError(intent.state, to, cause)
    if intent.sequence >= MAX_EVENTS_PER_INTENT:
        raise IntentEventLimitError(intent_id=intent.intent_id, limit=MAX_EVENTS_PER_INTENT)
    _check_aware(at)
    sequence = intent.sequence + 1
    event = IntentEvent(
        intent_id=intent.intent_id,
        sequence=sequence,
        from_state=intent.state,
        to_state=to,
        cause=cause,
        at=at,
        provider_event_id=provider_event_id,
        # A provider's text is not ours to refuse, only to bound.
        detail=detail[:MAX_DETAIL_CHARS],
    )
    return replace(intent, state=to, sequence=sequence), event


def apply_provider_event(intent: Intent, event: ProviderEvent) -> ProviderEventResult:
    """Apply a verified provider webhook event to its intent.

    Duplicates (an event id applied before) and stale events (occurred before the last provider
    event applied, or a progress status after a terminal state) change nothing. A terminal
    outcome that differs from a terminal state we hold is applied as a "provider.correction".
    The transition's time is the event's occurred_at; its detail, the failure code.

    Raises ProviderEventMismatchError when the event's provider, charge_ref, amount or currency
    is not the intent's; IntentTransitionError when the provider contradicts a succeeded intent
    (a reversal is a refund or dispute, never an edit); IntentEventLimitError.
    """
    _check_event_matches(intent, event)
    if event.event_id in intent.applied_provider_event_ids:
        return ProviderEventResult(intent, None, ProviderEventOutcome.DUPLICATE)
    if len(intent.applied_provider_event_ids) >= MAX_EVENTS_PER_INTENT:
        raise IntentEventLimitError(intent_id=intent.intent_id, limit=MAX_EVENTS_PER_INTENT)
    seen = replace(
        intent, applied_provider_event_ids=intent.applied_provider_event_ids | {event.event_id}
    )
    last = intent.last_provider_event_at
    target, cause = _STATUS_STATE[event.status]
    if last is not None and event.occurred_at < last:
        return ProviderEventResult(seen, None, ProviderEventOutcome.STALE)
    if is_terminal(intent.state) and not is_terminal(target):
        return ProviderEventResult(seen, None, ProviderEventOutcome.STALE)
    seen = replace(seen, last_provider_event_at=event.occurred_at)
    if target is intent.state:
        return ProviderEventResult(seen, None, ProviderEventOutcome.UNCHANGED)
    if is_terminal(intent.state):
        cause = Cause.PROVIDER_CORRECTION
    moved, intent_event = transition(
        seen,
        to=target,
        cause=cause,
        at=event.occurred_at,
        provider_event_id=event.event_id,
        detail=event.failure_code or "",
    )
    return ProviderEventResult(moved, intent_event, ProviderEventOutcome.APPLIED)


def expire_if_due(intent: Intent, *, now: datetime) -> tuple[Intent, IntentEvent | None]:
    """Expire a created or requires_action intent once `now` ≥ created_at + INTENT_TTL_S.

    Returns the intent unchanged and None when it is not due or in another state. Raises
    IntentEventLimitError, ValueError for a naive `now`.
    """
    _check_aware(now)
    if intent.state not in EXPIRABLE_STATES or now < intent.expires_at:
        return intent, None
    return transition(intent, to=IntentState.EXPIRED, cause=Cause.EXPIRY, at=now)


def marks_paid(event: IntentEvent) -> bool:
    """Whether this event is the intent's one transition into succeeded (mark the payable paid).

    Succeeded is never left, so at most one event of an intent returns True.
    """
    return event.to_state is IntentState.SUCCEEDED and event.from_state is not IntentState.SUCCEEDED


def _check_event_matches(intent: Intent, event: ProviderEvent) -> None:
    checks = (
        ("provider", event.provider == intent.provider),
        ("charge_ref", event.charge_ref == intent.provider_ref),
        ("amount_minor", event.amount_minor == intent.amount_minor),
        ("currency", event.currency == intent.currency),
    )
    for member, agrees in checks:
        if not agrees:
            raise ProviderEventMismatchError(intent_id=intent.intent_id, member=member)


def _check_aware(moment: datetime) -> None:
    if moment.utcoffset() is None:
        raise ValueError("times must carry a time zone")
