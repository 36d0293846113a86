"""The worked credential of docs/LICENCES.md § 6.5 is what the code makes: the token is
re-derived from the documented test key and payload and compared with the text, so the
documentation cannot drift from encode_credential, the thumbprint or the time rules.

An independent JOSE implementation (jwcrypto) verifies the documented token with the documented
JWK, so the example is also a check of our reading of RFC 7515, 7638 and 8037.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from licences.credential import (
    CREDENTIAL_REASONS,
    MAX_CREDENTIAL_CHARS,
    CredentialClaims,
    encode_credential,
    issuer_key,
    issuer_key_json,
    verify_credential,
)
from licences.eligibility import RULES
from licences.errors import CredentialError
from licences.types import default_licence_types
from tax.rulepack import pack_for

DOC = Path(__file__).resolve().parents[3] / "docs" / "LICENCES.md"
# The documented test key: 32 seed bytes of 0x01 (never a real key).
SEED = bytes([0x01]) * 32
TOKEN_WRAP_CHARS = 80  # the doc wraps the token at this width


def _block(name: str) -> str:
    """The fenced block right after the marker <!-- licence-example:<name> -->."""
    text = DOC.read_text("utf-8")
    found = re.search(
        rf"<!-- licence-example:{name} -->\n```[a-z]*\n(.*?)\n```", text, flags=re.DOTALL
    )
    assert found is not None, f"docs/LICENCES.md has no licence-example:{name} block"
    return found.group(1)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@pytest.fixture(scope="module")
def token() -> str:
    lines = _block("token").splitlines()
    assert all(len(line) == TOKEN_WRAP_CHARS for line in lines[:-1])
    return "".join(lines)


@pytest.fixture(scope="module")
def payload() -> dict[str, object]:
    value = json.loads(_block("payload"))
    assert isinstance(value, dict)
    return value


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


def _claims(payload: dict[str, object]) -> CredentialClaims:
    def text(name: str) -> str:
        value = payload[name]
        assert isinstance(value, str)
        return value

    def number(name: str) -> int:
        value = payload[name]
        assert isinstance(value, int)
        return value

    return CredentialClaims(
        issuer=text("iss"),
        holder=text("sub"),
        licence_type=text("lty"),
        number=text("lno"),
        valid_from=date.fromisoformat(text("vf")),
        valid_until=date.fromisoformat(text("vu")),
        not_before=number("nbf"),
        expires_at=number("exp"),
        issued_at=number("iat"),
        licence_id=text("jti"),
    )


def test_the_documented_key_lines_are_the_test_key(key: Ed25519PrivateKey) -> None:
    lines = dict(line.split(":", 1) for line in _block("key").splitlines())
    assert bytes.fromhex(lines["private key (seed, hex)"].strip()) == SEED
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert lines["public key (hex)"].strip() == public.hex()


def test_the_token_is_re_derived_from_the_key_and_payload(
    key: Ed25519PrivateKey, payload: dict[str, object], token: str
) -> None:
    assert encode_credential(_claims(payload), private_key=key) == token
    assert len(token) == 516 <= MAX_CREDENTIAL_CHARS  # the length the doc states


def test_the_header_and_payload_bytes_are_the_documented_ones(
    payload: dict[str, object], token: str
) -> None:
    header_b64, payload_b64, _ = token.split(".")
    assert _b64url_decode(header_b64) == _block("header").encode("ascii")
    # The doc's payload, without white space and in its member order, is the signed bytes.
    assert _b64url_decode(payload_b64) == json.dumps(payload, separators=(",", ":")).encode()


def test_the_jwk_and_its_thumbprint(key: Ed25519PrivateKey) -> None:
    documented = json.loads(_block("jwk"))
    assert documented == issuer_key_json(issuer_key(key.public_key(), issuer="agency:rahvar"))
    # RFC 7638 by hand: SHA-256 of the required members (RFC 8037: crv, kty, x) in order.
    members = json.dumps({k: documented[k] for k in ("crv", "kty", "x")}, separators=(",", ":"))
    assert _b64url(hashlib.sha256(members.encode()).digest()) == documented["kid"]
    header = json.loads(_block("header"))
    assert header["kid"] == documented["kid"]


def test_the_times_follow_the_documented_rule(payload: dict[str, object]) -> None:
    """nbf and exp are the starts of vf and of the day after vu in the type's time zone; the
    doc's numbers and its Jalali term come from the real type and pack."""
    claims = _claims(payload)
    licence_type = default_licence_types().get(claims.licence_type)
    assert licence_type is not None
    zone = ZoneInfo(pack_for(licence_type.jurisdiction).timezone)
    start = int(datetime.combine(claims.valid_from, time(), tzinfo=zone).timestamp())
    after = claims.valid_until + timedelta(days=1)
    assert claims.not_before == start == 1742502600
    assert claims.expires_at == int(datetime.combine(after, time(), tzinfo=zone).timestamp())
    assert datetime.fromtimestamp(claims.issued_at, ZoneInfo("UTC")).isoformat() == (
        "2025-03-21T06:30:00+00:00"
    )


def test_our_verifier_and_jwcrypto_accept_the_documented_token(
    payload: dict[str, object], token: str
) -> None:
    documented = json.loads(_block("jwk"))
    public = Ed25519PublicKey.from_public_bytes(_b64url_decode(documented["x"]))
    trusted = issuer_key(public, issuer=documented["iss"])
    assert verify_credential(token, keys={trusted.kid: trusted}) == _claims(payload)
    checker = jwcrypto_jws.JWS()
    checker.deserialize(token)
    checker.verify(jwcrypto_jwk.JWK(kty="OKP", crv="Ed25519", x=documented["x"]), alg="EdDSA")
    assert json.loads(checker.payload) == payload


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        ("payload_character", "bad_signature"),
        ("other_issuer", "wrong_issuer"),
        ("no_key", "unknown_key"),
    ],
)
def test_the_documented_mutations(token: str, mutation: str, reason: str) -> None:
    documented = json.loads(_block("jwk"))
    public = Ed25519PublicKey.from_public_bytes(_b64url_decode(documented["x"]))
    issuer = "agency:asnaf" if mutation == "other_issuer" else documented["iss"]
    trusted = issuer_key(public, issuer=issuer)
    keys = {} if mutation == "no_key" else {trusted.kid: trusted}
    header_b64, payload_b64, signature_b64 = token.split(".")
    if mutation == "payload_character":
        swapped = "A" if payload_b64[10] != "A" else "B"
        payload_b64 = payload_b64[:10] + swapped + payload_b64[11:]
    with pytest.raises(CredentialError) as caught:
        verify_credential(f"{header_b64}.{payload_b64}.{signature_b64}", keys=keys)
    assert caught.value.reason == reason


def test_every_reason_and_rule_is_documented() -> None:
    text = DOC.read_text("utf-8")
    for name in (*CREDENTIAL_REASONS, *RULES):
        assert f"`{name}`" in text, name
