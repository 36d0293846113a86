"""The client side: make keys, build envelopes, sign and check transactions.

Client apps (and `pishkhan keys` / `pishkhan tx`) use this module so that nobody reimplements the
envelope rules, the canonical form or the JWS profile. Each step goes through the same code the
server runs (signatures.envelope, signatures.canonical, signatures.jws), so a client cannot build
an envelope or a signature the server would refuse for its form.

Pure code except for randomness (key generation, nonces): no files, no clock. Times are passed in.
docs/CLIENT.md walks through it step by step.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signatures.canonical import MAX_DOCUMENT_BYTES, JsonValue, parse_json
from signatures.envelope import MIN_NONCE_BYTES, parse_envelope
from signatures.errors import (
    ClientKeyError,
    EnvelopeError,
    FieldError,
    JwkError,
    NaiveDatetimeError,
)
from signatures.jwk import MAX_RSA_BITS, MIN_RSA_BITS, Alg, PublicJwk, b64url_encode
from signatures.jws import PrivateKey, ProtectedHeader, sign_detached, verify_detached
from signatures.service_keys import MIN_PASSPHRASE_BYTES

# RSA keys we generate: 3072 bits (NIST SP 800-57 part 1: 128-bit security, like P-256 and
# Ed25519). Keys between MIN_RSA_BITS and MAX_RSA_BITS made elsewhere are accepted.
DEFAULT_RSA_BITS = 3072
RSA_PUBLIC_EXPONENT = 65537
# A fresh nonce: the envelope minimum, 128 random bits (base64url, 22 characters).
NONCE_BYTES = MIN_NONCE_BYTES
# Passphrases of client keys. The minimum applies when a key is encrypted (the same floor as the
# service keys); the maximum is what OpenSSL's PEM routines accept.
MIN_CLIENT_PASSPHRASE_BYTES = MIN_PASSPHRASE_BYTES
MAX_PASSPHRASE_BYTES = 1023
# A PEM private key file: an encrypted PKCS#8 RSA-8192 key is about 6.5 KB.
MAX_PEM_BYTES = 16 * 1024
# Key registration: a signed transaction answering a server challenge with the new public key.
KEY_REGISTER_TYPE = "key.register"
KEY_REGISTER_VERSION = 1
MAX_CHALLENGE_CHARS = 512

RULE_UNSUPPORTED_ALG = "unsupported_alg"
RULE_RSA_BITS = "rsa_bits"
RULE_PASSPHRASE_TOO_SHORT = "passphrase_too_short"  # noqa: S105 (a rule name)
RULE_PASSPHRASE_TOO_LONG = "passphrase_too_long"  # noqa: S105 (a rule name)
RULE_PASSPHRASE_REQUIRED = "passphrase_required"  # noqa: S105 (a rule name)
RULE_NOT_ENCRYPTED = "not_encrypted"
RULE_WRONG_PASSPHRASE = "wrong_passphrase"  # noqa: S105 (a rule name)
RULE_INVALID_PEM = "invalid_pem"
RULE_TOO_LARGE = "too_large"
RULE_UNSUPPORTED_KEY = "unsupported_key"
RULE_INVALID_CHALLENGE = "invalid_challenge"

_ENCRYPTED_MARKERS = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


@dataclass(frozen=True)
class SignedTransaction:
    """A signed envelope: what the client sends, and what it signed.

    ``envelope`` is a plain JSON copy (members in canonical order), ``canonical`` its RFC 8785
    bytes (the detached payload), ``jws`` the detached JWS, ``kid`` the signing key's thumbprint.
    """

    envelope: dict[str, JsonValue]
    canonical: bytes
    jws: str
    kid: str


# --- keys ----------------------------------------------------------------------------------------


def generate_private_key(alg: Alg, *, rsa_bits: int = DEFAULT_RSA_BITS) -> PrivateKey:
    """A new private key for alg: Ed25519 (EdDSA), P-256 (ES256) or RSA (PS256, rsa_bits).

    Raises ClientKeyError for another alg (rule unsupported_alg) or rsa_bits outside
    [MIN_RSA_BITS, MAX_RSA_BITS] (rule rsa_bits).
    """
    if alg == "EdDSA":
        return Ed25519PrivateKey.generate()
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "PS256":
        if not MIN_RSA_BITS <= rsa_bits <= MAX_RSA_BITS:
            raise ClientKeyError(
                f"RSA keys have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits", rule=RULE_RSA_BITS
            )
        return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=rsa_bits)
    raise ClientKeyError("the algorithm is EdDSA, ES256 or PS256", rule=RULE_UNSUPPORTED_ALG)


def public_jwk(private_key: PrivateKey) -> PublicJwk:
    """The public JWK of a private key (its ``kid`` is the RFC 7638 thumbprint).

    Raises ClientKeyError (rule unsupported_key) for a key the profile refuses.
    """
    try:
        return PublicJwk.from_public_key(private_key.public_key())
    except JwkError as exc:
        raise ClientKeyError(f"unsupported key: {exc}", rule=RULE_UNSUPPORTED_KEY) from None


def export_jwk(jwk: PublicJwk) -> dict[str, str]:
    """The JWK to publish or register: the public members plus ``alg`` and ``kid``.

    PublicJwk.from_dict accepts it back (``alg`` and ``kid`` are checked against the key).
    """
    return {**jwk.to_dict(), "alg": jwk.alg, "kid": jwk.kid}


def parse_jwk_json(data: bytes) -> PublicJwk:
    """A public JWK from JSON bytes (as written by export_jwk, or any profile-conforming JWK).

    Raises CanonicalFormError for bad JSON, JwkError for a JWK the profile refuses.
    """
    value = parse_json(data)
    if not isinstance(value, dict):
        raise JwkError("a JWK is a JSON object", member="", rule="type")
    return PublicJwk.from_dict(value)


def _check_passphrase(passphrase: bytes, *, minimum: int) -> None:
    if len(passphrase) < minimum:
        raise ClientKeyError(
            f"the passphrase must be at least {minimum} bytes", rule=RULE_PASSPHRASE_TOO_SHORT
        )
    if len(passphrase) > MAX_PASSPHRASE_BYTES:
        raise ClientKeyError(
            f"the passphrase must be at most {MAX_PASSPHRASE_BYTES} bytes",
            rule=RULE_PASSPHRASE_TOO_LONG,
        )


def private_key_to_pem(key: PrivateKey, *, passphrase: bytes | None) -> bytes:
    """The key as PKCS#8 PEM, encrypted (BestAvailableEncryption) when a passphrase is given.

    Raises ClientKeyError for an unsupported key (rule unsupported_key) or a passphrase shorter
    than MIN_CLIENT_PASSPHRASE_BYTES or longer than MAX_PASSPHRASE_BYTES.
    """
    public_jwk(key)  # refuse what could never sign, before writing it anywhere
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if passphrase is not None:
        _check_passphrase(passphrase, minimum=MIN_CLIENT_PASSPHRASE_BYTES)
        encryption = serialization.BestAvailableEncryption(passphrase)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key_pem(data: bytes, *, passphrase: bytes | None) -> PrivateKey:
    """A private key from PEM (PKCS#8 or traditional), decrypted with passphrase if encrypted.

    Raises ClientKeyError with rule too_large (over MAX_PEM_BYTES), passphrase_required (the key
    is encrypted and no passphrase was given), not_encrypted (a passphrase was given for a clear
    key), wrong_passphrase, invalid_pem (not a PEM private key), or unsupported_key (not
    Ed25519, P-256 or RSA of MIN_RSA_BITS..MAX_RSA_BITS with a profile-conforming exponent).
    """
    if len(data) > MAX_PEM_BYTES:
        raise ClientKeyError(f"larger than {MAX_PEM_BYTES} bytes", rule=RULE_TOO_LARGE)
    encrypted = any(marker in data for marker in _ENCRYPTED_MARKERS)
    if encrypted and passphrase is None:
        raise ClientKeyError(
            "the key is encrypted: a passphrase is needed", rule=RULE_PASSPHRASE_REQUIRED
        )
    if not encrypted and passphrase is not None:
        raise ClientKeyError(
            "the key is not encrypted but a passphrase was given", rule=RULE_NOT_ENCRYPTED
        )
    if passphrase is not None:
        _check_passphrase(passphrase, minimum=1)  # keys made elsewhere may have short ones
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if encrypted:
            raise ClientKeyError(
                "the key cannot be decrypted with this passphrase (or the file is damaged)",
                rule=RULE_WRONG_PASSPHRASE,
            ) from None
        raise ClientKeyError("not a PEM private key", rule=RULE_INVALID_PEM) from None
    if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ClientKeyError(
            f"{type(key).__name__} keys are not supported (Ed25519, P-256 or RSA only)",
            rule=RULE_UNSUPPORTED_KEY,
        )
    public_jwk(key)  # the curve, RSA size and exponent
    return key


# --- envelopes -----------------------------------------------------------------------------------


def new_nonce() -> str:
    """A fresh envelope nonce: NONCE_BYTES random bytes from `secrets`, base64url, no padding."""
    return b64url_encode(secrets.token_bytes(NONCE_BYTES))


def format_timestamp(at: datetime) -> str:
    """`at` as an envelope `created_at`: RFC 3339 in UTC with `Z`, microseconds when non-zero.

    Raises NaiveDatetimeError (field created_at) for a datetime without a time zone.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetimeError("created_at must be an aware datetime", field="created_at")
    utc = at.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return f"{utc:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def build_envelope(
    *,
    type: str,
    version: int,
    signer: str,
    payload: dict[str, JsonValue],
    on_behalf_of: str | None = None,
    created_at: datetime,
    nonce: str | None = None,
) -> dict[str, JsonValue]:
    """A valid, JSON-ready envelope (a fresh nonce unless one is given).

    Raises EnvelopeError listing every refused field (pointer and rule, docs/ENVELOPE.md), and
    NaiveDatetimeError for a created_at without a time zone.
    """
    envelope: dict[str, JsonValue] = {"type": type, "version": version, "signer": signer}
    if on_behalf_of is not None:
        envelope["on_behalf_of"] = on_behalf_of
    envelope["nonce"] = new_nonce() if nonce is None else nonce
    envelope["created_at"] = format_timestamp(created_at)
    envelope["payload"] = payload
    checked = parse_envelope(envelope, max_bytes=MAX_DOCUMENT_BYTES)
    envelope["payload"] = checked.payload  # a plain copy: later changes to `payload` stay out
    return envelope


