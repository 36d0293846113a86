"""The ledger in a SQL database: append inside the caller's transaction, proofs, past roots.

Every read for a proof or a past root touches O(log n) rows, fetched in at most two queries
(level-0 hashes from `ledger_entries`, higher levels from `ledger_nodes`); nothing scans leaves.

Appenders serialise on the log head: on PostgreSQL with a transaction-scoped advisory lock, on
SQLite with the database write lock, which the engine takes at BEGIN (BEGIN IMMEDIATE, see
api/database.py). The lock is held until the caller commits or rolls back, so the domain change
and its ledger entry are one atomic unit and no two appenders ever see the same head.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Protocol, cast

import psycopg
from sqlalchemy import Connection, TextClause, func, insert, select, text

from ledger import merkle
from ledger.checkpoint import format_checkpoint
from ledger.errors import LedgerLimitError, NotFoundError, StorageInconsistentError, TreeSizeError
from ledger.merkle import NodeId
from ledger.schema import checkpoints, entries, nodes
from signatures.registry_schema import as_utc

# Limits, each enforced before anything is written.
MAX_LEAF_BYTES = 64 * 1024
MAX_BATCH_LEAVES = 10_000
# Reading rows in pages keeps memory flat when the whole ledger is streamed.
READ_PAGE_ROWS = 10_000
# An arbitrary constant naming "the ledger head" among PostgreSQL advisory locks.
PG_HEAD_LOCK_KEY = 0x5049_5348_4B48_414E  # "PISHKHAN"

SignNote = Callable[[str], str]


@dataclass(frozen=True)
class StoredCheckpoint:
    tree_size: int
    root_hash: bytes
    note: str
    created_at: datetime


@dataclass(frozen=True)
class Entry:
    leaf_index: int
    leaf: bytes
    leaf_hash: bytes


@dataclass(frozen=True)
class AppendResult:
    """Where the appended leaves landed, and the signed checkpoint that now contains them."""

    first_index: int
    tree_size: int
    checkpoint: StoredCheckpoint


def lock_head(conn: Connection) -> None:
    """Take the appenders' lock on the log head for the rest of the caller's transaction.

    append() takes it too; a caller that must read the head before appending (to number its
    entries, or to date them after the newest checkpoint) takes it first. Re-entrant.
    """
    _lock_head(conn)


def _lock_head(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_HEAD_LOCK_KEY})
    # SQLite: the engine began this transaction with BEGIN IMMEDIATE, so it holds the write lock.


def _check_leaves(leaves: Sequence[bytes]) -> None:
    if not leaves:
        raise LedgerLimitError(
            "an append needs at least one leaf", limit_name="min_batch_leaves", limit=1, actual=0
        )
    if len(leaves) > MAX_BATCH_LEAVES:
        raise LedgerLimitError(
            f"a batch holds at most {MAX_BATCH_LEAVES} leaves, got {len(leaves)}",
            limit_name="MAX_BATCH_LEAVES",
            limit=MAX_BATCH_LEAVES,
            actual=len(leaves),
        )
    for i, leaf in enumerate(leaves):
        if len(leaf) > MAX_LEAF_BYTES:
            raise LedgerLimitError(
                f"leaf {i} has {len(leaf)} bytes, at most {MAX_LEAF_BYTES} are allowed",
                limit_name="MAX_LEAF_BYTES",
                limit=MAX_LEAF_BYTES,
                actual=len(leaf),
            )


def append(
    conn: Connection,
    leaves: Sequence[bytes],
    *,
    origin: str,
    sign_note: SignNote,
    now: datetime,
    locked_size: int | None = None,
) -> AppendResult:
    """Append leaves and a signed checkpoint inside the caller's open transaction.

    A caller that already took lock_head and read the head (read_head) in this transaction
    passes the tree size it read as locked_size: the lock and the head are not asked for again
    (two round trips fewer while every other appender waits). The frontier's read still returns
    the stored head, and a locked_size that disagrees with it is refused.

    `sign_note` turns the checkpoint body into a C2SP signed note. Nothing is committed here: the
    caller commits its domain change and this entry together, or rolls both back. Raises
    LedgerLimitError (empty batch, too many or too large leaves) and StorageInconsistentError
    (the stored head disagrees with the entries: refuse to extend a damaged log).
    """
    _check_leaves(leaves)
    if locked_size is None:
        _lock_head(conn)
        size = current_tree_size(conn)
    else:
        size = locked_size
    frontier_ids = merkle.frontier_ids(size)
    found = _fetch_frontier(conn, frontier_ids, size)
    leaf_hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    grown = merkle.append_leaves([found[n] for n in frontier_ids], size, leaf_hashes)
    conn.execute(
        insert(entries),
        [
            {"idx": size + i, "leaf": leaf, "leaf_hash": h}
            for i, (leaf, h) in enumerate(zip(leaves, leaf_hashes, strict=True))
        ],
    )
    if grown.nodes:
        conn.execute(
            insert(nodes), [{"level": n.level, "idx": n.index, "hash": h} for n, h in grown.nodes]
        )
    body = format_checkpoint(origin, grown.tree_size, grown.root)
    stored = StoredCheckpoint(grown.tree_size, grown.root, sign_note(body), now)
    conn.execute(
        insert(checkpoints),
        {
            "tree_size": stored.tree_size,
            "root_hash": stored.root_hash,
            "note": stored.note,
            "created_at": now,
        },
    )
    return AppendResult(first_index=size, tree_size=grown.tree_size, checkpoint=stored)


@dataclass(frozen=True)
class Head:
    """The log head, read in one statement: the newest checkpoint's size and time."""

    tree_size: int
    checkpoint_at: datetime | None  # aware UTC; None on an empty ledger


