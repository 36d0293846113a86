"""The transaction service: the pipeline's steps in order, from request bytes to receipt.

Idempotency is looked up first, before the envelope's checks: a retry of a request that was
accepted must get the stored receipt even when its created_at has since left the ±300 s window
and its nonce is now "used" — that is what the key is for. The same key with another body is 409.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import anyio.to_thread
from sqlalchemy import Connection, Engine

from api.auth import Principal
from api.database import read_only, run_in_transaction
from api.problems import Problem, problem_type
from api.transactions import checks, commit
from api.transactions import store as tx_store
from api.transactions.committer import GroupCommitter, LoopLimiters
from api.transactions.keycache import SigningKeyCache
from api.transactions.receipts import build_receipts
from api.transactions.registry import TypeRegistry
from ledger import store
from signatures.canonical import JsonValue
from signatures.envelope import Envelope, parse_envelope_json
from signatures.jws import MAX_PAYLOAD_BYTES

logger = logging.getLogger("pishkhan.transactions")

Clock = Callable[[], datetime]


class BatchObserver(Protocol):
    """Told of every batch written: its items, and its wait for and hold of the ledger lock."""

    def __call__(self, *, items: int, lock_wait_s: float, lock_held_s: float) -> None: ...


# Threads per worker for the checks before the write. They are CPU-bound Python (parsing,
# canonical JSON, the signature) with brief reads at most, so more threads than cores add no
# throughput; they only make the committer thread, which holds the ledger lock every worker
# waits on, queue longer for the GIL after each round trip to the database.
PREPARE_THREADS = 4
# How long the checks of a new request wait at most for this worker's batch to release the
# ledger lock (a large batch may hold it for seconds: the checks then go ahead).
PREPARE_YIELD_MAX_S = 0.25


def _utc_now() -> datetime:
    return datetime.now(UTC)


def not_found() -> Problem:
    return Problem(404, problem_type("transaction-not-found"), "No such transaction")


@dataclass(frozen=True)
class Submitted:
    tx_id: str
    receipt: dict[str, JsonValue]
    replayed: bool  # an idempotent retry answered from storage
    type_name: str = ""
    envelope_json: str | None = None  # the stored envelope of a replay (for after_commit)


class _LazyReader:
    """A read-only connection opened on first use (most pre-write checks need none), closed at
    the end of the with block."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> Callable[[], Connection]:
        return self._connection

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = read_only(self._engine.connect())
        return self._conn

    def __exit__(self, *_exc: object) -> None:
        if self._conn is not None:
            self._conn.close()


