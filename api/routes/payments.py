"""Payables and payments as citizens, businesses and agencies see them; the payer's 3-D Secure
confirmation and cancellation; inbound provider webhooks.

Issuing bills and fees, paying and refunding are signed transactions (POST /v1/transactions,
docs/PAYMENTS.md). Object-level access on every route: a payer sees the payables owed by its own
subject and the payments it made; an agency sees the payables it issued and the payments of
them; any other id answers 404 exactly as a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from api.auth import Principal, Role, require_principal, require_role
from api.database import read_only
from api.payments.runtime import PaymentsRuntime
from api.problems import Problem, problem_responses, problem_type
from api.routes.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_CHARS,
    MAX_PAGE_SIZE,
    UUID4,
    Page,
    page_of,
    read_cursor,
)
from payments import intent_store, payable_store, payment_flow
from payments.bill_ids import verify_bill_payment
from payments.errors import (
    PayableNotFoundError,
    PaymentNotFoundError,
    UnsupportedWebhookEventError,
)
from payments.refund_store import refunds_of_intent

router = APIRouter(prefix="/v1", tags=["payments"])
PrincipalDep = Annotated[Principal, Depends(require_principal)]
T = TypeVar("T")

_VIEWERS = (Role.CITIZEN, Role.BUSINESS, Role.AGENCY)
Id = Annotated[str, Path(description="A lowercase UUID", max_length=36)]
_JSON = {"content": {"application/json": {"schema": {"type": "object"}}}}


def _runtime(request: Request) -> PaymentsRuntime:
    runtime: PaymentsRuntime = request.app.state.payments
    return runtime


def _read(request: Request, work: Callable[[Connection], T]) -> T:
    with _runtime(request).engine.connect() as conn:
        return work(read_only(conn))


def _viewer(request: Request, principal: Principal) -> str:
    request.app.state.check_rate(principal.subject)
    require_role(principal, *_VIEWERS)
    return principal.subject


def _is_agency(principal: Principal) -> bool:
    return principal.has_role(Role.AGENCY) and principal.subject.startswith("agency:")


# --- payables ------------------------------------------------------------------------------------


@router.get("/payables", response_model=Page, responses=problem_responses(400, 401, 403, 429))
def list_payables(
    request: Request,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """What the caller owes (citizens, businesses) or issued (agencies), newest first."""
    subject = _viewer(request, principal)
    before = read_cursor(cursor)
    agency = _is_agency(principal)
    rows = _read(
        request,
        lambda conn: payable_store.list_payables(
            conn,
            debtor=None if agency else subject,
            issuer=subject if agency else None,
            before=before,
            limit=limit,
        ),
    )
    return page_of(
        [payment_flow.payable_json(r) for r in rows],
        [(r.issued_at, r.payable.payable_id) for r in rows],
        limit=limit,
    )


def _visible_payable(subject: str, stored: payable_store.StoredPayable | None) -> bool:
    return stored is not None and subject in (stored.payable.debtor, stored.payable.issuer)


@router.get("/payables/lookup", responses={200: _JSON, **problem_responses(400, 401, 404, 429)})
def lookup_bill(
    request: Request,
    principal: PrincipalDep,
    bill_id: Annotated[str, Query(max_length=26)],
    payment_id: Annotated[str, Query(max_length=26)],
) -> dict[str, Any]:
    """A bill by its bill ID and payment ID, as a bank counter sees it before taking payment:
    amount, status, issuer and due date, never who owes it. Wrong check digits are 400 naming
    which; a well-formed pair that was never issued is 404."""
    _viewer(request, principal)
    bill = verify_bill_payment(
        bill_id,
        payment_id,
        service_types=_runtime(request).config.service_types,
        bill_pointer="bill_id",
        payment_pointer="payment_id",
    )
    stored = _read(
        request,
        lambda conn: payable_store.find_bill(
            conn, bill_id=bill.bill.text, payment_id=bill.payment.text
        ),
    )
    if stored is None:
        raise PayableNotFoundError()
    view = payment_flow.payable_json(stored)
    keep = ("payable_id", "kind", "issuer", "amount", "due_on", "status", "paid_minor")
    return {name: view[name] for name in (*keep, "bill_id", "payment_id")}


@router.get("/payables/{payable_id}", responses={200: _JSON, **problem_responses(401, 404, 429)})
def get_payable(request: Request, payable_id: Id, principal: PrincipalDep) -> dict[str, Any]:
    """One payable the caller owes or issued, with its payments."""
    subject = _viewer(request, principal)
    if not UUID4.fullmatch(payable_id):
        raise PayableNotFoundError()

    def work(conn: Connection) -> dict[str, Any]:
        stored = payable_store.get_payable(conn, payable_id)
        if stored is None or not _visible_payable(subject, stored):
            raise PayableNotFoundError()
        intents = intent_store.list_intents(conn, payable_ids=[payable_id], limit=MAX_PAGE_SIZE)
        mine = [i for i in intents if subject in (i.payer, stored.payable.issuer)]
        return {
            **payment_flow.payable_json(stored),
            "payments": [payment_flow.intent_json(i) for i in mine],
        }

    return _read(request, work)


# --- payments ------------------------------------------------------------------------------------


@router.get("/payments", response_model=Page, responses=problem_responses(400, 401, 403, 429))
def list_payments(
    request: Request,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """The payments the caller made (payers) or received (agencies), newest first."""
    subject = _viewer(request, principal)
    before = read_cursor(cursor)
    agency = _is_agency(principal)
    rows = _read(
        request,
        lambda conn: intent_store.list_intents(
            conn,
            payer=None if agency else subject,
            issuer=subject if agency else None,
            before=before,
            limit=limit,
        ),
    )
    return page_of(
        [payment_flow.intent_json(r) for r in rows],
        [(r.intent.created_at, r.intent.intent_id) for r in rows],
        limit=limit,
    )


def _payment_view(conn: Connection, intent_id: str, subject: str) -> dict[str, Any]:
    stored = intent_store.get_intent(conn, intent_id)
    payable = None if stored is None else payable_store.get_payable(conn, stored.intent.payable_id)
    if stored is None or payable is None or subject not in (stored.payer, payable.payable.issuer):
        raise PaymentNotFoundError()
    events = intent_store.intent_events(conn, intent_id)
    return {
        **payment_flow.intent_json(stored),
        "events": [
            {
                "sequence": e.sequence,
                "from": None if e.from_state is None else e.from_state.value,
                "to": e.to_state.value,
                "cause": e.cause.value,
                "at": e.at.isoformat().replace("+00:00", "Z"),
                "detail": e.detail,
            }
            for e in events
        ],
        "refunds": [payment_flow.refund_json(r) for r in refunds_of_intent(conn, intent_id)],
    }


@router.get("/payments/{payment}", responses={200: _JSON, **problem_responses(401, 404, 429)})
def get_payment(request: Request, payment: Id, principal: PrincipalDep) -> dict[str, Any]:
    """One payment: its state, every change of state with its cause, and its refunds. The
    transaction that started it (GET /v1/transactions/{payment}) has the signed receipt."""
    subject = _viewer(request, principal)
    if not UUID4.fullmatch(payment):
        raise PaymentNotFoundError()
    return _read(request, lambda conn: _payment_view(conn, payment, subject))


def _payer_action(
    request: Request, payment: str, principal: Principal, action: str
) -> JSONResponse:
    subject = _viewer(request, principal)
    if not UUID4.fullmatch(payment):
        raise PaymentNotFoundError()
    runtime = _runtime(request)
    if action == "confirm":
        runtime.confirm(payment, payer=subject)
    else:
        runtime.cancel(payment, payer=subject)
    return JSONResponse(_read(request, lambda conn: _payment_view(conn, payment, subject)))


@router.post(
    "/payments/{payment}/confirm", responses={200: _JSON, **problem_responses(401, 404, 409, 502)}
)
def confirm_payment(request: Request, payment: Id, principal: PrincipalDep) -> JSONResponse:
    """The payer passed the provider's challenge (3-D Secure): the provider goes on."""
    return _payer_action(request, payment, principal, "confirm")


@router.post(
    "/payments/{payment}/cancel", responses={200: _JSON, **problem_responses(401, 404, 409, 502)}
)
def cancel_payment(request: Request, payment: Id, principal: PrincipalDep) -> JSONResponse:
    """The payer gives up a payment not yet charged to the end; the payable is free again."""
    return _payer_action(request, payment, principal, "cancel")


# --- inbound provider webhooks -------------------------------------------------------------------


@router.post(
    "/providers/{provider}/webhooks",
    tags=["providers"],
    responses={200: _JSON, **problem_responses(400, 404, 409, 413)},
)
async def provider_webhook(request: Request, provider: str) -> dict[str, str]:
    """A provider's signed event, verified on the exact bytes received (never re-serialised).

    200 with the outcome (applied, unchanged, duplicate, stale, refused, ignored); 400 for a
    signature that does not verify; 409 for a charge no payment has yet, so the provider
    delivers it again later.
    """
    runtime = _runtime(request)
    if provider not in runtime.providers:
        raise Problem(404, problem_type("provider-not-found"), "No such provider")
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        outcome = await to_thread.run_sync(runtime.webhook, provider, body, headers)
    except UnsupportedWebhookEventError:
        outcome = "ignored"
    return {"outcome": outcome}
