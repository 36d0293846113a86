"""Storage of payment intents, their events, and the provider events applied to them
(payments.schema.payment_intents, intent_events, provider_events).

payments.intents is the rule; this module turns its values into rows and back. An intent's
`applied_provider_event_ids` are not a column: they are the provider_events rows that name the
intent (every outcome except "orphan"), so the one unique key (provider, event_id) is both the
duplicate-delivery check and the intent's memory of what it applied.

Every function takes a Connection inside the caller's transaction and never commits; none
raises IntegrityError in normal use (a failed statement would abort a whole PostgreSQL
transaction, which runs without savepoints): intents and events are written under the caller's
locks, provider events with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Row, and_, insert, or_, select, true
from sqlalchemy import update as sql_update

from payments.intents import (
    EXPIRABLE_STATES,
    INTENT_TTL_S,
    Cause,
    Intent,
    IntentEvent,
    IntentState,
)
from payments.journal_store import insert_unless_present
from payments.payable_store import MAX_PAGE_ROWS, keyset_before
from payments.providers import ProviderEvent
from payments.schema import intent_events as intent_events_table
from payments.schema import payables, payment_intents, provider_events
from signatures.registry_schema import as_utc

__all__ = [
    "MAX_EXPIRY_BATCH",
    "MAX_FILTER_PAYABLE_IDS",
    "MAX_OUTCOME_CHARS",
    "ORPHAN_OUTCOME",
    "StoredIntent",
    "expirable_intent_ids",
    "find_intent_by_ref",
    "get_intent",
    "insert_intent",
    "intent_events",
    "list_intents",
    "record_provider_event",
    "save_intent",
    "set_provider_event_outcome",
]

# A provider event no intent has (yet): kept for the record, never an intent's applied id.
ORPHAN_OUTCOME = "orphan"
# Outcomes are the caller's words (ProviderEventOutcome values, ORPHAN_OUTCOME, or its own
# such as "received" until judged): lower-case names, bounded.
MAX_OUTCOME_CHARS = 32
_OUTCOME = re.compile(rf"[a-z][a-z_]{{0,{MAX_OUTCOME_CHARS - 1}}}")
# Intents one expiry sweep returns: the sweeper loops, each batch a short transaction.
MAX_EXPIRY_BATCH = 500
# Payables one list_intents(payable_ids=…) call may name: a page of payables.
MAX_FILTER_PAYABLE_IDS = MAX_PAGE_ROWS

_Row = Row[tuple[object, ...]]


@dataclass(frozen=True)
class StoredIntent:
    """An intent with what storage keeps beside it: the paying subject, the provider's failure
    code and 3-D Secure URL as last reported, when it last changed, and the ledger leaf of the
    payment.create transaction that created it."""

    intent: Intent
    payer: str
    failure_code: str | None
    action_url: str | None
    updated_at: datetime
    ledger_index: int


# --- rows -----------------------------------------------------------------------------------------


def _applied_ids(conn: Connection, intent_ids: Collection[str]) -> dict[str, frozenset[str]]:
    if not intent_ids:
        return {}
    query = select(provider_events.c.intent_id, provider_events.c.event_id).where(
        provider_events.c.intent_id.in_(sorted(intent_ids)),
        provider_events.c.outcome != ORPHAN_OUTCOME,
    )
    found: dict[str, set[str]] = defaultdict(set)
    for intent_id, event_id in conn.execute(query).all():
        found[str(intent_id)].add(str(event_id))
    return {intent_id: frozenset(ids) for intent_id, ids in found.items()}


def _stored(row: _Row, applied: frozenset[str]) -> StoredIntent:
    last = row.last_provider_event_at
    intent = Intent(
        intent_id=str(row.id),
        payable_id=str(row.payable_id),
        provider=str(row.provider),
        amount_minor=int(row.amount_minor),
        currency=str(row.currency),
        state=IntentState(row.state),
        created_at=as_utc(row.created_at),
        sequence=int(row.sequence),
        provider_ref=row.provider_ref,
        last_provider_event_at=None if last is None else as_utc(last),
        applied_provider_event_ids=applied,
    )
    return StoredIntent(
        intent=intent,
        payer=str(row.payer),
        failure_code=row.failure_code,
        action_url=row.action_url,
        updated_at=as_utc(row.updated_at),
        ledger_index=int(row.ledger_index),
    )


def _with_applied(conn: Connection, rows: Sequence[_Row]) -> list[StoredIntent]:
    applied = _applied_ids(conn, [str(row.id) for row in rows])
    return [_stored(row, applied.get(str(row.id), frozenset())) for row in rows]


def _one(conn: Connection, where: ColumnElement[bool], *, for_update: bool) -> StoredIntent | None:
    query = select(payment_intents).where(where)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return None if row is None else _with_applied(conn, [row])[0]


def _event_row(event: IntentEvent) -> dict[str, object]:
    return {
        "intent_id": event.intent_id,
        "sequence": event.sequence,
        "from_state": None if event.from_state is None else event.from_state.value,
        "to_state": event.to_state.value,
        "cause": event.cause.value,
        "at": event.at,
        "provider_event_id": event.provider_event_id,
        "detail": event.detail,
    }


# --- intents --------------------------------------------------------------------------------------


def insert_intent(conn: Connection, stored: StoredIntent, *, created: IntentEvent) -> None:
    """Insert a new intent and its creation event (sequence 1).

    Raises AssertionError (a programming error) unless the intent is at sequence 1 with no
    applied provider events and `created` is its creation event.
    """
    intent = stored.intent
    if intent.sequence != 1 or intent.applied_provider_event_ids:
        raise AssertionError("insert_intent: a new intent has one event and no provider events")
    if (created.intent_id, created.sequence, created.from_state) != (intent.intent_id, 1, None):
        raise AssertionError("insert_intent: `created` is not this intent's creation event")
    conn.execute(
        insert(payment_intents).values(
            id=intent.intent_id,
            payable_id=intent.payable_id,
            payer=stored.payer,
            provider=intent.provider,
            amount_minor=intent.amount_minor,
            currency=intent.currency,
            state=intent.state.value,
            sequence=intent.sequence,
            provider_ref=intent.provider_ref,
            last_provider_event_at=intent.last_provider_event_at,
            failure_code=stored.failure_code,
            action_url=stored.action_url,
            created_at=intent.created_at,
            updated_at=stored.updated_at,
            ledger_index=stored.ledger_index,
        )
    )
    conn.execute(insert(intent_events_table).values(**_event_row(created)))


def get_intent(
    conn: Connection, intent_id: str, *, for_update: bool = False
) -> StoredIntent | None:
    """The intent `intent_id`, or None; `for_update` locks its row (PostgreSQL)."""
    return _one(conn, payment_intents.c.id == intent_id, for_update=for_update)


def find_intent_by_ref(
    conn: Connection, *, provider: str, provider_ref: str, for_update: bool = False
) -> StoredIntent | None:
    """The intent charged as `provider_ref` at `provider`, or None."""
    where = and_(
        payment_intents.c.provider == provider, payment_intents.c.provider_ref == provider_ref
    )
    return _one(conn, where, for_update=for_update)


def save_intent(
    conn: Connection, stored: StoredIntent, *, events: Sequence[IntentEvent] = ()
) -> None:
    """Write an intent's state, sequence, provider_ref, last_provider_event_at, failure_code,
    action_url and updated_at, and insert its new `events`.

    The events must continue the stored sequence one by one and end at the intent's sequence
    (record_provider_event, not this, remembers applied provider event ids). Raises
    AssertionError (a programming error) when they do not, or when the intent is not stored.
    """
    intent = stored.intent
    current = conn.execute(
        select(payment_intents.c.sequence).where(payment_intents.c.id == intent.intent_id)
    ).scalar_one_or_none()
    if current is None:
        raise AssertionError(f"save_intent: no intent {intent.intent_id!r}")
    expected = list(range(current + 1, current + 1 + len(events)))
    if [event.sequence for event in events] != expected or intent.sequence != current + len(events):
        raise AssertionError(
            f"save_intent: events must continue sequence {current} up to {intent.sequence}"
        )
    if any(event.intent_id != intent.intent_id for event in events):
        raise AssertionError("save_intent: an event of another intent")
    conn.execute(
        sql_update(payment_intents)
        .where(payment_intents.c.id == intent.intent_id)
        .values(
            state=intent.state.value,
            sequence=intent.sequence,
            provider_ref=intent.provider_ref,
            last_provider_event_at=intent.last_provider_event_at,
            failure_code=stored.failure_code,
            action_url=stored.action_url,
            updated_at=stored.updated_at,
        )
    )
    if events:
        conn.execute(insert(intent_events_table), [_event_row(event) for event in events])


def intent_events(conn: Connection, intent_id: str) -> list[IntentEvent]:
    """The events of `intent_id` by sequence (at most MAX_EVENTS_PER_INTENT: transition()
    refuses more); empty for an unknown intent."""
    rows = conn.execute(
        select(intent_events_table)
        .where(intent_events_table.c.intent_id == intent_id)
        .order_by(intent_events_table.c.sequence)
    ).all()
    return [
        IntentEvent(
            intent_id=str(row.intent_id),
            sequence=int(row.sequence),
            from_state=None if row.from_state is None else IntentState(row.from_state),
            to_state=IntentState(row.to_state),
            cause=Cause(row.cause),
            at=as_utc(row.at),
            provider_event_id=row.provider_event_id,
            detail=str(row.detail),
        )
        for row in rows
    ]


def list_intents(
    conn: Connection,
    *,
    payer: str | None = None,
    payable_ids: Sequence[str] | None = None,
    issuer: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int,
) -> list[StoredIntent]:
    """One page of intents, newest first by (created_at, id), after the cursor `before` (the
    previous page's last (created_at, id)). Exactly one filter: the intents `payer` owns, those
    of the payables `payable_ids` (at most MAX_FILTER_PAYABLE_IDS), or those of payables that
    `issuer` (an agency subject) issued.

    Raises ValueError when not exactly one filter is given, for too many payable ids, or for a
    limit outside 1..MAX_PAGE_ROWS.
    """
    if sum(f is not None for f in (payer, payable_ids, issuer)) != 1:
        raise ValueError("list_intents takes exactly one of payer, payable_ids, issuer")
    query = select(payment_intents)
    if payer is not None:
        query = query.where(payment_intents.c.payer == payer)
    elif payable_ids is not None:
        if len(payable_ids) > MAX_FILTER_PAYABLE_IDS:
            raise ValueError(f"list_intents names at most {MAX_FILTER_PAYABLE_IDS} payables")
        query = query.where(payment_intents.c.payable_id.in_(sorted(set(payable_ids))))
    else:
        query = query.join(payables, payables.c.id == payment_intents.c.payable_id).where(
            payables.c.issuer == issuer
        )
    query = keyset_before(
        query,
        at=payment_intents.c.created_at,
        row_id=payment_intents.c.id,
        before=before,
        limit=limit,
    )
    return _with_applied(conn, conn.execute(query).all())


def expirable_intent_ids(
    conn: Connection,
    *,
    now: datetime,
    limit: int,
    marker: str | None = None,
    marked: bool = False,
) -> list[str]:
    """Ids of intents in state created or requires_action whose TTL is over (created_at +
    INTENT_TTL_S ≤ now, as payments.intents.expire_if_due), oldest first, at most `limit`;
    with a `marker`, only those whose failure_code is it (marked) or only the others (not
    marked), so that intents a sweep cannot decide never crowd out the ones it can.

    Raises ValueError for a limit outside 1..MAX_EXPIRY_BATCH; NaiveDatetimeError for a naive
    `now`.
    """
    if isinstance(limit, bool) or not 1 <= limit <= MAX_EXPIRY_BATCH:
        raise ValueError(f"an expiry batch holds 1..{MAX_EXPIRY_BATCH} intents")
    due = now - timedelta(seconds=INTENT_TTL_S)
    code = payment_intents.c.failure_code
    if marker is None:
        by_marker: ColumnElement[bool] = true()
    elif marked:
        by_marker = code == marker
    else:
        by_marker = or_(code.is_(None), code != marker)
    query = (
        select(payment_intents.c.id)
        .where(
            payment_intents.c.state.in_(sorted(state.value for state in EXPIRABLE_STATES)),
            payment_intents.c.created_at <= due,
            by_marker,
        )
        .order_by(payment_intents.c.created_at, payment_intents.c.id)
        .limit(limit)
    )
    return [str(intent_id) for intent_id in conn.execute(query).scalars().all()]


# --- provider events ------------------------------------------------------------------------------


def _check_outcome(outcome: str) -> None:
    if not _OUTCOME.fullmatch(outcome):
        raise ValueError(f"an outcome is 1-{MAX_OUTCOME_CHARS} of [a-z_], starting with a letter")


def record_provider_event(
    conn: Connection,
    event: ProviderEvent,
    *,
    intent_id: str | None,
    received_at: datetime,
    outcome: str,
) -> bool:
    """Record a verified provider event; False when (provider, event_id) is already recorded (a
    duplicate delivery: the first row is left as it is).

    Safe when two transactions race on one event: on PostgreSQL the second insert waits for the
    first transaction, then does nothing (SQLite serialises writers). `intent_id` None means no
    intent has this charge (yet); `outcome` is a payments.intents.ProviderEventOutcome value,
    ORPHAN_OUTCOME, or the caller's own word (e.g. "received" until the intent judged it); every
    outcome but ORPHAN_OUTCOME makes the event one of its intent's applied ids. Raises
    ValueError for an outcome that is not 1-MAX_OUTCOME_CHARS of [a-z_].
    """
    _check_outcome(outcome)
    row = {
        "provider": event.provider,
        "event_id": event.event_id,
        "charge_ref": event.charge_ref,
        "intent_id": intent_id,
        "status": event.status.value,
        "occurred_at": event.occurred_at,
        "received_at": received_at,
        "outcome": outcome,
    }
    return insert_unless_present(conn, provider_events, row)


def set_provider_event_outcome(
    conn: Connection, *, provider: str, event_id: str, intent_id: str | None, outcome: str
) -> None:
    """Set the intent and outcome of a recorded provider event (once its intent has judged it).

    Raises ValueError for an outcome that is not 1-MAX_OUTCOME_CHARS of [a-z_];
    AssertionError (a programming error) when the event is not recorded.
    """
    _check_outcome(outcome)
    result = conn.execute(
        sql_update(provider_events)
        .where(provider_events.c.provider == provider, provider_events.c.event_id == event_id)
        .values(intent_id=intent_id, outcome=outcome)
    )
    if result.rowcount != 1:
        raise AssertionError(f"set_provider_event_outcome: no event {provider}/{event_id}")
