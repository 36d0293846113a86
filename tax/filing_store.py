"""Storage of signed tax returns (tax.schema.tax_filings).

Every function takes a Connection inside the caller's write transaction (or a read-only one) and
never commits. The filing handler runs under the ledger lock, so the head of a chain it reads
cannot change before it writes the next version; the (taxpayer, jurisdiction, kind, period,
version) unique constraint is the last line of defence, never the expected path (an
IntegrityError would abort a whole PostgreSQL batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, Connection, Row, and_, insert, select, update

from payments.payable_store import keyset_before
from signatures.canonical import JsonValue, canonicalize, parse_json
from signatures.registry_schema import as_utc
from tax.schema import tax_filings

__all__ = [
    "MAX_CHAIN_VERSIONS",
    "FilingStatus",
    "StoredFiling",
    "chain_of",
    "get_filing",
    "head_of",
    "heads_of_taxpayer",
    "insert_filing",
    "list_filings",
    "mark_superseded",
]

# Versions of one obligation a chain may hold: an amendment beyond it is refused. Far above any
# real chain, it bounds what a filing's view reads and shows.
MAX_CHAIN_VERSIONS = 100

_Row = Row[tuple[object, ...]]


class FilingStatus:
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True)
class StoredFiling:
    """One signed return as stored. `version` is None for a rejected filing; `detail` is the
    JSON the filer is shown (computation, trace, issues, assessment, difference)."""

    filing_id: str
    taxpayer: str
    signer: str
    jurisdiction: str
    kind: str
    period: str
    status: str
    version: int | None
    amends: str | None
    superseded_by: str | None
    pack_version: str
    trace_sha256: str
    currency: str
    tax_minor: int
    credits_minor: int
    due_minor: int
    credit_minor: int
    due_on: date | None
    first_filed_on: date | None
    payable_id: str | None
    submitted_at: datetime
    ledger_index: int
    detail: dict[str, JsonValue]


def _stored(row: _Row) -> StoredFiling:
    detail = parse_json(str(row.detail).encode("utf-8"))
    if not isinstance(detail, dict):
        raise ValueError("a stored filing's detail is not a JSON object")
    due_on = row.due_on
    return StoredFiling(
        filing_id=str(row.id),
        taxpayer=str(row.taxpayer),
        signer=str(row.signer),
        jurisdiction=str(row.jurisdiction),
        kind=str(row.kind),
        period=str(row.period),
        status=str(row.status),
        version=None if row.version is None else int(str(row.version)),
        amends=None if row.amends is None else str(row.amends),
        superseded_by=None if row.superseded_by is None else str(row.superseded_by),
        pack_version=str(row.pack_version),
        trace_sha256=str(row.trace_sha256),
        currency=str(row.currency),
        tax_minor=int(str(row.tax_minor)),
        credits_minor=int(str(row.credits_minor)),
        due_minor=int(str(row.due_minor)),
        credit_minor=int(str(row.credit_minor)),
        due_on=due_on if isinstance(due_on, date) else None,
        first_filed_on=row.first_filed_on if isinstance(row.first_filed_on, date) else None,
        payable_id=None if row.payable_id is None else str(row.payable_id),
        submitted_at=as_utc(row.submitted_at),
        ledger_index=int(str(row.ledger_index)),
        detail=detail,
    )


def insert_filing(conn: Connection, filing: StoredFiling) -> None:
    """Insert a new filing (the caller read head_of under the ledger lock: its version is free)."""
    conn.execute(
        insert(tax_filings).values(
            id=filing.filing_id,
            taxpayer=filing.taxpayer,
            signer=filing.signer,
            jurisdiction=filing.jurisdiction,
            kind=filing.kind,
            period=filing.period,
            status=filing.status,
            version=filing.version,
            amends=filing.amends,
            superseded_by=filing.superseded_by,
            pack_version=filing.pack_version,
            trace_sha256=filing.trace_sha256,
            currency=filing.currency,
            tax_minor=filing.tax_minor,
            credits_minor=filing.credits_minor,
            due_minor=filing.due_minor,
            credit_minor=filing.credit_minor,
            due_on=filing.due_on,
            first_filed_on=filing.first_filed_on,
            payable_id=filing.payable_id,
            submitted_at=filing.submitted_at,
            ledger_index=filing.ledger_index,
            detail=canonicalize(filing.detail).decode("utf-8"),
        )
    )


def mark_superseded(conn: Connection, *, filing_id: str, by: str) -> None:
    """Record that `by` supersedes `filing_id` (the head of its chain).

    Raises AssertionError when filing_id is not an unsuperseded filing (a programming error: the
    caller read it as the head under the ledger lock).
    """
    result = conn.execute(
        update(tax_filings)
        .where(and_(tax_filings.c.id == filing_id, tax_filings.c.superseded_by.is_(None)))
        .values(superseded_by=by)
    )
    if result.rowcount != 1:
        raise AssertionError(f"mark_superseded: {filing_id!r} is not the head of its chain")


def get_filing(conn: Connection, filing_id: str) -> StoredFiling | None:
    row = conn.execute(select(tax_filings).where(tax_filings.c.id == filing_id)).one_or_none()
    return None if row is None else _stored(row)


def _obligation(taxpayer: str, jurisdiction: str, kind: str, period: str) -> ColumnElement[bool]:
    return and_(
        tax_filings.c.taxpayer == taxpayer,
        tax_filings.c.jurisdiction == jurisdiction,
        tax_filings.c.kind == kind,
        tax_filings.c.period == period,
    )


def head_of(
    conn: Connection, *, taxpayer: str, jurisdiction: str, kind: str, period: str
) -> StoredFiling | None:
    """The latest accepted version of one obligation's chain, or None when nothing was accepted."""
    query = (
        select(tax_filings)
        .where(_obligation(taxpayer, jurisdiction, kind, period))
        .where(tax_filings.c.status == FilingStatus.ACCEPTED)
        .order_by(tax_filings.c.version.desc())
        .limit(1)
    )
    row = conn.execute(query).one_or_none()
    return None if row is None else _stored(row)


