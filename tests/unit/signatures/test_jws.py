"""signatures.jws: the detached JWS profile, every refusal by name, and the order of checks.

Headers off the profile are built and signed here by `forge`, a few lines that follow RFC 7515
directly, so that a refusal is shown to hold even for a correctly signed JWS.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from signatures.errors import (
    JwkError,
    JwsAlgorithmError,
    JwsError,
    JwsFormatError,
    JwsHeaderError,
    JwsKeyMismatchError,
    JwsSignatureError,
)
from signatures.jwk import PublicJwk, b64url_encode, parse_b64url
from signatures.jws import (
    IMPLEMENTED_CRIT,
    MAX_HEADER_BYTES,
    MAX_HEADER_CHARS,
    MAX_IAT_S,
    MAX_JWS_CHARS,
    MAX_PAYLOAD_BYTES,
    MAX_SIGNATURE_CHARS,
    MAX_X5C_CERTS,
    TYP,
    parse_protected_header,
    sign_detached,
    verify_detached,
    verify_signing_input,
)

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

ED_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ED_OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
EC_KEY = ec.derive_private_key(987654321, ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEYS: dict[str, PrivateKey] = {"EdDSA": ED_KEY, "ES256": EC_KEY, "PS256": RSA_KEY}
PAYLOAD = b'{"type":"bill_payment","nonce":"AAAAAAAAAAAAAAAAAAAAAA"}'
IAT = 1_700_000_000


def jwk_of(private: PrivateKey) -> PublicJwk:
    return PublicJwk.from_public_key(private.public_key())


def raw_sign(signing_input: bytes, private: PrivateKey) -> bytes:
    if isinstance(private, Ed25519PrivateKey):
        return private.sign(signing_input)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    return private.sign(signing_input, pss, hashes.SHA256())


def profile_header(private: PrivateKey, **changes: object) -> dict[str, object]:
    key = jwk_of(private)
    header: dict[str, object] = {"alg": key.alg, "kid": key.kid, "typ": TYP, "iat": IAT}
    header.update(changes)
    return header


def forge(
    header: dict[str, object] | bytes,
    private: PrivateKey = ED_KEY,
    payload: bytes = PAYLOAD,
    *,
    signature: bytes | None = None,
) -> str:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    header_b64 = b64url_encode(raw)
    signing_input = f"{header_b64}.{b64url_encode(payload)}".encode()
    sig = raw_sign(signing_input, private) if signature is None else signature
    return f"{header_b64}..{b64url_encode(sig)}"


def self_signed(private: PrivateKey, *, dns_names: int = 0) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
    )
    if dns_names:
        names = [x509.DNSName(f"host{i:04}.{'x' * 50}.example") for i in range(dns_names)]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = None if isinstance(private, Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(private, algorithm).public_bytes(Encoding.DER)


ED_CERT = self_signed(ED_KEY)
OTHER_CERT = self_signed(ED_OTHER)


def header_error(jws: str, key: PublicJwk | None = None, payload: bytes = PAYLOAD) -> str:
    with pytest.raises(JwsHeaderError) as caught:
        verify_detached(jws, payload, key or jwk_of(ED_KEY))
    return caught.value.member


def format_error(jws: object, key: PublicJwk | None = None) -> JwsFormatError:
    with pytest.raises(JwsFormatError) as caught:
        verify_detached(jws, PAYLOAD, key or jwk_of(ED_KEY))  # type: ignore[arg-type]
    return caught.value


# --- what is accepted ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "PS256"])
def test_sign_then_verify(alg: str) -> None:
    private = KEYS[alg]
    jws = sign_detached(PAYLOAD, private, iat=IAT)
    header = verify_detached(jws, PAYLOAD, jwk_of(private))
    assert (header.alg, header.kid, header.typ, header.iat) == (alg, jwk_of(private).kid, TYP, IAT)
    assert header.x5c == () and header.x5t_s256 is None


def test_signed_header_is_sorted_compact_json() -> None:
    jws = sign_detached(PAYLOAD, ED_KEY, iat=IAT)
    raw = parse_b64url(jws.split(".")[0])
    kid = jwk_of(ED_KEY).kid
    assert raw == (f'{{"alg":"EdDSA","iat":{IAT},"kid":"{kid}","typ":"pishkhan-tx+jws"}}'.encode())
    assert parse_protected_header(jws).raw == raw


def test_jws_has_an_empty_payload_segment() -> None:
    _, middle, signature_b64 = sign_detached(PAYLOAD, ED_KEY, iat=IAT).split(".")
    assert middle == ""
    assert len(parse_b64url(signature_b64) or b"") == 64


def test_ps256_signature_has_the_modulus_length() -> None:
    jws = sign_detached(PAYLOAD, RSA_KEY, iat=IAT)
    assert len(parse_b64url(jws.split(".")[2]) or b"") == 256


def test_empty_payload_is_signed_and_verified() -> None:
    jws = sign_detached(b"", ED_KEY, iat=IAT)
    verify_detached(jws, b"", jwk_of(ED_KEY))


def test_x5c_and_x5t_s256_round_trip() -> None:
    jws = sign_detached(PAYLOAD, ED_KEY, iat=IAT, x5c=[ED_CERT, OTHER_CERT])
    header = verify_detached(jws, PAYLOAD, jwk_of(ED_KEY))
    assert header.x5c == (ED_CERT, OTHER_CERT)
    assert header.x5t_s256 == hashlib.sha256(ED_CERT).digest()


def test_iat_bounds_are_accepted() -> None:
    for iat in (0, MAX_IAT_S):
        verify_detached(sign_detached(PAYLOAD, ED_KEY, iat=iat), PAYLOAD, jwk_of(ED_KEY))


def test_parse_protected_header_does_no_cryptography() -> None:
    jws = forge(profile_header(ED_KEY), signature=bytes(64))
    assert parse_protected_header(jws).alg == "EdDSA"


def test_implemented_crit_is_empty() -> None:
    assert frozenset() == IMPLEMENTED_CRIT


# --- refusals: serialisation ---------------------------------------------------------------------


def test_non_string_jws_is_refused() -> None:
    format_error(b"abc..def")


def test_jws_longer_than_max_is_refused_before_splitting() -> None:
    assert "MAX_JWS_CHARS" in str(format_error("A" * (MAX_JWS_CHARS + 1)))


@pytest.mark.parametrize("where", [0, 10, -1])
@pytest.mark.parametrize("space", [" ", "\n", "\t", "\r", "\u00a0"])
def test_whitespace_is_refused(where: int, space: str) -> None:
    jws = sign_detached(PAYLOAD, ED_KEY, iat=IAT)
    position = where if where >= 0 else len(jws)
    assert "whitespace" in str(format_error(jws[:position] + space + jws[position:]))


@pytest.mark.parametrize("count", [1, 2, 4, 5])
def test_wrong_number_of_segments_is_refused(count: int) -> None:
    header_b64, _, signature_b64 = sign_detached(PAYLOAD, ED_KEY, iat=IAT).split(".")
    segments = [header_b64] + [""] * (count - 2) + [signature_b64] if count > 1 else [header_b64]
    assert "segments" in str(format_error(".".join(segments)))


def test_attached_payload_is_refused() -> None:
    header_b64, _, signature_b64 = sign_detached(PAYLOAD, ED_KEY, iat=IAT).split(".")
    attached = f"{header_b64}.{b64url_encode(PAYLOAD)}.{signature_b64}"
    assert "detached" in str(format_error(attached))


def test_empty_header_segment_is_refused() -> None:
    signature_b64 = sign_detached(PAYLOAD, ED_KEY, iat=IAT).split(".")[2]
    format_error(f"..{signature_b64}")


def test_empty_signature_segment_is_refused() -> None:
    header_b64 = sign_detached(PAYLOAD, ED_KEY, iat=IAT).split(".")[0]
    assert "signature" in str(format_error(f"{header_b64}.."))


def test_header_larger_than_max_is_refused_before_decoding() -> None:
    jws = "A" * (MAX_HEADER_CHARS + 1) + ".." + "A" * 86
    assert "MAX_HEADER_BYTES" in str(format_error(jws))


def test_signature_segment_longer_than_max_is_refused() -> None:
    header_b64 = sign_detached(PAYLOAD, ED_KEY, iat=IAT).split(".")[0]
    format_error(f"{header_b64}..{'A' * (MAX_SIGNATURE_CHARS + 1)}")


def test_padded_header_segment_is_refused() -> None:
    header = profile_header(ED_KEY, pad="x")
    raw = json.dumps(header).encode()
    while len(raw) % 3 == 0:  # make sure the standard encoding carries padding
        header["pad"] = str(header["pad"]) + "x"
        raw = json.dumps(header).encode()
    jws = forge(raw)
    signature_b64 = jws.split(".")[2]
    padded = base64.urlsafe_b64encode(raw).decode()
    assert padded.endswith("=")
    assert "canonical" in str(format_error(f"{padded}..{signature_b64}"))


def test_non_zero_unused_bits_in_signature_are_refused() -> None:
    header_b64, _, signature_b64 = sign_detached(PAYLOAD, ED_KEY, iat=IAT).split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(signature_b64[-1]) ^ 1]  # 64 bytes leave 4 unused bits
    assert "canonical" in str(format_error(f"{header_b64}..{signature_b64[:-1]}{last}"))


def test_standard_base64_alphabet_is_refused() -> None:
    header_b64, _, signature_b64 = sign_detached(PAYLOAD, ED_KEY, iat=IAT).split(".")
    signature = parse_b64url(signature_b64) or b""
    standard = base64.b64encode(b"\xfb\xff" + signature[2:]).decode().rstrip("=")
    format_error(f"{header_b64}..{standard}")


def test_header_that_is_not_utf8_is_refused() -> None:
    assert "JSON" in str(format_error(forge(b'{"alg":"\xff"}')))


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b'{"alg":"EdDSA"', b'{"alg":"EdDSA"} x', b"\xef\xbb\xbf{}", b"[" * 5000],
)
def test_header_that_is_not_json_is_refused(raw: bytes) -> None:
    if not raw:
        format_error("..AAAA")
        return
    format_error(forge(raw))


@pytest.mark.parametrize("raw", [b"[]", b'"EdDSA"', b"1", b"null", b"true"])
def test_header_that_is_not_an_object_is_refused(raw: bytes) -> None:
    assert "object" in str(format_error(forge(raw)))


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_header_with_non_json_constant_is_refused(constant: str) -> None:
    raw = json.dumps(profile_header(ED_KEY)).encode()[:-1] + f', "x": {constant}}}'.encode()
    format_error(forge(raw))


def test_duplicate_header_member_is_refused() -> None:
    raw = json.dumps(profile_header(ED_KEY)).encode()[:-1] + b', "alg": "none"}'
    assert header_error(forge(raw)) == "alg"


def test_duplicate_member_in_nested_value_is_refused() -> None:
    raw = json.dumps(profile_header(ED_KEY)).encode()[:-1] + b', "x": {"a": 1, "a": 2}}'
    assert header_error(forge(raw)) == "a"


# --- refusals: alg -------------------------------------------------------------------------------


def test_missing_alg_is_refused() -> None:
    header = profile_header(ED_KEY)
    del header["alg"]
    assert header_error(forge(header)) == "alg"


@pytest.mark.parametrize("alg", [None, 1, ["EdDSA"], {"name": "EdDSA"}])
def test_non_string_alg_is_refused(alg: object) -> None:
    assert header_error(forge(profile_header(ED_KEY, alg=alg))) == "alg"


@pytest.mark.parametrize(
    "alg",
    ["none", "None", "NONE", "HS256", "HS384", "HS512", "RS256", "ES384", "ES256K", "PS512",
     "Ed25519", "Ed448", "eddsa", "EdDSA ", "", "RSA-OAEP", "dir"],
)  # fmt: skip
def test_unsupported_alg_is_refused(alg: str) -> None:
    with pytest.raises(JwsAlgorithmError) as caught:
        verify_detached(forge(profile_header(ED_KEY, alg=alg)), PAYLOAD, jwk_of(ED_KEY))
    assert (caught.value.header_alg, caught.value.key_alg) == (alg, "EdDSA")


def test_unsupported_alg_is_refused_by_parsing_alone() -> None:
    with pytest.raises(JwsAlgorithmError) as caught:
        parse_protected_header(forge(profile_header(ED_KEY, alg="none")))
    assert caught.value.key_alg is None


@pytest.mark.parametrize(("header_alg", "key_alg"), [("ES256", "EdDSA"), ("PS256", "ES256")])
def test_alg_other_than_the_keys_is_refused(header_alg: str, key_alg: str) -> None:
    signer = KEYS[header_alg]
    jws = sign_detached(PAYLOAD, signer, iat=IAT)
    with pytest.raises(JwsAlgorithmError) as caught:
        verify_detached(jws, PAYLOAD, jwk_of(KEYS[key_alg]))
    assert (caught.value.header_alg, caught.value.key_alg) == (header_alg, key_alg)


# --- refusals: forbidden, unknown and critical members -------------------------------------------


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("jwk", {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
        ("b64", False),
        ("b64", True),
    ],
)
def test_forbidden_member_is_refused(member: str, value: object) -> None:
    assert header_error(forge(profile_header(ED_KEY, **{member: value}))) == member


def test_b64_false_is_refused_as_unsupported() -> None:
    header = profile_header(ED_KEY, b64=False, crit=["b64"])
    with pytest.raises(JwsHeaderError, match="7797"):
        verify_detached(forge(header), PAYLOAD, jwk_of(ED_KEY))


@pytest.mark.parametrize(
    "member", ["cty", "x5t", "zip", "enc", "exp", "nbf", "sub", "iss", "nonce"]
)
def test_unknown_member_is_refused(member: str) -> None:
    assert header_error(forge(profile_header(ED_KEY, **{member: "x"}))) == member


@pytest.mark.parametrize(
    ("crit", "extra"),
    [
        (["exp"], {"exp": 1}),  # understood by no one here
        (["exp"], {}),  # lists a member that is absent
        (["alg"], {}),  # lists a registered member
        (["x5t#S256"], {}),
        ([], {}),  # empty
        ("exp", {"exp": 1}),  # not an array
        ([1], {}),  # not strings
        (["exp", "exp"], {"exp": 1}),  # repeated
    ],
)
def test_crit_is_refused(crit: object, extra: dict[str, object]) -> None:
    header = profile_header(ED_KEY, crit=crit, **extra)
    assert header_error(forge(header)) == "crit"


# --- refusals: kid, typ, iat ---------------------------------------------------------------------


@pytest.mark.parametrize("member", ["kid", "typ", "iat"])
def test_missing_required_member_is_refused(member: str) -> None:
    header = profile_header(ED_KEY)
    del header[member]
    assert header_error(forge(header)) == member


@pytest.mark.parametrize(
    "kid",
    [
        "",
        "key-1",
        "2011-04-29",
        7,
        None,
        "A" * 42,
        "A" * 44,
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k=",
    ],
)
def test_kid_that_is_not_a_thumbprint_is_refused(kid: object) -> None:
    assert header_error(forge(profile_header(ED_KEY, kid=kid))) == "kid"


def test_kid_of_another_key_is_refused() -> None:
    jws = sign_detached(PAYLOAD, ED_OTHER, iat=IAT)
    with pytest.raises(JwsKeyMismatchError) as caught:
        verify_detached(jws, PAYLOAD, jwk_of(ED_KEY))
    assert (caught.value.kid, caught.value.expected_kid) == (
        jwk_of(ED_OTHER).kid,
        jwk_of(ED_KEY).kid,
    )


@pytest.mark.parametrize(
    "typ",
    ["JWT", "jwt", "at+jwt", "JOSE", "PISHKHAN-TX+JWS", "application/pishkhan-tx+jws",
     "pishkhan-tx+jws ", "", None, 1],
)  # fmt: skip
def test_typ_other_than_ours_is_refused(typ: object) -> None:
    assert header_error(forge(profile_header(ED_KEY, typ=typ))) == "typ"


@pytest.mark.parametrize("iat", [1.5, 1.0, 1e9, "1700000000", True, False, None, [1]])
def test_iat_that_is_not_an_integer_is_refused(iat: object) -> None:
    assert header_error(forge(profile_header(ED_KEY, iat=iat))) == "iat"


@pytest.mark.parametrize("iat", [-1, MAX_IAT_S + 1, 2**64, 10**400])
def test_iat_out_of_range_is_refused(iat: int) -> None:
    raw = json.dumps(profile_header(ED_KEY)).replace(str(IAT), str(iat)).encode()
    with pytest.raises(JwsError):
        verify_detached(forge(raw), PAYLOAD, jwk_of(ED_KEY))


def test_huge_iat_literal_is_refused_as_format() -> None:
    raw = json.dumps(profile_header(ED_KEY)).replace(str(IAT), "9" * 5000).encode()
    format_error(forge(raw))


# --- refusals: x5c and x5t#S256 ------------------------------------------------------------------


def x5c_header(chain: object, thumbprint: object) -> dict[str, object]:
    return profile_header(ED_KEY, x5c=chain, **{"x5t#S256": thumbprint})


ED_CERT_B64 = base64.b64encode(ED_CERT).decode()
ED_CERT_T = b64url_encode(hashlib.sha256(ED_CERT).digest())


def test_x5c_without_x5t_s256_is_refused() -> None:
    assert header_error(forge(profile_header(ED_KEY, x5c=[ED_CERT_B64]))) == "x5t#S256"


def test_x5t_s256_without_x5c_is_refused() -> None:
    assert header_error(forge(profile_header(ED_KEY, **{"x5t#S256": ED_CERT_T}))) == "x5c"


@pytest.mark.parametrize("chain", [[], ED_CERT_B64, {"0": ED_CERT_B64}, None])
def test_x5c_that_is_not_a_non_empty_array_is_refused(chain: object) -> None:
    assert header_error(forge(x5c_header(chain, ED_CERT_T))) == "x5c"


def test_x5c_longer_than_max_is_refused() -> None:
    chain = [ED_CERT_B64] * (MAX_X5C_CERTS + 1)
    assert header_error(forge(x5c_header(chain, ED_CERT_T))) == "x5c"


@pytest.mark.parametrize(
    "entry",
    [
        "",
        5,
        ED_CERT_B64.rstrip("="),  # unpadded
        b64url_encode(ED_CERT),  # base64url, not base64 (when it differs)
        ED_CERT_B64[:10] + "\u00e9" + ED_CERT_B64[11:],
    ],
)
def test_x5c_entry_that_is_not_standard_base64_is_refused(entry: object) -> None:
    if entry == ED_CERT_B64:
        pytest.skip("this certificate encodes the same in both alphabets")
    assert header_error(forge(x5c_header([entry], ED_CERT_T))) == "x5c"


def test_x5t_s256_of_another_certificate_is_refused() -> None:
    other = b64url_encode(hashlib.sha256(OTHER_CERT).digest())
    assert header_error(forge(x5c_header([ED_CERT_B64], other))) == "x5t#S256"


@pytest.mark.parametrize(
    "thumbprint", [5, "", ED_CERT_T + "A", base64.b64encode(b"x" * 32).decode()]
)
def test_malformed_x5t_s256_is_refused(thumbprint: object) -> None:
    assert header_error(forge(x5c_header([ED_CERT_B64], thumbprint))) == "x5t#S256"


def test_x5c_certificate_for_another_key_is_refused() -> None:
    other = base64.b64encode(OTHER_CERT).decode()
    other_t = b64url_encode(hashlib.sha256(OTHER_CERT).digest())
    assert header_error(forge(x5c_header([other], other_t))) == "x5c"


def test_x5c_entry_that_is_not_a_certificate_is_refused() -> None:
    junk = b"not a certificate"
    header = x5c_header(
        [base64.b64encode(junk).decode()], b64url_encode(hashlib.sha256(junk).digest())
    )
    assert header_error(forge(header)) == "x5c"


# --- refusals: signature and payload -------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "PS256"])
def test_other_payload_is_refused(alg: str) -> None:
    jws = sign_detached(PAYLOAD, KEYS[alg], iat=IAT)
    for payload in (b"", PAYLOAD + b" ", PAYLOAD[:-1], PAYLOAD.replace(b"bill", b"fine")):
        with pytest.raises(JwsSignatureError):
            verify_detached(jws, payload, jwk_of(KEYS[alg]))


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "PS256"])
@pytest.mark.parametrize("delta", [-1, 1])
def test_signature_of_wrong_length_is_refused(alg: str, delta: int) -> None:
    header_b64, _, signature_b64 = sign_detached(PAYLOAD, KEYS[alg], iat=IAT).split(".")
    signature = parse_b64url(signature_b64) or b""
    changed = signature[:-1] if delta < 0 else signature + b"\x00"
    with pytest.raises(JwsFormatError, match="bytes"):
        verify_detached(f"{header_b64}..{b64url_encode(changed)}", PAYLOAD, jwk_of(KEYS[alg]))


def test_es256_der_signature_is_refused() -> None:
    signing_input = b"abc"
    der = EC_KEY.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(JwsFormatError):
        verify_signing_input(signing_input, signature=der, key=jwk_of(EC_KEY))


@pytest.mark.parametrize("salt", [0, 20, 64, padding.PSS.MAX_LENGTH])
def test_ps256_salt_length_other_than_32_is_refused(salt: int) -> None:
    signing_input = b"abc"
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
    signature = RSA_KEY.sign(signing_input, pss, hashes.SHA256())
    with pytest.raises(JwsSignatureError):
        verify_signing_input(signing_input, signature=signature, key=jwk_of(RSA_KEY))


def test_rs256_pkcs1_signature_under_ps256_is_refused() -> None:
    signing_input = b"abc"
    signature = RSA_KEY.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(JwsSignatureError):
        verify_signing_input(signing_input, signature=signature, key=jwk_of(RSA_KEY))


def test_payload_larger_than_max_is_refused_before_parsing() -> None:
    with pytest.raises(JwsFormatError, match="MAX_PAYLOAD_BYTES"):
        verify_detached("not even a jws", b"x" * (MAX_PAYLOAD_BYTES + 1), jwk_of(ED_KEY))


def test_payload_that_is_not_bytes_is_refused() -> None:
    jws = sign_detached(PAYLOAD, ED_KEY, iat=IAT)
    with pytest.raises(JwsFormatError):
        verify_detached(jws, PAYLOAD.decode(), jwk_of(ED_KEY))  # type: ignore[arg-type]


def test_signing_input_longer_than_max_is_refused() -> None:
    with pytest.raises(JwsFormatError):
        verify_signing_input(
            b"x" * (2 * MAX_PAYLOAD_BYTES), signature=bytes(64), key=jwk_of(ED_KEY)
        )


# --- order of checks: no cryptography before every other check -----------------------------------


def test_header_is_refused_before_the_signature_is_checked() -> None:
    # A zero signature would fail verification; the header problem must be reported instead.
    jws = forge(profile_header(ED_KEY, typ="JWT"), signature=bytes(64))
    assert header_error(jws) == "typ"


def test_kid_mismatch_is_reported_before_the_signature() -> None:
    jws = forge(profile_header(ED_OTHER), signature=bytes(64))
    with pytest.raises(JwsKeyMismatchError):
        verify_detached(jws, PAYLOAD, jwk_of(ED_KEY))


def test_alg_mismatch_is_reported_before_kid_mismatch() -> None:
    jws = forge(profile_header(EC_KEY), EC_KEY, signature=bytes(64))
    with pytest.raises(JwsAlgorithmError):
        verify_detached(jws, PAYLOAD, jwk_of(ED_KEY))


# --- refusals at signing -------------------------------------------------------------------------


@pytest.mark.parametrize("iat", [-1, MAX_IAT_S + 1, True])
def test_sign_refuses_a_bad_iat(iat: int) -> None:
    with pytest.raises(JwsHeaderError):
        sign_detached(PAYLOAD, ED_KEY, iat=iat)


def test_sign_refuses_an_oversized_payload() -> None:
    with pytest.raises(JwsFormatError):
        sign_detached(b"x" * (MAX_PAYLOAD_BYTES + 1), ED_KEY, iat=IAT)


def test_sign_refuses_too_many_certificates() -> None:
    with pytest.raises(JwsHeaderError):
        sign_detached(PAYLOAD, ED_KEY, iat=IAT, x5c=[ED_CERT] * (MAX_X5C_CERTS + 1))


def test_sign_refuses_a_certificate_for_another_key() -> None:
    with pytest.raises(JwsHeaderError):
        sign_detached(PAYLOAD, ED_KEY, iat=IAT, x5c=[OTHER_CERT])


def test_sign_refuses_a_header_larger_than_max() -> None:
    big = self_signed(ED_OTHER, dns_names=20)
    count = MAX_HEADER_BYTES // len(big) + 1
    assert count <= MAX_X5C_CERTS - 1
    with pytest.raises(JwsHeaderError, match="MAX_HEADER_BYTES"):
        sign_detached(PAYLOAD, ED_KEY, iat=IAT, x5c=[ED_CERT] + [big] * count)


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()], ids=["P-384", "P-521"])
def test_sign_refuses_other_curves(curve: ec.EllipticCurve) -> None:
    with pytest.raises(JwkError):
        sign_detached(PAYLOAD, ec.generate_private_key(curve), iat=IAT)


def test_sign_refuses_rsa_below_2048_bits() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(JwkError):
        sign_detached(PAYLOAD, small, iat=IAT)