_HEAD_QUERY = select(
    select(func.max(checkpoints.c.tree_size)).scalar_subquery(),
    select(func.max(entries.c.idx)).scalar_subquery(),
    select(checkpoints.c.created_at)
    .order_by(checkpoints.c.tree_size.desc())
    .limit(1)
    .scalar_subquery(),
)


def read_head(conn: Connection) -> Head:
    """The newest checkpoint's size (0 for an empty ledger) and time.

    Raises StorageInconsistentError when the entries do not end exactly there.
    """
    size, last, at = conn.execute(_HEAD_QUERY).one()
    size = int(size or 0)
    _check_head(size, 0 if last is None else int(last) + 1)
    return Head(size, None if at is None else as_utc(cast(datetime, at)))


def current_tree_size(conn: Connection) -> int:
    """The size of the newest checkpoint (0 for an empty ledger).

    Raises StorageInconsistentError when the entries do not end exactly there.
    """
    return read_head(conn).tree_size


# Every node query also returns the head: the newest checkpoint's size (a row of level -1) and
# the last entry index (level -2). A proof then costs one round trip, and bounds, head check and
# nodes come from the same statement, the same snapshot.
_HEAD_ROWS = (
    "SELECT -1 AS level, COALESCE(MAX(tree_size), 0) AS idx, NULL AS hash FROM ledger_checkpoints"
    " UNION ALL SELECT -2, COALESCE(MAX(idx), -1), NULL FROM ledger_entries"
)
# PostgreSQL types a UNION column from its first rows: say that the NULL hash is bytea.
_PG_HEAD_ROWS = _HEAD_ROWS.replace("NULL AS hash", "CAST(NULL AS bytea) AS hash")
# PostgreSQL: one statement text for every proof shape (arrays as parameters), prepared once
# per connection and answered by one index probe per wanted node.
_PG_NODES_QUERY = text(
    _PG_HEAD_ROWS  # noqa: S608 (constant strings only)
    + " UNION ALL SELECT 0, idx, leaf_hash FROM ledger_entries"
    " WHERE idx = ANY(CAST(:leaf_ids AS bigint[]))"
    " UNION ALL SELECT n.level, n.idx, n.hash FROM ledger_nodes AS n"
    " JOIN unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[])) AS w(level, idx)"
    " ON n.level = w.level AND n.idx = w.idx"
)


@lru_cache(maxsize=4 * merkle.MAX_PROOF_HASHES)
def _sqlite_nodes_query(leaf_count: int, inner_count: int) -> TextClause:
    """SQLite: one statement per proof shape, cached so it is compiled once.

    Inner nodes are matched by an OR of primary-key equalities: SQLite plans a row-value IN list
    as a full scan, and turns the OR into one index probe per term.
    """
    parts = [_HEAD_ROWS]
    if leaf_count:
        marks = ", ".join(f":e{i}" for i in range(leaf_count))
        # Only placeholder names are formatted in; every value is a bound parameter.
        parts.append(f"SELECT 0, idx, leaf_hash FROM ledger_entries WHERE idx IN ({marks})")  # noqa: S608
    if inner_count:
        terms = " OR ".join(f"(level = :l{i} AND idx = :i{i})" for i in range(inner_count))
        parts.append(f"SELECT level, idx, hash FROM ledger_nodes WHERE {terms}")  # noqa: S608
    return text(" UNION ALL ".join(parts))


