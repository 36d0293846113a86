"""Tax as taxpayers, auditors and everyone see it: obligations, a preview of a return, filings and
their chains of versions, and the rule packs themselves.

Filing is a signed transaction (POST /v1/transactions with tax.return.personal or
tax.return.corporate, docs/TAX.md). Object-level access on every route: a taxpayer sees the
filings it is the taxpayer of or signed; an auditor sees a filing's place in the ledger and its
chain without amounts or who filed; any other id answers 404 exactly as a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import Connection

from api.auth import Principal, Role, require_principal, require_role
from api.database import read_only
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
from payments import intent_store, payable_store
from payments.intents import IntentState
from payments.payables import PayableStatus
from signatures.canonical import JsonValue, parse_json
from signatures.envelope import parse_subject
from signatures.errors import CanonicalFormError, FieldError
from tax import filing_store, obligations
from tax.balance import VersionPayment, chain_balance
from tax.calendar import parse_period
from tax.errors import TaxFieldError
from tax.filing_store import StoredFiling
from tax.handlers import (
    RETURN_TYPES,
    check_chain,
    evaluate,
    outcome_json,
    parse_filing,
    require_filer,
)
from tax.rulepack import RulePack, pack_for, shipped_packs
from tax.vat import VAT
from tax.vat_handlers import preview_vat

router = APIRouter(prefix="/v1/tax", tags=["tax"])
PrincipalDep = Annotated[Principal, Depends(require_principal)]
T = TypeVar("T")
Id = Annotated[str, Path(description="A lowercase UUID", max_length=36)]
_JSON = {"content": {"application/json": {"schema": {"type": "object"}}}}
_TAXPAYERS = (Role.CITIZEN, Role.BUSINESS)
# A preview's body: the type and the payload a signed return would carry, nothing more.
MAX_CALCULATE_BODY_BYTES = 256 * 1024


def read_with(request: Request, work: Callable[[Connection], T]) -> T:
    """work(conn) on a read-only connection of the app's engine (the tax routes share it)."""
    with request.app.state.engine.connect() as conn:
        return work(read_only(conn))


def _taxpayer(request: Request, principal: Principal) -> str:
    request.app.state.check_rate(principal.subject)
    require_role(principal, *_TAXPAYERS)
    return principal.subject


def today_for(request: Request, pack: RulePack) -> date:
    """Today in the pack's time zone, by the app's clock (tests move app.state.clock)."""
    clock: Callable[[], datetime] = getattr(request.app.state, "clock", lambda: datetime.now(UTC))
    return pack.local_date(clock())


# --- obligations ---------------------------------------------------------------------------------


@router.get("/obligations", responses={200: _JSON, **problem_responses(400, 401, 403, 429)})
def list_obligations(
    request: Request,
    principal: PrincipalDep,
    jurisdiction: Annotated[str | None, Query(pattern="^[a-z]{2}$")] = None,
) -> dict[str, Any]:
    """What the caller must file, for which period, by when (rolled over weekends and official
    holidays), and where each stands: open, overdue, filed or filed_late; newest period first."""
    subject = _taxpayer(request, principal)
    kind = parse_subject(subject).kind.value
    items: list[JsonValue] = []
    for code, pack in sorted(shipped_packs().items()):
        if jurisdiction is not None and code != jurisdiction:
            continue
        if not any(kind in r.subjects for r in pack.returns.values()):
            continue
        heads = read_with(
            request,
            lambda conn, code=code: filing_store.heads_of_taxpayer(  # type: ignore[misc]
                conn, taxpayer=subject, jurisdiction=code
            ),
        )
        found = [
            obligations.Head(h.kind, h.period, h.filing_id, h.version or 0, h.first_filed_on)
            for h in heads
            if h.first_filed_on is not None
        ]
        today = today_for(request, pack)
        listed = obligations.obligations_of(pack, subject_kind=kind, heads=found, today=today)
        items.extend(o.as_json(pack) for o in listed)
    return {"items": items}


# --- preview -------------------------------------------------------------------------------------


