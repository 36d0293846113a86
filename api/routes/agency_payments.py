"""What agencies run: their webhook endpoints, the delivery log with manual replay, and the
daily reconciliation report (agencies: their own accounts; admins: everything).

Object-level access: an agency reads and changes only its own endpoints and deliveries; another
agency's id answers 404 exactly as a missing one.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from api.auth import Principal, Role, require_principal, require_role
from api.database import read_only, run_in_transaction
from api.payments.runtime import PaymentsRuntime
from api.problems import Problem, problem_from_error, problem_responses, problem_type
from payments import journal_store, outbound_store
from payments.errors import DeliveryNotFoundError, PaymentFieldError, WebhookEndpointNotFoundError
from payments.journal import AccountKind, account_id
from payments.reconciliation import filter_for_agency, reconcile, report_csv, report_json
from payments.webhook_schedule import Delivery, delivery_log_json
from payments.webhook_sender import replay_delivery
from signatures.jwk import b64url_encode

router = APIRouter(prefix="/v1", tags=["agency payments"])
PrincipalDep = Annotated[Principal, Depends(require_principal)]
T = TypeVar("T")

SECRET_BYTES = 32  # a new HMAC secret: 256 random bits, shown once
MAX_DELIVERY_PAGE = outbound_store.MAX_LIST_LIMIT
_ENDPOINT_ID = re.compile(r"we_[0-9a-f]{32}")
_DELIVERY_ID = re.compile(r"dlv_[0-9a-f]{24}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _runtime(request: Request) -> PaymentsRuntime:
    runtime: PaymentsRuntime = request.app.state.payments
    return runtime


def _agency(request: Request, principal: Principal) -> str:
    request.app.state.check_rate(principal.subject)
    require_role(principal, Role.AGENCY)
    if not principal.subject.startswith("agency:"):
        raise Problem(403, problem_type("forbidden"), "Forbidden", "An agency subject is needed.")
    return principal.subject


def _read(request: Request, work: Callable[[Connection], T]) -> T:
    with _runtime(request).engine.connect() as conn:
        return work(read_only(conn))


def _write(request: Request, work: Callable[[Connection], T]) -> T:
    return run_in_transaction(_runtime(request).engine, work)


def _utc(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _endpoint_json(endpoint: outbound_store.WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.endpoint_id,
        "url": endpoint.url,
        "ed25519": endpoint.ed25519,
        "active": endpoint.active,
        "secrets": len(endpoint.hmac_secrets),
        "created_at": _utc(endpoint.created_at),
    }


# --- webhook endpoints ---------------------------------------------------------------------------


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=outbound_store.MAX_URL_CHARS)
    ed25519: bool = Field(default=True, description="Also sign with Pishkhan-Signature-Ed25519")


def _own_endpoint(
    conn: Connection, endpoint_id: str, agency: str
) -> outbound_store.WebhookEndpoint:
    found = None
    if _ENDPOINT_ID.fullmatch(endpoint_id):
        found = outbound_store.get_endpoint(conn, endpoint_id)
    if found is None or found.agency != agency:
        raise WebhookEndpointNotFoundError(endpoint_id="(not shown)")
    return found


@router.post("/webhook-endpoints", status_code=201, responses=problem_responses(400, 401, 403, 429))
def create_endpoint(request: Request, body: EndpointIn, principal: PrincipalDep) -> dict[str, Any]:
    """Register a URL for the agency's payment events. The answer carries the HMAC secret,
    once: store it, it is never shown again (rotate to get a new one)."""
    agency = _agency(request, principal)
    settings = request.app.state.settings
    try:
        url = outbound_store.check_endpoint_url(
            body.url, allow_loopback_http=bool(settings.webhook_allow_loopback_http)
        )
    except PaymentFieldError as error:
        raise _field_problem(error) from None
    secret = secrets.token_bytes(SECRET_BYTES)
    endpoint = outbound_store.WebhookEndpoint(
        endpoint_id=f"we_{uuid.uuid4().hex}",
        agency=agency,
        url=url,
        hmac_secrets=(secret,),
        ed25519=body.ed25519,
        active=True,
        created_at=datetime.now(UTC),
    )
    _write(request, lambda conn: outbound_store.insert_endpoint(conn, endpoint))
    return {**_endpoint_json(endpoint), "secret": b64url_encode(secret)}


def _field_problem(error: PaymentFieldError) -> Problem:
    return problem_from_error(error)


@router.get("/webhook-endpoints", responses=problem_responses(401, 403, 429))
def list_endpoints(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    agency = _agency(request, principal)
    rows = _read(request, lambda conn: outbound_store.list_endpoints(conn, agency=agency))
    return {"items": [_endpoint_json(e) for e in rows]}


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret", responses=problem_responses(401, 403, 404)
)
def rotate_secret(
    request: Request, endpoint_id: Annotated[str, Path(max_length=64)], principal: PrincipalDep
) -> dict[str, Any]:
    """A new secret signs from now on; the previous one still signs beside it (several v1
    signatures), so receivers switch without missing an event. Older ones are dropped."""
    agency = _agency(request, principal)
    secret = secrets.token_bytes(SECRET_BYTES)

    def work(conn: Connection) -> outbound_store.WebhookEndpoint:
        found = _own_endpoint(conn, endpoint_id, agency)
        kept = (secret, found.hmac_secrets[0])
        outbound_store.set_endpoint_secrets(conn, endpoint_id, hmac_secrets=kept)
        return found

    found = _write(request, work)
    return {**_endpoint_json(found), "secrets": 2, "secret": b64url_encode(secret)}


@router.delete(
    "/webhook-endpoints/{endpoint_id}", status_code=204, responses=problem_responses(401, 403, 404)
)
def deactivate_endpoint(
    request: Request, endpoint_id: Annotated[str, Path(max_length=64)], principal: PrincipalDep
) -> Response:
    agency = _agency(request, principal)

    def work(conn: Connection) -> None:
        _own_endpoint(conn, endpoint_id, agency)
        outbound_store.deactivate_endpoint(conn, endpoint_id)

    _write(request, work)
    return Response(status_code=204)


# --- deliveries ----------------------------------------------------------------------------------


def _delivery_json(delivery: Delivery) -> dict[str, Any]:
    return dict(delivery_log_json(delivery))


def _own_delivery(conn: Connection, delivery_id: str, agency: str) -> None:
    owner = None
    if _DELIVERY_ID.fullmatch(delivery_id):
        owner = outbound_store.delivery_agency(conn, delivery_id)
    if owner != agency:
        raise DeliveryNotFoundError(delivery_id="(not shown)")


@router.get("/webhook-deliveries", responses=problem_responses(400, 401, 403, 429))
def list_deliveries(
    request: Request,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_DELIVERY_PAGE)] = 20,
) -> dict[str, Any]:
    """The agency's deliveries, newest first, each with every attempt."""
    agency = _agency(request, principal)
    rows = _read(
        request, lambda conn: outbound_store.list_deliveries(conn, agency=agency, limit=limit)
    )
    return {"items": [_delivery_json(d) for d in rows]}


