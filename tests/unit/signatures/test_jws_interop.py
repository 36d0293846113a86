"""Cross-verification with independent JOSE implementations, in both directions.

Pairs covered (S = they verify what we sign, V = we verify what they sign):

| implementation   | EdDSA | ES256 | PS256 |
|------------------|-------|-------|-------|
| jwcrypto         | S V   | S V   | S V   |
| python-jose      | --    | S V   | --    |
| PyJWT            | S V   | S V   | S V   |

python-jose (3.x) implements neither EdDSA nor PS256 (``test_python_jose_lacks_eddsa_and_ps256``
pins that, so the table is revisited if it changes); jwcrypto and PyJWT cover those directions.
jwcrypto verifies our detached form directly (``detached_payload=``); python-jose and PyJWT only
handle attached compact JWS, so for them the payload is re-attached (ours) or detached (theirs),
which RFC 7515 appendix F describes as equivalent. Every JWK crosses as JSON, and jwcrypto's
RFC 7638 thumbprint is compared with ours.

These libraries are used only here, never by the service.
"""

from __future__ import annotations

import json

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from jose import jws as jose_jws
from jose.constants import ALGORITHMS as JOSE_ALGORITHMS
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from signatures.errors import JwsSignatureError
from signatures.jwk import PublicJwk, b64url_encode
from signatures.jws import TYP, sign_detached, verify_detached

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

