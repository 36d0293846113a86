"""RFC 9162 §2.1 Merkle tree hashing, proofs and their verification. Pure: no I/O.

The tree over leaves D[0:n] is the one of RFC 6962/9162: MTH of an empty list is SHA-256 of
nothing, of one entry its leaf hash, and otherwise `node(MTH(D[0:k]), MTH(D[k:n]))` with k the
largest power of two smaller than n. Every subtree that appears in that recursion is either a
*perfect* subtree (2^level leaves starting at a multiple of 2^level) or a right edge made of
perfect subtrees of decreasing size. Storage therefore keeps only perfect subtree hashes
(`NodeId`), and this module turns any proof or past root into a *plan*: the perfect subtrees to
read, O(log n) of them, and how to fold them. The same plans run over an in-memory list of leaf
hashes, which is how the reference proofs and the auditor's recomputation work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledger.errors import ProofLengthError, RootMismatchError, TreeSizeError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# Sizes and indices are stored as signed 64-bit integers (BIGINT) on both databases.
MAX_TREE_SIZE = 2**63 - 1
# An inclusion or consistency proof in a tree of at most MAX_TREE_SIZE leaves never needs more.
MAX_PROOF_HASHES = 64
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data), RFC 9162 §2.1.1."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right), RFC 9162 §2.1.1."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


@dataclass(frozen=True, order=True)
class NodeId:
    """A perfect subtree: 2^level leaves starting at leaf `index << level`."""

    level: int
    index: int

    @property
    def start(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level


Range = tuple[int, int]  # leaves [start, end)


def _split(size: int) -> int:
    """The largest power of two strictly smaller than size (size ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[NodeId]:
    """Decompose the leaf range [start, end) of the RFC tree into perfect subtrees, left to right.

    The range must be one the RFC recursion produces (start aligned to the size of its first
    perfect subtree); all ranges returned by the path functions here are.
    """
    nodes: list[NodeId] = []
    while start < end:
        size = end - start
        level = size.bit_length() - 1  # largest power of two ≤ size
        assert start % (1 << level) == 0, "range not aligned to the RFC tree"
        nodes.append(NodeId(level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its perfect subtrees, left to right.

    The RFC recursion splits off the largest perfect subtree on the left, so the range hash is a
    right fold: node(h0, node(h1, ... node(h_{k-2}, h_{k-1}))). An empty range is EMPTY_ROOT.
    """
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def check_tree_size(tree_size: int, *, field: str = "tree_size", allow_zero: bool = False) -> None:
    """Raise TreeSizeError unless 0 < tree_size ≤ MAX_TREE_SIZE (or 0 when allowed)."""
    low = 0 if allow_zero else 1
    if not low <= tree_size <= MAX_TREE_SIZE:
        raise TreeSizeError(
            f"{field} must be between {low} and {MAX_TREE_SIZE}, got {tree_size}",
            field=field,
            value=tree_size,
        )


def check_index(index: int, tree_size: int) -> None:
    """Raise TreeSizeError unless 0 ≤ index < tree_size ≤ MAX_TREE_SIZE."""
    check_tree_size(tree_size)
    if not 0 <= index < tree_size:
        raise TreeSizeError(
            f"leaf_index must be in [0, {tree_size}) for tree_size {tree_size}, got {index}",
            field="leaf_index",
            value=index,
        )


def check_sizes(first_size: int, second_size: int) -> None:
    """Raise TreeSizeError unless 0 < first_size ≤ second_size ≤ MAX_TREE_SIZE."""
    check_tree_size(first_size, field="first_size")
    check_tree_size(second_size, field="second_size")
    if first_size > second_size:
        raise TreeSizeError(
            f"first_size {first_size} is larger than second_size {second_size}",
            field="first_size",
            value=first_size,
        )


def inclusion_path(leaf_index: int, tree_size: int) -> list[Range]:
    """The leaf ranges whose MTHs form PATH(leaf_index, D[0:tree_size]), in RFC order.

    Raises TreeSizeError when the index or size is out of bounds.
    """
    check_index(leaf_index, tree_size)
    ranges: list[Range] = []
    start, end, m = 0, tree_size, leaf_index
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m = start + k, m - k
    ranges.reverse()  # the recursion appends the deepest sibling last; the proof lists it first
    return ranges


def consistency_path(first_size: int, second_size: int) -> list[Range]:
    """The leaf ranges whose MTHs form PROOF(first_size, D[0:second_size]), RFC 9162 §2.1.4.1.

    Empty when the sizes are equal. Raises TreeSizeError unless 0 < first_size ≤ second_size.
    """
    check_sizes(first_size, second_size)
    ranges: list[Range] = []
    start, end, m, whole = 0, second_size, first_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def plan(ranges: Sequence[Range]) -> list[list[NodeId]]:
    """For each range, the perfect subtrees whose hashes fold into its MTH."""
    return [perfect_subtrees(start, end) for start, end in ranges]


def nodes_of(plans: Sequence[Sequence[NodeId]]) -> set[NodeId]:
    """Every distinct perfect subtree a list of plans reads: what storage must fetch."""
    return {node for p in plans for node in p}


def assemble(plans: Sequence[Sequence[NodeId]], hashes: Mapping[NodeId, bytes]) -> list[bytes]:
    """Fold each plan's node hashes into one proof hash (or root) per plan."""
    return [fold([hashes[node] for node in p]) for p in plans]


def subtree_hash(node: NodeId, leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a perfect subtree computed from the leaf hashes (reference, O(2^level))."""
    level = [leaf_hashes[i] for i in range(node.start, node.end)]
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _resolve(plans: Sequence[Sequence[NodeId]], leaf_hashes: Sequence[bytes]) -> list[bytes]:
    return assemble(plans, {n: subtree_hash(n, leaf_hashes) for n in nodes_of(plans)})


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[0:n]) over the given leaf hashes (reference implementation, O(n))."""
    return fold(_resolve([perfect_subtrees(0, len(leaf_hashes))], leaf_hashes))


def inclusion_proof(leaf_index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(leaf_index, D[0:n]) over the given leaf hashes. Raises TreeSizeError."""
    return _resolve(plan(inclusion_path(leaf_index, len(leaf_hashes))), leaf_hashes)


def consistency_proof(first_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(first_size, D[0:n]) over the given leaf hashes. Raises TreeSizeError."""
    return _resolve(plan(consistency_path(first_size, len(leaf_hashes))), leaf_hashes)


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofLengthError(
            f"{what} must be {HASH_SIZE} bytes, got {len(value)}",
            expected=HASH_SIZE,
            actual=len(value),
        )


def _check_proof(proof: Sequence[bytes], expected: int, what: str) -> None:
    if len(proof) != expected:
        raise ProofLengthError(
            f"{what} must have {expected} hashes for these sizes, got {len(proof)}",
            expected=expected,
            actual=len(proof),
        )
    for i, h in enumerate(proof):
        _check_hash(h, f"{what} hash {i}")


def root_from_inclusion_proof(
    *, leaf_hash: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that `proof` implies for this leaf, RFC 9162 §2.1.3.2.

    Bounds, proof length and hash sizes are checked before any hashing. Raises TreeSizeError or
    ProofLengthError.
    """
    _check_proof(proof, len(inclusion_path(leaf_index, tree_size)), "inclusion proof")
    _check_hash(leaf_hash, "leaf hash")
    fn, sn, r = leaf_index, tree_size - 1, leaf_hash
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0, "proof length was checked against the path"
    return r


def verify_inclusion(
    *, leaf_hash: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf is at leaf_index in the tree of tree_size leaves with this root.

    Raises TreeSizeError (bounds), ProofLengthError (wrong number or size of hashes) or
    RootMismatchError (the proof leads to another root).
    """
    _check_hash(root, "root hash")
    computed = root_from_inclusion_proof(
        leaf_hash=leaf_hash, leaf_index=leaf_index, tree_size=tree_size, proof=proof
    )
    if computed != root:
        raise RootMismatchError(
            f"inclusion proof for leaf {leaf_index} in tree of size {tree_size} leads to "
            f"root {computed.hex()}, expected {root.hex()}",
            expected=root,
            computed=computed,
        )


def verify_consistency(
    *,
    first_size: int,
    second_size: int,
    first_root: bytes,
    second_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree of first_size leaves is a prefix of the one of second_size leaves.

    RFC 9162 §2.1.4.2. Raises TreeSizeError, ProofLengthError or RootMismatchError (which says
    whether the first or the second root disagrees).
    """
    _check_proof(proof, len(consistency_path(first_size, second_size)), "consistency proof")
    _check_hash(first_root, "first root")
    _check_hash(second_root, "second root")
    if first_size == second_size:
        _expect_root(first_root, second_root, "second root of equal-size trees")
        return
    path = list(proof)
    if first_size & (first_size - 1) == 0:  # a power of two: the first root is its own node
        path.insert(0, first_root)
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0, "proof length was checked against the path"
    _expect_root(first_root, fr, f"first root (size {first_size})")
    _expect_root(second_root, sr, f"second root (size {second_size})")


def _expect_root(expected: bytes, computed: bytes, what: str) -> None:
    if computed != expected:
        raise RootMismatchError(
            f"consistency proof leads to {what} {computed.hex()}, expected {expected.hex()}",
            expected=expected,
            computed=computed,
        )


# --- Appending ----------------------------------------------------------------------------------


def frontier_ids(tree_size: int) -> list[NodeId]:
    """The perfect subtrees covering [0, tree_size): all an appender needs to know of the tree."""
    check_tree_size(tree_size, allow_zero=True)
    return perfect_subtrees(0, tree_size)


class TreeBuilder:
    """A growing tree known only by its frontier: O(log n) memory, amortised O(1) per leaf.

    Used both to append to storage and to recompute a whole ledger while streaming its leaves.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self, frontier: Sequence[bytes] = (), tree_size: int = 0) -> None:
        """Raises TreeSizeError when the frontier does not fit tree_size."""
        ids = frontier_ids(tree_size)
        if len(frontier) != len(ids):
            raise TreeSizeError(
                f"frontier has {len(frontier)} hashes, tree_size {tree_size} needs {len(ids)}",
                field="tree_size",
                value=tree_size,
            )
        self._size = tree_size
        self._stack = [(node.level, h) for node, h in zip(ids, frontier, strict=True)]

    @property
    def tree_size(self) -> int:
        return self._size

    @property
    def frontier(self) -> list[bytes]:
        return [h for _, h in self._stack]

    @property
    def root(self) -> bytes:
        return fold(self.frontier)

    def push(self, leaf_hash: bytes) -> list[tuple[NodeId, bytes]]:
        """Add one leaf; return the perfect nodes of level ≥ 1 it completes, lowest first.

        Raises TreeSizeError when the tree would grow past MAX_TREE_SIZE.
        """
        if self._size >= MAX_TREE_SIZE:
            raise TreeSizeError("the tree is full", field="tree_size", value=self._size)
        stack, size = self._stack, self._size
        level, acc = 0, leaf_hash
        created: list[tuple[NodeId, bytes]] = []
        while stack and stack[-1][0] == level:
            acc = node_hash(stack.pop()[1], acc)
            level += 1
            created.append((NodeId(level, size >> level), acc))
        stack.append((level, acc))
        self._size = size + 1
        return created


@dataclass(frozen=True)
class Appended:
    """What appending leaves produced: the new perfect nodes of level ≥ 1, the new frontier."""

    tree_size: int
    nodes: list[tuple[NodeId, bytes]]
    frontier: list[bytes]

    @property
    def root(self) -> bytes:
        return fold(self.frontier)


def append_leaves(
    frontier: Sequence[bytes], tree_size: int, new_leaf_hashes: Sequence[bytes]
) -> Appended:
    """Append leaf hashes to a tree known by its frontier hashes (those of frontier_ids).

    Returns every perfect node of level ≥ 1 that the new leaves complete, in completion order.
    Raises TreeSizeError when the frontier does not fit tree_size or the tree would grow past
    MAX_TREE_SIZE.
    """
    check_tree_size(tree_size + len(new_leaf_hashes), allow_zero=True)
    builder = TreeBuilder(frontier, tree_size)
    created: list[tuple[NodeId, bytes]] = []
    for h in new_leaf_hashes:
        created.extend(builder.push(h))
    return Appended(builder.tree_size, created, builder.frontier)
