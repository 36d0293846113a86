"""C2SP signed notes (https://c2sp.org/signed-note), Ed25519 (signature type 0x01) only.

A signed note is a text ending in a newline, a blank line, then one or more signature lines
``— <key name> <base64(4-byte key ID || signature)>\\n``. The signed message is the text,
final newline included, separating blank line excluded.

Pure code: no I/O, no clock, no database. Wire-compatible with golang.org/x/mod/sumdb/note,
with these deliberate differences, all but the last stricter:

* every signature line from a known key is verified, repeats included (Go skips a repeated
  signature by a key it has already verified; the spec says known keys MUST be verified);
* base64 must be canonical (padding and unused bits), so a note has exactly one encoding;
* the key ID in a vkey must be lowercase hex, as every encoder writes it;
* a key name may not hold ASCII control characters (no note could carry it anyway);
* two signers may not share a name and key ID (Go would emit both lines);
* the same trusted key listed twice is not "ambiguous" (Go refuses it when a signature names
  it); two different keys under one name and key ID are, as in Go.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import NoteFormatError, NoteSignatureError

# Checked on the encoded bytes before any parsing, so a hostile note costs at most this much
# work. A checkpoint is a few hundred bytes; the spec asks verifiers to accept at least 16
# signatures of up to ~5 kB (post-quantum), which fits with room to spare.
MAX_NOTE_BYTES = 256 * 1024
# Same bound as golang.org/x/mod/sumdb/note (the spec's floor is 16).
MAX_NOTE_SIGNATURES = 100

ED25519_SIGNATURE_TYPE = 0x01
KEY_ID_SIZE = 4
ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
# 4-byte key ID plus at least one signature byte, as in the Go implementation.
MIN_SIGNATURE_BYTES = KEY_ID_SIZE + 1

SIGNATURE_PREFIX = "\u2014 "  # EM DASH, SPACE

# The Unicode White_Space property, spelled out (it is small and stable) so that key-name
# validity matches Go's unicode.IsSpace exactly and does not drift with str.isspace().
_WHITE_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
# ASCII control characters other than newline: forbidden anywhere in a note (DEL is not one).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_KEY_ID_HEX = re.compile("[0-9a-f]{8}")


# --- Helpers shared with ledger.checkpoint -------------------------------------------------------


def strict_b64decode(encoded: str, *, what: str) -> bytes:
    """Decode standard base64 (RFC 4648 section 4), accepting only its canonical form.

    Raises NoteFormatError on any character outside the alphabet, missing or extra padding,
    or non-zero unused bits: a non-canonical form would let one note have several encodings.
    """
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except ValueError as exc:  # binascii.Error, and non-ASCII str input
        raise NoteFormatError(f"{what} is not valid base64") from exc
    if base64.b64encode(decoded).decode("ascii") != encoded:
        raise NoteFormatError(f"{what} is not canonical base64")
    return decoded


def _utf8(text: str, *, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates cannot be encoded
        raise NoteFormatError(f"{what} is not valid UTF-8") from exc


def is_valid_key_name(name: str) -> bool:
    """Return whether name may be a key name: non-empty, no Unicode space, no '+'.

    Control characters are refused too, since a note containing them is malformed.
    """
    if not name or "+" in name or _CONTROL.search(name):
        return False
    if any(ch in _WHITE_SPACE for ch in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require_key_name(name: str) -> None:
    if not is_valid_key_name(name):
        raise NoteFormatError(f"invalid key name {name!r}")


def verify_note_text(text: str) -> None:
    """Check that text can be the text of a signed note.

    Raises NoteFormatError unless text is at most MAX_NOTE_BYTES of UTF-8, ends with a newline
    and contains no ASCII control character other than newline.
    """
    if len(text) > MAX_NOTE_BYTES or len(_utf8(text, what="note text")) > MAX_NOTE_BYTES:
        raise NoteFormatError(f"note text is longer than MAX_NOTE_BYTES={MAX_NOTE_BYTES}")
    if not text.endswith("\n"):
        raise NoteFormatError("note text does not end with a newline")
    if _CONTROL.search(text):
        raise NoteFormatError("note text contains an ASCII control character")


def is_valid_note_text(text: str) -> bool:
    """Return whether text can be the text of a signed note (see verify_note_text)."""
    try:
        verify_note_text(text)
    except NoteFormatError:
        return False
    return True


# --- Keys ----------------------------------------------------------------------------------------


def _public_key_bytes(public_key: Ed25519PublicKey) -> bytes:
    return bytes([ED25519_SIGNATURE_TYPE]) + public_key.public_bytes_raw()


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """Return the 4-byte key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4].

    Raises NoteFormatError if name is not a valid key name.
    """
    _require_key_name(name)
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + _public_key_bytes(public_key))
    return digest.digest()[:KEY_ID_SIZE]


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted Ed25519 note key: name, key ID and public key.

    Construction raises NoteFormatError if the name is invalid or key_id is not the one
    computed from name and public_key.
    """

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    def __post_init__(self) -> None:
        if key_id(self.name, self.public_key) != self.key_id:
            raise NoteFormatError(f"key ID does not match key {self.name!r}")

    # The public key object is unhashable; hash the identifying bytes instead.
    def __hash__(self) -> int:
        return hash((self.name, self.key_id, self.public_key.public_bytes_raw()))

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> NoteVerifier:
        """Build the verifier for name and public_key. Raises NoteFormatError on a bad name."""
        return cls(name, key_id(name, public_key), public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key ``<name>+<8 lowercase hex key ID>+<base64(0x01 || key)>``.

        Raises NoteFormatError if it is malformed, names another algorithm than Ed25519, has a
        key of the wrong length or a key ID that does not match the name and key.
        """
        parts = vkey.split("+", 2)  # names hold no '+', base64 may
        if len(parts) != 3:
            raise NoteFormatError("vkey is not <name>+<key ID>+<key>")
        name, id_hex, key_b64 = parts
        _require_key_name(name)
        if not _KEY_ID_HEX.fullmatch(id_hex):
            raise NoteFormatError("vkey key ID is not 8 lowercase hex digits")
        raw = strict_b64decode(key_b64, what="vkey key")
        if not raw or raw[0] != ED25519_SIGNATURE_TYPE:
            raise NoteFormatError("vkey is not an Ed25519 (type 0x01) key")
        if len(raw) != 1 + ED25519_PUBLIC_KEY_SIZE:
            raise NoteFormatError("vkey Ed25519 key is not 32 bytes")
        public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
        return cls(name, bytes.fromhex(id_hex), public_key)

    @property
    def vkey(self) -> str:
        """The verifier key string, as parsed by from_vkey."""
        encoded = base64.b64encode(_public_key_bytes(self.public_key)).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def is_valid_signature(self, message: bytes, *, signature: bytes) -> bool:
        """Return whether signature (without key ID) is this key's signature of message."""
        if len(signature) != ED25519_SIGNATURE_SIZE:
            return False
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, eq=False)
class NoteSigner:
    """An Ed25519 note signing key. Construction raises NoteFormatError on a bad name."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)  # keep key material out of logs

    def __post_init__(self) -> None:
        _require_key_name(self.name)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """Make a signer with a fresh random key. Raises NoteFormatError on a bad name."""
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.private_key.public_key())

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier.from_public_key(self.name, self.private_key.public_key())


# --- Notes ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NoteSignature:
    """One signature line, parsed but not verified. signature excludes the key ID."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        """The signature line as it appears in a note, final newline included."""
        encoded = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class VerifiedNote:
    """A note whose text was verified: one signature per trusted key that signed, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    @property
    def signed_by(self) -> tuple[str, ...]:
        """Names of the trusted keys that signed, each once (two keys may share a name)."""
        return tuple(dict.fromkeys(sig.name for sig in self.signatures))


