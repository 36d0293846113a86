"""The ledger in SQLite and PostgreSQL: appends, proofs from storage, append-only triggers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from api.database import read_only
from ledger import merkle, store
from ledger.checkpoint import open_checkpoint
from ledger.errors import LedgerLimitError, NotFoundError, StorageInconsistentError, TreeSizeError
from ledger.note import NoteSigner, sign_note
from tests.db.conftest import ORIGIN, append_leaves


def _leaves(start: int, count: int) -> list[bytes]:
    return [f"leaf-{i}".encode() for i in range(start, start + count)]


def test_batches_land_contiguously_with_a_checkpoint_each(
    engine: Engine, signer: NoteSigner
) -> None:
    sizes = []
    total = 0
    for batch in (1, 1, 5, 17, 1, 32, 3):
        result = append_leaves(engine, signer, _leaves(total, batch))
        assert result.first_index == total
        total += batch
        assert result.tree_size == total
        sizes.append(total)
        checkpoint = open_checkpoint(result.checkpoint.note, [signer.verifier], origin=ORIGIN)
        assert checkpoint.tree_size == total
        assert checkpoint.root_hash == merkle.root([merkle.leaf_hash(x) for x in _leaves(0, total)])
    with engine.connect() as conn:
        conn = read_only(conn)
        assert [c.tree_size for c in store.iter_checkpoints(conn)] == sizes
        assert store.latest_checkpoint(conn).tree_size == total


def test_proofs_from_storage_equal_reference_for_every_index_and_past_size(
    engine: Engine, signer: NoteSigner
) -> None:
    leaves = _leaves(0, 37)
    for i in range(0, 37, 6):
        append_leaves(engine, signer, leaves[i : i + 6])
    hashes = [merkle.leaf_hash(x) for x in leaves]
    with engine.connect() as conn:
        conn = read_only(conn)
        for size in range(1, 38):
            assert store.root_at(conn, size) == merkle.root(hashes[:size])
            for index in range(size):
                assert store.inclusion_proof(conn, leaf_index=index, tree_size=size) == (
                    merkle.inclusion_proof(index, hashes[:size])
                )
                bundle = store.inclusion_bundle(conn, leaf_index=index, tree_size=size)
                assert bundle == store.InclusionBundle(
                    hashes[index],
                    merkle.inclusion_proof(index, hashes[:size]),
                    merkle.root(hashes[:size]),
                )
            for first in range(1, size + 1):
                assert store.consistency_proof(conn, first_size=first, second_size=size) == (
                    merkle.consistency_proof(first, hashes[:size])
                )
                assert store.consistency_bundle(conn, first_size=first, second_size=size) == (
                    store.ConsistencyBundle(
                        merkle.root(hashes[:first]),
                        merkle.root(hashes[:size]),
                        merkle.consistency_proof(first, hashes[:size]),
                    )
                )


def test_stored_nodes_are_exactly_the_perfect_subtrees(engine: Engine, signer: NoteSigner) -> None:
    leaves = _leaves(0, 45)
    for i in range(0, 45, 7):
        append_leaves(engine, signer, leaves[i : i + 7])
    hashes = [merkle.leaf_hash(x) for x in leaves]
    with engine.connect() as conn:
        stored = {merkle.NodeId(lv, i): h for lv, i, h in store.scan_nodes_by_level(conn)}
        entries = list(store.iter_entries(conn))
    assert stored == {
        merkle.NodeId(lv, i): merkle.subtree_hash(merkle.NodeId(lv, i), hashes)
        for lv in range(1, 6)
        for i in range(45 >> lv)
    }
    assert entries == [(i, leaf, merkle.leaf_hash(leaf)) for i, leaf in enumerate(leaves)]
    with engine.connect() as conn:
        # The raw scans the auditor uses return the same rows as plain tuples.
        assert [tuple(r) for r in store.scan_entries(conn)] == entries
        assert [tuple(r) for r in store.scan_nodes_by_level(conn)] == sorted(
            (n.level, n.index, h) for n, h in stored.items()
        )
        assert list(store.iter_nodes_by_completion(conn)) == sorted(
            stored.items(), key=lambda item: (item[0].end, item[0].level)
        )


def test_rolled_back_caller_transaction_leaves_no_trace(engine: Engine, signer: NoteSigner) -> None:
    append_leaves(engine, signer, [b"kept"])

    class DomainFailure(Exception):
        pass

    with pytest.raises(DomainFailure), engine.begin() as conn:
        store.append(
            conn,
            [b"lost"],
            origin=ORIGIN,
            sign_note=lambda b: sign_note(b, [signer]),
            now=datetime.now(UTC),
        )
        raise DomainFailure
    with engine.connect() as conn:
        assert store.current_tree_size(conn) == 1
        assert store.get_entry(conn, 0).leaf == b"kept"
        with pytest.raises(NotFoundError):
            store.get_entry(conn, 1)


@pytest.mark.parametrize(
    ("leaves", "limit_name"),
    [
        pytest.param([], "min_batch_leaves", id="empty_batch"),
        pytest.param([b"x"] * (store.MAX_BATCH_LEAVES + 1), "MAX_BATCH_LEAVES", id="batch_too_big"),
        pytest.param([b"x" * (store.MAX_LEAF_BYTES + 1)], "MAX_LEAF_BYTES", id="leaf_too_big"),
    ],
)
def test_limits_are_enforced_before_writing(
    engine: Engine, signer: NoteSigner, leaves: list[bytes], limit_name: str
) -> None:
    with pytest.raises(LedgerLimitError) as info:
        append_leaves(engine, signer, leaves)
    assert info.value.limit_name == limit_name
    with engine.connect() as conn:
        assert store.current_tree_size(conn) == 0


def test_sizes_beyond_the_tree_are_refused(engine: Engine, signer: NoteSigner) -> None:
    append_leaves(engine, signer, _leaves(0, 4))
    with engine.connect() as conn:
        with pytest.raises(TreeSizeError):
            store.inclusion_proof(conn, leaf_index=0, tree_size=5)
        with pytest.raises(TreeSizeError):
            store.consistency_proof(conn, first_size=2, second_size=5)
        with pytest.raises(TreeSizeError):
            store.root_at(conn, 0)
        with pytest.raises(NotFoundError):
            store.checkpoint_at(conn, 3)


def test_empty_ledger_has_no_checkpoint(engine: Engine) -> None:
    with engine.connect() as conn:
        assert store.current_tree_size(conn) == 0
        with pytest.raises(NotFoundError):
            store.latest_checkpoint(conn)


MUTATIONS = {
    "update_entry": "UPDATE ledger_entries SET leaf = leaf_hash WHERE idx = 1",
    "delete_entry": "DELETE FROM ledger_entries WHERE idx = 1",
    "update_node": "UPDATE ledger_nodes SET hash = hash WHERE level = 1 AND idx = 0",
    "delete_node": "DELETE FROM ledger_nodes WHERE level = 1",
    "update_checkpoint": "UPDATE ledger_checkpoints SET note = 'forged' WHERE tree_size = 4",
    "delete_checkpoint": "DELETE FROM ledger_checkpoints WHERE tree_size = 4",
}


@pytest.mark.parametrize("sql", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_triggers_refuse_update_and_delete_in_raw_sql(
    engine: Engine, signer: NoteSigner, sql: str
) -> None:
    append_leaves(engine, signer, _leaves(0, 4))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(sql))
    with engine.connect() as conn:
        assert store.current_tree_size(conn) == 4
        assert [e[1] for e in store.iter_entries(conn)] == _leaves(0, 4)


# TRUNCATE exists only on PostgreSQL; on SQLite a DELETE without WHERE is covered above.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("table", ["ledger_entries", "ledger_nodes", "ledger_checkpoints"])
def test_truncate_is_refused_on_postgresql(engine: Engine, signer: NoteSigner, table: str) -> None:
    append_leaves(engine, signer, _leaves(0, 2))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {table}"))


def test_append_refuses_to_extend_a_log_whose_head_disagrees(
    engine: Engine, signer: NoteSigner
) -> None:
    append_leaves(engine, signer, _leaves(0, 3))
    # An entry smuggled in past the newest checkpoint: the head no longer matches.
    leaf = b"smuggled"
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO ledger_entries (idx, leaf, leaf_hash) VALUES (3, :l, :h)"),
            {"l": leaf, "h": hashlib.sha256(b"\x00" + leaf).digest()},
        )
    with pytest.raises(StorageInconsistentError):
        append_leaves(engine, signer, [b"next"])


def test_read_head_gives_the_newest_checkpoint_size_and_time(
    engine: Engine, signer: NoteSigner
) -> None:
    with engine.connect() as conn:
        assert store.read_head(conn) == store.Head(0, None)
    append_leaves(engine, signer, _leaves(0, 2))
    result = append_leaves(engine, signer, _leaves(2, 3))
    with engine.connect() as conn:
        head = store.read_head(conn)
    assert head == store.Head(5, result.checkpoint.created_at)
    assert head.checkpoint_at is not None and head.checkpoint_at.tzinfo is not None


@pytest.mark.parametrize("locked_size", [2, 4], ids=["behind", "ahead"])
def test_append_refuses_a_locked_size_that_is_not_the_stored_head(
    engine: Engine, signer: NoteSigner, locked_size: int
) -> None:
    """A caller that read the head under the lock passes its size; a size that is not the stored
    head is refused and nothing is written."""
    append_leaves(engine, signer, _leaves(0, 3))
    with pytest.raises(StorageInconsistentError, match="not the"), engine.begin() as conn:
        store.lock_head(conn)
        store.append(
            conn,
            [b"next"],
            origin=ORIGIN,
            sign_note=lambda body: sign_note(body, [signer]),
            now=datetime.now(UTC),
            locked_size=locked_size,
        )
    with engine.connect() as conn:
        assert store.current_tree_size(conn) == 3


def test_append_with_the_locked_size_lands_like_one_without(
    engine: Engine, signer: NoteSigner
) -> None:
    append_leaves(engine, signer, _leaves(0, 3))
    with engine.begin() as conn:
        store.lock_head(conn)
        head = store.read_head(conn)
        result = store.append(
            conn,
            _leaves(3, 2),
            origin=ORIGIN,
            sign_note=lambda body: sign_note(body, [signer]),
            now=datetime.now(UTC),
            locked_size=head.tree_size,
        )
    assert (result.first_index, result.tree_size) == (3, 5)
    with engine.connect() as conn:
        assert store.root_at(read_only(conn), 5) == merkle.root(
            [merkle.leaf_hash(x) for x in _leaves(0, 5)]
        )
