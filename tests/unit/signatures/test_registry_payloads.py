"""signatures.registry_payloads: each payload accepted, and each rule refused by name."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signatures.canonical import JsonValue
from signatures.client import build_envelope, export_jwk
from signatures.envelope import (
    RULE_INVALID_CHECK_DIGIT,
    RULE_INVALID_FORMAT,
    RULE_INVALID_TIMESTAMP,
    RULE_REQUIRED,
    RULE_TIMEZONE_NOT_UTC,
    RULE_TOO_LONG,
    RULE_UNKNOWN_MEMBER,
    RULE_WRONG_TYPE,
    Envelope,
    parse_envelope,
)
from signatures.errors import EnvelopeError
from signatures.jwk import PublicJwk, b64url_encode
from signatures.keys import MAX_DELEGATION_TYPES, RevocationReason
from signatures.registry_payloads import (
    DELEGATION_GRANT,
    DELEGATION_REVOKE,
    KEY_REGISTER,
    KEY_REINSTATE,
    KEY_REVOKE,
    KEY_SUSPEND,
    MAX_X5C_CERTIFICATES,
    MAX_X5C_CHARS,
    PAYLOAD_PARSERS,
    REGISTRY_TYPES,
    RULE_DUPLICATE,
    RULE_EMPTY,
    RULE_INVALID_JWK,
    RULE_NOT_ALLOWED,
    RULE_PRIVATE_KEY_MATERIAL,
    RULE_TOO_MANY,
    RULE_UNKNOWN_TYPE,
    RULE_UNKNOWN_VALUE,
    RULE_UNSUPPORTED_VERSION,
    RULE_WRONG_SUBJECT_KIND,
    DelegationGrantPayload,
    DelegationRevokePayload,
    KeyRegisterPayload,
    KeyReinstatePayload,
    KeyRevokePayload,
    KeySuspendPayload,
    parse_delegation_grant,
    parse_delegation_revoke,
    parse_key_register,
    parse_key_revoke,
    registration_jwk,
    validate_payload,
)

CREATED = datetime(2025, 3, 21, 8, 30, tzinfo=UTC)
PERSON = "ir-nid:0499370899"
OTHER_PERSON = "ir-nid:1234567008"
COMPANY = "ir-lid:10380284790"
PRIVATE_KEY = Ed25519PrivateKey.generate()
JWK = PublicJwk.from_public_key(PRIVATE_KEY.public_key())
CHALLENGE = b64url_encode(bytes(range(32)))
DELEGATION_ID = "0b7f6a4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"
CERT = base64.b64encode(b"\x30\x82\x01\x00 not really DER").decode()


def envelope(
    type_name: str,
    payload: dict[str, JsonValue],
    *,
    signer: str = PERSON,
    on_behalf_of: str | None = None,
    version: int = 1,
) -> Envelope:
    value = build_envelope(
        type=type_name,
        version=version,
        signer=signer,
        payload=payload,
        on_behalf_of=on_behalf_of,
        created_at=CREATED,
    )
    return parse_envelope(value)


def register_payload(**changes: JsonValue) -> dict[str, JsonValue]:
    payload: dict[str, JsonValue] = {"jwk": dict(export_jwk(JWK)), "challenge": CHALLENGE}
    payload.update(changes)
    return payload


def grant_payload(**changes: JsonValue) -> dict[str, JsonValue]:
    payload: dict[str, JsonValue] = {
        "delegate": PERSON,
        "types": ["tax.return.corporate", "payments.*"],
        "not_after": "2026-03-21T08:30:00Z",
    }
    payload.update(changes)
    return payload


def refusal(exc: pytest.ExceptionInfo[EnvelopeError]) -> dict[str, str]:
    return {error.pointer: error.rule for error in exc.value.errors}


def refused(
    type_name: str,
    payload: dict[str, JsonValue],
    *,
    signer: str = PERSON,
    on_behalf_of: str | None = None,
    version: int = 1,
) -> dict[str, str]:
    env = envelope(type_name, payload, signer=signer, on_behalf_of=on_behalf_of, version=version)
    with pytest.raises(EnvelopeError) as exc:
        validate_payload(env)
    return refusal(exc)


# --- accepted ------------------------------------------------------------------------------------


def test_key_register_minimal() -> None:
    parsed = parse_key_register(envelope(KEY_REGISTER, register_payload()))
    assert parsed == KeyRegisterPayload(jwk=JWK, challenge=CHALLENGE, not_after=None, x5c=())


def test_key_register_full_with_nanoseconds_truncated() -> None:
    payload = register_payload(not_after="2026-01-02T03:04:05.123456789Z", x5c=[CERT])
    parsed = parse_key_register(envelope(KEY_REGISTER, payload))
    assert parsed.not_after == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert parsed.x5c == (base64.b64decode(CERT),)


def test_key_register_bare_jwk_members_accepted() -> None:
    parsed = parse_key_register(envelope(KEY_REGISTER, register_payload(jwk=dict(JWK.to_dict()))))
    assert parsed.jwk == JWK


def test_registration_jwk_is_the_registered_key() -> None:
    assert registration_jwk(envelope(KEY_REGISTER, register_payload())).kid == JWK.kid


def test_key_event_payloads() -> None:
    kid = JWK.kid
    revoke = envelope(KEY_REVOKE, {"kid": kid, "reason": "key_compromise"})
    assert PAYLOAD_PARSERS[KEY_REVOKE](revoke) == KeyRevokePayload(
        kid=kid, reason=RevocationReason.KEY_COMPROMISE
    )
    assert PAYLOAD_PARSERS[KEY_SUSPEND](envelope(KEY_SUSPEND, {"kid": kid})) == KeySuspendPayload(
        kid=kid
    )
    reinstate = envelope(KEY_REINSTATE, {"kid": kid}, on_behalf_of=COMPANY)
    assert PAYLOAD_PARSERS[KEY_REINSTATE](reinstate) == KeyReinstatePayload(kid=kid)


def test_delegation_grant() -> None:
    parsed = parse_delegation_grant(envelope(DELEGATION_GRANT, grant_payload(), signer=COMPANY))
    assert parsed == DelegationGrantPayload(
        delegate=PERSON,
        types=frozenset({"tax.return.corporate", "payments.*"}),
        not_after=datetime(2026, 3, 21, 8, 30, tzinfo=UTC),
    )


def test_delegation_revoke() -> None:
    env = envelope(DELEGATION_REVOKE, {"delegation_id": DELEGATION_ID}, signer=COMPANY)
    assert parse_delegation_revoke(env) == DelegationRevokePayload(delegation_id=DELEGATION_ID)


def test_the_six_types_are_dispatched() -> None:
    assert sorted(REGISTRY_TYPES) == [
        "delegation.grant",
        "delegation.revoke",
        "key.register",
        "key.reinstate",
        "key.revoke",
        "key.suspend",
    ]


# --- common rules --------------------------------------------------------------------------------


def test_unknown_member_refused() -> None:
    assert refused(KEY_SUSPEND, {"kid": JWK.kid, "extra": 1}) == {
        "/payload/extra": RULE_UNKNOWN_MEMBER
    }


def test_missing_members_all_reported() -> None:
    assert refused(KEY_REVOKE, {}) == {
        "/payload/kid": RULE_REQUIRED,
        "/payload/reason": RULE_REQUIRED,
    }


def test_null_member_refused() -> None:
    assert refused(KEY_REGISTER, register_payload(not_after=None)) == {
        "/payload/not_after": RULE_WRONG_TYPE
    }


def test_version_2_refused() -> None:
    assert refused(KEY_SUSPEND, {"kid": JWK.kid}, version=2) == {
        "/version": RULE_UNSUPPORTED_VERSION
    }


def test_unknown_type_refused() -> None:
    env = envelope("tax.return", {})
    with pytest.raises(EnvelopeError) as exc:
        validate_payload(env)
    assert refusal(exc) == {"/type": RULE_UNKNOWN_TYPE}


def test_parser_of_another_type_is_a_programmer_error() -> None:
    with pytest.raises(ValueError, match=r"not a key\.revoke"):
        parse_key_revoke(envelope(KEY_SUSPEND, {"kid": JWK.kid}))


# --- key.register --------------------------------------------------------------------------------


def test_register_on_behalf_of_refused() -> None:
    assert refused(KEY_REGISTER, register_payload(), on_behalf_of=COMPANY) == {
        "/on_behalf_of": RULE_NOT_ALLOWED
    }


def test_register_private_jwk_refused() -> None:
    raw = PRIVATE_KEY.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    jwk: dict[str, JsonValue] = {**JWK.to_dict(), "d": b64url_encode(raw)}
    assert refused(KEY_REGISTER, register_payload(jwk=jwk)) == {
        "/payload/jwk/d": RULE_PRIVATE_KEY_MATERIAL
    }


def test_register_private_rsa_jwk_refused_before_member_count() -> None:
    members: dict[str, JsonValue] = {name: "AQAB" for name in ("d", "p", "q", "dp", "dq", "qi")}
    jwk: dict[str, JsonValue] = {"kty": "RSA", "n": "AQAB", "e": "AQAB", **members}
    rules = refused(KEY_REGISTER, register_payload(jwk=jwk))
    assert list(rules.values()) == [RULE_PRIVATE_KEY_MATERIAL]


def test_register_symmetric_jwk_refused() -> None:
    jwk: dict[str, JsonValue] = {"kty": "oct", "k": "c2VjcmV0"}
    assert refused(KEY_REGISTER, register_payload(jwk=jwk)) == {
        "/payload/jwk/k": RULE_PRIVATE_KEY_MATERIAL
    }


def test_register_unsupported_curve_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    jwk: dict[str, JsonValue] = {
        "kty": "EC",
        "crv": "P-384",
        "x": b64url_encode(p384.x.to_bytes(48, "big")),
        "y": b64url_encode(p384.y.to_bytes(48, "big")),
    }
    assert refused(KEY_REGISTER, register_payload(jwk=jwk)) == {
        "/payload/jwk/crv": RULE_INVALID_JWK
    }


def test_register_jwk_missing_member_refused() -> None:
    jwk: dict[str, JsonValue] = {"kty": "OKP", "crv": "Ed25519"}
    assert refused(KEY_REGISTER, register_payload(jwk=jwk)) == {"/payload/jwk/x": RULE_REQUIRED}


def test_register_jwk_unknown_member_refused() -> None:
    jwk: dict[str, JsonValue] = {**JWK.to_dict(), "x5u": "https://attacker.example/key"}
    assert refused(KEY_REGISTER, register_payload(jwk=jwk)) == {
        "/payload/jwk/x5u": RULE_UNKNOWN_MEMBER
    }


def test_register_jwk_kid_not_thumbprint_refused() -> None:
    jwk: dict[str, JsonValue] = {**JWK.to_dict(), "kid": "my-key"}
    assert refused(KEY_REGISTER, register_payload(jwk=jwk)) == {
        "/payload/jwk/kid": RULE_INVALID_JWK
    }


def test_register_jwk_not_object_refused() -> None:
    assert refused(KEY_REGISTER, register_payload(jwk=JWK.kid)) == {"/payload/jwk": RULE_WRONG_TYPE}


@pytest.mark.parametrize(
    ("challenge", "rule"),
    [
        (7, RULE_WRONG_TYPE),
        (CHALLENGE[:-1], RULE_INVALID_FORMAT),
        (CHALLENGE + "A", RULE_INVALID_FORMAT),
        (CHALLENGE[:-1] + "+", RULE_INVALID_FORMAT),
        (CHALLENGE[:-1] + "B", RULE_INVALID_FORMAT),  # unused trailing bits set
    ],
    ids=["not_string", "short", "long", "not_base64url", "non_canonical"],
)
def test_register_bad_challenge_refused(challenge: JsonValue, rule: str) -> None:
    assert refused(KEY_REGISTER, register_payload(challenge=challenge)) == {
        "/payload/challenge": rule
    }


@pytest.mark.parametrize(
    ("not_after", "rule"),
    [
        (1767225600, RULE_WRONG_TYPE),
        ("2026-01-01T00:00:00+03:30", RULE_TIMEZONE_NOT_UTC),
        ("2026-01-01T00:00:00", RULE_TIMEZONE_NOT_UTC),
        ("2026-02-30T00:00:00Z", RULE_INVALID_TIMESTAMP),
        ("2026-01-01", RULE_INVALID_FORMAT),
        ("2026-01-01T00:00:00.0000000000Z", RULE_TOO_LONG),
    ],
    ids=["number", "offset", "no_zone", "february_30", "date_only", "too_long"],
)
def test_register_bad_not_after_refused(not_after: JsonValue, rule: str) -> None:
    assert refused(KEY_REGISTER, register_payload(not_after=not_after)) == {
        "/payload/not_after": rule
    }


@pytest.mark.parametrize(
    ("x5c", "pointer", "rule"),
    [
        (CERT, "/payload/x5c", RULE_WRONG_TYPE),
        ([], "/payload/x5c", RULE_EMPTY),
        ([CERT] * (MAX_X5C_CERTIFICATES + 1), "/payload/x5c", RULE_TOO_MANY),
        ([CERT, 5], "/payload/x5c/1", RULE_WRONG_TYPE),
        ([CERT.rstrip("=")], "/payload/x5c/0", RULE_INVALID_FORMAT),
        ([CERT.replace("+", "-").replace("/", "_") + "-_"], "/payload/x5c/0", RULE_INVALID_FORMAT),
        (["QR=="], "/payload/x5c/0", RULE_INVALID_FORMAT),  # unused bits set: "QQ==" is canonical
        (["A" * (MAX_X5C_CHARS + 4)], "/payload/x5c/0", RULE_TOO_LONG),
    ],
    ids=[
        "not_list",
        "empty",
        "too_many",
        "item_not_string",
        "unpadded",
        "base64url_alphabet",
        "non_canonical",
        "too_long",
    ],
)
def test_register_bad_x5c_refused(x5c: JsonValue, pointer: str, rule: str) -> None:
    assert refused(KEY_REGISTER, register_payload(x5c=x5c)) == {pointer: rule}


# --- key.revoke, key.suspend, key.reinstate ------------------------------------------------------


@pytest.mark.parametrize(
    ("kid", "rule"),
    [
        (None, RULE_WRONG_TYPE),
        (12, RULE_WRONG_TYPE),
        ("short", RULE_INVALID_FORMAT),
        (JWK.kid[:-1] + "=", RULE_INVALID_FORMAT),
    ],
    ids=["null", "number", "short", "padding_char"],
)
@pytest.mark.parametrize("type_name", [KEY_SUSPEND, KEY_REINSTATE])
def test_bad_kid_refused(type_name: str, kid: JsonValue, rule: str) -> None:
    assert refused(type_name, {"kid": kid}) == {"/payload/kid": rule}


@pytest.mark.parametrize(
    ("reason", "rule"),
    [
        ("compromised", RULE_UNKNOWN_VALUE),
        ("KEY_COMPROMISE", RULE_UNKNOWN_VALUE),
        (1, RULE_WRONG_TYPE),
    ],
    ids=["unknown", "wrong_case", "number"],
)
def test_revoke_bad_reason_refused(reason: JsonValue, rule: str) -> None:
    assert refused(KEY_REVOKE, {"kid": JWK.kid, "reason": reason}) == {"/payload/reason": rule}


# --- delegation.grant ----------------------------------------------------------------------------


def test_grant_by_person_refused() -> None:
    assert refused(DELEGATION_GRANT, grant_payload(delegate=OTHER_PERSON)) == {
        "/signer": RULE_WRONG_SUBJECT_KIND
    }


def test_grant_by_delegate_on_behalf_of_entity_refused() -> None:
    rules = refused(DELEGATION_GRANT, grant_payload(delegate=OTHER_PERSON), on_behalf_of=COMPANY)
    assert rules == {"/signer": RULE_WRONG_SUBJECT_KIND, "/on_behalf_of": RULE_NOT_ALLOWED}


def test_grant_to_legal_entity_refused() -> None:
    assert refused(DELEGATION_GRANT, grant_payload(delegate=COMPANY), signer=COMPANY) == {
        "/payload/delegate": RULE_WRONG_SUBJECT_KIND
    }


def test_grant_delegate_bad_check_digit_refused() -> None:
    payload = grant_payload(delegate="ir-nid:0499370898")
    assert refused(DELEGATION_GRANT, payload, signer=COMPANY) == {
        "/payload/delegate": RULE_INVALID_CHECK_DIGIT
    }


@pytest.mark.parametrize(
    ("types", "pointer", "rule"),
    [
        ("tax.*", "/payload/types", RULE_WRONG_TYPE),
        ([], "/payload/types", RULE_EMPTY),
        ([f"t.x{i}" for i in range(MAX_DELEGATION_TYPES + 1)], "/payload/types", RULE_TOO_MANY),
        (["tax.*", 3], "/payload/types/1", RULE_WRONG_TYPE),
        (["*"], "/payload/types/0", RULE_INVALID_FORMAT),
        (["tax"], "/payload/types/0", RULE_INVALID_FORMAT),
        (["Tax.Return"], "/payload/types/0", RULE_INVALID_FORMAT),
        (["tax.*.x"], "/payload/types/0", RULE_INVALID_FORMAT),
        (["t." + "x" * 63], "/payload/types/0", RULE_INVALID_FORMAT),
        (["tax.*", "tax.*"], "/payload/types/1", RULE_DUPLICATE),
    ],
    ids=[
        "not_list",
        "empty",
        "too_many",
        "item_not_string",
        "bare_wildcard",
        "one_segment",
        "upper_case",
        "inner_wildcard",
        "too_long",
        "duplicate",
    ],
)
def test_grant_bad_types_refused(types: JsonValue, pointer: str, rule: str) -> None:
    assert refused(DELEGATION_GRANT, grant_payload(types=types), signer=COMPANY) == {pointer: rule}


def test_grant_max_types_accepted() -> None:
    types: list[JsonValue] = [f"t.x{i}" for i in range(MAX_DELEGATION_TYPES)]
    env = envelope(DELEGATION_GRANT, grant_payload(types=types), signer=COMPANY)
    assert len(parse_delegation_grant(env).types) == MAX_DELEGATION_TYPES


def test_grant_not_after_required() -> None:
    payload = grant_payload()
    del payload["not_after"]
    assert refused(DELEGATION_GRANT, payload, signer=COMPANY) == {
        "/payload/not_after": RULE_REQUIRED
    }


# --- delegation.revoke ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delegation_id", "rule"),
    [
        (5, RULE_WRONG_TYPE),
        (DELEGATION_ID.upper(), RULE_INVALID_FORMAT),
        (DELEGATION_ID.replace("-", ""), RULE_INVALID_FORMAT),
        ("", RULE_INVALID_FORMAT),
    ],
    ids=["number", "upper_case", "no_hyphens", "empty"],
)
def test_revoke_delegation_bad_id_refused(delegation_id: JsonValue, rule: str) -> None:
    payload: dict[str, JsonValue] = {"delegation_id": delegation_id}
    assert refused(DELEGATION_REVOKE, payload, signer=COMPANY) == {"/payload/delegation_id": rule}
