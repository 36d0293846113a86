"""signatures.jwk: every refusal of PublicJwk, by name, and the round trips."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signatures.errors import JwkError
from signatures.jwk import (
    MAX_JWK_MEMBERS,
    MAX_MEMBER_CHARS,
    MAX_RSA_BITS,
    MIN_RSA_BITS,
    P256_FIELD_PRIME,
    PublicJwk,
    b64url_encode,
    parse_b64url,
)

ED_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
EC_KEY = ec.derive_private_key(123456789, ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

ED = PublicJwk.from_public_key(ED_KEY.public_key()).to_dict()
EC = PublicJwk.from_public_key(EC_KEY.public_key()).to_dict()
RSA = PublicJwk.from_public_key(RSA_KEY.public_key()).to_dict()


def refused(obj: Mapping[str, object]) -> JwkError:
    with pytest.raises(JwkError) as caught:
        PublicJwk.from_dict(obj)
    return caught.value


def b64url_int(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, -(-value.bit_length() // 8))
    return b64url_encode(value.to_bytes(length, "big"))


def b64url_decode(text: str) -> bytes:
    decoded = parse_b64url(text)
    assert decoded is not None
    return decoded


# --- what is accepted ----------------------------------------------------------------------------


@pytest.mark.parametrize(("jwk", "alg"), [(ED, "EdDSA"), (EC, "ES256"), (RSA, "PS256")])
def test_round_trip_through_dict(jwk: dict[str, str], alg: str) -> None:
    key = PublicJwk.from_dict(jwk)
    assert key.to_dict() == jwk
    assert key.alg == alg
    assert PublicJwk.from_dict(key.to_dict()) == key


@pytest.mark.parametrize("private", [ED_KEY, EC_KEY, RSA_KEY], ids=["EdDSA", "ES256", "PS256"])
def test_from_public_key_holds_the_same_key(
    private: Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
) -> None:
    key = PublicJwk.from_public_key(private.public_key())
    assert key.public_key == private.public_key()


@pytest.mark.parametrize("jwk", [ED, EC, RSA], ids=["EdDSA", "ES256", "PS256"])
def test_consistent_optional_members_are_accepted(jwk: dict[str, str]) -> None:
    key = PublicJwk.from_dict(jwk)
    full = {**jwk, "alg": key.alg, "use": "sig", "kid": key.kid, "key_ops": ["verify"]}
    assert PublicJwk.from_dict(full) == key


def test_kid_is_the_thumbprint_and_keys_are_hashable() -> None:
    key = PublicJwk.from_dict(ED)
    assert key.kid == key.thumbprint()
    assert len(b64url_decode(key.kid)) == 32
    assert {key, PublicJwk.from_dict(ED)} == {key}


def test_ec_coordinates_keep_leading_zero_octets() -> None:
    # Found by search: a key whose x has a leading zero byte still encodes as 32 bytes.
    for scalar in range(1, 2000):
        public = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
        if public.public_numbers().x < 2**248:
            break
    else:
        pytest.skip("no small x in range")
    key = PublicJwk.from_public_key(public)
    assert len(b64url_decode(key.to_dict()["x"])) == 32
    assert PublicJwk.from_dict(key.to_dict()) == key


def test_direct_construction_validates() -> None:
    with pytest.raises(JwkError):
        PublicJwk(kty="oct")
    with pytest.raises(JwkError):
        PublicJwk(kty="OKP", crv="Ed25519", x="AAAA")


# --- refusals: the object ------------------------------------------------------------------------


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_private_member_is_refused(member: str) -> None:
    error = refused({**RSA, member: "AQAB"})
    assert (error.member, error.rule) == (member, "private member")


def test_symmetric_key_is_refused() -> None:
    error = refused({"kty": "oct", "k": "c2VjcmV0"})
    assert error.member == "k"  # private material first
    error = refused({"kty": "oct"})
    assert (error.member, error.rule) == ("kty", "symmetric key")


def test_missing_kty_is_refused() -> None:
    assert refused({"crv": "Ed25519", "x": ED["x"]}).member == "kty"


@pytest.mark.parametrize("kty", ["okp", "ec", "rsa", "OCT", "", "Ed25519"])
def test_unknown_kty_is_refused(kty: str) -> None:
    assert refused({**ED, "kty": kty}).rule in {"unsupported kty", "symmetric key"}


@pytest.mark.parametrize("member", ["x5c", "x5t", "foo", "ext", "iat"])
def test_unknown_member_is_refused(member: str) -> None:
    error = refused({**ED, member: "x"})
    assert (error.member, error.rule) == (member, "unknown")


def test_member_of_another_key_type_is_refused() -> None:
    assert refused({**ED, "y": EC["y"]}).member == "y"
    assert refused({**RSA, "crv": "P-256"}).member == "crv"
    assert refused({**EC, "n": RSA["n"]}).member == "n"


def test_non_string_member_is_refused() -> None:
    error = refused({**ED, "x": 5})
    assert (error.member, error.rule) == ("x", "type")


def test_non_string_member_name_is_refused() -> None:
    assert refused({**ED, 1: "x"}).rule == "type"  # type: ignore[dict-item]


def test_too_many_members_is_refused() -> None:
    extra = {f"m{i}": "x" for i in range(MAX_JWK_MEMBERS)}
    assert refused({**ED, **extra}).rule == "too many members"


def test_oversized_member_is_refused_before_decoding() -> None:
    error = refused({**RSA, "n": "A" * (MAX_MEMBER_CHARS + 1)})
    assert (error.member, error.rule) == ("n", "too long")


def test_missing_required_member_is_refused() -> None:
    assert refused({"kty": "EC", "crv": "P-256", "x": EC["x"]}).member == "y"
    assert refused({"kty": "RSA", "n": RSA["n"]}).member == "e"
    assert refused({"kty": "OKP", "x": ED["x"]}).member == "crv"
    assert refused({"kty": "OKP", "crv": "Ed25519"}).rule == "required"


# --- refusals: curves ----------------------------------------------------------------------------


@pytest.mark.parametrize("crv", ["P-384", "P-521", "secp256k1", "P256", "p-256"])
def test_other_ec_curve_is_refused(crv: str) -> None:
    error = refused({**EC, "crv": crv})
    assert (error.member, error.rule) == ("crv", "unsupported curve")


@pytest.mark.parametrize("crv", ["X25519", "Ed448", "X448", "ed25519"])
def test_other_okp_curve_is_refused(crv: str) -> None:
    error = refused({**ED, "crv": crv})
    assert (error.member, error.rule) == ("crv", "unsupported curve")


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP256K1()], ids=["P-384", "secp256k1"])
def test_from_public_key_refuses_other_curves(curve: ec.EllipticCurve) -> None:
    with pytest.raises(JwkError):
        PublicJwk.from_public_key(ec.generate_private_key(curve).public_key())


# --- refusals: EC points -------------------------------------------------------------------------


def test_ec_point_not_on_curve_is_refused() -> None:
    error = refused({**EC, "y": b64url_int(P256_FIELD_PRIME, 32)})
    assert (error.member, error.rule) == ("y", "range")


def test_ec_short_coordinate_is_refused() -> None:
    x = b64url_decode(EC["x"])
    error = refused({**EC, "x": b64url_encode(x[1:])})
    assert (error.member, error.rule) == ("x", "length")


def test_ec_long_coordinate_is_refused() -> None:
    error = refused({**EC, "y": b64url_encode(b"\x00" + b64url_decode(EC["y"]))})
    assert (error.member, error.rule) == ("y", "length")


# --- refusals: Ed25519 points --------------------------------------------------------------------


def test_ed25519_short_key_is_refused() -> None:
    error = refused({**ED, "x": b64url_encode(bytes(31))})
    assert (error.member, error.rule) == ("x", "length")


def test_ed25519_point_not_on_curve_is_refused() -> None:
    # A y for which (y^2 - 1) / (d y^2 + 1) is not a square has no x: checked independently
    # with Euler's criterion.
    p = 2**255 - 19
    d = -121665 * pow(121666, -1, p) % p
    for y in range(2, 100):
        ratio = (y * y - 1) * pow(d * y * y + 1, -1, p) % p
        if pow(ratio, (p - 1) // 2, p) == p - 1:
            break
    error = refused({**ED, "x": b64url_encode(y.to_bytes(32, "little"))})
    assert (error.member, error.rule) == ("x", "invalid point")


# --- refusals: RSA -------------------------------------------------------------------------------


def test_rsa_modulus_below_min_bits_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(JwkError) as caught:
        PublicJwk.from_public_key(small)
    assert (caught.value.member, caught.value.rule) == ("n", "modulus size")


def test_rsa_modulus_of_min_bits_minus_one_is_refused() -> None:
    n = (1 << (MIN_RSA_BITS - 2)) | 1
    assert n.bit_length() == MIN_RSA_BITS - 1
    assert refused({**RSA, "n": b64url_int(n)}).rule == "modulus size"


def test_rsa_modulus_above_max_bits_is_refused() -> None:
    n = (1 << MAX_RSA_BITS) | 1
    assert refused({**RSA, "n": b64url_int(n)}).member == "n"


def test_rsa_even_modulus_is_refused() -> None:
    n = int.from_bytes(b64url_decode(RSA["n"]), "big") + 1
    assert refused({**RSA, "n": b64url_int(n)}).rule == "odd modulus"


@pytest.mark.parametrize("e", [1, 3, 17, 65535, 65538, 2**256 + 1])
def test_rsa_small_even_or_huge_exponent_is_refused(e: int) -> None:
    error = refused({**RSA, "e": b64url_int(e)})
    assert (error.member, error.rule) == ("e", "public exponent")


def test_rsa_modulus_with_leading_zero_octet_is_refused() -> None:
    error = refused({**RSA, "n": b64url_encode(b"\x00" + b64url_decode(RSA["n"]))})
    assert (error.member, error.rule) == ("n", "minimal integer")


# --- refusals: encodings -------------------------------------------------------------------------


def test_padded_base64url_is_refused() -> None:
    padded = base64.urlsafe_b64encode(b64url_decode(ED["x"])).decode()
    assert padded.endswith("=")
    assert refused({**ED, "x": padded}).rule == "canonical base64url"


def test_standard_base64_alphabet_is_refused() -> None:
    raw = bytes([0xFB, 0xFF]) + b64url_decode(EC["x"])[2:]
    standard = base64.b64encode(raw).decode().rstrip("=")
    assert "+" in standard or "/" in standard
    assert refused({**EC, "x": standard}).rule == "canonical base64url"


def test_non_zero_unused_bits_are_refused() -> None:
    # 32 bytes = 43 characters, the last carrying 2 unused bits: "A" -> "B" sets one.
    text = ED["x"]
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    mutated = text[:-1] + last[last.index(text[-1]) ^ 1]
    assert refused({**ED, "x": mutated}).rule == "canonical base64url"


def test_impossible_base64url_length_is_refused() -> None:
    assert refused({**ED, "x": ED["x"] + "AA"}).rule == "canonical base64url"


def test_whitespace_in_member_is_refused() -> None:
    assert refused({**ED, "x": ED["x"][:10] + " " + ED["x"][10:]}).rule == "canonical base64url"


# --- refusals: optional members ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jwk", "alg"),
    [(RSA, "RS256"), (RSA, "PS384"), (EC, "ES384"), (ED, "Ed25519"), (ED, "ES256"), (ED, "none")],
)
def test_alg_other_than_the_keys_is_refused(jwk: dict[str, str], alg: str) -> None:
    error = refused({**jwk, "alg": alg})
    assert (error.member, error.rule) == ("alg", "inconsistent")


def test_use_other_than_sig_is_refused() -> None:
    assert refused({**ED, "use": "enc"}).member == "use"


def test_kid_other_than_the_thumbprint_is_refused() -> None:
    assert refused({**ED, "kid": "my-key-1"}).member == "kid"


@pytest.mark.parametrize("ops", [["sign"], ["verify", "sign"], "verify", [], ["encrypt"]])
def test_key_ops_other_than_verify_is_refused(ops: object) -> None:
    assert refused({**ED, "key_ops": ops}).member == "key_ops"


def test_thumbprint_uses_only_required_members() -> None:
    key = PublicJwk.from_dict(RSA)
    required = json.dumps({"e": RSA["e"], "kty": "RSA", "n": RSA["n"]}, separators=(",", ":"))
    assert key.kid == b64url_encode(hashlib.sha256(required.encode()).digest())
