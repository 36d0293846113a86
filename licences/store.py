"""Storage of licences and their events (licences.schema); renewals are in
licences.renewal_store.

Every function takes a Connection inside the caller's transaction (or a read-only one for the
readers) and never commits. The licence handlers run under the ledger lock and read the
licence row FOR UPDATE before they change it; the changes are compare-and-set on ``version``
all the same, so a writer that is not under the ledger lock (payments' paid hook completing a
renewal) can never overwrite a change it did not see.

No function raises IntegrityError in normal use: an IntegrityError aborts a whole PostgreSQL
transaction, which runs many signed transactions without savepoints. Inserts that may meet an
existing row (a taken licence number, a second renewal awaiting payment, two events numbered
at once) are INSERT … ON CONFLICT DO NOTHING … RETURNING: RETURNING, not rowcount, says whether
the row went in (psycopg reports -1 for such an INSERT).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import ColumnElement, Connection, Row, Table, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from ledger.leaf import format_timestamp
from licences.errors import DuplicateLicenceNumberError, LicenceStateError
from licences.schema import licence_events, licences
from licences.status import LicenceStatus, effective_status
from licences.terms import Term, dual, renewal_window
from licences.types import LicenceType
from payments.payable_store import keyset_before
from signatures.canonical import JsonValue
from signatures.registry_schema import as_utc

__all__ = [
    "CONCURRENT_CHANGE",
    "EVENT_INSERT_ATTEMPTS",
    "EVENT_KINDS",
    "MAX_EVENTS_LISTED",
    "LicenceEvent",
    "StoredLicence",
    "add_event",
    "as_date",
    "check_limit",
    "event_json",
    "find_licence",
    "get_licence",
    "insert_licence",
    "insert_unless_conflict",
    "licence_json",
    "list_events",
    "list_licences",
    "update_licence",
]

EVENT_KINDS = (
    "issued",
    "suspended",
    "reinstated",
    "revoked",
    "renewed",
    "renewal_requested",
    "renewal_lapsed",
    "renewal_void",
)
# LicenceStateError's action when the compare-and-set on version finds another version.
CONCURRENT_CHANGE = "concurrent_change"
# What one licence's view reads at most: the newest events and renewals (a licence renewed
# every year for a century with suspensions in between stays far below these).
MAX_EVENTS_LISTED = 500
# add_event numbers an event max(seq) + 1. Writers of one licence hold its row lock, so the
# first attempt succeeds; a writer that did not (a bug) meets the other's row, waits for it
# (PostgreSQL) and numbers again, instead of aborting the transaction.
EVENT_INSERT_ATTEMPTS = 3

_Row = Row[tuple[object, ...]]


@dataclass(frozen=True)
class StoredLicence:
    """A licence as stored. `status` is the stored one (valid, suspended, revoked): whether it
    has expired depends on the day (licences.status.effective_status)."""

    licence_id: str
    licence_type: str  # a licence type code
    number: str
    holder: str  # subject text
    issuer: str  # agency:<id>
    term: Term
    status: LicenceStatus
    status_reason: str | None
    version: int
    issued_at: datetime
    updated_at: datetime
    ledger_index: int


@dataclass(frozen=True)
class LicenceEvent:
    """One entry of a licence's history; `tx_id` is the signed transaction it follows from (for
    a renewal its fee's payment completed: the licence.renew transaction)."""

    seq: int
    kind: str  # one of EVENT_KINDS
    at: datetime
    tx_id: str | None
    reason: str | None


# --- rows ----------------------------------------------------------------------------------------


def _licence(row: _Row) -> StoredLicence:
    return StoredLicence(
        licence_id=str(row.id),
        licence_type=str(row.licence_type),
        number=str(row.number),
        holder=str(row.holder),
        issuer=str(row.issuer),
        term=Term(valid_from=as_date(row.valid_from), expires_on=as_date(row.expires_on)),
        status=LicenceStatus(row.status),
        status_reason=None if row.status_reason is None else str(row.status_reason),
        version=int(row.version),
        issued_at=as_utc(row.issued_at),
        updated_at=as_utc(row.updated_at),
        ledger_index=int(row.ledger_index),
    )


def as_date(value: object) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValueError("a stored licence date is not a date")
    return value


