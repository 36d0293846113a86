"""Storage of the key registry: keys with their events, delegations, and (from
signatures.registry_challenges, re-exported) registration challenges.

Every function takes a SQLAlchemy Core Connection inside the caller's write transaction (the
transaction pipeline runs each handler in a SAVEPOINT of it) and works on SQLite and PostgreSQL
alike. The rules live in the pure model (signatures.keys): this module loads records, lets the
model judge a change, and writes the outcome.

Concurrency. Writers that could race are made safe by the database, not by timing: a challenge
is consumed by a conditional UPDATE whose row count says who won; a key's events are appended
under a row lock on the key (SELECT … FOR UPDATE; SQLite's BEGIN IMMEDIATE already serialises
writers); a delegation is revoked by a conditional UPDATE; count-then-insert limits take a
transaction-scoped advisory lock per subject on PostgreSQL; duplicate keys and delegations are
caught by their primary keys inside a SAVEPOINT and reported as RegistryConflictError.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Row, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from signatures.errors import (
    DelegationError,
    DelegationNotFoundError,
    KeyNotFoundError,
    KeyRecordError,
    RegistryConflictError,
)
from signatures.jwk import PublicJwk
from signatures.keys import (
    AssuranceLevel,
    Delegation,
    KeyEvent,
    KeyEventKind,
    KeyRecord,
    KeyStatus,
    RevocationReason,
    find_delegation,
    require_aware,
    status_after_event,
)
from signatures.registry_challenges import (
    CHALLENGE_TTL_S,
    MAX_OPEN_CHALLENGES_PER_SUBJECT,
    Challenge,
    consume_challenge,
    issue_challenge,
)
from signatures.registry_schema import (
    as_utc,
    count_rows,
    delegations,
    key_events,
    limit_error,
    lock_subject,
    signer_keys,
)

__all__ = [
    "CHALLENGE_TTL_S",
    "MAX_KEYS_PER_SUBJECT",
    "MAX_LIVE_DELEGATIONS_PER_GRANTOR",
    "MAX_LOAD_KEYS",
    "MAX_OPEN_CHALLENGES_PER_SUBJECT",
    "Challenge",
    "add_key_event",
    "consume_challenge",
    "delegations_between",
    "delegations_of",
    "find_valid_delegation",
    "insert_delegation",
    "insert_key",
    "issue_challenge",
    "keys_of_subject",
    "load_delegation",
    "load_key",
    "load_key_certificates",
    "load_keys",
    "registration_index",
    "revoke_delegation",
]

# One query's IN list: far above any receipt's or page's needs, far below the drivers' limits.
MAX_LOAD_KEYS = 1000
# A subject rotating keys monthly for twenty years stays below this; more is abuse.
MAX_KEYS_PER_SUBJECT = 256
# Unrevoked, unexpired delegations one legal entity may have at once.
MAX_LIVE_DELEGATIONS_PER_GRANTOR = 1024
# Parsed stored JWKs kept per process (a few KiB each at most).
JWK_CACHE_ENTRIES = 4096

# Rows of select(<table>): attribute access is by column name.
_Row = Row[tuple[object, ...]]


# --- keys ----------------------------------------------------------------------------------------


def _event(row: _Row) -> KeyEvent:
    reason = None if row.reason is None else RevocationReason(row.reason)
    return KeyEvent(KeyEventKind(row.kind), as_utc(row.at), reason, int(row.ledger_index))


@functools.lru_cache(maxsize=JWK_CACHE_ENTRIES)
def _stored_jwk(text: str) -> PublicJwk:
    """The PublicJwk of a stored JWK text, parsed (and its point validated) once per process:
    every transaction loads its signing key, and PublicJwk is immutable."""
    return PublicJwk.from_dict(json.loads(text))


def _record(row: _Row, events: Sequence[KeyEvent]) -> KeyRecord:
    not_after = None if row.not_after is None else as_utc(row.not_after)
    return KeyRecord(
        kid=str(row.kid),
        subject=str(row.subject),
        jwk=_stored_jwk(str(row.jwk)),
        assurance=AssuranceLevel(row.assurance),
        not_before=as_utc(row.not_before),
        not_after=not_after,
        events=tuple(events),
    )


def _records(key_rows: Sequence[_Row], event_rows: Sequence[_Row]) -> list[KeyRecord]:
    """Records in key_rows order; event_rows must be ordered by (kid, seq)."""
    events: dict[str, list[KeyEvent]] = {}
    for event_row in event_rows:
        events.setdefault(str(event_row.kid), []).append(_event(event_row))
    return [_record(row, events.get(row.kid, ())) for row in key_rows]


def _events_where(conn: Connection, *where: ColumnElement[bool]) -> Sequence[_Row]:
    query = select(key_events).where(*where).order_by(key_events.c.kid, key_events.c.seq)
    return conn.execute(query).all()


def load_keys(conn: Connection, kids: Collection[str]) -> dict[str, KeyRecord]:
    """The records of those of kids that are registered, by kid, in two queries at most.

    Raises RegistryLimitError for more than MAX_LOAD_KEYS distinct kids.
    """
    wanted = sorted(set(kids))
    if not wanted:
        return {}
    if len(wanted) > MAX_LOAD_KEYS:
        raise limit_error("MAX_LOAD_KEYS", MAX_LOAD_KEYS, len(wanted))
    key_rows = conn.execute(select(signer_keys).where(signer_keys.c.kid.in_(wanted))).all()
    if not key_rows:
        return {}
    event_rows = _events_where(conn, key_events.c.kid.in_([row.kid for row in key_rows]))
    return {record.kid: record for record in _records(key_rows, event_rows)}


def load_key(conn: Connection, kid: str) -> KeyRecord | None:
    """The record of key kid, or None when it is not registered."""
    return load_keys(conn, (kid,)).get(kid)


def keys_of_subject(conn: Connection, subject: str) -> list[KeyRecord]:
    """Every key of subject, newest registration first (two queries)."""
    key_rows = conn.execute(
        select(signer_keys)
        .where(signer_keys.c.subject == subject)
        .order_by(signer_keys.c.registered_index.desc(), signer_keys.c.kid)
    ).all()
    if not key_rows:
        return []
    kids = select(signer_keys.c.kid).where(signer_keys.c.subject == subject)
    return _records(key_rows, _events_where(conn, key_events.c.kid.in_(kids)))


def registration_index(conn: Connection, kid: str) -> int | None:
    """The ledger index of key kid's registration, or None when it is not registered."""
    value = conn.scalar(select(signer_keys.c.registered_index).where(signer_keys.c.kid == kid))
    return None if value is None else int(value)


