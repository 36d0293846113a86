"""The tax transaction types' payloads and handlers: tax.return.personal and tax.return.corporate
(docs/TAX.md, "Filing", has the payloads and the result).

`parse_*` is pure and raises signatures.errors.EnvelopeError naming /payload/… fields (the pipeline
runs it before the write). `handle_return` runs inside the batch's write transaction, under the
ledger lock, so the head of the obligation's chain it reads cannot change before it writes.

A return that breaks a business rule of its pack (a period not yet ended, a deduction the pack does
not allow, no rules in force) is still recorded: the signed submission happened, and the filer
follows its status, `rejected` with its rule codes. A malformed payload, a taxpayer outside the
jurisdiction, or an amendment that does not continue its chain is refused and not recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import Connection

from payments import payable_store
from payments.errors import PaymentFieldError
from payments.tax_payables import TaxPayableRequest, tax_payable_from_assessment
from signatures.canonical import MAX_SAFE_INTEGER, JsonValue
from signatures.envelope import Envelope, parse_subject
from signatures.errors import EnvelopeError, FieldError
from tax import filing_store
from tax.amendments import diff_lines
from tax.calendar import dual_date
from tax.engine import ISSUE_NO_RULES, Assessment, Computation, assess, compute_return
from tax.errors import FilingChainError, RuleNotInForceError, TaxFieldError
from tax.filing_store import FilingStatus, StoredFiling
from tax.returns import FilingData, parse_return
from tax.rulepack import ReturnKind, RulePack, Status, pack_for
from tax.trace import ERROR, Issue

PERSONAL = "personal"
CORPORATE = "corporate"
RETURN_TYPES = {"tax.return.personal": PERSONAL, "tax.return.corporate": CORPORATE}

RULE_NOT_A_TAXPAYER = "not_a_taxpayer_of_jurisdiction"
RULE_OUT_OF_RANGE = "out_of_range"


def _payload(envelope: Envelope) -> JsonValue:
    return envelope.payload


def taxpayer_of(envelope: Envelope) -> str:
    """The subject the return is for: the entity a representative signs for, or the signer."""
    return str(envelope.on_behalf_of or envelope.signer)


def require_filer(
    pack: RulePack, kind: str, subject: str, *, pointer: str = "/payload/jurisdiction"
) -> ReturnKind:
    """The pack's `kind` return ("personal", "corporate", "vat"), when `subject`'s kind of
    subject files it there.

    Raises TaxFieldError at `pointer`, rule not_a_taxpayer_of_jurisdiction, otherwise (an ir-nid
    filing in ee, a person filing a corporate return, a seller that files no VAT return).
    """
    returns = pack.returns.get(kind)
    if returns is None or parse_subject(subject).kind.value not in returns.subjects:
        message = f"the subject's kind does not file a {kind} return in this jurisdiction"
        raise TaxFieldError((FieldError(pointer, RULE_NOT_A_TAXPAYER, message),))
    return returns


def parse_filing(payload: JsonValue, *, kind: str, taxpayer: str) -> tuple[FilingData, RulePack]:
    """The filing data and its pack, with the taxpayer checked against the pack's returns.

    Raises TaxFieldError: the payload's own errors, or require_filer's.
    """
    data = parse_return(payload, kind=kind)
    pack = pack_for(data.jurisdiction)
    require_filer(pack, kind, taxpayer)
    return data, pack


def parse_return_envelope(envelope: Envelope, *, kind: str) -> FilingData:
    """The pipeline's payload check. Raises EnvelopeError naming /payload/… fields."""
    try:
        return parse_filing(_payload(envelope), kind=kind, taxpayer=taxpayer_of(envelope))[0]
    except TaxFieldError as error:
        raise EnvelopeError(error.errors) from None


def check_chain(head: StoredFiling | None, *, amends: str | None, version_limit: int) -> None:
    """Raises FilingChainError unless `amends` names the current head (or both are None)."""
    if head is None:
        if amends is not None:
            raise FilingChainError(
                "nothing was accepted for this obligation yet: leave out amends",
                rule="nothing_to_amend",
                head=None,
            )
        return
    if amends is None:
        raise FilingChainError(
            "a version was accepted already: an amendment names it in amends",
            rule="amends_required",
            head=head.filing_id,
        )
    if amends != head.filing_id:
        raise FilingChainError(
            "amends must name the current version of this obligation",
            rule="amends_not_head",
            head=head.filing_id,
        )
    if (head.version or 0) >= version_limit:
        raise FilingChainError(
            f"an obligation holds at most {version_limit} versions",
            rule="chain_too_long",
            head=head.filing_id,
        )


