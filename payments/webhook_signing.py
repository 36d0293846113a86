"""Webhook signature headers: HMAC-SHA256 (the Stripe `t=,v1=` scheme) and Ed25519.

Used for our outbound webhooks to agencies and by the sandbox provider for its inbound ones.
Both schemes sign the exact raw body, prefixed by the timestamp: `f"{t}.".encode() + body`,
so a verifier never re-serialises the JSON and a captured delivery cannot be replayed outside
the tolerance window (checked both ways: a timestamp too far in the past or in the future).

* `Pishkhan-Signature: t=<unix s>,v1=<hex HMAC-SHA256>[,v1=…]` — one v1 per active secret, so an
  agency keeps verifying while it rotates; unknown schemes (v0, …) are ignored as Stripe does.
* `Pishkhan-Signature-Ed25519: t=<unix s>,kid=<RFC 7638 thumbprint>,sig=<base64url, no padding>`
  — the verifier looks the kid up in ITS OWN key set; nothing else in the header is trusted.

Pure code: no I/O, no clock (the caller passes `timestamp_s` / `now_s`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from payments.errors import WebhookSignatureError
from signatures.jwk import PublicJwk, b64url_encode, parse_b64url

HMAC_HEADER = "Pishkhan-Signature"
ED25519_HEADER = "Pishkhan-Signature-Ed25519"
HMAC_SCHEME = "v1"

DEFAULT_TOLERANCE_S = 300
MAX_TOLERANCE_S = 3600  # a wider window is a replay window, not clock skew
MAX_HEADER_CHARS = 1024  # t + 8 v1 signatures fit in ~560 characters
MAX_SECRETS = 8  # active HMAC secrets at once; rotation needs two
MIN_SECRET_BYTES = 16
MAX_TIMESTAMP_DIGITS = 12  # unix seconds up to year 33658: far beyond any real clock
HMAC_HEX_CHARS = 64
ED25519_SIGNATURE_BYTES = 64
THUMBPRINT_CHARS = 43  # base64url of a SHA-256 digest

RULE_MISSING_HEADER = "missing_header"
RULE_HEADER_TOO_LONG = "header_too_long"
RULE_MALFORMED_HEADER = "malformed_header"
RULE_MISSING_TIMESTAMP = "missing_timestamp"
RULE_DUPLICATE_TIMESTAMP = "duplicate_timestamp"
RULE_DUPLICATE_ELEMENT = "duplicate_element"
RULE_NO_V1_SIGNATURE = "no_v1_signature"
RULE_TOO_MANY_SIGNATURES = "too_many_signatures"
RULE_TIMESTAMP_OUT_OF_WINDOW = "timestamp_out_of_window"
RULE_NO_MATCHING_SIGNATURE = "no_matching_signature"
RULE_UNKNOWN_KID = "unknown_kid"

# [0-9], never \d: \d also matches Persian and Arabic-Indic digits.
_TIMESTAMP = re.compile(rf"[0-9]{{1,{MAX_TIMESTAMP_DIGITS}}}")
_HMAC_HEX = re.compile(rf"[0-9a-f]{{{HMAC_HEX_CHARS}}}")
_ELEMENT_KEY = re.compile(r"[a-z][a-z0-9]*")


def signed_payload(body: bytes, *, timestamp_s: int) -> bytes:
    """The bytes both schemes sign: the decimal timestamp, a dot, then the raw body."""
    return f"{timestamp_s}.".encode("ascii") + body


def find_header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header `name` looked up case-insensitively (HTTP field names), or None."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


# --- HMAC-SHA256 ---------------------------------------------------------------------------------


def sign_hmac(body: bytes, *, secrets: Sequence[bytes], timestamp_s: int) -> str:
    """The `Pishkhan-Signature` header value: `t=<timestamp_s>` then one `v1=` per secret.

    Raises ValueError when there is no secret, more than MAX_SECRETS, a secret shorter than
    MIN_SECRET_BYTES, or a timestamp that is negative or longer than MAX_TIMESTAMP_DIGITS.
    """
    _check_secrets(secrets)
    _check_timestamp(timestamp_s)
    payload = signed_payload(body, timestamp_s=timestamp_s)
    v1 = [f"{HMAC_SCHEME}={_hmac_hex(secret, payload)}" for secret in secrets]
    return ",".join([f"t={timestamp_s}", *v1])


def verify_hmac(
    body: bytes,
    header: str | None,
    *,
    secrets: Sequence[bytes],
    now_s: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a `Pishkhan-Signature` header over the raw body; return its timestamp.

    Raises WebhookSignatureError with rule missing_header, header_too_long, malformed_header,
    missing_timestamp, duplicate_timestamp, no_v1_signature, too_many_signatures,
    timestamp_out_of_window (|now_s − t| > tolerance_s) or no_matching_signature (no v1 equals
    the HMAC under any of `secrets`). Raises ValueError for bad secrets or tolerance.
    """
    _check_secrets(secrets)
    _check_tolerance(tolerance_s)
    elements = _split_header(header)
    timestamp_s = _read_timestamp(elements)
    candidates = [value for key, value in elements if key == HMAC_SCHEME]
    if not candidates:
        raise WebhookSignatureError(
            f"the header has no {HMAC_SCHEME} signature", rule=RULE_NO_V1_SIGNATURE
        )
    if len(candidates) > MAX_SECRETS:
        raise WebhookSignatureError(
            f"the header has more than MAX_SECRETS={MAX_SECRETS} {HMAC_SCHEME} signatures",
            rule=RULE_TOO_MANY_SIGNATURES,
        )
    if any(_HMAC_HEX.fullmatch(value) is None for value in candidates):
        raise WebhookSignatureError(
            f"a {HMAC_SCHEME} signature is not {HMAC_HEX_CHARS} lower-case hex digits",
            rule=RULE_MALFORMED_HEADER,
        )
    _check_window(timestamp_s, now_s=now_s, tolerance_s=tolerance_s)
    payload = signed_payload(body, timestamp_s=timestamp_s)
    matched = False
    for secret in secrets:
        expected = _hmac_hex(secret, payload).encode("ascii")
        for candidate in candidates:
            # No early exit: every pair is compared, in constant time each.
            matched |= hmac.compare_digest(expected, candidate.encode("ascii"))
    if not matched:
        raise WebhookSignatureError(
            "no v1 signature matches the body under any active secret",
            rule=RULE_NO_MATCHING_SIGNATURE,
        )
    return timestamp_s


