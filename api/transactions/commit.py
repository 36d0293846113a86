"""The write: a batch of prepared transactions, their handlers run one after the other, and one
ledger append with one signed checkpoint for all that were accepted — in ONE database
transaction, so a domain change and its ledger entry commit together or not at all. A batch runs
first without savepoints; when a handler refuses, it runs again with one SAVEPOINT per item.

Under the ledger head lock (held from the first statement to the commit, on every worker and
machine) the checks that depend on what others wrote are authoritative: the nonce was never used
by this signer, the idempotency key is new, the signing key is still active and the delegation
still valid at the acceptance time. The unique constraints stay as the backstop.

Acceptance times are strictly increasing with the leaf index (one microsecond apart within a
batch, after the newest checkpoint's time), so "before the revocation" means the same thing by
time and by index; the checkpoint is dated with the batch's last acceptance time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from api.problems import Problem, problem_from_error, problem_type
from api.transactions import store as tx_store
from api.transactions.checks import Prepared, check_signature
from ledger import store
from ledger.leaf import TransactionLeaf, encode_leaf
from signatures import registry_store
from signatures.canonical import MAX_DOCUMENT_BYTES, JsonValue, canonicalize
from signatures.keys import KeyRecord

logger = logging.getLogger("pishkhan.api")

# Transactions committed together at most (one append, one checkpoint signature).
MAX_GROUP_COMMIT = 256
_TICK = timedelta(microseconds=1)
# Purge expired idempotency keys on one batch in this many.
PURGE_EVERY_BATCHES = 512


@dataclass(frozen=True)
class Accepted:
    tx_id: str
    leaf_index: int
    tree_size: int
    accepted_at: datetime
    receipt: dict[str, JsonValue] | None = None  # built once the batch has committed


@dataclass(frozen=True)
class Refused:
    problem: Problem


@dataclass(frozen=True)
class SameIdempotencyKey:
    """Another request with the same caller and Idempotency-Key won: answer with its outcome."""

    tx_id: str | None


Outcome = Accepted | Refused | SameIdempotencyKey


def replayed() -> Problem:
    return Problem(
        409,
        problem_type("nonce-replayed"),
        "This envelope's nonce was already used",
        "every envelope needs a fresh nonce; a retry of the same request takes an Idempotency-Key",
    )


def idempotency_conflict() -> Problem:
    return Problem(
        409,
        problem_type("idempotency-key-reused"),
        "The Idempotency-Key was used for a different request",
        "an Idempotency-Key may be reused only with exactly the same body",
    )


def _key_gone(kid: str) -> Problem:
    return Problem(
        403,
        problem_type("signing-key-not-active"),
        "The signing key may not sign now",
        f"key {kid} changed state before this transaction was recorded",
    )


def _key_refusal(item: Prepared, record: KeyRecord | None, at: datetime) -> Problem:
    """The same answer the check before the write gives for this key's state at `at` (that
    check may have used a cached record: api.transactions.keycache)."""
    try:
        check_signature(item.envelope, item.jws, record, now=at)
    except Problem as problem:
        return problem
    return _key_gone(item.kid)


def _delegation_gone() -> Problem:
    return Problem(
        403,
        problem_type("no-delegation"),
        "No delegation for this transaction",
        "the delegation ended before this transaction was recorded",
    )


class HandlerRefusedError(Exception):
    """A handler refused an item of a batch run without savepoints. Nothing of the batch may be
    kept (the handler may have written part of its change): the caller rolls the transaction
    back and runs the batch again with savepoints."""


@dataclass
class _Batch:
    conn: Connection
    savepoints: bool
    first_index: int
    base_time: datetime
    keys: dict[str, KeyRecord]
    nonces: set[tuple[str, str]]
    idempotency: set[tuple[str, str]]
    leaves: list[bytes]
    rows: list[tx_store.TxRow]
    records: list[tx_store.IdempotencyRecord]

    @property
    def next_index(self) -> int:
        return self.first_index + len(self.leaves)

    @property
    def next_time(self) -> datetime:
        return self.base_time + _TICK * len(self.leaves)


def _open_batch(
    conn: Connection, items: Sequence[Prepared], *, now: datetime, savepoints: bool
) -> _Batch:
    """The batch's starting state; the caller holds the ledger head lock."""
    head = store.read_head(conn)
    newest = head.checkpoint_at
    base = now if newest is None or now > newest else newest + _TICK
    kids = {p.kid for p in items if p.tx_type.possession_key is None}
    used = tx_store.used_nonces(conn, {(str(p.envelope.signer), p.envelope.nonce) for p in items})
    keys = registry_store.load_keys(conn, kids)
    return _Batch(conn, savepoints, head.tree_size, base, keys, used, set(), [], [], [])


def _precheck(batch: _Batch, item: Prepared, at: datetime) -> Outcome | None:
    key = (item.caller, item.idempotency_key or "")
    if item.idempotency_key is not None:
        if key in batch.idempotency:
            return SameIdempotencyKey(None)
        found = tx_store.find_idempotency(batch.conn, caller=item.caller, key=item.idempotency_key)
        if found is not None:
            return (
                SameIdempotencyKey(found.tx_id)
                if found.request_sha256 == item.request_sha256
                else Refused(idempotency_conflict())
            )
    if (str(item.envelope.signer), item.envelope.nonce) in batch.nonces:
        return Refused(replayed())
    if item.tx_type.possession_key is None:
        record = batch.keys.get(item.kid)
        if record is None or not record.is_active_at(at):
            return Refused(_key_refusal(item, record, at))
    if item.envelope.on_behalf_of is not None and not registry_store.find_valid_delegation(
        batch.conn,
        grantor=str(item.envelope.on_behalf_of),
        delegate=str(item.envelope.signer),
        transaction_type=item.envelope.type,
        at=at,
    ):
        return Refused(_delegation_gone())
    return None


