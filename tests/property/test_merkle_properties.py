"""Hypothesis: proofs over random trees verify, and any one-bit change makes them fail.

A changed tree size is checked against the root of the tree *of that size* (the same log grown or
shrunk), because that is what binds a size in practice: the signed checkpoint carries size and
root together. An RFC 6962 proof alone does not pin the size: the proof for leaf 0 of a 5-leaf
tree also "verifies" as a 7-leaf proof against the 5-leaf root, in every RFC implementation.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import ProofError

MAX_LEAVES = 70  # covers several levels, with both perfect and ragged right edges
POOL = 256  # leaves the log may hold when a size is mutated by one bit (70 ^ 128 < 256)


def _leaf_hashes(n: int, salt: int) -> list[bytes]:
    return [merkle.leaf_hash(hashlib.sha256(f"{salt}:{i}".encode()).digest()) for i in range(n)]


def _root_of_size(size: int, salt: int) -> bytes:
    """The root of the same log at another size; any 32 bytes when no such tree exists."""
    if 1 <= size <= POOL:
        return merkle.root(_leaf_hashes(size, salt))
    return merkle.EMPTY_ROOT


trees = st.tuples(st.integers(1, MAX_LEAVES), st.integers(0, 2**32))


def _flip_bit(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
    return bytes(data)


@given(trees, st.data())
def test_every_inclusion_proof_verifies(tree: tuple[int, int], data: st.DataObject) -> None:
    n, salt = tree
    hashes = _leaf_hashes(n, salt)
    index = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(index, hashes)
    merkle.verify_inclusion(
        leaf_hash=hashes[index],
        leaf_index=index,
        tree_size=n,
        proof=proof,
        root=merkle.root(hashes),
    )


@given(trees, st.data())
def test_inclusion_one_bit_change_fails(tree: tuple[int, int], data: st.DataObject) -> None:
    n, salt = tree
    hashes = _leaf_hashes(n, salt)
    index = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(index, hashes)
    root = merkle.root(hashes)
    target = data.draw(st.sampled_from(["proof", "root", "leaf", "index", "size"]))
    assume(target != "proof" or proof)
    bit = data.draw(st.integers(0, 255))
    args = {
        "leaf_hash": hashes[index],
        "leaf_index": index,
        "tree_size": n,
        "proof": proof,
        "root": root,
    }
    if target == "proof":
        i = data.draw(st.integers(0, len(proof) - 1))
        args["proof"] = [*proof[:i], _flip_bit(proof[i], bit), *proof[i + 1 :]]
    elif target == "root":
        args["root"] = _flip_bit(root, bit)
    elif target == "leaf":
        args["leaf_hash"] = _flip_bit(hashes[index], bit)
    elif target == "index":
        args["leaf_index"] = index ^ (1 << (bit % 8))
    else:
        args["tree_size"] = n ^ (1 << (bit % 8))
        args["root"] = _root_of_size(args["tree_size"], salt)  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(**args)  # type: ignore[arg-type]


@given(trees, st.data())
def test_every_consistency_proof_verifies(tree: tuple[int, int], data: st.DataObject) -> None:
    n, salt = tree
    hashes = _leaf_hashes(n, salt)
    first = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(first, hashes)
    merkle.verify_consistency(
        first_size=first,
        second_size=n,
        first_root=merkle.root(hashes[:first]),
        second_root=merkle.root(hashes),
        proof=proof,
    )


@given(trees, st.data())
def test_consistency_one_bit_change_fails(tree: tuple[int, int], data: st.DataObject) -> None:
    n, salt = tree
    assume(n >= 2)
    hashes = _leaf_hashes(n, salt)
    first = data.draw(st.integers(1, n - 1))
    proof = merkle.consistency_proof(first, hashes)
    args = {
        "first_size": first,
        "second_size": n,
        "first_root": merkle.root(hashes[:first]),
        "second_root": merkle.root(hashes),
        "proof": proof,
    }
    target = data.draw(st.sampled_from(["proof", "first_root", "second_root", "first", "second"]))
    bit = data.draw(st.integers(0, 255))
    if target == "proof":
        i = data.draw(st.integers(0, len(proof) - 1))
        args["proof"] = [*proof[:i], _flip_bit(proof[i], bit), *proof[i + 1 :]]
    elif target in ("first_root", "second_root"):
        args[target] = _flip_bit(args[target], bit)  # type: ignore[arg-type]
    elif target == "first":
        args["first_size"] = first ^ (1 << (bit % 8))
        args["first_root"] = _root_of_size(args["first_size"], salt)  # type: ignore[arg-type]
    else:
        args["second_size"] = n ^ (1 << (bit % 8))
        args["second_root"] = _root_of_size(args["second_size"], salt)  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        merkle.verify_consistency(**args)  # type: ignore[arg-type]


@given(trees, st.lists(st.integers(1, 40), max_size=5))
def test_appending_in_batches_matches_reference(tree: tuple[int, int], batches: list[int]) -> None:
    """The incremental appender yields the reference root and exactly the reference nodes."""
    n, salt = tree
    hashes = _leaf_hashes(n + sum(batches), salt)
    state = merkle.append_leaves([], 0, hashes[:n])
    nodes = dict(state.nodes)
    for b in batches:
        size = state.tree_size
        frontier_ids = merkle.frontier_ids(size)
        assert len(frontier_ids) == len(state.frontier)
        state = merkle.append_leaves(state.frontier, size, hashes[size : size + b])
        for node, h in state.nodes:
            assert node not in nodes, "a perfect node is completed exactly once"
            nodes[node] = h
        assert state.root == merkle.root(hashes[: state.tree_size])
    for node, h in nodes.items():
        assert node.level >= 1
        assert h == merkle.subtree_hash(node, hashes)
    # every perfect node of level >= 1 inside the tree was produced
    size = state.tree_size
    expected = {merkle.NodeId(lv, i) for lv in range(1, 64) for i in range(size >> lv)}
    assert set(nodes) == expected
