"""signatures.client: keys, PEM, envelopes, signing and verifying as a client app does it."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signatures.canonical import JsonValue, canonicalize, parse_json
from signatures.client import (
    DEFAULT_RSA_BITS,
    MAX_PASSPHRASE_BYTES,
    MAX_PEM_BYTES,
    MIN_CLIENT_PASSPHRASE_BYTES,
    NONCE_BYTES,
    SignedTransaction,
    build_envelope,
    export_jwk,
    format_timestamp,
    generate_private_key,
    load_private_key_pem,
    new_nonce,
    parse_jwk_json,
    private_key_to_pem,
    public_jwk,
    sign_envelope,
    transaction_body,
    verify_transaction,
)
from signatures.envelope import parse_envelope
from signatures.errors import (
    CanonicalFormError,
    ClientKeyError,
    EnvelopeError,
    JwkError,
    JwsAlgorithmError,
    JwsHeaderError,
    JwsKeyMismatchError,
    JwsSignatureError,
    NaiveDatetimeError,
)
from signatures.jwk import MIN_RSA_BITS, Alg, PublicJwk
from signatures.jws import PrivateKey, parse_protected_header, verify_detached

ALGS: tuple[Alg, ...] = ("EdDSA", "ES256", "PS256")
PASSPHRASE = b"correct horse battery staple"
IAT = 1_700_000_000
CREATED_AT = datetime(2025, 3, 21, 8, 30, tzinfo=UTC)
SIGNER = "ir-nid:0499370899"
COMPANY = "ir-lid:10380284790"
PAYLOAD: dict[str, JsonValue] = {
    "period": "1403-12",
    "amount": {"amount_minor": 125000000, "currency": "IRR"},
    "note": "اظهارنامه",
}
# The RFC 8037 A.1 Ed25519 private key (a published test key: never use it for real).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
# The docs/ENVELOPE.md section 6 envelope signed by that key with iat IAT (docs/CLIENT.md).
EXAMPLE_JWS = (
    "eyJhbGciOiJFZERTQSIsImlhdCI6MTcwMDAwMDAwMCwia2lkIjoia1ByS19xbXhWV2FZVkE5d3dCRjZJdW8zdlZ6ejdUeE"
    "hDVHdYQnlnclM0ayIsInR5cCI6InBpc2hraGFuLXR4K2p3cyJ9..PXxL9Pj_PbY2_zYJr1Cz4aYKjDUKXBZ0xtyyIwBMDM3"
    "zmCrPDC5AFNrRPQPt7nqrCqVOtw0CwTrSQxss1hrgAA"
)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    """One generated key per algorithm (the RSA one at the default size, generated once)."""
    return {alg: generate_private_key(alg) for alg in ALGS}


def _envelope(**changes: JsonValue) -> dict[str, JsonValue]:
    envelope = build_envelope(
        type="tax.vat.file",
        version=1,
        signer=SIGNER,
        on_behalf_of=COMPANY,
        payload=PAYLOAD,
        created_at=CREATED_AT,
    )
    envelope.update(changes)
    return envelope


# --- keys ----------------------------------------------------------------------------------------


def test_generated_keys_have_the_profile_types(keys: dict[str, PrivateKey]) -> None:
    assert isinstance(keys["EdDSA"], Ed25519PrivateKey)
    es256 = keys["ES256"]
    assert isinstance(es256, ec.EllipticCurvePrivateKey)
    assert isinstance(es256.curve, ec.SECP256R1)
    ps256 = keys["PS256"]
    assert isinstance(ps256, rsa.RSAPrivateKey)
    assert ps256.key_size == DEFAULT_RSA_BITS == 3072
    for alg in ALGS:
        assert public_jwk(keys[alg]).alg == alg


def test_unknown_alg_and_rsa_size_are_refused() -> None:
    with pytest.raises(ClientKeyError) as caught:
        generate_private_key("RS256")  # type: ignore[arg-type]
    assert caught.value.rule == "unsupported_alg"
    with pytest.raises(ClientKeyError) as caught:
        generate_private_key("PS256", rsa_bits=MIN_RSA_BITS - 1)
    assert caught.value.rule == "rsa_bits"


@pytest.mark.parametrize("alg", ALGS)
def test_clear_pem_round_trip(keys: dict[str, PrivateKey], alg: Alg) -> None:
    pem = private_key_to_pem(keys[alg], passphrase=None)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key_pem(pem, passphrase=None)
    assert public_jwk(loaded) == public_jwk(keys[alg])


@pytest.mark.parametrize("alg", ALGS)
def test_encrypted_pem_round_trip(keys: dict[str, PrivateKey], alg: Alg) -> None:
    pem = private_key_to_pem(keys[alg], passphrase=PASSPHRASE)
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = load_private_key_pem(pem, passphrase=PASSPHRASE)
    assert public_jwk(loaded).kid == public_jwk(keys[alg]).kid


def _rule(pem: bytes, passphrase: bytes | None) -> str:
    with pytest.raises(ClientKeyError) as caught:
        load_private_key_pem(pem, passphrase=passphrase)
    assert PASSPHRASE.decode() not in str(caught.value)
    return caught.value.rule


def test_passphrase_mistakes_are_named(keys: dict[str, PrivateKey]) -> None:
    encrypted = private_key_to_pem(keys["EdDSA"], passphrase=PASSPHRASE)
    clear = private_key_to_pem(keys["EdDSA"], passphrase=None)
    assert _rule(encrypted, b"wrong horse battery staple") == "wrong_passphrase"
    assert _rule(encrypted, None) == "passphrase_required"
    assert _rule(clear, PASSPHRASE) == "not_encrypted"
    assert _rule(encrypted, b"x" * (MAX_PASSPHRASE_BYTES + 1)) == "passphrase_too_long"


def test_encrypting_needs_a_passphrase_of_bounded_length(keys: dict[str, PrivateKey]) -> None:
    for passphrase, rule in (
        (b"x" * (MIN_CLIENT_PASSPHRASE_BYTES - 1), "passphrase_too_short"),
        (b"", "passphrase_too_short"),
        (b"x" * (MAX_PASSPHRASE_BYTES + 1), "passphrase_too_long"),
    ):
        with pytest.raises(ClientKeyError) as caught:
            private_key_to_pem(keys["EdDSA"], passphrase=passphrase)
        assert caught.value.rule == rule
    longest = b"x" * MAX_PASSPHRASE_BYTES
    pem = private_key_to_pem(keys["EdDSA"], passphrase=longest)
    load_private_key_pem(pem, passphrase=longest)


def test_a_key_made_elsewhere_with_a_short_passphrase_still_loads() -> None:
    key = Ed25519PrivateKey.generate()
    short = b"abc"
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(short),
    )
    assert public_jwk(load_private_key_pem(pem, passphrase=short)) == public_jwk(key)


def _clear_pem(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey | rsa.RSAPrivateKey)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_unsupported_keys_are_refused() -> None:
    p384 = _clear_pem(ec.generate_private_key(ec.SECP384R1()))
    x25519_pem = _clear_pem(x25519.X25519PrivateKey.generate())
    rsa_1024 = _clear_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    for pem in (p384, x25519_pem, rsa_1024):
        assert _rule(pem, None) == "unsupported_key"
    with pytest.raises(ClientKeyError) as caught:
        private_key_to_pem(ec.generate_private_key(ec.SECP384R1()), passphrase=None)
    assert caught.value.rule == "unsupported_key"


def test_not_a_private_key_and_oversized_pem_are_refused(keys: dict[str, PrivateKey]) -> None:
    public_pem = (
        keys["EdDSA"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert _rule(public_pem, None) == "invalid_pem"
    assert _rule(b"not a key", None) == "invalid_pem"
    assert _rule(b"#" * (MAX_PEM_BYTES + 1), None) == "too_large"


def test_exported_jwk_round_trips_and_carries_alg_and_kid(keys: dict[str, PrivateKey]) -> None:
    for alg in ALGS:
        jwk = public_jwk(keys[alg])
        exported = export_jwk(jwk)
        assert exported["alg"] == alg and exported["kid"] == jwk.thumbprint()
        assert PublicJwk.from_dict(exported) == jwk
        assert parse_jwk_json(json.dumps(exported).encode()) == jwk


def test_parse_jwk_json_refuses_bad_json_and_bad_keys(keys: dict[str, PrivateKey]) -> None:
    with pytest.raises(CanonicalFormError):
        parse_jwk_json(b"{")
    with pytest.raises(JwkError):
        parse_jwk_json(b"[]")
    exported = export_jwk(public_jwk(keys["EdDSA"]))
    with pytest.raises(JwkError) as caught:
        parse_jwk_json(json.dumps({**exported, "d": RFC8037_D}).encode())
    assert caught.value.rule == "private member"


# --- envelopes -----------------------------------------------------------------------------------


def test_new_nonce_is_fresh_128_bits() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    for nonce in nonces:
        assert len(nonce) == 22 and "=" not in nonce
        assert len(_b64url_decode(nonce)) == NONCE_BYTES == 16


def test_format_timestamp_is_utc_with_z() -> None:
    assert format_timestamp(CREATED_AT) == "2025-03-21T08:30:00Z"
    tehran = timezone(timedelta(hours=3, minutes=30))
    assert format_timestamp(datetime(2025, 3, 21, 12, 0, 0, 250, tzinfo=tehran)) == (
        "2025-03-21T08:30:00.000250Z"
    )
    with pytest.raises(NaiveDatetimeError):
        format_timestamp(datetime(2025, 3, 21, 8, 30))


def test_build_envelope_is_valid_and_json_ready() -> None:
    envelope = _envelope()
    assert list(envelope) == [
        "type",
        "version",
        "signer",
        "on_behalf_of",
        "nonce",
        "created_at",
        "payload",
    ]
    checked = parse_envelope(parse_json(json.dumps(envelope).encode()))
    assert checked.created_at == CREATED_AT and str(checked.on_behalf_of) == COMPANY
    assert envelope["payload"] == PAYLOAD and envelope["payload"] is not PAYLOAD
    assert _envelope()["nonce"] != envelope["nonce"]
    given = build_envelope(
        type="bill.pay",
        version=2,
        signer=SIGNER,
        payload={},
        created_at=CREATED_AT,
        nonce="dUeQ8iE6tHymJfI2j-Sd9Q",
    )
    assert given["nonce"] == "dUeQ8iE6tHymJfI2j-Sd9Q" and "on_behalf_of" not in given


def test_build_envelope_refuses_every_bad_field_by_pointer() -> None:
    with pytest.raises(EnvelopeError) as caught:
        build_envelope(
            type="pay",
            version=0,
            signer="ir-nid:0499370898",
            payload={"x": [1.5]},  # type: ignore[list-item]
            created_at=CREATED_AT,
            nonce="c2hvcnQ",  # 5 bytes
        )
    found = {(e.pointer, e.rule) for e in caught.value.errors}
    assert found == {
        ("/payload/x/0", "float_not_allowed"),
        ("/type", "invalid_format"),
        ("/version", "out_of_range"),
        ("/signer", "invalid_check_digit"),
        ("/nonce", "too_short"),
    }


# --- signing and verifying -----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_sign_then_verify_round_trip(keys: dict[str, PrivateKey], alg: Alg) -> None:
    envelope = _envelope()
    signed = sign_envelope(envelope, keys[alg], iat=IAT)
    jwk = public_jwk(keys[alg])
    assert signed.kid == jwk.kid
    assert signed.canonical == canonicalize(envelope)
    assert signed.envelope == envelope
    header = verify_transaction(signed.envelope, signed.jws, jwk)
    assert (header.alg, header.kid, header.iat) == (alg, jwk.kid, IAT)
    assert verify_detached(signed.jws, signed.canonical, jwk) == header


@pytest.mark.parametrize("alg", ALGS)
def test_body_survives_json_transport(keys: dict[str, PrivateKey], alg: Alg) -> None:
    signed = sign_envelope(_envelope(), keys[alg], iat=IAT)
    body = transaction_body(signed)
    assert set(body) == {"envelope", "signature"}
    received = parse_json(json.dumps(body, ensure_ascii=False, indent=2).encode())
    assert isinstance(received, dict) and isinstance(received["signature"], str)
    verify_transaction(received["envelope"], received["signature"], public_jwk(keys[alg]))


def test_signing_refuses_an_invalid_envelope_with_its_pointer(
    keys: dict[str, PrivateKey],
) -> None:
    envelope = _envelope()
    del envelope["nonce"]
    envelope["payload"] = {"amount": {"amount_minor": 1, "currency": "XTS"}}
    envelope["extra"] = True
    with pytest.raises(EnvelopeError) as caught:
        sign_envelope(envelope, keys["EdDSA"], iat=IAT)
    found = {(e.pointer, e.rule) for e in caught.value.errors}
    assert found == {("/nonce", "required"), ("/extra", "unknown_member")}
    with pytest.raises(EnvelopeError) as caught:
        sign_envelope([1], keys["EdDSA"], iat=IAT)
    assert caught.value.errors[0].pointer == ""


def test_signing_refuses_an_iat_outside_the_profile(keys: dict[str, PrivateKey]) -> None:
    with pytest.raises(JwsHeaderError) as caught:
        sign_envelope(_envelope(), keys["EdDSA"], iat=-1)
    assert caught.value.member == "iat"


@pytest.mark.parametrize("alg", ALGS)
def test_verify_refuses_a_modified_payload(keys: dict[str, PrivateKey], alg: Alg) -> None:
    signed = sign_envelope(_envelope(), keys[alg], iat=IAT)
    changed = json.loads(json.dumps(signed.envelope))
    changed["payload"]["amount"]["amount_minor"] += 1
    with pytest.raises(JwsSignatureError):
        verify_transaction(changed, signed.jws, public_jwk(keys[alg]))


def test_verify_refuses_another_key(keys: dict[str, PrivateKey]) -> None:
    signed = sign_envelope(_envelope(), keys["EdDSA"], iat=IAT)
    other = public_jwk(generate_private_key("EdDSA"))
    with pytest.raises(JwsKeyMismatchError):
        verify_transaction(signed.envelope, signed.jws, other)
    with pytest.raises(JwsAlgorithmError):
        verify_transaction(signed.envelope, signed.jws, public_jwk(keys["ES256"]))


def test_verify_refuses_an_invalid_envelope_before_the_signature(
    keys: dict[str, PrivateKey],
) -> None:
    signed = sign_envelope(_envelope(), keys["EdDSA"], iat=IAT)
    changed = json.loads(json.dumps(signed.envelope))
    changed["version"] = 1.0
    with pytest.raises(EnvelopeError) as caught:
        verify_transaction(changed, signed.jws, public_jwk(keys["EdDSA"]))
    assert caught.value.errors[0].pointer == "/version"


def test_the_envelope_md_example_signed_with_the_rfc8037_key() -> None:
    """Ed25519 is deterministic: docs/CLIENT.md shows this exact JWS."""
    key = Ed25519PrivateKey.from_private_bytes(_b64url_decode(RFC8037_D))
    envelope = build_envelope(
        type="tax.vat.file",
        version=1,
        signer=SIGNER,
        on_behalf_of=COMPANY,
        payload=PAYLOAD,
        created_at=CREATED_AT,
        nonce="dUeQ8iE6tHymJfI2j-Sd9Q",
    )
    signed = sign_envelope(envelope, key, iat=IAT)
    assert isinstance(signed, SignedTransaction)
    assert signed.kid == RFC8037_KID
    assert len(signed.canonical) == 281  # docs/ENVELOPE.md section 6
    assert parse_protected_header(signed.jws).kid == RFC8037_KID
    assert signed.jws == EXAMPLE_JWS


def test_the_library_example_of_docs_client_md_runs() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "CLIENT.md").read_text("utf-8")
    found = re.search(r"<!-- example:library -->\n```python\n(.*?)\n```", doc, re.S)
    assert found, "docs/CLIENT.md has no library example"
    namespace: dict[str, object] = {}
    exec(compile(found.group(1), "docs/CLIENT.md", "exec"), namespace)
    signed = namespace["signed"]
    assert isinstance(signed, SignedTransaction) and signed.jws.count(".") == 2
