"""A test identity provider: one Ed25519 key, its JWKS and bearer tokens for any subject."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.auth import TokenVerifier
from api.jwks import JwksSource
from signatures.jwk import b64url_encode

ISSUER = "https://idp.pishkhan.test"
AUDIENCE = "pishkhan-test"
_KEY = Ed25519PrivateKey.generate()
_KID = "test-idp-1"


def verifier() -> TokenVerifier:
    raw = _KEY.public_key().public_bytes_raw()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw), "kid": _KID, "alg": "EdDSA"}
    jwks = JwksSource.from_document(json.dumps({"keys": [jwk]}).encode())
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks)


def bearer(subject: str, *roles: str, ttl_s: int = 600) -> dict[str, str]:
    """An Authorization header for subject in roles."""
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": now,
        "exp": now + ttl_s,
        "roles": list(roles),
    }
    encoded = jwt.encode(claims, _KEY, algorithm="EdDSA", headers={"kid": _KID})
    return {"Authorization": f"Bearer {encoded}"}
