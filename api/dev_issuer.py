"""The development identity provider: mints bearer tokens with a local Ed25519 key, in dev only.

In env=dev, with no JWKS configured, the API trusts this issuer (api/auth.py), so that a developer
can call it with `pishkhan dev token`. The key is a plain PKCS#8 PEM, mode 0600 in a 0700
directory: acceptable only because every function here refuses to run unless env is "dev", so
the key can never authenticate anyone in test or production.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.auth import MAX_TOKEN_LIFETIME_S, AuthError, Role, verify_subject_for_roles
from api.settings import Settings
from signatures.jwk import PublicJwk

DEFAULT_TTL_S = 3600
MIN_TTL_S = 1
MAX_TTL_S = MAX_TOKEN_LIFETIME_S
MAX_KEY_FILE_BYTES = 4 * 1024  # an Ed25519 PKCS#8 PEM is 119 bytes
JTI_BYTES = 16
KEY_FILE_MODE = 0o600
KEY_DIR_MODE = 0o700
TOKEN_TYP = "JWT"  # noqa: S105 (a media type)


class DevIssuerError(Exception):
    """The development issuer refused: not in dev, a bad request, or an unusable key file
    (`path`, when a file is the cause)."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message if path is None else f"{path}: {message}")
        self.path = path


def _require_dev(settings: Settings) -> None:
    if settings.env != "dev":
        raise DevIssuerError(
            f"the development issuer runs only with PISHKHAN_ENV=dev (this is {settings.env})"
        )


def _create_key(path: Path) -> None:
    """Write a new key beside path, then link it into place: never a partial file, and when two
    processes race, the first link wins and both use its key."""
    path.parent.mkdir(mode=KEY_DIR_MODE, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), KEY_FILE_MODE)  # exactly owner-only, whatever the umask
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: use its key
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_key(path: Path) -> Ed25519PrivateKey:
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode) or mode & 0o077:
        raise DevIssuerError("the key file must be a regular file of mode 0600", path=path)
    with path.open("rb") as file:
        data = file.read(MAX_KEY_FILE_BYTES + 1)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise DevIssuerError("not an unencrypted PEM private key", path=path) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DevIssuerError("not an Ed25519 key", path=path)
    return key


def dev_issuer_key(settings: Settings) -> Ed25519PrivateKey:
    """The issuer's key at settings.dev_issuer_key_file, created on first use.

    Raises DevIssuerError outside env=dev, or when the file is unusable (not 0600, not Ed25519).
    """
    _require_dev(settings)
    path = settings.dev_issuer_key_file
    try:
        if not path.exists():
            _create_key(path)
        return _load_key(path)
    except OSError as exc:
        raise DevIssuerError(f"cannot use the key file ({exc.strerror})", path=path) from None


def _public_jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    jwk = PublicJwk.from_public_key(key.public_key())
    return {**jwk.to_dict(), "alg": "EdDSA", "use": "sig", "kid": jwk.kid}


def dev_jwks(settings: Settings) -> dict[str, list[dict[str, str]]]:
    """The issuer's JWKS: its one Ed25519 key, kid = RFC 7638 thumbprint. Raises DevIssuerError
    (see dev_issuer_key)."""
    return {"keys": [_public_jwk(dev_issuer_key(settings))]}


def mint_token(
    settings: Settings,
    *,
    subject: str,
    roles: Iterable[Role | str],
    ttl_s: int = DEFAULT_TTL_S,
    now: datetime | None = None,
) -> str:
    """A bearer token (EdDSA JWT) for subject in roles, valid ttl_s seconds from now.

    iss and aud are settings.oidc_issuer and settings.oidc_audience. Raises DevIssuerError
    outside env=dev, for an unknown role, a subject that does not fit the roles, or a ttl_s
    outside MIN_TTL_S..MAX_TTL_S.
    """
    _require_dev(settings)
    if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
        raise DevIssuerError(f"the lifetime is {MIN_TTL_S} to {MAX_TTL_S} s")
    try:
        role_set = frozenset(Role(r) for r in roles)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise DevIssuerError(f"unknown role; the roles are {known}") from None
    if not role_set:
        raise DevIssuerError("at least one role is needed")
    try:
        verify_subject_for_roles(subject, role_set)
    except AuthError as exc:
        raise DevIssuerError(exc.reason) from None
    key = dev_issuer_key(settings)
    issued = int((now or datetime.now(UTC)).timestamp())
    claims = {
        "iss": settings.oidc_issuer,
        "aud": settings.oidc_audience,
        "sub": subject,
        "roles": sorted(role_set),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_urlsafe(JTI_BYTES),
    }
    headers = {"kid": _public_jwk(key)["kid"], "typ": TOKEN_TYP}
    return jwt.encode(claims, key, algorithm="EdDSA", headers=headers)
