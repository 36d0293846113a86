"""Hypothesis over the shipped rule packs: for every pack, every return kind and every period the
pack has rules for, the tax

- is never negative and never above the income;
- never falls when the income rises (salary in annual and in monthly mode, other income);
- rises at a marginal rate ( tax(x + Δ) − tax(x) ) / Δ within the pack's bounds of the brackets
  used, allowing the rounding of one minor unit per rounded line.

Two refinements of the bound, both from the law's structure rather than from the code:
- on the general income the brackets apply to the *taxable* income, so the bound is checked
  against Δ taxable; against Δ income the rate may exceed the top bracket where a degressive
  exemption is phased out (each unit of income also removes full/(to − from) of exemption:
  Estonia's 20 % becomes 20 % × (1 + 600/1,080) ≈ 31 % between 14,400 € and 25,200 €), and may
  be 0 where the exemption covers the income, so it is bounded by [0, max × (1 + slope)];
- corporate tax on a distribution is grossed up: the bound is rate / (1 − rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from tax.calendar import Period, period_containing
from tax.engine import compute_return
from tax.returns import CORPORATE, MONTHS_PER_YEAR, PERSONAL, FilingData, SalaryEntry
from tax.rulepack import Degressive, RulePack, shipped_packs
from tax.trace import Computation

EMPLOYER = "ir-lid:10380284790"
MAX_INCOME_MINOR = 10**14  # beyond any real income in IRR rials or EUR cents
MAX_STEP_MINOR = 10**11
SALARY_BRACKETS = "personal.salary.monthly_brackets"
GENERAL_BRACKETS = "personal.brackets"
EXEMPTION = "personal.exemption"


@dataclass(frozen=True)
class Case:
    pack: RulePack
    period: Period

    def __repr__(self) -> str:  # hypothesis prints it when a property fails
        return f"Case({self.pack.jurisdiction}, {self.period.label})"


def _periods_with_rules(pack: RulePack, kind: str) -> list[Case]:
    """Every period of the return kind from the one holding the pack's earliest value to the one
    holding its latest, kept when the pack has all the rules it needs."""
    period_kind = pack.returns[kind].period
    sinces = [value.since for values in pack.params.values() for value in values]
    period = period_containing(pack, min(sinces), kind=period_kind)
    last = period_containing(pack, max(sinces), kind=period_kind)
    cases: list[Case] = []
    while period.start <= last.start:
        data = FilingData(
            kind, pack.jurisdiction, period, None, profit_minor=0, distributed_profit_minor=0
        )
        computation = compute_return(pack, data, today=period.end + timedelta(days=1))
        if "no_rules_for_period" not in [issue.code for issue in computation.issues]:
            cases.append(Case(pack, period))
        period = period_containing(pack, period.end + timedelta(days=1), kind=period_kind)
    return cases


PERSONAL_CASES = [
    case
    for pack in shipped_packs().values()
    if PERSONAL in pack.returns
    for case in _periods_with_rules(pack, PERSONAL)
]
CORPORATE_CASES = [
    case
    for pack in shipped_packs().values()
    if CORPORATE in pack.returns
    for case in _periods_with_rules(pack, CORPORATE)
]
SALARY_CASES = [case for case in PERSONAL_CASES if case.pack.has(SALARY_BRACKETS)]


def test_every_shipped_pack_has_periods_with_rules() -> None:
    for jurisdiction, pack in shipped_packs().items():
        for kind in pack.returns:
            if kind not in (PERSONAL, CORPORATE):
                continue  # the VAT return computes from invoices, not from brackets
            assert _periods_with_rules(pack, kind), f"{jurisdiction} {kind}: no period has rules"
    assert SALARY_CASES, "no shipped pack has salary brackets: the salary properties test nothing"


def _today(period: Period) -> date:
    return period.end + timedelta(days=1)


def _personal(
    case: Case, *, salary: tuple[SalaryEntry, ...] = (), other_minor: int = 0
) -> Computation:
    data = FilingData(
        PERSONAL,
        case.pack.jurisdiction,
        case.period,
        None,
        salary=salary,
        other_income_minor=other_minor,
    )
    computation = compute_return(case.pack, data, today=_today(case.period))
    assert computation.accepted, computation.issues
    return computation


def _annual(case: Case, salary_minor: int) -> Computation:
    return _personal(case, salary=(SalaryEntry(EMPLOYER, salary_minor, None, 0),))


def _monthly(case: Case, month_minor: int) -> Computation:
    months = (month_minor,) * MONTHS_PER_YEAR
    return _personal(case, salary=(SalaryEntry(EMPLOYER, None, months, 0),))


def _other(case: Case, income_minor: int) -> Computation:
    return _personal(case, other_minor=income_minor)


def _rounded_lines(computation: Computation) -> int:
    """Lines rounded on their own (bands, months, the exemption): each may lose one unit."""
    prefixes = (
        "salary.tax.band.",
        "salary.tax.month.",
        "general.tax.band.",
        "general.exemption",
        "corporate.tax",
    )
    return sum(1 for line in computation.lines if line.code.startswith(prefixes))


def _basic_properties(
    low: Computation, high: Computation, *, low_income: int, high_income: int
) -> None:
    assert 0 <= low.tax_minor <= low_income
    assert 0 <= high.tax_minor <= high_income
    assert low.tax_minor <= high.tax_minor


def _within(
    diff_minor: int, step_minor: int, bounds: tuple[Fraction, Fraction], tolerance: int
) -> None:
    low, high = bounds
    assert low * step_minor - tolerance <= diff_minor <= high * step_minor + tolerance, (
        diff_minor,
        step_minor,
        bounds,
    )


def _bounds(pack: RulePack, name: str) -> tuple[Fraction, Fraction]:
    low, high = pack.bounds(name)
    return Fraction(low), Fraction(high)


incomes = st.integers(min_value=0, max_value=MAX_INCOME_MINOR)
steps = st.integers(min_value=1, max_value=MAX_STEP_MINOR)


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(SALARY_CASES), salary=incomes, step=steps)
def test_salary_in_annual_mode(case: Case, salary: int, step: int) -> None:
    low, high = _annual(case, salary), _annual(case, salary + step)
    _basic_properties(low, high, low_income=salary, high_income=salary + step)
    tolerance = _rounded_lines(low) + _rounded_lines(high)
    _within(high.tax_minor - low.tax_minor, step, _bounds(case.pack, SALARY_BRACKETS), tolerance)


@settings(max_examples=300, deadline=None)
@given(
    case=st.sampled_from(SALARY_CASES),
    month=st.integers(0, MAX_INCOME_MINOR // 12),
    step=st.integers(1, MAX_STEP_MINOR),
)
def test_salary_in_monthly_mode(case: Case, month: int, step: int) -> None:
    low, high = _monthly(case, month), _monthly(case, month + step)
    _basic_properties(low, high, low_income=12 * month, high_income=12 * (month + step))
    tolerance = _rounded_lines(low) + _rounded_lines(high)
    _within(
        high.tax_minor - low.tax_minor, 12 * step, _bounds(case.pack, SALARY_BRACKETS), tolerance
    )


def _exemption_slope(case: Case, computation: Computation) -> Fraction:
    line = computation.line("general.exemption")
    if line is None or line.parameter is None or not isinstance(line.parameter.value, Degressive):
        return Fraction(0)
    value = line.parameter.value
    if value.from_minor is None or value.to_minor is None:
        return Fraction(0)
    return Fraction(value.full_minor, value.to_minor - value.from_minor)


def _general_marginal(case: Case, low: Computation, high: Computation, step: int) -> None:
    tolerance = _rounded_lines(low) + _rounded_lines(high)
    diff = high.tax_minor - low.tax_minor
    bottom, top = _bounds(case.pack, GENERAL_BRACKETS)
    slope = max(_exemption_slope(case, low), _exemption_slope(case, high))
    _within(diff, step, (Fraction(0), top * (1 + slope)), tolerance)
    taxable = [c.line("general.taxable") for c in (low, high)]
    general = [c.line("general.tax") for c in (low, high)]
    assert taxable[0] is not None and taxable[1] is not None
    assert general[0] is not None and general[1] is not None
    taxable_step = taxable[1].amount_minor - taxable[0].amount_minor
    assert taxable_step >= 0
    if taxable_step:
        general_diff = general[1].amount_minor - general[0].amount_minor
        _within(general_diff, taxable_step, (bottom, top), tolerance)


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(PERSONAL_CASES), income=incomes, step=steps)
def test_other_income(case: Case, income: int, step: int) -> None:
    low, high = _other(case, income), _other(case, income + step)
    _basic_properties(low, high, low_income=income, high_income=income + step)
    _general_marginal(case, low, high, step)


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(PERSONAL_CASES), salary=incomes, other=incomes, step=steps)
def test_salary_and_other_income_together(case: Case, salary: int, other: int, step: int) -> None:
    entry = (SalaryEntry(EMPLOYER, salary, None, 0),)
    low = _personal(case, salary=entry, other_minor=other)
    more_other = _personal(case, salary=entry, other_minor=other + step)
    more_salary = _personal(
        case, salary=(SalaryEntry(EMPLOYER, salary + step, None, 0),), other_minor=other
    )
    total = salary + other
    for high in (more_other, more_salary):
        _basic_properties(low, high, low_income=total, high_income=total + step)


def _corporate(case: Case, amount_minor: int) -> Computation:
    base = case.pack.text_at("corporate.base", on=case.period.start).value
    profit = amount_minor if base == "profit" else None
    distributed = amount_minor if base == "distribution" else None
    data = FilingData(
        CORPORATE,
        case.pack.jurisdiction,
        case.period,
        None,
        profit_minor=profit,
        distributed_profit_minor=distributed,
    )
    computation = compute_return(case.pack, data, today=_today(case.period))
    assert computation.accepted, computation.issues
    return computation


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(CORPORATE_CASES), amount=incomes, step=steps)
def test_corporate(case: Case, amount: int, step: int) -> None:
    low, high = _corporate(case, amount), _corporate(case, amount + step)
    _basic_properties(low, high, low_income=amount, high_income=amount + step)
    bottom, top = _bounds(case.pack, "corporate.rate")
    if case.pack.text_at("corporate.base", on=case.period.start).value == "distribution":
        bottom, top = bottom / (1 - bottom), top / (1 - top)
    _within(high.tax_minor - low.tax_minor, step, (bottom, top), 2)


@settings(max_examples=100, deadline=None)
@given(
    case=st.sampled_from(
        [
            c
            for c in CORPORATE_CASES
            if c.pack.text_at("corporate.base", on=c.period.start).value == "profit"
        ]
    ),
    loss=st.integers(1, MAX_INCOME_MINOR),
)
def test_a_loss_is_never_taxed(case: Case, loss: int) -> None:
    assert _corporate(case, -loss).tax_minor == 0


def test_bounds_helper_reads_decimal_rates() -> None:
    # The bounds the properties rely on are the pack's own (Decimal, exact), not floats.
    for pack in shipped_packs().values():
        low, high = pack.bounds(GENERAL_BRACKETS)
        assert isinstance(low, Decimal) and isinstance(high, Decimal) and 0 <= low <= high <= 1
