"""Storage of electronic invoices (tax.invoice_schema: tax_invoices, tax_memory_ids).

Every function takes a Connection inside the caller's transaction (or a read-only one) and never
commits. The invoice handlers run under the ledger lock, so what they read first (which tax IDs
exist, who holds a memory ID, an original's status, a decision) cannot change before they write:
the primary keys are the last line of defence, never the expected path (an IntegrityError would
abort a whole PostgreSQL batch). A batch's invoices are written with one statement per table,
not one per invoice.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime

from sqlalchemy import ColumnElement, Connection, Row, and_, insert, or_, select, update

from payments.payable_store import keyset_before
from signatures.canonical import JsonValue, parse_json
from signatures.registry_schema import as_utc
from tax.invoice_schema import tax_invoices, tax_memory_ids

__all__ = [
    "DECISIONS",
    "LIST_STATUSES",
    "MAX_CHAIN_INVOICES",
    "MAX_LOOKUP_IDS",
    "Decision",
    "InvoiceHead",
    "InvoiceStatus",
    "ListFilter",
    "MemoryIdBinding",
    "Side",
    "StoredInvoice",
    "bind_memory_ids",
    "body_text",
    "chain_of",
    "decision_on",
    "get_invoice",
    "heads_of",
    "insert_invoices",
    "invoices_referencing",
    "list_invoices",
    "mark_cancelled",
    "memory_id_owners",
    "record_decision",
    "stored_of",
]

# Ids one lookup takes at most: a whole batch of tax.invoices' MAX_BATCH_INVOICES (1,000) tax
# IDs and as many references. They are bound IN_CHUNK_IDS to a statement (far below SQLite's and
# PostgreSQL's limits on bound parameters).
MAX_LOOKUP_IDS = 2000
IN_CHUNK_IDS = 1000
# Invoices one chain view reads: an original and what references it. Far above any real chain
# (each correction is a new signed invoice), it bounds what the view reads and shows.
MAX_CHAIN_INVOICES = 200

_Row = Row[tuple[object, ...]]


class InvoiceStatus:
    ISSUED = "issued"
    CANCELLED = "cancelled"


class Decision:
    """The buyer's decision as stored, and DEEMED_ACCEPTED, computed (never stored)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DEEMED_ACCEPTED = "deemed_accepted"


DECISIONS = (Decision.PENDING, Decision.ACCEPTED, Decision.REJECTED, Decision.DEEMED_ACCEPTED)
# What GET /v1/tax/invoices?status= filters on: the invoice's status or the buyer's decision.
LIST_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.CANCELLED, *DECISIONS)


class Side:
    SELLER = "seller"
    BUYER = "buyer"


@dataclass(frozen=True)
class StoredInvoice:
    """One recorded invoice. `decision` is the stored one (see decision_on for the effective
    one); `body` is the invoice as the seller signed it."""

    tax_id: str
    jurisdiction: str
    seller: str
    signer: str
    buyer: str | None
    invoice_type: int
    pattern: int
    subtype: str
    reference_tax_id: str | None
    issued_at: datetime
    issued_on: date
    status: str
    decision: str | None
    respond_by: date | None
    decided_at: datetime | None
    decision_tx_id: str | None
    currency: str
    before_discount_minor: int
    discount_minor: int
    after_discount_minor: int
    vat_minor: int
    total_minor: int
    submitted_at: datetime
    ledger_index: int
    tx_id: str
    body: dict[str, JsonValue]


@dataclass(frozen=True)
class InvoiceHead:
    """What the submit handler needs of an existing invoice: whether it exists, and what a
    correction, return or cancellation checks against it."""

    tax_id: str
    seller: str
    subtype: str
    status: str


@dataclass(frozen=True)
class MemoryIdBinding:
    memory_id: str
    seller: str
    first_seen_at: datetime
    tx_id: str


