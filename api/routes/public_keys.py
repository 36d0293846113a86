"""`GET /.well-known/pishkhan-keys`: the service's public keys as a JWKS with validity windows.

No authentication: auditors fetch it to verify checkpoints offline. Every checkpoint key of the
keyring is listed, retired ones included, each with its C2SP vkey line and its signing window.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.keys import CheckpointKey, CheckpointKeyring
from api.problems import problem_responses
from signatures.jwk import PublicJwk
from signatures.service_keys import format_rfc3339

router = APIRouter(tags=["keys"])

_RFC3339 = "RFC 3339 UTC time, YYYY-MM-DDTHH:MM:SSZ"


class Ed25519PublicJwk(BaseModel):
    """An Ed25519 public JWK (RFC 8037) for signatures, with its RFC 7638 thumbprint as kid."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str = Field(description="The public key, base64url without padding")
    kid: str = Field(description="RFC 7638 JWK thumbprint")
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class ServicePublicKey(Ed25519PublicJwk):
    """An Ed25519 public JWK (RFC 8037) with Pishkhan's members for the signing window."""

    pishkhan_key_name: str = Field(description="The C2SP signed-note key name")
    pishkhan_vkey: str = Field(description="The C2SP vkey line of this key")
    pishkhan_not_before: str = Field(description=f"Signs from this time on, {_RFC3339}")
    pishkhan_not_after: str | None = Field(
        description=f"Signs only before this time ({_RFC3339}); null: no end set"
    )
    pishkhan_purpose: Literal["checkpoint"]


class ServiceKeySet(BaseModel):
    keys: list[ServicePublicKey]


def _public_key(key: CheckpointKey) -> ServicePublicKey:
    jwk = PublicJwk.from_public_key(key.signer.private_key.public_key())
    not_after = key.entry.not_after
    return ServicePublicKey(
        kty="OKP",
        crv="Ed25519",
        x=jwk.x or "",
        kid=jwk.kid,
        alg="EdDSA",
        use="sig",
        pishkhan_key_name=key.signer.name,
        pishkhan_vkey=key.verifier.vkey,
        pishkhan_not_before=format_rfc3339(key.entry.not_before),
        pishkhan_not_after=None if not_after is None else format_rfc3339(not_after),
        pishkhan_purpose="checkpoint",
    )


@router.get("/.well-known/pishkhan-keys", responses=problem_responses())
def get_public_keys(request: Request) -> ServiceKeySet:
    """The service's public keys (a JWKS): every checkpoint key, retired ones included, with
    its C2SP vkey line and its signing window not_before ≤ t < not_after."""
    keyring: CheckpointKeyring = request.app.state.checkpoint_keyring
    return ServiceKeySet(keys=[_public_key(k) for k in keyring.keys])