def load_key_certificates(conn: Connection, kid: str) -> tuple[bytes, ...]:
    """The X.509 chain (DER, leaf first) key kid was certified with; empty when none."""
    value = conn.scalar(select(signer_keys.c.x5c).where(signer_keys.c.kid == kid))
    if value is None:
        return ()
    return tuple(base64.b64decode(item, validate=True) for item in json.loads(value))


def _event_values(kid: str, seq: int, event: KeyEvent) -> dict[str, object]:
    if event.ledger_index is None:
        raise KeyRecordError("a stored key event needs its ledger_index", field="ledger_index")
    reason = None if event.reason is None else str(event.reason)
    return {
        "kid": kid,
        "seq": seq,
        "kind": str(event.kind),
        "at": event.at,
        "reason": reason,
        "ledger_index": event.ledger_index,
    }


def insert_key(
    conn: Connection, record: KeyRecord, *, registered_index: int, x5c: Sequence[bytes] = ()
) -> None:
    """Store a newly registered key and its events (normally the registration alone).

    Raises RegistryConflictError when the kid is already registered, RegistryLimitError when the
    subject already has MAX_KEYS_PER_SUBJECT keys, KeyRecordError for an event without a
    ledger_index.
    """
    rows = [_event_values(record.kid, seq, event) for seq, event in enumerate(record.events)]
    lock_subject(conn, "signer_keys", record.subject)
    count = count_rows(conn, signer_keys.c.subject == record.subject)
    if count >= MAX_KEYS_PER_SUBJECT:
        raise limit_error("MAX_KEYS_PER_SUBJECT", MAX_KEYS_PER_SUBJECT, count)
    chain = json.dumps([base64.b64encode(der).decode("ascii") for der in x5c]) if x5c else None
    values = {
        "kid": record.kid,
        "subject": record.subject,
        "jwk": json.dumps(record.jwk.to_dict(), sort_keys=True, separators=(",", ":")),
        "alg": record.jwk.alg,
        "assurance": str(record.assurance),
        "not_before": record.not_before,
        "not_after": record.not_after,
        "registered_index": registered_index,
        "x5c": chain,
    }
    try:
        with conn.begin_nested():
            conn.execute(insert(signer_keys).values(values))
    except IntegrityError:
        message = "the key is already registered"
        raise RegistryConflictError(message, kind="key", identifier=record.kid) from None
    conn.execute(insert(key_events), rows)


