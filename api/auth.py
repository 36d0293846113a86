"""Bearer tokens: who is calling (authentication) and in which roles (docs/AUTH.md).

Tokens are JWTs from an OpenID Connect provider, checked to RFC 8725: the key named by `kid` in
the provider's JWKS (api/jwks.py) fixes the one algorithm that may verify it; `none`, HMAC and
header-supplied keys (`jku`, `x5u`, `jwk`, `x5c`) are never used; `crit` is refused; `iss`, `aud`,
`sub`, `iat` and `exp` are required and checked against a passed-in clock with a leeway; a token
lives at most MAX_TOKEN_LIFETIME_S. The subject must have the shape its roles require.

Every refusal is the same 401 problem to the client (nothing to learn from probing), and one INFO
log line with the reason, never the token.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn

import jwt
from fastapi import Request

from api.jwks import JwksError, JwksSource, JwksUnavailableError
from api.problems import Problem, problem_type
from signatures.envelope import ENTITY_KINDS, PERSON_KINDS, SubjectKind, parse_subject
from signatures.errors import SubjectError
from signatures.jwk import parse_b64url

if TYPE_CHECKING:
    from api.settings import Settings

__all__ = [
    "AuthConfigError",
    "AuthError",
    "JwksSource",
    "Principal",
    "Role",
    "TokenVerifier",
    "require_principal",
    "require_role",
    "token_verifier_from_settings",
    "verify_subject_for_roles",
]

MAX_TOKEN_CHARS = 8 * 1024
MAX_TOKEN_LIFETIME_S = 24 * 3600
MAX_LEEWAY_S = 300
MAX_PRINCIPAL_SUBJECT_CHARS = 128
MAX_JTI_CHARS = 256
MAX_ROLES = 16
MAX_NUMERIC_DATE = 253_402_300_799  # 9999-12-31T23:59:59Z
ALLOWED_ALGS = frozenset({"RS256", "ES256", "EdDSA"})
# RFC 8725 §3.11 explicit typing: an access token (RFC 9068), a plain JWT, or no typ at all.
ACCEPTED_TYPS = frozenset({"jwt", "at+jwt", "application/jwt", "application/at+jwt"})
REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "aud")
ROLES_CLAIM = "roles"
JWKS_RETRY_AFTER_S = 30

_BEARER = re.compile(r"([A-Za-z]+) +([A-Za-z0-9._~+/-]+=*) *")

logger = logging.getLogger("pishkhan.auth")


class Role(StrEnum):
    CITIZEN = "citizen"
    BUSINESS = "business"
    AGENCY = "agency"
    AUDITOR = "auditor"
    ADMIN = "admin"


# The subject kinds each role may hold; None: any text (staff accounts of the provider).
# Persons and entities of every jurisdiction (ir-nid, ee-ik; ir-lid, ee-rg).
_SUBJECT_KINDS: dict[Role, frozenset[SubjectKind] | None] = {
    Role.CITIZEN: PERSON_KINDS,
    Role.BUSINESS: PERSON_KINDS | ENTITY_KINDS,
    Role.AGENCY: frozenset({SubjectKind.AGENCY}),
    Role.AUDITOR: None,
    Role.ADMIN: None,
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: its subject, its roles, and the token's jti (if any)."""

    subject: str
    roles: frozenset[Role]
    token_id: str | None = None

    def has_role(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)


class AuthError(Exception):
    """A bearer token refused; `reason` is for the log, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthConfigError(Exception):
    """The identity settings cannot work; `setting` names the one to fix."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


def verify_subject_for_roles(subject: str, roles: frozenset[Role]) -> None:
    """Check that subject has the shape every one of roles requires (check digits included).

    Raises AuthError when it is empty, longer than MAX_PRINCIPAL_SUBJECT_CHARS, not printable,
    or not of a subject kind one of its roles allows.
    """
    if not subject or len(subject) > MAX_PRINCIPAL_SUBJECT_CHARS or not subject.isprintable():
        raise AuthError("sub is empty, too long or not printable")
    for role in roles:
        kinds = _SUBJECT_KINDS[role]
        if kinds is None:
            continue
        try:
            kind = parse_subject(subject).kind
        except SubjectError as exc:
            raise AuthError(f"sub is not a valid subject for role {role} ({exc.rule})") from None
        if kind not in kinds:
            raise AuthError(f"sub of kind {kind} does not fit role {role}")


