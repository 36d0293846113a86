"""The intent state machine: the transition table, provider events, expiry, marking paid."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from payments import intents
from payments.errors import (
    IntentEventLimitError,
    IntentTransitionError,
    ProviderEventMismatchError,
    UnknownCurrencyError,
)
from payments.intents import Cause, Intent, IntentState, ProviderEventOutcome
from payments.providers import ProviderEvent, ProviderStatus

T0 = datetime(2025, 3, 21, 10, 0, tzinfo=UTC)
S = IntentState


def _intent(state: IntentState = S.CREATED) -> Intent:
    intent, _ = intents.create_intent(
        intent_id="i-1",
        payable_id="p-1",
        provider="sandbox",
        amount_minor=5000,
        currency="IRR",
        created_at=T0,
    )
    intent = intents.attach_charge(intent, provider_ref="sbx_ch_1")
    return intents.Intent(**{**intent.__dict__, "state": state})


def _event(status: ProviderStatus, *, at_s: int = 10, **overrides: object) -> ProviderEvent:
    fields: dict[str, object] = {
        "provider": "sandbox",
        "event_id": "ev-1",
        "charge_ref": "sbx_ch_1",
        "status": status,
        "amount_minor": 5000,
        "currency": "IRR",
        "occurred_at": T0 + timedelta(seconds=at_s),
        "failure_code": None,
    }
    fields.update(overrides)
    return ProviderEvent(**fields)  # type: ignore[arg-type]


# --- creation ---------------------------------------------------------------------------------


def test_create_intent_starts_in_created_with_a_creation_event() -> None:
    intent, event = intents.create_intent(
        intent_id="i-1",
        payable_id="p-1",
        provider="sandbox",
        amount_minor=5000,
        currency="IRR",
        created_at=T0,
    )
    assert intent.state is S.CREATED and intent.sequence == 1 and intent.provider_ref is None
    assert (event.sequence, event.from_state, event.to_state) == (1, None, S.CREATED)
    assert event.cause is Cause.PAYER_CREATED and event.at == T0
    assert intent.expires_at == T0 + timedelta(seconds=intents.INTENT_TTL_S)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"currency": "XXX"}, UnknownCurrencyError),
        ({"amount_minor": 0}, ValueError),
        ({"amount_minor": 2**53}, ValueError),
        ({"created_at": datetime(2025, 3, 21)}, ValueError),
    ],
)
def test_create_intent_refusals(kwargs: dict[str, object], error: type[Exception]) -> None:
    arguments: dict[str, object] = {
        "intent_id": "i-1",
        "payable_id": "p-1",
        "provider": "sandbox",
        "amount_minor": 5000,
        "currency": "IRR",
        "created_at": T0,
    }
    arguments.update(kwargs)
    with pytest.raises(error):
        intents.create_intent(**arguments)  # type: ignore[arg-type]


def test_attach_charge_keeps_one_charge_per_intent() -> None:
    intent = _intent()
    assert intents.attach_charge(intent, provider_ref="sbx_ch_1") == intent
    with pytest.raises(ValueError, match="another charge"):
        intents.attach_charge(intent, provider_ref="sbx_ch_2")


# --- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "cause"),
    list(itertools.product(IntentState, IntentState, Cause)),
    ids=lambda value: str(value),
)
def test_transition_follows_the_table_exactly(
    source: IntentState, target: IntentState, cause: Cause
) -> None:
    intent = _intent(source)
    if cause in intents.TRANSITIONS.get((source, target), frozenset()):
        moved, event = intents.transition(intent, to=target, cause=cause, at=T0)
        assert moved.state is target and moved.sequence == intent.sequence + 1
        assert (event.from_state, event.to_state, event.cause) == (source, target, cause)
        assert event.sequence == moved.sequence and event.intent_id == "i-1"
    else:
        with pytest.raises(IntentTransitionError) as caught:
            intents.transition(intent, to=target, cause=cause, at=T0)
        assert (caught.value.from_state, caught.value.to_state, caught.value.cause) == (
            source,
            target,
            cause,
        )


def test_the_table_shape() -> None:
    table = intents.TRANSITIONS
    # succeeded is never left, and nothing but a correction leaves a terminal state
    assert not any(source is S.SUCCEEDED for source, _ in table)
    for (source, _), causes in table.items():
        if intents.is_terminal(source):
            assert causes == {Cause.PROVIDER_CORRECTION}
    assert (S.EXPIRED, S.SUCCEEDED) in table and (S.FAILED, S.SUCCEEDED) in table
    assert (S.PROCESSING, S.EXPIRED) not in table  # the provider decides a processing charge
    assert Cause.PAYER_CANCELLED not in table.get((S.PROCESSING, S.CANCELLED), frozenset())
    assert not any(target is S.CREATED for _, target in table)


def test_transition_records_provider_event_and_bounded_detail() -> None:
    _, event = intents.transition(
        _intent(S.PROCESSING),
        to=S.FAILED,
        cause=Cause.PROVIDER_FAILED,
        at=T0,
        provider_event_id="ev-9",
        detail="x" * 500,
    )
    assert event.provider_event_id == "ev-9"
    assert event.detail == "x" * intents.MAX_DETAIL_CHARS


def test_transition_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="time zone"):
        intents.transition(
            _intent(),
            to=S.EXPIRED,
            cause=Cause.EXPIRY,
            at=datetime(2025, 3, 21),
        )


def test_event_count_is_bounded() -> None:
    intent = _intent(S.PROCESSING)
    for _ in range(intents.MAX_EVENTS_PER_INTENT - 1):
        target = S.REQUIRES_ACTION if intent.state is S.PROCESSING else S.PROCESSING
        cause = (
            Cause.PROVIDER_REQUIRES_ACTION if target is S.REQUIRES_ACTION else Cause.PAYER_CONFIRMED
        )
        intent, _ = intents.transition(intent, to=target, cause=cause, at=T0)
    assert intent.sequence == intents.MAX_EVENTS_PER_INTENT
    with pytest.raises(IntentEventLimitError) as caught:
        intents.transition(intent, to=S.FAILED, cause=Cause.PROVIDER_FAILED, at=T0)
    assert caught.value.limit == intents.MAX_EVENTS_PER_INTENT


# --- provider events --------------------------------------------------------------------------


def test_a_provider_event_moves_the_intent() -> None:
    result = intents.apply_provider_event(_intent(), _event(ProviderStatus.SUCCEEDED))
    assert result.changed and result.outcome is ProviderEventOutcome.APPLIED
    assert result.intent.state is S.SUCCEEDED
    assert result.event is not None and result.event.cause is Cause.PROVIDER_SUCCEEDED
    assert result.event.provider_event_id == "ev-1" and result.event.at == T0 + timedelta(
        seconds=10
    )
    assert result.intent.applied_provider_event_ids == {"ev-1"}
    assert result.intent.last_provider_event_at == T0 + timedelta(seconds=10)


def test_a_failure_carries_the_providers_code() -> None:
    result = intents.apply_provider_event(
        _intent(), _event(ProviderStatus.FAILED, failure_code="card_declined")
    )
    assert result.intent.state is S.FAILED
    assert result.event is not None and result.event.detail == "card_declined"


def test_a_duplicate_delivery_changes_nothing() -> None:
    first = intents.apply_provider_event(_intent(), _event(ProviderStatus.SUCCEEDED))
    again = intents.apply_provider_event(first.intent, _event(ProviderStatus.SUCCEEDED))
    assert again.outcome is ProviderEventOutcome.DUPLICATE and not again.changed
    assert again.intent == first.intent and again.event is None


def test_out_of_order_delivery_is_resolved_by_occurred_at() -> None:
    done = intents.apply_provider_event(
        _intent(), _event(ProviderStatus.SUCCEEDED, event_id="ev-2", at_s=20)
    )
    late = intents.apply_provider_event(
        done.intent, _event(ProviderStatus.PROCESSING, event_id="ev-1", at_s=10)
    )
    assert late.outcome is ProviderEventOutcome.STALE and late.event is None
    assert late.intent.state is S.SUCCEEDED
    assert late.intent.applied_provider_event_ids == {"ev-1", "ev-2"}  # a redelivery: duplicate
    assert late.intent.last_provider_event_at == T0 + timedelta(seconds=20)
    older_outcome = intents.apply_provider_event(
        late.intent, _event(ProviderStatus.FAILED, event_id="ev-0", at_s=5)
    )
    assert older_outcome.outcome is ProviderEventOutcome.STALE


def test_progress_after_an_outcome_in_the_same_second_is_stale() -> None:
    done = intents.apply_provider_event(_intent(), _event(ProviderStatus.SUCCEEDED, event_id="a"))
    same = intents.apply_provider_event(
        done.intent, _event(ProviderStatus.PROCESSING, event_id="b")
    )
    assert same.outcome is ProviderEventOutcome.STALE and same.intent.state is S.SUCCEEDED


def test_a_confirmation_of_the_current_state_is_unchanged() -> None:
    result = intents.apply_provider_event(
        _intent(S.PROCESSING), _event(ProviderStatus.PROCESSING, at_s=30)
    )
    assert result.outcome is ProviderEventOutcome.UNCHANGED and result.event is None
    assert result.intent.last_provider_event_at == T0 + timedelta(seconds=30)


@pytest.mark.parametrize("ours", [S.EXPIRED, S.FAILED, S.CANCELLED])
def test_the_provider_corrects_a_terminal_state(ours: IntentState) -> None:
    result = intents.apply_provider_event(_intent(ours), _event(ProviderStatus.SUCCEEDED))
    assert result.intent.state is S.SUCCEEDED
    assert result.event is not None and result.event.cause is Cause.PROVIDER_CORRECTION
    assert intents.marks_paid(result.event)


def test_the_provider_never_reverses_a_success() -> None:
    with pytest.raises(IntentTransitionError) as caught:
        intents.apply_provider_event(_intent(S.SUCCEEDED), _event(ProviderStatus.FAILED))
    assert caught.value.cause == Cause.PROVIDER_CORRECTION


@pytest.mark.parametrize(
    ("member", "override"),
    [
        ("provider", {"provider": "stripe"}),
        ("charge_ref", {"charge_ref": "sbx_ch_2"}),
        ("amount_minor", {"amount_minor": 4999}),
        ("currency", {"currency": "USD"}),
    ],
)
def test_an_event_for_another_charge_is_refused(member: str, override: dict[str, object]) -> None:
    with pytest.raises(ProviderEventMismatchError) as caught:
        intents.apply_provider_event(_intent(), _event(ProviderStatus.SUCCEEDED, **override))  # type: ignore[arg-type]
    assert (caught.value.member, caught.value.intent_id) == (member, "i-1")


def test_an_uncharged_intent_takes_no_provider_event() -> None:
    bare = Intent(**{**_intent().__dict__, "provider_ref": None})
    with pytest.raises(ProviderEventMismatchError):
        intents.apply_provider_event(bare, _event(ProviderStatus.SUCCEEDED))


def test_applied_event_ids_are_bounded() -> None:
    full = Intent(
        **{
            **_intent(S.PROCESSING).__dict__,
            "applied_provider_event_ids": frozenset(
                f"ev-{i}" for i in range(intents.MAX_EVENTS_PER_INTENT)
            ),
        }
    )
    with pytest.raises(IntentEventLimitError):
        intents.apply_provider_event(full, _event(ProviderStatus.SUCCEEDED, event_id="new"))


def test_3ds_flow() -> None:
    intent = _intent()
    step = intents.apply_provider_event(intent, _event(ProviderStatus.REQUIRES_ACTION, at_s=1))
    assert step.intent.state is S.REQUIRES_ACTION
    confirmed, event = intents.transition(
        step.intent, to=S.PROCESSING, cause=Cause.PAYER_CONFIRMED, at=T0 + timedelta(seconds=2)
    )
    assert not intents.marks_paid(event)
    done = intents.apply_provider_event(
        confirmed, _event(ProviderStatus.SUCCEEDED, event_id="ev-2", at_s=3)
    )
    assert done.intent.state is S.SUCCEEDED and done.intent.sequence == 4


# --- expiry and marking paid ------------------------------------------------------------------


@pytest.mark.parametrize("state", [S.CREATED, S.REQUIRES_ACTION])
def test_expiry_after_the_ttl(state: IntentState) -> None:
    intent = _intent(state)
    due = T0 + timedelta(seconds=intents.INTENT_TTL_S)
    same, none = intents.expire_if_due(intent, now=due - timedelta(microseconds=1))
    assert same == intent and none is None
    expired, event = intents.expire_if_due(intent, now=due)
    assert expired.state is S.EXPIRED
    assert event is not None and event.cause is Cause.EXPIRY and event.at == due


@pytest.mark.parametrize("state", [S.PROCESSING, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.EXPIRED])
def test_expiry_leaves_other_states(state: IntentState) -> None:
    intent = _intent(state)
    assert intents.expire_if_due(intent, now=T0 + timedelta(days=30)) == (intent, None)


def test_expiry_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="time zone"):
        intents.expire_if_due(_intent(), now=datetime(2030, 1, 1))


def test_marks_paid_exactly_once_over_a_history() -> None:
    intent = _intent()
    events = []
    for status, event_id, at_s in [
        (ProviderStatus.PROCESSING, "a", 1),
        (ProviderStatus.SUCCEEDED, "b", 2),
        (ProviderStatus.SUCCEEDED, "b", 2),  # duplicate
        (ProviderStatus.SUCCEEDED, "c", 3),  # unchanged
        (ProviderStatus.PROCESSING, "d", 4),  # stale
    ]:
        result = intents.apply_provider_event(intent, _event(status, event_id=event_id, at_s=at_s))
        intent = result.intent
        events.extend([result.event] if result.event is not None else [])
    assert [intents.marks_paid(e) for e in events] == [False, True]
    assert intents.is_terminal(S.SUCCEEDED) and not intents.is_terminal(S.PROCESSING)
