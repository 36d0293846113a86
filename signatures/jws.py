"""Detached JWS (RFC 7515 compact serialisation, payload detached as in Appendix F).

Wire form ``BASE64URL(header) '..' BASE64URL(signature)``; the payload (the RFC 8785 canonical
envelope) travels beside it; signing input ``ASCII(BASE64URL(header) '.' BASE64URL(payload))``.
The profile is narrow on purpose (docs/JWS.md states it for independent clients):

* header members ``alg``, ``kid``, ``typ``, ``iat``, optionally ``x5c`` with ``x5t#S256``;
  ``jku``, ``x5u``, ``jwk``, ``b64``, every unknown member and every ``crit`` are refused;
* ``alg`` is pinned to the key (EdDSA, ES256 or PS256), never chosen by the header;
* ``kid`` is the key's RFC 7638 thumbprint;
* base64url is canonical, and every size is bounded before anything is decoded.

Verification does every check that needs no cryptography before the signature check.
Pure code: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signatures.errors import (
    JwsAlgorithmError,
    JwsFormatError,
    JwsHeaderError,
    JwsKeyMismatchError,
    JwsSignatureError,
)
from signatures.jwk import MAX_RSA_BITS, Alg, PublicJwk, b64url_chars, b64url_encode, parse_b64url

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

TYP = "pishkhan-tx+jws"
SUPPORTED_ALGS: frozenset[Alg] = frozenset({"EdDSA", "ES256", "PS256"})
# Extensions we understand and so may be marked critical. None yet: every crit is refused.
IMPLEMENTED_CRIT: frozenset[str] = frozenset()

# Sizes, all checked before decoding. The payload bound is far above any envelope the API
# accepts; it exists so that no caller can make us encode an unbounded buffer.
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADER_CHARS = b64url_chars(MAX_HEADER_BYTES)
MAX_SIGNATURE_BYTES = MAX_RSA_BITS // 8
MAX_SIGNATURE_CHARS = b64url_chars(MAX_SIGNATURE_BYTES)
MAX_JWS_CHARS = MAX_HEADER_CHARS + 2 + MAX_SIGNATURE_CHARS
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_SIGNING_INPUT_BYTES = MAX_HEADER_CHARS + 1 + b64url_chars(MAX_PAYLOAD_BYTES)
MAX_X5C_CERTS = 10
# iat is whole seconds since the Unix epoch, up to 9999-12-31T23:59:59Z (datetime's range).
MIN_IAT_S = 0
MAX_IAT_S = 253_402_300_799

ED25519_SIGNATURE_BYTES = 64
ES256_COORDINATE_BYTES = 32
ES256_SIGNATURE_BYTES = 2 * ES256_COORDINATE_BYTES
# RFC 7518 section 3.5: the salt is as long as the hash output.
PS256_SALT_BYTES = 32
SHA256_BYTES = 32

PROFILE_MEMBERS = frozenset({"alg", "kid", "typ", "iat", "x5c", "x5t#S256", "crit"})
# RFC 7515 section 4.1 and RFC 7518: names crit must never list (section 4.1.11).
REGISTERED_MEMBERS = frozenset(
    {"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit"}
)
FORBIDDEN_MEMBERS: Mapping[str, str] = {
    "jku": "a key set URL is never fetched",
    "x5u": "a certificate URL is never fetched",
    "jwk": "an embedded key is never trusted; keys come from the registry",
    "b64": "RFC 7797 unencoded payloads are not supported",
}


@dataclass(frozen=True)
class ProtectedHeader:
    """A protected header that fits the profile. ``raw`` is the decoded JSON, as signed."""

    alg: Alg
    kid: str
    typ: str
    iat: int
    x5c: tuple[bytes, ...]
    x5t_s256: bytes | None
    raw: bytes


# --- parsing (no cryptography) -------------------------------------------------------------------


def _decode_segment(text: str, *, what: str) -> bytes:
    data = parse_b64url(text)
    if data is None:
        raise JwsFormatError(f"the {what} segment is not canonical unpadded base64url")
    return data


def _split(jws: str) -> tuple[str, bytes, bytes]:
    """The header segment, the decoded header and the decoded signature."""
    if not isinstance(jws, str):
        raise JwsFormatError("a JWS is a string")
    if len(jws) > MAX_JWS_CHARS:
        raise JwsFormatError(f"the JWS is longer than MAX_JWS_CHARS={MAX_JWS_CHARS}")
    if any(char.isspace() for char in jws):
        raise JwsFormatError("the JWS contains whitespace")
    segments = jws.split(".")
    if len(segments) != 3:
        raise JwsFormatError(f"a compact JWS has 3 segments, not {len(segments)}")
    header_b64, payload_b64, signature_b64 = segments
    if payload_b64:
        raise JwsFormatError("the payload segment must be empty: the payload is detached")
    if not header_b64:
        raise JwsFormatError("the header segment is empty")
    if len(header_b64) > MAX_HEADER_CHARS:
        raise JwsFormatError(f"the header is larger than MAX_HEADER_BYTES={MAX_HEADER_BYTES}")
    if not signature_b64:
        raise JwsFormatError("the signature segment is empty")
    if len(signature_b64) > MAX_SIGNATURE_CHARS:
        raise JwsFormatError("the signature segment is too long")
    header = _decode_segment(header_b64, what="header")
    return header_b64, header, _decode_segment(signature_b64, what="signature")


def _unique_members(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for name, value in pairs:
        if name in result:
            raise JwsHeaderError(f"header member {name!r} appears twice", member=name)
        result[name] = value
    return result


def _refuse_constant(name: str) -> object:
    raise JwsFormatError(f"the header contains {name}, which is not JSON")


def _load_header(raw: bytes) -> dict[str, object]:
    try:
        text = raw.decode("utf-8")
        obj: object = json.loads(
            text, object_pairs_hook=_unique_members, parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, or a huge or deep number/array
        raise JwsFormatError("the header is not JSON") from None
    if not isinstance(obj, dict):
        raise JwsFormatError("the header is not a JSON object")
    return obj


def _check_alg(header: Mapping[str, object], key_alg: Alg | None) -> Alg:
    if "alg" not in header:
        raise JwsHeaderError("header member 'alg' is required", member="alg")
    alg = header["alg"]
    if not isinstance(alg, str):
        raise JwsHeaderError("header member 'alg' must be a string", member="alg")
    for supported in SUPPORTED_ALGS:
        if alg == supported:
            return supported
    if alg.lower() == "none":
        why = "an unsecured JWS is never accepted"
    elif alg.upper().startswith("HS"):
        why = "MAC algorithms are never accepted"
    else:
        why = f"only {sorted(SUPPORTED_ALGS)} are accepted"
    raise JwsAlgorithmError(f"algorithm {alg!r} is refused: {why}", header_alg=alg, key_alg=key_alg)


def _check_crit(header: Mapping[str, object]) -> None:
    crit = header["crit"]
    if not isinstance(crit, list) or not crit or not all(isinstance(n, str) for n in crit):
        raise JwsHeaderError("'crit' must be a non-empty array of strings", member="crit")
    if len(set(crit)) != len(crit):
        raise JwsHeaderError("'crit' lists a name twice", member="crit")
    for name in crit:
        if name in REGISTERED_MEMBERS:
            raise JwsHeaderError(f"'crit' must not list registered {name!r}", member="crit")
        if name not in header:
            raise JwsHeaderError(f"'crit' lists {name!r}, absent from the header", member="crit")
        if name not in IMPLEMENTED_CRIT:
            raise JwsHeaderError(f"critical extension {name!r} is not implemented", member="crit")


def _check_members(header: Mapping[str, object]) -> None:
    for name, why in FORBIDDEN_MEMBERS.items():
        if name in header:
            raise JwsHeaderError(f"header member {name!r} is refused: {why}", member=name)
    if "crit" in header:
        _check_crit(header)
    for name in header:
        if name not in PROFILE_MEMBERS:
            raise JwsHeaderError(f"header member {name!r} is not in the profile", member=name)


def _check_iat(value: object) -> int:
    # bool is an int in Python but true/false is not a time.
    if not isinstance(value, int) or isinstance(value, bool):
        raise JwsHeaderError("'iat' must be an integer number of seconds", member="iat")
    if not MIN_IAT_S <= value <= MAX_IAT_S:
        raise JwsHeaderError(f"'iat' is outside [{MIN_IAT_S}, {MAX_IAT_S}]", member="iat")
    return value


def _check_kid(value: object) -> str:
    if not isinstance(value, str) or len(parse_b64url(value) or b"") != SHA256_BYTES:
        raise JwsHeaderError("'kid' must be an RFC 7638 SHA-256 thumbprint", member="kid")
    return value


def _std_b64_certificate(value: object) -> bytes:
    """RFC 7515 section 4.1.6: x5c holds standard (not URL-safe) padded base64 DER."""
    if not isinstance(value, str) or not value:
        raise JwsHeaderError("'x5c' entries must be non-empty strings", member="x5c")
    try:
        der = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise JwsHeaderError("'x5c' entries must be base64", member="x5c") from None
    if base64.b64encode(der).decode("ascii") != value:
        raise JwsHeaderError("'x5c' entries must be canonical base64", member="x5c")
    return der


def _check_certificates(header: Mapping[str, object]) -> tuple[tuple[bytes, ...], bytes | None]:
    has_chain, has_thumbprint = "x5c" in header, "x5t#S256" in header
    if not has_chain and not has_thumbprint:
        return (), None
    if not has_chain or not has_thumbprint:
        missing = "x5c" if not has_chain else "x5t#S256"
        raise JwsHeaderError("'x5c' and 'x5t#S256' come together", member=missing)
    chain = header["x5c"]
    if not isinstance(chain, list) or not chain:
        raise JwsHeaderError("'x5c' must be a non-empty array", member="x5c")
    if len(chain) > MAX_X5C_CERTS:
        raise JwsHeaderError(f"'x5c' holds more than MAX_X5C_CERTS={MAX_X5C_CERTS}", member="x5c")
    certificates = tuple(_std_b64_certificate(value) for value in chain)
    thumbprint = header["x5t#S256"]
    if not isinstance(thumbprint, str):
        raise JwsHeaderError("'x5t#S256' must be a string", member="x5t#S256")
    digest = parse_b64url(thumbprint)
    if digest != hashlib.sha256(certificates[0]).digest():
        raise JwsHeaderError("'x5t#S256' is not the first certificate's", member="x5t#S256")
    return certificates, digest


def _parse(jws: str, *, key_alg: Alg | None) -> tuple[ProtectedHeader, str, bytes]:
    header_b64, raw, signature = _split(jws)
    members = _load_header(raw)
    alg = _check_alg(members, key_alg)
    _check_members(members)
    for name in ("kid", "typ", "iat"):
        if name not in members:
            raise JwsHeaderError(f"header member {name!r} is required", member=name)
    kid = _check_kid(members["kid"])
    if members["typ"] != TYP:
        raise JwsHeaderError(f"'typ' must be {TYP!r}", member="typ")
    iat = _check_iat(members["iat"])
    x5c, x5t_s256 = _check_certificates(members)
    header = ProtectedHeader(alg, kid, TYP, iat, x5c, x5t_s256, raw)
    return header, header_b64, signature


def parse_protected_header(jws: str) -> ProtectedHeader:
    """The protected header of a detached JWS, after every format and profile check.

    Does no cryptography and proves nothing about who signed. Raises JwsFormatError for a
    malformed serialisation, JwsAlgorithmError for a refused ``alg``, JwsHeaderError for any
    other header member that breaks the profile.
    """
    return _parse(jws, key_alg=None)[0]


# --- signatures ----------------------------------------------------------------------------------


def _signature_bytes(key: PublicJwk) -> int:
    public_key = key.public_key
    if isinstance(public_key, rsa.RSAPublicKey):
        return -(-public_key.key_size // 8)
    return ED25519_SIGNATURE_BYTES if key.alg == "EdDSA" else ES256_SIGNATURE_BYTES


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PS256_SALT_BYTES)


def verify_signing_input(signing_input: bytes, *, signature: bytes, key: PublicJwk) -> None:
    """Check signature over signing_input with key, by the algorithm pinned to key.

    The low-level check under verify_detached, with no header profile: for known-answer tests
    and for callers that build the signing input themselves.
    ES256 signatures are raw r||s (64 bytes); PS256 uses MGF1-SHA-256 and a 32-byte salt.
    Raises JwsFormatError when the input is too long or the signature has the wrong length
    for the key, JwsSignatureError when the signature does not verify.
    """
    if len(signing_input) > MAX_SIGNING_INPUT_BYTES:
        raise JwsFormatError("the signing input is too long")
    if len(signature) != _signature_bytes(key):
        raise JwsFormatError(f"a {key.alg} signature by this key has {_signature_bytes(key)} bytes")
    public_key = key.public_key
    try:
        if isinstance(public_key, Ed25519PublicKey):
            public_key.verify(signature, signing_input)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            r = int.from_bytes(signature[:ES256_COORDINATE_BYTES], "big")
            s = int.from_bytes(signature[ES256_COORDINATE_BYTES:], "big")
            der = utils.encode_dss_signature(r, s)
            public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            public_key.verify(signature, signing_input, _pss(), hashes.SHA256())
    except InvalidSignature:
        raise JwsSignatureError(f"the {key.alg} signature does not verify") from None


def _check_payload(payload: bytes) -> None:
    if not isinstance(payload, bytes):
        raise JwsFormatError("the payload must be bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise JwsFormatError(f"the payload is larger than MAX_PAYLOAD_BYTES={MAX_PAYLOAD_BYTES}")


def _check_certificate_key(x5c: Sequence[bytes], key: PublicJwk) -> None:
    """The first certificate, if any, must certify key (its chain is validated elsewhere)."""
    if not x5c:
        return
    try:
        certified = x509.load_der_x509_certificate(x5c[0]).public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise JwsHeaderError("the first 'x5c' entry is not a certificate", member="x5c") from None
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if certified.public_bytes(*spki) != key.public_key.public_bytes(*spki):
        raise JwsHeaderError("the first 'x5c' certificate is for another key", member="x5c")


def verify_detached(jws: str, payload: bytes, key: PublicJwk) -> ProtectedHeader:
    """Verify a detached JWS over payload with key, and return its protected header.

    In order: payload size, serialisation and header profile, ``alg`` equal to the key's,
    ``kid`` equal to the key's thumbprint, the ``x5c`` certificate's key, the signature
    length, and only then the signature. Raises JwsFormatError, JwsHeaderError,
    JwsAlgorithmError, JwsKeyMismatchError or JwsSignatureError, in that order of checks.
    """
    _check_payload(payload)
    header, header_b64, signature = _parse(jws, key_alg=key.alg)
    if header.alg != key.alg:
        raise JwsAlgorithmError(
            f"the header says {header.alg!r} but the key is for {key.alg!r}",
            header_alg=header.alg,
            key_alg=key.alg,
        )
    if header.kid != key.kid:
        raise JwsKeyMismatchError(
            "the header kid is not this key's thumbprint", kid=header.kid, expected_kid=key.kid
        )
    _check_certificate_key(header.x5c, key)
    signing_input = f"{header_b64}.{b64url_encode(payload)}".encode("ascii")
    verify_signing_input(signing_input, signature=signature, key=key)
    return header


def _sign(signing_input: bytes, private_key: PrivateKey) -> bytes:
    if isinstance(private_key, Ed25519PrivateKey):
        return private_key.sign(signing_input)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        der = private_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        return r.to_bytes(ES256_COORDINATE_BYTES, "big") + s.to_bytes(ES256_COORDINATE_BYTES, "big")
    return private_key.sign(signing_input, _pss(), hashes.SHA256())


def sign_detached(
    payload: bytes,
    private_key: PrivateKey,
    *,
    iat: int,
    x5c: Sequence[bytes] = (),
) -> str:
    """Sign payload as a detached JWS, ``alg`` and ``kid`` taken from the key.

    x5c is the signer's certificate chain as DER, leaf first; the leaf must certify the key.
    Raises JwkError for an unsupported key (curve, RSA size), JwsFormatError for an oversized
    payload, JwsHeaderError for a bad iat, too many or foreign certificates, or a header
    larger than MAX_HEADER_BYTES.
    """
    _check_payload(payload)
    _check_iat(iat)
    if len(x5c) > MAX_X5C_CERTS:
        raise JwsHeaderError(f"'x5c' holds more than MAX_X5C_CERTS={MAX_X5C_CERTS}", member="x5c")
    key = PublicJwk.from_public_key(private_key.public_key())
    _check_certificate_key(x5c, key)
    header: dict[str, object] = {"alg": key.alg, "kid": key.kid, "typ": TYP, "iat": iat}
    if x5c:
        header["x5c"] = [base64.b64encode(der).decode("ascii") for der in x5c]
        header["x5t#S256"] = b64url_encode(hashlib.sha256(x5c[0]).digest())
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("ascii")
    if len(raw) > MAX_HEADER_BYTES:
        raise JwsHeaderError(
            f"the header exceeds MAX_HEADER_BYTES={MAX_HEADER_BYTES}", member="x5c"
        )
    header_b64 = b64url_encode(raw)
    signature = _sign(f"{header_b64}.{b64url_encode(payload)}".encode("ascii"), private_key)
    return f"{header_b64}..{b64url_encode(signature)}"
