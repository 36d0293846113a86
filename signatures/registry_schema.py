"""The key registry's tables, as SQLAlchemy Core metadata (migration 0002_key_registry creates
them; this module describes them and is kept apart from ledger/schema.py).

- signer_keys: one row per registered key; ``jwk`` is the canonical JSON of its public members.
- key_events: a key's history, ``seq`` 0 being the registration; each row is one signed
  transaction, effective at ``at`` and recorded at ledger leaf ``ledger_index``.
- delegations: one row per grant (``id`` is the granting transaction's ID); a revocation
  fills ``revoked_at`` and ``revocation_ledger_index``.
- key_challenges: single-use challenges for key registration.

These tables are current state, not history: the history is in the ledger, whose leaves are
the signed transactions that made every row. Every datetime column is a UtcDateTime: aware UTC
in, aware UTC out, on SQLite (which stores no offset) as on PostgreSQL.

Also here: the storage helpers registry_store and registry_challenges share (per-subject
locking and counting for the limits).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.types import TypeDecorator

from signatures.errors import RegistryLimitError
from signatures.keys import require_aware


def as_utc(value: datetime) -> datetime:
    """value as an aware UTC datetime; a naive value is taken to be UTC already.

    Only for values read back from storage (SQLite returns naive datetimes): code that builds
    datetimes must make them aware itself.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that round-trips as aware UTC on every backend.

    Bound values must be aware (NaiveDatetimeError otherwise) and are converted to UTC; SQLite
    then stores them without an offset, so that its text comparisons order them correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = require_aware(value, field="timestamp").astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


metadata = MetaData()

signer_keys = Table(
    "signer_keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("subject", Text, nullable=False),
    Column("jwk", Text, nullable=False),
    Column("alg", Text, nullable=False),
    Column("assurance", Text, nullable=False),
    Column("not_before", UtcDateTime, nullable=False),
    Column("not_after", UtcDateTime, nullable=True),
    Column("registered_index", BigInteger, nullable=False),
    Column("x5c", Text, nullable=True),
    Index("signer_keys_subject", "subject"),
)

key_events = Table(
    "key_events",
    metadata,
    Column("kid", Text, ForeignKey("signer_keys.kid"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=True),
    Column("ledger_index", BigInteger, nullable=False),
)

delegations = Table(
    "delegations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("grantor", Text, nullable=False),
    Column("delegate", Text, nullable=False),
    Column("types", Text, nullable=False),
    Column("granted_at", UtcDateTime, nullable=False),
    Column("not_after", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("ledger_index", BigInteger, nullable=False),
    Column("revocation_ledger_index", BigInteger, nullable=True),
    Index("delegations_grantor_delegate", "grantor", "delegate"),
    Index("delegations_delegate", "delegate"),
)

key_challenges = Table(
    "key_challenges",
    metadata,
    Column("challenge", Text, primary_key=True),
    Column("subject", Text, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("consumed_at", UtcDateTime, nullable=True),
    Index("key_challenges_subject", "subject"),
)

REGISTRY_TABLES = ("signer_keys", "key_events", "delegations", "key_challenges")


# --- helpers shared by registry_store and registry_challenges ------------------------------------


def limit_error(name: str, limit: int, actual: int) -> RegistryLimitError:
    """The error for reaching limit ``name`` (a constant's name) with ``actual`` rows."""
    return RegistryLimitError(
        f"{name}={limit} reached", limit_name=name, limit=limit, actual=actual
    )


def lock_subject(conn: Connection, scope: str, subject: str) -> None:
    """Serialise this transaction with others counting rows of the same subject and scope.

    PostgreSQL: a transaction-scoped advisory lock (READ COMMITTED would let two transactions
    count, both find room, and both insert). SQLite: nothing to do, BEGIN IMMEDIATE already
    makes every write transaction exclusive.
    """
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"pishkhan:{scope}\x00{subject}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def count_rows(conn: Connection, *where: ColumnElement[bool]) -> int:
    """How many rows match where (one table)."""
    return int(conn.scalar(select(func.count()).where(*where)) or 0)
