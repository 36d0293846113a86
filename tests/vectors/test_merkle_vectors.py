"""RFC 6962 known-answer vectors for the classic 8-leaf reference tree.

Source: transparency-dev/merkle, proof/verify_test.go (Apache-2.0), the same data the Certificate
Transparency implementations have used since the C++ log. Its leaf numbers are 1-based; ours are
0-based leaf indices. The mutations are the ones that file applies, each a named negative here.
"""

from __future__ import annotations

import pytest

from ledger import merkle
from ledger.errors import ProofError, ProofLengthError, RootMismatchError, TreeSizeError

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
LEAF_HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]

ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


# (leaf_index, tree_size, proof)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        _h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        _h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]

# (first_size, second_size, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        _h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        7,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle.root([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_root_of_every_prefix(size: int) -> None:
    assert merkle.root(LEAF_HASHES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize("size", range(1, 9))
def test_root_from_stored_nodes_plan_matches(size: int) -> None:
    # The storage path: decompose into perfect subtrees, fetch, fold.
    nodes = merkle.perfect_subtrees(0, size)
    hashes = {n: merkle.subtree_hash(n, LEAF_HASHES) for n in nodes}
    assert merkle.fold([hashes[n] for n in nodes]) == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proof_generated_matches_vector(
    index: int, size: int, proof: list[bytes]
) -> None:
    assert merkle.inclusion_proof(index, LEAF_HASHES[:size]) == proof


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proof_vector_verifies(index: int, size: int, proof: list[bytes]) -> None:
    merkle.verify_inclusion(
        leaf_hash=LEAF_HASHES[index],
        leaf_index=index,
        tree_size=size,
        proof=proof,
        root=ROOTS[size - 1],
    )


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proof_generated_matches_vector(
    first: int, second: int, proof: list[bytes]
) -> None:
    assert merkle.consistency_proof(first, LEAF_HASHES[:second]) == proof


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proof_vector_verifies(first: int, second: int, proof: list[bytes]) -> None:
    merkle.verify_consistency(
        first_size=first,
        second_size=second,
        first_root=ROOTS[first - 1],
        second_root=ROOTS[second - 1],
        proof=proof,
    )


def _flip(h: bytes, bit: int) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def _inclusion_mutations(index: int, size: int, proof: list[bytes]):  # type: ignore[no-untyped-def]
    root, leaf = ROOTS[size - 1], LEAF_HASHES[index]
    yield "leaf_index_minus_1", (index - 1, size, root, leaf, proof)
    yield "leaf_index_plus_1", (index + 1, size, root, leaf, proof)
    yield "leaf_index_xor_2", (index ^ 2, size, root, leaf, proof)
    yield "tree_size_doubled", (index, size * 2, root, leaf, proof)
    yield "tree_size_halved", (index, size // 2, root, leaf, proof)
    yield "wrong_leaf", (index, size, root, b"WrongLeaf", proof)
    yield "empty_tree_root", (index, size, merkle.EMPTY_ROOT, leaf, proof)
    yield "random_root", (index, size, SOME_HASH, leaf, proof)
    yield "trailing_garbage", (index, size, root, leaf, [*proof, b""])
    yield "trailing_root", (index, size, root, leaf, [*proof, root])
    yield "preceding_garbage", (index, size, root, leaf, [b"", *proof])
    yield "preceding_root", (index, size, root, leaf, [root, *proof])
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], 3)
        yield f"proof_{i}_bit_3_flipped", (index, size, root, leaf, bad)
    if proof:
        yield "removed_component", (index, size, root, leaf, proof[:-1])
    if len(proof) > 1:
        yield "inserted_component", (index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]])


INCLUSION_NEGATIVES = [
    pytest.param(*args, id=f"leaf{index}_size{size}-{name}")
    for index, size, proof in INCLUSION
    if proof
    for name, args in _inclusion_mutations(index, size, proof)
]


