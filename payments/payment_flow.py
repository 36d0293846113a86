"""What follows a payment intent's change of state, in the same database transaction: the
payable paid (once) and released, the journal entry booked, the agency's webhook queued, and
the paid hooks run (payments.paid_hooks: what waits for the payment, e.g. a licence renewal).

Every function takes a Connection already inside a transaction and never commits. Callers: the
payment.create handler (an expired intent releasing its payable), api.payments after a
provider answered (a charge's result, a verified webhook event, a refund's result, the expiry
sweep), and domain handlers cancelling a payable nobody pays (cancel_open_payable). Each step
is idempotent: a journal entry's id is deterministic and written once, an outbound event's id
is deterministic and queued once, and the intent's own state machine (payments.intents) lets a
transition into succeeded happen once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection

from payments import intent_store, journal_store, outbound_store, paid_hooks, payable_store
from payments.errors import (
    IntentTransitionError,
    PayableStateError,
    PaymentInProgressError,
    PaymentStateError,
    UnknownChargeError,
)
from payments.intents import (
    Cause,
    IntentEvent,
    IntentState,
    ProviderEventOutcome,
    apply_provider_event,
    attach_charge,
    expire_if_due,
    is_terminal,
    marks_paid,
    provider_transition,
    transition,
)
from payments.journal import JournalEntry, payment_entry, refund_entry, unallocated_payment_entry
from payments.payables import PayableStatus, apply_payment, cancel_payable, is_open
from payments.providers import ChargeResult, ProviderEvent, RefundResult, SettlementKind
from payments.refund_store import (
    RefundState,
    StoredRefund,
    get_refund,
    refunded_minor_of_payable,
    save_refund,
)
from payments.webhook_schedule import OutboundEvent, OutboundEventType
from signatures.canonical import JsonValue

OUTCOME_REFUSED = "refused"  # authentic, but contradicts a succeeded payment: for an operator
# On a created intent with no charge reference: the charge call was made but its answer lost
# (timeout, retryable error), so the provider may hold the money. Such an intent is neither
# expired nor cancelled until the provider has been asked again.
OUTCOME_UNKNOWN = "charge_outcome_unknown"


def lock_intent(conn: Connection, intent_id: str) -> intent_store.StoredIntent | None:
    """The intent, locked together with its payable, in the one order every writer uses:
    payable first, then intent (the payment.create handler locks the payable to look at its
    active intent; taking them the other way round here would deadlock with it)."""
    peek = intent_store.get_intent(conn, intent_id)
    if peek is None:
        return None
    payable_store.get_payable(conn, peek.intent.payable_id, for_update=True)
    return intent_store.get_intent(conn, intent_id, for_update=True)


# --- JSON views (results of the transaction types, and the read API) -----------------------------


def _utc(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def payable_json(stored: payable_store.StoredPayable) -> dict[str, JsonValue]:
    p = stored.payable
    view: dict[str, JsonValue] = {
        "payable_id": p.payable_id,
        "kind": p.kind.value,
        "issuer": p.issuer,
        "debtor": p.debtor,
        "amount": {"amount_minor": p.amount_minor, "currency": p.currency},
        "transfers": [
            {"account": t.account, "amount_minor": t.amount_minor, "category": t.category}
            for t in p.transfers
        ],
        "allows_instalments": p.allows_instalments,
        "due_on": p.due_on.isoformat(),
        "reference": p.reference,
        "status": p.status.value,
        "paid_minor": p.paid_minor,
        "refunded_minor": p.refunded_minor,
        "issued_at": _utc(stored.issued_at),
    }
    if stored.bill_id is not None:
        view["bill_id"] = stored.bill_id
        view["payment_id"] = stored.payment_id
    return view


def intent_json(stored: intent_store.StoredIntent) -> dict[str, JsonValue]:
    i = stored.intent
    view: dict[str, JsonValue] = {
        "payment": i.intent_id,
        "payable_id": i.payable_id,
        "payer": stored.payer,
        "provider": i.provider,
        "amount": {"amount_minor": i.amount_minor, "currency": i.currency},
        "state": i.state.value,
        "created_at": _utc(i.created_at),
    }
    if stored.failure_code is not None:
        view["failure_code"] = stored.failure_code
    if stored.action_url is not None and i.state is IntentState.REQUIRES_ACTION:
        view["action_url"] = stored.action_url
    return view


def refund_json(refund: StoredRefund) -> dict[str, JsonValue]:
    view: dict[str, JsonValue] = {
        "refund": refund.refund_id,
        "payment": refund.intent_id,
        "payable_id": refund.payable_id,
        "amount": {"amount_minor": refund.amount_minor, "currency": refund.currency},
        "reason": refund.reason,
        "state": refund.state.value,
        "created_at": _utc(refund.created_at),
    }
    if refund.failure_code is not None:
        view["failure_code"] = refund.failure_code
    return view


# --- the payable's reservation -------------------------------------------------------------------


def release_if_ended(
    conn: Connection, stored: payable_store.StoredPayable, *, now: datetime
) -> payable_store.StoredPayable:
    """The payable with no open intent: an ended one is cleared, a due one expires now.

    Raises PaymentInProgressError while the active intent may still be charged.
    """
    active = stored.active_intent_id
    if active is None:
        return stored
    found = intent_store.get_intent(conn, active, for_update=True)
    assert found is not None, "active_intent_id always names a stored intent"
    if not is_terminal(found.intent.state):
        expired, event = expire_if_due(found.intent, now=now)
        if event is None:
            raise PaymentInProgressError(payable_id=stored.payable.payable_id, intent_id=active)
        after = replace(found, intent=expired, updated_at=now)
        intent_store.save_intent(conn, after, events=[event])
    released = replace(stored, active_intent_id=None)
    payable_store.update_payable(conn, released)
    return released


def cancel_open_payable(conn: Connection, payable_id: str, *, now: datetime) -> bool:
    """Cancel a payable nobody is paying: whether it was cancelled.

    False, and nothing changes, when there is no such payable, when it is paid or cancelled
    already, or while a payment may still charge it: an active intent that has not ended and
    is not due to expire, or one whose charge's answer was lost (the provider may hold the
    money). An active intent past its time to live expires now, as payment.create's check
    does. What was paid of a partially paid payable stays refundable.
    """
    found = payable_store.get_payable(conn, payable_id, for_update=True)
    if found is None or not is_open(found.payable):
        return False
    if found.active_intent_id is not None:
        active = intent_store.get_intent(conn, found.active_intent_id, for_update=True)
        if active is not None and is_outcome_unknown(active):
            return False
        try:
            found = release_if_ended(conn, found, now=now)
        except PaymentInProgressError:
            return False
    payable_store.update_payable(conn, replace(found, payable=cancel_payable(found.payable)))
    return True


# --- consequences of an intent's events ----------------------------------------------------------


def _settle(conn: Connection, after: intent_store.StoredIntent, event: IntentEvent) -> None:
    """Save the intent and its new event, then act on the event."""
    intent_store.save_intent(conn, after, events=[event])
    if marks_paid(event):
        _book_payment(conn, after, at=event.at)
    elif is_terminal(event.to_state):
        _release(conn, after)
        if event.to_state is IntentState.FAILED:
            _notify(conn, after, OutboundEventType.PAYMENT_FAILED, at=event.at)


def _release(conn: Connection, stored: intent_store.StoredIntent) -> None:
    payable = payable_store.get_payable(conn, stored.intent.payable_id, for_update=True)
    assert payable is not None
    if payable.active_intent_id == stored.intent.intent_id:
        payable_store.update_payable(conn, replace(payable, active_intent_id=None))


def _book_payment(conn: Connection, stored: intent_store.StoredIntent, *, at: datetime) -> None:
    intent = stored.intent
    found = payable_store.get_payable(conn, intent.payable_id, for_update=True)
    assert found is not None
    held = found.active_intent_id == intent.intent_id
    try:
        paid = apply_payment(found.payable, amount_minor=intent.amount_minor)
    except PayableStateError:
        # Paid or cancelled meanwhile (a provider correction after expiry): the money is owed
        # back to the payer, never booked as revenue twice.
        entry = unallocated_payment_entry(
            intent_id=intent.intent_id,
            provider=intent.provider,
            occurred_at=at,
            currency=intent.currency,
            amount_minor=intent.amount_minor,
        )
        _post(conn, entry, intent.provider, intent.provider_ref, SettlementKind.CHARGE)
        _notify(conn, stored, OutboundEventType.PAYMENT_SUCCEEDED, at=at, allocated=False)
        return
    entry = payment_entry(
        intent_id=intent.intent_id,
        provider=intent.provider,
        occurred_at=at,
        currency=intent.currency,
        amount_minor=intent.amount_minor,
        transfers=found.payable.transfers,
        paid_before_minor=found.payable.paid_minor,
    )
    _post(conn, entry, intent.provider, intent.provider_ref, SettlementKind.CHARGE)
    active = None if held else found.active_intent_id
    payable_store.update_payable(conn, replace(found, payable=paid, active_intent_id=active))
    _notify(conn, stored, OutboundEventType.PAYMENT_SUCCEEDED, at=at, allocated=True)
    if paid.status is PayableStatus.PAID:
        _notify(conn, stored, OutboundEventType.PAYABLE_PAID, at=at)
        # What waits for this payment (a licence renewal) commits with it, or neither does.
        paid_hooks.run_paid_hooks(conn, paid, at=at)


def _post(
    conn: Connection,
    entry: JournalEntry,
    provider: str,
    provider_ref: str | None,
    movement: SettlementKind,
) -> None:
    journal_store.post_entry(
        conn, entry, provider=provider, provider_ref=provider_ref, movement=movement
    )


def _notify(
    conn: Connection,
    stored: intent_store.StoredIntent,
    kind: OutboundEventType,
    *,
    at: datetime,
    allocated: bool | None = None,
) -> None:
    payable = payable_store.get_payable(conn, stored.intent.payable_id)
    assert payable is not None
    data = {**intent_json(stored), "payable_status": payable.payable.status.value}
    if allocated is not None:
        data["allocated"] = allocated
    event = OutboundEvent(f"evt_{kind.value}_{stored.intent.intent_id}", kind, at, data)
    outbound_store.enqueue_event(conn, event, agency=payable.payable.issuer)


# --- a charge's result, a webhook event, expiry --------------------------------------------------


def apply_charge_result(
    conn: Connection,
    intent_id: str,
    result: ChargeResult,
    *,
    at: datetime,
    cause: Cause | None = None,
) -> intent_store.StoredIntent:
    """Record the provider's synchronous answer to a charge, confirm or cancel call.

    A state the intent already has, or one a webhook has already moved it past, changes
    nothing (webhooks and this answer race; the state machine decides). `cause` overrides the
    provider's cause (payer.confirmed, payer.cancelled).
    """
    before = lock_intent(conn, intent_id)
    assert before is not None
    intent = attach_charge(before.intent, provider_ref=result.provider_ref)
    target, provider_cause = provider_transition(result.status)
    stored = replace(
        before,
        intent=intent,
        failure_code=result.failure_code or _known(before.failure_code),
        action_url=result.action_url or before.action_url,
        updated_at=at,
    )
    if target is intent.state:
        intent_store.save_intent(conn, stored)
        return stored
    try:
        moved, event = transition(
            intent,
            to=target,
            cause=cause or provider_cause,
            at=at,
            detail=result.failure_code or "",
        )
    except IntentTransitionError:
        intent_store.save_intent(conn, stored)
        return stored
    after = replace(stored, intent=moved)
    _settle(conn, after, event)
    return after


def _known(code: str | None) -> str | None:
    return None if code == OUTCOME_UNKNOWN else code


def is_outcome_unknown(stored: intent_store.StoredIntent) -> bool:
    """Whether a charge was asked for and its answer never came (see OUTCOME_UNKNOWN)."""
    return stored.failure_code == OUTCOME_UNKNOWN and stored.intent.provider_ref is None


def mark_outcome_unknown(conn: Connection, intent_id: str, *, at: datetime) -> None:
    """Record that the charge call of a created intent got no answer."""
    before = lock_intent(conn, intent_id)
    assert before is not None
    if before.intent.state is IntentState.CREATED and before.intent.provider_ref is None:
        intent_store.save_intent(conn, replace(before, failure_code=OUTCOME_UNKNOWN, updated_at=at))


def clear_outcome_unknown(conn: Connection, intent_id: str, *, code: str, at: datetime) -> None:
    """The provider answered the repeated charge call with an error: it holds no charge under
    our key, so the intent is an ordinary created one again (expirable, cancellable)."""
    before = lock_intent(conn, intent_id)
    assert before is not None
    if is_outcome_unknown(before):
        intent_store.save_intent(conn, replace(before, failure_code=code, updated_at=at))


def fail_charge(
    conn: Connection, intent_id: str, *, code: str, at: datetime
) -> intent_store.StoredIntent:
    """The provider refused the charge outright (not a decline: an error it will not retry)."""
    before = lock_intent(conn, intent_id)
    assert before is not None
    if is_terminal(before.intent.state):
        return before
    failed = replace(before, failure_code=code)
    return _move(conn, failed, to=IntentState.FAILED, cause=Cause.PROVIDER_FAILED, at=at)


def apply_webhook_event(conn: Connection, event: ProviderEvent, *, received_at: datetime) -> str:
    """Apply a verified provider event; returns its outcome (applied, unchanged, duplicate,
    stale, refused). Raises UnknownChargeError when no intent has the charge (nothing is
    recorded, so the provider's redelivery is applied later), ProviderEventMismatchError."""
    found = _intent_of_event(conn, event)
    if found is None:
        raise UnknownChargeError(provider=event.provider)
    intent_id = found.intent.intent_id
    if not intent_store.record_provider_event(
        conn, event, intent_id=intent_id, received_at=received_at, outcome="received"
    ):
        return ProviderEventOutcome.DUPLICATE.value
    try:
        result = apply_provider_event(found.intent, event)
    except IntentTransitionError:
        outcome = OUTCOME_REFUSED
    else:
        outcome = result.outcome.value
        after = replace(found, intent=result.intent, updated_at=received_at)
        if event.failure_code is not None:
            after = replace(after, failure_code=event.failure_code)
        if result.event is None:
            intent_store.save_intent(conn, after)
        else:
            _settle(conn, after, result.event)
    intent_store.set_provider_event_outcome(
        conn, provider=event.provider, event_id=event.event_id, intent_id=intent_id, outcome=outcome
    )
    return outcome


def _intent_of_event(conn: Connection, event: ProviderEvent) -> intent_store.StoredIntent | None:
    """The locked intent the event is about: by the charge reference, else by the intent id the
    provider echoes when our intent never learnt its charge (the answer to the charge call was
    lost), which attaches the charge now."""
    peek = intent_store.find_intent_by_ref(
        conn, provider=event.provider, provider_ref=event.charge_ref
    )
    if peek is not None:
        return lock_intent(conn, peek.intent.intent_id)
    if event.intent_id is None:
        return None
    found = lock_intent(conn, event.intent_id)
    if found is None or found.intent.provider != event.provider or found.intent.provider_ref:
        return None
    attached = replace(found, intent=attach_charge(found.intent, provider_ref=event.charge_ref))
    intent_store.save_intent(conn, attached)
    return attached


def expire_intent(conn: Connection, intent_id: str, *, now: datetime) -> bool:
    """Expire the intent if it is due (created or requires_action for INTENT_TTL_S)."""
    before = lock_intent(conn, intent_id)
    if before is None:
        return False
    moved, event = expire_if_due(before.intent, now=now)
    if event is None:
        return False
    _settle(conn, replace(before, intent=moved, updated_at=now), event)
    return True


# --- refunds -------------------------------------------------------------------------------------


def complete_refund(
    conn: Connection,
    refund_id: str,
    *,
    result: RefundResult | None,
    failure_code: str | None,
    at: datetime,
) -> StoredRefund:
    """Record a refund's outcome: succeeded books the compensating entry; failed gives the
    reserved amount back to the payable's refundable amount. A refund already decided is left
    as it is."""
    refund = get_refund(conn, refund_id, for_update=True)
    assert refund is not None
    if refund.state is not RefundState.PENDING:
        return refund
    payable = payable_store.get_payable(conn, refund.payable_id, for_update=True)
    intent = intent_store.get_intent(conn, refund.intent_id)
    assert payable is not None and intent is not None
    if result is not None and result.succeeded:
        before = refunded_minor_of_payable(conn, refund.payable_id, states=(RefundState.SUCCEEDED,))
        entry = refund_entry(
            refund_id=refund.refund_id,
            provider=intent.intent.provider,
            occurred_at=at,
            currency=refund.currency,
            amount_minor=refund.amount_minor,
            transfers=payable.payable.transfers,
            paid_minor=payable.payable.paid_minor,
            refunded_before_minor=before,
        )
        done = replace(refund, state=RefundState.SUCCEEDED, provider_ref=result.provider_ref)
        _post(conn, entry, intent.intent.provider, result.provider_ref, SettlementKind.REFUND)
        kind = OutboundEventType.REFUND_SUCCEEDED
    else:
        code = failure_code or (result.failure_code if result else None) or "refund_failed"
        done = replace(refund, state=RefundState.FAILED, failure_code=code)
        back = payable.payable.refunded_minor - refund.amount_minor
        payable_store.update_payable(
            conn, replace(payable, payable=replace(payable.payable, refunded_minor=back))
        )
        kind = OutboundEventType.REFUND_FAILED
    done = replace(done, updated_at=at)
    save_refund(conn, done)
    event = OutboundEvent(f"evt_{kind.value}_{refund.refund_id}", kind, at, refund_json(done))
    outbound_store.enqueue_event(conn, event, agency=payable.payable.issuer)
    return done


def cancel_uncharged(
    conn: Connection, intent_id: str, *, at: datetime
) -> intent_store.StoredIntent:
    """The payer cancels an intent no provider has a charge for (it never reached one)."""
    before = lock_intent(conn, intent_id)
    assert before is not None
    if is_terminal(before.intent.state):
        return before
    return _move(conn, before, to=IntentState.CANCELLED, cause=Cause.PAYER_CANCELLED, at=at)


def record_confirmation(
    conn: Connection, intent_id: str, *, at: datetime
) -> intent_store.StoredIntent:
    """The payer passed the challenge: requires_action → processing (cause payer.confirmed).
    Raises PaymentStateError when the intent no longer requires action."""
    before = lock_intent(conn, intent_id)
    assert before is not None
    state = before.intent.state
    if state is not IntentState.REQUIRES_ACTION:
        raise PaymentStateError(intent_id=intent_id, state=state.value, action="confirmed")
    return _move(conn, before, to=IntentState.PROCESSING, cause=Cause.PAYER_CONFIRMED, at=at)


def _move(
    conn: Connection,
    before: intent_store.StoredIntent,
    *,
    to: IntentState,
    cause: Cause,
    at: datetime,
) -> intent_store.StoredIntent:
    """One transition of a locked intent, saved and acted on (the failure code, if any, is
    already on `before`)."""
    detail = (before.failure_code or "") if to is IntentState.FAILED else ""
    moved, event = transition(before.intent, to=to, cause=cause, at=at, detail=detail)
    after = replace(before, intent=moved, updated_at=at)
    _settle(conn, after, event)
    return after
