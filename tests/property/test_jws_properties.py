"""Properties of signatures.jws and signatures.jwk (hypothesis).

* sign -> verify round-trips for any payload, time and algorithm;
* one flipped bit anywhere - in the JWS text, the decoded header, the payload or the decoded
  signature - makes verification raise a JwsError (never pass, never another exception);
* arbitrary text and arbitrary JWK-like objects are refused with our errors only.

Keys are generated once per module: RSA generation is slow.
"""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from signatures.errors import JwkError, JwsError
from signatures.jwk import PublicJwk, b64url_encode, parse_b64url
from signatures.jws import MAX_IAT_S, parse_protected_header, sign_detached, verify_detached

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

KEYS: dict[str, PrivateKey] = {
    "EdDSA": Ed25519PrivateKey.generate(),
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "PS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
JWKS = {alg: PublicJwk.from_public_key(key.public_key()) for alg, key in KEYS.items()}
# One signed JWS per algorithm, for the mutation properties.
PAYLOAD = b'{"nonce":"q83vEjRWeJA","type":"licence_renewal"}'
SIGNED = {alg: sign_detached(PAYLOAD, key, iat=1_700_000_000) for alg, key in KEYS.items()}

algs = st.sampled_from(sorted(KEYS))


def flip(data: bytes, bit: int) -> bytes:
    index, shift = divmod(bit % (8 * len(data)), 8)
    return data[:index] + bytes([data[index] ^ (1 << shift)]) + data[index + 1 :]


def refused(jws: str, payload: bytes, key: PublicJwk) -> None:
    with pytest.raises(JwsError):
        verify_detached(jws, payload, key)


@given(alg=algs, payload=st.binary(max_size=4096), iat=st.integers(0, MAX_IAT_S))
def test_sign_verify_round_trip(alg: str, payload: bytes, iat: int) -> None:
    jws = sign_detached(payload, KEYS[alg], iat=iat)
    header = verify_detached(jws, payload, JWKS[alg])
    assert (header.alg, header.kid, header.iat) == (alg, JWKS[alg].kid, iat)


@given(alg=algs, data=st.data())
def test_flipped_bit_in_jws_text_is_refused(alg: str, data: st.DataObject) -> None:
    # Covers both segments, the separators, and the unused bits of each segment's last
    # character (which canonical base64url must refuse, or one JWS would have many spellings).
    jws = SIGNED[alg]
    bit = data.draw(st.integers(0, 7 * len(jws) - 1))
    index, shift = divmod(bit, 7)
    mutated = jws[:index] + chr(ord(jws[index]) ^ (1 << shift)) + jws[index + 1 :]
    refused(mutated, PAYLOAD, JWKS[alg])


@given(alg=algs, bit=st.integers(min_value=0))
def test_flipped_bit_in_decoded_header_is_refused(alg: str, bit: int) -> None:
    header_b64, _, signature_b64 = SIGNED[alg].split(".")
    header = parse_b64url(header_b64)
    assert header is not None
    refused(f"{b64url_encode(flip(header, bit))}..{signature_b64}", PAYLOAD, JWKS[alg])


@given(alg=algs, bit=st.integers(min_value=0))
def test_flipped_bit_in_payload_is_refused(alg: str, bit: int) -> None:
    refused(SIGNED[alg], flip(PAYLOAD, bit), JWKS[alg])


@given(alg=algs, bit=st.integers(min_value=0))
def test_flipped_bit_in_decoded_signature_is_refused(alg: str, bit: int) -> None:
    header_b64, _, signature_b64 = SIGNED[alg].split(".")
    signature = parse_b64url(signature_b64)
    assert signature is not None
    refused(f"{header_b64}..{b64url_encode(flip(signature, bit))}", PAYLOAD, JWKS[alg])


@given(alg=algs, payload=st.binary(max_size=256), other=st.binary(max_size=256))
def test_other_payload_is_refused(alg: str, payload: bytes, other: bytes) -> None:
    jws = sign_detached(payload, KEYS[alg], iat=0)
    if other != payload:
        refused(jws, other, JWKS[alg])


@given(text=st.text(max_size=300))
def test_arbitrary_text_is_refused_with_our_errors_only(text: str) -> None:
    with pytest.raises(JwsError):
        parse_protected_header(text)


@given(text=st.from_regex(r"[A-Za-z0-9_-]{0,200}\.\.[A-Za-z0-9_-]{0,120}", fullmatch=True))
def test_arbitrary_base64url_segments_are_refused_with_our_errors_only(text: str) -> None:
    with pytest.raises(JwsError):
        verify_detached(text, PAYLOAD, JWKS["EdDSA"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=60),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    obj=st.dictionaries(
        st.sampled_from(["kty", "crv", "x", "y", "n", "e", "alg", "use", "kid", "key_ops", "d"]),
        json_values | st.sampled_from(["OKP", "EC", "RSA", "Ed25519", "P-256", "AQAB"]),
    )
)
def test_arbitrary_jwk_objects_are_refused_with_our_errors_only(obj: dict[str, object]) -> None:
    with contextlib.suppress(JwkError):  # accepting is fine; any other exception is not
        PublicJwk.from_dict(obj)
