"""The licence credential: a compact JWS (JWT form) signed EdDSA by the issuing agency's key.

Header, exactly: ``{"alg":"EdDSA","kid":<RFC 7638 thumbprint>,"typ":"pishkhan-licence+jwt"}``.
Payload, exactly these members (docs/LICENCES.md)::

    {"v": 1, "iss": "agency:<id>", "sub": <holder subject>, "lty": <type code>,
     "lno": <licence number>, "vf": "YYYY-MM-DD", "vu": "YYYY-MM-DD",
     "nbf": <unix s>, "exp": <unix s>, "iat": <unix s>, "jti": <licence id>}

``vf``..``vu`` is the inclusive term; ``nbf`` is the start of ``vf`` and ``exp`` the start of the
day after ``vu``, both in the jurisdiction's time zone (computed by the caller).

Verification follows RFC 8725 (JWT best current practice): the algorithm is pinned to EdDSA
(section 3.1; the header's ``alg`` only has to agree), the explicit ``typ`` is required
(section 3.11), the ``kid`` is only looked up among the keys the caller passes, never fetched,
and the key found must belong to ``iss`` (section 3.8: one issuer cannot sign for another). The
size is checked before anything is decoded. Times are NOT compared with a clock here: whether
the licence is currently valid is the online check's business (it also knows suspensions).

Pure code: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from licences.errors import CredentialError
from signatures.canonical import JsonValue, parse_json
from signatures.envelope import SubjectKind, parse_subject
from signatures.errors import CanonicalFormError, JwkError, SubjectError
from signatures.jwk import PublicJwk, parse_b64url

CREDENTIAL_TYP: Final = "pishkhan-licence+jwt"
CREDENTIAL_ALG: Final = "EdDSA"
CREDENTIAL_VERSION: Final = 1
# Small enough for a QR code a phone camera reads at arm's length (version 25-ish, level M).
MAX_CREDENTIAL_CHARS: Final = 1024
CREDENTIAL_REASONS: Final = (
    "malformed",
    "too_large",
    "unsupported_algorithm",
    "wrong_type",
    "unknown_key",
    "wrong_issuer",
    "bad_signature",
    "invalid_claims",
)

HEADER_MEMBERS: Final = frozenset({"alg", "kid", "typ"})
PAYLOAD_MEMBERS: Final = frozenset(
    {"v", "iss", "sub", "lty", "lno", "vf", "vu", "nbf", "exp", "iat", "jti"}
)
ED25519_SIGNATURE_BYTES: Final = 64
KID_CHARS: Final = 43  # base64url of a SHA-256 digest
# The licence type code (licences/types.py) and a licence number: the credential repeats them,
# so their shapes are bounded here too (the type's own number_pattern is narrower).
TYPE_CODE_PATTERN: Final = re.compile(r"[a-z][a-z0-9-]{1,30}\.[a-z][a-z0-9-]{1,30}")
MAX_NUMBER_CHARS: Final = 32
NUMBER_PATTERN: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z/-]{0,31}")
# The licence id is the licence.issue transaction's id: a lowercase UUID.
LICENCE_ID_PATTERN: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
ISO_DATE_PATTERN: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Unix seconds from the epoch to 9999-12-31T23:59:59Z: what a date can end on.
MAX_UNIX_S: Final = 253_402_300_799


@dataclass(frozen=True)
class CredentialClaims:
    """What a credential states: issuer and holder subjects, type code, number, the inclusive
    term, its instants (unix seconds) and the licence id."""

    issuer: str
    holder: str
    licence_type: str
    number: str
    valid_from: date
    valid_until: date
    not_before: int
    expires_at: int
    issued_at: int
    licence_id: str


@dataclass(frozen=True)
class IssuerKey:
    """A credential verification key: its RFC 7638 thumbprint, the agency subject it belongs to
    (from the key registry) and the Ed25519 public key."""

    kid: str
    issuer: str
    public_key: Ed25519PublicKey


def _refuse(reason: str, message: str) -> CredentialError:
    assert reason in CREDENTIAL_REASONS
    return CredentialError(message, reason=reason)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 thumbprint of an Ed25519 public key (its OKP JWK, RFC 8037)."""
    return PublicJwk.from_public_key(public_key).kid