def _decode_note(note: str | bytes) -> str:
    # Size first, on the cheapest measure available, then full validity.
    if len(note) > MAX_NOTE_BYTES:
        raise NoteFormatError(f"note is longer than MAX_NOTE_BYTES={MAX_NOTE_BYTES}")
    if isinstance(note, bytes):
        try:
            return note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteFormatError("note is not valid UTF-8") from exc
    if len(_utf8(note, what="note")) > MAX_NOTE_BYTES:
        raise NoteFormatError(f"note is longer than MAX_NOTE_BYTES={MAX_NOTE_BYTES}")
    return note


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteFormatError("signature line does not start with an em dash and a space")
    name, sep, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not sep or not encoded:
        raise NoteFormatError("signature line has no signature")
    _require_key_name(name)
    raw = strict_b64decode(encoded, what="signature")
    if len(raw) < MIN_SIGNATURE_BYTES:
        raise NoteFormatError("signature is shorter than a key ID and one byte")
    return NoteSignature(name=name, key_id=raw[:KEY_ID_SIZE], signature=raw[KEY_ID_SIZE:])


def split_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and its signature lines, verifying nothing.

    For reporting only: the text MUST NOT be trusted until verify_note has accepted it.
    Raises NoteFormatError if the note is larger than MAX_NOTE_BYTES, is not UTF-8, contains
    an ASCII control character other than newline, has no blank line before the signatures,
    no signature, more than MAX_NOTE_SIGNATURES, or a malformed signature line.
    """
    decoded = _decode_note(note)
    if _CONTROL.search(decoded):
        raise NoteFormatError("note contains an ASCII control character")
    # The text may hold blank lines: the signatures follow the LAST one.
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteFormatError("note has no blank line before its signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block.endswith("\n"):
        raise NoteFormatError("note does not end with a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise NoteFormatError(f"note has more than MAX_NOTE_SIGNATURES={MAX_NOTE_SIGNATURES}")
    return text, [_parse_signature_line(line) for line in lines]


def _index(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, bytes], set[NoteVerifier]]:
    known: dict[tuple[str, bytes], set[NoteVerifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, verifier.key_id), set()).add(verifier)
    return known


def verify_note(note: str | bytes, verifiers: Sequence[NoteVerifier]) -> VerifiedNote:
    """Verify a signed note against trusted keys and return its text.

    Signatures whose (name, key ID) is not one of verifiers are ignored, as the spec requires.
    Every signature from a known key is verified, repeats included; a key that signed several
    times is reported once.

    Raises NoteFormatError if the note is malformed (see split_note). Raises NoteSignatureError
    if a signature from a known key does not verify, if two different trusted keys share the
    name and key ID a signature names, or if no trusted key signed the note.
    """
    text, signatures = split_note(note)
    message = text.encode("utf-8")
    known = _index(verifiers)
    verified: dict[tuple[str, bytes], NoteSignature] = {}
    checked: set[NoteSignature] = set()  # identical lines need one check, not one each
    for sig in signatures:
        candidates = known.get((sig.name, sig.key_id))
        if candidates is None or sig in checked:
            continue
        label = f"{sig.name}+{sig.key_id.hex()}"
        if len(candidates) > 1:
            raise NoteSignatureError(f"ambiguous trusted key {label}")
        (verifier,) = candidates
        if not verifier.is_valid_signature(message, signature=sig.signature):
            raise NoteSignatureError(f"invalid signature for known key {label}")
        checked.add(sig)
        verified.setdefault((sig.name, sig.key_id), sig)
    if not verified:
        raise NoteSignatureError("no signature on the note is from a trusted key")
    return VerifiedNote(text, tuple(verified.values()))


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """Sign text with each signer (several for key rotation) and return the signed note.

    Raises NoteFormatError if text is not valid note text (see verify_note_text), if there is
    no signer, more than MAX_NOTE_SIGNATURES, two with the same name and key ID, or if the
    signed note would exceed MAX_NOTE_BYTES.
    """
    verify_note_text(text)
    if not signers:
        raise NoteFormatError("a signed note needs at least one signer")
    if len(signers) > MAX_NOTE_SIGNATURES:
        raise NoteFormatError(f"more than MAX_NOTE_SIGNATURES={MAX_NOTE_SIGNATURES} signers")
    if len({(s.name, s.key_id) for s in signers}) != len(signers):
        raise NoteFormatError("two signers share a key name and key ID")
    message = text.encode("utf-8")
    lines = [
        NoteSignature(name=s.name, key_id=s.key_id, signature=s.private_key.sign(message)).line
        for s in signers
    ]
    signed = text + "\n" + "".join(lines)
    if len(signed.encode("utf-8")) > MAX_NOTE_BYTES:
        raise NoteFormatError(f"signed note would exceed MAX_NOTE_BYTES={MAX_NOTE_BYTES}")
    return signed
