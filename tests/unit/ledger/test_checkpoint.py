"""Unit tests for ledger.checkpoint: formatting, parsing, signing and every rejection rule."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import (
    MAX_TREE_SIZE,
    ROOT_HASH_SIZE,
    Checkpoint,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from ledger.errors import NoteFormatError, NoteSignatureError
from ledger.note import MAX_NOTE_BYTES, NoteSigner, sign_note, split_note, verify_note

ORIGIN = "pishkhan.example/ledger"
ROOT = hashlib.sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()
# The RFC 6962 root of the empty tree is SHA-256 of nothing.
EMPTY_ROOT = hashlib.sha256(b"").digest()
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# 32 bytes take 43 characters and a '=': the last character carries 2 unused bits. Setting
# one gives a string that lenient decoders map to the same hash, so it must be refused.
ROOT_B64_NON_CANONICAL = (
    ROOT_B64[:-2] + _B64_ALPHABET[_B64_ALPHABET.index(ROOT_B64[-2]) ^ 0b01] + "="
)


def log_signer(seed: int = 1) -> NoteSigner:
    return NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


# --- Formatting ----------------------------------------------------------------------------------


def test_format_checkpoint() -> None:
    assert format_checkpoint(ORIGIN, 42, ROOT) == f"{ORIGIN}\n42\n{ROOT_B64}\n"


def test_format_empty_tree() -> None:
    assert format_checkpoint(ORIGIN, 0, EMPTY_ROOT) == (
        f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )


def test_format_with_extensions() -> None:
    text = format_checkpoint(ORIGIN, 7, ROOT, extensions=["ext one", "\u2014 two"])
    assert text == f"{ORIGIN}\n7\n{ROOT_B64}\next one\n\u2014 two\n"


def test_format_maximum_tree_size() -> None:
    assert "\n18446744073709551615\n" in format_checkpoint(ORIGIN, MAX_TREE_SIZE, ROOT)


@pytest.mark.parametrize(
    ("origin", "tree_size", "root_hash", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("a\rb", 1, ROOT, ()),
        ("a\tb", 1, ROOT, ()),
        (ORIGIN, -1, ROOT, ()),
        (ORIGIN, MAX_TREE_SIZE + 1, ROOT, ()),
        (ORIGIN, True, ROOT, ()),
        (ORIGIN, 1.0, ROOT, ()),
        (ORIGIN, 1, ROOT[:-1], ()),
        (ORIGIN, 1, ROOT + b"\x00", ()),
        (ORIGIN, 1, b"", ()),
        (ORIGIN, 1, ROOT, ("",)),
        (ORIGIN, 1, ROOT, ("two\nlines",)),
        (ORIGIN, 1, ROOT, ("nul\x00",)),
        ("\ud800", 1, ROOT, ()),
    ],
    ids=[
        "empty_origin",
        "newline_in_origin",
        "carriage_return_in_origin",
        "tab_in_origin",
        "negative_size",
        "size_over_uint64",
        "bool_size",
        "float_size",
        "short_hash",
        "long_hash",
        "empty_hash",
        "empty_extension",
        "newline_in_extension",
        "control_in_extension",
        "surrogate_origin",
    ],
)
def test_format_rejections(
    origin: str, tree_size: int, root_hash: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(NoteFormatError):
        format_checkpoint(origin, tree_size, root_hash, extensions=extensions)


def test_format_rejects_a_body_too_large_to_sign() -> None:
    with pytest.raises(NoteFormatError, match="MAX_NOTE_BYTES"):
        format_checkpoint(ORIGIN, 1, ROOT, extensions=["x" * MAX_NOTE_BYTES])


# --- Parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint(ORIGIN, 0, EMPTY_ROOT),
        Checkpoint(ORIGIN, 1, ROOT),
        Checkpoint(ORIGIN, MAX_TREE_SIZE, ROOT),
        Checkpoint("origin with spaces + plus", 10, ROOT),  # only a SHOULD in the spec
        Checkpoint(ORIGIN, 5, ROOT, ("one",)),
        Checkpoint(ORIGIN, 5, ROOT, ("one", "two", "\u2014 three")),
    ],
    ids=["empty_tree", "one_leaf", "max_size", "free_form_origin", "one_ext", "three_ext"],
)
def test_parse_round_trip(checkpoint: Checkpoint) -> None:
    text = format_checkpoint(
        checkpoint.origin,
        checkpoint.tree_size,
        checkpoint.root_hash,
        extensions=checkpoint.extensions,
    )
    assert parse_checkpoint(text) == checkpoint


def _body(origin: str = ORIGIN, size: str = "42", root: str = ROOT_B64, *rest: str) -> str:
    return "".join(f"{line}\n" for line in (origin, size, root, *rest))


BAD_BODIES = {
    "empty": "",
    "one_line": f"{ORIGIN}\n",
    "two_lines": f"{ORIGIN}\n42\n",
    "missing_final_newline": _body()[:-1],
    "crlf": _body().replace("\n", "\r\n"),
    "empty_origin": _body(""),
    "leading_blank_line": "\n" + _body(),
    "trailing_blank_line": _body() + "\n",
    "empty_extension_line": _body(ORIGIN, "42", ROOT_B64, "ext", "", "more"),
    "control_in_origin": _body("log\x01"),
    "size_empty": _body(ORIGIN, ""),
    "size_leading_zero": _body(ORIGIN, "042"),
    "size_double_zero": _body(ORIGIN, "00"),
    "size_plus_sign": _body(ORIGIN, "+42"),
    "size_minus_sign": _body(ORIGIN, "-42"),
    "size_minus_zero": _body(ORIGIN, "-0"),
    "size_leading_space": _body(ORIGIN, " 42"),
    "size_trailing_space": _body(ORIGIN, "42 "),
    "size_underscore": _body(ORIGIN, "4_2"),
    "size_hex": _body(ORIGIN, "0x2a"),
    "size_exponent": _body(ORIGIN, "4e2"),
    "size_decimal_point": _body(ORIGIN, "42.0"),
    "size_non_ascii_digits": _body(ORIGIN, "\u0664\u0662"),
    "size_fullwidth_digits": _body(ORIGIN, "\uff14\uff12"),
    "size_over_uint64": _body(ORIGIN, str(MAX_TREE_SIZE + 1)),
    "size_21_digits": _body(ORIGIN, "1" * 21),
    "size_huge": _body(ORIGIN, "9" * 5000),
    "hash_empty": _body(ORIGIN, "42", ""),
    "hash_not_base64": _body(ORIGIN, "42", "ThisIsn'tBase64"),
    "hash_missing_padding": _body(ORIGIN, "42", ROOT_B64.rstrip("=")),
    "hash_extra_padding": _body(ORIGIN, "42", ROOT_B64 + "="),
    "hash_urlsafe": _body(ORIGIN, "42", base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode()),
    "hash_non_canonical_bits": _body(ORIGIN, "42", ROOT_B64_NON_CANONICAL),
    "hash_whitespace": _body(ORIGIN, "42", ROOT_B64[:20] + " " + ROOT_B64[20:]),
    "hash_31_bytes": _body(ORIGIN, "42", base64.b64encode(ROOT[:-1]).decode()),
    "hash_33_bytes": _body(ORIGIN, "42", base64.b64encode(ROOT + b"\x00").decode()),
    "hash_hex": _body(ORIGIN, "42", ROOT.hex()),
}


def test_bad_body_fixtures_are_what_they_claim() -> None:
    # Each mutation must spoil only the part it names.
    assert parse_checkpoint(_body()) == Checkpoint(ORIGIN, 42, ROOT)
    assert base64.b64decode(ROOT_B64_NON_CANONICAL) == ROOT  # Python itself is lenient here
    assert ROOT_B64_NON_CANONICAL != ROOT_B64
    assert "+" in base64.b64encode(b"\xfb\xff" * 16).decode()


@pytest.mark.parametrize("text", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_parse_rejections(text: str) -> None:
    with pytest.raises(NoteFormatError):
        parse_checkpoint(text)


def test_checkpoint_is_immutable_and_hashable() -> None:
    checkpoint = parse_checkpoint(_body(ORIGIN, "42", ROOT_B64, "ext"))
    assert hash(checkpoint) == hash(Checkpoint(ORIGIN, 42, ROOT, ("ext",)))
    with pytest.raises(AttributeError):
        checkpoint.tree_size = 43  # type: ignore[misc]


# --- Signing and opening -------------------------------------------------------------------------


def test_sign_and_open_round_trip() -> None:
    signer = log_signer()
    checkpoint = Checkpoint(ORIGIN, 42, ROOT, ("ext",))
    note = sign_checkpoint(checkpoint, [signer])
    assert note.startswith(_body(ORIGIN, "42", ROOT_B64, "ext") + "\n\u2014 " + ORIGIN + " ")
    assert open_checkpoint(note, [signer.verifier], origin=ORIGIN) == checkpoint
    assert open_checkpoint(note.encode(), [signer.verifier], origin=ORIGIN) == checkpoint


def test_open_with_rotated_and_witness_keys() -> None:
    old, new = log_signer(1), log_signer(2)
    witness = NoteSigner("witness.example", Ed25519PrivateKey.from_private_bytes(b"\x03" * 32))
    checkpoint = Checkpoint(ORIGIN, 9, ROOT)
    note = sign_checkpoint(checkpoint, [old, new, witness])
    # Unknown cosignatures are ignored; either log key suffices.
    assert open_checkpoint(note, [new.verifier], origin=ORIGIN) == checkpoint
    assert open_checkpoint(note, [old.verifier], origin=ORIGIN) == checkpoint
    assert verify_note(note, [new.verifier, witness.verifier]).signed_by == (
        ORIGIN,
        "witness.example",
    )


def test_open_wrong_origin() -> None:
    signer = log_signer()
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), [signer])
    with pytest.raises(NoteSignatureError, match="origin"):
        open_checkpoint(note, [signer.verifier], origin="other.example/ledger")
    with pytest.raises(NoteSignatureError, match="origin"):
        open_checkpoint(note, [signer.verifier], origin=ORIGIN + " ")


def test_open_untrusted_key() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), [log_signer(1)])
    with pytest.raises(NoteSignatureError, match="trusted"):
        open_checkpoint(note, [log_signer(2).verifier], origin=ORIGIN)


def test_open_tampered_tree_size() -> None:
    signer = log_signer()
    note = sign_checkpoint(Checkpoint(ORIGIN, 41, ROOT), [signer])
    tampered = note.replace("\n41\n", "\n42\n", 1)
    with pytest.raises(NoteSignatureError, match="invalid"):
        open_checkpoint(tampered, [signer.verifier], origin=ORIGIN)


def test_open_signed_body_that_is_not_a_checkpoint() -> None:
    # A trusted key signed something else: the signature is fine, the body is not.
    signer = log_signer()
    note = sign_note("if this is a valid checkpoint then I'll eat my hat\n", [signer])
    with pytest.raises(NoteFormatError, match="lines"):
        open_checkpoint(note, [signer.verifier], origin=ORIGIN)


def test_open_checks_the_signature_before_the_body() -> None:
    # A malformed body from an untrusted key is reported as untrusted: the text is ignored.
    note = sign_note("not a checkpoint\n", [log_signer(1)])
    with pytest.raises(NoteSignatureError):
        open_checkpoint(note, [log_signer(2).verifier], origin=ORIGIN)


def test_open_malformed_note() -> None:
    signer = log_signer()
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), [signer])
    with pytest.raises(NoteFormatError):
        open_checkpoint(note.replace("\n\n", "\n", 1), [signer.verifier], origin=ORIGIN)


def test_signed_checkpoint_splits_into_its_body() -> None:
    checkpoint = Checkpoint(ORIGIN, 3, ROOT)
    text, sigs = split_note(sign_checkpoint(checkpoint, [log_signer()]))
    assert parse_checkpoint(text) == checkpoint
    assert [s.name for s in sigs] == [ORIGIN]


def test_checkpoint_construction_validates() -> None:
    with pytest.raises(NoteFormatError):
        Checkpoint(ORIGIN, 1, b"\x00" * (ROOT_HASH_SIZE - 1))
    with pytest.raises(NoteFormatError):
        Checkpoint(ORIGIN, -1, ROOT)