def decision_on(invoice: StoredInvoice, today: date) -> str | None:
    """The buyer's decision as it stands on `today` (pack time zone): a pending one whose
    respond_by day has passed is deemed accepted. None when no decision is due."""
    if (
        invoice.decision == Decision.PENDING
        and invoice.respond_by is not None
        and today > invoice.respond_by
    ):
        return Decision.DEEMED_ACCEPTED
    return invoice.decision


def _int(value: object) -> int:
    return int(str(value))


def _optional_date(value: object) -> date | None:
    return value if isinstance(value, date) else None


def stored_of(row: _Row) -> StoredInvoice:
    """A tax_invoices row as a StoredInvoice. Raises ValueError for a row whose body is not a
    JSON object or that has no issue day (a corrupt row)."""
    body = parse_json(str(row.body).encode("utf-8"))
    if not isinstance(body, dict):
        raise ValueError("a stored invoice's body is not a JSON object")
    issued_on = row.issued_on
    if not isinstance(issued_on, date):
        raise ValueError("a stored invoice has no issue day")
    return StoredInvoice(
        tax_id=str(row.tax_id),
        jurisdiction=str(row.jurisdiction),
        seller=str(row.seller),
        signer=str(row.signer),
        buyer=None if row.buyer is None else str(row.buyer),
        invoice_type=_int(row.invoice_type),
        pattern=_int(row.pattern),
        subtype=str(row.subtype),
        reference_tax_id=None if row.reference_tax_id is None else str(row.reference_tax_id),
        issued_at=as_utc(row.issued_at),
        issued_on=issued_on,
        status=str(row.status),
        decision=None if row.decision is None else str(row.decision),
        respond_by=_optional_date(row.respond_by),
        decided_at=None if row.decided_at is None else as_utc(row.decided_at),
        decision_tx_id=None if row.decision_tx_id is None else str(row.decision_tx_id),
        currency=str(row.currency),
        before_discount_minor=_int(row.before_discount_minor),
        discount_minor=_int(row.discount_minor),
        after_discount_minor=_int(row.after_discount_minor),
        vat_minor=_int(row.vat_minor),
        total_minor=_int(row.total_minor),
        submitted_at=as_utc(row.submitted_at),
        ledger_index=_int(row.ledger_index),
        tx_id=str(row.tx_id),
        body=body,
    )