def issuer_key(public_key: Ed25519PublicKey, *, issuer: str) -> IssuerKey:
    """The IssuerKey of public_key for agency subject issuer (kid = its thumbprint).

    Raises CredentialError("invalid_claims") when issuer is not an agency subject, and
    CredentialError("unknown_key") for a public key the JWK profile refuses (small order).
    """
    _issuer(issuer)
    try:
        kid = key_id(public_key)
    except JwkError:
        raise _refuse("unknown_key", "the public key is not an acceptable Ed25519 key") from None
    return IssuerKey(kid=kid, issuer=issuer, public_key=public_key)


def issuer_key_json(key: IssuerKey) -> dict[str, str]:
    """The published form of key: its public JWK (RFC 8037 OKP) with ``alg``, ``use`` and
    ``kid`` (the RFC 7638 thumbprint), plus ``iss``, the agency whose credentials it signs."""
    jwk = PublicJwk.from_public_key(key.public_key)
    return {**jwk.to_dict(), "alg": CREDENTIAL_ALG, "use": "sig", "kid": jwk.kid, "iss": key.issuer}


# --- claims <-> payload ---------------------------------------------------------------------------


def _payload(claims: CredentialClaims) -> dict[str, JsonValue]:
    return {
        "v": CREDENTIAL_VERSION,
        "iss": claims.issuer,
        "sub": claims.holder,
        "lty": claims.licence_type,
        "lno": claims.number,
        "vf": claims.valid_from.isoformat(),
        "vu": claims.valid_until.isoformat(),
        "nbf": claims.not_before,
        "exp": claims.expires_at,
        "iat": claims.issued_at,
        "jti": claims.licence_id,
    }


def _issuer(value: JsonValue) -> str:
    if not isinstance(value, str):
        raise _refuse("invalid_claims", "iss must be a string")
    try:
        subject = parse_subject(value)
    except SubjectError:
        raise _refuse("invalid_claims", "iss must be an agency subject") from None
    if subject.kind is not SubjectKind.AGENCY or str(subject) != value:
        raise _refuse("invalid_claims", "iss must be an agency subject")
    return value


def _text(payload: Mapping[str, JsonValue], name: str, pattern: re.Pattern[str]) -> str:
    value = payload[name]
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise _refuse("invalid_claims", f"{name} does not have the required form")
    return value


def _holder(value: JsonValue) -> str:
    if not isinstance(value, str):
        raise _refuse("invalid_claims", "sub must be a string")
    try:
        subject = parse_subject(value)
    except SubjectError:
        raise _refuse("invalid_claims", "sub must be a person or entity subject") from None
    if subject.kind is SubjectKind.AGENCY or str(subject) != value:
        raise _refuse("invalid_claims", "sub must be a person or entity subject")
    return value


def _day(payload: Mapping[str, JsonValue], name: str) -> date:
    text = _text(payload, name, ISO_DATE_PATTERN)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _refuse("invalid_claims", f"{name} is not a calendar date") from None


def _seconds(payload: Mapping[str, JsonValue], name: str) -> int:
    value = payload[name]
    # bool is an int in Python; JSON true is not a time.
    if type(value) is not int or not 0 <= value <= MAX_UNIX_S:
        raise _refuse("invalid_claims", f"{name} must be an integer of unix seconds")
    return value