@dataclass(frozen=True)
class Outcome:
    """A return's computation and, when accepted, its assessment against the previous version."""

    computation: Computation
    assessment: Assessment | None
    difference: list[dict[str, JsonValue]] | None


def evaluate(
    pack: RulePack, data: FilingData, *, head: StoredFiling | None, filed_on: date
) -> Outcome:
    """Compute a return and assess it against `head` (the version it amends, or None)."""
    return assess_outcome(
        pack, compute_return(pack, data, today=filed_on), head=head, filed_on=filed_on
    )


def assess_outcome(
    pack: RulePack, computation: Computation, *, head: StoredFiling | None, filed_on: date
) -> Outcome:
    """Assess a computed return (of any kind) against `head`; a rejected one is not assessed.

    Raises TaxFieldError (/payload, out_of_range) for an amount the ledger cannot record."""
    if not computation.accepted:
        return Outcome(computation, None, None)
    try:
        assessment = assess(
            pack,
            computation,
            previous_tax_minor=head.tax_minor if head else 0,
            previous_credits_minor=head.credits_minor if head else 0,
            filed_on=filed_on,
            first_filing=head is None,
        )
    except RuleNotInForceError as error:
        # The tax computes, but the pack has no deadline, penalty or interest rule for the
        # period: the return cannot be assessed, so it is rejected like one without rules.
        missing = Issue(
            ISSUE_NO_RULES,
            ERROR,
            f"no value of {error.name} is in force on {error.on}: the return cannot be assessed",
            "/payload/period",
        )
        return Outcome(replace(computation, issues=(*computation.issues, missing)), None, None)
    _check_recordable(computation, assessment)
    difference = None
    if head is not None:
        difference = diff_lines(_stored_lines(head), computation)
    return Outcome(computation, assessment, difference)


def _check_recordable(computation: Computation, assessment: Assessment) -> None:
    """Raises TaxFieldError (/payload, out_of_range) when a derived amount (a total, the late
    interest of many years) leaves the integers canonical JSON represents exactly: every line is
    hashed into the ledger, and an amount that cannot be is refused, never rounded."""
    amounts = [line.amount_minor for line in (*computation.lines, *assessment.lines)]
    if any(abs(a) > MAX_SAFE_INTEGER for a in amounts):
        raise TaxFieldError(
            (
                FieldError(
                    "/payload",
                    RULE_OUT_OF_RANGE,
                    f"a computed amount exceeds {MAX_SAFE_INTEGER}, the largest the ledger records",
                ),
            )
        )


def _stored_lines(head: StoredFiling) -> list[JsonValue]:
    computation = head.detail.get("computation")
    lines = computation.get("lines") if isinstance(computation, dict) else None
    return lines if isinstance(lines, list) else []


def outcome_json(
    pack: RulePack, outcome: Outcome, *, payable_id: str | None
) -> dict[str, JsonValue]:
    """The computation (with its full trace), the assessment and the difference, as JSON."""
    c = outcome.computation
    view: dict[str, JsonValue] = {
        "jurisdiction": c.jurisdiction,
        "kind": c.kind,
        "period": c.period.label,
        "currency": pack.currency,
        "pack_version": c.pack_version,
        "trace_sha256": c.trace_sha256(pack),
        "accepted": c.accepted,
        "issues": [i.as_json() for i in c.issues],
        "computation": {
            "tax_minor": c.tax_minor,
            "credits_minor": c.credits_minor,
            "unverified_parameters": list(c.unverified),
            "lines": c.trace_json(pack),
        },
    }
    a = outcome.assessment
    if a is not None:
        view["assessment"] = {
            "due_minor": a.due_minor,
            "credit_minor": a.credit_minor,
            "due_on": dual_date(pack, a.due_on),  # type: ignore[dict-item]
            "payable_id": payable_id,
            # The penalty and interest rates are shown unverified as the tax's parameters are.
            "unverified_parameters": list[JsonValue](
                sorted(
                    {
                        line.parameter.name
                        for line in a.lines
                        if line.parameter is not None and line.parameter.status is Status.UNVERIFIED
                    }
                )
            ),
            "lines": [line.as_json(pack) for line in a.lines],
        }
    if outcome.difference is not None:
        view["difference"] = outcome.difference  # type: ignore[assignment]
    return view


