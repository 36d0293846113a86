"""Storage of payables (payments.schema.payables), and the keyset paging every payments list uses.

Every function takes a Connection inside the caller's write transaction and never commits. The
caller decides and locks (find_bill / get_payable with for_update, under the ledger lock), so a
plain INSERT here can never hit the (bill_id, payment_id) unique constraint: an IntegrityError
would abort a whole PostgreSQL transaction, which runs many signed transactions without
savepoints.

The pure rules live in payments.payables; this module only turns Payable values into rows and
back. `transfers` is the RFC 8785 canonical JSON list of {account, amount_minor, category}, in
the payable's order (the split rule depends on that order).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Column, ColumnElement, Connection, Row, Select, and_, insert, or_, select
from sqlalchemy import update as sql_update

from payments.payables import Payable, PayableKind, PayableStatus, Transfer
from payments.schema import payables
from signatures.canonical import JsonValue, canonicalize, parse_json
from signatures.registry_schema import as_utc

__all__ = [
    "MAX_DEBTS_LISTED",
    "MAX_PAGE_ROWS",
    "StoredPayable",
    "check_page_limit",
    "find_bill",
    "get_payable",
    "insert_payable",
    "keyset_before",
    "list_payables",
    "unpaid_payables",
    "update_payable",
]

# One page of any payments list (payables, intents): what a screen shows, and a bounded query.
MAX_PAGE_ROWS = 100
# The debts unpaid_payables lists at most: enough to name each one a refusal asks to pay (one
# open debt already refuses), a bounded query whatever a debtor owes.
MAX_DEBTS_LISTED = 20

# Rows of select(<table>): attribute access is by column name.
_Row = Row[tuple[object, ...]]


@dataclass(frozen=True)
class StoredPayable:
    """A payable with what storage keeps beside it.

    `bill_id` and `payment_id` (bills only) are set together or not at all; `active_intent_id`
    is the one intent that may still charge the payable; `ledger_index` is the leaf of the
    bill.issue (or fee, tax) transaction that issued it. Raises ValueError when only one of
    bill_id / payment_id is set.
    """

    payable: Payable
    bill_id: str | None
    payment_id: str | None
    active_intent_id: str | None
    issued_at: datetime
    ledger_index: int

    def __post_init__(self) -> None:
        if (self.bill_id is None) != (self.payment_id is None):
            raise ValueError("a bill has both a bill ID and a payment ID, anything else neither")


# --- paging (shared with payments.intent_store) ---------------------------------------------------


def check_page_limit(limit: int) -> None:
    """Raises ValueError unless 1 ≤ limit ≤ MAX_PAGE_ROWS."""
    if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_ROWS:
        raise ValueError(f"a page holds 1..{MAX_PAGE_ROWS} rows")


def keyset_before(
    query: Select[tuple[object, ...]],
    *,
    at: Column[datetime],
    row_id: Column[str],
    before: tuple[datetime, str] | None,
    limit: int,
) -> Select[tuple[object, ...]]:
    """`query` newest first by (at, row_id), after the cursor `before` and cut to `limit` rows.

    `before` is (at, row_id) of the last row of the previous page: the page holds the rows
    strictly older in that order, so no row is skipped or repeated when rows share a time.
    Raises ValueError for a limit outside 1..MAX_PAGE_ROWS.
    """
    check_page_limit(limit)
    if before is not None:
        before_at, before_id = before
        older: ColumnElement[bool] = or_(at < before_at, and_(at == before_at, row_id < before_id))
        query = query.where(older)
    return query.order_by(at.desc(), row_id.desc()).limit(limit)


# --- rows -----------------------------------------------------------------------------------------


def _transfers_text(transfers: Sequence[Transfer]) -> str:
    items: list[JsonValue] = [
        {"account": t.account, "amount_minor": t.amount_minor, "category": t.category}
        for t in transfers
    ]
    return canonicalize(items).decode("utf-8")


def _transfers_of(text: str) -> tuple[Transfer, ...]:
    items = parse_json(text.encode("utf-8"))
    if not isinstance(items, list):
        raise ValueError("stored transfers are not a JSON array")
    transfers = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("a stored transfer is not a JSON object")
        account, amount, category = (
            item.get("account"),
            item.get("amount_minor"),
            item.get("category"),
        )
        if not isinstance(account, str) or not isinstance(category, str):
            raise ValueError("a stored transfer has no account or category")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValueError("a stored transfer has no integer amount_minor")
        transfers.append(Transfer(account=account, amount_minor=amount, category=category))
    return tuple(transfers)


def _stored(row: _Row) -> StoredPayable:
    payable = Payable(
        payable_id=str(row.id),
        kind=PayableKind(row.kind),
        issuer=str(row.issuer),
        debtor=str(row.debtor),
        amount_minor=int(row.amount_minor),
        currency=str(row.currency),
        transfers=_transfers_of(str(row.transfers)),
        allows_instalments=bool(row.allows_instalments),
        due_on=row.due_on,
        reference=str(row.reference),
        status=PayableStatus(row.status),
        paid_minor=int(row.paid_minor),
        refunded_minor=int(row.refunded_minor),
        payments_made=int(row.payments_made),
    )
    return StoredPayable(
        payable=payable,
        bill_id=row.bill_id,
        payment_id=row.payment_id,
        active_intent_id=row.active_intent_id,
        issued_at=as_utc(row.issued_at),
        ledger_index=int(row.ledger_index),
    )


def _one(conn: Connection, where: ColumnElement[bool], *, for_update: bool) -> StoredPayable | None:
    query = select(payables).where(where)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return None if row is None else _stored(row)


# --- the store ------------------------------------------------------------------------------------


def insert_payable(conn: Connection, stored: StoredPayable) -> None:
    """Insert a new payable. The caller has checked find_bill under the ledger lock (a second
    bill with the same bill ID and payment ID would otherwise raise IntegrityError)."""
    payable = stored.payable
    conn.execute(
        insert(payables).values(
            id=payable.payable_id,
            kind=payable.kind.value,
            issuer=payable.issuer,
            debtor=payable.debtor,
            amount_minor=payable.amount_minor,
            currency=payable.currency,
            transfers=_transfers_text(payable.transfers),
            allows_instalments=payable.allows_instalments,
            due_on=payable.due_on,
            reference=payable.reference,
            bill_id=stored.bill_id,
            payment_id=stored.payment_id,
            status=payable.status.value,
            paid_minor=payable.paid_minor,
            refunded_minor=payable.refunded_minor,
            payments_made=payable.payments_made,
            active_intent_id=stored.active_intent_id,
            issued_at=stored.issued_at,
            ledger_index=stored.ledger_index,
        )
    )


def get_payable(
    conn: Connection, payable_id: str, *, for_update: bool = False
) -> StoredPayable | None:
    """The payable `payable_id`, or None; `for_update` locks its row (PostgreSQL)."""
    return _one(conn, payables.c.id == payable_id, for_update=for_update)


def find_bill(
    conn: Connection, *, bill_id: str, payment_id: str, for_update: bool = False
) -> StoredPayable | None:
    """The bill issued with this canonical bill ID and payment ID, or None."""
    where = and_(payables.c.bill_id == bill_id, payables.c.payment_id == payment_id)
    return _one(conn, where, for_update=for_update)


def update_payable(conn: Connection, stored: StoredPayable) -> None:
    """Write what changes over a payable's life: status, paid_minor, refunded_minor,
    payments_made and active_intent_id (everything else is fixed when it is issued).

    Raises AssertionError when no such payable exists (a programming error: the caller read it).
    """
    payable = stored.payable
    result = conn.execute(
        sql_update(payables)
        .where(payables.c.id == payable.payable_id)
        .values(
            status=payable.status.value,
            paid_minor=payable.paid_minor,
            refunded_minor=payable.refunded_minor,
            payments_made=payable.payments_made,
            active_intent_id=stored.active_intent_id,
        )
    )
    if result.rowcount != 1:
        raise AssertionError(f"update_payable: no payable {payable.payable_id!r}")


def list_payables(
    conn: Connection,
    *,
    debtor: str | None = None,
    issuer: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int,
) -> list[StoredPayable]:
    """One page of the payables of `debtor` or of `issuer` (exactly one), newest first by
    (issued_at, id); `before` is the (issued_at, id) of the previous page's last row.

    Raises ValueError when not exactly one of debtor / issuer is given, or for a limit outside
    1..MAX_PAGE_ROWS.
    """
    if (debtor is None) == (issuer is None):
        raise ValueError("list_payables takes exactly one of debtor, issuer")
    where = payables.c.debtor == debtor if debtor is not None else payables.c.issuer == issuer
    query = keyset_before(
        select(payables).where(where),
        at=payables.c.issued_at,
        row_id=payables.c.id,
        before=before,
        limit=limit,
    )
    return [_stored(row) for row in conn.execute(query).all()]


def unpaid_payables(
    conn: Connection,
    *,
    debtor: str,
    kinds: Collection[PayableKind],
    due_before: date | None = None,
    limit: int = MAX_DEBTS_LISTED,
) -> list[StoredPayable]:
    """The payables of `debtor` of one of `kinds` that are still owed (open or partially paid),
    oldest due first (then by id); with `due_before`, only those due before that day (overdue
    on it). At most `limit`: the first `limit` in that order.

    Raises ValueError for no kinds, or for a limit outside 1..MAX_DEBTS_LISTED.
    """
    if not kinds:
        raise ValueError("unpaid_payables needs at least one kind")
    if isinstance(limit, bool) or not 1 <= limit <= MAX_DEBTS_LISTED:
        raise ValueError(f"unpaid_payables lists 1..{MAX_DEBTS_LISTED} payables")
    owed = (PayableStatus.OPEN.value, PayableStatus.PARTIALLY_PAID.value)
    where = and_(
        payables.c.debtor == debtor,
        payables.c.kind.in_(sorted(PayableKind(kind).value for kind in kinds)),
        payables.c.status.in_(owed),
    )
    if due_before is not None:
        where = and_(where, payables.c.due_on < due_before)
    query = select(payables).where(where).order_by(payables.c.due_on, payables.c.id).limit(limit)
    return [_stored(row) for row in conn.execute(query).all()]