def _claims(payload: Mapping[str, JsonValue]) -> CredentialClaims:
    """The claims of a payload with exactly PAYLOAD_MEMBERS. Raises CredentialError
    ("invalid_claims") naming the first member that is wrong (never its value)."""
    missing = sorted(PAYLOAD_MEMBERS - payload.keys())
    extra = sorted(payload.keys() - PAYLOAD_MEMBERS)
    if missing or extra:
        raise _refuse("invalid_claims", f"payload members: missing {missing}, not allowed {extra}")
    version = payload["v"]
    if type(version) is not int or version != CREDENTIAL_VERSION:
        raise _refuse("invalid_claims", f"v must be {CREDENTIAL_VERSION}")
    claims = CredentialClaims(
        issuer=_issuer(payload["iss"]),
        holder=_holder(payload["sub"]),
        licence_type=_text(payload, "lty", TYPE_CODE_PATTERN),
        number=_text(payload, "lno", NUMBER_PATTERN),
        valid_from=_day(payload, "vf"),
        valid_until=_day(payload, "vu"),
        not_before=_seconds(payload, "nbf"),
        expires_at=_seconds(payload, "exp"),
        issued_at=_seconds(payload, "iat"),
        licence_id=_text(payload, "jti", LICENCE_ID_PATTERN),
    )
    if claims.valid_until < claims.valid_from:
        raise _refuse("invalid_claims", "vu is before vf")
    if claims.expires_at <= claims.not_before:
        raise _refuse("invalid_claims", "exp is not after nbf")
    return claims


# --- encode ---------------------------------------------------------------------------------------


def encode_credential(claims: CredentialClaims, *, private_key: Ed25519PrivateKey) -> str:
    """The compact JWS of claims, signed with private_key (kid = its thumbprint).

    Raises CredentialError("invalid_claims") when claims break the payload rules (the same ones
    verify_credential applies), and CredentialError("too_large") when the token would exceed
    MAX_CREDENTIAL_CHARS (the field limits keep it well below).
    """
    payload = _payload(claims)
    _claims(payload)  # never sign what verify_credential would refuse
    kid = key_id(private_key.public_key())
    headers = {"kid": kid, "typ": CREDENTIAL_TYP}
    # sort_headers (the default) gives exactly {"alg","kid","typ"} in that order.
    token = jwt.encode(payload, private_key, algorithm=CREDENTIAL_ALG, headers=headers)
    if len(token) > MAX_CREDENTIAL_CHARS:
        raise _refuse("too_large", f"the credential is longer than {MAX_CREDENTIAL_CHARS}")
    return token


# --- verify ---------------------------------------------------------------------------------------


def _segments(token: str) -> tuple[str, str, str, bytes, bytes, bytes]:
    """The three base64url segments of a compact JWS and their decoded bytes."""
    parts = token.split(".")
    if len(parts) != 3:
        raise _refuse("malformed", "a credential is three base64url segments joined by '.'")
    decoded = [parse_b64url(part) for part in parts]
    header, payload, signature = decoded
    if header is None or payload is None or signature is None or not header or not payload:
        raise _refuse("malformed", "a segment is not canonical unpadded base64url")
    return parts[0], parts[1], parts[2], header, payload, signature


def _json_object(data: bytes, what: str) -> dict[str, JsonValue]:
    try:
        value = parse_json(data, max_bytes=MAX_CREDENTIAL_CHARS)
    except CanonicalFormError:
        raise _refuse("malformed", f"the {what} is not strict JSON") from None
    if not isinstance(value, dict):
        raise _refuse("malformed", f"the {what} is not a JSON object")
    return value


def _check_header(header: Mapping[str, JsonValue], keys: Mapping[str, IssuerKey]) -> IssuerKey:
    """The key the header names, after the algorithm and type checks."""
    if header.get("alg") != CREDENTIAL_ALG:
        raise _refuse("unsupported_algorithm", f"the algorithm must be {CREDENTIAL_ALG}")
    if header.get("typ") != CREDENTIAL_TYP:
        raise _refuse("wrong_type", f"typ must be {CREDENTIAL_TYP!r}")
    if set(header) - HEADER_MEMBERS:
        raise _refuse("malformed", "the header has members other than alg, kid and typ")
    kid = header.get("kid")
    found = keys.get(kid) if isinstance(kid, str) and len(kid) == KID_CHARS else None
    if found is None or found.kid != kid:
        raise _refuse("unknown_key", "the credential's key is not a published issuer key")
    return found


