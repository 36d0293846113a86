"""The transaction receipt: everything needed to verify a transaction offline, years later.

A receipt is one JSON object (docs/FORMATS.md is the specification)::

    {"format": "pishkhan-receipt/1", "transaction_id", "envelope", "jws", "result",
     "leaf": base64, "leaf_index", "inclusion_proof": [base64, ...], "checkpoint": <signed note>,
     "signer_key": {"kid", "subject", "jwk", "assurance", "registration": <proven entry>,
                    "events": [<proven entry>, ...]}}

    proven entry = {"leaf_index", "leaf": base64, "inclusion_proof": [base64, ...],
                    "envelope", "jws"}

Bytes are standard base64 with padding (RFC 4648 section 4), in canonical form only. Every
inclusion proof is against the one checkpoint. This module checks the *form* only; what the
pieces prove is audit.receipt_check's business. Pure code: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from ledger.errors import ReceiptFormatError
from ledger.leaf import KID_BYTES, MAX_LEAF_JSON_BYTES
from ledger.merkle import HASH_SIZE, MAX_PROOF_HASHES
from ledger.note import MAX_NOTE_BYTES
from signatures.canonical import (
    MAX_DOCUMENT_BYTES,
    MAX_SAFE_INTEGER,
    JsonValue,
    canonicalize,
    join_pointer,
)
from signatures.envelope import MAX_SUBJECT_CHARS
from signatures.errors import CanonicalFormError, JwkError
from signatures.jwk import PublicJwk, b64url_chars, parse_b64url
from signatures.jws import MAX_JWS_CHARS
from signatures.keys import AssuranceLevel

RECEIPT_FORMAT = "pishkhan-receipt/1"
# Room for MAX_KEY_EVENTS_IN_RECEIPT events of the largest kind: each proven entry is at most
# about 7.5 KB (a leaf of ~1.9 KB with an RSA-8192 JWS, in base64; 64 proof hashes; the envelope
# and the JWS again), so 1024 of them and a 64 KiB envelope and result fit in 8 MiB. A typical
# receipt (Ed25519, a few events) is under 10 KB.
MAX_RECEIPT_BYTES = 8 * 1024 * 1024
# The key registry's own bound (signatures.keys.MAX_KEY_EVENTS) on events per key.
MAX_KEY_EVENTS_IN_RECEIPT = 1024
KID_CHARS = b64url_chars(KID_BYTES)
# I-JSON integers: more digits than 2**53 - 1 has are refused unread.
_MAX_INTEGER_DIGITS = len(str(MAX_SAFE_INTEGER))

MEMBERS = (
    *("format", "transaction_id", "envelope", "jws", "result", "leaf", "leaf_index"),
    *("inclusion_proof", "checkpoint", "signer_key"),
)
SIGNER_KEY_MEMBERS = ("kid", "subject", "jwk", "assurance", "registration", "events")
PROVEN_ENTRY_MEMBERS = ("leaf_index", "leaf", "inclusion_proof", "envelope", "jws")

RULE_TOO_LARGE = "too_large"
RULE_INVALID_JSON = "invalid_json"
RULE_DUPLICATE_KEY = "duplicate_key"
RULE_FLOAT_NOT_ALLOWED = "float_not_allowed"
RULE_INTEGER_OUT_OF_RANGE = "integer_out_of_range"
RULE_WRONG_TYPE = "wrong_type"
RULE_REQUIRED = "required"
RULE_UNKNOWN_MEMBER = "unknown_member"
RULE_UNSUPPORTED_FORMAT = "unsupported_format"
RULE_INVALID_FORMAT = "invalid_format"
RULE_INVALID_BASE64 = "invalid_base64"
RULE_OUT_OF_RANGE = "out_of_range"
RULE_TOO_MANY = "too_many"
RULE_INVALID_JWK = "invalid_jwk"

_UTF8_BOM = b"\xef\xbb\xbf"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DETACHED_JWS = re.compile(r"[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+")


@dataclass(frozen=True, kw_only=True)
class ProvenEntry:
    """A ledger entry with its inclusion proof against the receipt's checkpoint, and the
    envelope and JWS whose hash and value the leaf records."""

    leaf_index: int
    leaf: bytes
    inclusion_proof: tuple[bytes, ...]
    envelope: dict[str, JsonValue]
    jws: str

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "leaf_index": self.leaf_index,
            "leaf": _b64(self.leaf),
            "inclusion_proof": [_b64(h) for h in self.inclusion_proof],
            "envelope": self.envelope,
            "jws": self.jws,
        }


@dataclass(frozen=True, kw_only=True)
class SignerKeyEvidence:
    """The signing key as the receipt states it (``jwk`` the public JWK members, ``assurance``
    "registered" or "certified"), its registration entry and its later state changes, in index
    order. Nothing here is trusted until audit.receipt_check has checked it against the ledger.
    """

    kid: str
    subject: str
    jwk: Mapping[str, JsonValue]
    assurance: str
    registration: ProvenEntry
    events: tuple[ProvenEntry, ...] = ()

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "kid": self.kid,
            "subject": self.subject,
            "jwk": dict(self.jwk),
            "assurance": self.assurance,
            "registration": self.registration.as_json(),
            "events": [event.as_json() for event in self.events],
        }


@dataclass(frozen=True, kw_only=True)
class Receipt:
    """A parsed receipt: well formed, nothing verified."""

    transaction_id: str
    envelope: dict[str, JsonValue]
    jws: str
    result: dict[str, JsonValue]
    leaf: bytes
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    signer_key: SignerKeyEvidence

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "format": RECEIPT_FORMAT,
            "transaction_id": self.transaction_id,
            "envelope": self.envelope,
            "jws": self.jws,
            "result": self.result,
            "leaf": _b64(self.leaf),
            "leaf_index": self.leaf_index,
            "inclusion_proof": [_b64(h) for h in self.inclusion_proof],
            "checkpoint": self.checkpoint,
            "signer_key": self.signer_key.as_json(),
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _fail(pointer: str, rule: str, message: str) -> NoReturn:
    raise ReceiptFormatError(
        f"receipt {pointer or '(root)'}: {message} ({rule})", member=pointer, rule=rule
    )


# --- JSON ----------------------------------------------------------------------------------------


def _unique(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
    result: dict[str, JsonValue] = {}
    for name, value in pairs:
        if name in result:
            _fail("", RULE_DUPLICATE_KEY, f"member {name!r} appears more than once in an object")
        result[name] = value
    return result


def _no_float(_text: str) -> NoReturn:
    _fail("", RULE_FLOAT_NOT_ALLOWED, "numbers must be integers")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INTEGER_DIGITS or abs(int(text)) > MAX_SAFE_INTEGER:
        _fail("", RULE_INTEGER_OUT_OF_RANGE, f"an integer is beyond ±{MAX_SAFE_INTEGER}")
    return int(text)


def load_receipt_json(data: bytes) -> JsonValue:
    """Parse receipt bytes as strict JSON: at most MAX_RECEIPT_BYTES of UTF-8 without a byte
    order mark, unique member names, integers only (within ±(2**53 - 1)).

    The receipt as a whole need not be canonical (it is never hashed); the envelope and result
    inside it are checked against the canonical profile by parse_receipt. Raises
    ReceiptFormatError with rule too_large, invalid_json, duplicate_key, float_not_allowed or
    integer_out_of_range.
    """
    if len(data) > MAX_RECEIPT_BYTES:
        _fail("", RULE_TOO_LARGE, f"larger than MAX_RECEIPT_BYTES={MAX_RECEIPT_BYTES}")
    if data.startswith(_UTF8_BOM):
        _fail("", RULE_INVALID_JSON, "starts with a byte order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _fail("", RULE_INVALID_JSON, "is not UTF-8")
    try:
        value: JsonValue = json.loads(
            text,
            object_pairs_hook=_unique,
            parse_float=_no_float,
            parse_constant=_no_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        _fail("", RULE_INVALID_JSON, f"{exc.msg} (line {exc.lineno}, column {exc.colno})")
    except RecursionError:
        _fail("", RULE_INVALID_JSON, "nested too deeply")
    return value


def encode_receipt(receipt: dict[str, JsonValue]) -> bytes:
    """Compact UTF-8 JSON of a receipt (as build_receipt returns it), members in given order."""
    return json.dumps(receipt, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- members -------------------------------------------------------------------------------------


def _object(value: JsonValue, pointer: str, members: Sequence[str]) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        _fail(pointer, RULE_WRONG_TYPE, "must be an object")
    for name in members:
        if name not in value:
            _fail(join_pointer(pointer, name), RULE_REQUIRED, "is required")
    for name in value:
        if name not in members:
            _fail(join_pointer(pointer, name), RULE_UNKNOWN_MEMBER, "is not a member here")
    return value


def _string(value: JsonValue, pointer: str, *, max_chars: int) -> str:
    if not isinstance(value, str):
        _fail(pointer, RULE_WRONG_TYPE, "must be a string")
    if len(value) > max_chars:
        _fail(pointer, RULE_TOO_LARGE, f"longer than {max_chars} characters")
    return value


def _index(value: JsonValue, pointer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(pointer, RULE_WRONG_TYPE, "must be an integer")
    if value < 0:
        _fail(pointer, RULE_OUT_OF_RANGE, "must not be negative")
    return value


def _bytes(value: JsonValue, pointer: str, *, max_bytes: int) -> bytes:
    # Bounded before decoding: base64 is 4 characters for every 3 bytes.
    text = _string(value, pointer, max_chars=4 * -(-max_bytes // 3))
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        _fail(pointer, RULE_INVALID_BASE64, "is not standard base64 with padding")
    if _b64(decoded) != text:  # one encoding per value: no stray padding or unused bits
        _fail(pointer, RULE_INVALID_BASE64, "is not canonical base64")
    if len(decoded) > max_bytes:
        _fail(pointer, RULE_TOO_LARGE, f"more than {max_bytes} bytes")
    return decoded


def _proof(value: JsonValue, pointer: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        _fail(pointer, RULE_WRONG_TYPE, "must be an array")
    if len(value) > MAX_PROOF_HASHES:
        _fail(pointer, RULE_TOO_MANY, f"more than MAX_PROOF_HASHES={MAX_PROOF_HASHES} hashes")
    hashes: list[bytes] = []
    for i, item in enumerate(value):
        digest = _bytes(item, join_pointer(pointer, i), max_bytes=HASH_SIZE)
        if len(digest) != HASH_SIZE:
            _fail(join_pointer(pointer, i), RULE_INVALID_FORMAT, f"must be {HASH_SIZE} bytes")
        hashes.append(digest)
    return tuple(hashes)


def _jws(value: JsonValue, pointer: str) -> str:
    text = _string(value, pointer, max_chars=MAX_JWS_CHARS)
    if not _DETACHED_JWS.fullmatch(text):
        _fail(pointer, RULE_INVALID_FORMAT, "must be a compact detached JWS")
    return text


def _canonical_object(value: JsonValue, pointer: str) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        _fail(pointer, RULE_WRONG_TYPE, "must be an object")
    try:
        # An envelope may be a batch (up to signatures.jws.MAX_PAYLOAD_BYTES): the receipt as a
        # whole is bounded by MAX_RECEIPT_BYTES already.
        canonicalize(value, max_bytes=MAX_DOCUMENT_BYTES)
    except CanonicalFormError as exc:
        _fail(pointer + exc.pointer, exc.rule, "is outside the canonical JSON profile")
    return value


def _envelope(value: JsonValue, pointer: str) -> dict[str, JsonValue]:
    envelope = _canonical_object(value, pointer)
    # Only what verification reads is required here: the envelope rules of its day were checked
    # when it was accepted, and a later, narrower rule must not make old receipts unreadable.
    for name in ("type", "signer"):
        if not isinstance(envelope.get(name), str):
            _fail(join_pointer(pointer, name), RULE_WRONG_TYPE, "must be a string")
    return envelope


def _proven_entry(value: JsonValue, pointer: str) -> ProvenEntry:
    obj = _object(value, pointer, PROVEN_ENTRY_MEMBERS)
    return ProvenEntry(
        leaf_index=_index(obj["leaf_index"], join_pointer(pointer, "leaf_index")),
        leaf=_bytes(obj["leaf"], join_pointer(pointer, "leaf"), max_bytes=MAX_LEAF_JSON_BYTES),
        inclusion_proof=_proof(obj["inclusion_proof"], join_pointer(pointer, "inclusion_proof")),
        envelope=_envelope(obj["envelope"], join_pointer(pointer, "envelope")),
        jws=_jws(obj["jws"], join_pointer(pointer, "jws")),
    )


def _jwk(value: JsonValue, pointer: str) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        _fail(pointer, RULE_WRONG_TYPE, "must be an object")
    try:
        PublicJwk.from_dict(value)
        return value
    except JwkError as exc:
        _fail(
            join_pointer(pointer, exc.member) if exc.member else pointer, RULE_INVALID_JWK, str(exc)
        )


def _kid(value: JsonValue, pointer: str) -> str:
    text = _string(value, pointer, max_chars=KID_CHARS)
    decoded = parse_b64url(text)
    if decoded is None or len(decoded) != KID_BYTES:
        _fail(pointer, RULE_INVALID_FORMAT, "must be an RFC 7638 thumbprint (base64url)")
    return text


def _signer_key(value: JsonValue) -> SignerKeyEvidence:
    pointer = "/signer_key"
    obj = _object(value, pointer, SIGNER_KEY_MEMBERS)
    assurance = obj["assurance"]
    if not isinstance(assurance, str) or assurance not in {a.value for a in AssuranceLevel}:
        _fail(f"{pointer}/assurance", RULE_INVALID_FORMAT, "must be registered or certified")
    events = obj["events"]
    if not isinstance(events, list):
        _fail(f"{pointer}/events", RULE_WRONG_TYPE, "must be an array")
    if len(events) > MAX_KEY_EVENTS_IN_RECEIPT:
        _fail(f"{pointer}/events", RULE_TOO_MANY, f"more than {MAX_KEY_EVENTS_IN_RECEIPT} events")
    return SignerKeyEvidence(
        kid=_kid(obj["kid"], f"{pointer}/kid"),
        subject=_string(obj["subject"], f"{pointer}/subject", max_chars=MAX_SUBJECT_CHARS),
        jwk=_jwk(obj["jwk"], f"{pointer}/jwk"),
        assurance=assurance,
        registration=_proven_entry(obj["registration"], f"{pointer}/registration"),
        events=tuple(
            _proven_entry(event, f"{pointer}/events/{i}") for i, event in enumerate(events)
        ),
    )


def parse_receipt(value: JsonValue) -> Receipt:
    """Check a receipt's form (as load_receipt_json returns it) and return its pieces.

    Raises ReceiptFormatError naming the member (a JSON Pointer) and the rule: required,
    unknown_member, wrong_type, unsupported_format (format is not "pishkhan-receipt/1"),
    invalid_format, invalid_base64, too_large, too_many (more than MAX_PROOF_HASHES proof hashes
    or MAX_KEY_EVENTS_IN_RECEIPT events), out_of_range, invalid_jwk, or a canonical JSON rule of
    signatures.canonical for an envelope or result outside that profile.
    """
    obj = _object(value, "", MEMBERS)
    if obj["format"] != RECEIPT_FORMAT:
        _fail("/format", RULE_UNSUPPORTED_FORMAT, f"must be {RECEIPT_FORMAT!r}")
    transaction_id = _string(obj["transaction_id"], "/transaction_id", max_chars=36)
    if not _UUID.fullmatch(transaction_id):
        _fail("/transaction_id", RULE_INVALID_FORMAT, "must be a lowercase UUID")
    return Receipt(
        transaction_id=transaction_id,
        envelope=_envelope(obj["envelope"], "/envelope"),
        jws=_jws(obj["jws"], "/jws"),
        result=_canonical_object(obj["result"], "/result"),
        leaf=_bytes(obj["leaf"], "/leaf", max_bytes=MAX_LEAF_JSON_BYTES),
        leaf_index=_index(obj["leaf_index"], "/leaf_index"),
        inclusion_proof=_proof(obj["inclusion_proof"], "/inclusion_proof"),
        checkpoint=_string(obj["checkpoint"], "/checkpoint", max_chars=MAX_NOTE_BYTES),
        signer_key=_signer_key(obj["signer_key"]),
    )


def parse_receipt_json(data: bytes) -> Receipt:
    """load_receipt_json then parse_receipt. Raises ReceiptFormatError as they do."""
    return parse_receipt(load_receipt_json(data))


def build_receipt(
    *,
    transaction_id: str,
    envelope: dict[str, JsonValue],
    jws: str,
    result: dict[str, JsonValue],
    leaf: bytes,
    leaf_index: int,
    inclusion_proof: Sequence[bytes],
    checkpoint_note: str,
    signer_key: SignerKeyEvidence,
    self_check: bool = True,
) -> dict[str, JsonValue]:
    """The receipt as a JSON-ready object, checked by parse_receipt before it is returned unless
    self_check is False (the service's hot path: its receipts are built from values it verified,
    and its tests run every receipt through the offline verifier).

    Checks form only. Raises ReceiptFormatError as parse_receipt does, or with rule too_large
    when the encoded receipt would exceed MAX_RECEIPT_BYTES.
    """
    receipt = Receipt(
        transaction_id=transaction_id,
        envelope=envelope,
        jws=jws,
        result=result,
        leaf=leaf,
        leaf_index=leaf_index,
        inclusion_proof=tuple(inclusion_proof),
        checkpoint=checkpoint_note,
        signer_key=signer_key,
    ).as_json()
    if self_check:
        parse_receipt(receipt)
    if len(encode_receipt(receipt)) > MAX_RECEIPT_BYTES:
        _fail("", RULE_TOO_LARGE, f"larger than MAX_RECEIPT_BYTES={MAX_RECEIPT_BYTES}")
    return receipt
