"""audit.consistency_check: RFC 9162 consistency between two signed checkpoints, offline."""

from __future__ import annotations

import json

import pytest

from audit.consistency_check import (
    EXIT_CONSISTENT,
    EXIT_INCONSISTENT,
    EXIT_UNDECIDED,
    ConsistencyStatus,
    check_consistency,
)
from ledger import merkle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import NoteSigner

ORIGIN = "pishkhan.test/ledger"
SIGNER = NoteSigner.generate(ORIGIN)
VKEYS = [SIGNER.verifier.vkey]
LEAVES = [merkle.leaf_hash(f"leaf {i}".encode()) for i in range(20)]
FORKED = [*LEAVES[:6], *(merkle.leaf_hash(f"forked {i}".encode()) for i in range(6, 20))]


def note(
    leaves: list[bytes], size: int, *, signer: NoteSigner = SIGNER, origin: str = ORIGIN
) -> str:
    return sign_checkpoint(Checkpoint(origin, size, merkle.root(leaves[:size])), [signer])


def proof(leaves: list[bytes], first: int, second: int) -> list[bytes]:
    return merkle.consistency_proof(first, leaves[:second])


@pytest.mark.parametrize(("first", "second"), [(1, 1), (1, 2), (3, 7), (4, 8), (6, 20), (20, 20)])
def test_consistent(first: int, second: int) -> None:
    report = check_consistency(
        note(LEAVES, first), note(LEAVES, second), proof(LEAVES, first, second), trusted_vkeys=VKEYS
    )
    assert report.status is ConsistencyStatus.CONSISTENT, report.detail
    assert report.exit_code == EXIT_CONSISTENT
    assert (report.old_size, report.new_size, report.origin) == (first, second, ORIGIN)


def test_report_as_dict_is_json() -> None:
    report = check_consistency(
        note(LEAVES, 3), note(LEAVES, 7), proof(LEAVES, 3, 7), trusted_vkeys=VKEYS
    )
    body = json.loads(json.dumps(report.as_dict()))
    assert body["status"] == "consistent"
    assert body["old_size"] == 3 and body["new_size"] == 7
    assert isinstance(body["old_root"], str) and body["old_root"].endswith("=")


def test_empty_old_tree_is_extended_by_any_tree() -> None:
    report = check_consistency(note(LEAVES, 0), note(LEAVES, 5), [], trusted_vkeys=VKEYS)
    assert report.status is ConsistencyStatus.CONSISTENT


# --- inconsistent --------------------------------------------------------------------------------


def test_fork_same_size_other_root() -> None:
    report = check_consistency(note(LEAVES, 9), note(FORKED, 9), [], trusted_vkeys=VKEYS)
    assert report.status is ConsistencyStatus.INCONSISTENT
    assert report.exit_code == EXIT_INCONSISTENT
    assert "fork" in report.detail


def test_history_rewritten() -> None:
    # The new tree does not extend the old one; its own (valid) proof leads elsewhere.
    report = check_consistency(
        note(LEAVES, 9), note(FORKED, 15), proof(FORKED, 9, 15), trusted_vkeys=VKEYS
    )
    assert report.status is ConsistencyStatus.INCONSISTENT
    assert "rewrote" in report.detail


def test_rollback_new_smaller_than_old() -> None:
    report = check_consistency(note(LEAVES, 9), note(LEAVES, 5), [], trusted_vkeys=VKEYS)
    assert report.status is ConsistencyStatus.INCONSISTENT


def test_proof_hash_flipped() -> None:
    hashes = proof(LEAVES, 3, 7)
    hashes[0] = bytes([hashes[0][0] ^ 1]) + hashes[0][1:]
    report = check_consistency(note(LEAVES, 3), note(LEAVES, 7), hashes, trusted_vkeys=VKEYS)
    assert report.status is ConsistencyStatus.INCONSISTENT


# --- undecided -----------------------------------------------------------------------------------


def test_proof_truncated() -> None:
    hashes = proof(LEAVES, 3, 7)[:-1]
    report = check_consistency(note(LEAVES, 3), note(LEAVES, 7), hashes, trusted_vkeys=VKEYS)
    assert report.status is ConsistencyStatus.UNDECIDED
    assert report.exit_code == EXIT_UNDECIDED


def test_proof_missing_when_sizes_differ() -> None:
    report = check_consistency(note(LEAVES, 3), note(LEAVES, 7), [], trusted_vkeys=VKEYS)
    assert report.status is ConsistencyStatus.UNDECIDED


def test_proof_hash_of_wrong_size() -> None:
    hashes = [h[:31] for h in proof(LEAVES, 3, 7)]
    report = check_consistency(note(LEAVES, 3), note(LEAVES, 7), hashes, trusted_vkeys=VKEYS)
    assert report.status is ConsistencyStatus.UNDECIDED


def test_new_checkpoint_signed_by_an_untrusted_key() -> None:
    stranger = NoteSigner.generate(ORIGIN)
    report = check_consistency(
        note(LEAVES, 3), note(LEAVES, 7, signer=stranger), proof(LEAVES, 3, 7), trusted_vkeys=VKEYS
    )
    assert report.status is ConsistencyStatus.UNDECIDED
    assert (report.old_size, report.new_size) == (3, None)


def test_old_checkpoint_with_a_bad_signature() -> None:
    old = note(LEAVES, 3).replace("\n3\n", "\n4\n", 1)
    report = check_consistency(old, note(LEAVES, 7), proof(LEAVES, 3, 7), trusted_vkeys=VKEYS)
    assert report.status is ConsistencyStatus.UNDECIDED
    assert "older" in report.detail


def test_checkpoints_of_two_logs() -> None:
    other = NoteSigner.generate("other.test/log")
    report = check_consistency(
        note(LEAVES, 3),
        note(LEAVES, 7, signer=other, origin="other.test/log"),
        proof(LEAVES, 3, 7),
        trusted_vkeys=[*VKEYS, other.verifier.vkey],
    )
    assert report.status is ConsistencyStatus.UNDECIDED
    assert "two logs" in report.detail


def test_malformed_note() -> None:
    report = check_consistency("not a note", note(LEAVES, 7), [], trusted_vkeys=VKEYS)
    assert report.status is ConsistencyStatus.UNDECIDED


@pytest.mark.parametrize("vkeys", [[], ["nonsense"]])
def test_no_usable_trusted_key(vkeys: list[str]) -> None:
    report = check_consistency(
        note(LEAVES, 3), note(LEAVES, 7), proof(LEAVES, 3, 7), trusted_vkeys=vkeys
    )
    assert report.status is ConsistencyStatus.UNDECIDED
    assert report.old_size is None
