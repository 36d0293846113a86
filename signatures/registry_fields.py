"""Field readers of the key registry's payloads (signatures.registry_payloads).

Each ``read_*`` takes one JSON value (None when absent: a missing required member is reported
by the caller), appends at most one FieldError per pointer to ``errors`` and returns the parsed
value, or None when it was refused. Pointers are under ``/payload``. The RULE_* here complete
those of signatures.envelope. Pure code.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime

from signatures.canonical import JsonValue, join_pointer
from signatures.certificates import MAX_CERTIFICATE_BYTES, MAX_CHAIN_LENGTH
from signatures.envelope import (
    MAX_TYPE_CHARS,
    RULE_INVALID_FORMAT,
    RULE_REQUIRED,
    RULE_TOO_LONG,
    RULE_UNKNOWN_MEMBER,
    RULE_WRONG_TYPE,
    add_field_error,
    parse_subject,
    read_utc_timestamp,
)
from signatures.errors import FieldError, JwkError, SubjectError
from signatures.jwk import PRIVATE_MEMBERS, PublicJwk, b64url_chars, parse_b64url
from signatures.keys import MAX_DELEGATION_TYPES, RevocationReason

CHALLENGE_BYTES = 32
CHALLENGE_CHARS = b64url_chars(CHALLENGE_BYTES)  # 43
KID_CHARS = b64url_chars(32)  # an RFC 7638 thumbprint is a SHA-256: 43 characters
MAX_X5C_CERTIFICATES = MAX_CHAIN_LENGTH
MAX_X5C_CHARS = 4 * -(-MAX_CERTIFICATE_BYTES // 3)  # padded standard base64

RULE_PRIVATE_KEY_MATERIAL = "private_key_material"
RULE_INVALID_JWK = "invalid_jwk"
RULE_UNKNOWN_VALUE = "unknown_value"
RULE_DUPLICATE = "duplicate"
RULE_EMPTY = "empty"
RULE_TOO_MANY = "too_many"
RULE_NOT_ALLOWED = "not_allowed"
RULE_WRONG_SUBJECT_KIND = "wrong_subject_kind"
RULE_UNSUPPORTED_VERSION = "unsupported_version"
RULE_UNKNOWN_TYPE = "unknown_type"
# Used by the handlers, which know the acceptance time and the configuration:
RULE_NOT_IN_FUTURE = "not_in_future"
RULE_AFTER_CERTIFICATE_EXPIRY = "after_certificate_expiry"
RULE_NOT_CONFIGURED = "not_configured"

# JwkError rules that have an envelope rule of their own; any other is RULE_INVALID_JWK.
_JWK_RULES = {"required": RULE_REQUIRED, "unknown": RULE_UNKNOWN_MEMBER, "type": RULE_WRONG_TYPE}
_STANDARD_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# As signatures.keys: a concrete type ("tax.return") or a namespace wildcard ("tax.*").
_TYPE_PATTERN = re.compile(
    r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+|[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*\.\*"
)


def payload_pointer(member: str) -> str:
    return join_pointer("/payload", member)


add_error = add_field_error


def read_kid(value: JsonValue, errors: list[FieldError]) -> str | None:
    pointer = payload_pointer("kid")
    if value is None:
        return None
    if not isinstance(value, str):
        add_error(errors, pointer, RULE_WRONG_TYPE, "kid must be a string")
    elif len(value) != KID_CHARS or parse_b64url(value) is None:
        add_error(errors, pointer, RULE_INVALID_FORMAT, "kid is an RFC 7638 SHA-256 thumbprint")
    else:
        return value
    return None


def read_timestamp(value: JsonValue, pointer: str, errors: list[FieldError]) -> datetime | None:
    return read_utc_timestamp(value, pointer, errors)


def read_reason(value: JsonValue, errors: list[FieldError]) -> RevocationReason | None:
    pointer = payload_pointer("reason")
    if value is None:
        return None
    if not isinstance(value, str):
        add_error(errors, pointer, RULE_WRONG_TYPE, "reason must be a string")
    elif value not in set(RevocationReason):
        known = ", ".join(sorted(RevocationReason))
        add_error(errors, pointer, RULE_UNKNOWN_VALUE, f"reason is one of {known}")
    else:
        return RevocationReason(value)
    return None


# --- key.register -------------------------------------------------------------------------------


def read_jwk(value: JsonValue, errors: list[FieldError]) -> PublicJwk | None:
    pointer = payload_pointer("jwk")
    if value is None:
        return None
    if not isinstance(value, dict):
        add_error(errors, pointer, RULE_WRONG_TYPE, "jwk must be a JWK object")
        return None
    private = sorted(PRIVATE_MEMBERS.intersection(value))
    if private:  # checked first: a private key must never get past this point, whatever else
        message = "a JWK with private key material is refused: send the public key only"
        add_error(errors, join_pointer(pointer, private[0]), RULE_PRIVATE_KEY_MATERIAL, message)
        return None
    try:
        return PublicJwk.from_dict(value)
    except JwkError as exc:
        where = join_pointer(pointer, exc.member) if exc.member else pointer
        add_error(errors, where, _JWK_RULES.get(exc.rule, RULE_INVALID_JWK), str(exc))
    return None


def read_challenge(value: JsonValue, errors: list[FieldError]) -> str | None:
    pointer = payload_pointer("challenge")
    if value is None:
        return None
    if not isinstance(value, str):
        add_error(errors, pointer, RULE_WRONG_TYPE, "challenge must be a string")
    elif len(value) != CHALLENGE_CHARS or parse_b64url(value) is None:
        message = f"challenge is {CHALLENGE_BYTES} bytes in base64url, as the service issued it"
        add_error(errors, pointer, RULE_INVALID_FORMAT, message)
    else:
        return value
    return None


def _certificate(value: JsonValue, pointer: str, errors: list[FieldError]) -> bytes | None:
    if not isinstance(value, str):
        add_error(errors, pointer, RULE_WRONG_TYPE, "a certificate is a base64 string")
    elif len(value) > MAX_X5C_CHARS:
        add_error(errors, pointer, RULE_TOO_LONG, f"over {MAX_CERTIFICATE_BYTES} bytes of DER")
    elif len(value) % 4 or not _STANDARD_BASE64.fullmatch(value):
        add_error(
            errors, pointer, RULE_INVALID_FORMAT, "standard base64 with padding (RFC 7515 x5c)"
        )
    else:
        der = base64.b64decode(value, validate=True)
        if base64.b64encode(der).decode("ascii") == value:  # no second spelling of the bytes
            return der
        add_error(errors, pointer, RULE_INVALID_FORMAT, "not canonical base64")
    return None


def read_x5c(value: JsonValue, errors: list[FieldError]) -> tuple[bytes, ...]:
    pointer = payload_pointer("x5c")
    if value is None:
        return ()
    if not isinstance(value, list):
        add_error(errors, pointer, RULE_WRONG_TYPE, "x5c must be a list of certificates")
    elif not value:
        add_error(errors, pointer, RULE_EMPTY, "x5c holds at least the leaf certificate")
    elif len(value) > MAX_X5C_CERTIFICATES:
        message = f"more than MAX_X5C_CERTIFICATES={MAX_X5C_CERTIFICATES} certificates"
        add_error(errors, pointer, RULE_TOO_MANY, message)
    else:
        chain = [
            _certificate(item, join_pointer(pointer, i), errors) for i, item in enumerate(value)
        ]
        return tuple(der for der in chain if der is not None)
    return ()


# --- delegation.grant, delegation.revoke -------------------------------------------------------


def read_delegate(value: JsonValue, errors: list[FieldError]) -> str | None:
    pointer = payload_pointer("delegate")
    if value is None:
        return None
    if not isinstance(value, str):
        add_error(errors, pointer, RULE_WRONG_TYPE, "delegate must be a subject string")
        return None
    try:
        subject = parse_subject(value)
    except SubjectError as exc:
        add_error(errors, pointer, exc.rule, str(exc))
        return None
    if not subject.kind.is_person():
        message = "a delegate is a person (ir-nid: or ee-ik:)"
        add_error(errors, pointer, RULE_WRONG_SUBJECT_KIND, message)
        return None
    return str(subject)


def read_types(value: JsonValue, errors: list[FieldError]) -> frozenset[str] | None:
    pointer = payload_pointer("types")
    if value is None:
        return None
    if not isinstance(value, list):
        add_error(errors, pointer, RULE_WRONG_TYPE, "types must be a list of transaction types")
        return None
    if not value:
        add_error(errors, pointer, RULE_EMPTY, "types names at least one transaction type")
        return None
    if len(value) > MAX_DELEGATION_TYPES:
        message = f"more than MAX_DELEGATION_TYPES={MAX_DELEGATION_TYPES} entries"
        add_error(errors, pointer, RULE_TOO_MANY, message)
        return None
    seen: set[str] = set()
    for index, item in enumerate(value):
        where = join_pointer(pointer, index)
        if not isinstance(item, str):
            add_error(errors, where, RULE_WRONG_TYPE, "a transaction type is a string")
        elif len(item) > MAX_TYPE_CHARS or not _TYPE_PATTERN.fullmatch(item):
            add_error(
                errors, where, RULE_INVALID_FORMAT, "a type like tax.return, or a ns.* wildcard"
            )
        elif item in seen:
            add_error(errors, where, RULE_DUPLICATE, "listed twice")
        else:
            seen.add(item)
    return frozenset(seen)


def read_delegation_id(value: JsonValue, errors: list[FieldError]) -> str | None:
    pointer = payload_pointer("delegation_id")
    if value is None:
        return None
    if not isinstance(value, str):
        add_error(errors, pointer, RULE_WRONG_TYPE, "delegation_id is a string")
    elif not _UUID.fullmatch(value):
        message = "delegation_id is the granting transaction's ID, a lowercase UUID"
        add_error(errors, pointer, RULE_INVALID_FORMAT, message)
    else:
        return value
    return None