def build_key_registration(
    private_key: PrivateKey,
    *,
    subject: str,
    challenge: str,
    created_at: datetime,
    not_after: datetime | None = None,
) -> dict[str, JsonValue]:
    """The `key.register` envelope registering private_key's public JWK for subject.

    The payload is ``{"jwk": <export_jwk>, "challenge": …}`` plus ``not_after`` (RFC 3339 UTC)
    when given; subject signs it with that very key (proof of possession). Raises
    ClientKeyError for an unsupported key, EnvelopeError for a refused subject or a challenge
    that is empty or longer than MAX_CHALLENGE_CHARS (pointer /payload/challenge, rule
    invalid_challenge), and NaiveDatetimeError for a datetime without a time zone.
    """
    if not 0 < len(challenge) <= MAX_CHALLENGE_CHARS:
        message = f"the challenge is 1 to {MAX_CHALLENGE_CHARS} characters"
        raise EnvelopeError((FieldError("/payload/challenge", RULE_INVALID_CHALLENGE, message),))
    payload: dict[str, JsonValue] = {
        "jwk": dict(export_jwk(public_jwk(private_key))),
        "challenge": challenge,
    }
    if not_after is not None:
        payload["not_after"] = format_timestamp(not_after)
    return build_envelope(
        type=KEY_REGISTER_TYPE,
        version=KEY_REGISTER_VERSION,
        signer=subject,
        payload=payload,
        created_at=created_at,
    )