def chain_of(
    conn: Connection, *, taxpayer: str, jurisdiction: str, kind: str, period: str
) -> list[StoredFiling]:
    """Every filing of one obligation, accepted and rejected, oldest first (at most
    2 × MAX_CHAIN_VERSIONS rows: rejected filings beyond that are not shown)."""
    query = (
        select(tax_filings)
        .where(_obligation(taxpayer, jurisdiction, kind, period))
        .order_by(tax_filings.c.submitted_at, tax_filings.c.id)
        .limit(2 * MAX_CHAIN_VERSIONS)
    )
    return [_stored(row) for row in conn.execute(query).all()]


# The heads one obligations listing reads: more than any taxpayer's periods since a pack's first.
MAX_HEADS = 1000


def heads_of_taxpayer(conn: Connection, *, taxpayer: str, jurisdiction: str) -> list[StoredFiling]:
    """The head (latest accepted version) of each of `taxpayer`'s chains in one jurisdiction, at
    most MAX_HEADS of them, newest first."""
    query = (
        select(tax_filings)
        .where(tax_filings.c.taxpayer == taxpayer)
        .where(tax_filings.c.jurisdiction == jurisdiction)
        .where(tax_filings.c.status == FilingStatus.ACCEPTED)
        .where(tax_filings.c.superseded_by.is_(None))
        .order_by(tax_filings.c.submitted_at.desc())
        .limit(MAX_HEADS)
    )
    return [_stored(row) for row in conn.execute(query).all()]


def list_filings(
    conn: Connection, *, taxpayer: str, before: tuple[datetime, str] | None, limit: int
) -> list[StoredFiling]:
    """One page of `taxpayer`'s filings, newest first by (submitted_at, id).

    Raises ValueError for a limit outside 1..payments.payable_store.MAX_PAGE_ROWS.
    """
    query = keyset_before(
        select(tax_filings).where(tax_filings.c.taxpayer == taxpayer),
        at=tax_filings.c.submitted_at,
        row_id=tax_filings.c.id,
        before=before,
        limit=limit,
    )
    return [_stored(row) for row in conn.execute(query).all()]
