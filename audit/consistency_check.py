"""Does a newer signed checkpoint extend an older one? (RFC 9162 section 2.1.4, offline.)

An auditor keeps the checkpoints it has seen (in receipts, or fetched) and later asks the log
for a consistency proof to a newer one. The verdict:

* ``consistent`` (exit 0): both checkpoints are signed by trusted keys, of the same log, and
  the proof shows the older tree is a prefix of the newer one;
* ``inconsistent`` (exit 1): the log contradicts itself: two signed trees of one size with
  different roots (a fork), a newer checkpoint smaller than the older one (a rollback), or a
  well-formed proof that does not lead to both signed roots (history rewritten);
* ``undecided`` (exit 2): the question cannot be answered from what was given: a checkpoint
  not signed by a trusted key (or with a bad signature: it is then not the log's statement),
  malformed, of another log, or a proof of the wrong shape.

Pure code: no database, no network.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ledger import merkle
from ledger.checkpoint import Checkpoint, parse_checkpoint
from ledger.errors import NoteError, ProofError, RootMismatchError
from ledger.note import NoteVerifier, verify_note
from signatures.canonical import JsonValue

EXIT_CONSISTENT, EXIT_INCONSISTENT, EXIT_UNDECIDED = 0, 1, 2


class ConsistencyStatus(StrEnum):
    CONSISTENT = "consistent"
    INCONSISTENT = "inconsistent"
    UNDECIDED = "undecided"


_EXIT_CODES = {
    ConsistencyStatus.CONSISTENT: EXIT_CONSISTENT,
    ConsistencyStatus.INCONSISTENT: EXIT_INCONSISTENT,
    ConsistencyStatus.UNDECIDED: EXIT_UNDECIDED,
}


@dataclass(frozen=True, kw_only=True)
class ConsistencyReport:
    """The verdict, why, and the two trees as far as they could be read."""

    status: ConsistencyStatus
    detail: str
    origin: str | None = None
    old_size: int | None = None
    new_size: int | None = None
    old_root: bytes | None = None
    new_root: bytes | None = None

    @property
    def consistent(self) -> bool:
        return self.status is ConsistencyStatus.CONSISTENT

    @property
    def exit_code(self) -> int:
        """0 consistent, 1 inconsistent (fork, rollback or rewrite), 2 cannot tell."""
        return _EXIT_CODES[self.status]

    def as_dict(self) -> dict[str, JsonValue]:
        """JSON-ready; roots in standard base64, as in checkpoints."""
        return {
            "status": self.status.value,
            "detail": self.detail,
            "origin": self.origin,
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": _b64(self.old_root),
            "new_root": _b64(self.new_root),
        }


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


_Verdict = tuple[ConsistencyStatus, str]
_UNDECIDED = ConsistencyStatus.UNDECIDED
_INCONSISTENT = ConsistencyStatus.INCONSISTENT


def _trusted(trusted_vkeys: Sequence[str]) -> list[NoteVerifier] | _Verdict:
    verifiers: list[NoteVerifier] = []
    for i, vkey in enumerate(trusted_vkeys):
        try:
            verifiers.append(NoteVerifier.from_vkey(vkey))
        except NoteError as exc:
            return _UNDECIDED, f"trusted key {i} is not a vkey: {exc}"
    if not verifiers:
        return _UNDECIDED, "no trusted ledger key was given"
    return verifiers


def _open(note: str, verifiers: Sequence[NoteVerifier], what: str) -> Checkpoint | _Verdict:
    try:
        return parse_checkpoint(verify_note(note, verifiers).text)
    except NoteError as exc:
        return _UNDECIDED, f"the {what} checkpoint is not usable: {exc}"


def _compare(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> _Verdict:
    if old.origin != new.origin:
        return _UNDECIDED, f"the checkpoints are of two logs: {old.origin!r} and {new.origin!r}"
    if old.tree_size > new.tree_size:
        return _INCONSISTENT, (
            f"the newer checkpoint ({new.tree_size}) is smaller than the older one "
            f"({old.tree_size}): the log shrank, or the two were given in the wrong order"
        )
    if old.tree_size == new.tree_size and old.root_hash != new.root_hash:
        return _INCONSISTENT, f"fork: two signed trees of size {old.tree_size} with other roots"
    if old.tree_size == 0:  # every tree extends the empty one
        if proof:
            return _UNDECIDED, "a proof from the empty tree must be empty"
        return ConsistencyStatus.CONSISTENT, "the older checkpoint is of the empty tree"
    try:
        merkle.verify_consistency(
            first_size=old.tree_size,
            second_size=new.tree_size,
            first_root=old.root_hash,
            second_root=new.root_hash,
            proof=proof,
        )
    except RootMismatchError as exc:
        return _INCONSISTENT, f"the log rewrote its history: {exc}"
    except ProofError as exc:  # a malformed answer proves nothing either way
        return _UNDECIDED, f"the proof is malformed: {exc}"
    return ConsistencyStatus.CONSISTENT, f"tree {old.tree_size} is a prefix of {new.tree_size}"


def check_consistency(
    old_note: str, new_note: str, proof: Sequence[bytes], *, trusted_vkeys: Sequence[str]
) -> ConsistencyReport:
    """Check that the checkpoint new_note extends old_note, with an RFC 9162 consistency proof.

    Both notes must be signed by keys among ``trusted_vkeys`` (C2SP vkey strings) and be of the
    same log. Never raises for bad input: the report says what failed (see the module docstring
    for the three verdicts).
    """
    verifiers = _trusted(trusted_vkeys)
    if isinstance(verifiers, tuple):
        return _report(verifiers)
    old = _open(old_note, verifiers, "older")
    if isinstance(old, tuple):
        return _report(old)
    new = _open(new_note, verifiers, "newer")
    if isinstance(new, tuple):
        return _report(new, old=old)
    return _report(_compare(old, new, proof), old=old, new=new)


def _report(
    verdict: _Verdict, *, old: Checkpoint | None = None, new: Checkpoint | None = None
) -> ConsistencyReport:
    status, detail = verdict
    return ConsistencyReport(
        status=status,
        detail=detail,
        origin=None if old is None else old.origin,
        old_size=None if old is None else old.tree_size,
        new_size=None if new is None else new.tree_size,
        old_root=None if old is None else old.root_hash,
        new_root=None if new is None else new.root_hash,
    )