def insert_unless_conflict(
    conn: Connection,
    table: Table,
    values: Mapping[str, object],
    *,
    conflict: Sequence[str],
    conflict_where: ColumnElement[bool] | None = None,
) -> bool:
    """INSERT … ON CONFLICT (`conflict` [WHERE `conflict_where`]) DO NOTHING; whether the row
    went in. Only that unique key is tolerated: any other violation (a primary key reused, a
    programming error) still raises. Raises ValueError for a database other than SQLite or
    PostgreSQL."""
    statement: Insert
    if conn.dialect.name == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(
            index_elements=list(conflict), index_where=conflict_where
        )
    elif conn.dialect.name == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing(
            index_elements=list(conflict), index_where=conflict_where
        )
    else:
        raise ValueError(f"no ON CONFLICT insert for the {conn.dialect.name} dialect")
    key = list(table.primary_key.columns)
    return conn.execute(statement.values(**values).returning(*key)).first() is not None


# --- licences ------------------------------------------------------------------------------------


def insert_licence(conn: Connection, stored: StoredLicence) -> None:
    """Insert a new licence. Raises DuplicateLicenceNumberError when its type already has a
    licence with this number (the transaction stays usable: nothing was written)."""
    values = {
        "id": stored.licence_id,
        "licence_type": stored.licence_type,
        "number": stored.number,
        "holder": stored.holder,
        "issuer": stored.issuer,
        "valid_from": stored.term.valid_from,
        "expires_on": stored.term.expires_on,
        "status": stored.status.value,
        "status_reason": stored.status_reason,
        "version": stored.version,
        "issued_at": stored.issued_at,
        "updated_at": stored.updated_at,
        "ledger_index": stored.ledger_index,
    }
    if not insert_unless_conflict(conn, licences, values, conflict=("licence_type", "number")):
        raise DuplicateLicenceNumberError(stored.licence_type)


def _one_licence(
    conn: Connection, where: ColumnElement[bool], *, for_update: bool
) -> StoredLicence | None:
    query = select(licences).where(where)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return None if row is None else _licence(row)


def get_licence(
    conn: Connection, licence_id: str, *, for_update: bool = False
) -> StoredLicence | None:
    """The licence `licence_id`, or None; `for_update` locks its row (PostgreSQL)."""
    return _one_licence(conn, licences.c.id == licence_id, for_update=for_update)


def find_licence(conn: Connection, *, licence_type: str, number: str) -> StoredLicence | None:
    """The licence of type `licence_type` (a code) with this number, or None."""
    where = and_(licences.c.licence_type == licence_type, licences.c.number == number)
    return _one_licence(conn, where, for_update=False)


def update_licence(
    conn: Connection, stored: StoredLicence, *, expected_version: int
) -> StoredLicence:
    """Write what changes over a licence's life (term, status, status_reason, updated_at) if
    its stored version is still `expected_version`; the licence as written, version + 1.

    Raises LicenceStateError(CONCURRENT_CHANGE) when the row has another version (or is gone):
    someone changed it since the caller read it, and nothing is written.
    """
    version = expected_version + 1
    result = conn.execute(
        update(licences)
        .where(licences.c.id == stored.licence_id, licences.c.version == expected_version)
        .values(
            valid_from=stored.term.valid_from,
            expires_on=stored.term.expires_on,
            status=stored.status.value,
            status_reason=stored.status_reason,
            updated_at=stored.updated_at,
            version=version,
        )
    )
    if result.rowcount != 1:
        raise LicenceStateError(CONCURRENT_CHANGE)
    return replace(stored, version=version)


def list_licences(
    conn: Connection,
    *,
    holder: str | None = None,
    issuer: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int,
) -> list[StoredLicence]:
    """One page of the licences of `holder` or of `issuer` (exactly one), newest first by
    (issued_at, id); `before` is the (issued_at, id) of the previous page's last row.

    Raises ValueError when not exactly one of holder / issuer is given, or for a limit outside
    1..payments.payable_store.MAX_PAGE_ROWS.
    """
    if (holder is None) == (issuer is None):
        raise ValueError("list_licences takes exactly one of holder, issuer")
    where = licences.c.holder == holder if holder is not None else licences.c.issuer == issuer
    query = keyset_before(
        select(licences).where(where),
        at=licences.c.issued_at,
        row_id=licences.c.id,
        before=before,
        limit=limit,
    )
    return [_licence(row) for row in conn.execute(query).all()]


