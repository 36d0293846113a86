"""Hypothesis: signed notes and checkpoints round-trip, and any one-bit change is refused.

A flipped bit in the signed text, in a signature (key ID included) or anywhere at all in the
encoded note must make verification raise; which error depends on what the flip produced
(invalid UTF-8 or a control character is a format error, a changed text a signature error).
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import (
    MAX_TREE_SIZE,
    ROOT_HASH_SIZE,
    Checkpoint,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from ledger.errors import NoteError, NoteSignatureError
from ledger.note import NoteSigner, is_valid_key_name, sign_note, split_note, verify_note

EXAMPLES = settings(max_examples=200)

_CONTROLS_BUT_NEWLINE = "".join(chr(c) for c in range(0x20) if c != 0x0A)
_CONTROLS = _CONTROLS_BUT_NEWLINE + "\n"

# Any UTF-8-encodable character but the forbidden controls; newlines give blank lines too.
texts = st.text(
    st.characters(codec="utf-8", exclude_characters=_CONTROLS_BUT_NEWLINE), max_size=200
).map(lambda t: t + "\n")
lines = st.text(st.characters(codec="utf-8", exclude_characters=_CONTROLS), min_size=1, max_size=40)
names = st.text(
    st.characters(codec="utf-8", exclude_characters=_CONTROLS), min_size=1, max_size=20
).filter(is_valid_key_name)
seeds = st.binary(min_size=32, max_size=32)


def _signer(name: str, seed: bytes) -> NoteSigner:
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(seed))


signers = st.lists(
    st.builds(_signer, names, seeds), min_size=1, max_size=3, unique_by=lambda s: s.key_id
)


def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


@EXAMPLES
@given(texts, signers)
def test_sign_verify_round_trip(text: str, keys: list[NoteSigner]) -> None:
    note = sign_note(text, keys)
    verified = verify_note(note, [k.verifier for k in keys])
    assert verified.text == text
    assert verified.signed_by == tuple(dict.fromkeys(k.name for k in keys))
    assert split_note(note)[0] == text


@EXAMPLES
@given(texts, st.builds(_signer, names, seeds), st.data())
def test_flipping_a_bit_of_the_signed_text_is_refused(
    text: str, key: NoteSigner, data: st.DataObject
) -> None:
    encoded = sign_note(text, [key]).encode()
    text_bits = len(text.encode()) * 8
    bit = data.draw(st.integers(0, text_bits - 1), label="bit")
    try:
        verify_note(_flip(encoded, bit), [key.verifier])
    except NoteError:
        return
    raise AssertionError(f"bit {bit} of the text flipped, yet the note verified")


@EXAMPLES
@given(texts, st.builds(_signer, names, seeds), st.data())
def test_flipping_a_bit_of_the_signature_is_refused(
    text: str, key: NoteSigner, data: st.DataObject
) -> None:
    _, (signature,) = split_note(sign_note(text, [key]))
    raw = signature.key_id + signature.signature
    bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    flipped = base64.b64encode(_flip(raw, bit)).decode()
    note = f"{text}\n\u2014 {key.name} {flipped}\n"
    try:
        verify_note(note, [key.verifier])
    except NoteSignatureError:  # a bad signature, or (key ID bits) an unknown key
        return
    raise AssertionError(f"bit {bit} of the signature flipped, yet the note verified")


@EXAMPLES
@given(texts, st.builds(_signer, names, seeds), st.data())
def test_flipping_any_bit_of_the_note_is_refused(
    text: str, key: NoteSigner, data: st.DataObject
) -> None:
    # One signer: a flip in another key's line could rightly leave a note that verifies,
    # since signatures from keys that are not trusted (any more) are ignored.
    encoded = sign_note(text, [key]).encode()
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1), label="bit")
    try:
        verify_note(_flip(encoded, bit), [key.verifier])
    except NoteError:
        return
    raise AssertionError(f"bit {bit} of the note flipped, yet the note verified")


checkpoints = st.builds(
    Checkpoint,
    origin=lines,
    tree_size=st.integers(0, MAX_TREE_SIZE),
    root_hash=st.binary(min_size=ROOT_HASH_SIZE, max_size=ROOT_HASH_SIZE),
    extensions=st.lists(lines, max_size=3).map(tuple),
)


@EXAMPLES
@given(checkpoints, st.builds(_signer, names, seeds))
def test_checkpoint_round_trip(checkpoint: Checkpoint, key: NoteSigner) -> None:
    text = format_checkpoint(
        checkpoint.origin,
        checkpoint.tree_size,
        checkpoint.root_hash,
        extensions=checkpoint.extensions,
    )
    assert parse_checkpoint(text) == checkpoint
    note = sign_checkpoint(checkpoint, [key])
    assert open_checkpoint(note, [key.verifier], origin=checkpoint.origin) == checkpoint
