"""Concurrent appenders never produce a gap, a duplicate index or a fork.

PostgreSQL: 4 processes × 500 appends (advisory lock on the head). SQLite: 4 threads × 500
appends (BEGIN IMMEDIATE write lock, retried when busy).
"""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import Engine

from api.database import make_engine, read_only, run_in_transaction
from ledger import merkle, store
from ledger.checkpoint import open_checkpoint
from ledger.note import NoteSigner, sign_note
from tests.db.conftest import ORIGIN

WORKERS = 4
APPENDS_PER_WORKER = 500


def _append_many(url: str, raw_key: bytes, worker: int) -> None:
    """One appender: its own engine (and process or thread), one leaf per transaction."""
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(raw_key))
    engine = make_engine(url)
    try:
        for i in range(APPENDS_PER_WORKER):
            leaf = f"worker-{worker}-append-{i}".encode()
            run_in_transaction(
                engine,
                lambda conn, leaf=leaf: store.append(
                    conn,
                    [leaf],
                    origin=ORIGIN,
                    sign_note=lambda b: sign_note(b, [signer]),
                    now=datetime.now(UTC),
                ),
            )
    finally:
        engine.dispose()


def _check_log(engine: Engine, signer: NoteSigner) -> None:
    total = WORKERS * APPENDS_PER_WORKER
    with engine.connect() as conn:
        conn = read_only(conn)
        rows = list(store.iter_entries(conn))
        checkpoints = list(store.iter_checkpoints(conn))
        assert [idx for idx, _, _ in rows] == list(range(total)), "indices contiguous and unique"
        leaves = {leaf for _, leaf, _ in rows}
        assert leaves == {
            f"worker-{w}-append-{i}".encode()
            for w in range(WORKERS)
            for i in range(APPENDS_PER_WORKER)
        }, "every append landed exactly once"
        hashes = [merkle.leaf_hash(leaf) for _, leaf, _ in rows]
        assert [c.tree_size for c in checkpoints] == list(range(1, total + 1))
        assert checkpoints[-1].root_hash == merkle.root(hashes)
        previous = None
        for cp in checkpoints:
            opened = open_checkpoint(cp.note, [signer.verifier], origin=ORIGIN)
            assert (opened.tree_size, opened.root_hash) == (cp.tree_size, cp.root_hash)
            if previous is not None:
                merkle.verify_consistency(
                    first_size=previous.tree_size,
                    second_size=cp.tree_size,
                    first_root=previous.root_hash,
                    second_root=cp.root_hash,
                    proof=store.consistency_proof(
                        conn, first_size=previous.tree_size, second_size=cp.tree_size
                    ),
                )
            previous = cp


def _raw(signer: NoteSigner) -> bytes:
    return signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_four_processes_append_without_gaps_or_forks(
    engine: Engine, db_url: str, signer: NoteSigner
) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_append_many, args=(db_url, _raw(signer), w)) for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    _check_log(engine, signer)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_four_threads_append_without_gaps_or_forks(
    engine: Engine, db_url: str, signer: NoteSigner
) -> None:
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            _append_many(db_url, _raw(signer), worker)
        except BaseException as exc:  # reported below, with the thread's worker number
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert errors == []
    _check_log(engine, signer)