def verify_credential(token: str, *, keys: Mapping[str, IssuerKey]) -> CredentialClaims:
    """The claims of token, when it is an authentic credential signed by one of keys.

    Checks, in order (each failure is CredentialError with that reason): too_large (longer than
    MAX_CREDENTIAL_CHARS, before anything is decoded), malformed (not three canonical base64url
    segments, a header that is not a JSON object of alg, kid and typ), unsupported_algorithm
    (alg is not EdDSA), wrong_type (typ), unknown_key (kid not in keys), bad_signature,
    malformed (payload not a JSON object), invalid_claims (iss missing or not an agency),
    wrong_issuer (the key belongs to another agency), invalid_claims (members not exactly as
    specified). Validity times are not compared with any clock.
    """
    if len(token) > MAX_CREDENTIAL_CHARS:
        raise _refuse("too_large", f"a credential is at most {MAX_CREDENTIAL_CHARS} characters")
    if not token.isascii():
        raise _refuse("malformed", "a credential is ASCII")
    header_b64, payload_b64, _, header_bytes, payload_bytes, signature = _segments(token)
    key = _check_header(_json_object(header_bytes, "header"), keys)
    if len(signature) != ED25519_SIGNATURE_BYTES:
        raise _refuse("bad_signature", "the signature is not valid for the key")
    try:
        key.public_key.verify(signature, f"{header_b64}.{payload_b64}".encode("ascii"))
    except InvalidSignature:
        raise _refuse("bad_signature", "the signature is not valid for the key") from None
    payload = _json_object(payload_bytes, "payload")
    issuer = _issuer(payload.get("iss"))
    if issuer != key.issuer:
        raise _refuse("wrong_issuer", "the signing key does not belong to the issuer")
    return _claims(payload)


# --- the published keys, read back (offline verification) ------------------------------------

MAX_ISSUER_KEYS: Final = 1024  # keys one published issuer-key document may hold


def issuer_keys_from_jwks(document: JsonValue) -> dict[str, IssuerKey]:
    """The keys of a published issuer-key document (``{"keys": [<issuer_key_json>, …]}``, as
    GET /v1/licences/issuer-keys serves it), by kid, for verify_credential.

    The kid is recomputed from the key (RFC 7638), never taken on trust; members other than
    the JWK's, ``alg``, ``use``, ``kid``, ``iss`` and ``registered_index`` are refused.

    Raises CredentialError("malformed") naming the entry and the rule it breaks.
    """
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or len(keys) > MAX_ISSUER_KEYS:
        raise _refuse(
            "malformed", f'the document is {{"keys": [...]}} of at most {MAX_ISSUER_KEYS}'
        )
    found: dict[str, IssuerKey] = {}
    for position, entry in enumerate(keys):
        key = _published_key(entry, where=f"/keys/{position}")
        found[key.kid] = key
    return found


_PUBLISHED_EXTRAS: Final = frozenset({"alg", "use", "kid", "iss", "registered_index"})


def _published_key(entry: JsonValue, *, where: str) -> IssuerKey:
    if not isinstance(entry, dict):
        raise _refuse("malformed", f"{where} is not an object")
    members = {k: v for k, v in entry.items() if k not in _PUBLISHED_EXTRAS}
    try:
        jwk = PublicJwk.from_dict(members)
    except JwkError as error:
        raise _refuse("malformed", f"{where}: {error}") from None
    if entry.get("alg", CREDENTIAL_ALG) != CREDENTIAL_ALG or entry.get("use", "sig") != "sig":
        raise _refuse("malformed", f"{where}: alg is EdDSA and use is sig")
    if "kid" in entry and entry["kid"] != jwk.kid:
        raise _refuse("malformed", f"{where}: kid is not the key's RFC 7638 thumbprint")
    public_key = jwk.public_key
    if not isinstance(public_key, Ed25519PublicKey):
        raise _refuse("malformed", f"{where}: an issuer key is an Ed25519 (OKP) key")
    issuer = entry.get("iss")
    if not isinstance(issuer, str):
        raise _refuse("malformed", f"{where}: iss names the agency the key signs for")
    return issuer_key(public_key, issuer=issuer)