def _fetch(conn: Connection, wanted: set[NodeId]) -> tuple[int, dict[NodeId, bytes]]:
    """(newest checkpoint size, hashes of the wanted perfect subtrees found), in one query."""
    leaf_ids = [n.index for n in wanted if n.level == 0]
    inner = [n for n in wanted if n.level > 0]
    if conn.dialect.name == "postgresql":
        params: dict[str, object] = {
            "leaf_ids": leaf_ids,
            "levels": [n.level for n in inner],
            "idxs": [n.index for n in inner],
        }
        rows = conn.execute(_PG_NODES_QUERY, params)
    else:
        params = {f"e{i}": idx for i, idx in enumerate(leaf_ids)}
        for i, node in enumerate(inner):
            params[f"l{i}"], params[f"i{i}"] = node.level, node.index
        rows = conn.execute(_sqlite_nodes_query(len(leaf_ids), len(inner)), params)
    head = last = 0
    found: dict[NodeId, bytes] = {}
    for level, idx, h in rows:
        if level >= 0:
            found[NodeId(int(level), int(idx))] = bytes(h)
        elif level == -1:
            head = int(idx)
        else:
            last = int(idx)
    _check_head(head, last + 1)
    return head, found


def _fetch_frontier(conn: Connection, ids: Sequence[NodeId], size: int) -> dict[NodeId, bytes]:
    """The frontier's hashes for appending to a tree of size, which must be the stored head."""
    wanted = set(ids)
    if not wanted:
        return {}
    head, found = _fetch(conn, wanted)
    if head != size:
        raise StorageInconsistentError(
            f"the newest checkpoint has size {head}, not the {size} the appender locked"
        )
    _require_all(wanted, found)
    return found


def _check_head(size: int, entry_count: int) -> None:
    if entry_count != size:
        raise StorageInconsistentError(
            f"entries end at index {entry_count - 1} but the newest checkpoint has size {size}"
        )


def _require_all(wanted: set[NodeId], found: dict[NodeId, bytes]) -> None:
    missing = wanted - found.keys()
    if missing:
        first = min(missing)
        raise StorageInconsistentError(
            f"{len(missing)} stored tree node(s) missing, first level {first.level} "
            f"index {first.index}"
        )


def _resolve(
    conn: Connection, plans: list[list[NodeId]], *, tree_size: int, field: str
) -> list[bytes]:
    """Fold each plan from storage, refusing a tree_size beyond the newest checkpoint.

    Raises TreeSizeError, or StorageInconsistentError when a node within the tree is missing.
    """
    wanted = merkle.nodes_of(plans)
    head, found = _fetch(conn, wanted)
    if tree_size > head:
        raise TreeSizeError(
            f"{field} {tree_size} is beyond the current tree size {head}",
            field=field,
            value=tree_size,
        )
    _require_all(wanted, found)
    return merkle.assemble(plans, found)


def inclusion_proof(conn: Connection, *, leaf_index: int, tree_size: int) -> list[bytes]:
    """PATH(leaf_index, D[0:tree_size]) from storage, for any past or current size.

    Raises TreeSizeError (bounds, or a size beyond the current tree).
    """
    plans = merkle.plan(merkle.inclusion_path(leaf_index, tree_size))
    return _resolve(conn, plans, tree_size=tree_size, field="tree_size")


def consistency_proof(conn: Connection, *, first_size: int, second_size: int) -> list[bytes]:
    """PROOF(first_size, D[0:second_size]) from storage. Raises TreeSizeError."""
    plans = merkle.plan(merkle.consistency_path(first_size, second_size))
    return _resolve(conn, plans, tree_size=second_size, field="second_size")


def root_at(conn: Connection, tree_size: int) -> bytes:
    """The root of the tree of any past or current size. Raises TreeSizeError."""
    merkle.check_tree_size(tree_size)
    plans = [merkle.perfect_subtrees(0, tree_size)]
    return merkle.fold(_resolve(conn, plans, tree_size=tree_size, field="tree_size"))


