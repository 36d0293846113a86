"""Penalties and interest of an assessment, each one trace line with its formula and parameter.

Rates, units and the way a begun month counts all come from the pack, read on the deadline day
(spec §2: "a deadline and a penalty/interest rate use the value in force on the deadline day").
Months are counted in the pack's own calendar: from 31 Khordad, one month is 31 Tir, and from
31 Shahrivar one month is 30 Mehr (a day beyond a month's length is that month's last day).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from tax.calendar import due_date, format_date, month_length
from tax.errors import RulePackError
from tax.rulepack import DatedValue, RulePack, Status, date_from_text, round_fraction
from tax.trace import Computation, TraceLine, format_minor, format_rate

__all__ = [
    "DAYS_PER_MONTH_PRO_RATA",
    "Assessment",
    "assess",
    "late_filing_penalty",
    "late_payment_interest",
    "months_between",
]

# Spec §4: under "pro_rata_days" a begun month counts days/30, whatever its length.
DAYS_PER_MONTH_PRO_RATA = 30
MONTHS_PER_YEAR = 12

PENALTY_CODE = "penalty.late_filing"
INTEREST_RATE = "interest.late_payment"
INTEREST_UNIT = "interest.unit"
INTEREST_PARTIAL_MONTH = "interest.partial_month"


def late_filing_penalty(
    pack: RulePack,
    *,
    kind: str,
    undeclared_minor: int,
    due_on: date,
    filed_on: date,
    due_reasons: Sequence[str] = (),
) -> TraceLine:
    """The late-filing penalty: rate(penalty.late_filing.<kind>) × the tax not declared in time,
    when filed_on is after due_on (the rolled filing deadline); a line of 0 otherwise.

    Raises ValueError for a negative undeclared_minor, RuleNotInForceError or RulePackError when
    the pack has no rate of that name on due_on."""
    if undeclared_minor < 0:
        raise ValueError("undeclared_minor is at least 0")
    due = _due_text(pack, due_on, due_reasons)
    if filed_on <= due_on:
        label = f"Filed by the deadline {due}: no late-filing penalty"
        return TraceLine(PENALTY_CODE, label, 0, (), "0", None)
    parameter = pack.rate_at(f"penalty.late_filing.{kind}", on=due_on)
    rate = _rate(pack, parameter)
    amount = round_fraction(Fraction(rate) * undeclared_minor, rounding=pack.rounding)
    return TraceLine(
        PENALTY_CODE,
        f"Late-filing penalty: filed {format_date(pack, filed_on)}, after the deadline {due}, "
        "on the tax not declared in time",
        amount,
        ("tax.total",),
        f"{format_rate(rate)} × {format_minor(undeclared_minor)}",
        parameter,
    )


def late_payment_interest(
    pack: RulePack,
    *,
    unpaid_minor: int,
    due_on: date,
    paid_on: date,
    code: str,
    due_reasons: Sequence[str] = (),
    kind: str | None = None,
) -> TraceLine:
    """Interest on unpaid_minor from due_on to paid_on at rate(interest.late_payment.<kind>
    when the pack has one for that return kind (VAT's differs from income tax's in ir), else
    interest.late_payment) per
    interest.unit: per day, (paid_on − due_on) days; per month, the whole months between the
    dates in the pack's calendar plus the rest as days/30 ("pro_rata_days") or as one more month
    ("whole_months"), per interest.partial_month. A line of 0 when paid_on is not after due_on.

    Raises ValueError for a negative unpaid_minor, RuleNotInForceError or RulePackError when the
    pack lacks one of those parameters on due_on or has an unknown unit."""
    if unpaid_minor < 0:
        raise ValueError("unpaid_minor is at least 0")
    due = _due_text(pack, due_on, due_reasons)
    if paid_on <= due_on:
        return TraceLine(code, f"Paid by the due date {due}: no interest", 0, (), "0", None)
    specific = f"{INTEREST_RATE}.{kind}"
    parameter = pack.rate_at(
        specific if kind is not None and pack.has(specific) else INTEREST_RATE, on=due_on
    )
    rate = _rate(pack, parameter)
    unit = _text(pack, INTEREST_UNIT, due_on)
    span = f"from {due} to {format_date(pack, paid_on)}"
    if unit.value == "day":
        days = (paid_on - due_on).days
        periods = Fraction(days)
        formula = f"{format_rate(rate)} × {format_minor(unpaid_minor)} × {days} days"
        label = f"Late-payment interest per day, {span}{_status_note(unit)}"
    elif unit.value == "month":
        periods, formula, label = _monthly(pack, rate, unpaid_minor, due_on, paid_on)
        label = f"{label}, {span}{_status_note(unit)}"
    else:
        raise RulePackError(
            "interest.unit is month or day", pack=pack.jurisdiction, pointer=INTEREST_UNIT
        )
    amount = round_fraction(Fraction(rate) * unpaid_minor * periods, rounding=pack.rounding)
    return TraceLine(code, label, amount, ("assessment.delta",), formula, parameter)


def _monthly(
    pack: RulePack, rate: Decimal, unpaid_minor: int, due_on: date, paid_on: date
) -> tuple[Fraction, str, str]:
    """Months charged, formula and label under the month unit."""
    months, days = months_between(pack, start=due_on, end=paid_on)
    partial = _text(pack, INTEREST_PARTIAL_MONTH, due_on)
    head = f"{format_rate(rate)} × {format_minor(unpaid_minor)} × "
    if partial.value == "pro_rata_days":
        periods = months + Fraction(days, DAYS_PER_MONTH_PRO_RATA)
        formula = f"{head}({months} + {days}/{DAYS_PER_MONTH_PRO_RATA}) months"
        how = f"a begun month counted as days/{DAYS_PER_MONTH_PRO_RATA}"
    elif partial.value == "whole_months":
        begun = 1 if days else 0
        periods = Fraction(months + begun)
        formula = f"{head}{months + begun} months ({months} whole + {begun} begun)"
        how = "a begun month counted as a whole month"
    else:
        raise RulePackError(
            "interest.partial_month is pro_rata_days or whole_months",
            pack=pack.jurisdiction,
            pointer=INTEREST_PARTIAL_MONTH,
        )
    return periods, formula, f"Late-payment interest per month ({how}{_status_note(partial)})"


def months_between(pack: RulePack, *, start: date, end: date) -> tuple[int, int]:
    """Whole months from start to end counted in the pack's calendar, and the days left over.

    The k-th month ends on start's day of the month k months later, or on that month's last day
    when it is shorter. Raises ValueError when end is before start."""
    if end < start:
        raise ValueError("end is before start")
    year, month, day = _in_calendar(pack, start)
    end_year, end_month, _ = _in_calendar(pack, end)
    months = (end_year - year) * MONTHS_PER_YEAR + (end_month - month)
    anniversary = _add_months(pack, (year, month, day), months)
    if anniversary > end:
        months -= 1
        anniversary = _add_months(pack, (year, month, day), months)
    return months, (end - anniversary).days


def _add_months(pack: RulePack, start: tuple[int, int, int], months: int) -> date:
    year, month, day = start
    new_year, index = divmod(year * MONTHS_PER_YEAR + month - 1 + months, MONTHS_PER_YEAR)
    new_day = min(day, month_length(pack, year=new_year, month=index + 1))
    return date_from_text(pack.calendar, f"{new_year:04d}-{index + 1:02d}-{new_day:02d}")


def _in_calendar(pack: RulePack, day: date) -> tuple[int, int, int]:
    year, month, day_of_month = format_date(pack, day).split("-")
    return int(year), int(month), int(day_of_month)


def _rate(pack: RulePack, parameter: DatedValue) -> Decimal:
    if not isinstance(parameter.value, Decimal):
        raise RulePackError("a rate is a decimal", pack=pack.jurisdiction, pointer=parameter.name)
    return parameter.value


def _text(pack: RulePack, name: str, on: date) -> DatedValue:
    return pack.text_at(name, on=on)


def _status_note(parameter: DatedValue) -> str:
    """The trace line holds one parameter (the rate); the others it depends on are named in the
    label, with their status when it is not enacted, so no unverified value goes unseen."""
    if parameter.status is Status.UNVERIFIED:
        return f"; {parameter.name} = {parameter.value} is unverified"
    return ""


def _due_text(pack: RulePack, due_on: date, reasons: Sequence[str]) -> str:
    text = format_date(pack, due_on)
    return f"{text} ({'; '.join(reasons)})" if reasons else text


@dataclass(frozen=True)
class Assessment:
    """What a return adds or takes away against the version it amends: its lines (delta,
    penalty, interest, due, credit), the amount due, the credit, and when it is due."""

    lines: tuple[TraceLine, ...]
    due_minor: int
    credit_minor: int
    due_on: date


def assess(
    pack: RulePack,
    computation: Computation,
    *,
    previous_tax_minor: int,
    previous_credits_minor: int,
    filed_on: date,
    first_filing: bool,
) -> Assessment:
    """Assess an accepted computation filed on `filed_on` (spec §4): the net change against the
    previous version, a late-filing penalty on the tax not declared by the rolled filing
    deadline, and late-payment interest on the increase from the rolled payment deadline to the
    filing date (the tax could not be paid before it was declared).

    Raises ValueError when the computation is not accepted, was computed with another pack
    version, or a first filing names previous figures; RuleNotInForceError or RulePackError when
    the pack lacks a deadline, penalty or interest parameter.
    """
    if not computation.accepted:
        raise ValueError("only an accepted computation is assessed")
    if computation.pack_version != pack.version:
        raise ValueError("the computation was made with another pack version")
    if first_filing and (previous_tax_minor or previous_credits_minor):
        raise ValueError("a first filing has no previous figures")
    kind = pack.returns[computation.kind]
    filing_due, filing_reasons = due_date(pack, computation.period, kind.deadline)
    payment_due, payment_reasons = due_date(pack, computation.period, kind.payment_deadline)
    delta = _delta_line(
        computation,
        previous_tax_minor=previous_tax_minor,
        previous_credits_minor=previous_credits_minor,
    )
    lines = [
        delta,
        late_filing_penalty(
            pack,
            kind=computation.kind,
            undeclared_minor=max(computation.tax_minor - previous_tax_minor, 0),
            due_on=filing_due,
            filed_on=filed_on,
            due_reasons=filing_reasons,
        ),
        late_payment_interest(
            pack,
            unpaid_minor=max(delta.amount_minor, 0),
            due_on=payment_due,
            paid_on=filed_on,
            code="interest.late_payment",
            due_reasons=payment_reasons,
            kind=computation.kind,
        ),
    ]
    lines.extend(_totals(delta.amount_minor, lines[1].amount_minor, lines[2].amount_minor))
    due_minor, credit_minor = lines[3].amount_minor, lines[4].amount_minor
    return Assessment(tuple(lines), due_minor, credit_minor, max(payment_due, filed_on))


def _delta_line(
    computation: Computation, *, previous_tax_minor: int, previous_credits_minor: int
) -> TraceLine:
    """The change of the balance (tax − credits) against the previous version."""
    net = computation.tax_minor - computation.credits_minor
    return TraceLine(
        "assessment.delta",
        "Change of the balance against the previous version (0 and 0 for a first filing)",
        net - (previous_tax_minor - previous_credits_minor),
        ("tax.total", "credits.total"),
        f"({format_minor(computation.tax_minor)} − {format_minor(computation.credits_minor)})"
        f" − ({format_minor(previous_tax_minor)} − {format_minor(previous_credits_minor)})",
        None,
    )


def _totals(delta_minor: int, penalty_minor: int, interest_minor: int) -> list[TraceLine]:
    """The amount due (an increase, the penalty, the interest) and the credit (a decrease)."""
    due_minor = max(delta_minor, 0) + penalty_minor + interest_minor
    return [
        TraceLine(
            "assessment.due",
            "Amount due: the increase, the penalty and the interest",
            due_minor,
            ("assessment.delta", "penalty.late_filing", "interest.late_payment"),
            f"max({format_minor(delta_minor)}, 0) + {format_minor(penalty_minor)} + "
            f"{format_minor(interest_minor)}",
            None,
        ),
        TraceLine(
            "assessment.credit",
            "Credit to the taxpayer: the decrease",
            max(-delta_minor, 0),
            ("assessment.delta",),
            f"max(−({format_minor(delta_minor)}), 0)",
            None,
        ),
    ]