# --- events --------------------------------------------------------------------------------------


def add_event(
    conn: Connection,
    licence_id: str,
    *,
    kind: str,
    at: datetime,
    tx_id: str | None,
    reason: str | None = None,
) -> None:
    """Append an event to the licence's history, numbered after the last one.

    The caller holds the licence's row lock (or has just inserted the licence). Raises
    ValueError for a kind not in EVENT_KINDS, AssertionError when EVENT_INSERT_ATTEMPTS
    numbers in a row were taken (writers that do not hold the row lock, a bug).
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown licence event kind {kind!r}")
    last = select(func.coalesce(func.max(licence_events.c.seq), 0)).where(
        licence_events.c.licence_id == licence_id
    )
    for _ in range(EVENT_INSERT_ATTEMPTS):
        seq = int(conn.execute(last).scalar_one()) + 1
        values = {
            "licence_id": licence_id,
            "seq": seq,
            "kind": kind,
            "at": at,
            "tx_id": tx_id,
            "reason": reason,
        }
        if insert_unless_conflict(conn, licence_events, values, conflict=("licence_id", "seq")):
            return
    raise AssertionError("add_event: the event numbers kept being taken")


def list_events(
    conn: Connection, licence_id: str, *, limit: int = MAX_EVENTS_LISTED
) -> list[LicenceEvent]:
    """The licence's newest `limit` events, oldest first (by seq).

    Raises ValueError for a limit outside 1..MAX_EVENTS_LISTED.
    """
    check_limit(limit, MAX_EVENTS_LISTED)
    query = (
        select(licence_events)
        .where(licence_events.c.licence_id == licence_id)
        .order_by(licence_events.c.seq.desc())
        .limit(limit)
    )
    rows = conn.execute(query).all()
    return [
        LicenceEvent(
            seq=int(row.seq),
            kind=str(row.kind),
            at=as_utc(row.at),
            tx_id=None if row.tx_id is None else str(row.tx_id),
            reason=None if row.reason is None else str(row.reason),
        )
        for row in reversed(rows)
    ]


def check_limit(limit: int, most: int) -> None:
    if isinstance(limit, bool) or not 1 <= limit <= most:
        raise ValueError(f"a list holds 1..{most} rows")


# --- JSON views ----------------------------------------------------------------------------------


def licence_json(
    stored: StoredLicence, licence_type: LicenceType, *, today: date
) -> dict[str, JsonValue]:
    """A licence as its holder and issuer see it on `today` (the jurisdiction's local day):
    the effective status (expired, not_yet_valid computed from the term), the term and the
    renewal window in both calendars where the jurisdiction uses Solar Hijri."""
    window = renewal_window(stored.term, licence_type)
    status = effective_status(stored.status, stored.term, today=today)
    view: dict[str, JsonValue] = {
        "licence_id": stored.licence_id,
        "licence_type": stored.licence_type,
        "number": stored.number,
        "holder": stored.holder,
        "issuer": stored.issuer,
        "status": status.value,
        "as_of": dual(licence_type, today),
        "valid_from": dual(licence_type, stored.term.valid_from),
        "expires_on": dual(licence_type, stored.term.expires_on),
        "renewal_window": {
            "opens_on": dual(licence_type, window.opens_on),
            "closes_on": dual(licence_type, window.closes_on),
        },
        "version": stored.version,
        "issued_at": format_timestamp(stored.issued_at),
        "updated_at": format_timestamp(stored.updated_at),
        "ledger_index": stored.ledger_index,
    }
    if stored.status_reason is not None:
        view["status_reason"] = stored.status_reason
    return view


def event_json(event: LicenceEvent) -> dict[str, JsonValue]:
    """One history entry; `tx_id` and `reason` only when there are."""
    view: dict[str, JsonValue] = {
        "seq": event.seq,
        "kind": event.kind,
        "at": format_timestamp(event.at),
    }
    if event.tx_id is not None:
        view["tx_id"] = event.tx_id
    if event.reason is not None:
        view["reason"] = event.reason
    return view
