"""The interface tax assessments (issue 6) use to create payables: a TaxPayableRequest becomes
an open payable of kind tax, checked exactly as a bill.issue payload would be."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from payments.errors import PaymentFieldError
from payments.journal import AccountKind, account_id
from payments.payables import (
    Payable,
    PayableKind,
    Transfer,
    agency_id_of,
    issue_payable,
    parse_payable_payload,
)
from signatures.canonical import JsonValue
from signatures.envelope import add_field_error
from signatures.errors import FieldError


@dataclass(frozen=True)
class TaxPayableRequest:
    """What a tax assessment asks of payments. With no transfers, all of it goes to
    agency_revenue:<tax agency id> under category "tax"."""

    assessment_id: str
    taxpayer: str  # subject text
    tax_agency: str  # agency:<id>, the issuer
    amount_minor: int
    due_on: date
    currency: str = "IRR"
    allows_instalments: bool = False
    transfers: tuple[Transfer, ...] = ()


# Pointers of the payable payload, renamed to TaxPayableRequest fields.
_TAX_POINTERS = {
    "/debtor": "/taxpayer",
    "/reference": "/assessment_id",
    "/amount": "/amount_minor",
    "/amount/amount_minor": "/amount_minor",
    "/amount/currency": "/currency",
}


def tax_payable_from_assessment(request: TaxPayableRequest, *, payable_id: str) -> Payable:
    """An open payable of kind tax for a tax assessment, checked as a payload would be.

    Raises PaymentFieldError whose pointers name TaxPayableRequest fields ("/taxpayer",
    "/amount_minor", "/transfers/0/account", "/tax_agency", …).
    """
    agency = agency_id_of(request.tax_agency, pointer="/tax_agency")
    transfers = request.transfers or (
        Transfer(account_id(AccountKind.AGENCY_REVENUE, agency), request.amount_minor, "tax"),
    )
    payload: JsonValue = {
        "kind": PayableKind.TAX.value,
        "debtor": request.taxpayer,
        "amount": {"amount_minor": request.amount_minor, "currency": request.currency},
        "transfers": [
            {"account": t.account, "amount_minor": t.amount_minor, "category": t.category}
            for t in transfers
        ],
        "due_on": request.due_on.isoformat(),
        "reference": request.assessment_id,
        "allows_instalments": request.allows_instalments,
    }
    try:
        draft = parse_payable_payload(payload, pointer="")
    except PaymentFieldError as error:
        renamed: list[FieldError] = []
        for e in error.errors:
            pointer = _TAX_POINTERS.get(e.pointer, e.pointer)
            if not request.transfers and pointer.startswith("/transfers"):
                pointer = "/amount_minor"  # the default transfer only repeats the amount
            add_field_error(renamed, pointer, e.rule, e.message)
        raise PaymentFieldError(tuple(renamed)) from None
    return issue_payable(
        draft, payable_id=payable_id, issuer=request.tax_agency, issuer_pointer="/tax_agency"
    )
