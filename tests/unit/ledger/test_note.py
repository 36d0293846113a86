"""Unit tests for ledger.note: keys, signing, parsing and every rejection rule."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import NoteFormatError, NoteSignatureError
from ledger.note import (
    ED25519_SIGNATURE_TYPE,
    MAX_NOTE_BYTES,
    MAX_NOTE_SIGNATURES,
    SIGNATURE_PREFIX,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    VerifiedNote,
    is_valid_key_name,
    is_valid_note_text,
    key_id,
    sign_note,
    split_note,
    strict_b64decode,
    verify_note,
    verify_note_text,
)

SEED_A = bytes(range(32))
SEED_B = bytes(range(32, 64))
TEXT = "pishkhan.example/log\n42\n\nwith a blank line inside\n"


def signer(name: str = "pishkhan.example/log", seed: bytes = SEED_A) -> NoteSigner:
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(seed))


def with_signature_bytes(note: str, raw: bytes) -> str:
    """Replace the base64 of the note's only signature line with raw."""
    head, _ = note.rstrip("\n").rsplit(" ", 1)
    return f"{head} {base64.b64encode(raw).decode()}\n"


# --- Key names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "example.com/log42", "Se\u00f1or-1", "\u2014dash", "x=y", "\x7f"]
)
def test_valid_key_names(name: str) -> None:
    assert is_valid_key_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a+b",
        "+",
        "a b",
        "a\tb",
        "a\nb",
        "a\rb",
        "a\x0bb",
        "a\x0cb",
        "a\x85b",  # NEXT LINE
        "a\xa0b",  # NO-BREAK SPACE
        "a\u1680b",  # OGHAM SPACE MARK
        "a\u2000b",
        "a\u200ab",
        "a\u2028b",
        "a\u2029b",
        "a\u202fb",
        "a\u205fb",
        "a\u3000b",
        "a\x00b",  # control characters could never appear in a well-formed note
        "a\x1fb",
        "a\ud800b",  # lone surrogate: not encodable as UTF-8
    ],
)
def test_invalid_key_names(name: str) -> None:
    assert not is_valid_key_name(name)
    with pytest.raises(NoteFormatError):
        key_id(name, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(NoteFormatError):
        NoteSigner(name, Ed25519PrivateKey.generate())


def test_zero_width_space_is_not_white_space() -> None:
    # U+200B left the Unicode White_Space property long ago; Go accepts it, so do we.
    assert is_valid_key_name("a\u200bb")


# --- Key IDs and verifier keys -------------------------------------------------------------------


def test_key_id_is_truncated_sha256_of_name_newline_type_and_key() -> None:
    public_key = signer().private_key.public_key()
    expected = hashlib.sha256(
        b"pishkhan.example/log\n" + bytes([ED25519_SIGNATURE_TYPE]) + public_key.public_bytes_raw()
    ).digest()[:4]
    assert key_id("pishkhan.example/log", public_key) == expected


def test_key_id_depends_on_the_name() -> None:
    public_key = signer().private_key.public_key()
    assert key_id("a", public_key) != key_id("b", public_key)


def test_vkey_round_trip() -> None:
    verifier = signer().verifier
    vkey = verifier.vkey
    name, id_hex, key_b64 = vkey.split("+", 2)
    assert name == "pishkhan.example/log"
    assert id_hex == verifier.key_id.hex()
    assert base64.b64decode(key_b64)[0] == 0x01
    assert NoteVerifier.from_vkey(vkey) == verifier


def _vkey(name: str, id_hex: str, raw: bytes) -> str:
    return f"{name}+{id_hex}+{base64.b64encode(raw).decode()}"


def _adjusted_vkey(name: str, raw: bytes) -> str:
    # A vkey whose ID matches its (bad) key, so that only the key itself is at fault.
    id_hex = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex()
    return _vkey(name, id_hex, raw)


# From SEED_A: pishkhan.example/log+4c8dea0e+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4
NAME, ID_HEX, _KEY_B64 = signer().verifier.vkey.split("+", 2)
RAW = base64.b64decode(_KEY_B64)
BAD_VKEYS = {
    "no_plus": NAME,
    "one_plus": f"{NAME}+{ID_HEX}",
    "empty": "",
    "uppercase_key_id": _vkey(NAME, ID_HEX.upper(), RAW),
    "short_key_id": _vkey(NAME, ID_HEX[:7], RAW),
    "long_key_id": _vkey(NAME, ID_HEX + "0", RAW),
    "non_hex_key_id": _vkey(NAME, "zzzzzzzz", RAW),
    "signed_key_id": _vkey(NAME, "+" + ID_HEX[1:], RAW),
    "wrong_key_id": _vkey(NAME, f"{int(ID_HEX, 16) ^ 1:08x}", RAW),
    "other_name": _vkey("other", ID_HEX, RAW),
    "bad_name": _adjusted_vkey("a b", RAW),
    "empty_name": _adjusted_vkey("", RAW),
    "ecdsa_type": _adjusted_vkey(NAME, b"\x02" + RAW[1:]),
    "key_too_short": _adjusted_vkey(NAME, RAW[:-1]),
    "key_too_long": _adjusted_vkey(NAME, RAW + b"\x00"),
    "type_byte_only": _adjusted_vkey(NAME, RAW[:1]),
    "no_key": f"{NAME}+{ID_HEX}+",
    "bad_base64": f"{NAME}+{ID_HEX}+not base64!",
    "padded_base64": _vkey(NAME, ID_HEX, RAW) + "=",
    "trailing_space": _vkey(NAME, ID_HEX, RAW) + " ",
}


def test_vkey_fixture_is_what_the_rejections_assume() -> None:
    assert ID_HEX.upper() != ID_HEX
    assert NoteVerifier.from_vkey(_vkey(NAME, ID_HEX, RAW)) == signer().verifier


@pytest.mark.parametrize("vkey", BAD_VKEYS.values(), ids=BAD_VKEYS.keys())
def test_vkey_rejections(vkey: str) -> None:
    with pytest.raises(NoteFormatError):
        NoteVerifier.from_vkey(vkey)


def test_verifier_construction_checks_key_id() -> None:
    public_key = signer().private_key.public_key()
    with pytest.raises(NoteFormatError, match="key ID"):
        NoteVerifier("pishkhan.example/log", b"\x00\x00\x00\x00", public_key)
    with pytest.raises(NoteFormatError, match="key ID"):
        NoteVerifier("pishkhan.example/log", key_id("other", public_key), public_key)


def test_verifiers_are_hashable_and_compare_by_value() -> None:
    a = NoteVerifier.from_vkey(signer().verifier.vkey)
    b = signer().verifier
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, signer(seed=SEED_B).verifier}) == 2


