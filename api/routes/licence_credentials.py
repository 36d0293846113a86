"""Licence credentials: the holder's download (JSON and QR code), the issuing agencies'
published keys and the online check third parties make (docs/LICENCES.md, "Credential").

The credential is a compact JWS signed by the issuing agency's key, which the service holds
(api/licences/issuer_keys.py) and registers in the key registry before it signs anything with
it. Offline, a verifier needs only GET /v1/licences/issuer-keys: that gives authenticity. The
online check, GET /v1/licences/verify, adds the licence's current status; it is public and
answers with no more about the holder than the credential itself states.

This router's fixed paths (/issuer-keys, /verify) must be matched before the
/v1/licences/{licence_id} route of api/routes/licences.py: api/app.py includes this one first.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import jwt
from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.auth import Principal
from api.licences.issuer_keys import (
    IssuerKeys,
    KeyRegistrar,
    published_key_json,
    verification_keys,
)
from api.licences.qr import credential_qr_png
from api.problems import FieldError, Problem, problem_responses, problem_type
from api.routes.licences import (
    LicenceId,
    PrincipalDep,
    licence_book,
    now_of,
    read_with,
    type_of,
    visible_licence,
)
from api.routes.public_keys import Ed25519PublicJwk
from ledger.leaf import format_timestamp
from licences import store
from licences.credential import (
    MAX_CREDENTIAL_CHARS,
    CredentialClaims,
    encode_credential,
    verify_credential,
)
from licences.errors import CredentialError, LicenceStateError
from licences.status import LicenceStatus, effective_status
from licences.terms import Term, dual, local_date
from licences.types import LicenceType
from signatures.service_keys import format_rfc3339
from tax.rulepack import pack_for

router = APIRouter(prefix="/v1/licences", tags=["licences"])
_PNG = {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}
# Refusals of the online check beyond licences.credential.CREDENTIAL_REASONS: signed by a key
# the registry revoked at or before the credential's iat; naming no licence (or a type this
# service does not know); naming a licence whose issuer, type, number or holder differ, or
# whose term ends before the credential's does.
REASON_KEY_REVOKED = "key_revoked"
REASON_UNKNOWN_LICENCE = "unknown_licence"
REASON_LICENCE_MISMATCH = "licence_mismatch"
# Not readable at all: the caller's mistake (400 naming the parameter), not a forgery.
_UNREADABLE = frozenset({"malformed", "too_large"})
# Credentials and answers carry the holder's subject and number: no cache may keep them.
_NO_STORE = {"Cache-Control": "no-store"}

Status = Literal["valid", "expired", "suspended", "revoked", "not_yet_valid", "not_authentic"]


class ClaimsView(BaseModel):
    """A credential's claims; dates in both calendars where the jurisdiction uses Solar Hijri."""

    issuer: str = Field(description="The issuing agency, agency:<id>")
    holder: str = Field(description="The holder's subject")
    licence_type: str
    number: str
    valid_from: dict[str, str] = Field(description='{"date": ISO 8601, "jalali"?: …}')
    valid_until: dict[str, str] = Field(description="The last day of the term, inclusive")
    not_before: str = Field(description="nbf: start of valid_from in the jurisdiction's zone")
    expires_at: str = Field(description="exp: start of the day after valid_until")
    issued_at: str = Field(description="iat: the licence's last change before signing")
    licence_id: str


class CredentialOut(BaseModel):
    credential: str = Field(description="Compact JWS, typ pishkhan-licence+jwt (docs/LICENCES.md)")
    kid: str = Field(description="The issuer key's RFC 7638 thumbprint")
    issuer: str
    claims: ClaimsView


class VerifyOut(BaseModel):
    status: Status
    reason: str | None = Field(description="Why not_authentic; null otherwise")
    superseded: bool | None = Field(
        description="The licence has a newer term than the credential states (download anew)"
    )
    checked_at: str = Field(description="When the status was checked, RFC 3339 UTC")
    claims: ClaimsView | None = Field(description="What the credential states; null if forged")


class IssuerKeyOut(Ed25519PublicJwk):
    """An agency's credential key as published: the JWK, its agency, its registration."""

    iss: str = Field(description="The agency whose credentials this key signs")
    registered_index: int = Field(description="Ledger index of the key's key.register")


class IssuerKeySet(BaseModel):
    keys: list[IssuerKeyOut]