@router.post(
    "/calculate", responses={200: _JSON, **problem_responses(400, 401, 403, 409, 413, 429)}
)
async def calculate(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Compute a return without filing it: `{"type": "tax.return.personal" | "tax.return.corporate",
    "payload": {…}}`, the payload exactly as it would be signed. The answer is what filing it
    now would give: the same trace, issues, assessment and, for an amendment, the difference."""
    subject = _taxpayer(request, principal)
    body = await request.body()
    if len(body) > MAX_CALCULATE_BODY_BYTES:
        raise Problem(
            413,
            problem_type("limit-exceeded"),
            "A size limit was exceeded",
            f"a preview body is at most {MAX_CALCULATE_BODY_BYTES} bytes",
        )
    kind, payload = _preview_request(body)
    data, pack = parse_filing(payload, kind=kind, taxpayer=subject)

    def work(conn: Connection) -> dict[str, JsonValue]:
        head = filing_store.head_of(
            conn,
            taxpayer=subject,
            jurisdiction=data.jurisdiction,
            kind=kind,
            period=data.period.label,
        )
        check_chain(head, amends=data.amends, version_limit=filing_store.MAX_CHAIN_VERSIONS)
        outcome = evaluate(pack, data, head=head, filed_on=today_for(request, pack))
        return outcome_json(pack, outcome, payable_id=None)

    return await to_thread.run_sync(lambda: read_with(request, work))


def _preview_request(body: bytes) -> tuple[str, JsonValue]:
    try:
        parsed = parse_json(body)
    except CanonicalFormError as error:
        raise TaxFieldError(error.errors) from None
    if not isinstance(parsed, dict) or set(parsed) != {"type", "payload"}:
        raise TaxFieldError(
            (_field("", "members", 'the body is {"type": …, "payload": {…}} and nothing else'),)
        )
    kind = RETURN_TYPES.get(str(parsed["type"]))
    if kind is None:
        names = ", ".join(sorted(RETURN_TYPES))
        raise TaxFieldError((_field("/type", "unknown_type", f"the type is one of {names}"),))
    return kind, parsed["payload"]


def _field(pointer: str, rule: str, message: str) -> FieldError:
    return FieldError(pointer, rule, message)


# --- filings -------------------------------------------------------------------------------------


def _summary(f: StoredFiling) -> dict[str, Any]:
    return {
        "filing_id": f.filing_id,
        "type": f"tax.return.{f.kind}",
        "jurisdiction": f.jurisdiction,
        "kind": f.kind,
        "period": f.period,
        "status": f.status,
        "version": f.version,
        "amends": f.amends,
        "superseded_by": f.superseded_by,
        "submitted_at": f.submitted_at.isoformat(),
        "ledger_index": f.ledger_index,
        "currency": f.currency,
        "tax_minor": f.tax_minor,
        "due_minor": f.due_minor,
        "credit_minor": f.credit_minor,
        "payable_id": f.payable_id,
    }


@router.get("/filings", response_model=Page, responses=problem_responses(400, 401, 403, 429))
def list_filings(
    request: Request,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """The caller's own returns, accepted and rejected, newest first."""
    subject = _taxpayer(request, principal)
    before = read_cursor(cursor)
    rows = read_with(
        request,
        lambda conn: filing_store.list_filings(conn, taxpayer=subject, before=before, limit=limit),
    )
    return page_of(
        [_summary(r) for r in rows], [(r.submitted_at, r.filing_id) for r in rows], limit=limit
    )


@router.get("/filings/{filing_id}", responses={200: _JSON, **problem_responses(401, 404, 429)})
def get_filing(request: Request, filing_id: Id, principal: PrincipalDep) -> dict[str, Any]:
    """One return with its computation and trace, issues, assessment, difference from the version
    it amends, the chain of versions of its obligation and the balance of that chain.

    The taxpayer and the signer see all of it; an auditor sees the chain's ledger indexes, statuses
    and hashes without amounts or subjects; anyone else gets 404."""
    request.app.state.check_rate(principal.subject)
    not_found = Problem(404, problem_type("filing-not-found"), "No such filing")
    if not UUID4.fullmatch(filing_id):
        raise not_found
    auditor = principal.has_role(Role.AUDITOR)

    def work(conn: Connection) -> dict[str, Any] | None:
        filing = filing_store.get_filing(conn, filing_id)
        if filing is None:
            return None
        if principal.subject not in (filing.taxpayer, filing.signer) and not auditor:
            return None
        chain = filing_store.chain_of(
            conn,
            taxpayer=filing.taxpayer,
            jurisdiction=filing.jurisdiction,
            kind=filing.kind,
            period=filing.period,
        )
        if principal.subject not in (filing.taxpayer, filing.signer):
            return _auditor_view(filing, chain)
        today = today_for(request, pack_for(filing.jurisdiction))
        return _owner_view(conn, filing, chain, today=today)

    view = read_with(request, work)
    if view is None:
        raise not_found
    return view


def _auditor_view(filing: StoredFiling, chain: list[StoredFiling]) -> dict[str, Any]:
    def entry(f: StoredFiling) -> dict[str, Any]:
        return {
            "filing_id": f.filing_id,
            "type": f"tax.return.{f.kind}",
            "status": f.status,
            "version": f.version,
            "amends": f.amends,
            "superseded_by": f.superseded_by,
            "ledger_index": f.ledger_index,
            "pack_version": f.pack_version,
            "trace_sha256": f.trace_sha256,
        }

    return {**entry(filing), "chain": [entry(f) for f in chain]}


def _payment_of(conn: Connection, pack: RulePack, f: StoredFiling) -> VersionPayment:
    """What the payable of version `f` was paid, and the day it was paid in full."""
    paid_minor, paid_on = 0, None
    if f.payable_id is not None:
        stored = payable_store.get_payable(conn, f.payable_id)
        if stored is not None:
            paid_minor = stored.payable.paid_minor
            if stored.payable.status is PayableStatus.PAID:
                paid_on = _paid_on(conn, pack, f.payable_id)
    return VersionPayment(f.filing_id, f.due_minor, f.credit_minor, f.due_on, paid_minor, paid_on)


def _paid_on(conn: Connection, pack: RulePack, payable_id: str) -> date | None:
    intents = intent_store.list_intents(conn, payable_ids=[payable_id], limit=MAX_PAGE_SIZE)
    done = [i.updated_at for i in intents if i.intent.state is IntentState.SUCCEEDED]
    return pack.local_date(max(done)) if done else None


def _owner_view(
    conn: Connection, filing: StoredFiling, chain: list[StoredFiling], *, today: date
) -> dict[str, Any]:
    pack = pack_for(filing.jurisdiction)
    versions, payments = [], []
    for f in chain:
        payment = _payment_of(conn, pack, f)
        if f.status == filing_store.FilingStatus.ACCEPTED:
            payments.append(payment)
        versions.append({**_summary(f), "paid_minor": payment.paid_minor})
    return {
        **_summary(filing),
        "taxpayer": filing.taxpayer,
        "signer": filing.signer,
        "pack_version": filing.pack_version,
        "trace_sha256": filing.trace_sha256,
        "detail": filing.detail,
        "chain": versions,
        "balance": chain_balance(pack, payments, today=today, kind=filing.kind),
    }


# --- VAT preview ---------------------------------------------------------------------------------


@router.get("/vat/{period}", responses={200: _JSON, **problem_responses(400, 401, 403, 409, 429)})
def preview_vat_return(
    request: Request,
    principal: PrincipalDep,
    period: Annotated[str, Path(max_length=16)],
    jurisdiction: Annotated[str, Query(pattern="^[a-z]{2}$")],
) -> dict[str, Any]:
    """The caller's VAT return for `period` ("1403-Q2" in ir, "2025-03" in ee) as filing it now
    would give: the figures from its invoices (the `declared` members to sign), the trace, and
    the assessment against the current version, if any. Nothing is written."""
    subject = _taxpayer(request, principal)
    pack = pack_for(jurisdiction)
    vat = require_filer(pack, VAT, subject, pointer="/jurisdiction")
    label = parse_period(pack, period, kind=vat.period)
    today = today_for(request, pack)
    return read_with(
        request,
        lambda conn: preview_vat(conn, pack, taxpayer=subject, period=label, today=today),
    )


# --- rule packs ----------------------------------------------------------------------------------


@router.get("/packs", responses={200: _JSON})
def list_packs() -> dict[str, Any]:
    """The rule packs in force, public: jurisdiction, title, version, currency, calendar."""
    return {
        "items": [
            {
                "jurisdiction": p.jurisdiction,
                "title": p.title,
                "version": p.version,
                "currency": p.currency,
                "calendar": p.calendar,
                "returns": sorted(p.returns),
            }
            for _, p in sorted(shipped_packs().items())
        ]
    }


@router.get("/packs/{jurisdiction}", responses={200: _JSON, **problem_responses(404)})
def get_pack(jurisdiction: Annotated[str, Path(pattern="^[a-z]{2}$")]) -> dict[str, Any]:
    """Every parameter of a pack with every dated value, its legal source and its status."""
    if jurisdiction not in shipped_packs():
        raise Problem(404, problem_type("pack-not-found"), "No such rule pack")
    return pack_for(jurisdiction).as_json()