def inclusion_proofs(
    conn: Connection, leaf_indices: Sequence[int], *, tree_size: int
) -> dict[int, list[bytes]]:
    """PATH(i, D[0:tree_size]) for each leaf index, from one query however many.

    Raises TreeSizeError (bounds, or a size beyond the current tree).
    """
    indices = sorted(set(leaf_indices))
    plans_by_leaf = [merkle.plan(merkle.inclusion_path(i, tree_size)) for i in indices]
    flat = [p for plans in plans_by_leaf for p in plans]
    hashes = _resolve(conn, flat, tree_size=tree_size, field="tree_size") if flat else []
    out: dict[int, list[bytes]] = {}
    at = 0
    for i, plans in zip(indices, plans_by_leaf, strict=True):
        out[i] = hashes[at : at + len(plans)]
        at += len(plans)
    return out


@dataclass(frozen=True)
class InclusionBundle:
    """Everything a client needs to check one leaf against a checkpoint of tree_size."""

    leaf_hash: bytes
    proof: list[bytes]
    root_hash: bytes


def inclusion_bundle(conn: Connection, *, leaf_index: int, tree_size: int) -> InclusionBundle:
    """The leaf hash, PATH(leaf_index, D[0:tree_size]) and that tree's root, in one query.

    Raises TreeSizeError (bounds, or a size beyond the current tree).
    """
    plans = merkle.plan(merkle.inclusion_path(leaf_index, tree_size))
    leaf_plan = [merkle.NodeId(0, leaf_index)]
    root_plan = merkle.perfect_subtrees(0, tree_size)
    leaf, *proof, root = _resolve(
        conn, [leaf_plan, *plans, root_plan], tree_size=tree_size, field="tree_size"
    )
    return InclusionBundle(leaf, proof, root)


@dataclass(frozen=True)
class ConsistencyBundle:
    """PROOF(first, D[0:second]) and the roots of both sizes."""

    first_root: bytes
    second_root: bytes
    proof: list[bytes]


def consistency_bundle(conn: Connection, *, first_size: int, second_size: int) -> ConsistencyBundle:
    """A consistency proof with the roots of both sizes, in one query. Raises TreeSizeError."""
    plans = merkle.plan(merkle.consistency_path(first_size, second_size))
    first_plan = merkle.perfect_subtrees(0, first_size)
    second_plan = merkle.perfect_subtrees(0, second_size)
    first, second, *proof = _resolve(
        conn, [first_plan, second_plan, *plans], tree_size=second_size, field="second_size"
    )
    return ConsistencyBundle(first, second, proof)


def get_entry(conn: Connection, leaf_index: int) -> Entry:
    """The entry at leaf_index. Raises NotFoundError."""
    row = conn.execute(
        select(entries.c.leaf, entries.c.leaf_hash).where(entries.c.idx == leaf_index)
    ).first()
    if row is None:
        raise NotFoundError(f"no entry at index {leaf_index}", field="index", value=leaf_index)
    return Entry(leaf_index, bytes(row.leaf), bytes(row.leaf_hash))


class _CheckpointColumns(Protocol):
    tree_size: int
    root_hash: bytes
    note: str
    created_at: datetime


def _checkpoint(row: _CheckpointColumns) -> StoredCheckpoint:
    return StoredCheckpoint(int(row.tree_size), bytes(row.root_hash), str(row.note), row.created_at)


_CHECKPOINT_COLUMNS = (
    checkpoints.c.tree_size,
    checkpoints.c.root_hash,
    checkpoints.c.note,
    checkpoints.c.created_at,
)


def latest_checkpoint(conn: Connection) -> StoredCheckpoint:
    """The newest signed checkpoint. Raises NotFoundError when the ledger is empty."""
    row = conn.execute(
        select(*_CHECKPOINT_COLUMNS).order_by(checkpoints.c.tree_size.desc()).limit(1)
    ).first()
    if row is None:
        raise NotFoundError("the ledger is empty: no checkpoint yet", field="tree_size", value=0)
    return _checkpoint(row)


def checkpoint_at(conn: Connection, tree_size: int) -> StoredCheckpoint:
    """The signed checkpoint of exactly this size. Raises NotFoundError."""
    row = conn.execute(
        select(*_CHECKPOINT_COLUMNS).where(checkpoints.c.tree_size == tree_size)
    ).first()
    if row is None:
        raise NotFoundError(
            f"no checkpoint of size {tree_size}", field="tree_size", value=tree_size
        )
    return _checkpoint(row)


def iter_entries(conn: Connection, *, start: int = 0) -> Iterator[tuple[int, bytes, bytes]]:
    """(index, leaf, stored leaf hash) in index order, read page by page (keyset pagination)."""
    after = start - 1
    while True:
        rows = conn.execute(
            select(entries.c.idx, entries.c.leaf, entries.c.leaf_hash)
            .where(entries.c.idx > after)
            .order_by(entries.c.idx)
            .limit(READ_PAGE_ROWS)
        ).all()
        for idx, leaf, h in rows:
            yield int(idx), bytes(leaf), bytes(h)
        if len(rows) < READ_PAGE_ROWS:
            return
        after = int(rows[-1][0])