def _keys(request: Request) -> IssuerKeys:
    keys: IssuerKeys = request.app.state.issuer_keys
    return keys


def _instant(unix_s: int) -> str:
    """A credential's unix seconds as RFC 3339 UTC, YYYY-MM-DDTHH:MM:SSZ."""
    return format_rfc3339(datetime.fromtimestamp(unix_s, UTC))


def _dual(licence_type: LicenceType, day: date) -> dict[str, str]:
    """The day in both calendars where the jurisdiction uses Solar Hijri (all text)."""
    return {name: str(text) for name, text in dual(licence_type, day).items()}


def _claims_view(claims: CredentialClaims, licence_type: LicenceType) -> ClaimsView:
    return ClaimsView(
        issuer=claims.issuer,
        holder=claims.holder,
        licence_type=claims.licence_type,
        number=claims.number,
        valid_from=_dual(licence_type, claims.valid_from),
        valid_until=_dual(licence_type, claims.valid_until),
        not_before=_instant(claims.not_before),
        expires_at=_instant(claims.expires_at),
        issued_at=_instant(claims.issued_at),
        licence_id=claims.licence_id,
    )


# --- public: keys and the online check ------------------------------------------------------


@router.get("/issuer-keys", response_model=IssuerKeySet, responses=problem_responses())
def list_issuer_keys(request: Request) -> dict[str, Any]:
    """The agencies' credential keys registered in the key registry (a JWKS with "iss" and the
    ledger index of each key's registration): what offline verifiers need. Public."""
    agencies = licence_book(request).agencies()
    published = read_with(
        request, lambda conn: _keys(request).published_keys(conn, agencies=agencies)
    )
    return {"keys": [published_key_json(p) for p in published]}


@router.get("/verify", response_model=VerifyOut, responses=problem_responses(400, 429))
def verify_licence_credential(
    request: Request,
    credential: Annotated[
        str, Query(min_length=1, max_length=MAX_CREDENTIAL_CHARS, description="Compact JWS")
    ],
) -> JSONResponse:
    """The online check of a licence credential, for third parties (a roadside check). Public.

    `not_authentic` (with `reason`) when the signature, header or claims fail against the
    published issuer keys, the key was revoked in the registry before the credential's iat, or
    the credential does not match the licence it names. Otherwise the licence's current
    decisions decide first (revoked, suspended: for every credential of it, however old), then
    the credential's own term: `expired` after its valid_until, `not_yet_valid` before its
    valid_from, else `valid`. A credential of an older term says `expired` once its own term
    has ended even when the licence was renewed since; `superseded` tells that a newer one can
    be downloaded. The answer repeats what the credential states and nothing more.
    An unreadable credential (not a compact JWS of JSON) is 400 invalid-credential. Rate
    limited per client address (there is no subject): 429 with Retry-After.
    """
    client = request.client.host if request.client is not None else "unknown"
    request.app.state.check_rate(f"address:{client}")
    at = now_of(request)
    answer = read_with(request, lambda conn: _check(request, conn, credential, at=at))
    return JSONResponse(answer.model_dump(), headers=_NO_STORE)


def _check(request: Request, conn: Connection, token: str, *, at: datetime) -> VerifyOut:
    book = licence_book(request)
    published = _keys(request).published_keys(conn, agencies=book.agencies())
    checked_at = format_timestamp(at)

    def forged(reason: str) -> VerifyOut:
        return VerifyOut(
            status="not_authentic",
            reason=reason,
            superseded=None,
            checked_at=checked_at,
            claims=None,
        )

    try:
        claims = verify_credential(token, keys=verification_keys(published))
    except CredentialError as error:
        if error.reason in _UNREADABLE:
            raise _unreadable(error) from None
        return forged(error.reason)
    # verify_credential found the header's kid among `published`: the header is authentic now.
    kid = jwt.get_unverified_header(token)["kid"]
    revoked_at = next(p.record for p in published if p.key.kid == kid).revoked_at
    if revoked_at is not None and claims.issued_at >= revoked_at.timestamp():
        return forged(REASON_KEY_REVOKED)
    licence = store.get_licence(conn, claims.licence_id)
    licence_type = book.get(claims.licence_type)
    if licence is None or licence_type is None:
        return forged(REASON_UNKNOWN_LICENCE)
    named = (claims.issuer, claims.licence_type, claims.number, claims.holder)
    stored = (licence.issuer, licence.licence_type, licence.number, licence.holder)
    # Terms only ever move forward: no genuine credential ends after the licence's term.
    if named != stored or claims.valid_until > licence.term.expires_on:
        return forged(REASON_LICENCE_MISMATCH)
    own_term = Term(valid_from=claims.valid_from, expires_on=claims.valid_until)
    status = effective_status(licence.status, own_term, today=local_date(licence_type, at))
    return VerifyOut(
        status=status.value,  # EffectiveStatus values are a subset of Status
        reason=None,
        superseded=own_term != licence.term,
        checked_at=checked_at,
        claims=_claims_view(claims, licence_type),
    )


