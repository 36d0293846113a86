"""Errors raised by the ledger. They carry data and know nothing of HTTP.

`api/` alone maps them to problem+json, in one table.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every ledger error."""


# --- Merkle proofs -------------------------------------------------------------------------------


class ProofError(LedgerError):
    """A Merkle proof, or the request for one, is not acceptable."""


class TreeSizeError(ProofError):
    """A tree size, leaf index or size pair is out of bounds (checked before any hashing)."""

    def __init__(self, message: str, *, field: str, value: int) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class ProofLengthError(ProofError):
    """A proof has the wrong number of hashes for its index and sizes, or a hash of wrong size."""

    def __init__(self, message: str, *, expected: int, actual: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class RootMismatchError(ProofError):
    """The root computed from a proof is not the root it was checked against."""

    def __init__(self, message: str, *, expected: bytes, computed: bytes) -> None:
        super().__init__(message)
        self.expected = expected
        self.computed = computed


# --- Signed notes and checkpoints ----------------------------------------------------------------


class NoteError(LedgerError):
    """A signed note, a checkpoint body or a verifier key is malformed or does not verify."""


class NoteFormatError(NoteError):
    """The text is not a well-formed signed note, checkpoint or vkey."""


class NoteSignatureError(NoteError):
    """No signature on the note verifies with a trusted key, or one from a known key is bad."""


# --- Storage -------------------------------------------------------------------------------------


class NotFoundError(LedgerError):
    """The requested entry, checkpoint or size does not exist (yet)."""

    def __init__(self, message: str, *, field: str, value: int) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class LedgerLimitError(LedgerError):
    """A named limit (batch size, leaf size) was exceeded."""

    def __init__(self, message: str, *, limit_name: str, limit: int, actual: int) -> None:
        super().__init__(message)
        self.limit_name = limit_name
        self.limit = limit
        self.actual = actual


class StorageInconsistentError(LedgerError):
    """Stored rows contradict each other (a missing node, a head that disagrees with entries).

    Raised instead of answering from a ledger that may have been tampered with: fail closed.
    """


# --- Leaf and receipt formats (ledger.leaf, ledger.receipt; docs/FORMATS.md) ---------------------


class LeafFormatError(LedgerError):
    """Leaf bytes or a leaf's values break the leaf format.

    ``member`` names the offending leaf member ("" for the leaf as a whole) and ``rule`` the rule
    it breaks, e.g. "required", "unknown_member", "wrong_type", "invalid_format", "non_canonical".
    """

    def __init__(self, message: str, *, member: str, rule: str) -> None:
        super().__init__(message)
        self.member = member
        self.rule = rule


class ReceiptFormatError(LedgerError):
    """A receipt breaks the receipt format.

    ``member`` is the RFC 6901 JSON Pointer of the offending member ("" for the receipt as a
    whole, e.g. "/signer_key/events/2/leaf_index") and ``rule`` the rule it breaks, e.g.
    "required", "too_large", "invalid_base64".
    """

    def __init__(self, message: str, *, member: str, rule: str) -> None:
        super().__init__(message)
        self.member = member
        self.rule = rule