def test_signer_repr_hides_the_private_key() -> None:
    assert "private_key" not in repr(signer())


def test_generated_signers_differ() -> None:
    a, b = NoteSigner.generate("n"), NoteSigner.generate("n")
    assert a.key_id != b.key_id or a.verifier != b.verifier
    with pytest.raises(NoteFormatError):
        NoteSigner.generate("bad name")


def test_is_valid_signature() -> None:
    s = signer()
    sig = s.private_key.sign(b"message")
    assert s.verifier.is_valid_signature(b"message", signature=sig)
    assert not s.verifier.is_valid_signature(b"messagE", signature=sig)
    assert not s.verifier.is_valid_signature(b"message", signature=sig[:-1])
    assert not s.verifier.is_valid_signature(b"message", signature=sig + b"\x00")


# --- Note text -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["\n", "a\n", "a\n\nb\n", "a\n\n", "\u00e8\u2014\x7f\n"])
def test_valid_note_texts(text: str) -> None:
    assert is_valid_note_text(text)
    verify_note_text(text)


@pytest.mark.parametrize(
    "text",
    ["", "a", "a\nb", "a\r\n", "a\tb\n", "\x00\n", "\x1b[0m\n", "\ud800\n"],
    ids=["empty", "no_newline", "no_final_newline", "crlf", "tab", "nul", "escape", "surrogate"],
)
def test_invalid_note_texts(text: str) -> None:
    assert not is_valid_note_text(text)
    with pytest.raises(NoteFormatError):
        verify_note_text(text)


