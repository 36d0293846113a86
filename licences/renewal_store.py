"""Storage of licence renewals (licences.schema.licence_renewals): one row per accepted
licence.renew, its status, the fee payable it waits for and the term it gives.

As licences.store: every function takes a Connection inside the caller's transaction and never
commits, and none raises IntegrityError in normal use. The partial unique index allows one
renewal awaiting payment per licence; insert_renewal reports a second as RenewalPendingError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Row, and_, select, update

from licences.errors import RenewalPendingError
from licences.schema import AWAITING_PAYMENT, licence_renewals
from licences.store import as_date, check_limit, insert_unless_conflict
from licences.terms import Term
from payments.payable_store import get_payable
from signatures.registry_schema import as_utc

_Row = Row[tuple[object, ...]]

RENEWAL_AWAITING_PAYMENT = AWAITING_PAYMENT
RENEWAL_COMPLETED = "completed"
RENEWAL_LAPSED = "lapsed"  # its fee was not paid by the due day; a later renewal replaced it
RENEWAL_VOID = "void"  # the licence was revoked before its fee was paid
RENEWAL_STATUSES = (RENEWAL_AWAITING_PAYMENT, RENEWAL_COMPLETED, RENEWAL_LAPSED, RENEWAL_VOID)
# What one licence's view reads at most: its newest renewals.
MAX_RENEWALS_LISTED = 100


@dataclass(frozen=True)
class StoredRenewal:
    """One licence.renew as stored; `status` is one of RENEWAL_STATUSES. `new_term` is the term
    the licence takes when the renewal completes; `payable_id` and the fee are None when the
    type has no fee."""

    renewal_id: str
    licence_id: str
    holder: str
    status: str
    payable_id: str | None
    fee_amount_minor: int | None
    fee_currency: str | None
    new_term: Term
    requested_at: datetime
    completed_at: datetime | None
    ledger_index: int


def _renewal(row: _Row) -> StoredRenewal:
    completed_at = row.completed_at
    return StoredRenewal(
        renewal_id=str(row.id),
        licence_id=str(row.licence_id),
        holder=str(row.holder),
        status=str(row.status),
        payable_id=None if row.payable_id is None else str(row.payable_id),
        fee_amount_minor=None if row.fee_amount_minor is None else int(row.fee_amount_minor),
        fee_currency=None if row.fee_currency is None else str(row.fee_currency),
        new_term=Term(
            valid_from=as_date(row.new_valid_from), expires_on=as_date(row.new_expires_on)
        ),
        requested_at=as_utc(row.requested_at),
        completed_at=None if completed_at is None else as_utc(completed_at),
        ledger_index=int(row.ledger_index),
    )


def insert_renewal(conn: Connection, renewal: StoredRenewal) -> None:
    """Insert a renewal. Raises ValueError for a status not in RENEWAL_STATUSES, and
    RenewalPendingError when it awaits payment and the licence already has a renewal awaiting
    payment (the partial unique index; nothing is written and the transaction stays usable).
    """
    if renewal.status not in RENEWAL_STATUSES:
        raise ValueError(f"unknown renewal status {renewal.status!r}")
    values = {
        "id": renewal.renewal_id,
        "licence_id": renewal.licence_id,
        "holder": renewal.holder,
        "status": renewal.status,
        "payable_id": renewal.payable_id,
        "fee_amount_minor": renewal.fee_amount_minor,
        "fee_currency": renewal.fee_currency,
        "new_valid_from": renewal.new_term.valid_from,
        "new_expires_on": renewal.new_term.expires_on,
        "requested_at": renewal.requested_at,
        "completed_at": renewal.completed_at,
        "ledger_index": renewal.ledger_index,
    }
    awaiting = licence_renewals.c.status == AWAITING_PAYMENT
    if insert_unless_conflict(
        conn, licence_renewals, values, conflict=("licence_id",), conflict_where=awaiting
    ):
        return
    pending = pending_renewal(conn, renewal.licence_id)
    assert pending is not None and pending.payable_id is not None, "the index names one"
    payable = get_payable(conn, pending.payable_id)
    assert payable is not None, "a renewal awaiting payment has its fee payable"
    raise RenewalPendingError(
        renewal_id=pending.renewal_id,
        payable_id=pending.payable_id,
        pay_by=payable.payable.due_on,
    )


def _one_renewal(
    conn: Connection, where: ColumnElement[bool], *, for_update: bool
) -> StoredRenewal | None:
    query = select(licence_renewals).where(where)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return None if row is None else _renewal(row)


def get_renewal(
    conn: Connection, renewal_id: str, *, for_update: bool = False
) -> StoredRenewal | None:
    """The renewal `renewal_id`, or None; `for_update` locks its row (PostgreSQL)."""
    return _one_renewal(conn, licence_renewals.c.id == renewal_id, for_update=for_update)


def pending_renewal(
    conn: Connection, licence_id: str, *, for_update: bool = False
) -> StoredRenewal | None:
    """The licence's renewal awaiting payment (at most one: the partial unique index), or None."""
    where = and_(
        licence_renewals.c.licence_id == licence_id,
        licence_renewals.c.status == AWAITING_PAYMENT,
    )
    return _one_renewal(conn, where, for_update=for_update)


def renewal_by_payable(
    conn: Connection, payable_id: str, *, for_update: bool = False
) -> StoredRenewal | None:
    """The renewal whose fee is the payable `payable_id`, or None (any other payable)."""
    return _one_renewal(conn, licence_renewals.c.payable_id == payable_id, for_update=for_update)


def set_renewal_status(
    conn: Connection, renewal_id: str, *, status: str, completed_at: datetime | None = None
) -> None:
    """Set a renewal's status (and when it completed). Raises ValueError for a status not in
    RENEWAL_STATUSES, AssertionError when no such renewal exists (the caller read it)."""
    if status not in RENEWAL_STATUSES:
        raise ValueError(f"unknown renewal status {status!r}")
    result = conn.execute(
        update(licence_renewals)
        .where(licence_renewals.c.id == renewal_id)
        .values(status=status, completed_at=completed_at)
    )
    if result.rowcount != 1:
        raise AssertionError(f"set_renewal_status: no renewal {renewal_id!r}")


def list_renewals(
    conn: Connection, licence_id: str, *, limit: int = MAX_RENEWALS_LISTED
) -> list[StoredRenewal]:
    """The licence's newest `limit` renewals, oldest first (by requested_at, id).

    Raises ValueError for a limit outside 1..MAX_RENEWALS_LISTED.
    """
    check_limit(limit, MAX_RENEWALS_LISTED)
    query = (
        select(licence_renewals)
        .where(licence_renewals.c.licence_id == licence_id)
        .order_by(licence_renewals.c.requested_at.desc(), licence_renewals.c.id.desc())
        .limit(limit)
    )
    return [_renewal(row) for row in reversed(conn.execute(query).all())]
