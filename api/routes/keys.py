"""The key registry as the signer sees it: challenges for proof of possession, own keys and
delegations. Changes to keys and delegations are signed transactions (POST /v1/transactions);
these routes only read, or issue a single-use challenge.

Object-level access: a caller reads only its own keys and the delegations it granted or holds;
another subject's kid answers 404 exactly as an unknown one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.auth import Principal, Role, require_principal, require_role
from api.database import read_only, run_in_transaction
from api.problems import Problem, problem_responses, problem_type
from signatures import registry_store
from signatures.keys import KeyRecord

router = APIRouter(prefix="/v1", tags=["keys"])
PrincipalDep = Annotated[Principal, Depends(require_principal)]
_KID = re.compile(r"[A-Za-z0-9_-]{43}")
_SIGNERS = (Role.CITIZEN, Role.BUSINESS, Role.AGENCY)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Challenge(BaseModel):
    challenge: str = Field(description="Put in the key.register payload; single use")
    subject: str = Field(description="The subject the challenge is for: the envelope's signer")
    expires_at: str


class KeyEventOut(BaseModel):
    kind: str
    at: str
    reason: str | None
    ledger_index: int | None


class KeyOut(BaseModel):
    kid: str
    subject: str
    alg: str
    jwk: dict[str, str]
    assurance: str
    status: str = Field(description="The key's state now")
    not_before: str
    not_after: str | None
    events: list[KeyEventOut]


class DelegationOut(BaseModel):
    id: str
    grantor: str
    delegate: str
    types: list[str]
    granted_at: str
    not_after: str
    revoked_at: str | None
    ledger_index: int | None


@contextmanager
def _reading(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.connect() as conn:
        yield read_only(conn)


def _key(record: KeyRecord, now: datetime) -> dict[str, Any]:
    return {
        "kid": record.kid,
        "subject": record.subject,
        "alg": record.jwk.alg,
        "jwk": record.jwk.to_dict(),
        "assurance": record.assurance.value,
        "status": record.status_at(now).value,
        "not_before": _iso(record.not_before),
        "not_after": _iso(record.not_after),
        "events": [
            {
                "kind": e.kind.value,
                "at": _iso(e.at),
                "reason": None if e.reason is None else e.reason.value,
                "ledger_index": e.ledger_index,
            }
            for e in record.events
        ],
    }


@router.post(
    "/keys/challenges",
    status_code=201,
    response_model=Challenge,
    responses=problem_responses(401, 403, 413, 429),
)
def post_challenge(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """A fresh single-use challenge for registering a key of the caller's subject."""
    require_role(principal, *_SIGNERS)
    request.app.state.check_rate(principal.subject)
    now = datetime.now(UTC)
    challenge = run_in_transaction(
        request.app.state.engine,
        lambda conn: registry_store.issue_challenge(conn, subject=principal.subject, now=now),
    )
    return {
        "challenge": challenge.value,
        "subject": challenge.subject,
        "expires_at": _iso(challenge.expires_at),
    }


@router.get("/keys", response_model=list[KeyOut], responses=problem_responses(401, 429))
def list_keys(request: Request, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The caller's keys, newest first, each with its state now and its history."""
    request.app.state.check_rate(principal.subject)
    now = datetime.now(UTC)
    with _reading(request) as conn:
        records = registry_store.keys_of_subject(conn, principal.subject)
    return [_key(r, now) for r in records]


@router.get("/keys/{kid}", response_model=KeyOut, responses=problem_responses(401, 404, 429))
def get_key(
    request: Request,
    principal: PrincipalDep,
    kid: Annotated[str, Path(max_length=43, description="RFC 7638 thumbprint")],
) -> dict[str, Any]:
    """One of the caller's keys."""
    request.app.state.check_rate(principal.subject)
    record = None
    if _KID.fullmatch(kid):
        with _reading(request) as conn:
            record = registry_store.load_key(conn, kid)
    if record is None or record.subject != principal.subject:
        raise Problem(404, problem_type("key-not-found"), "No such key")
    return _key(record, datetime.now(UTC))


@router.get(
    "/delegations", response_model=list[DelegationOut], responses=problem_responses(401, 429)
)
def list_delegations(request: Request, principal: PrincipalDep) -> list[dict[str, Any]]:
    """Delegations the caller granted or holds."""
    request.app.state.check_rate(principal.subject)
    with _reading(request) as conn:
        found = registry_store.delegations_of(conn, principal.subject)
    return [
        {
            "id": delegation_id,
            "grantor": d.grantor,
            "delegate": d.delegate,
            "types": sorted(d.types),
            "granted_at": _iso(d.granted_at),
            "not_after": _iso(d.not_after),
            "revoked_at": _iso(d.revoked_at),
            "ledger_index": d.ledger_index,
        }
        for delegation_id, d in found
    ]