def test_note_text_size_limit() -> None:
    verify_note_text("a" * (MAX_NOTE_BYTES - 1) + "\n")
    with pytest.raises(NoteFormatError, match="MAX_NOTE_BYTES"):
        verify_note_text("a" * MAX_NOTE_BYTES + "\n")
    # Counted in UTF-8 bytes, not characters.
    with pytest.raises(NoteFormatError, match="MAX_NOTE_BYTES"):
        verify_note_text("\u00e8" * (MAX_NOTE_BYTES // 2) + "\n")


# --- Strict base64 -------------------------------------------------------------------------------


def test_strict_b64decode() -> None:
    assert strict_b64decode("", what="x") == b""
    assert strict_b64decode("YQ==", what="x") == b"a"
    assert strict_b64decode("+/8=", what="x") == b"\xfb\xff"
    for bad in ["YQ", "YQ=", "YR==", "Y Q==", "YQ==\n", "-_8=", "YQ===", "\u00e8", "====", "Y"]:
        with pytest.raises(NoteFormatError):
            strict_b64decode(bad, what="x")


# --- Signing and verifying -----------------------------------------------------------------------


def test_sign_verify_round_trip() -> None:
    s = signer()
    note = sign_note(TEXT, [s])
    assert note.startswith(TEXT + "\n" + SIGNATURE_PREFIX + s.name + " ")
    assert note.endswith("\n")
    verified = verify_note(note, [s.verifier])
    assert verified == VerifiedNote(TEXT, verified.signatures)
    assert verified.text == TEXT
    assert verified.signed_by == (s.name,)
    assert verify_note(note.encode(), [s.verifier]).text == TEXT


@pytest.mark.parametrize("text", ["\n", "\n\n", "a\n\n\n", "\u00e8\u2014 x\n"])
def test_round_trip_of_awkward_texts(text: str) -> None:
    s = signer()
    assert verify_note(sign_note(text, [s]), [s.verifier]).text == text


def test_key_rotation_two_keys_one_name() -> None:
    old, new = signer(seed=SEED_A), signer(seed=SEED_B)
    note = sign_note(TEXT, [old, new])
    both = verify_note(note, [old.verifier, new.verifier])
    assert both.signed_by == (old.name,)  # one name...
    assert [s.key_id for s in both.signatures] == [old.key_id, new.key_id]  # ...two keys
    assert verify_note(note, [new.verifier]).signatures[0].key_id == new.key_id
    assert verify_note(note, [old.verifier]).signatures[0].key_id == old.key_id


def test_signature_order_follows_signers() -> None:
    a, b = signer("a", SEED_A), signer("b", SEED_B)
    _, sigs = split_note(sign_note(TEXT, [b, a]))
    assert [s.name for s in sigs] == ["b", "a"]
    assert verify_note(sign_note(TEXT, [b, a]), [a.verifier, b.verifier]).signed_by == ("b", "a")


def test_sign_rejections() -> None:
    s = signer()
    with pytest.raises(NoteFormatError, match="newline"):
        sign_note("no newline", [s])
    with pytest.raises(NoteFormatError, match="control"):
        sign_note("tab\there\n", [s])
    with pytest.raises(NoteFormatError, match="at least one"):
        sign_note(TEXT, [])
    with pytest.raises(NoteFormatError, match="share"):
        sign_note(TEXT, [s, signer()])
    many = [signer(f"k{i}") for i in range(MAX_NOTE_SIGNATURES + 1)]
    with pytest.raises(NoteFormatError, match="MAX_NOTE_SIGNATURES"):
        sign_note(TEXT, many)
    with pytest.raises(NoteFormatError, match="MAX_NOTE_BYTES"):
        sign_note("a" * (MAX_NOTE_BYTES - 10) + "\n", [s])


def test_sign_accepts_the_maximum_number_of_signers() -> None:
    many = [signer(f"k{i}") for i in range(MAX_NOTE_SIGNATURES)]
    note = sign_note(TEXT, many)
    assert verify_note(note, [many[-1].verifier]).signed_by == (f"k{MAX_NOTE_SIGNATURES - 1}",)


def test_unknown_signatures_are_ignored_even_if_garbage() -> None:
    s = signer()
    note = sign_note(TEXT, [s]) + f"{SIGNATURE_PREFIX}stranger AAAAAAAA\n"
    assert verify_note(note, [s.verifier]).signed_by == (s.name,)


def test_same_name_other_key_id_is_ignored() -> None:
    s = signer()
    impostor = NoteSignature(name=s.name, key_id=bytes(4), signature=bytes(64)).line
    assert verify_note(sign_note(TEXT, [s]) + impostor, [s.verifier]).signed_by == (s.name,)


def test_same_key_id_other_name_is_ignored() -> None:
    s = signer()
    impostor = NoteSignature(name="someone.else", key_id=s.key_id, signature=bytes(64)).line
    assert verify_note(sign_note(TEXT, [s]) + impostor, [s.verifier]).signed_by == (s.name,)


def test_bad_signature_from_known_key_is_fatal_even_beside_a_good_one() -> None:
    a, b = signer("a", SEED_A), signer("b", SEED_B)
    bad_b = NoteSignature(name="b", key_id=b.key_id, signature=bytes(64)).line
    note = sign_note(TEXT, [a]) + bad_b
    with pytest.raises(NoteSignatureError, match="b\\+"):
        verify_note(note, [a.verifier, b.verifier])
    assert verify_note(note, [a.verifier]).signed_by == ("a",)  # b unknown: ignored


def test_known_key_signature_of_wrong_length_is_a_signature_error() -> None:
    s = signer()
    good = sign_note(TEXT, [s])
    raw = s.key_id + s.private_key.sign(TEXT.encode())
    for tampered in [raw[:-1], raw + b"\x00", raw[:5]]:
        with pytest.raises(NoteSignatureError):
            verify_note(with_signature_bytes(good, tampered), [s.verifier])


def test_repeated_identical_signature_is_reported_once() -> None:
    s = signer()
    note = sign_note(TEXT, [s])
    sig_line = note[len(TEXT) + 1 :]
    verified = verify_note(note + sig_line * 3, [s.verifier])
    assert verified.signed_by == (s.name,)
    assert len(verified.signatures) == 1


def test_repeated_key_with_a_bad_second_signature_is_fatal() -> None:
    # Go skips repeats by an already-verified key; the spec says known keys MUST be verified.
    s = signer()
    note = (
        sign_note(TEXT, [s]) + NoteSignature(name=s.name, key_id=s.key_id, signature=bytes(64)).line
    )
    with pytest.raises(NoteSignatureError, match="invalid"):
        verify_note(note, [s.verifier])


def test_ambiguous_trusted_keys_are_refused_when_used() -> None:
    s = signer()
    # A second key forced under the same name and key ID (a collision, or a tampered list).
    twin = object.__new__(NoteVerifier)
    for attr, value in [
        ("name", s.name),
        ("key_id", s.key_id),
        ("public_key", Ed25519PrivateKey.from_private_bytes(SEED_B).public_key()),
    ]:
        object.__setattr__(twin, attr, value)
    note = sign_note(TEXT, [s])
    with pytest.raises(NoteSignatureError, match="ambiguous"):
        verify_note(note, [s.verifier, twin])
    # The same key listed twice is not ambiguous.
    assert verify_note(note, [s.verifier, s.verifier]).signed_by == (s.name,)


def test_no_trusted_signature() -> None:
    note = sign_note(TEXT, [signer()])
    with pytest.raises(NoteSignatureError, match="trusted"):
        verify_note(note, [signer(seed=SEED_B).verifier])
    with pytest.raises(NoteSignatureError, match="trusted"):
        verify_note(note, [])


# --- Parsing -------------------------------------------------------------------------------------


def test_split_note_reports_every_signature_unverified() -> None:
    a, b = signer("a", SEED_A), signer("b", SEED_B)
    note = sign_note(TEXT, [a, b])
    text, sigs = split_note(note)
    assert text == TEXT
    assert [(s.name, s.key_id) for s in sigs] == [("a", a.key_id), ("b", b.key_id)]
    assert all(len(s.signature) == 64 for s in sigs)
    assert text + "\n" + "".join(s.line for s in sigs) == note


def test_split_note_size_limit_is_checked_first() -> None:
    huge = "\x00" * (MAX_NOTE_BYTES + 1)  # malformed too, but the size is what is reported
    notes: list[str | bytes] = [huge, huge.encode()]
    for note in notes:
        with pytest.raises(NoteFormatError, match="MAX_NOTE_BYTES"):
            split_note(note)
    # A str within the limit in characters but over it in UTF-8 bytes.
    with pytest.raises(NoteFormatError, match="MAX_NOTE_BYTES"):
        split_note("\u00e8" * (MAX_NOTE_BYTES // 2 + 1))


def test_split_note_signature_count_limit() -> None:
    s = signer()
    note = sign_note(TEXT, [s])
    line = note[len(TEXT) + 1 :]
    assert len(split_note(note + line * (MAX_NOTE_SIGNATURES - 1))[1]) == MAX_NOTE_SIGNATURES
    with pytest.raises(NoteFormatError, match="MAX_NOTE_SIGNATURES"):
        split_note(note + line * MAX_NOTE_SIGNATURES)


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("a\n", "blank line"),
        ("a\n\n", "signature line"),
        ("a\n\n\u2014 k AAAAAAAA", "signature line"),
        ("a\n\n- k AAAAAAAA\n", "em dash"),
        ("a\n\n\u2014k AAAAAAAA\n", "em dash"),
        ("a\n\n\u2014 k\n", "no signature"),
        ("a\n\n\u2014 k \n", "no signature"),
        ("a\n\n\u2014 k+1 AAAAAAAA\n", "key name"),
        ("a\n\n\u2014 k AAAAAA==\n", "shorter"),
        ("a\n\n\u2014 k AAAAAAB=\n", "canonical"),
        ("a\n\n\u2014 k AAAA AAAA\n", "base64"),
        ("a\n\n\u2014 k AAAAAAAA\n\u2014 k AAAAAAAA\nx\n", "em dash"),
        ("a\n\n\u2014 k AAAAAAAA\n\n", "signature line"),
        ("a\r\n\n\u2014 k AAAAAAAA\n", "control"),
        ("a\n\n\u2014 k AAAAAAAA\r\n", "control"),
        (b"a\n\n\xe2\x80 k AAAAAAAA\n", "UTF-8"),
        ("a\ud800\n\n\u2014 k AAAAAAAA\n", "UTF-8"),
    ],
    ids=[
        "no_blank_line",
        "nothing_after_blank_line",
        "missing_final_newline",
        "hyphen",
        "no_space_after_dash",
        "no_space_after_name",
        "empty_signature",
        "plus_in_name",
        "signature_too_short",
        "non_canonical_base64",
        "space_in_base64",
        "text_after_signatures",
        "blank_line_after_signatures",
        "carriage_return_in_text",
        "carriage_return_in_signature",
        "truncated_utf8",
        "surrogate",
    ],
)
def test_split_note_rejections(note: str | bytes, message: str) -> None:
    with pytest.raises(NoteFormatError, match=message):
        split_note(note)


def test_signature_line_rendering() -> None:
    sig = NoteSignature(name="k", key_id=b"\x01\x02\x03\x04", signature=b"\xff" * 64)
    raw = b"\x01\x02\x03\x04" + b"\xff" * 64
    assert sig.line == f"\u2014 k {base64.b64encode(raw).decode()}\n"
    assert split_note("a\n\n" + sig.line)[1] == [sig]
