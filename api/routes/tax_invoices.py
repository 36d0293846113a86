"""Electronic invoices as their seller and their buyer see them: a list of the caller's own and
one invoice with its chain (the original, its corrections, returns and cancellation).

Submitting and answering are signed transactions (POST /v1/transactions with tax.invoice.submit
or tax.invoice.respond, docs/EINVOICE.md). Object-level access: an invoice is shown to its seller
and its buyer only; any other tax ID answers 404 exactly as a missing one. The buyer's decision
is shown as it stands today in the pack's time zone: a pending invoice whose window has closed
is `deemed_accepted`.

The list covers one jurisdiction: `jurisdiction`, else the caller's own (ir for ir-nid and
ir-lid, ee for ee-ik and ee-rg). `period` is a label of that pack's calendar: a year "1403", a
quarter "1403-Q2" or a month "1403-05" (issue days, inclusive).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import Connection

from api.auth import Principal, Role, require_principal, require_role
from api.problems import FieldError, Problem, problem_responses, problem_type
from api.routes import paging
from api.routes.paging import DEFAULT_PAGE_SIZE, MAX_CURSOR_CHARS, MAX_PAGE_SIZE, Page, page_of
from api.routes.tax import read_with, today_for
from signatures.envelope import MAX_SUBJECT_CHARS, parse_subject
from signatures.errors import SubjectError
from tax import invoice_store
from tax.calendar import dual_date, parse_period
from tax.errors import TaxFieldError
from tax.invoice_store import LIST_STATUSES, ListFilter, Side, StoredInvoice, decision_on
from tax.rulepack import RulePack, shipped_packs

router = APIRouter(prefix="/v1/tax", tags=["tax"])
PrincipalDep = Annotated[Principal, Depends(require_principal)]
T = TypeVar("T")
_JSON = {"content": {"application/json": {"schema": {"type": "object"}}}}
_PARTIES = (Role.CITIZEN, Role.BUSINESS)
TAX_ID_CHARS = 22
_TAX_ID = re.compile(f"[0-9A-Z]{{{TAX_ID_CHARS}}}")
_QUARTER = re.compile(r"([0-9]{4})-Q([1-4])")
MONTHS_PER_QUARTER = 3
MAX_PERIOD_CHARS = len("YYYY-Qn")
STATUS_PATTERN = "^(" + "|".join(LIST_STATUSES) + ")$"
ROLE_PATTERN = f"^({Side.SELLER}|{Side.BUYER})$"


def _party(request: Request, principal: Principal) -> str:
    request.app.state.check_rate(principal.subject)
    require_role(principal, *_PARTIES)
    return principal.subject


def _invalid(field: str, rule: str, message: str) -> Problem:
    """400 invalid-field naming one query parameter (as api.problems renders TaxFieldError)."""
    errors = (FieldError(field=field, rule=rule, message=message),)
    return Problem(400, problem_type("invalid-field"), "A field is not valid", message, errors)


def _pack_of(jurisdiction: str | None, party: str) -> RulePack:
    """The pack named, else the one of the caller's own jurisdiction. Raises Problem 400."""
    code = jurisdiction or parse_subject(party).kind.value.split("-")[0]
    pack = shipped_packs().get(code)
    if pack is None:
        raise _invalid("jurisdiction", "unknown_jurisdiction", "no rule pack is shipped for it")
    return pack


def period_days(pack: RulePack, label: str) -> tuple[date, date]:
    """The first and last day of a year, quarter or month label of the pack's calendar.

    Raises Problem 400 (field `period`, rule invalid_period) for anything else."""
    quarter = _QUARTER.fullmatch(label)
    try:
        if quarter is not None:
            year, n = quarter.group(1), int(quarter.group(2))
            first_month = (n - 1) * MONTHS_PER_QUARTER + 1
            start = parse_period(pack, f"{year}-{first_month:02d}", kind="month").start
            last = f"{year}-{first_month + MONTHS_PER_QUARTER - 1:02d}"
            return start, parse_period(pack, last, kind="month").end
        kind = "month" if "-" in label else "year"
        period = parse_period(pack, label, kind=kind)
    except TaxFieldError as error:
        raise _invalid("period", "invalid_period", error.errors[0].message) from None
    return period.start, period.end