class TransactionService:
    """Everything POST/GET /v1/transactions needs; no per-request state survives a request."""

    def __init__(
        self,
        engine: Engine,
        *,
        registry: TypeRegistry,
        origin: str,
        sign_note: Callable[[str], str],
        clock: Clock = _utc_now,
        max_batch: int = commit.MAX_GROUP_COMMIT,
        on_outcome: Callable[[str, str], None] | None = None,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self._origin = origin
        self._sign_note = sign_note
        self._clock = clock
        self._batches = 0
        self._on_outcome = on_outcome or (lambda _type, _outcome: None)
        self._on_batch = on_batch
        self._keys = SigningKeyCache()
        self._prepare_threads = LoopLimiters(PREPARE_THREADS)
        # Set while no batch of this service holds the ledger lock (see _prepare).
        self._lock_free = threading.Event()
        self._lock_free.set()
        self._committer: GroupCommitter[checks.Prepared, commit.BatchResult, commit.Outcome] = (
            GroupCommitter(self._write, finish=self._receipts, max_batch=max_batch)
        )

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield read_only(conn)

    def _commit(self, take: Callable[[], Sequence[checks.Prepared]]) -> list[commit.Outcome]:
        """Write a batch and build its receipts (what the group committer does in two steps)."""
        return self._receipts(self._write(take))

    def _write(self, take: Callable[[], Sequence[checks.Prepared]]) -> commit.BatchResult:
        """Write the batch; take() gives its items once the ledger lock is held."""
        self._batches += 1
        purge = self._batches % commit.PURGE_EVERY_BATCHES == 1

        started = time.perf_counter()
        locked: list[float] = []

        def take_under_lock() -> Sequence[checks.Prepared]:
            self._lock_free.clear()
            locked.append(time.perf_counter())
            return take()

        work = functools.partial(
            commit.commit_batch,
            take=take_under_lock,
            origin=self._origin,
            sign_note=self._sign_note,
            now=self._clock(),
            purge=purge,
        )
        try:
            result = run_in_transaction(self.engine, lambda conn: work(conn, savepoints=False))
        except commit.HandlerRefusedError:
            # Rolled back whole: run again with a savepoint per item, so only the refused ones
            # are left out.
            result = run_in_transaction(self.engine, lambda conn: work(conn, savepoints=True))
        finally:
            self._lock_free.set()
        items = take()
        if self._on_batch is not None and locked:
            ended = time.perf_counter()
            self._on_batch(
                items=len(items), lock_wait_s=locked[0] - started, lock_held_s=ended - locked[0]
            )
        for item in items:
            changed = commit.changed_kid(item)
            if changed is not None:
                self._keys.forget(changed)
        return result

    def _receipts(self, result: commit.BatchResult) -> list[commit.Outcome]:
        """Every accepted item's receipt, built in one read (a batch's receipts share their
        queries: one for all the inclusion proofs)."""
        outcomes = result.outcomes
        accepted = [o for o in outcomes if isinstance(o, commit.Accepted)]
        if not accepted:
            return outcomes
        with self._reading() as conn:
            rows = tx_store.by_leaf_indices(conn, [o.leaf_index for o in accepted])
            checkpoint = store.checkpoint_at(conn, accepted[0].tree_size)
            receipts = build_receipts(
                conn, list(rows.values()), checkpoint=checkpoint, known_keys=result.keys
            )
        return [
            dataclasses.replace(o, receipt=receipts[o.tx_id])
            if isinstance(o, commit.Accepted)
            else o
            for o in outcomes
        ]

    # --- POST ---------------------------------------------------------------------------------

    def _stored(self, caller: str, key: str, request_sha256: bytes) -> Submitted | None:
        with self._reading() as conn:
            found = tx_store.find_idempotency(conn, caller=caller, key=key)
            if found is None:
                return None
            if found.request_sha256 != request_sha256:
                raise commit.idempotency_conflict()
            row = tx_store.get_transaction(conn, found.tx_id)
            assert row is not None, "an idempotency key always names a stored transaction"
            receipt = self._receipt(conn, row, row.receipt_tree_size)
            return Submitted(row.id, receipt, True, row.type, row.envelope)

    def _receipt(
        self, conn: Connection, row: tx_store.TxRow, tree_size: int
    ) -> dict[str, JsonValue]:
        checkpoint = store.checkpoint_at(conn, tree_size)
        return build_receipts(conn, [row], checkpoint=checkpoint)[row.id]

    def _prepare(
        self, body: bytes, principal: Principal, key: str | None
    ) -> checks.Prepared | Submitted:
        # While this worker's batch holds the ledger lock, which every worker waits on, new
        # requests' checks wait (a while at most): they could not join that batch anyway, and
        # their CPU would slow the lock holder, which shares this process's GIL with them.
        self._lock_free.wait(PREPARE_YIELD_MAX_S)
        if key is not None:
            _, _, request_sha256 = checks.parse_body(body)
            stored = self._stored(principal.subject, key, request_sha256)
            if stored is not None:
                return stored
        with _LazyReader(self.engine) as read:
            return checks.prepare(
                read,
                body,
                principal=principal,
                registry=self.registry,
                keys=self._keys,
                idempotency_key=key,
                now=self._clock(),
            )

    async def submit(
        self, body: bytes, *, principal: Principal, idempotency_key: str | None
    ) -> Submitted:
        """Run the pipeline. Raises Problem for every refusal."""
        key = checks.check_idempotency_key(idempotency_key)
        prepared = await anyio.to_thread.run_sync(
            self._prepare, body, principal, key, limiter=self._prepare_threads.current()
        )
        if isinstance(prepared, Submitted):
            await self._after_replay(prepared)
            return prepared
        type_name = prepared.envelope.type
        outcome = await self._committer.submit(prepared)
        if isinstance(outcome, commit.Refused):
            self._on_outcome(type_name, outcome.problem.type.rsplit("/", 1)[-1])
            raise outcome.problem
        if isinstance(outcome, commit.SameIdempotencyKey):
            assert key is not None
            stored = await anyio.to_thread.run_sync(
                self._stored, principal.subject, key, prepared.request_sha256
            )
            if stored is None:  # the other request was refused: nothing is stored under the key
                raise commit.replayed()
            return stored
        self._on_outcome(type_name, "accepted")
        assert outcome.receipt is not None
        await self._after_commit(prepared.tx_type.after_commit, outcome.tx_id, prepared.envelope)
        return Submitted(outcome.tx_id, outcome.receipt, False, type_name)

    async def _after_commit(
        self, hook: Callable[[str, Envelope], None] | None, tx_id: str, envelope: Envelope
    ) -> None:
        if hook is None:
            return
        try:
            await anyio.to_thread.run_sync(hook, tx_id, envelope)
        except Exception as exc:  # the transaction stands; a retry runs the hook again
            logger.error("after_commit of %s failed: %s", envelope.type, type(exc).__name__)

    async def _after_replay(self, submitted: Submitted) -> None:
        tx_type = self.registry.get(submitted.type_name)
        if tx_type is None or tx_type.after_commit is None or submitted.envelope_json is None:
            return
        envelope = parse_envelope_json(
            submitted.envelope_json.encode(), max_bytes=MAX_PAYLOAD_BYTES
        )
        await self._after_commit(tx_type.after_commit, submitted.tx_id, envelope)

    # --- GET ----------------------------------------------------------------------------------

    def get(self, tx_id: str, *, subject: str) -> tx_store.TxRow:
        """Raises Problem 404 for a missing transaction and for another subject's alike."""
        with self._reading() as conn:
            row = tx_store.get_visible(conn, tx_id, subject=subject)
        if row is None:
            raise not_found()
        return row

    def receipt(self, tx_id: str, *, subject: str) -> dict[str, JsonValue]:
        """A fresh receipt against the newest checkpoint. Raises Problem 404 as get does."""
        with self._reading() as conn:
            row = tx_store.get_visible(conn, tx_id, subject=subject)
            if row is None:
                raise not_found()
            return self._receipt(conn, row, store.latest_checkpoint(conn).tree_size)

    def list(self, *, subject: str, before_index: int | None, limit: int) -> list[tx_store.TxRow]:
        with self._reading() as conn:
            return tx_store.list_visible(
                conn, subject=subject, before_index=before_index, limit=limit
            )