def handle_return(
    conn: Connection,
    envelope: Envelope,
    *,
    kind: str,
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
) -> dict[str, JsonValue]:
    """Record a signed income tax return (personal, corporate): rejected with its issues, or
    accepted as the next version of its obligation, with a payable for what it adds or a credit
    for what it takes away.

    Raises EnvelopeError (payload), FilingChainError (amends does not name the head).
    """
    taxpayer = taxpayer_of(envelope)
    try:
        data, pack = parse_filing(_payload(envelope), kind=kind, taxpayer=taxpayer)
    except TaxFieldError as error:
        raise EnvelopeError(error.errors) from None
    filing = Filing(envelope, pack, kind, data.period.label, data.amends, taxpayer)
    return file_return(
        conn,
        filing,
        compute=lambda head, filed_on: compute_return(pack, data, today=filed_on),
        tx_id=tx_id,
        accepted_at=accepted_at,
        ledger_index=ledger_index,
    )


@dataclass(frozen=True)
class Filing:
    """What file_return needs of any kind of return besides its computation."""

    envelope: Envelope
    pack: RulePack
    kind: str
    period: str  # label
    amends: str | None
    taxpayer: str


def file_return(
    conn: Connection,
    filing: Filing,
    *,
    compute: Callable[[StoredFiling | None, date], Computation],
    tx_id: str,
    accepted_at: datetime,
    ledger_index: int,
) -> dict[str, JsonValue]:
    """The chain, the computation (`compute(head, filed_on)`), the assessment, the payable and
    the stored filing of one signed return, of any kind.

    Raises EnvelopeError (an amount out of range), FilingChainError (amends not the head).
    """
    pack = filing.pack
    head = filing_store.head_of(
        conn,
        taxpayer=filing.taxpayer,
        jurisdiction=pack.jurisdiction,
        kind=filing.kind,
        period=filing.period,
    )
    check_chain(head, amends=filing.amends, version_limit=filing_store.MAX_CHAIN_VERSIONS)
    filed_on = pack.local_date(accepted_at)
    try:
        outcome = assess_outcome(pack, compute(head, filed_on), head=head, filed_on=filed_on)
    except TaxFieldError as error:
        raise EnvelopeError(error.errors) from None
    payable_id = _issue_payable(
        conn,
        pack,
        outcome,
        taxpayer=filing.taxpayer,
        tx_id=tx_id,
        at=accepted_at,
        index=ledger_index,
    )
    detail = outcome_json(pack, outcome, payable_id=payable_id)
    accepted = outcome.assessment is not None
    status = FilingStatus.ACCEPTED if accepted else FilingStatus.REJECTED
    c, a = outcome.computation, outcome.assessment
    filing_store.insert_filing(
        conn,
        StoredFiling(
            filing_id=tx_id,
            taxpayer=filing.taxpayer,
            signer=str(filing.envelope.signer),
            jurisdiction=pack.jurisdiction,
            kind=filing.kind,
            period=c.period.label,
            status=status,
            version=((head.version or 0) + 1 if head else 1) if accepted else None,
            amends=filing.amends,
            superseded_by=None,
            pack_version=c.pack_version,
            trace_sha256=str(detail["trace_sha256"]),  # hashed once, in outcome_json
            currency=pack.currency,
            tax_minor=c.tax_minor,
            credits_minor=c.credits_minor,
            due_minor=a.due_minor if a else 0,
            credit_minor=a.credit_minor if a else 0,
            due_on=a.due_on if a else None,
            first_filed_on=(head.first_filed_on if head else filed_on) if accepted else None,
            payable_id=payable_id,
            submitted_at=accepted_at,
            ledger_index=ledger_index,
            detail=detail,
        ),
    )
    if accepted and head is not None:
        filing_store.mark_superseded(conn, filing_id=head.filing_id, by=tx_id)
    return filing_result(tx_id, detail, status=status, amends=filing.amends)


def filing_result(
    filing_id: str, detail: dict[str, JsonValue], *, status: str, amends: str | None
) -> dict[str, JsonValue]:
    """The transaction's result: what is hashed into the ledger leaf and shown to the filer."""
    return {"filing_id": filing_id, "status": status, "amends": amends, **detail}


def _issue_payable(
    conn: Connection,
    pack: RulePack,
    outcome: Outcome,
    *,
    taxpayer: str,
    tx_id: str,
    at: datetime,
    index: int,
) -> str | None:
    a = outcome.assessment
    if a is None or a.due_minor == 0:
        return None
    request = TaxPayableRequest(
        assessment_id=tx_id,
        taxpayer=taxpayer,
        tax_agency=pack.tax_agency,
        amount_minor=a.due_minor,
        due_on=a.due_on,
        currency=pack.currency,
    )
    try:
        payable = tax_payable_from_assessment(request, payable_id=tx_id)
    except PaymentFieldError as error:  # an amount beyond what a payable may hold
        raise EnvelopeError(
            tuple(FieldError("/payload", e.rule, e.message) for e in error.errors)
        ) from None
    payable_store.insert_payable(
        conn, payable_store.StoredPayable(payable, None, None, None, at, index)
    )
    return payable.payable_id
