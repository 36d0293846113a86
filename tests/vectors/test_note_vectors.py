"""Known-answer vectors for ledger.note and ledger.checkpoint, and named mutations of them.

Where each vector comes from (values transcribed; no code copied):

* GO: golang/mod, sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen) and the
  package documentation of sumdb/note/note.go: the PeterNeumann signer and verifier keys, the
  EnochRoot verifier key, their signatures of the Peter Neumann quote, the two vkeys "with
  adjusted key hash" that must be refused, and the malformed messages of TestOpen.
* SUMDB: transparency-dev/formats, log/note_test.go (TestSumDBNoteParsing): a real
  sum.golang.org checkpoint and the sum.golang.org vkey.
* C2SP_NOTE: C2SP/C2SP, signed-note.md: the example note (Quasimodo). The spec publishes no
  public key for it, so it can only be parsed, and must be refused as unknown-key-only.
* C2SP_CHECKPOINT: C2SP/C2SP, tlog-checkpoint.md: the example checkpoint (behind-the-sofa),
  likewise published without its public key.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import format_checkpoint, open_checkpoint, parse_checkpoint
from ledger.errors import NoteError, NoteFormatError, NoteSignatureError
from ledger.note import (
    NoteSigner,
    NoteVerifier,
    sign_note,
    split_note,
    verify_note,
)

EM = "\u2014"  # the signature-line dash, spelled out so no editor swaps it for a hyphen

# --- GO: golang/mod sumdb/note/note_test.go ------------------------------------------------------

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
ENOCH_B64 = (
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)
PETER_SIG = f"{EM} PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"{EM} EnochRoot {ENOCH_B64}\n"
PETER_NOTE = TEXT + "\n" + PETER_SIG

# --- SUMDB: transparency-dev/formats log/note_test.go --------------------------------------------

SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    f"{EM} sum.golang.org "
    "Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
)

# --- C2SP_NOTE: C2SP/C2SP signed-note.md ---------------------------------------------------------

C2SP_NOTE_TEXT = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed \u00e8 subito sera.\n"
)
C2SP_NOTE = (
    C2SP_NOTE_TEXT + "\n" + f"{EM} quasimodo.example/salvatore "
    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)

# --- C2SP_CHECKPOINT: C2SP/C2SP tlog-checkpoint.md -----------------------------------------------

C2SP_CHECKPOINT_BODY = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
C2SP_CHECKPOINT_NOTE = (
    C2SP_CHECKPOINT_BODY + "\n" + f"{EM} example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)


def peter() -> NoteVerifier:
    return NoteVerifier.from_vkey(PETER_VKEY)


def enoch() -> NoteVerifier:
    return NoteVerifier.from_vkey(ENOCH_VKEY)


def peter_signer() -> NoteSigner:
    # Go's signer key is PRIVATE+KEY+<name>+<id>+base64(0x01 || 32-byte seed).
    raw = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert raw[0] == 0x01
    return NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(raw[1:]))


# --- Positive vectors ----------------------------------------------------------------------------


def test_go_vkeys_parse_and_round_trip() -> None:
    for vkey, name, key_id in [
        (PETER_VKEY, "PeterNeumann", "c74f20a3"),
        (ENOCH_VKEY, "EnochRoot", "af0cfe78"),
        (SUMDB_VKEY, "sum.golang.org", "033de0ae"),  # base64 holding '+'
    ]:
        verifier = NoteVerifier.from_vkey(vkey)
        assert verifier.name == name
        assert verifier.key_id.hex() == key_id
        assert verifier.vkey == vkey


def test_go_signer_key_matches_its_verifier_key() -> None:
    signer = peter_signer()
    assert signer.key_id.hex() == "c74f20a3"
    assert signer.verifier == peter()
    assert signer.verifier.vkey == PETER_VKEY


def test_go_sign_known_answer() -> None:
    # Ed25519 is deterministic, so our signer must reproduce Go's TestSign output exactly.
    assert sign_note(TEXT, [peter_signer()]) == PETER_NOTE


@pytest.mark.parametrize("encoding", ["str", "bytes"])
def test_go_signed_note_verifies(encoding: str) -> None:
    note: str | bytes = PETER_NOTE if encoding == "str" else PETER_NOTE.encode()
    verified = verify_note(note, [peter()])
    assert verified.text == TEXT
    assert verified.signed_by == ("PeterNeumann",)
    assert verified.signatures[0].key_id.hex() == "c74f20a3"


def test_go_doubly_signed_note_verifies_with_both_keys() -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert verify_note(note, [peter(), enoch()]).signed_by == ("PeterNeumann", "EnochRoot")


def test_go_doubly_signed_note_ignores_the_unknown_key() -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert verify_note(note, [peter()]).signed_by == ("PeterNeumann",)
    assert verify_note(note, [enoch()]).signed_by == ("EnochRoot",)


def _insert_abcd(sig_line: str) -> str:
    # Go inserts "ABCD" at byte 60 of the UTF-8 line; the em dash is 3 bytes, so use bytes.
    raw = sig_line.encode()
    return (raw[:60] + b"ABCD" + raw[60:]).decode()


def test_go_duplicated_verified_and_unverified_signatures() -> None:
    # TestOpen: repeated lines are accepted, the known key is reported once and an unknown
    # key's bad signature is ignored.
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + _insert_abcd(ENOCH_SIG)
    verified = verify_note(note, [peter()])
    assert verified.signed_by == ("PeterNeumann",)
    assert len(verified.signatures) == 1


def test_go_unused_duplicated_verifier_is_harmless() -> None:
    other = NoteVerifier.from_public_key("EnochRoot", Ed25519PrivateKey.generate().public_key())
    # Same name, different key: a different key ID, so not ambiguous at all.
    assert verify_note(PETER_NOTE, [enoch(), peter(), enoch(), other]).signed_by == (
        "PeterNeumann",
    )


def test_sumdb_checkpoint_opens() -> None:
    checkpoint = open_checkpoint(
        SUMDB_NOTE, [NoteVerifier.from_vkey(SUMDB_VKEY)], origin="go.sum database tree"
    )
    assert checkpoint.origin == "go.sum database tree"
    assert checkpoint.tree_size == 6476701
    assert checkpoint.root_hash == base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=")
    assert checkpoint.extensions == ()
    body = SUMDB_NOTE.split("\n\n")[0] + "\n"
    assert format_checkpoint(checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash) == body


def test_sumdb_checkpoint_wrong_origin() -> None:
    with pytest.raises(NoteSignatureError, match="origin"):
        open_checkpoint(
            SUMDB_NOTE,
            [NoteVerifier.from_vkey(SUMDB_VKEY)],
            origin="Go rocks but I might have the wrong ID",
        )


def test_c2sp_signed_note_example_parses() -> None:
    text, signatures = split_note(C2SP_NOTE)
    # The text keeps its own blank line: signatures follow the LAST blank line.
    assert text == C2SP_NOTE_TEXT
    assert [s.name for s in signatures] == ["quasimodo.example/salvatore"]
    assert len(signatures[0].key_id) == 4
    assert len(signatures[0].signature) == 64
    assert text + "\n" + "".join(s.line for s in signatures) == C2SP_NOTE


def test_c2sp_checkpoint_example_parses() -> None:
    text, signatures = split_note(C2SP_CHECKPOINT_NOTE)
    assert text == C2SP_CHECKPOINT_BODY
    assert [s.name for s in signatures] == ["example.com/behind-the-sofa"]
    checkpoint = parse_checkpoint(text)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.tree_size == 20852163
    assert checkpoint.root_hash.hex() == (
        "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"
    )
    assert format_checkpoint("example.com/behind-the-sofa", 20852163, checkpoint.root_hash) == (
        C2SP_CHECKPOINT_BODY
    )


@pytest.mark.parametrize(
    "note", [C2SP_NOTE, C2SP_CHECKPOINT_NOTE], ids=["c2sp_note", "c2sp_checkpoint"]
)
def test_c2sp_examples_are_unknown_key_only(note: str) -> None:
    with pytest.raises(NoteSignatureError, match="trusted"):
        verify_note(note, [peter(), enoch()])


# --- Go's refused verifier keys ------------------------------------------------------------------


def test_go_vkey_manglings_are_refused() -> None:
    # TestNewVerifier: every proper substring and every one-byte increment must be refused.
    raw = PETER_VKEY.encode()
    mangled = {raw[i:j] for i in range(len(raw) + 1) for j in range(i + 1, len(raw) + 1)}
    mangled |= {raw[:i] + bytes([raw[i] + 1]) + raw[i + 1 :] for i in range(len(raw))}
    mangled.discard(raw)
    for candidate in sorted(mangled):
        with pytest.raises(NoteFormatError):
            NoteVerifier.from_vkey(candidate.decode())


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
    ids=["wrong_key_length_adjusted_id", "unknown_algorithm_adjusted_id"],
)
def test_go_adjusted_hash_vkeys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteFormatError):
        NoteVerifier.from_vkey(vkey)


# --- Named mutations of the Go note --------------------------------------------------------------


def _flip_signature_byte(sig_line: str, index: int) -> str:
    prefix, encoded = sig_line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[index] ^= 0x01
    return f"{prefix} {base64.b64encode(bytes(raw)).decode()}\n"


BAD_SIGNATURE_NOTES = {
    "body_byte_flipped": TEXT.replace("cryptography", "cryptographY") + "\n" + PETER_SIG,
    "signature_byte_flipped": TEXT + "\n" + _flip_signature_byte(PETER_SIG, 4 + 10),
    "signature_last_byte_flipped": TEXT + "\n" + _flip_signature_byte(PETER_SIG, 4 + 63),
    "key_id_changed": TEXT + "\n" + _flip_signature_byte(PETER_SIG, 0),
    "name_changed": TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "CarmenSandiego"),
    "signature_truncated": TEXT + "\n" + f"{EM} PeterNeumann {PETER_B64[:-4]}\n",
    "signature_extended": TEXT + "\n" + _insert_abcd(PETER_SIG),
    "bad_known_signature_beside_good_one": TEXT
    + "\n"
    + PETER_SIG
    + _flip_signature_byte(ENOCH_SIG, 4 + 10),
    "signature_moved_to_other_text": "Something else entirely.\n\n" + PETER_SIG,
}


@pytest.mark.parametrize("note", BAD_SIGNATURE_NOTES.values(), ids=BAD_SIGNATURE_NOTES.keys())
def test_signature_mutation_is_refused(note: str) -> None:
    with pytest.raises(NoteSignatureError):
        verify_note(note, [peter(), enoch()])


def test_unknown_key_only() -> None:
    with pytest.raises(NoteSignatureError, match="trusted"):
        verify_note(PETER_NOTE, [enoch()])


def test_no_trusted_keys_at_all() -> None:
    with pytest.raises(NoteSignatureError, match="trusted"):
        verify_note(PETER_NOTE, [])


MALFORMED_NOTES: dict[str, str | bytes] = {
    # TestOpen's badMsgs, in order.
    "text_only": TEXT,
    "blank_line_without_signatures": TEXT + "\n",
    "missing_final_newline": TEXT + "\n" + PETER_SIG[:-1],
    "leading_control_byte": "\x01" + PETER_NOTE,
    "invalid_utf8": b"\xff" + PETER_NOTE.encode(),
    "name_with_space": TEXT + "\n" + f"{EM} Bad Name {PETER_B64}",
    "unexpected_line_after_signatures": PETER_NOTE + "Unexpected line.\n",
    # TestOpen: more than 100 signatures.
    "too_many_signatures": TEXT + "\n" + PETER_SIG * 101,
    # Ours.
    "missing_blank_line": TEXT + PETER_SIG,
    "trailing_blank_line": PETER_NOTE + "\n",
    "hyphen_instead_of_em_dash": TEXT + "\n" + PETER_SIG.replace(EM, "-"),
    "en_dash_instead_of_em_dash": TEXT + "\n" + PETER_SIG.replace(EM, "\u2013"),
    "tab_after_dash": TEXT + "\n" + PETER_SIG.replace(f"{EM} ", f"{EM}\t"),
    "two_spaces_after_name": TEXT + "\n" + PETER_SIG.replace("Neumann ", "Neumann  "),
    "crlf_line_endings": PETER_NOTE.replace("\n", "\r\n"),
    "carriage_return_in_text": TEXT.replace(",", ",\r") + "\n" + PETER_SIG,
    "nul_in_text": TEXT.replace(",", "\x00") + "\n" + PETER_SIG,
    "non_canonical_base64": TEXT + "\n" + PETER_SIG.replace("nAM=", "nAN="),
    "missing_base64_padding": TEXT + "\n" + PETER_SIG.replace("AM=\n", "AM\n"),
    "urlsafe_base64": TEXT + "\n" + PETER_SIG.replace("/", "_"),
    "empty_signature": TEXT + "\n" + f"{EM} PeterNeumann \n",
    "signature_shorter_than_key_id": TEXT + "\n" + f"{EM} PeterNeumann xw8g\n",
    "name_with_plus": TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),
    "empty_name": TEXT + "\n" + PETER_SIG.replace("PeterNeumann", ""),
}


@pytest.mark.parametrize("note", MALFORMED_NOTES.values(), ids=MALFORMED_NOTES.keys())
def test_malformed_note_is_refused(note: str | bytes) -> None:
    with pytest.raises(NoteFormatError):
        verify_note(note, [peter(), enoch()])
    with pytest.raises(NoteFormatError):
        split_note(note)


def test_every_mutation_is_an_error_of_the_note_family() -> None:
    # Callers may catch NoteError alone; make sure nothing escapes as another type.
    for note in [*BAD_SIGNATURE_NOTES.values(), *MALFORMED_NOTES.values()]:
        with pytest.raises(NoteError):
            verify_note(note, [peter(), enoch()])