def add_key_event(
    conn: Connection, kid: str, event: KeyEvent, *, owner: str | None = None
) -> KeyStatus:
    """Append event to key kid's history and return the key's status at event.at.

    The key's row is locked first, so concurrent changes to one key apply one after the other.
    With owner, a key of any other subject is refused exactly as a missing one. Raises
    KeyNotFoundError for an unknown kid (or another owner's), KeyStateError when the state
    machine refuses the event, KeyRecordError past MAX_KEY_EVENTS or for an event without a
    ledger_index.
    """
    # One statement: the key's row (locked) joined with its newest event, which with the count
    # is all the state machine needs (signatures.keys.check_next_event). This runs under the
    # ledger lock for every key.suspend / key.reinstate / key.revoke: its cost must not grow
    # with the key's history.
    newest = select(func.max(key_events.c.seq)).where(key_events.c.kid == kid).scalar_subquery()
    row = conn.execute(
        select(signer_keys.c.subject, signer_keys.c.not_before, signer_keys.c.not_after)
        .add_columns(*key_events.c)  # no name clashes with the three key columns
        .select_from(
            signer_keys.join(
                key_events, (key_events.c.kid == signer_keys.c.kid) & (key_events.c.seq == newest)
            )
        )
        .where(signer_keys.c.kid == kid)
        .with_for_update(of=signer_keys)
    ).first()
    if row is None or (owner is not None and row.subject != owner):
        raise KeyNotFoundError(kid)
    count = int(row.seq) + 1  # seqs run 0, 1, … without gaps
    status = status_after_event(
        kid=kid,
        not_before=as_utc(row.not_before),
        not_after=None if row.not_after is None else as_utc(row.not_after),
        last=_event(row),
        count=count,
        event=event,
    )
    conn.execute(insert(key_events).values(_event_values(kid, count, event)))
    return status


# --- delegations ---------------------------------------------------------------------------------


def _delegation(row: _Row) -> Delegation:
    revoked_at = None if row.revoked_at is None else as_utc(row.revoked_at)
    revocation_index = row.revocation_ledger_index
    return Delegation(
        grantor=str(row.grantor),
        delegate=str(row.delegate),
        types=frozenset(str(item) for item in json.loads(row.types)),
        granted_at=as_utc(row.granted_at),
        not_after=as_utc(row.not_after),
        revoked_at=revoked_at,
        ledger_index=int(row.ledger_index),
        revocation_ledger_index=None if revocation_index is None else int(revocation_index),
    )


