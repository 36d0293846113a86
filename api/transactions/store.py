"""SQL for accepted transactions and idempotency keys (tables in api/transactions/schema.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, RowMapping, and_, delete, insert, or_, select, tuple_

from api.transactions.schema import idempotency_keys, transactions

# Idempotency keys are kept at least 24 h (the promise); rows are purged after twice that.
IDEMPOTENCY_KEEP_S = 48 * 3600
# Tuple IN lists stay well below every driver's parameter limit.
MAX_IN_PAIRS = 500


@dataclass(frozen=True)
class TxRow:
    id: str
    leaf_index: int
    type: str
    signer: str
    on_behalf_of: str | None
    owner: str
    nonce: str
    kid: str
    accepted_at: datetime
    envelope: str
    jws: str
    result: str
    receipt_tree_size: int


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _row(m: RowMapping) -> TxRow:
    return TxRow(
        id=m["id"],
        leaf_index=int(m["leaf_index"]),
        type=m["type"],
        signer=m["signer"],
        on_behalf_of=m["on_behalf_of"],
        owner=m["owner"],
        nonce=m["nonce"],
        kid=m["kid"],
        accepted_at=_aware(m["accepted_at"]),
        envelope=m["envelope"],
        jws=m["jws"],
        result=m["result"],
        receipt_tree_size=int(m["receipt_tree_size"]),
    )


def insert_transactions(conn: Connection, rows: Sequence[TxRow]) -> None:
    if rows:
        conn.execute(insert(transactions), [vars(r) for r in rows])


def used_nonces(conn: Connection, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (signer, nonce) pairs an accepted transaction already used."""
    found: set[tuple[str, str]] = set()
    ordered = sorted(pairs)
    for start in range(0, len(ordered), MAX_IN_PAIRS):
        chunk = ordered[start : start + MAX_IN_PAIRS]
        query = select(transactions.c.signer, transactions.c.nonce).where(
            tuple_(transactions.c.signer, transactions.c.nonce).in_(chunk)
        )
        found.update((s, n) for s, n in conn.execute(query))
    return found


def get_transaction(conn: Connection, tx_id: str) -> TxRow | None:
    m = conn.execute(select(transactions).where(transactions.c.id == tx_id)).mappings().first()
    return None if m is None else _row(m)


def get_visible(conn: Connection, tx_id: str, *, subject: str) -> TxRow | None:
    """The transaction when subject owns or signed it; None otherwise, exactly as for a missing
    one (no existence oracle)."""
    row = get_transaction(conn, tx_id)
    if row is None or subject not in (row.owner, row.signer):
        return None
    return row


def by_leaf_indices(conn: Connection, indices: Collection[int]) -> dict[int, TxRow]:
    if not indices:
        return {}
    query = select(transactions).where(transactions.c.leaf_index.in_(sorted(set(indices))))
    return {r.leaf_index: r for r in map(_row, conn.execute(query).mappings())}


def list_visible(
    conn: Connection, *, subject: str, before_index: int | None, limit: int
) -> list[TxRow]:
    """The subject's transactions (owned or signed), newest first, below a cursor index."""
    visible = or_(transactions.c.owner == subject, transactions.c.signer == subject)
    cond = (
        visible if before_index is None else and_(visible, transactions.c.leaf_index < before_index)
    )
    query = select(transactions).where(cond).order_by(transactions.c.leaf_index.desc()).limit(limit)
    return [_row(m) for m in conn.execute(query).mappings()]


@dataclass(frozen=True)
class IdempotencyRecord:
    caller: str
    key: str
    request_sha256: bytes
    tx_id: str


def find_idempotency(conn: Connection, *, caller: str, key: str) -> IdempotencyRecord | None:
    query = select(idempotency_keys).where(
        idempotency_keys.c.caller == caller, idempotency_keys.c.key == key
    )
    m = conn.execute(query).mappings().first()
    if m is None:
        return None
    return IdempotencyRecord(m["caller"], m["key"], bytes(m["request_sha256"]), m["tx_id"])


def insert_idempotency(
    conn: Connection, records: Sequence[IdempotencyRecord], *, now: datetime
) -> None:
    if records:
        conn.execute(
            insert(idempotency_keys),
            [
                {
                    "caller": r.caller,
                    "key": r.key,
                    "request_sha256": r.request_sha256,
                    "tx_id": r.tx_id,
                    "created_at": now,
                }
                for r in records
            ],
        )


def purge_idempotency(conn: Connection, *, now: datetime) -> int:
    cutoff = datetime.fromtimestamp(now.timestamp() - IDEMPOTENCY_KEEP_S, UTC)
    return conn.execute(
        delete(idempotency_keys).where(idempotency_keys.c.created_at < cutoff)
    ).rowcount