def _hmac_hex(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


# --- Ed25519 -------------------------------------------------------------------------------------


def ed25519_kid(public_key: Ed25519PublicKey) -> str:
    """The key's id: the RFC 7638 thumbprint of its JWK (OKP, Ed25519)."""
    return PublicJwk.from_public_key(public_key).kid


def ed25519_key_set(public_keys: Sequence[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """The verifier's key set, each key under its thumbprint (as verify_ed25519 wants it).

    Raises signatures.errors.JwkError for a key that is not an acceptable Ed25519 key.
    """
    return {ed25519_kid(key): key for key in public_keys}


def sign_ed25519(body: bytes, *, private_key: Ed25519PrivateKey, kid: str, timestamp_s: int) -> str:
    """The `Pishkhan-Signature-Ed25519` header value: `t=…,kid=…,sig=…`.

    Raises ValueError when kid is not the thumbprint of private_key's public key (a header
    naming another key would never verify) or the timestamp is negative or too long.
    """
    _check_timestamp(timestamp_s)
    if kid != ed25519_kid(private_key.public_key()):
        raise ValueError("kid is not the RFC 7638 thumbprint of the signing key")
    signature = private_key.sign(signed_payload(body, timestamp_s=timestamp_s))
    return f"t={timestamp_s},kid={kid},sig={b64url_encode(signature)}"


def verify_ed25519(
    body: bytes,
    header: str | None,
    *,
    public_keys: Mapping[str, Ed25519PublicKey],
    now_s: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a `Pishkhan-Signature-Ed25519` header over the raw body; return its timestamp.

    The key is `public_keys[kid]` (build the mapping with ed25519_key_set). Raises
    WebhookSignatureError with rule missing_header, header_too_long, malformed_header,
    missing_timestamp, duplicate_timestamp, duplicate_element, unknown_kid,
    timestamp_out_of_window or no_matching_signature. Raises ValueError for a bad tolerance.
    """
    _check_tolerance(tolerance_s)
    elements = _split_header(header)
    timestamp_s = _read_timestamp(elements)
    kid = _single(elements, "kid")
    encoded = _single(elements, "sig")
    signature = parse_b64url(encoded)
    if len(kid) != THUMBPRINT_CHARS or parse_b64url(kid) is None:
        raise WebhookSignatureError("kid is not an RFC 7638 thumbprint", rule=RULE_MALFORMED_HEADER)
    if signature is None or len(signature) != ED25519_SIGNATURE_BYTES:
        raise WebhookSignatureError(
            "sig is not a 64-byte signature in unpadded base64url", rule=RULE_MALFORMED_HEADER
        )
    key = public_keys.get(kid)
    if key is None:
        raise WebhookSignatureError(
            "kid names no key in the verifier's key set", rule=RULE_UNKNOWN_KID
        )
    _check_window(timestamp_s, now_s=now_s, tolerance_s=tolerance_s)
    try:
        key.verify(signature, signed_payload(body, timestamp_s=timestamp_s))
    except InvalidSignature:
        raise WebhookSignatureError(
            "the Ed25519 signature does not match the body", rule=RULE_NO_MATCHING_SIGNATURE
        ) from None
    return timestamp_s


# --- both schemes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundSigningKeys:
    """What signs our outbound webhooks: the HMAC secrets of the receiving agency (all active
    ones during rotation) and the service's Ed25519 webhook key with its kid."""

    hmac_secrets: tuple[bytes, ...]
    ed25519_private_key: Ed25519PrivateKey
    ed25519_kid: str


def outbound_headers(body: bytes, *, keys: OutboundSigningKeys, timestamp_s: int) -> dict[str, str]:
    """Both signature headers for one outbound delivery, signed at the same timestamp.

    Raises ValueError as sign_hmac and sign_ed25519 do.
    """
    return {
        HMAC_HEADER: sign_hmac(body, secrets=keys.hmac_secrets, timestamp_s=timestamp_s),
        ED25519_HEADER: sign_ed25519(
            body,
            private_key=keys.ed25519_private_key,
            kid=keys.ed25519_kid,
            timestamp_s=timestamp_s,
        ),
    }


# --- parsing and checks --------------------------------------------------------------------------


def _split_header(header: str | None) -> list[tuple[str, str]]:
    """The header's `key=value` elements in order; refuses anything not of that shape."""
    if not header:
        raise WebhookSignatureError("the signature header is missing", rule=RULE_MISSING_HEADER)
    if len(header) > MAX_HEADER_CHARS:
        raise WebhookSignatureError(
            f"the signature header is longer than MAX_HEADER_CHARS={MAX_HEADER_CHARS}",
            rule=RULE_HEADER_TOO_LONG,
        )
    elements: list[tuple[str, str]] = []
    for item in header.split(","):
        key, sep, value = item.partition("=")
        if not sep or not value or _ELEMENT_KEY.fullmatch(key) is None:
            raise WebhookSignatureError(
                "the signature header is not a comma-separated list of key=value",
                rule=RULE_MALFORMED_HEADER,
            )
        elements.append((key, value))
    return elements


def _read_timestamp(elements: list[tuple[str, str]]) -> int:
    values = [value for key, value in elements if key == "t"]
    if not values:
        raise WebhookSignatureError("the header has no t= timestamp", rule=RULE_MISSING_TIMESTAMP)
    if len(values) > 1:
        # Two timestamps would let a verifier and a signer disagree on which one is signed.
        raise WebhookSignatureError(
            "the header has more than one t=", rule=RULE_DUPLICATE_TIMESTAMP
        )
    if _TIMESTAMP.fullmatch(values[0]) is None:
        raise WebhookSignatureError(
            f"t is not 1 to {MAX_TIMESTAMP_DIGITS} ASCII digits", rule=RULE_MALFORMED_HEADER
        )
    return int(values[0])


def _single(elements: list[tuple[str, str]], name: str) -> str:
    values = [value for key, value in elements if key == name]
    if not values:
        raise WebhookSignatureError(f"the header has no {name}=", rule=RULE_MALFORMED_HEADER)
    if len(values) > 1:
        raise WebhookSignatureError(
            f"the header has more than one {name}=", rule=RULE_DUPLICATE_ELEMENT
        )
    return values[0]


def _check_window(timestamp_s: int, *, now_s: int, tolerance_s: int) -> None:
    if abs(now_s - timestamp_s) > tolerance_s:
        raise WebhookSignatureError(
            f"the signature timestamp is more than {tolerance_s} s from now",
            rule=RULE_TIMESTAMP_OUT_OF_WINDOW,
        )


def _check_secrets(secrets: Sequence[bytes]) -> None:
    if isinstance(secrets, bytes | str):
        # A bare bytes value is a Sequence too: each byte would become a "secret".
        raise ValueError("secrets is a sequence of secrets, not one secret")
    if not 1 <= len(secrets) <= MAX_SECRETS:
        raise ValueError(f"between 1 and MAX_SECRETS={MAX_SECRETS} secrets are needed")
    if any(len(secret) < MIN_SECRET_BYTES for secret in secrets):
        raise ValueError(f"every secret must have at least MIN_SECRET_BYTES={MIN_SECRET_BYTES}")


def _check_timestamp(timestamp_s: int) -> None:
    if _TIMESTAMP.fullmatch(str(timestamp_s)) is None:
        raise ValueError(f"timestamp_s must be 0 to {MAX_TIMESTAMP_DIGITS} digits")


def _check_tolerance(tolerance_s: int) -> None:
    if not 0 <= tolerance_s <= MAX_TOLERANCE_S:
        raise ValueError(f"tolerance_s must be in [0, MAX_TOLERANCE_S={MAX_TOLERANCE_S}]")
