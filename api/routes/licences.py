"""Licences as holders, their representatives, issuing agencies and third parties see them.

Issuing, suspending, reinstating, revoking and renewing are signed transactions (POST
/v1/transactions, docs/LICENCES.md). Object-level access on every route that names a licence:
its holder, its issuing agency, and a representative holding a valid delegation from the holder
for licence.renew see it; an auditor sees its place in the ledger without personal data; any
other id answers 404 exactly as a missing one.

Public, without a token (like the ledger and /v1/tax/packs): the licence types, and (in
api/routes/licence_credentials.py, with the credentials themselves) the issuing agencies'
credential keys and the online check of a credential.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy import Connection

from api.auth import Principal, Role, require_principal, require_role
from api.database import read_only
from api.problems import problem_responses
from api.routes.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_CHARS,
    MAX_PAGE_SIZE,
    UUID4,
    Page,
    page_of,
    read_cursor,
)
from licences import renewal_store, store
from licences.errors import LicenceNotFoundError
from licences.renewals import renewal_json
from licences.terms import dual, local_date
from licences.types import LicenceType, LicenceTypeBook, licence_type_json
from payments import payable_store
from signatures.registry_store import find_valid_delegation

router = APIRouter(prefix="/v1/licences", tags=["licences"])
PrincipalDep = Annotated[Principal, Depends(require_principal)]
T = TypeVar("T")
LicenceId = Annotated[str, Path(description="A licence id (its licence.issue transaction's id)")]
_JSON = {"content": {"application/json": {"schema": {"type": "object"}}}}
# What a representative must hold from the holder to see its licences: the right to renew them.
REPRESENTATIVE_TYPE = "licence.renew"


class LicenceTypeList(BaseModel):
    items: list[dict[str, Any]]


# --- shared --------------------------------------------------------------------------------------


def read_with(request: Request, work: Callable[[Connection], T]) -> T:
    """work(conn) on a read-only connection of the app's engine."""
    with request.app.state.engine.connect() as conn:
        return work(read_only(conn))


def now_of(request: Request) -> datetime:
    """The app's clock (tests move app.state.clock)."""
    clock: Callable[[], datetime] = getattr(request.app.state, "clock", lambda: datetime.now(UTC))
    return clock()


def licence_book(request: Request) -> LicenceTypeBook:
    """The licence types the app's transaction types were built over (app.state)."""
    book: LicenceTypeBook = request.app.state.licence_types
    return book


def type_of(book: LicenceTypeBook, licence: store.StoredLicence) -> LicenceType:
    """The stored licence's type; a type is never removed while licences of it exist."""
    found = book.get(licence.licence_type)
    assert found is not None, "a stored licence's type is in the book"
    return found


def _relation(
    conn: Connection, principal: Principal, licence: store.StoredLicence, *, at: datetime
) -> str | None:
    """holder | issuer | representative | auditor, or None: the caller may not know of it.
    Each needs its role: an auditor's free-text subject must never pass for a holder's."""
    subject = principal.subject
    if subject == licence.holder and principal.has_role(Role.CITIZEN, Role.BUSINESS):
        return "holder"
    if subject == licence.issuer and principal.has_role(Role.AGENCY):
        return "issuer"
    if principal.has_role(Role.CITIZEN, Role.BUSINESS) and find_valid_delegation(
        conn, grantor=licence.holder, delegate=subject, transaction_type=REPRESENTATIVE_TYPE, at=at
    ):
        return "representative"
    if principal.has_role(Role.AUDITOR):
        return "auditor"
    return None


def visible_licence(
    conn: Connection, principal: Principal, licence_id: str, *, at: datetime, auditor_too: bool
) -> tuple[store.StoredLicence, str]:
    """The licence and the caller's relation to it. Raises LicenceNotFoundError (404) for a
    missing one and for one the caller may not see, alike."""
    licence = store.get_licence(conn, licence_id) if UUID4.fullmatch(licence_id) else None
    relation = None if licence is None else _relation(conn, principal, licence, at=at)
    if licence is None or relation is None or (relation == "auditor" and not auditor_too):
        raise LicenceNotFoundError(licence_id)
    return licence, relation