# --- signing and verifying -----------------------------------------------------------------------


def sign_envelope(envelope: JsonValue, private_key: PrivateKey, *, iat: int) -> SignedTransaction:
    """Check envelope, and sign its RFC 8785 bytes as a detached JWS claiming signing time iat.

    Raises EnvelopeError (every refused field), ClientKeyError for an unsupported key, and
    JwsHeaderError (member iat) for an iat outside the profile's range.
    """
    checked = parse_envelope(envelope, max_bytes=MAX_DOCUMENT_BYTES)
    jwk = public_jwk(private_key)
    jws = sign_detached(checked.canonical, private_key, iat=iat)
    plain = parse_json(checked.canonical, max_bytes=MAX_DOCUMENT_BYTES)
    assert isinstance(plain, dict)  # parse_envelope accepted it as an object
    return SignedTransaction(envelope=plain, canonical=checked.canonical, jws=jws, kid=jwk.kid)


def verify_transaction(envelope: JsonValue, jws: str, jwk: PublicJwk) -> ProtectedHeader:
    """Check envelope and verify the detached JWS over its canonical bytes with jwk.

    Returns the protected header (alg, kid, iat). Raises EnvelopeError for a refused envelope,
    and JwsFormatError, JwsHeaderError, JwsAlgorithmError, JwsKeyMismatchError or
    JwsSignatureError (all JwsError) when the signature is not valid for it with this key.
    """
    checked = parse_envelope(envelope, max_bytes=MAX_DOCUMENT_BYTES)
    return verify_detached(jws, checked.canonical, jwk)


def transaction_body(signed: SignedTransaction) -> dict[str, JsonValue]:
    """The body of POST /v1/transactions: ``{"envelope": …, "signature": <detached JWS>}``."""
    return {"envelope": signed.envelope, "signature": signed.jws}
