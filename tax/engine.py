"""The computation engine: (rule pack, filing data) → a computation with its full trace
(docs/TAX.md, "Engine"). `assess` (tax.penalties) is re-exported here: the assessment of an
accepted computation against the version it amends.

Pure functions over values; today's date and the filing date are passed in. Every figure comes
from the pack, read on the first day of the return's period. Business-rule problems (a period
not yet ended, no rules in force, a deduction the pack does not allow) become Issues of the
computation, never exceptions: a return that breaks them is still recorded, as rejected.
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from tax.errors import RuleNotInForceError, RulePackError
from tax.penalties import Assessment, assess
from tax.returns import CORPORATE, MONTHS_PER_YEAR, PERSONAL, FilingData
from tax.rulepack import Bracket, DatedValue, RulePack
from tax.trace import (
    ERROR,
    WARNING,
    Computation,
    Issue,
    Tracer,
    bands,
    format_minor,
    format_rate,
    format_sum,
)

__all__ = [
    "Assessment",
    "Computation",
    "assess",
    "compute_return",
]

ISSUE_PERIOD_NOT_ENDED = "period_not_ended"
ISSUE_NO_RULES = "no_rules_for_period"
ISSUE_DEDUCTION_NOT_ALLOWED = "deduction_not_allowed"
ISSUE_DEDUCTION_CAPPED = "deduction_capped"

SALARY_BRACKETS = "personal.salary.monthly_brackets"
GENERAL_BRACKETS = "personal.brackets"
EXEMPTION = "personal.exemption"
DEDUCTION_PREFIX = "personal.deductions."
DEDUCTIONS_TOTAL_CAP = "personal.deductions.total_cap"


def compute_return(pack: RulePack, data: FilingData, *, today: date) -> Computation:
    """Compute a return with its trace. `today` decides whether the period has ended.

    Issues: period_not_ended (error; the lines are still computed, as a preview),
    no_rules_for_period (error; no lines), deduction_not_allowed (error), deduction_capped and
    unverified_parameter (warnings). Raises ValueError when `data` is of another jurisdiction
    than `pack` or of an unknown kind, RulePackError when the pack holds an impossible value
    (a distribution rate of 100 %).
    """
    if data.jurisdiction != pack.jurisdiction:
        raise ValueError("the filing data is of another jurisdiction than the pack")
    if data.kind not in (PERSONAL, CORPORATE):
        raise ValueError("unknown return kind")
    period = data.period
    first: list[Issue] = []
    if today <= period.end:
        first.append(
            Issue(
                ISSUE_PERIOD_NOT_ENDED,
                ERROR,
                f"the period {period.label} has not ended: a return is filed after its end",
                "/payload/period",
            )
        )
    tracer = Tracer(pack)
    try:
        if data.kind == PERSONAL:
            tax_minor, credits_minor = _personal(tracer, data)
        else:
            tax_minor, credits_minor = _corporate(tracer, data)
    except RuleNotInForceError as error:
        # Lines computed before the missing value would be a partial, misleading trace.
        issue = Issue(
            ISSUE_NO_RULES,
            ERROR,
            f"the {pack.jurisdiction} pack has no value of {error.name} for the period "
            f"{period.label}",
            "/payload/period",
        )
        return Computation(
            data.kind, pack.jurisdiction, period, pack.version, (), 0, 0, (*first, issue), ()
        )
    return Computation(
        kind=data.kind,
        jurisdiction=pack.jurisdiction,
        period=period,
        pack_version=pack.version,
        lines=tuple(tracer.lines),
        tax_minor=tax_minor,
        credits_minor=credits_minor,
        issues=(*first, *tracer.issues, *tracer.unverified_issues()),
        unverified=tuple(tracer.unverified),
    )


def _personal(t: Tracer, data: FilingData) -> tuple[int, int]:
    """Personal income tax: salary by its own brackets when the pack has them (else salary
    joins the general income), the general income after deductions and the exemption by the
    progressive brackets; then credits and the balance."""
    pointers = [
        _salary_pointer(index, entry.monthly_minor is not None)
        for index, entry in enumerate(data.salary)
    ]
    totals = [entry.total_minor for entry in data.salary]
    salary = t.add(
        "salary.income",
        "Salary income for the period, over every employer",
        sum(totals),
        inputs=tuple(pointers),
        formula=format_sum(totals),
    )
    if t.pack.has(SALARY_BRACKETS):
        salary_tax, to_general = _salary_tax(t, data, salary), 0
    else:
        t.add(
            "salary.mode",
            "This pack has no salary brackets: salary joins the general income",
            0,
            inputs=("salary.income",),
            formula="0",
        )
        salary_tax, to_general = 0, salary
    general_tax = _general(t, data, salary_minor=to_general)
    tax = t.add(
        "tax.total",
        "Tax for the period: salary tax and tax on the general income",
        salary_tax + general_tax,
        inputs=("salary.tax", "general.tax") if t.pack.has(SALARY_BRACKETS) else ("general.tax",),
        formula=f"{format_minor(salary_tax)} + {format_minor(general_tax)}",
    )
    withheld = [
        (f"/payload/salary/{i}/withheld_minor", e.withheld_minor) for i, e in enumerate(data.salary)
    ]
    return tax, t.credits(tax_minor=tax, prepaid_minor=data.tax_prepaid_minor, withheld=withheld)


def _salary_pointer(index: int, monthly: bool) -> str:
    return f"/payload/salary/{index}/{'monthly_minor' if monthly else 'annual_minor'}"


def _salary_tax(t: Tracer, data: FilingData, salary_minor: int) -> int:
    """Monthly mode when every employer gave monthly amounts: the monthly brackets on each
    month's total over employers. Otherwise annual mode: the bounds × 12 on the year's salary."""
    value, brackets = t.brackets(SALARY_BRACKETS, on=data.period.start)
    monthly = [e.monthly_minor for e in data.salary if e.monthly_minor is not None]
    if data.salary and len(monthly) == len(data.salary):
        t.add(
            "salary.mode",
            "Monthly mode: every employer gave twelve monthly amounts; the monthly brackets "
            "apply to each month's total over employers",
            0,
            inputs=("salary.income",),
            formula=f"{MONTHS_PER_YEAR} months",
            parameter=value,
        )
        codes = _salary_months(t, monthly, (value, brackets))
    else:
        scale = MONTHS_PER_YEAR if data.period.kind == "year" else 1
        t.add(
            "salary.mode",
            f"Annual mode: the monthly salary brackets, every bound × {scale}, apply to the "
            "period's salary",
            0,
            inputs=("salary.income",),
            formula=f"bounds × {scale}",
            parameter=value,
        )
        codes = t.band_lines(
            "salary.tax.band",
            income_code="salary.income",
            income_minor=salary_minor,
            brackets=(value, brackets),
            scale=scale,
        )
    amounts = [line.amount_minor for line in t.lines if line.code in codes]
    return t.add(
        "salary.tax", "Salary tax", sum(amounts), inputs=codes, formula=format_sum(amounts)
    )


def _salary_months(
    t: Tracer,
    monthly: list[tuple[int, ...]],
    brackets: tuple[DatedValue, tuple[Bracket, ...]],
) -> tuple[str, ...]:
    """One line per month: the monthly brackets on that month's salary over every employer,
    rounded once per month. Returns the lines' codes."""
    value, table = brackets
    codes = tuple(f"salary.tax.month.{m}" for m in range(1, MONTHS_PER_YEAR + 1))
    for month, code in enumerate(codes):
        income = sum(amounts[month] for amounts in monthly)
        in_month = bands(table, income_minor=income, scale=1)
        parts = [
            f"{format_rate(band.bracket.rate)} × {format_minor(band.part_minor)}"
            for band in in_month
            if band.part_minor
        ]
        exact = sum(
            (Fraction(band.bracket.rate) * band.part_minor for band in in_month), Fraction()
        )
        t.add(
            code,
            f"Salary tax of month {month + 1}, on that month's salary {format_minor(income)}",
            t.round(exact),
            inputs=tuple(f"/payload/salary/{i}/monthly_minor/{month}" for i in range(len(monthly))),
            formula=" + ".join(parts) or "0",
            parameter=value,
        )
    return codes