# --- public: the licence types (declared before /{licence_id}) -------------------------------


@router.get("/types", response_model=LicenceTypeList, responses=problem_responses())
def list_licence_types(request: Request) -> dict[str, Any]:
    """Every licence type: issuing agency, validity, renewal window, fee service, the rules a
    renewal is checked against, and the type's legal source and its status. Public."""
    return {"items": [licence_type_json(t) for t in licence_book(request).types]}


# --- the caller's licences -----------------------------------------------------------------------


@router.get("", response_model=Page, responses=problem_responses(400, 401, 403, 429))
def list_licences(
    request: Request,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """The licences the caller holds (citizens, businesses) or issued (agencies), newest first,
    each with its status today, its term and its renewal window."""
    request.app.state.check_rate(principal.subject)
    require_role(principal, Role.CITIZEN, Role.BUSINESS, Role.AGENCY)
    before = read_cursor(cursor)
    agency = principal.has_role(Role.AGENCY)
    subject = principal.subject
    rows = read_with(
        request,
        lambda conn: store.list_licences(
            conn,
            holder=None if agency else subject,
            issuer=subject if agency else None,
            before=before,
            limit=limit,
        ),
    )
    book, at = licence_book(request), now_of(request)
    items = []
    for row in rows:
        licence_type = type_of(book, row)
        items.append(store.licence_json(row, licence_type, today=local_date(licence_type, at)))
    return page_of(items, [(r.issued_at, r.licence_id) for r in rows], limit=limit)


@router.get("/{licence_id}", responses={200: _JSON, **problem_responses(401, 404, 429)})
def get_licence(request: Request, licence_id: LicenceId, principal: PrincipalDep) -> dict[str, Any]:
    """One licence: its status today, term and renewal window, its history, its renewals and
    the renewal waiting for its fee (payable id and pay-by day), dates in both calendars where
    the jurisdiction uses Solar Hijri. An auditor sees its ledger places only; anyone but the
    holder, its representatives and the issuer gets 404."""
    request.app.state.check_rate(principal.subject)
    at = now_of(request)

    def work(conn: Connection) -> dict[str, Any]:
        licence, relation = visible_licence(conn, principal, licence_id, at=at, auditor_too=True)
        if relation == "auditor":
            return _auditor_view(conn, licence)
        return _full_view(conn, licence, type_of(licence_book(request), licence), at=at)

    return read_with(request, work)


def _full_view(
    conn: Connection, licence: store.StoredLicence, licence_type: LicenceType, *, at: datetime
) -> dict[str, Any]:
    view: dict[str, Any] = store.licence_json(
        licence, licence_type, today=local_date(licence_type, at)
    )
    view["events"] = [store.event_json(e) for e in store.list_events(conn, licence.licence_id)]
    renewals = renewal_store.list_renewals(conn, licence.licence_id)
    view["renewals"] = [renewal_json(r, licence_type) for r in renewals]
    view["pending_renewal"] = None
    pending = renewal_store.pending_renewal(conn, licence.licence_id)
    if pending is not None and pending.payable_id is not None:
        payable = payable_store.get_payable(conn, pending.payable_id)
        assert payable is not None, "a renewal awaiting payment has its fee payable"
        view["pending_renewal"] = {
            "renewal_id": pending.renewal_id,
            "payable_id": pending.payable_id,
            "pay_by": dual(licence_type, payable.payable.due_on),
        }
    return view


def _auditor_view(conn: Connection, licence: store.StoredLicence) -> dict[str, Any]:
    """Where the licence's transactions are in the ledger, and what kind they were: no holder,
    no number, no dates of the term."""
    return {
        "licence_id": licence.licence_id,
        "licence_type": licence.licence_type,
        "issuer": licence.issuer,
        "ledger_index": licence.ledger_index,
        "events": [
            {"seq": e.seq, "kind": e.kind, "tx_id": e.tx_id}
            for e in store.list_events(conn, licence.licence_id)
        ],
        "renewals": [
            {"renewal_id": r.renewal_id, "status": r.status, "ledger_index": r.ledger_index}
            for r in renewal_store.list_renewals(conn, licence.licence_id)
        ],
    }
