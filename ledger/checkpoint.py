"""C2SP transparency log checkpoints (https://c2sp.org/tlog-checkpoint).

A checkpoint is the text of a signed note (ledger.note)::

    <origin>\\n
    <tree size, decimal>\\n
    <base64 of the RFC 6962 root hash>\\n
    [<extension line>\\n ...]

Extension lines are kept verbatim but not interpreted. Pure code: no I/O, no database.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import NoteFormatError, NoteSignatureError
from ledger.note import (
    NoteSigner,
    NoteVerifier,
    sign_note,
    strict_b64decode,
    verify_note,
    verify_note_text,
)

# Tree sizes are uint64 on the wire (as in every RFC 6962 / tlog implementation).
MAX_TREE_SIZE = 2**64 - 1
# RFC 6962 hashes with SHA-256.
ROOT_HASH_SIZE = 32
# Origin, size, root hash.
MIN_CHECKPOINT_LINES = 3

# ASCII digits only (int() would also take '+', '_', spaces and non-ASCII digits), no leading
# zero but for "0" itself, and at most the 20 digits of MAX_TREE_SIZE, so int() stays cheap.
_TREE_SIZE = re.compile("0|[1-9][0-9]{0,19}")
_CONTROL = re.compile("[\x00-\x1f]")


def _require_line(line: str, *, what: str) -> None:
    # Newline included: a line must not break the three-line layout.
    if not line:
        raise NoteFormatError(f"checkpoint {what} is empty")
    if _CONTROL.search(line):
        raise NoteFormatError(f"checkpoint {what} contains a newline or control character")


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash, and opaque extension lines.

    Construction raises NoteFormatError if origin or an extension line is empty or contains a
    newline or control character, tree_size is outside 0..MAX_TREE_SIZE, or root_hash is not
    ROOT_HASH_SIZE bytes.
    """

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_line(self.origin, what="origin")
        # bool is an int subclass, but True is not a tree size; a float would format as "1.0".
        size_is_int = isinstance(self.tree_size, int) and not isinstance(self.tree_size, bool)
        if not size_is_int or not 0 <= self.tree_size <= MAX_TREE_SIZE:
            raise NoteFormatError(f"tree size {self.tree_size} is outside 0..MAX_TREE_SIZE")
        if len(self.root_hash) != ROOT_HASH_SIZE:
            raise NoteFormatError(f"root hash is not {ROOT_HASH_SIZE} bytes")
        for line in self.extensions:
            _require_line(line, what="extension line")


def format_checkpoint(
    origin: str, tree_size: int, root_hash: bytes, *, extensions: Sequence[str] = ()
) -> str:
    """Return the checkpoint body (note text), every line ending in a newline.

    Raises NoteFormatError on an invalid field (see Checkpoint).
    """
    checkpoint = Checkpoint(origin, tree_size, root_hash, tuple(extensions))
    lines = [
        checkpoint.origin,
        str(checkpoint.tree_size),
        base64.b64encode(checkpoint.root_hash).decode("ascii"),
        *checkpoint.extensions,
    ]
    text = "".join(f"{line}\n" for line in lines)
    verify_note_text(text)  # a body that could not be signed is not worth returning
    return text


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (the text of a signed note, already verified or not).

    Raises NoteFormatError unless text is valid note text (ledger.note.verify_note_text) made
    of at least MIN_CHECKPOINT_LINES non-empty lines: a non-empty origin, a tree size in
    canonical decimal within MAX_TREE_SIZE, the canonical base64 of a ROOT_HASH_SIZE-byte root
    hash, then any non-empty extension lines.
    """
    verify_note_text(text)
    lines = text[:-1].split("\n")
    if len(lines) < MIN_CHECKPOINT_LINES:
        raise NoteFormatError(f"checkpoint has fewer than {MIN_CHECKPOINT_LINES} lines")
    origin, size_text, hash_text, *extensions = lines
    if not _TREE_SIZE.fullmatch(size_text):
        raise NoteFormatError("checkpoint tree size is not a canonical decimal number")
    root_hash = strict_b64decode(hash_text, what="checkpoint root hash")
    return Checkpoint(origin, int(size_text), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[NoteSigner]) -> str:
    """Return checkpoint as a note signed by every signer.

    Raises NoteFormatError as ledger.note.sign_note does.
    """
    text = format_checkpoint(
        checkpoint.origin,
        checkpoint.tree_size,
        checkpoint.root_hash,
        extensions=checkpoint.extensions,
    )
    return sign_note(text, signers)


def open_checkpoint(
    note: str | bytes, verifiers: Sequence[NoteVerifier], *, origin: str
) -> Checkpoint:
    """Verify a signed checkpoint from the log named origin and return it.

    The signature is checked first: the spec says the text is ignored until it verifies.
    Raises NoteFormatError if the note or its body is malformed, NoteSignatureError if it
    does not verify (see ledger.note.verify_note) or its origin is not the expected one.
    """
    verified = verify_note(note, verifiers)
    checkpoint = parse_checkpoint(verified.text)
    if checkpoint.origin != origin:
        raise NoteSignatureError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}"
        )
    return checkpoint
