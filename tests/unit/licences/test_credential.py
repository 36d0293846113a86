"""The licence credential (licences/credential.py): round trip, every refusal reason, tampering
with each payload member, and cross-checks with independent JOSE implementations.

jwcrypto verifies our token with the published JWK and we verify one jwcrypto made. python-jose
(3.x) has no EdDSA (pinned by test_python_jose_lacks_eddsa), so it only reads the unverified
header and claims back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from jose import jwt as jose_jwt
from jose.constants import ALGORITHMS as JOSE_ALGORITHMS
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from licences.credential import (
    CREDENTIAL_REASONS,
    CREDENTIAL_TYP,
    MAX_CREDENTIAL_CHARS,
    MAX_NUMBER_CHARS,
    PAYLOAD_MEMBERS,
    CredentialClaims,
    IssuerKey,
    encode_credential,
    issuer_key,
    issuer_key_json,
    verify_credential,
)
from licences.errors import CredentialError
from signatures.envelope import MAX_AGENCY_ID_CHARS
from signatures.jwk import PublicJwk, b64url_encode

TEHRAN = ZoneInfo("Asia/Tehran")
RAHVAR = "agency:rahvar"
ASNAF = "agency:asnaf"
HOLDER = "ir-nid:0013542419"  # a valid check digit (mod 11)
LICENCE_ID = "0b3c1f2e-1234-4abc-8def-0123456789ab"

KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
ISSUER = issuer_key(KEY.public_key(), issuer=RAHVAR)
KEYS = {ISSUER.kid: ISSUER}


def _start_of(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=TEHRAN).timestamp())


def _claims() -> CredentialClaims:
    """A realistic Iranian driving licence: ten years from 1404-01-01 (2025-03-21)."""
    valid_from, valid_until = date(2025, 3, 21), date(2035, 3, 20)
    return CredentialClaims(
        issuer=RAHVAR,
        holder=HOLDER,
        licence_type="ir.driving",
        number="9812345678",
        valid_from=valid_from,
        valid_until=valid_until,
        not_before=_start_of(valid_from),
        expires_at=_start_of(date(2035, 3, 21)),
        issued_at=1_742_600_000,
        licence_id=LICENCE_ID,
    )


CLAIMS = _claims()
TOKEN = encode_credential(CLAIMS, private_key=KEY)


def _b64json(value: object) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def _payload() -> dict[str, object]:
    return json.loads(base64.urlsafe_b64decode(TOKEN.split(".")[1] + "=="))  # type: ignore[no-any-return]


def _header() -> dict[str, object]:
    return {"alg": "EdDSA", "kid": ISSUER.kid, "typ": CREDENTIAL_TYP}


def _signed(header: object, payload: object, *, key: Ed25519PrivateKey = KEY) -> str:
    """A token over arbitrary header and payload, validly signed with an Ed25519 key."""
    signing_input = f"{_b64json(header)}.{_b64json(payload)}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"


def _reason(token: str, keys: dict[str, IssuerKey] = KEYS) -> str:
    with pytest.raises(CredentialError) as caught:
        verify_credential(token, keys=keys)
    assert caught.value.reason in CREDENTIAL_REASONS
    return caught.value.reason


# --- round trip and form --------------------------------------------------------------------------


def test_round_trip() -> None:
    assert verify_credential(TOKEN, keys=KEYS) == CLAIMS


def test_header_is_exactly_the_profile() -> None:
    raw = base64.urlsafe_b64decode(TOKEN.split(".")[0] + "==")
    assert raw == (
        b'{"alg":"EdDSA","kid":"' + ISSUER.kid.encode() + b'","typ":"pishkhan-licence+jwt"}'
    )
    assert ISSUER.kid == PublicJwk.from_public_key(KEY.public_key()).thumbprint()


def test_payload_is_exactly_the_profile() -> None:
    assert _payload() == {
        "v": 1,
        "iss": RAHVAR,
        "sub": HOLDER,
        "lty": "ir.driving",
        "lno": "9812345678",
        "vf": "2025-03-21",
        "vu": "2035-03-20",
        "nbf": CLAIMS.not_before,
        "exp": CLAIMS.expires_at,
        "iat": 1_742_600_000,
        "jti": LICENCE_ID,
    }
    # 1404-01-01 00:00 in Tehran (UTC+03:30 since 2022) is 2025-03-20T20:30Z.
    assert CLAIMS.not_before == 1_742_502_600


def test_realistic_driving_licence_fits_a_qr_code() -> None:
    # The typical length is reported in docs/LICENCES.md; 516 characters at the time of writing.
    assert 480 <= len(TOKEN) <= 560
    assert len(TOKEN) <= MAX_CREDENTIAL_CHARS


def test_longest_claims_fit_the_limit() -> None:
    longest = replace(
        CLAIMS,
        issuer="agency:" + "a" * MAX_AGENCY_ID_CHARS,
        holder="ir-lid:29141777638",  # the longest non-agency subject (18 characters)
        licence_type="a" * 31 + "." + "b" * 31,
        number="9" * MAX_NUMBER_CHARS,
        not_before=253_402_300_000,
        expires_at=253_402_300_799,
        issued_at=253_402_300_799,
    )
    key = issuer_key(KEY.public_key(), issuer=longest.issuer)
    token = encode_credential(longest, private_key=KEY)
    assert len(token) <= MAX_CREDENTIAL_CHARS
    assert verify_credential(token, keys={key.kid: key}) == longest


def test_encode_refuses_claims_verify_would_refuse() -> None:
    for bad in (
        replace(CLAIMS, issuer=HOLDER),
        replace(CLAIMS, holder=RAHVAR),
        replace(CLAIMS, holder="ir-nid:0013542418"),  # wrong check digit
        replace(CLAIMS, licence_type="driving"),
        replace(CLAIMS, number="12 34"),
        replace(CLAIMS, valid_until=date(2025, 3, 20)),
        replace(CLAIMS, expires_at=CLAIMS.not_before),
        replace(CLAIMS, issued_at=-1),
        replace(CLAIMS, licence_id=LICENCE_ID.upper()),
    ):
        with pytest.raises(CredentialError) as caught:
            encode_credential(bad, private_key=KEY)
        assert caught.value.reason == "invalid_claims"


def test_issuer_key_json_is_a_public_okp_jwk() -> None:
    published = issuer_key_json(ISSUER)
    raw = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert published == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url_encode(raw),
        "alg": "EdDSA",
        "use": "sig",
        "kid": ISSUER.kid,
        "iss": RAHVAR,
    }
    # Our own strict JWK parser accepts it (iss aside) with the same thumbprint.
    jwk = {k: v for k, v in published.items() if k != "iss"}
    assert PublicJwk.from_dict(jwk).kid == ISSUER.kid


# --- tampering ------------------------------------------------------------------------------------

TAMPERED: dict[str, object] = {
    "v": 2,
    "iss": ASNAF,
    "sub": "ir-nid:0012345679",
    "lty": "ir.business",
    "lno": "9812345679",
    "vf": "2025-03-22",
    "vu": "2045-03-20",
    "nbf": CLAIMS.not_before - 1,
    "exp": CLAIMS.expires_at + 86_400,
    "iat": CLAIMS.issued_at + 1,
    "jti": "0b3c1f2e-1234-4abc-8def-0123456789ac",
}


def test_every_member_is_tampered_with() -> None:
    assert set(TAMPERED) == PAYLOAD_MEMBERS


@pytest.mark.parametrize("member", sorted(TAMPERED))
def test_tampering_with_a_member_breaks_the_signature(member: str) -> None:
    header, _, signature = TOKEN.split(".")
    payload = {**_payload(), member: TAMPERED[member]}
    assert _reason(f"{header}.{_b64json(payload)}.{signature}") == "bad_signature"


def test_tampering_with_the_header_breaks_the_signature() -> None:
    _, payload, signature = TOKEN.split(".")
    # Same members, other order: the signature covers the header's bytes, not its meaning.
    header = b64url_encode(
        json.dumps({"typ": CREDENTIAL_TYP, "kid": ISSUER.kid, "alg": "EdDSA"}).encode()
    )
    assert _reason(f"{header}.{payload}.{signature}") == "bad_signature"


@pytest.mark.parametrize("position", [0, 31, 32, 63])
def test_flipped_signature_bit(position: int) -> None:
    header, payload, signature = TOKEN.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[position] ^= 0x01
    assert _reason(f"{header}.{payload}.{b64url_encode(bytes(raw))}") == "bad_signature"


def test_truncated_signature() -> None:
    header, payload, signature = TOKEN.split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    assert _reason(f"{header}.{payload}.{b64url_encode(raw[:-1])}") == "bad_signature"


def test_another_key_of_the_same_agency_is_not_enough() -> None:
    token = encode_credential(CLAIMS, private_key=OTHER_KEY)
    assert _reason(token) == "unknown_key"
    # Named by our kid but signed by the other key.
    header, payload, _ = TOKEN.split(".")
    forged = OTHER_KEY.sign(f"{header}.{payload}".encode())
    assert _reason(f"{header}.{payload}.{b64url_encode(forged)}") == "bad_signature"


# --- algorithm, type, key, issuer -----------------------------------------------------------------


def test_alg_none() -> None:
    header = {**_header(), "alg": "none"}
    assert _reason(f"{_b64json(header)}.{TOKEN.split('.')[1]}.") == "unsupported_algorithm"


def test_hs256_with_the_public_key_as_secret() -> None:
    # The classic confusion attack: a verifier that lets the header choose HMAC would use the
    # (public) verification key as the shared secret.
    secret = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signing_input = f"{_b64json({**_header(), 'alg': 'HS256'})}.{TOKEN.split('.')[1]}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert _reason(f"{signing_input}.{b64url_encode(mac)}") == "unsupported_algorithm"


def test_es256() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    signing_input = f"{_b64json({**_header(), 'alg': 'ES256'})}.{TOKEN.split('.')[1]}"
    r, s = decode_dss_signature(p256.sign(signing_input.encode(), ec.ECDSA(SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert _reason(f"{signing_input}.{b64url_encode(signature)}") == "unsupported_algorithm"


@pytest.mark.parametrize("typ", [None, "JWT", "pishkhan-licence+JWT", "application/jwt", 1])
def test_wrong_or_missing_typ(typ: object) -> None:
    header = {k: v for k, v in _header().items() if k != "typ"}
    if typ is not None:
        header["typ"] = typ
    assert _reason(_signed(header, _payload())) == "wrong_type"


@pytest.mark.parametrize("kid", [None, "", "x" * 43, 7])
def test_unknown_or_missing_kid(kid: object) -> None:
    header = {k: v for k, v in _header().items() if k != "kid"}
    if kid is not None:
        header["kid"] = kid
    assert _reason(_signed(header, _payload())) == "unknown_key"


def test_no_keys_at_all() -> None:
    assert _reason(TOKEN, keys={}) == "unknown_key"


def test_key_registered_to_another_agency() -> None:
    asnaf_key = issuer_key(KEY.public_key(), issuer=ASNAF)
    assert _reason(TOKEN, keys={asnaf_key.kid: asnaf_key}) == "wrong_issuer"


def test_agency_signing_for_another_agency() -> None:
    asnaf = issuer_key(OTHER_KEY.public_key(), issuer=ASNAF)
    token = encode_credential(CLAIMS, private_key=OTHER_KEY)  # iss rahvar, key of asnaf
    assert _reason(token, keys={**KEYS, asnaf.kid: asnaf}) == "wrong_issuer"


def test_keys_mapping_must_agree_with_the_kid() -> None:
    assert _reason(TOKEN, keys={ISSUER.kid: replace(ISSUER, kid="y" * 43)}) == "unknown_key"


# --- claims (validly signed) ----------------------------------------------------------------------


def test_extra_member() -> None:
    assert _reason(_signed(_header(), {**_payload(), "name": "x"})) == "invalid_claims"


@pytest.mark.parametrize("member", sorted(PAYLOAD_MEMBERS))
def test_missing_member(member: str) -> None:
    payload = {k: v for k, v in _payload().items() if k != member}
    assert _reason(_signed(_header(), payload)) == "invalid_claims"


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("iss", None),
        ("iss", "rahvar"),
        ("iss", HOLDER),
        ("v", True),
        ("v", "1"),
        ("sub", RAHVAR),
        ("sub", "ir-nid:0013542418"),
        ("sub", 13542419),
        ("lty", "IR.driving"),
        ("lno", ""),
        ("lno", "9" * (MAX_NUMBER_CHARS + 1)),
        ("lno", 9812345678),
        ("vf", "2025-3-21"),
        ("vf", "2025-02-30"),
        ("vu", "2025-03-20"),  # before vf
        ("nbf", "1742502600"),
        ("nbf", True),
        ("exp", CLAIMS.not_before),
        ("iat", -1),
        ("iat", 253_402_300_800),
        ("jti", "not-a-uuid"),
        ("jti", LICENCE_ID.upper()),
    ],
)
def test_member_of_the_wrong_form(member: str, value: object) -> None:
    payload = {**_payload(), member: value}
    assert _reason(_signed(_header(), payload)) == "invalid_claims"


# --- malformed and too large ----------------------------------------------------------------------


def test_too_large_before_decoding() -> None:
    assert _reason("!" * (MAX_CREDENTIAL_CHARS + 1)) == "too_large"
    padded = TOKEN + "A" * (MAX_CREDENTIAL_CHARS + 1 - len(TOKEN))
    assert _reason(padded) == "too_large"


DUPLICATE_ALG = b64url_encode(b'{"alg":"none","alg":"EdDSA"}')


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        TOKEN + ".",
        TOKEN.replace(".", "..", 1),
        "é" + TOKEN[1:],
        TOKEN.split(".")[0] + "=." + ".".join(TOKEN.split(".")[1:]),  # padding
        "." + TOKEN.split(".", 1)[1],  # empty header
        f"{_b64json([1, 2])}.{TOKEN.split('.')[1]}.",  # header not an object
        f"{b64url_encode(b'{not json')}.{TOKEN.split('.')[1]}.",
        # A duplicate member: strict JSON refuses it.
        f"{DUPLICATE_ALG}.{TOKEN.split('.')[1]}.",
    ],
)
def test_malformed(token: str) -> None:
    assert _reason(token) == "malformed"


def test_extra_header_member_is_malformed() -> None:
    header = {**_header(), "jku": "https://attacker.example/keys"}
    assert _reason(_signed(header, _payload())) == "malformed"


def test_payload_not_an_object_is_malformed() -> None:
    assert _reason(_signed(_header(), ["v", 1])) == "malformed"


# --- independent implementations ------------------------------------------------------------------


def test_jwcrypto_verifies_our_token_with_the_published_jwk() -> None:
    published = issuer_key_json(ISSUER)
    key = jwcrypto_jwk.JWK(**{k: v for k, v in published.items() if k != "iss"})
    assert key.thumbprint() == ISSUER.kid
    checked = jwcrypto_jws.JWS()
    checked.deserialize(TOKEN)
    checked.verify(key, alg="EdDSA")
    assert json.loads(checked.payload) == _payload()
    assert checked.jose_header == _header()


def test_we_verify_a_token_jwcrypto_made() -> None:
    private = jwcrypto_jwk.JWK.generate(kty="OKP", crv="Ed25519")
    public = jwcrypto_jwk.JWK.from_json(private.export_public())
    theirs = jwcrypto_jws.JWS(json.dumps(_payload()).encode())
    protected = {"alg": "EdDSA", "kid": public.thumbprint(), "typ": CREDENTIAL_TYP}
    theirs.add_signature(private, alg="EdDSA", protected=json.dumps(protected))
    token = theirs.serialize(compact=True)
    loaded = load_pem_public_key(public.export_to_pem())
    assert isinstance(loaded, Ed25519PublicKey)
    key = issuer_key(loaded, issuer=RAHVAR)
    assert key.kid == public.thumbprint()
    assert verify_credential(token, keys={key.kid: key}) == CLAIMS


def test_python_jose_lacks_eddsa() -> None:
    # If python-jose gains EdDSA, add it as a second verifier above.
    assert "EdDSA" not in JOSE_ALGORITHMS.SUPPORTED


def test_python_jose_reads_the_header_and_claims() -> None:
    assert jose_jwt.get_unverified_header(TOKEN) == _header()
    assert jose_jwt.get_unverified_claims(TOKEN) == _payload()