def insert_delegation(conn: Connection, delegation: Delegation, *, delegation_id: str) -> None:
    """Store a granted delegation under delegation_id (the granting transaction's ID).

    Raises RegistryConflictError when the ID is taken, RegistryLimitError when the grantor
    already has MAX_LIVE_DELEGATIONS_PER_GRANTOR unrevoked delegations not expired at the
    grant, DelegationError for a delegation without a ledger_index.
    """
    if delegation.ledger_index is None:
        raise DelegationError("a stored delegation needs its ledger_index", field="ledger_index")
    lock_subject(conn, "delegations", delegation.grantor)
    table = delegations.c
    live = count_rows(
        conn,
        table.grantor == delegation.grantor,
        table.revoked_at.is_(None),
        table.not_after > delegation.granted_at,
    )
    if live >= MAX_LIVE_DELEGATIONS_PER_GRANTOR:
        raise limit_error(
            "MAX_LIVE_DELEGATIONS_PER_GRANTOR", MAX_LIVE_DELEGATIONS_PER_GRANTOR, live
        )
    values = {
        "id": delegation_id,
        "grantor": delegation.grantor,
        "delegate": delegation.delegate,
        "types": json.dumps(sorted(delegation.types)),
        "granted_at": delegation.granted_at,
        "not_after": delegation.not_after,
        "revoked_at": delegation.revoked_at,
        "ledger_index": delegation.ledger_index,
        "revocation_ledger_index": delegation.revocation_ledger_index,
    }
    try:
        with conn.begin_nested():
            conn.execute(insert(delegations).values(values))
    except IntegrityError:
        message = "a delegation with this ID exists"
        raise RegistryConflictError(message, kind="delegation", identifier=delegation_id) from None


def load_delegation(conn: Connection, delegation_id: str) -> Delegation | None:
    """The delegation stored under delegation_id, or None."""
    row = conn.execute(select(delegations).where(delegations.c.id == delegation_id)).first()
    return None if row is None else _delegation(row)


def revoke_delegation(
    conn: Connection, delegation_id: str, *, at: datetime, ledger_index: int
) -> Delegation:
    """Revoke the delegation from ``at`` on, recorded at ledger_index; return it revoked.

    Raises DelegationNotFoundError for an unknown ID; DelegationError when it is already
    revoked (also when a concurrent transaction revoked it first) or ``at`` is before the grant.
    """
    current = load_delegation(conn, delegation_id)
    if current is None:
        raise DelegationNotFoundError(delegation_id)
    revoked = current.revoke(at, ledger_index=ledger_index)
    table = delegations.c
    result = conn.execute(
        update(delegations)
        .where(table.id == delegation_id, table.revoked_at.is_(None))
        .values(revoked_at=at, revocation_ledger_index=ledger_index)
    )
    if result.rowcount != 1:
        raise DelegationError("the delegation was already revoked", field="revoked_at")
    return revoked


def delegations_between(conn: Connection, *, grantor: str, delegate: str) -> list[Delegation]:
    """Every delegation from grantor to delegate, newest grant first."""
    rows = conn.execute(
        select(delegations)
        .where(delegations.c.grantor == grantor, delegations.c.delegate == delegate)
        .order_by(delegations.c.ledger_index.desc())
    ).all()
    return [_delegation(row) for row in rows]


def delegations_of(conn: Connection, subject: str) -> list[tuple[str, Delegation]]:
    """(ID, delegation) for every delegation subject granted or holds, newest grant first."""
    table = delegations.c
    rows = conn.execute(
        select(delegations)
        .where(or_(table.grantor == subject, table.delegate == subject))
        .order_by(table.ledger_index.desc())
    ).all()
    return [(str(row.id), _delegation(row)) for row in rows]


def find_valid_delegation(
    conn: Connection, *, grantor: str, delegate: str, transaction_type: str, at: datetime
) -> Delegation | None:
    """The delegation letting delegate sign transaction_type for grantor at ``at``
    (signatures.keys.find_delegation over the ones in force then), or None.

    Raises NaiveDatetimeError for a naive ``at``.
    """
    require_aware(at, field="at")
    table = delegations.c
    rows = conn.execute(
        select(delegations).where(
            table.grantor == grantor,
            table.delegate == delegate,
            table.granted_at <= at,
            table.not_after > at,
            or_(table.revoked_at.is_(None), table.revoked_at > at),
        )
    ).all()
    return find_delegation(
        (_delegation(row) for row in rows),
        grantor=grantor,
        delegate=delegate,
        transaction_type=transaction_type,
        at=at,
    )
