"""The attacks of RFC 8725 (JWT Best Current Practices) section 2, each as a named test.

Every attack is mounted as an attacker would: the JWS is correctly formed and, where the attack
allows it, correctly signed by a key the attacker holds. The verifier is `verify_detached` with
the key a registry lookup would return (by the signer, or by the kid the attacker chose).
Section numbers refer to RFC 8725; 3.1 is "Perform Algorithm Verification".
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signatures.errors import (
    JwkError,
    JwsAlgorithmError,
    JwsError,
    JwsFormatError,
    JwsHeaderError,
    JwsKeyMismatchError,
    JwsSignatureError,
)
from signatures.jwk import PublicJwk, b64url_encode
from signatures.jws import TYP, sign_detached, verify_detached

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

VICTIM_ED = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"victim").digest())
ATTACKER_ED = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"attacker").digest())
VICTIM_EC = ec.derive_private_key(0xC0FFEE, ec.SECP256R1())
VICTIM_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PAYLOAD = b'{"type":"fee_payment","amount_minor":100000,"currency":"IRR"}'
IAT = 1_700_000_000


def jwk_of(private: PrivateKey) -> PublicJwk:
    return PublicJwk.from_public_key(private.public_key())


def encode_header(header: dict[str, object]) -> str:
    return b64url_encode(json.dumps(header, separators=(",", ":")).encode())


def signing_input(header_b64: str, payload: bytes = PAYLOAD) -> bytes:
    return f"{header_b64}.{b64url_encode(payload)}".encode()


def signed_by(private: PrivateKey, header: dict[str, object], payload: bytes = PAYLOAD) -> str:
    """A detached JWS over any header, signed as RFC 7515 says (what an attacker can build)."""
    header_b64 = encode_header(header)
    data = signing_input(header_b64, payload)
    if isinstance(private, Ed25519PrivateKey):
        signature = private.sign(data)
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        signature = private.sign(data, pss, hashes.SHA256())
    return f"{header_b64}..{b64url_encode(signature)}"


def header_for(victim: PrivateKey, **changes: object) -> dict[str, object]:
    key = jwk_of(victim)
    header: dict[str, object] = {"alg": key.alg, "kid": key.kid, "typ": TYP, "iat": IAT}
    header.update(changes)
    return {name: value for name, value in header.items() if value is not None}


# --- 2.1 Weak signatures and insufficient signature validation: "alg": "none" --------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_with_empty_signature_is_refused(alg: str) -> None:
    jws = encode_header(header_for(VICTIM_ED, alg=alg)) + ".."
    with pytest.raises(JwsFormatError, match="signature segment is empty"):
        verify_detached(jws, PAYLOAD, jwk_of(VICTIM_ED))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_with_any_signature_is_refused(alg: str) -> None:
    jws = encode_header(header_for(VICTIM_ED, alg=alg)) + ".." + b64url_encode(bytes(64))
    with pytest.raises(JwsAlgorithmError, match="unsecured"):
        verify_detached(jws, PAYLOAD, jwk_of(VICTIM_ED))


# --- 2.1 / 3.1: HS256 with the victim's public key as the HMAC secret (algorithm confusion) ------


def public_key_secrets(victim: PrivateKey) -> dict[str, bytes]:
    public = victim.public_key()
    return {
        "PEM": public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        "DER": public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        "JWK": json.dumps(jwk_of(victim).to_dict()).encode(),
    }


@pytest.mark.parametrize("victim", [VICTIM_RSA, VICTIM_EC, VICTIM_ED], ids=["RSA", "EC", "Ed25519"])
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_with_public_key_as_secret_is_refused(victim: PrivateKey, alg: str) -> None:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    header_b64 = encode_header(header_for(victim, alg=alg))
    for secret in public_key_secrets(victim).values():
        tag = hmac.new(secret, signing_input(header_b64), digest).digest()
        with pytest.raises(JwsAlgorithmError, match="MAC") as caught:
            verify_detached(f"{header_b64}..{b64url_encode(tag)}", PAYLOAD, jwk_of(victim))
        assert caught.value.key_alg == jwk_of(victim).alg


def test_es256_header_signed_by_attacker_is_refused_for_an_rsa_key() -> None:
    # The header picks an algorithm the victim's key is not pinned to.
    attacker = ec.generate_private_key(ec.SECP256R1())
    jws = signed_by(attacker, header_for(VICTIM_RSA, alg="ES256"))
    with pytest.raises(JwsAlgorithmError) as caught:
        verify_detached(jws, PAYLOAD, jwk_of(VICTIM_RSA))
    assert (caught.value.header_alg, caught.value.key_alg) == ("ES256", "PS256")


def test_rs256_header_for_a_ps256_key_is_refused() -> None:
    header_b64 = encode_header(header_for(VICTIM_RSA, alg="RS256"))
    signature = VICTIM_RSA.sign(signing_input(header_b64), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(JwsAlgorithmError):
        verify_detached(f"{header_b64}..{b64url_encode(signature)}", PAYLOAD, jwk_of(VICTIM_RSA))


# --- 2.1 signature stripping ---------------------------------------------------------------------


def test_stripped_signature_is_refused() -> None:
    header_b64 = sign_detached(PAYLOAD, VICTIM_ED, iat=IAT).split(".")[0]
    for stripped in (f"{header_b64}..", f"{header_b64}.", header_b64, f"{header_b64}..="):
        with pytest.raises(JwsFormatError):
            verify_detached(stripped, PAYLOAD, jwk_of(VICTIM_ED))


def test_zero_signature_is_refused() -> None:
    header_b64 = sign_detached(PAYLOAD, VICTIM_ED, iat=IAT).split(".")[0]
    with pytest.raises(JwsSignatureError):
        verify_detached(f"{header_b64}..{b64url_encode(bytes(64))}", PAYLOAD, jwk_of(VICTIM_ED))


# --- 2.1 payload substitution (the signature is checked over the payload we were given) ----------


@pytest.mark.parametrize(
    "victim", [VICTIM_ED, VICTIM_EC, VICTIM_RSA], ids=["EdDSA", "ES256", "PS256"]
)
def test_substituted_payload_is_refused(victim: PrivateKey) -> None:
    jws = sign_detached(PAYLOAD, victim, iat=IAT)
    substituted = PAYLOAD.replace(b"100000", b"999999")
    with pytest.raises(JwsSignatureError):
        verify_detached(jws, substituted, jwk_of(victim))


def test_signature_moved_to_another_payload_with_reattached_payload_is_refused() -> None:
    # Re-attaching a payload into the middle segment does not make it the signed one.
    header_b64, _, signature_b64 = sign_detached(PAYLOAD, VICTIM_ED, iat=IAT).split(".")
    other = b64url_encode(b'{"type":"refund"}')
    with pytest.raises(JwsFormatError):
        verify_detached(f"{header_b64}.{other}.{signature_b64}", PAYLOAD, jwk_of(VICTIM_ED))


# --- 2.2 weak keys, 2.5 invalid curves -----------------------------------------------------------


def test_weak_rsa_key_cannot_be_registered() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(JwkError):
        PublicJwk.from_public_key(weak.public_key())


def test_invalid_curve_point_cannot_be_registered() -> None:
    # An off-curve point is the first step of invalid-curve attacks.
    jwk = jwk_of(VICTIM_EC).to_dict()
    with pytest.raises(JwkError, match="not on P-256"):
        PublicJwk.from_dict({**jwk, "y": jwk["x"]})


def test_small_order_ed25519_key_cannot_be_registered() -> None:
    # With the identity as public key, R = identity and S = 0 verify for every message.
    identity = b64url_encode(b"\x01" + bytes(31))
    with pytest.raises(JwkError, match="small order"):
        PublicJwk.from_dict({"kty": "OKP", "crv": "Ed25519", "x": identity})


# --- 2.6 multiplicity of JSON encodings ----------------------------------------------------------


def test_duplicate_alg_member_is_refused() -> None:
    key = jwk_of(VICTIM_ED)
    raw = (f'{{"alg":"EdDSA","kid":"{key.kid}","typ":"{TYP}","iat":{IAT},"alg":"none"}}').encode()
    header_b64 = b64url_encode(raw)
    jws = f"{header_b64}..{b64url_encode(VICTIM_ED.sign(signing_input(header_b64)))}"
    with pytest.raises(JwsHeaderError) as caught:
        verify_detached(jws, PAYLOAD, key)
    assert caught.value.member == "alg"


def test_header_in_utf16_is_refused() -> None:
    raw = json.dumps(header_for(VICTIM_ED)).encode("utf-16")
    header_b64 = b64url_encode(raw)
    jws = f"{header_b64}..{b64url_encode(VICTIM_ED.sign(signing_input(header_b64)))}"
    with pytest.raises(JwsFormatError):
        verify_detached(jws, PAYLOAD, jwk_of(VICTIM_ED))


# --- 2.7 / 2.8 substitution and cross-JWT confusion: typ -----------------------------------------


@pytest.mark.parametrize("typ", [None, "JWT", "at+jwt", "dpop+jwt", "secevent+jwt", "JOSE"])
def test_token_of_another_kind_signed_by_the_same_key_is_refused(typ: str | None) -> None:
    # The victim's key also signs, say, login JWTs; such a token is no transaction signature.
    jws = signed_by(VICTIM_ED, header_for(VICTIM_ED, typ=typ))
    with pytest.raises(JwsHeaderError) as caught:
        verify_detached(jws, PAYLOAD, jwk_of(VICTIM_ED))
    assert caught.value.member == "typ"


def test_ordinary_jwt_with_attached_claims_is_refused() -> None:
    header_b64 = encode_header(header_for(VICTIM_ED, typ="JWT"))
    claims = b64url_encode(b'{"sub":"ir-nid:0000000000","exp":1900000000}')
    data = f"{header_b64}.{claims}".encode()
    jwt = f"{header_b64}.{claims}.{b64url_encode(VICTIM_ED.sign(data))}"
    with pytest.raises(JwsFormatError):
        verify_detached(jwt, PAYLOAD, jwk_of(VICTIM_ED))


# --- 2.9 indirect attacks on the server: kid, jku, x5u, embedded jwk -----------------------------


def test_kid_of_another_registered_key_fails_the_signature() -> None:
    # The attacker signs with their own key and names the victim's kid: the registry returns
    # the victim's key, which the signature does not match.
    jws = signed_by(ATTACKER_ED, header_for(VICTIM_ED))
    with pytest.raises(JwsSignatureError):
        verify_detached(jws, PAYLOAD, jwk_of(VICTIM_ED))


def test_kid_that_does_not_name_the_signers_key_is_refused() -> None:
    # The registry returned the signer's key, but the header names another: refused before
    # any cryptography.
    jws = signed_by(ATTACKER_ED, header_for(ATTACKER_ED))
    with pytest.raises(JwsKeyMismatchError):
        verify_detached(jws, PAYLOAD, jwk_of(VICTIM_ED))


@pytest.mark.parametrize(
    "kid",
    [
        "../../../../etc/passwd",
        "' OR '1'='1",
        "x'; DROP TABLE keys; --",
        "https://attacker.example/key",
        "/dev/null",
        "\u0000",
        "a" * 5000,
    ],
)
def test_kid_injection_is_refused_before_any_lookup(kid: str) -> None:
    jws = signed_by(VICTIM_ED, header_for(VICTIM_ED, kid=kid))
    with pytest.raises(JwsError):  # format (too long) or header (not a thumbprint)
        verify_detached(jws, PAYLOAD, jwk_of(VICTIM_ED))


@pytest.mark.parametrize("member", ["jku", "x5u"])
def test_key_url_is_refused_and_never_fetched(member: str) -> None:
    # Signed by the victim's own key, so only the member itself can be the reason.
    header = header_for(VICTIM_ED, **{member: "https://attacker.example/keys"})
    with pytest.raises(JwsHeaderError, match="never fetched") as caught:
        verify_detached(signed_by(VICTIM_ED, header), PAYLOAD, jwk_of(VICTIM_ED))
    assert caught.value.member == member


def test_embedded_jwk_is_refused() -> None:
    # The attacker embeds their own key and signs with it, hoping the verifier trusts the header.
    attacker = jwk_of(ATTACKER_ED)
    header = header_for(ATTACKER_ED, jwk=attacker.to_dict())
    with pytest.raises(JwsHeaderError, match="embedded") as caught:
        verify_detached(signed_by(ATTACKER_ED, header), PAYLOAD, attacker)
    assert caught.value.member == "jwk"


# --- crit bypass (RFC 7515 section 4.1.11, RFC 8725 section 3.1) ---------------------------------


def test_crit_with_unknown_name_is_refused() -> None:
    header = header_for(VICTIM_ED, crit=["http://example.invalid/must-check"])
    header["http://example.invalid/must-check"] = True
    with pytest.raises(JwsHeaderError, match="not implemented") as caught:
        verify_detached(signed_by(VICTIM_ED, header), PAYLOAD, jwk_of(VICTIM_ED))
    assert caught.value.member == "crit"


def test_crit_listing_a_missing_member_is_refused() -> None:
    header = header_for(VICTIM_ED, crit=["exp"])
    with pytest.raises(JwsHeaderError, match="absent") as caught:
        verify_detached(signed_by(VICTIM_ED, header), PAYLOAD, jwk_of(VICTIM_ED))
    assert caught.value.member == "crit"


def test_crit_b64_false_unencoded_payload_is_refused() -> None:
    header = header_for(VICTIM_ED, b64=False, crit=["b64"])
    header_b64 = encode_header(header)
    data = header_b64.encode() + b"." + PAYLOAD  # RFC 7797 signing input
    jws = f"{header_b64}..{b64url_encode(VICTIM_ED.sign(data))}"
    with pytest.raises(JwsHeaderError, match="7797"):
        verify_detached(jws, PAYLOAD, jwk_of(VICTIM_ED))


def test_unknown_member_without_crit_is_refused_too() -> None:
    # Stricter than RFC 7515 (which ignores unknown members): nothing unexamined is signed.
    header = header_for(VICTIM_ED, exp=1)
    with pytest.raises(JwsHeaderError):
        verify_detached(signed_by(VICTIM_ED, header), PAYLOAD, jwk_of(VICTIM_ED))


def test_well_formed_jws_passes_so_the_attacks_above_are_meaningful() -> None:
    jws = signed_by(VICTIM_ED, header_for(VICTIM_ED))
    assert verify_detached(jws, PAYLOAD, jwk_of(VICTIM_ED)).kid == jwk_of(VICTIM_ED).kid
