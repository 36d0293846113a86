"""The transaction leaf: what the ledger records for each accepted signed transaction.

The leaf bytes are the RFC 8785 canonical JSON (signatures.canonical) of exactly::

    {"v": 1, "tx_id": <lowercase UUID>, "type": <envelope type>, "accepted_at": <timestamp>,
     "envelope_sha256": <hex SHA-256 of the canonical envelope>, "jws": <compact detached JWS>,
     "kid": <RFC 7638 thumbprint>, "result_sha256": <hex SHA-256 of the canonical result>}

No personal data in clear: the envelope and the result appear only as hashes, so erasing them
elsewhere never breaks a proof. A leaf has exactly one encoding: parse_leaf refuses any bytes
that encode_leaf would not produce. The service guarantees (and verifiers may check) that
``accepted_at`` strictly increases with the leaf index. docs/FORMATS.md is the specification.

Pure code: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.errors import LeafFormatError
from signatures.canonical import (
    MAX_DOCUMENT_BYTES,
    MAX_JSON_BYTES,
    JsonValue,
    canonicalize,
    parse_json,
)
from signatures.errors import CanonicalFormError
from signatures.jwk import parse_b64url
from signatures.jws import MAX_JWS_CHARS
from signatures.keys import is_transaction_type, require_aware

LEAF_VERSION = 1
# The canonical JSON profile's bound, which is also ledger.store's MAX_LEAF_BYTES (64 KiB): a leaf
# that parses here always fits the ledger.
MAX_LEAF_JSON_BYTES = MAX_JSON_BYTES
SHA256_BYTES = 32
KID_BYTES = 32  # an RFC 7638 thumbprint is the base64url of a SHA-256 digest
MEMBERS = ("v", "tx_id", "type", "accepted_at", "envelope_sha256", "jws", "kid", "result_sha256")

RULE_INVALID_JSON = "invalid_json"
RULE_TOO_LARGE = "too_large"
RULE_WRONG_TYPE = "wrong_type"
RULE_REQUIRED = "required"
RULE_UNKNOWN_MEMBER = "unknown_member"
RULE_UNSUPPORTED_VERSION = "unsupported_version"
RULE_INVALID_FORMAT = "invalid_format"
RULE_INVALID_TIMESTAMP = "invalid_timestamp"
RULE_NOT_AWARE = "not_aware"
RULE_NON_CANONICAL = "non_canonical"

# [0-9], never \d: \d also matches Persian and Arabic-Indic digits.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z"
)
# Shape only: the leaf records a JWS the service accepted under the profile of its day; a later,
# narrower profile must not make old leaves unreadable.
_DETACHED_JWS = re.compile(r"[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+")


def format_timestamp(at: datetime) -> str:
    """``at`` in UTC as "YYYY-MM-DDTHH:MM:SS.ffffffZ", always six fraction digits.

    Raises NaiveDatetimeError for a datetime without a time zone.
    """
    utc = require_aware(at, field="at").astimezone(UTC)
    # Explicit widths: strftime("%Y") does not pad years below 1000 on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def parse_timestamp(text: str, *, member: str = "accepted_at") -> datetime:
    """The aware UTC instant of a "YYYY-MM-DDTHH:MM:SS.ffffffZ" timestamp.

    Exactly that form: six fraction digits, a Z, ASCII digits. Raises LeafFormatError naming
    ``member``: rule wrong_type, invalid_format, or invalid_timestamp (no such calendar time,
    e.g. February 30 or second 60).
    """
    if not isinstance(text, str):
        raise LeafFormatError(f"{member} must be a string", member=member, rule=RULE_WRONG_TYPE)
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise LeafFormatError(
            f"{member} is not YYYY-MM-DDTHH:MM:SS.ffffffZ", member=member, rule=RULE_INVALID_FORMAT
        )
    year, month, day, hour, minute, second, micro = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError:
        raise LeafFormatError(
            f"{member} is not a real time", member=member, rule=RULE_INVALID_TIMESTAMP
        ) from None


def sha256_of_json(value: JsonValue) -> bytes:
    """SHA-256 of the RFC 8785 canonical bytes of value (the leaf's envelope and result hashes).

    Raises CanonicalFormError when value is outside the canonical profile (a batch envelope may
    be up to MAX_DOCUMENT_BYTES; the leaf itself stays within MAX_LEAF_JSON_BYTES).
    """
    return hashlib.sha256(canonicalize(value, max_bytes=MAX_DOCUMENT_BYTES)).digest()


def _fail(member: str, rule: str, message: str) -> LeafFormatError:
    return LeafFormatError(f"leaf {member or '(root)'}: {message}", member=member, rule=rule)


def _require_str(value: object, member: str) -> str:
    if not isinstance(value, str):
        raise _fail(member, RULE_WRONG_TYPE, "must be a string")
    return value


def _require_digest(value: object, member: str) -> None:
    if not isinstance(value, bytes):
        raise _fail(member, RULE_WRONG_TYPE, "must be bytes")
    if len(value) != SHA256_BYTES:
        raise _fail(member, RULE_INVALID_FORMAT, f"must be {SHA256_BYTES} bytes")


@dataclass(frozen=True, kw_only=True)
class TransactionLeaf:
    """One ledger leaf. Hashes are raw bytes here and lowercase hex in the encoding.

    Raises LeafFormatError on construction, naming the member and the rule: a tx_id that is not
    a lowercase UUID, a type that is not a transaction type, a naive accepted_at, a hash that is
    not 32 bytes, a jws that is not a compact detached JWS of at most MAX_JWS_CHARS, or a kid
    that is not the canonical base64url of 32 bytes.
    """

    tx_id: str
    type: str
    accepted_at: datetime
    envelope_sha256: bytes
    jws: str
    kid: str
    result_sha256: bytes

    def __post_init__(self) -> None:
        if not _UUID.fullmatch(_require_str(self.tx_id, "tx_id")):
            raise _fail("tx_id", RULE_INVALID_FORMAT, "must be a lowercase UUID")
        if not is_transaction_type(_require_str(self.type, "type")):
            raise _fail("type", RULE_INVALID_FORMAT, "must be a transaction type like bill.pay")
        if not isinstance(self.accepted_at, datetime):
            raise _fail("accepted_at", RULE_WRONG_TYPE, "must be a datetime")
        if self.accepted_at.tzinfo is None or self.accepted_at.utcoffset() is None:
            raise _fail("accepted_at", RULE_NOT_AWARE, "must be an aware datetime")
        _require_digest(self.envelope_sha256, "envelope_sha256")
        _require_digest(self.result_sha256, "result_sha256")
        jws = _require_str(self.jws, "jws")
        if len(jws) > MAX_JWS_CHARS or not _DETACHED_JWS.fullmatch(jws):
            raise _fail("jws", RULE_INVALID_FORMAT, "must be a compact detached JWS")
        kid = parse_b64url(_require_str(self.kid, "kid"))
        if kid is None or len(kid) != KID_BYTES:
            raise _fail("kid", RULE_INVALID_FORMAT, "must be an RFC 7638 thumbprint")

    def as_json(self) -> dict[str, JsonValue]:
        """The leaf as the JSON object whose canonical bytes are the leaf."""
        return {
            "v": LEAF_VERSION,
            "tx_id": self.tx_id,
            "type": self.type,
            "accepted_at": format_timestamp(self.accepted_at),
            "envelope_sha256": self.envelope_sha256.hex(),
            "jws": self.jws,
            "kid": self.kid,
            "result_sha256": self.result_sha256.hex(),
        }


def encode_leaf(leaf: TransactionLeaf) -> bytes:
    """The leaf bytes: RFC 8785 canonical JSON of leaf.as_json().

    Raises LeafFormatError (rule too_large) if they would exceed MAX_LEAF_JSON_BYTES.
    """
    try:
        return canonicalize(leaf.as_json())
    except CanonicalFormError as exc:  # only the size can fail: the values were validated
        raise _fail("", RULE_TOO_LARGE, str(exc)) from None


def _members(data: bytes) -> dict[str, JsonValue]:
    if len(data) > MAX_LEAF_JSON_BYTES:
        raise _fail("", RULE_TOO_LARGE, f"larger than {MAX_LEAF_JSON_BYTES} bytes")
    try:
        value = parse_json(data)
    except CanonicalFormError as exc:
        raise _fail(exc.pointer.lstrip("/"), RULE_INVALID_JSON, str(exc)) from None
    if not isinstance(value, dict):
        raise _fail("", RULE_WRONG_TYPE, "must be a JSON object")
    for name in MEMBERS:
        if name not in value:
            raise _fail(name, RULE_REQUIRED, "is required")
    for name in value:
        if name not in MEMBERS:
            raise _fail(name, RULE_UNKNOWN_MEMBER, "is not a leaf member")
    version = value["v"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise _fail("v", RULE_WRONG_TYPE, "must be an integer")
    if version != LEAF_VERSION:
        raise _fail("v", RULE_UNSUPPORTED_VERSION, f"must be {LEAF_VERSION}")
    return value


def _hex_digest(value: JsonValue, member: str) -> bytes:
    if not _HEX_SHA256.fullmatch(_require_str(value, member)):
        raise _fail(member, RULE_INVALID_FORMAT, "must be 64 lowercase hex digits")
    assert isinstance(value, str)
    return bytes.fromhex(value)


def parse_leaf(data: bytes) -> TransactionLeaf:
    """Parse leaf bytes, accepting only the canonical encoding of a version 1 leaf.

    Raises LeafFormatError naming the member and the rule: too_large, invalid_json (outside the
    canonical JSON profile), wrong_type, required, unknown_member, unsupported_version (v is not
    1), invalid_format, invalid_timestamp, or non_canonical (valid values, but the bytes are not
    encode_leaf's: whitespace, member order, escapes).
    """
    value = _members(data)
    leaf = TransactionLeaf(
        tx_id=_require_str(value["tx_id"], "tx_id"),
        type=_require_str(value["type"], "type"),
        accepted_at=parse_timestamp(_require_str(value["accepted_at"], "accepted_at")),
        envelope_sha256=_hex_digest(value["envelope_sha256"], "envelope_sha256"),
        jws=_require_str(value["jws"], "jws"),
        kid=_require_str(value["kid"], "kid"),
        result_sha256=_hex_digest(value["result_sha256"], "result_sha256"),
    )
    if encode_leaf(leaf) != data:
        raise _fail("", RULE_NON_CANONICAL, "the bytes are not the canonical encoding")
    return leaf