@pytest.mark.parametrize(("index", "size", "root", "leaf", "proof"), INCLUSION_NEGATIVES)
def test_inclusion_mutation_is_refused(
    index: int, size: int, root: bytes, leaf: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(ProofError):
        merkle.verify_inclusion(
            leaf_hash=leaf, leaf_index=index, tree_size=size, proof=proof, root=root
        )


def _consistency_mutations(first: int, second: int, proof: list[bytes]):  # type: ignore[no-untyped-def]
    r1, r2 = ROOTS[first - 1], ROOTS[second - 1]
    yield "first_size_minus_1", (first - 1, second, r1, r2, proof)
    yield "first_size_plus_1", (first + 1, second, r1, r2, proof)
    yield "first_size_xor_2", (first ^ 2, second, r1, r2, proof)
    yield "second_size_doubled", (first, second * 2, r1, r2, proof)
    yield "second_size_halved", (first, second // 2, r1, r2, proof)
    yield "wrong_first_root", (first, second, b"WrongRoot", r2, proof)
    yield "wrong_second_root", (first, second, r1, b"WrongRoot", proof)
    yield "swapped_roots", (first, second, r2, r1, proof)
    yield "empty_proof", (first, second, r1, r2, [])
    yield "trailing_garbage", (first, second, r1, r2, [*proof, b""])
    yield "trailing_first_root", (first, second, r1, r2, [*proof, r1])
    yield "trailing_second_root", (first, second, r1, r2, [*proof, r2])
    yield "preceding_garbage", (first, second, r1, r2, [b"", *proof])
    yield "preceding_first_root", (first, second, r1, r2, [r1, *proof])
    yield "preceding_second_root", (first, second, r1, r2, [r2, *proof])
    yield "preceding_proof_0", (first, second, r1, r2, [proof[0], *proof])
    yield "truncated_proof", (first, second, r1, r2, proof[:-1])
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], 4)
        yield f"proof_{i}_bit_4_flipped", (first, second, r1, r2, bad)


CONSISTENCY_NEGATIVES = [
    pytest.param(*args, id=f"{first}_to_{second}-{name}")
    for first, second, proof in CONSISTENCY
    if proof
    for name, args in _consistency_mutations(first, second, proof)
]


@pytest.mark.parametrize(("first", "second", "r1", "r2", "proof"), CONSISTENCY_NEGATIVES)
def test_consistency_mutation_is_refused(
    first: int, second: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(ProofError):
        merkle.verify_consistency(
            first_size=first, second_size=second, first_root=r1, second_root=r2, proof=proof
        )


def test_single_leaf_tree_root_is_leaf_hash_and_proof_empty() -> None:
    h = merkle.leaf_hash(b"data")
    merkle.verify_inclusion(leaf_hash=h, leaf_index=0, tree_size=1, proof=[], root=h)
    with pytest.raises(ProofLengthError):
        merkle.verify_inclusion(leaf_hash=h, leaf_index=0, tree_size=1, proof=[], root=b"")
    with pytest.raises(ProofLengthError):
        merkle.verify_inclusion(leaf_hash=b"", leaf_index=0, tree_size=1, proof=[], root=h)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (-1, 4), (0, 2**63)])
def test_inclusion_out_of_bounds_is_tree_size_error(index: int, size: int) -> None:
    with pytest.raises(TreeSizeError):
        merkle.verify_inclusion(
            leaf_hash=SOME_HASH, leaf_index=index, tree_size=size, proof=[], root=SOME_HASH
        )


@pytest.mark.parametrize(("first", "second"), [(0, 0), (0, 1), (1, 0), (2, 1), (1, 2**63)])
def test_consistency_out_of_bounds_is_tree_size_error(first: int, second: int) -> None:
    with pytest.raises(TreeSizeError):
        merkle.verify_consistency(
            first_size=first,
            second_size=second,
            first_root=SOME_HASH,
            second_root=SOME_HASH,
            proof=[],
        )


def test_equal_sizes_with_different_roots_is_root_mismatch() -> None:
    with pytest.raises(RootMismatchError):
        merkle.verify_consistency(
            first_size=3, second_size=3, first_root=ROOTS[2], second_root=ROOTS[3], proof=[]
        )


def test_equal_sizes_with_nonempty_proof_is_length_error() -> None:
    with pytest.raises(ProofLengthError):
        merkle.verify_consistency(
            first_size=3,
            second_size=3,
            first_root=ROOTS[2],
            second_root=ROOTS[2],
            proof=[merkle.EMPTY_ROOT],
        )