def _general(t: Tracer, data: FilingData, *, salary_minor: int) -> int:
    """Tax on the general income: income − allowed deductions − exemption, band by band."""
    on = data.period.start
    other = data.other_income_minor or 0
    income = t.add(
        "general.income",
        "General income: non-salary income, and salary when it has no brackets of its own",
        salary_minor + other,
        inputs=("salary.income", "/payload/other_income_minor"),
        formula=f"{format_minor(salary_minor)} + {format_minor(other)}",
    )
    deductions = _deductions(t, data)
    exemption = _exemption(t, on=on, income_minor=income)
    taxable = t.add(
        "general.taxable",
        "Taxable general income: income less deductions and the exemption, at least 0",
        max(income - deductions - exemption, 0),
        inputs=("general.income", "general.deductions", "general.exemption"),
        formula=f"max({format_minor(income)} − {format_minor(deductions)} − "
        f"{format_minor(exemption)}, 0)",
    )
    codes = t.band_lines(
        "general.tax.band",
        income_code="general.taxable",
        income_minor=taxable,
        brackets=t.brackets(GENERAL_BRACKETS, on=on),
        scale=1,
    )
    amounts = [line.amount_minor for line in t.lines if line.code in codes]
    return t.add(
        "general.tax",
        "Tax on the general income",
        sum(amounts),
        inputs=codes,
        formula=format_sum(amounts),
    )