KEYS: dict[str, PrivateKey] = {
    "EdDSA": Ed25519PrivateKey.generate(),
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "PS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
ALGS = sorted(KEYS)
PAYLOAD = json.dumps(
    {"type": "tax_filing", "signer": "ir-nid:0012345679", "payload": {"amount_minor": 1}},
    separators=(",", ":"),
    sort_keys=True,
).encode()
IAT = 1_700_000_000


def our_jwk(alg: str) -> PublicJwk:
    return PublicJwk.from_public_key(KEYS[alg].public_key())


def private_pem(alg: str) -> bytes:
    return KEYS[alg].private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def public_pem(alg: str) -> bytes:
    return KEYS[alg].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def reattach(detached: str, payload: bytes) -> str:
    header_b64, middle, signature_b64 = detached.split(".")
    assert middle == ""
    return f"{header_b64}.{b64url_encode(payload)}.{signature_b64}"


def detach(compact: str, payload: bytes) -> str:
    header_b64, payload_b64, signature_b64 = compact.split(".")
    assert payload_b64 == b64url_encode(payload)
    return f"{header_b64}..{signature_b64}"


def profile(alg: str, kid: str) -> dict[str, object]:
    return {"alg": alg, "kid": kid, "typ": TYP, "iat": IAT}


# --- jwcrypto ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_jwcrypto_thumbprint_equals_ours(alg: str) -> None:
    theirs = jwcrypto_jwk.JWK.from_json(json.dumps(our_jwk(alg).to_dict()))
    assert theirs.thumbprint() == our_jwk(alg).kid


@pytest.mark.parametrize("alg", ALGS)
def test_jwcrypto_verifies_our_detached_jws(alg: str) -> None:
    detached = sign_detached(PAYLOAD, KEYS[alg], iat=IAT)
    key = jwcrypto_jwk.JWK.from_json(json.dumps(our_jwk(alg).to_dict()))
    token = jwcrypto_jws.JWS()
    token.deserialize(detached)
    token.verify(key, alg=alg, detached_payload=PAYLOAD)
    assert json.loads(token.objects["protected"])["kid"] == our_jwk(alg).kid


@pytest.mark.parametrize("alg", ALGS)
def test_jwcrypto_verifies_our_jws_reattached(alg: str) -> None:
    compact = reattach(sign_detached(PAYLOAD, KEYS[alg], iat=IAT), PAYLOAD)
    key = jwcrypto_jwk.JWK.from_json(json.dumps(our_jwk(alg).to_dict()))
    token = jwcrypto_jws.JWS()
    token.deserialize(compact, key=key, alg=alg)
    assert token.payload == PAYLOAD


@pytest.mark.parametrize("alg", ALGS)
def test_jwcrypto_refuses_our_jws_over_another_payload(alg: str) -> None:
    detached = sign_detached(PAYLOAD, KEYS[alg], iat=IAT)
    key = jwcrypto_jwk.JWK.from_json(json.dumps(our_jwk(alg).to_dict()))
    token = jwcrypto_jws.JWS()
    token.deserialize(detached)
    with pytest.raises(jwcrypto_jws.InvalidJWSSignature):
        token.verify(key, alg=alg, detached_payload=PAYLOAD + b" ")


@pytest.mark.parametrize("alg", ALGS)
def test_we_verify_what_jwcrypto_signs(alg: str) -> None:
    key = jwcrypto_jwk.JWK.from_pem(private_pem(alg))
    token = jwcrypto_jws.JWS(PAYLOAD)
    token.add_signature(key, alg=None, protected=json.dumps(profile(alg, key.thumbprint())))
    compact = token.serialize(compact=True)
    header = verify_detached(detach(compact, PAYLOAD), PAYLOAD, our_jwk(alg))
    assert (header.alg, header.iat) == (alg, IAT)


@pytest.mark.parametrize("alg", ALGS)
def test_we_refuse_what_jwcrypto_signs_over_another_payload(alg: str) -> None:
    key = jwcrypto_jwk.JWK.from_pem(private_pem(alg))
    token = jwcrypto_jws.JWS(PAYLOAD)
    token.add_signature(key, alg=None, protected=json.dumps(profile(alg, key.thumbprint())))
    detached = detach(token.serialize(compact=True), PAYLOAD)
    with pytest.raises(JwsSignatureError):
        verify_detached(detached, PAYLOAD[:-1], our_jwk(alg))


# --- python-jose ---------------------------------------------------------------------------------


def test_python_jose_lacks_eddsa_and_ps256() -> None:
    assert "ES256" in JOSE_ALGORITHMS.SUPPORTED
    assert "EdDSA" not in JOSE_ALGORITHMS.SUPPORTED
    assert "PS256" not in JOSE_ALGORITHMS.SUPPORTED


def test_python_jose_verifies_our_es256_jws() -> None:
    compact = reattach(sign_detached(PAYLOAD, KEYS["ES256"], iat=IAT), PAYLOAD)
    assert jose_jws.verify(compact, our_jwk("ES256").to_dict(), algorithms=["ES256"]) == PAYLOAD
    assert jose_jws.verify(compact, public_pem("ES256"), algorithms=["ES256"]) == PAYLOAD


def test_python_jose_refuses_our_es256_jws_over_another_payload() -> None:
    compact = reattach(sign_detached(PAYLOAD, KEYS["ES256"], iat=IAT), PAYLOAD + b"x")
    with pytest.raises(jose_jws.JWSError):
        jose_jws.verify(compact, our_jwk("ES256").to_dict(), algorithms=["ES256"])


def test_we_verify_what_python_jose_signs_es256() -> None:
    headers = {"kid": our_jwk("ES256").kid, "typ": TYP, "iat": IAT}
    compact = jose_jws.sign(PAYLOAD, private_pem("ES256"), headers=headers, algorithm="ES256")
    header = verify_detached(detach(compact, PAYLOAD), PAYLOAD, our_jwk("ES256"))
    assert header.alg == "ES256"


def test_we_refuse_what_python_jose_signs_es256_over_another_payload() -> None:
    headers = {"kid": our_jwk("ES256").kid, "typ": TYP, "iat": IAT}
    compact = jose_jws.sign(PAYLOAD, private_pem("ES256"), headers=headers, algorithm="ES256")
    with pytest.raises(JwsSignatureError):
        verify_detached(detach(compact, PAYLOAD), b"{}", our_jwk("ES256"))


# --- PyJWT ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_pyjwt_verifies_our_jws(alg: str) -> None:
    compact = reattach(sign_detached(PAYLOAD, KEYS[alg], iat=IAT), PAYLOAD)
    decoded = pyjwt.api_jws.decode_complete(compact, KEYS[alg].public_key(), algorithms=[alg])
    assert decoded["payload"] == PAYLOAD
    assert decoded["header"]["typ"] == TYP


@pytest.mark.parametrize("alg", ALGS)
def test_we_verify_what_pyjwt_signs(alg: str) -> None:
    headers = {"kid": our_jwk(alg).kid, "typ": TYP, "iat": IAT}
    compact = pyjwt.api_jws.encode(PAYLOAD, KEYS[alg], algorithm=alg, headers=headers)
    assert verify_detached(detach(compact, PAYLOAD), PAYLOAD, our_jwk(alg)).alg == alg