def _unreadable(error: CredentialError) -> Problem:
    return Problem(
        400,
        problem_type("invalid-credential"),
        "The credential is not readable",
        str(error),
        (FieldError(field="credential", rule=error.reason, message=str(error)),),
    )


# --- the credential ------------------------------------------------------------------------------


def credential_claims(licence: store.StoredLicence, licence_type: LicenceType) -> CredentialClaims:
    """The claims of the licence as it stands: its current term, nbf and exp at the start of the
    first day and of the day after the last in the jurisdiction's time zone, iat the licence's
    last change (so one state of the licence always gives the same claims)."""
    zone = ZoneInfo(pack_for(licence_type.jurisdiction).timezone)

    def start_of(day: date) -> int:
        # A midnight skipped by a clock change resolves (fold=0) to the change itself: the
        # first instant of that day.
        return int(datetime.combine(day, time(), tzinfo=zone).timestamp())

    term = licence.term
    return CredentialClaims(
        issuer=licence.issuer,
        holder=licence.holder,
        licence_type=licence.licence_type,
        number=licence.number,
        valid_from=term.valid_from,
        valid_until=term.expires_on,
        not_before=start_of(term.valid_from),
        expires_at=start_of(term.expires_on + timedelta(days=1)),
        issued_at=int(licence.updated_at.timestamp()),
        licence_id=licence.licence_id,
    )


async def _credential(request: Request, licence_id: str, principal: Principal) -> CredentialOut:
    request.app.state.check_rate(principal.subject)
    at = now_of(request)
    licence, _ = await to_thread.run_sync(
        lambda: read_with(
            request,
            lambda conn: visible_licence(conn, principal, licence_id, at=at, auditor_too=False),
        )
    )
    if licence.status is LicenceStatus.REVOKED:
        raise LicenceStateError("issue a credential for", status=licence.status.value)
    licence_type = type_of(licence_book(request), licence)
    keys = _keys(request)
    registrar: KeyRegistrar = request.app.state.issuer_registrar
    kid = await keys.ensure_registered(licence.issuer, registrar)
    signing_kid, private_key = keys.signing_key(licence.issuer)
    assert signing_kid == kid, "one credential key per agency"
    claims = credential_claims(licence, licence_type)
    token = encode_credential(claims, private_key=private_key)
    return CredentialOut(
        credential=token,
        kid=kid,
        issuer=licence.issuer,
        claims=_claims_view(claims, licence_type),
    )


@router.get(
    "/{licence_id}/credential",
    response_model=CredentialOut,
    responses=problem_responses(401, 404, 409, 429),
)
async def get_credential(
    request: Request, licence_id: LicenceId, principal: PrincipalDep
) -> JSONResponse:
    """The licence as a compact signed credential (docs/LICENCES.md), signed by the issuing
    agency's key, which is registered in the key registry first if it is not yet. For the
    holder, its representatives and the issuer; 409 licence-state-conflict for a revoked
    licence. Ed25519 signatures are deterministic (RFC 8032), so one state of the licence
    always gives the same credential, byte for byte; a status change or a renewal gives a
    new one (iat is the licence's last change)."""
    out = await _credential(request, licence_id, principal)
    return JSONResponse(out.model_dump(), headers=_NO_STORE)


@router.get(
    "/{licence_id}/credential.png",
    response_class=Response,
    responses={200: _PNG, **problem_responses(401, 404, 409, 429)},
)
async def get_credential_qr(
    request: Request, licence_id: LicenceId, principal: PrincipalDep
) -> Response:
    """The same credential as a QR code (PNG) holding exactly the compact JWS."""
    out = await _credential(request, licence_id, principal)
    png = await to_thread.run_sync(lambda: credential_qr_png(out.credential))
    return Response(png, media_type="image/png", headers=_NO_STORE)
