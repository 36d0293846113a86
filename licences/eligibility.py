"""Renewal eligibility, from the state's own records (docs/LICENCES.md, "Renewal rules").

Every rule that applies is evaluated and every failure is listed, in RULES order, each naming
what failed and what would satisfy it, with machine-readable details (dates in both calendars
for a Solar Hijri jurisdiction, payable ids and amounts: the holder's own debts, shown to the
holder). not_revoked, not_suspended and in_renewal_window always apply; no_unpaid_fines and
no_overdue_tax when the type lists them; fee_in_force when the type has a fee service.
Pure: the caller gathers the facts (debts from payments and tax, the fee from the fee book).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from licences.errors import RenewalRefusedError, RuleFailure
from licences.status import LicenceStatus
from licences.terms import Term, Window, dual, dual_text, renewal_window
from licences.types import LicenceType
from payments.currency import exponent
from payments.errors import FeeNotFoundError
from payments.fees import REASON_NOT_IN_FORCE, REASON_SUSPENDED, Fee, FeeBook
from payments.payables import Payable
from signatures.canonical import JsonValue

RULE_NOT_REVOKED = "not_revoked"
RULE_NOT_SUSPENDED = "not_suspended"
RULE_IN_RENEWAL_WINDOW = "in_renewal_window"
RULE_NO_UNPAID_FINES = "no_unpaid_fines"
RULE_NO_OVERDUE_TAX = "no_overdue_tax"
RULE_FEE_IN_FORCE = "fee_in_force"
RULES = (
    RULE_NOT_REVOKED,
    RULE_NOT_SUSPENDED,
    RULE_IN_RENEWAL_WINDOW,
    RULE_NO_UNPAID_FINES,
    RULE_NO_OVERDUE_TAX,
    RULE_FEE_IN_FORCE,
)
MAX_IDS_IN_REMEDY = 5  # a remedy names this many payables; details list every one given


@dataclass(frozen=True)
class Debt:
    """The outstanding part of one of the holder's payables."""

    payable_id: str
    amount_minor: int
    currency: str
    due_on: date


def debt_of(payable: Payable) -> Debt:
    """The outstanding part of `payable` as a Debt."""
    return Debt(
        payable_id=payable.payable_id,
        amount_minor=payable.outstanding_minor,
        currency=payable.currency,
        due_on=payable.due_on,
    )


@dataclass(frozen=True)
class RenewalFacts:
    """What the renewal rules judge. `fee` is the fee in force today, or None with
    `fee_problem` saying why; `fee_resumes_on` is the day a fee suspension ends, when known
    (fee_resumes_on below finds it)."""

    licence_type: LicenceType
    status: LicenceStatus
    term: Term
    today: date
    unpaid_fines: tuple[Debt, ...]
    overdue_tax: tuple[Debt, ...]
    fee: Fee | None
    fee_problem: FeeNotFoundError | None
    fee_resumes_on: date | None = None


def fee_resumes_on(book: FeeBook, service_code: str, *, on: date) -> date | None:
    """The day the fee suspension in force on `on` ends, or None (no suspension, an
    open-ended one, or an unknown service)."""
    schedule = next((s for s in book.schedules if s.service_code == service_code), None)
    period = schedule.period_on(on) if schedule is not None else None
    if period is None or period.suspended is None:
        return None
    return period.valid_until


def applicable_rules(licence_type: LicenceType) -> tuple[str, ...]:
    """The rules a renewal of this type is judged by, in RULES order."""
    optional = {RULE_NO_UNPAID_FINES, RULE_NO_OVERDUE_TAX}
    return tuple(
        rule
        for rule in RULES
        if (rule not in optional or rule in licence_type.rules)
        and (rule != RULE_FEE_IN_FORCE or licence_type.fee_service is not None)
    )


def check_renewal(facts: RenewalFacts) -> tuple[RuleFailure, ...]:
    """Every failed rule, in RULES order; empty when the renewal is eligible."""
    checks = {
        RULE_NOT_REVOKED: _not_revoked,
        RULE_NOT_SUSPENDED: _not_suspended,
        RULE_IN_RENEWAL_WINDOW: _in_window,
        RULE_NO_UNPAID_FINES: _no_unpaid_fines,
        RULE_NO_OVERDUE_TAX: _no_overdue_tax,
        RULE_FEE_IN_FORCE: _fee_in_force,
    }
    failures = (checks[rule](facts) for rule in applicable_rules(facts.licence_type))
    return tuple(failure for failure in failures if failure is not None)


def verify_renewal(facts: RenewalFacts) -> None:
    """Raises RenewalRefusedError listing every failed rule when the renewal is not eligible."""
    failures = check_renewal(facts)
    if failures:
        raise RenewalRefusedError(failures)


# --- the rules: each returns its failure or None -------------------------------------------------


def _not_revoked(facts: RenewalFacts) -> RuleFailure | None:
    if facts.status is not LicenceStatus.REVOKED:
        return None
    remedy = (
        f"a revoked licence is never renewed: apply to {facts.licence_type.agency} for a new one"
    )
    return RuleFailure(RULE_NOT_REVOKED, "the licence is revoked", remedy, {"status": "revoked"})


def _not_suspended(facts: RenewalFacts) -> RuleFailure | None:
    if facts.status is not LicenceStatus.SUSPENDED:
        return None
    remedy = f"{facts.licence_type.agency} must reinstate the licence before it can be renewed"
    return RuleFailure(
        RULE_NOT_SUSPENDED, "the licence is suspended", remedy, {"status": "suspended"}
    )