def iter_checkpoints(conn: Connection) -> Iterator[StoredCheckpoint]:
    """Every stored checkpoint in size order, page by page."""
    after = -1
    while True:
        rows = conn.execute(
            select(*_CHECKPOINT_COLUMNS)
            .where(checkpoints.c.tree_size > after)
            .order_by(checkpoints.c.tree_size)
            .limit(READ_PAGE_ROWS)
        ).all()
        for row in rows:
            yield _checkpoint(row)
        if len(rows) < READ_PAGE_ROWS:
            return
        after = int(rows[-1][0])


def iter_nodes_by_completion(conn: Connection) -> Iterator[tuple[NodeId, bytes]]:
    """Every stored node of level ≥ 1 in the order appends complete them: by end leaf, then level.

    That is the order a streaming recomputation produces them in, so an auditor compares the two
    streams in O(log n) memory. The database sorts (an expression, so no index serves it).
    """
    end = nodes.c.idx.op("+")(1).op("<<")(nodes.c.level)
    result = conn.execution_options(stream_results=True, yield_per=READ_PAGE_ROWS).execute(
        select(nodes.c.level, nodes.c.idx, nodes.c.hash).order_by(end, nodes.c.level)
    )
    for level, idx, h in result:
        yield NodeId(int(level), int(idx)), bytes(h)


def _raw_rows(conn: Connection, sql: str) -> Iterator[tuple[object, ...]]:
    """Stream plain DB-API tuples: whole-ledger scans skip SQLAlchemy's per-row Row objects.

    PostgreSQL: a server-side cursor (flat memory) in binary format, inside the connection's
    current transaction and snapshot; bytea in text format costs a hex decode per value, which
    halves the scan rate. Both drivers return BLOB/BYTEA as bytes and integers as int.
    """
    if conn.dialect.name == "postgresql":
        raw = cast(psycopg.Connection[tuple[object, ...]], conn.connection.driver_connection)
        with raw.cursor(name=f"pishkhan_scan_{uuid.uuid4().hex}", binary=True) as cursor:
            cursor.itersize = READ_PAGE_ROWS
            cursor.execute(sql)
            while page := cursor.fetchmany(READ_PAGE_ROWS):
                yield from page
        return
    result = conn.execution_options(stream_results=True).exec_driver_sql(sql)
    try:
        while rows := result.cursor.fetchmany(READ_PAGE_ROWS):
            yield from rows
    finally:
        result.close()


def scan_entries(conn: Connection) -> Iterator[tuple[int, bytes, bytes]]:
    """(index, leaf, stored leaf hash) for every entry, in index order, as fast as the driver."""
    sql = "SELECT idx, leaf, leaf_hash FROM ledger_entries ORDER BY idx"
    return cast(Iterator[tuple[int, bytes, bytes]], _raw_rows(conn, sql))


def scan_nodes_by_level(
    conn: Connection, *, tree_size: int | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """(level, index, hash) for stored nodes in primary-key order (no sort needed).

    With tree_size, only the nodes of the tree of that size (their last leaf below it): a scan
    from another snapshot then sees exactly the nodes of the tree the caller checks.
    """
    sql = "SELECT level, idx, hash FROM ledger_nodes"
    if tree_size is not None:
        # An int, checked here, is the only thing formatted into the statement.
        merkle.check_tree_size(tree_size, allow_zero=True)
        sql += f" WHERE ((idx + 1) << level) <= {int(tree_size)}"
    sql += " ORDER BY level, idx"
    return cast(Iterator[tuple[int, int, bytes]], _raw_rows(conn, sql))


def count_nodes_beyond(conn: Connection, tree_size: int) -> int:
    """How many stored nodes end past tree_size: none may, in a log whose head is tree_size."""
    end = nodes.c.idx.op("+")(1).op("<<")(nodes.c.level)
    query = select(func.count()).select_from(nodes).where(end > tree_size)
    return int(conn.execute(query).scalar_one())


def newest_checkpoint_size(conn: Connection) -> int:
    """The size of the newest stored checkpoint, 0 when there is none (no consistency check)."""
    query = select(func.coalesce(func.max(checkpoints.c.tree_size), 0))
    return int(conn.execute(query).scalar_one())