def _counterparty(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(parse_subject(text))
    except SubjectError as error:
        raise _invalid("counterparty", error.rule, "not a subject identifier") from None


def read_cursor(value: str | None) -> tuple[datetime, str] | None:
    """The (issued_at, tax ID) a cursor names (api.routes.paging's format, with a tax ID for
    the row id), or None without one. Raises Problem 400 invalid-cursor."""
    return paging.read_cursor(value, ident_pattern=_TAX_ID)


def _summary(i: StoredInvoice, *, party: str, pack: RulePack, today: date) -> dict[str, Any]:
    view: dict[str, Any] = {
        "tax_id": i.tax_id,
        "role": Side.SELLER if i.seller == party else Side.BUYER,
        "jurisdiction": i.jurisdiction,
        "seller": i.seller,
        "buyer": i.buyer,
        "type": i.invoice_type,
        "pattern": i.pattern,
        "subtype": i.subtype,
        "reference_tax_id": i.reference_tax_id,
        "issued_at": i.issued_at.isoformat(),
        "issued_on": dual_date(pack, i.issued_on),
        "status": i.status,
        "decision": decision_on(i, today),
        "respond_by": None if i.respond_by is None else dual_date(pack, i.respond_by),
        "currency": i.currency,
        "totals": {
            "before_discount_minor": i.before_discount_minor,
            "discount_minor": i.discount_minor,
            "after_discount_minor": i.after_discount_minor,
            "vat_minor": i.vat_minor,
            "total_minor": i.total_minor,
        },
        "submitted_at": i.submitted_at.isoformat(),
        "transaction_id": i.tx_id,
        "ledger_index": i.ledger_index,
    }
    return view


@router.get("/invoices", response_model=Page, responses=problem_responses(400, 401, 403, 429))
def list_invoices(
    request: Request,
    principal: PrincipalDep,
    role: Annotated[str | None, Query(pattern=ROLE_PATTERN)] = None,
    jurisdiction: Annotated[str | None, Query(pattern="^[a-z]{2}$")] = None,
    period: Annotated[str | None, Query(max_length=MAX_PERIOD_CHARS)] = None,
    status: Annotated[str | None, Query(pattern=STATUS_PATTERN)] = None,
    counterparty: Annotated[str | None, Query(max_length=MAX_SUBJECT_CHARS)] = None,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """The invoices the caller sold (role=seller), bought (role=buyer) or both, in one
    jurisdiction, newest issued first; narrowed by period (issue day), status (issued,
    cancelled, or the buyer's decision: pending, accepted, rejected, deemed_accepted) and
    counterparty (the other side)."""
    party = _party(request, principal)
    pack = _pack_of(jurisdiction, party)
    first_day, last_day = period_days(pack, period) if period is not None else (None, None)
    today = today_for(request, pack)
    criteria = ListFilter(
        party=party,
        today=today,
        role=role,
        jurisdiction=pack.jurisdiction,
        first_day=first_day,
        last_day=last_day,
        status=status,
        counterparty=_counterparty(counterparty),
    )
    before = read_cursor(cursor)
    rows = read_with(
        request,
        lambda conn: invoice_store.list_invoices(conn, criteria, before=before, limit=limit),
    )
    return page_of(
        [_summary(r, party=party, pack=pack, today=today) for r in rows],
        [(r.issued_at, r.tax_id) for r in rows],
        limit=limit,
    )


@router.get("/invoices/{tax_id}", responses={200: _JSON, **problem_responses(401, 403, 404, 429)})
def get_invoice(
    request: Request,
    tax_id: Annotated[str, Path(description="A 22-character tax ID", max_length=TAX_ID_CHARS)],
    principal: PrincipalDep,
) -> dict[str, Any]:
    """One invoice as signed, its status and the buyer's decision, and its chain: the original
    and every correction, return and cancellation of it that the caller is a party to, oldest
    first. Its seller and its buyer see it; anyone else gets 404."""
    party = _party(request, principal)
    not_found = Problem(404, problem_type("invoice-not-found"), "No such invoice")
    if not _TAX_ID.fullmatch(tax_id):
        raise not_found

    def work(conn: Connection) -> dict[str, Any] | None:
        invoice = invoice_store.get_invoice(conn, tax_id)
        if invoice is None or party not in (invoice.seller, invoice.buyer):
            return None
        pack = _pack_of(invoice.jurisdiction, party)
        today = today_for(request, pack)
        chain = invoice_store.chain_of(conn, invoice.reference_tax_id or invoice.tax_id)
        view = _summary(invoice, party=party, pack=pack, today=today)
        if invoice.seller == party:
            view["signer"] = invoice.signer  # the seller's representative: not the buyer's business
        view["decided_at"] = None if invoice.decided_at is None else invoice.decided_at.isoformat()
        view["decision_transaction_id"] = invoice.decision_tx_id
        view["body"] = invoice.body
        view["chain"] = [
            _summary(c, party=party, pack=pack, today=today)
            for c in chain
            if party in (c.seller, c.buyer)
        ]
        return view

    view = read_with(request, work)
    if view is None:
        raise not_found
    return view