def body_text(body: dict[str, JsonValue]) -> str:
    """The RFC 8785 form of an invoice body that the envelope's parse already accepted.

    For such a value (integers within ±MAX_SAFE_INTEGER, no floats, valid Unicode strings) the
    standard library's sorted, compact, non-ASCII-preserving dump is byte for byte RFC 8785 but
    for member names outside the Basic Multilingual Plane (sorted by code point here, by UTF-16
    unit there), and an invoice's member names are fixed ASCII words. It runs in C: for a batch
    of 1,000 invoices it takes a few milliseconds where signatures.canonical.canonicalize, which
    validates the value again and serialises in Python, took most of a second."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _row_values(invoice: StoredInvoice) -> dict[str, object]:
    values = {f.name: getattr(invoice, f.name) for f in fields(StoredInvoice)}
    values["body"] = body_text(invoice.body)
    return values


def _check_lookup(ids: Collection[str]) -> None:
    if len(ids) > MAX_LOOKUP_IDS:
        raise ValueError(f"at most {MAX_LOOKUP_IDS} ids are looked up at once")


def _chunks(ids: Collection[str]) -> list[list[str]]:
    ordered = sorted(ids)
    return [ordered[i : i + IN_CHUNK_IDS] for i in range(0, len(ordered), IN_CHUNK_IDS)]


# --- the submit handler's reads and writes -------------------------------------------------------


def heads_of(conn: Connection, tax_ids: Collection[str]) -> dict[str, InvoiceHead]:
    """The recorded invoices among `tax_ids`, by tax ID (one statement per IN_CHUNK_IDS).

    Raises ValueError for more than MAX_LOOKUP_IDS ids."""
    _check_lookup(tax_ids)
    c = tax_invoices.c
    found: dict[str, InvoiceHead] = {}
    for chunk in _chunks(tax_ids):
        query = select(c.tax_id, c.seller, c.subtype, c.status).where(c.tax_id.in_(chunk))
        for r in conn.execute(query).all():
            found[str(r.tax_id)] = InvoiceHead(
                str(r.tax_id), str(r.seller), str(r.subtype), str(r.status)
            )
    return found


def memory_id_owners(conn: Connection, memory_ids: Collection[str]) -> dict[str, str]:
    """The seller each bound memory ID among `memory_ids` belongs to (one statement per
    IN_CHUNK_IDS).

    Raises ValueError for more than MAX_LOOKUP_IDS ids."""
    _check_lookup(memory_ids)
    c = tax_memory_ids.c
    found: dict[str, str] = {}
    for chunk in _chunks(memory_ids):
        query = select(c.memory_id, c.seller).where(c.memory_id.in_(chunk))
        found.update({str(r.memory_id): str(r.seller) for r in conn.execute(query).all()})
    return found


def insert_invoices(conn: Connection, invoices: Sequence[StoredInvoice]) -> None:
    """Insert new invoices in one statement (the caller read heads_of under the ledger lock:
    their tax IDs are free)."""
    if invoices:
        conn.execute(insert(tax_invoices), [_row_values(i) for i in invoices])


def bind_memory_ids(conn: Connection, bindings: Sequence[MemoryIdBinding]) -> None:
    """Bind new memory IDs to their sellers in one statement (the caller read memory_id_owners
    under the ledger lock: they are unbound)."""
    if bindings:
        conn.execute(
            insert(tax_memory_ids),
            [
                {
                    "memory_id": b.memory_id,
                    "seller": b.seller,
                    "first_seen_at": b.first_seen_at,
                    "tx_id": b.tx_id,
                }
                for b in bindings
            ],
        )


def mark_cancelled(conn: Connection, tax_ids: Collection[str]) -> None:
    """Mark recorded originals cancelled, in one statement per IN_CHUNK_IDS.

    Raises AssertionError unless each was an issued invoice (a programming error: the caller
    read them under the ledger lock); ValueError for more than MAX_LOOKUP_IDS."""
    _check_lookup(tax_ids)
    c = tax_invoices.c
    updated = 0
    for chunk in _chunks(tax_ids):
        result = conn.execute(
            update(tax_invoices)
            .where(and_(c.tax_id.in_(chunk), c.status == InvoiceStatus.ISSUED))
            .values(status=InvoiceStatus.CANCELLED)
        )
        updated += result.rowcount
    if updated != len(tax_ids):
        raise AssertionError("mark_cancelled: an invoice is missing or cancelled already")


def record_decision(
    conn: Connection, *, tax_id: str, decision: str, decided_at: datetime, tx_id: str
) -> None:
    """Record the buyer's decision (accepted or rejected) on a pending invoice.

    Raises ValueError for another decision; AssertionError when the invoice is not pending (a
    programming error: the caller read it under the ledger lock)."""
    if decision not in (Decision.ACCEPTED, Decision.REJECTED):
        raise ValueError(f"a buyer's decision is {Decision.ACCEPTED} or {Decision.REJECTED}")
    c = tax_invoices.c
    result = conn.execute(
        update(tax_invoices)
        .where(and_(c.tax_id == tax_id, c.decision == Decision.PENDING))
        .values(decision=decision, decided_at=decided_at, decision_tx_id=tx_id)
    )
    if result.rowcount != 1:
        raise AssertionError(f"record_decision: {tax_id!r} is not pending")


# --- reads ---------------------------------------------------------------------------------------


def get_invoice(conn: Connection, tax_id: str) -> StoredInvoice | None:
    row = conn.execute(select(tax_invoices).where(tax_invoices.c.tax_id == tax_id)).one_or_none()
    return None if row is None else stored_of(row)


def chain_of(conn: Connection, original_tax_id: str) -> list[StoredInvoice]:
    """The original and the invoices that reference it (corrections, returns, its cancellation),
    oldest first by (issued_at, tax_id); at most MAX_CHAIN_INVOICES."""
    c = tax_invoices.c
    query = (
        select(tax_invoices)
        .where(or_(c.tax_id == original_tax_id, c.reference_tax_id == original_tax_id))
        .order_by(c.issued_at, c.tax_id)
        .limit(MAX_CHAIN_INVOICES)
    )
    return [stored_of(row) for row in conn.execute(query).all()]


def invoices_referencing(
    conn: Connection, original_tax_ids: Collection[str]
) -> dict[str, list[StoredInvoice]]:
    """The corrections, returns and cancellations of each original among `original_tax_ids`, by
    original, each list oldest first by (issued_at, tax_id); originals nothing references are
    left out. One statement per IN_CHUNK_IDS originals: the caller bounds how many it asks for
    (tax.vat_store reads at most its MAX_PERIOD_INVOICES)."""
    c = tax_invoices.c
    found: dict[str, list[StoredInvoice]] = {}
    for chunk in _chunks(original_tax_ids):
        query = (
            select(tax_invoices)
            .where(c.reference_tax_id.in_(chunk))
            .order_by(c.reference_tax_id, c.issued_at, c.tax_id)
        )
        for row in conn.execute(query).all():
            invoice = stored_of(row)
            found.setdefault(str(invoice.reference_tax_id), []).append(invoice)
    return found


@dataclass(frozen=True)
class ListFilter:
    """What GET /v1/tax/invoices narrows to. `party` is the caller; `role` None means either
    side; days are inclusive issue days (pack time zone); `status` one of LIST_STATUSES, judged
    on `today` for pending and deemed_accepted."""

    party: str
    today: date
    role: str | None = None
    jurisdiction: str | None = None
    first_day: date | None = None
    last_day: date | None = None
    status: str | None = None
    counterparty: str | None = None


def _sides(f: ListFilter) -> ColumnElement[bool]:
    c = tax_invoices.c
    as_seller: ColumnElement[bool] = c.seller == f.party
    as_buyer: ColumnElement[bool] = c.buyer == f.party
    if f.counterparty is not None:
        as_seller = and_(as_seller, c.buyer == f.counterparty)
        as_buyer = and_(as_buyer, c.seller == f.counterparty)
    if f.role == Side.SELLER:
        return as_seller
    if f.role == Side.BUYER:
        return as_buyer
    return or_(as_seller, as_buyer)


def _status_clause(status: str, today: date) -> ColumnElement[bool]:
    c = tax_invoices.c
    if status in (InvoiceStatus.ISSUED, InvoiceStatus.CANCELLED):
        return c.status == status
    if status == Decision.PENDING:
        return and_(c.decision == Decision.PENDING, c.respond_by >= today)
    if status == Decision.DEEMED_ACCEPTED:
        return and_(c.decision == Decision.PENDING, c.respond_by < today)
    if status in (Decision.ACCEPTED, Decision.REJECTED):
        return c.decision == status
    raise ValueError(f"status is one of {', '.join(LIST_STATUSES)}")


def list_invoices(
    conn: Connection, f: ListFilter, *, before: tuple[datetime, str] | None, limit: int
) -> list[StoredInvoice]:
    """One page of the invoices `f.party` sold or bought, newest first by (issued_at, tax_id).

    Raises ValueError for an unknown role or status, or a limit outside
    1..payments.payable_store.MAX_PAGE_ROWS."""
    if f.role not in (None, Side.SELLER, Side.BUYER):
        raise ValueError(f"role is {Side.SELLER} or {Side.BUYER}")
    c = tax_invoices.c
    query = select(tax_invoices).where(_sides(f))
    if f.jurisdiction is not None:
        query = query.where(c.jurisdiction == f.jurisdiction)
    if f.first_day is not None:
        query = query.where(c.issued_on >= f.first_day)
    if f.last_day is not None:
        query = query.where(c.issued_on <= f.last_day)
    if f.status is not None:
        query = query.where(_status_clause(f.status, f.today))
    paged = keyset_before(query, at=c.issued_at, row_id=c.tax_id, before=before, limit=limit)
    return [stored_of(row) for row in conn.execute(paged).all()]