def _in_window(facts: RenewalFacts) -> RuleFailure | None:
    licence_type, today = facts.licence_type, facts.today
    window = renewal_window(facts.term, licence_type)
    if window.contains(today):
        return None
    details: dict[str, JsonValue] = {
        "today": dual(licence_type, today),
        "opens_on": dual(licence_type, window.opens_on),
        "closes_on": dual(licence_type, window.closes_on),
        "expires_on": dual(licence_type, facts.term.expires_on),
    }
    if today < window.opens_on:
        details["position"] = "before"
        message = f"the renewal window opens on {dual_text(licence_type, window.opens_on)}"
        remedy = f"renew between {_range_text(licence_type, window)}"
    else:
        details["position"] = "after"
        message = f"the renewal window closed on {dual_text(licence_type, window.closes_on)}"
        remedy = (
            f"renewal was possible between {_range_text(licence_type, window)}; "
            f"apply to {licence_type.agency} for a new licence"
        )
    return RuleFailure(RULE_IN_RENEWAL_WINDOW, message, remedy, details)


def _range_text(licence_type: LicenceType, window: Window) -> str:
    """ "1404-03-01 and 1406-06-01 (2025-05-22..2027-08-23)", or ISO dates alone."""
    opens, closes = dual(licence_type, window.opens_on), dual(licence_type, window.closes_on)
    if "jalali" not in opens:
        return f"{opens['date']} and {closes['date']}"
    return f"{opens['jalali']} and {closes['jalali']} ({opens['date']}..{closes['date']})"


def _no_unpaid_fines(facts: RenewalFacts) -> RuleFailure | None:
    return _debts_failure(RULE_NO_UNPAID_FINES, facts.unpaid_fines, facts=facts, what="unpaid fine")


def _no_overdue_tax(facts: RenewalFacts) -> RuleFailure | None:
    # Only what was due before today is overdue: a tax payable due today may still be paid today.
    overdue = tuple(debt for debt in facts.overdue_tax if debt.due_on < facts.today)
    return _debts_failure(RULE_NO_OVERDUE_TAX, overdue, facts=facts, what="overdue tax payable")


def _debts_failure(
    rule: str, debts: Sequence[Debt], *, facts: RenewalFacts, what: str
) -> RuleFailure | None:
    if not debts:
        return None
    noun = what if len(debts) == 1 else f"{what}s"
    ids = ", ".join(debt.payable_id for debt in debts[:MAX_IDS_IN_REMEDY])
    if len(debts) > MAX_IDS_IN_REMEDY:
        ids += f" and {len(debts) - MAX_IDS_IN_REMEDY} more"
    totals = _totals(debts)
    total_text = " + ".join(_money_text(amount, currency) for currency, amount in totals.items())
    listed: list[JsonValue] = [
        {
            "payable_id": debt.payable_id,
            "amount_minor": debt.amount_minor,
            "currency": debt.currency,
            "due_on": dual(facts.licence_type, debt.due_on),
        }
        for debt in debts
    ]
    total_list: list[JsonValue] = [
        {"amount_minor": amount, "currency": currency} for currency, amount in totals.items()
    ]
    return RuleFailure(
        rule,
        f"the holder has {len(debts)} {noun}",
        f"pay the {len(debts)} {noun} (payables {ids}): {total_text} in all",
        {"count": len(debts), "payables": listed, "totals": total_list},
    )


def _totals(debts: Sequence[Debt]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for debt in debts:
        totals[debt.currency] = totals.get(debt.currency, 0) + debt.amount_minor
    return dict(sorted(totals.items()))


def _money_text(amount_minor: int, currency: str) -> str:
    """1234567 IRR → "1,234,567 IRR"; 2050 EUR → "20.50 EUR"."""
    places = exponent(currency)
    if places == 0:
        return f"{amount_minor:,} {currency}"
    whole, minor = divmod(amount_minor, 10**places)
    return f"{whole:,}.{minor:0{places}d} {currency}"


def _fee_in_force(facts: RenewalFacts) -> RuleFailure | None:
    if facts.fee is not None:
        return None
    licence_type, today = facts.licence_type, facts.today
    service = licence_type.fee_service
    reason = facts.fee_problem.reason if facts.fee_problem is not None else "unknown_service"
    details: dict[str, JsonValue] = {
        "fee_service": service,
        "reason": reason,
        "today": dual(licence_type, today),
    }
    on = dual_text(licence_type, today)
    if reason == REASON_SUSPENDED:
        message = f"the renewal fee is suspended on {on}"
        remedy = "wait until the fee schedule sets a fee"
        if facts.fee_resumes_on is not None:
            details["suspension_ends_on"] = dual(licence_type, facts.fee_resumes_on)
            remedy += f" (suspension ends {dual_text(licence_type, facts.fee_resumes_on)})"
    elif reason == REASON_NOT_IN_FORCE:
        message = f"no renewal fee is in force on {on}"
        remedy = f"wait until {licence_type.agency} publishes the fee in force for this service"
    else:
        message = "the renewal fee service is not in the fee schedules"
        remedy = f"{licence_type.agency} must publish a fee schedule for this service"
    return RuleFailure(RULE_FEE_IN_FORCE, message, remedy, details)
