"""Known-answer vectors for signatures.jwk and signatures.jws, and named mutations of them.

Where each vector comes from (values transcribed from the RFC texts; cross-checked against the
public test suites named, which quote them):

* RFC7638: RFC 7638 section 3.1, the example RSA key and its thumbprint (also quoted by
  golang.org/x/crypto acme TestJWKThumbprintRSA and the iotaledger/identity.rs JWK vectors).
* RFC8037: RFC 8037 appendix A.1 (private key), A.2 (public key), A.3 (thumbprint) and A.4
  (the JWS of "Example of Ed25519 signing"; Ed25519 is deterministic, so the signature is exact).
* RFC8032: RFC 8032 section 7.1, Ed25519 TEST 1, TEST 2, TEST 3, TEST 1024 (a 1023-byte message)
  and TEST SHA(abc); transcribed as in cryptography-cafe/ed25519-elisabeth,
  src/test/java/cafe/cryptography/ed25519/Ed25519Rfc8032TestVectors.java.
* RFC7515: RFC 7515 appendix A.3, the ES256 example (P-256 JWK and raw r||s signature; its s is
  the "high" one of the pair s, n - s, so it also shows that we do not demand low-S).
* EIGHT_TORSION: the eight points of small order on edwards25519, canonical encodings, as listed
  in curve25519-dalek's EIGHT_TORSION table (and libsodium's ge25519_has_small_order blocklist).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signatures.errors import (
    JwkError,
    JwsError,
    JwsFormatError,
    JwsHeaderError,
    JwsSignatureError,
)
from signatures.jwk import PublicJwk, b64url_encode
from signatures.jws import (
    parse_protected_header,
    sign_detached,
    verify_detached,
    verify_signing_input,
)


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def flip_bit(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# --- RFC7638 section 3.1 -------------------------------------------------------------------------

RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
    "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368Q"
    "QMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2"
    "NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
RFC7638_PUBLISHED = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}


def test_rfc7638_thumbprint_of_the_example_rsa_key() -> None:
    jwk = PublicJwk.from_dict({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"})
    assert jwk.thumbprint() == RFC7638_THUMBPRINT
    assert jwk.kid == RFC7638_THUMBPRINT
    assert jwk.alg == "PS256"


def test_rfc7638_thumbprint_ignores_member_order() -> None:
    jwk = PublicJwk.from_dict({"n": RFC7638_N, "e": "AQAB", "kty": "RSA"})
    assert jwk.thumbprint() == RFC7638_THUMBPRINT


def test_rfc7638_example_as_published_is_refused_for_its_rs256_alg() -> None:
    # Our profile pins RSA keys to PS256: the example's "alg": "RS256" contradicts the key.
    with pytest.raises(JwkError) as caught:
        PublicJwk.from_dict(RFC7638_PUBLISHED)
    assert caught.value.member == "alg"


def test_rfc7638_example_with_its_date_kid_is_refused() -> None:
    published = {name: v for name, v in RFC7638_PUBLISHED.items() if name != "alg"}
    with pytest.raises(JwkError) as caught:
        PublicJwk.from_dict(published)
    assert caught.value.member == "kid"


def test_rfc7638_mutated_modulus_changes_the_thumbprint() -> None:
    mutated = b64url_encode(flip_bit(b64url_decode(RFC7638_N), 200))
    jwk = PublicJwk.from_dict({"kty": "RSA", "n": mutated, "e": "AQAB"})
    assert jwk.thumbprint() != RFC7638_THUMBPRINT


def test_rfc7638_exponent_with_leading_zero_octet_is_refused() -> None:
    # Same integer, non-minimal encoding: RFC 7638 section 3.3 requires the minimal one.
    with pytest.raises(JwkError) as caught:
        PublicJwk.from_dict({"kty": "RSA", "n": RFC7638_N, "e": "AAEAAQ"})
    assert (caught.value.member, caught.value.rule) == ("e", "minimal integer")


# --- RFC8037 appendix A --------------------------------------------------------------------------

RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_PUBLIC = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
RFC8037_THUMBPRINT_INPUT = (
    b'{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}'
)
RFC8037_THUMBPRINT_SHA256 = bytes.fromhex(
    "90facafea9b1556698540f70c0117a22ea37bd5cf3ed3c47093c1707282b4b89"
)
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_SIGNING_INPUT = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)
RFC8037_JWS = RFC8037_SIGNING_INPUT.decode() + "." + RFC8037_SIGNATURE


def rfc8037_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))


def test_rfc8037_a1_private_key_gives_the_a2_public_key() -> None:
    public = rfc8037_private_key().public_key()
    assert PublicJwk.from_public_key(public).to_dict() == RFC8037_PUBLIC


def test_rfc8037_a1_private_jwk_is_refused() -> None:
    with pytest.raises(JwkError) as caught:
        PublicJwk.from_dict({**RFC8037_PUBLIC, "d": RFC8037_D})
    assert (caught.value.member, caught.value.rule) == ("d", "private member")


def test_rfc8037_a3_thumbprint() -> None:
    jwk = PublicJwk.from_dict(RFC8037_PUBLIC)
    assert jwk.alg == "EdDSA"
    assert base64.urlsafe_b64encode(RFC8037_THUMBPRINT_SHA256).rstrip(b"=").decode() == (
        RFC8037_THUMBPRINT
    )
    assert jwk.thumbprint() == RFC8037_THUMBPRINT


def test_rfc8037_a3_thumbprint_input_is_the_canonical_json() -> None:
    jwk = PublicJwk.from_dict(RFC8037_PUBLIC)
    assert json.dumps(jwk.to_dict(), sort_keys=True, separators=(",", ":")).encode() == (
        RFC8037_THUMBPRINT_INPUT
    )


def test_rfc8037_a4_signature_is_reproduced() -> None:
    signature = rfc8037_private_key().sign(RFC8037_SIGNING_INPUT)
    assert b64url_encode(signature) == RFC8037_SIGNATURE


def test_rfc8037_a4_signature_verifies_over_its_signing_input() -> None:
    key = PublicJwk.from_dict(RFC8037_PUBLIC)
    verify_signing_input(RFC8037_SIGNING_INPUT, signature=b64url_decode(RFC8037_SIGNATURE), key=key)


def test_rfc8037_a4_flipped_signature_bit_is_refused() -> None:
    key = PublicJwk.from_dict(RFC8037_PUBLIC)
    with pytest.raises(JwsSignatureError):
        verify_signing_input(
            RFC8037_SIGNING_INPUT, signature=flip_bit(b64url_decode(RFC8037_SIGNATURE)), key=key
        )


def test_rfc8037_a4_flipped_signing_input_bit_is_refused() -> None:
    key = PublicJwk.from_dict(RFC8037_PUBLIC)
    with pytest.raises(JwsSignatureError):
        verify_signing_input(
            flip_bit(RFC8037_SIGNING_INPUT, 30), signature=b64url_decode(RFC8037_SIGNATURE), key=key
        )


def test_rfc8037_a4_truncated_signature_is_refused() -> None:
    key = PublicJwk.from_dict(RFC8037_PUBLIC)
    with pytest.raises(JwsFormatError):
        verify_signing_input(
            RFC8037_SIGNING_INPUT, signature=b64url_decode(RFC8037_SIGNATURE)[:-1], key=key
        )


def test_rfc8037_a4_attached_jws_is_refused_payload_not_detached() -> None:
    with pytest.raises(JwsFormatError):
        parse_protected_header(RFC8037_JWS)


def test_rfc8037_a4_detached_jws_is_refused_header_lacks_kid() -> None:
    # Detached, its header {"alg":"EdDSA"} still lacks our profile's kid, typ and iat.
    detached = RFC8037_SIGNING_INPUT.decode().split(".")[0] + ".." + RFC8037_SIGNATURE
    with pytest.raises(JwsHeaderError) as caught:
        verify_detached(
            detached, b"Example of Ed25519 signing", PublicJwk.from_dict(RFC8037_PUBLIC)
        )
    assert caught.value.member == "kid"


# --- RFC8032 section 7.1 -------------------------------------------------------------------------

TEST_1024_MESSAGE = (
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
    "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
    "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
    "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
    "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
    "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
    "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
    "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
    "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
    "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
    "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
    "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
    "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
    "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
    "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
    "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
    "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
    "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
    "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
    "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
    "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
    "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0"
)

# (name, secret key, public key, message, signature), all hex.
RFC8032_VECTORS = [
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "TEST 1024",
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        TEST_1024_MESSAGE,
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
        "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
    (
        "TEST SHA(abc)",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]
RFC8032_IDS = [vector[0] for vector in RFC8032_VECTORS]


def test_rfc8032_test_1024_message_is_1023_bytes() -> None:
    assert len(bytes.fromhex(TEST_1024_MESSAGE)) == 1023


@pytest.mark.parametrize(("name", "sk", "pk", "msg", "sig"), RFC8032_VECTORS, ids=RFC8032_IDS)
def test_rfc8032_public_key_and_signature_are_reproduced(
    name: str, sk: str, pk: str, msg: str, sig: str
) -> None:
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sk))
    raw_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw_public.hex() == pk
    assert private.sign(bytes.fromhex(msg)).hex() == sig


@pytest.mark.parametrize(("name", "sk", "pk", "msg", "sig"), RFC8032_VECTORS, ids=RFC8032_IDS)
def test_rfc8032_signature_verifies_through_our_jwk(
    name: str, sk: str, pk: str, msg: str, sig: str
) -> None:
    key = PublicJwk.from_dict(
        {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(bytes.fromhex(pk))}
    )
    verify_signing_input(bytes.fromhex(msg), signature=bytes.fromhex(sig), key=key)


@pytest.mark.parametrize(("name", "sk", "pk", "msg", "sig"), RFC8032_VECTORS, ids=RFC8032_IDS)
def test_rfc8032_flipped_signature_bit_is_refused(
    name: str, sk: str, pk: str, msg: str, sig: str
) -> None:
    key = PublicJwk.from_public_key(Ed25519PublicKey.from_public_bytes(bytes.fromhex(pk)))
    for index in (0, 32, 63):  # in R, in S, and S's top byte
        with pytest.raises(JwsSignatureError):
            verify_signing_input(
                bytes.fromhex(msg), signature=flip_bit(bytes.fromhex(sig), index), key=key
            )


@pytest.mark.parametrize(("name", "sk", "pk", "msg", "sig"), RFC8032_VECTORS, ids=RFC8032_IDS)
def test_rfc8032_appended_message_byte_is_refused(
    name: str, sk: str, pk: str, msg: str, sig: str
) -> None:
    key = PublicJwk.from_public_key(Ed25519PublicKey.from_public_bytes(bytes.fromhex(pk)))
    with pytest.raises(JwsSignatureError):
        verify_signing_input(bytes.fromhex(msg) + b"\x00", signature=bytes.fromhex(sig), key=key)


def test_rfc8032_test_2_signature_under_test_3_key_is_refused() -> None:
    _, _, pk3, _, _ = RFC8032_VECTORS[2]
    _, _, _, msg2, sig2 = RFC8032_VECTORS[1]
    key = PublicJwk.from_public_key(Ed25519PublicKey.from_public_bytes(bytes.fromhex(pk3)))
    with pytest.raises(JwsSignatureError):
        verify_signing_input(bytes.fromhex(msg2), signature=bytes.fromhex(sig2), key=key)


def test_rfc8032_test_1_with_s_plus_group_order_is_refused() -> None:
    # S + L encodes the same scalar non-canonically (RFC 8032 section 5.1.7 requires S < L).
    _, _, pk, msg, sig = RFC8032_VECTORS[0]
    order = 2**252 + 27742317777372353535851937790883648493
    signature = bytes.fromhex(sig)
    s = int.from_bytes(signature[32:], "little") + order
    key = PublicJwk.from_public_key(Ed25519PublicKey.from_public_bytes(bytes.fromhex(pk)))
    with pytest.raises(JwsSignatureError):
        verify_signing_input(
            bytes.fromhex(msg), signature=signature[:32] + s.to_bytes(32, "little"), key=key
        )


# --- RFC7515 appendix A.3 ------------------------------------------------------------------------

RFC7515_A3_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
RFC7515_A3_D = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
RFC7515_A3_SIGNING_INPUT = (
    b"eyJhbGciOiJFUzI1NiJ9"
    b".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
)
RFC7515_A3_SIGNATURE = (
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def rfc7515_a3_key() -> PublicJwk:
    return PublicJwk.from_dict(RFC7515_A3_JWK)


def test_rfc7515_a3_es256_signature_verifies() -> None:
    key = rfc7515_a3_key()
    assert key.alg == "ES256"
    verify_signing_input(
        RFC7515_A3_SIGNING_INPUT, signature=b64url_decode(RFC7515_A3_SIGNATURE), key=key
    )


def test_rfc7515_a3_private_jwk_is_refused() -> None:
    with pytest.raises(JwkError) as caught:
        PublicJwk.from_dict({**RFC7515_A3_JWK, "d": RFC7515_A3_D})
    assert caught.value.member == "d"


def test_rfc7515_a3_flipped_signature_bit_is_refused() -> None:
    with pytest.raises(JwsSignatureError):
        verify_signing_input(
            RFC7515_A3_SIGNING_INPUT,
            signature=flip_bit(b64url_decode(RFC7515_A3_SIGNATURE), 5),
            key=rfc7515_a3_key(),
        )


def test_rfc7515_a3_swapped_r_and_s_is_refused() -> None:
    signature = b64url_decode(RFC7515_A3_SIGNATURE)
    with pytest.raises(JwsSignatureError):
        verify_signing_input(
            RFC7515_A3_SIGNING_INPUT,
            signature=signature[32:] + signature[:32],
            key=rfc7515_a3_key(),
        )


def test_rfc7515_a3_der_encoded_signature_is_refused() -> None:
    # JWS ES256 signatures are raw r||s; the DER form of the same (r, s) is a format error.
    signature = b64url_decode(RFC7515_A3_SIGNATURE)
    r, s = (int.from_bytes(half, "big") for half in (signature[:32], signature[32:]))
    with pytest.raises(JwsFormatError):
        verify_signing_input(
            RFC7515_A3_SIGNING_INPUT, signature=encode_dss_signature(r, s), key=rfc7515_a3_key()
        )


def test_rfc7515_a3_low_s_twin_also_verifies() -> None:
    # ECDSA's (r, n - s) verifies too. JWS does not require low-S, and the RFC's own signature is
    # the high one, so we accept both; replays are stopped by the envelope nonce, not here.
    signature = b64url_decode(RFC7515_A3_SIGNATURE)
    s = int.from_bytes(signature[32:], "big")
    assert s > P256_ORDER // 2
    twin = signature[:32] + (P256_ORDER - s).to_bytes(32, "big")
    verify_signing_input(RFC7515_A3_SIGNING_INPUT, signature=twin, key=rfc7515_a3_key())


def test_rfc7515_a3_signature_with_s_zero_is_refused() -> None:
    signature = b64url_decode(RFC7515_A3_SIGNATURE)[:32] + bytes(32)
    with pytest.raises(JwsSignatureError):
        verify_signing_input(RFC7515_A3_SIGNING_INPUT, signature=signature, key=rfc7515_a3_key())


def test_rfc7515_a3_private_key_derives_the_public_key() -> None:
    # A transcription check: d * G must be (x, y).
    private = ec.derive_private_key(
        int.from_bytes(b64url_decode(RFC7515_A3_D), "big"), ec.SECP256R1()
    )
    assert PublicJwk.from_public_key(private.public_key()) == rfc7515_a3_key()


# Computed by our code, not published in RFC 7515; the docs' EC worked example.
RFC7515_A3_THUMBPRINT = "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"
RFC7515_A3_THUMBPRINT_SHA256 = "a0a232c2f194a53553cb1310ddbc0821e414b9d7ebfc290b323084d7d1020fe5"


def test_rfc7515_a3_thumbprint() -> None:
    canonical = json.dumps(rfc7515_a3_key().to_dict(), sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).hexdigest() == RFC7515_A3_THUMBPRINT_SHA256
    assert rfc7515_a3_key().kid == RFC7515_A3_THUMBPRINT


def test_rfc7515_a3_public_key_matches_cryptography() -> None:
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url_decode(RFC7515_A3_JWK["x"]), "big"),
        int.from_bytes(b64url_decode(RFC7515_A3_JWK["y"]), "big"),
        ec.SECP256R1(),
    )
    assert PublicJwk.from_public_key(numbers.public_key()) == rfc7515_a3_key()


# --- EIGHT_TORSION: small-order Ed25519 public keys ----------------------------------------------

EIGHT_TORSION = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]
# Encodings that are not canonical (y >= p, or x = 0 with the sign bit set).
NON_CANONICAL_POINTS = [
    "0100000000000000000000000000000000000000000000000000000000000080",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
]


@pytest.mark.parametrize("encoded", EIGHT_TORSION)
def test_small_order_ed25519_key_is_refused(encoded: str) -> None:
    x = b64url_encode(bytes.fromhex(encoded))
    with pytest.raises(JwkError) as caught:
        PublicJwk.from_dict({"kty": "OKP", "crv": "Ed25519", "x": x})
    assert (caught.value.member, caught.value.rule) == ("x", "invalid point")
    assert "small order" in str(caught.value)


@pytest.mark.parametrize("encoded", NON_CANONICAL_POINTS)
def test_non_canonical_ed25519_key_is_refused(encoded: str) -> None:
    x = b64url_encode(bytes.fromhex(encoded))
    with pytest.raises(JwkError) as caught:
        PublicJwk.from_dict({"kty": "OKP", "crv": "Ed25519", "x": x})
    assert "canonical" in str(caught.value)


# --- the worked example of docs/JWS.md -----------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "JWS.md"
EXAMPLE_PAYLOAD = b'{"example":"pishkhan"}'
EXAMPLE_IAT = 1700000000


def test_docs_worked_example_is_what_the_code_computes() -> None:
    jws = sign_detached(EXAMPLE_PAYLOAD, rfc8037_private_key(), iat=EXAMPLE_IAT)
    header_b64, _, signature_b64 = jws.split(".")
    text = DOCS.read_text(encoding="utf-8")
    for value in (RFC8037_THUMBPRINT, RFC7638_THUMBPRINT, RFC7515_A3_THUMBPRINT):
        assert value in text
    assert RFC8037_THUMBPRINT_SHA256.hex() in text
    assert RFC7515_A3_THUMBPRINT_SHA256 in text
    assert b64url_encode(EXAMPLE_PAYLOAD) in text
    assert jws in text.replace("\n", "")
    assert header_b64 in text
    assert signature_b64 in text.replace("\n", "")
    header = verify_detached(jws, EXAMPLE_PAYLOAD, PublicJwk.from_dict(RFC8037_PUBLIC))
    assert header.raw == (
        b'{"alg":"EdDSA","iat":1700000000,"kid":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",'
        b'"typ":"pishkhan-tx+jws"}'
    )


def test_docs_worked_example_with_another_payload_is_refused() -> None:
    jws = sign_detached(EXAMPLE_PAYLOAD, rfc8037_private_key(), iat=EXAMPLE_IAT)
    with pytest.raises(JwsError):
        verify_detached(jws, EXAMPLE_PAYLOAD + b" ", PublicJwk.from_dict(RFC8037_PUBLIC))
