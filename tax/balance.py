"""The balance of an obligation's chain of versions, with the late-payment interest that accrues
after an assessment's due date (docs/TAX.md, "Balance").

Pure: the caller reads each accepted version's assessment and what its payable has been paid, and
when (tax.filing_store, payments.payable_store, payments.intent_store), and passes today's date.
The interest of a version's payable runs from its due date to the day it was paid in full, or to
today while it is not: each is a trace line of its own, computed exactly as the assessment's
(tax.penalties.late_payment_interest). It is shown, not charged: no payable is issued for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from signatures.canonical import JsonValue
from tax.penalties import late_payment_interest
from tax.rulepack import RulePack

INTEREST_CODE = "interest.after_due_date"


@dataclass(frozen=True)
class VersionPayment:
    """One accepted version's assessment and its payable's payments.

    paid_on: the day the payable was paid in full (in the pack's time zone), None while it is not.
    """

    filing_id: str
    due_minor: int
    credit_minor: int
    due_on: date | None
    paid_minor: int
    paid_on: date | None


def chain_balance(
    pack: RulePack, versions: Sequence[VersionPayment], *, today: date, kind: str | None = None
) -> dict[str, JsonValue]:
    """assessed − credited − paid = outstanding, and the interest accrued after each due date.

    Raises ValueError when a version was paid more than it was assessed (storage is corrupt)."""
    assessed = sum(v.due_minor for v in versions)
    credited = sum(v.credit_minor for v in versions)
    paid = sum(v.paid_minor for v in versions)
    lines: list[JsonValue] = []
    interest = 0
    for v in versions:
        if v.paid_minor > v.due_minor:
            raise ValueError(f"version {v.filing_id} was paid more than it was assessed")
        if v.due_on is None or v.due_minor == 0:
            continue
        until = v.paid_on if v.paid_on is not None else today
        unpaid = v.due_minor if v.paid_on is not None else v.due_minor - v.paid_minor
        if until <= v.due_on or unpaid == 0:
            continue
        line = late_payment_interest(
            pack,
            unpaid_minor=unpaid,
            due_on=v.due_on,
            paid_on=until,
            code=INTEREST_CODE,
            kind=kind,
        )
        interest += line.amount_minor
        lines.append(
            {"filing_id": v.filing_id, "paid": v.paid_on is not None, **line.as_json(pack)}
        )
    return {
        "currency": pack.currency,
        "assessed_minor": assessed,
        "credited_minor": credited,
        "paid_minor": paid,
        "outstanding_minor": assessed - credited - paid,
        "interest_accrued_minor": interest,
        "interest_lines": lines,
    }
