"""POST /v1/transactions (the pipeline) and the caller's own transactions and receipts.

Object-level access on every route: a caller sees the transactions it signed or that were
signed for it (`owner`); any other id answers 404 exactly as a missing one.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import Principal, require_principal
from api.problems import Problem, problem_responses, problem_type
from api.transactions.service import TransactionService, not_found
from api.transactions.store import TxRow
from signatures.canonical import MAX_DOCUMENT_BYTES, parse_json

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_CURSOR = re.compile(r"[1-9][0-9]{0,18}")

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])

PrincipalDep = Annotated[Principal, Depends(require_principal)]
TxId = Annotated[str, Path(description="Transaction id (a lowercase UUID)", max_length=36)]

_RECEIPT = {
    "description": "The receipt: a self-contained JSON document (docs/FORMATS.md)",
    "content": {"application/json": {"schema": {"type": "object"}}},
}
_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["envelope", "signature"],
                "additionalProperties": False,
                "properties": {
                    "envelope": {"type": "object", "description": "docs/ENVELOPE.md"},
                    "signature": {"type": "string", "description": "compact detached JWS"},
                },
            }
        }
    },
}


def _service(request: Request) -> TransactionService:
    service: TransactionService = request.app.state.transactions
    return service


class TransactionSummary(BaseModel):
    id: str
    type: str
    status: str = Field(description="accepted: applied and recorded in the ledger")
    accepted_at: str
    leaf_index: int
    signer: str
    on_behalf_of: str | None


class TransactionDetail(TransactionSummary):
    kid: str
    envelope: dict[str, Any]
    result: dict[str, Any]


class TransactionPage(BaseModel):
    items: list[TransactionSummary]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page")


def _summary(row: TxRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "status": "accepted",
        "accepted_at": row.accepted_at.isoformat().replace("+00:00", "Z"),
        "leaf_index": row.leaf_index,
        "signer": row.signer,
        "on_behalf_of": row.on_behalf_of,
    }


@router.post(
    "",
    status_code=201,
    openapi_extra={"requestBody": _BODY},
    responses={201: _RECEIPT, **problem_responses(400, 401, 403, 409, 413, 415, 429)},
)
async def post_transaction(
    request: Request,
    principal: PrincipalDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Submit a signed transaction; 201 with its receipt (the same receipt for a retry with the
    same Idempotency-Key and body)."""
    request.app.state.check_rate(principal.subject)
    body = await request.body()
    submitted = await _service(request).submit(
        body, principal=principal, idempotency_key=idempotency_key
    )
    headers = {"Location": f"/v1/transactions/{submitted.tx_id}"}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(submitted.receipt, status_code=201, headers=headers)


@router.get("", response_model=TransactionPage, responses=problem_responses(400, 401, 429))
def list_transactions(
    request: Request,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=19)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """The caller's transactions, newest first."""
    request.app.state.check_rate(principal.subject)
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        raise Problem(
            400, problem_type("invalid-cursor"), "Invalid cursor", "use next_cursor as given"
        )
    before = None if cursor is None else int(cursor)
    rows = _service(request).list(subject=principal.subject, before_index=before, limit=limit)
    more = len(rows) == limit and rows[-1].leaf_index > 0
    return {
        "items": [_summary(r) for r in rows],
        "next_cursor": str(rows[-1].leaf_index) if more else None,
    }


def _visible(request: Request, tx_id: str, principal: Principal) -> TxRow:
    request.app.state.check_rate(principal.subject)
    if not _UUID.fullmatch(tx_id):
        raise not_found()
    return _service(request).get(tx_id, subject=principal.subject)


@router.get(
    "/{tx_id}", response_model=TransactionDetail, responses=problem_responses(401, 404, 429)
)
def get_transaction(request: Request, tx_id: TxId, principal: PrincipalDep) -> dict[str, Any]:
    """One of the caller's transactions: status, result and ledger index."""
    row = _visible(request, tx_id, principal)
    return {
        **_summary(row),
        "kid": row.kid,
        "envelope": parse_json(row.envelope.encode(), max_bytes=MAX_DOCUMENT_BYTES),
        "result": parse_json(row.result.encode(), max_bytes=MAX_DOCUMENT_BYTES),
    }


@router.get("/{tx_id}/receipt", responses={200: _RECEIPT, **problem_responses(401, 404, 429)})
def get_receipt(request: Request, tx_id: TxId, principal: PrincipalDep) -> JSONResponse:
    """The transaction's receipt, proved against the newest checkpoint."""
    _visible(request, tx_id, principal)
    return JSONResponse(_service(request).receipt(tx_id, subject=principal.subject))