def _apply(batch: _Batch, item: Prepared) -> Outcome:
    at, index = batch.next_time, batch.next_index
    early = _precheck(batch, item, at)
    if early is not None:
        return early
    try:
        if batch.savepoints:
            with batch.conn.begin_nested():
                result = _handle(batch, item, at=at, index=index)
        else:
            result = _handle(batch, item, at=at, index=index)
    except Exception as exc:
        if not batch.savepoints:
            raise HandlerRefusedError from exc
        problem = problem_from_error(exc)
        if problem.status >= 500:
            logger.error("handler for %s failed: %s", item.envelope.type, type(exc).__name__)
        return Refused(problem)
    _record(batch, item, result, at=at, index=index)
    return Accepted(item.tx_id, index, 0, at)


def _handle(batch: _Batch, item: Prepared, *, at: datetime, index: int) -> dict[str, JsonValue]:
    return item.tx_type.handler(
        batch.conn, item.envelope, tx_id=item.tx_id, accepted_at=at, ledger_index=index
    )


def changed_kid(item: Prepared) -> str | None:
    """The kid whose state item changes (key.suspend, key.revoke, …), or None."""
    kid = item.envelope.payload.get("kid")
    return kid if item.tx_type.changes_keys and isinstance(kid, str) else None


def _record(
    batch: _Batch, item: Prepared, result: dict[str, JsonValue], *, at: datetime, index: int
) -> None:
    result_json = canonicalize(result, max_bytes=MAX_DOCUMENT_BYTES)
    leaf = TransactionLeaf(
        tx_id=item.tx_id,
        type=item.envelope.type,
        accepted_at=at,
        envelope_sha256=item.envelope.sha256,
        jws=item.jws,
        kid=item.kid,
        result_sha256=hashlib.sha256(result_json).digest(),
    )
    batch.leaves.append(encode_leaf(leaf))
    signer = str(item.envelope.signer)
    batch.nonces.add((signer, item.envelope.nonce))
    batch.rows.append(
        tx_store.TxRow(
            id=item.tx_id,
            leaf_index=index,
            type=item.envelope.type,
            signer=signer,
            on_behalf_of=None
            if item.envelope.on_behalf_of is None
            else str(item.envelope.on_behalf_of),
            owner=item.owner,
            nonce=item.envelope.nonce,
            kid=item.kid,
            accepted_at=at,
            envelope=item.envelope.canonical.decode("utf-8"),
            jws=item.jws,
            result=result_json.decode("utf-8"),
            receipt_tree_size=0,  # set once the batch is complete
        )
    )
    if item.idempotency_key is not None:
        batch.idempotency.add((item.caller, item.idempotency_key))
        batch.records.append(
            tx_store.IdempotencyRecord(
                item.caller, item.idempotency_key, item.request_sha256, item.tx_id
            )
        )
    changed = changed_kid(item)
    if changed is not None and changed in batch.keys:
        # A key that signs in this batch changed state: later items see its new state.
        batch.keys.update(registry_store.load_keys(batch.conn, [changed]))


@dataclass(frozen=True)
class BatchResult:
    """Each item's outcome, and the signing keys' records as of the batch's end (what the
    receipts' key evidence shows, without loading them again)."""

    outcomes: list[Outcome]
    keys: dict[str, KeyRecord]


def commit_batch(
    conn: Connection,
    take: Callable[[], Sequence[Prepared]],
    *,
    origin: str,
    sign_note: Callable[[str], str],
    now: datetime,
    purge: bool = False,
    savepoints: bool = True,
) -> BatchResult:
    """Apply items in order inside conn's open transaction; the caller commits. Raises the
    storage's errors (the whole batch then rolls back and every item fails).

    With savepoints, each handler runs in its own SAVEPOINT and a refusal discards only its
    item's writes. Without (two statements fewer per item: the usual case is that every handler
    accepts), a refusal raises HandlerRefusedError and the caller must roll back and retry with
    savepoints.

    take() gives the items. It is called once the ledger head lock is held, so that transactions
    which arrived while the batch waited for the lock join it."""
    store.lock_head(conn)
    taken = take()
    batch = _open_batch(conn, taken, now=now, savepoints=savepoints)
    outcomes = [_apply(batch, item) for item in taken]
    if not batch.leaves:
        return BatchResult(outcomes, batch.keys)
    tree_size = batch.next_index
    rows = [tx_store.TxRow(**{**vars(r), "receipt_tree_size": tree_size}) for r in batch.rows]
    tx_store.insert_transactions(conn, rows)
    last_time = batch.next_time - _TICK
    tx_store.insert_idempotency(conn, batch.records, now=last_time)
    appended = store.append(
        conn,
        batch.leaves,
        origin=origin,
        sign_note=sign_note,
        now=last_time,
        locked_size=batch.first_index,
    )
    if appended.first_index != batch.first_index or appended.tree_size != tree_size:
        raise AssertionError("the ledger head moved while the batch held its lock")
    if purge:
        tx_store.purge_idempotency(conn, now=now)
    final: list[Outcome] = [
        Accepted(o.tx_id, o.leaf_index, tree_size, o.accepted_at) if isinstance(o, Accepted) else o
        for o in outcomes
    ]
    return BatchResult(final, batch.keys)