def parse_roles(value: object) -> frozenset[Role]:
    """The roles of a `roles` claim: a non-empty list of known role names.

    Raises AuthError for anything else (an unknown name included).
    """
    if not isinstance(value, list) or not value or len(value) > MAX_ROLES:
        raise AuthError(f"{ROLES_CLAIM} is not a list of 1 to {MAX_ROLES} role names")
    try:
        return frozenset(Role(name) for name in value)
    except ValueError:
        raise AuthError(f"{ROLES_CLAIM} holds an unknown role") from None


# --- the token verifier --------------------------------------------------------------------------


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise AuthError("duplicate member in the JOSE header")
    return members


def _header(token: str) -> dict[str, object]:
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise AuthError(f"token longer than {MAX_TOKEN_CHARS} characters or not ASCII")
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("not a compact JWS (three segments)")
    raw = parse_b64url(parts[0])
    if raw is None:
        raise AuthError("header is not base64url")
    try:
        header = json.loads(raw, object_pairs_hook=_refuse_duplicates)
    except (ValueError, RecursionError):
        raise AuthError("header is not JSON") from None
    if not isinstance(header, dict):
        raise AuthError("header is not an object")
    return header


def _check_header(header: dict[str, object]) -> tuple[str, str]:
    """(alg, kid) of an acceptable header. jku, x5u, jwk and x5c are never looked at."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGS:
        raise AuthError("alg not allowed")
    if "crit" in header:
        raise AuthError("crit header present")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPS):
        raise AuthError("typ is not a JWT access token type")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthError("kid missing")
    return alg, kid


def _numeric_date(claims: Mapping[str, object], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AuthError(f"{name} is not a NumericDate")
    if not 0 <= value <= MAX_NUMERIC_DATE:
        raise AuthError(f"{name} out of range")
    return float(value)


class TokenVerifier:
    """Verifies bearer tokens of one issuer for one audience against a JwksSource."""

    def __init__(self, *, issuer: str, audience: str, jwks: JwksSource, leeway_s: int = 30) -> None:
        if not 0 <= leeway_s <= MAX_LEEWAY_S:
            raise AuthConfigError(f"the leeway is 0 to {MAX_LEEWAY_S} s", setting="oidc_leeway_s")
        if not issuer:
            raise AuthConfigError("the issuer is required", setting="oidc_issuer")
        if not audience:
            raise AuthConfigError("the audience is required", setting="oidc_audience")
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.leeway_s = leeway_s

    def verify(self, token: str, *, now: datetime | None = None) -> Principal:
        """The principal a valid token names, at now (default: the current time).

        Raises AuthError for any refusal (docs/AUTH.md lists them), and JwksUnavailableError
        when the provider's keys cannot be had at all.
        """
        alg, kid = _check_header(_header(token))
        key = self.jwks.get_key(kid)
        if key is None:
            raise AuthError("kid not in the JWKS")
        if alg != key.algorithm_name:
            raise AuthError("header alg differs from the key's algorithm")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    # Times are checked below, against the passed-in clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"rejected by pyjwt ({type(exc).__name__})") from None
        at = (now or datetime.now(UTC)).timestamp()
        self._check_times(claims, at)
        return self._principal(claims)

    def _check_times(self, claims: Mapping[str, object], at: float) -> None:
        exp = _numeric_date(claims, "exp")
        iat = _numeric_date(claims, "iat")
        nbf = _numeric_date(claims, "nbf")
        assert exp is not None and iat is not None  # required above
        if exp <= at - self.leeway_s:
            raise AuthError("expired")
        if iat > at + self.leeway_s:
            raise AuthError("iat in the future")
        if nbf is not None and nbf > at + self.leeway_s:
            raise AuthError("not yet valid (nbf)")
        if not 0 < exp - iat <= MAX_TOKEN_LIFETIME_S:
            raise AuthError(f"lifetime not within 0..{MAX_TOKEN_LIFETIME_S} s")

    @staticmethod
    def _principal(claims: Mapping[str, object]) -> Principal:
        roles = parse_roles(claims.get(ROLES_CLAIM))
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise AuthError("sub is not a string")
        verify_subject_for_roles(subject, roles)
        jti = claims.get("jti")
        if jti is not None and (not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS):
            raise AuthError(f"jti is not a string of 1 to {MAX_JTI_CHARS} characters")
        return Principal(subject=subject, roles=roles, token_id=jti)


def _dev_issuer_jwks(settings: Settings) -> JwksSource:
    # Imported here: the development issuer imports this module.
    from api.dev_issuer import DevIssuerError, dev_jwks

    try:
        document = json.dumps(dev_jwks(settings)).encode()
    except DevIssuerError as exc:
        raise AuthConfigError(str(exc), setting="dev_issuer_key_file") from None
    return JwksSource.from_document(document, source="dev issuer")


def token_verifier_from_settings(settings: Settings) -> TokenVerifier:
    """The verifier the settings describe: a JWKS file, a JWKS URL, or (env=dev with neither)
    the development issuer's JWKS, its key created on first use.

    Raises AuthConfigError when both or (outside dev) neither of oidc_jwks_file and
    oidc_jwks_url are set, the JWKS file is unusable, the URL is not https, or the TTL, leeway,
    issuer or audience are out of bounds.
    """
    file, url = settings.oidc_jwks_file, settings.oidc_jwks_url
    try:
        if file is not None and url is not None:
            raise AuthConfigError("set a JWKS file or a URL, not both", setting="oidc_jwks_url")
        if file is not None:
            jwks = JwksSource.from_file(file)
        elif url is not None:
            jwks = JwksSource.from_url(url, ttl_s=settings.oidc_jwks_ttl_s)
        elif settings.env == "dev":
            jwks = _dev_issuer_jwks(settings)
        else:
            raise AuthConfigError(
                "no identity provider: set PISHKHAN_OIDC_JWKS_URL or PISHKHAN_OIDC_JWKS_FILE "
                "(the development issuer runs only with PISHKHAN_ENV=dev)",
                setting="oidc_jwks_url",
            )
    except JwksError as exc:
        setting = "oidc_jwks_file" if file is not None else "oidc_jwks_url"
        raise AuthConfigError(str(exc), setting=setting) from None
    return TokenVerifier(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks=jwks,
        leeway_s=settings.oidc_leeway_s,
    )


# --- FastAPI -------------------------------------------------------------------------------------


def _unauthenticated(*, challenge_error: bool) -> Problem:
    # RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
    challenge = 'Bearer error="invalid_token"' if challenge_error else "Bearer"
    return Problem(
        401,
        problem_type("unauthenticated"),
        "Authentication required",
        "A valid bearer token is required.",
        headers={"WWW-Authenticate": challenge},
    )


def _refuse(reason: str, *, challenge_error: bool = True) -> NoReturn:
    logger.info("bearer token refused: %s", reason)
    raise _unauthenticated(challenge_error=challenge_error)


def _bearer_token(request: Request) -> str:
    values = request.headers.getlist("authorization")
    if not values:
        _refuse("no Authorization header", challenge_error=False)
    if len(values) > 1:
        _refuse("several Authorization headers")
    match = _BEARER.fullmatch(values[0])
    if match is None or match.group(1).lower() != "bearer":
        _refuse("Authorization is not 'Bearer <token>'")
    return match.group(2)


def require_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller authenticated by its bearer token.

    Uses request.app.state.token_verifier and sets request.state.principal. Raises the 401
    Problem `unauthenticated` for every refusal (one body for all), and a 503 Problem
    `identity-provider-unavailable` when the provider's keys cannot be had.
    """
    token = _bearer_token(request)
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = verifier.verify(token)
    except JwksUnavailableError as exc:
        logger.warning("bearer token not checked: %s", exc)
        raise Problem(
            503,
            problem_type("identity-provider-unavailable"),
            "Identity provider unavailable",
            "The keys that verify bearer tokens cannot be had now; retry later.",
            headers={"Retry-After": str(JWKS_RETRY_AFTER_S)},
        ) from None
    except AuthError as exc:
        _refuse(exc.reason)
    request.state.principal = principal
    return principal


def require_role(principal: Principal, *roles: Role) -> None:
    """Function-level authorisation: raises the 403 Problem `forbidden` unless principal holds
    one of roles."""
    if not principal.has_role(*roles):
        needed = ", ".join(sorted(roles))
        raise Problem(
            403,
            problem_type("forbidden"),
            "Forbidden",
            f"This operation needs one of the roles: {needed}.",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
        )
