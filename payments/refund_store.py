"""Storage of refunds (payments.schema.refunds): one row per refund.create, pending until the
provider answers.

Every function takes a Connection inside the caller's transaction and never commits. The
caller holds the lock on the payable (payable_store.get_payable(for_update=True)) while it
counts, sums and inserts, so the limit below and the refundable amount are checked and used in
one serialised step.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, Connection, Row, func, insert, select
from sqlalchemy import update as sql_update

from payments.errors import RefundLimitError
from payments.schema import refunds
from signatures.registry_schema import as_utc

__all__ = [
    "MAX_REFUNDS_PER_INTENT",
    "RefundState",
    "StoredRefund",
    "get_refund",
    "insert_refund",
    "refunded_minor_of_intent",
    "refunded_minor_of_payable",
    "refunds_of_intent",
    "save_refund",
]

# Refunds of one payment, failed ones included: partial refunds are rare and few; more is a
# loop or abuse, and it bounds refunds_of_intent.
MAX_REFUNDS_PER_INTENT = 32

_Row = Row[tuple[object, ...]]


class RefundState(StrEnum):
    PENDING = "pending"  # asked of the provider, no answer yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class StoredRefund:
    """A refund of part or all of the payment `intent_id` (of payable `payable_id`), asked by
    `requested_by` (agency:<id>) and recorded at ledger leaf `ledger_index`; `provider_ref` is
    the provider's refund reference once it answered."""

    refund_id: str
    intent_id: str
    payable_id: str
    requested_by: str
    amount_minor: int
    currency: str
    reason: str
    state: RefundState
    provider_ref: str | None
    failure_code: str | None
    created_at: datetime
    updated_at: datetime
    ledger_index: int


def _stored(row: _Row) -> StoredRefund:
    return StoredRefund(
        refund_id=str(row.id),
        intent_id=str(row.intent_id),
        payable_id=str(row.payable_id),
        requested_by=str(row.requested_by),
        amount_minor=int(row.amount_minor),
        currency=str(row.currency),
        reason=str(row.reason),
        state=RefundState(row.state),
        provider_ref=row.provider_ref,
        failure_code=row.failure_code,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        ledger_index=int(row.ledger_index),
    )


def insert_refund(conn: Connection, refund: StoredRefund) -> None:
    """Insert a new refund.

    Raises RefundLimitError when the intent already has MAX_REFUNDS_PER_INTENT refunds (call it
    with the payable locked, so that two refunds cannot both pass the count).
    """
    count = conn.execute(
        select(func.count()).select_from(refunds).where(refunds.c.intent_id == refund.intent_id)
    ).scalar_one()
    if count >= MAX_REFUNDS_PER_INTENT:
        raise RefundLimitError(intent_id=refund.intent_id, limit=MAX_REFUNDS_PER_INTENT)
    conn.execute(
        insert(refunds).values(
            id=refund.refund_id,
            intent_id=refund.intent_id,
            payable_id=refund.payable_id,
            requested_by=refund.requested_by,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            reason=refund.reason,
            state=refund.state.value,
            provider_ref=refund.provider_ref,
            failure_code=refund.failure_code,
            created_at=refund.created_at,
            updated_at=refund.updated_at,
            ledger_index=refund.ledger_index,
        )
    )


def get_refund(
    conn: Connection, refund_id: str, *, for_update: bool = False
) -> StoredRefund | None:
    """The refund `refund_id`, or None; `for_update` locks its row (PostgreSQL)."""
    query = select(refunds).where(refunds.c.id == refund_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return None if row is None else _stored(row)


def save_refund(conn: Connection, refund: StoredRefund) -> None:
    """Write what the provider's answer changes: state, provider_ref, failure_code, updated_at.

    Raises AssertionError (a programming error) when the refund is not stored.
    """
    result = conn.execute(
        sql_update(refunds)
        .where(refunds.c.id == refund.refund_id)
        .values(
            state=refund.state.value,
            provider_ref=refund.provider_ref,
            failure_code=refund.failure_code,
            updated_at=refund.updated_at,
        )
    )
    if result.rowcount != 1:
        raise AssertionError(f"save_refund: no refund {refund.refund_id!r}")


def refunds_of_intent(conn: Connection, intent_id: str) -> list[StoredRefund]:
    """The refunds of `intent_id` (at most MAX_REFUNDS_PER_INTENT), by (created_at, id)."""
    rows = conn.execute(
        select(refunds)
        .where(refunds.c.intent_id == intent_id)
        .order_by(refunds.c.created_at, refunds.c.id)
    ).all()
    return [_stored(row) for row in rows]


def refunded_minor_of_intent(
    conn: Connection, intent_id: str, *, states: Collection[RefundState]
) -> int:
    """The sum of the refunds of the payment `intent_id` in one of `states` (0 if none)."""
    return _refunded_minor(conn, refunds.c.intent_id == intent_id, states=states)


def refunded_minor_of_payable(
    conn: Connection, payable_id: str, *, states: Collection[RefundState]
) -> int:
    """The sum of the refunds of every payment of `payable_id` in one of `states` (0 if none)."""
    return _refunded_minor(conn, refunds.c.payable_id == payable_id, states=states)


def _refunded_minor(
    conn: Connection, where: ColumnElement[bool], *, states: Collection[RefundState]
) -> int:
    if not states:
        return 0
    total = conn.execute(
        select(func.coalesce(func.sum(refunds.c.amount_minor), 0)).where(
            where, refunds.c.state.in_(sorted(state.value for state in states))
        )
    ).scalar_one()
    # PostgreSQL sums BIGINT as NUMERIC (a Decimal).
    return int(total)