def _deductions(t: Tracer, data: FilingData) -> int:
    """Each claimed deduction up to its cap in the pack (a code the pack does not have for the
    period is refused), then the total up to personal.deductions.total_cap when there is one."""
    on = data.period.start
    codes: list[str] = []
    allowed: list[int] = []
    for index, deduction in enumerate(data.deductions):
        pointer = f"/payload/deductions/{index}"
        try:
            cap_value, cap = t.amount(f"{DEDUCTION_PREFIX}{deduction.code}", on=on)
        except RuleNotInForceError:
            t.issue(
                ISSUE_DEDUCTION_NOT_ALLOWED,
                ERROR,
                "the pack allows no deduction of this code for the period",
                f"{pointer}/code",
            )
            continue
        if deduction.amount_minor > cap:
            t.issue(
                ISSUE_DEDUCTION_CAPPED,
                WARNING,
                f"the deduction is capped at {format_minor(cap)}",
                f"{pointer}/amount_minor",
            )
        codes.append(f"general.deductions.{deduction.code}")
        allowed.append(
            t.add(
                codes[-1],
                f"Deduction {deduction.code}, up to its cap",
                min(deduction.amount_minor, cap),
                inputs=(f"{pointer}/amount_minor",),
                formula=f"min({format_minor(deduction.amount_minor)}, {format_minor(cap)})",
                parameter=cap_value,
            )
        )
    total = sum(allowed)
    total_value: DatedValue | None = None
    formula = format_sum(allowed)
    if allowed and t.pack.has(DEDUCTIONS_TOTAL_CAP):
        total_value, total_cap = t.amount(DEDUCTIONS_TOTAL_CAP, on=on)
        if total > total_cap:
            t.issue(
                ISSUE_DEDUCTION_CAPPED,
                WARNING,
                f"the deductions together are capped at {format_minor(total_cap)}",
                "/payload/deductions",
            )
        formula = f"min({formula}, {format_minor(total_cap)})"
        total = min(total, total_cap)
    return t.add(
        "general.deductions",
        "Deductions allowed",
        total,
        inputs=tuple(codes),
        formula=formula,
        parameter=total_value,
    )


def _exemption(t: Tracer, *, on: date, income_minor: int) -> int:
    """The exemption for this income: flat, or falling linearly to 0 over the pack's band."""
    if not t.pack.has(EXEMPTION):
        return t.add("general.exemption", "This pack has no exemption", 0, inputs=(), formula="0")
    value, exemption = t.degressive(EXEMPTION, on=on)
    full, low, high = exemption.full_minor, exemption.from_minor, exemption.to_minor
    if low is None or high is None or income_minor <= low:
        formula = format_minor(full)
    elif income_minor >= high:
        formula = f"0 (the income is at least {format_minor(high)})"
    else:
        formula = (
            f"{format_minor(full)} − {format_minor(full)} × ({format_minor(income_minor)} − "
            f"{format_minor(low)}) / ({format_minor(high)} − {format_minor(low)})"
        )
    return t.add(
        "general.exemption",
        "Exemption",
        exemption.amount_for(income_minor, rounding=t.pack.rounding),
        inputs=("general.income",),
        formula=formula,
        parameter=value,
    )


def _corporate(t: Tracer, data: FilingData) -> tuple[int, int]:
    """Corporate tax on the profit (a loss is taxed 0) or on the distributed profit grossed up:
    distribution × rate / (1 − rate)."""
    on = data.period.start
    base_value, base = t.text("corporate.base", on=on)
    rate_value, rate = t.rate("corporate.rate", on=on)
    if base == "profit":
        profit = data.profit_minor or 0
        amount = t.add(
            "corporate.base",
            "Taxable profit for the period (a loss is taxed 0)",
            max(profit, 0),
            inputs=("/payload/profit_minor",),
            formula=f"max({format_minor(profit)}, 0)",
            parameter=base_value,
        )
        exact = Fraction(rate) * amount
        formula = f"{format_rate(rate)} × {format_minor(amount)}"
    else:
        if rate >= 1:  # the gross-up divides by 1 − rate
            raise RulePackError(
                "a distribution rate is below 1", pack=t.pack.jurisdiction, pointer=rate_value.name
            )
        amount = t.add(
            "corporate.base",
            "Profit distributed in the period",
            data.distributed_profit_minor or 0,
            inputs=("/payload/distributed_profit_minor",),
            formula=format_minor(data.distributed_profit_minor or 0),
            parameter=base_value,
        )
        exact = Fraction(rate) / (1 - Fraction(rate)) * amount
        formula = f"{format_minor(amount)} × {format_rate(rate)} / (100% − {format_rate(rate)})"
    tax = t.add(
        "corporate.tax",
        "Corporate income tax",
        t.round(exact),
        inputs=("corporate.base",),
        formula=formula,
        parameter=rate_value,
    )
    t.add(
        "tax.total", "Tax for the period", tax, inputs=("corporate.tax",), formula=format_minor(tax)
    )
    return tax, t.credits(tax_minor=tax, prepaid_minor=data.tax_prepaid_minor, withheld=None)