@router.get("/webhook-deliveries/{delivery_id}", responses=problem_responses(401, 403, 404))
def get_delivery(
    request: Request, delivery_id: Annotated[str, Path(max_length=64)], principal: PrincipalDep
) -> dict[str, Any]:
    agency = _agency(request, principal)

    def work(conn: Connection) -> Delivery | None:
        _own_delivery(conn, delivery_id, agency)
        return outbound_store.get_delivery(conn, delivery_id)

    found = _read(request, work)
    assert found is not None
    return _delivery_json(found)


@router.post(
    "/webhook-deliveries/{delivery_id}/replay", responses=problem_responses(401, 403, 404, 429)
)
def replay(
    request: Request, delivery_id: Annotated[str, Path(max_length=64)], principal: PrincipalDep
) -> dict[str, Any]:
    """Send the event again now (any state; the log keeps every earlier attempt)."""
    agency = _agency(request, principal)

    def work(conn: Connection) -> Delivery:
        _own_delivery(conn, delivery_id, agency)
        return replay_delivery(conn, delivery_id, at=datetime.now(UTC))

    return _delivery_json(_write(request, work))


# --- reconciliation ------------------------------------------------------------------------------


@router.get(
    "/reconciliation/{provider}/{day}",
    responses={
        200: {"content": {"application/json": {}, "text/csv": {}}},
        **problem_responses(400, 401, 403, 404),
    },
)
def reconciliation(
    request: Request,
    provider: Annotated[str, Path(max_length=32)],
    day: Annotated[str, Path(max_length=10, description="YYYY-MM-DD, a UTC day")],
    principal: PrincipalDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """The provider's settlements of the day tied to the journal's entries, every mismatch
    listed (docs/PAYMENTS.md, "Reconciliation"). Admins see every line; an agency, the lines
    touching its own revenue and refund accounts."""
    request.app.state.check_rate(principal.subject)
    require_role(principal, Role.ADMIN, Role.AGENCY)
    runtime = _runtime(request)
    if provider not in runtime.providers:
        raise Problem(404, problem_type("provider-not-found"), "No such provider")
    on = _day(day)
    settlements = runtime.providers[provider].settlements(on)
    booked = _read(
        request, lambda conn: journal_store.booked_movements(conn, provider=provider, day=on)
    )
    report = reconcile(day=on, provider=provider, settlements=settlements, booked=booked)
    if not principal.has_role(Role.ADMIN):
        owner = _agency(request, principal).removeprefix("agency:")
        accounts = [
            account_id(AccountKind.AGENCY_REVENUE, owner),
            account_id(AccountKind.AGENCY_REFUNDS, owner),
        ]
        report = filter_for_agency(report, accounts)
    if format == "csv":
        return Response(report_csv(report), media_type="text/csv; charset=utf-8")
    return JSONResponse(report_json(report))


def _day(text: str) -> date:
    invalid = Problem(400, problem_type("invalid-day"), "Invalid day", "a day is YYYY-MM-DD")
    if not _DAY.fullmatch(text):
        raise invalid
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise invalid from None
