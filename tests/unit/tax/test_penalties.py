"""tax.penalties: months counted in the pack's calendar, late-payment interest (pro rata by
days, whole months, per day), the late-filing penalty, and tax.engine.assess on one version.

Packs are test_engine's: "zz" (Gregorian, 2.5 % a month pro rata, penalty 10 %, weekend
Saturday-Sunday), "yy" (0.06 % a day), and Solar Hijri copies of "zz".
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import jdatetime
import pytest

from tax.engine import assess, compute_return
from tax.penalties import late_filing_penalty, late_payment_interest, months_between
from tax.rulepack import RulePack
from tests.unit.tax.test_engine import ZZ_PARAMS, corporate, personal, write_pack, yy_pack

MILLION = 1_000_000


def jalali(text: str) -> date:
    year, month, day = (int(part) for part in text.split("-"))
    gregorian: date = jdatetime.date(year, month, day).togregorian()
    return gregorian


def solar_pack(
    folder: Path, *, partial: str = "pro_rata_days", status: str = "enacted"
) -> RulePack:
    params = ZZ_PARAMS.replace('since = "2020-01-01"', 'since = "1399-01-01"').replace(
        'since = "2023-07-01"', 'since = "1402-04-10"'
    )
    params = params.replace('value = "pro_rata_days"', f'value = "{partial}"')
    if status != "enacted":
        marker = '[[params."interest.partial_month".values]]'
        head, tail = params.split(marker)
        params = head + marker + tail.replace('status = "enacted"', f'status = "{status}"', 1)
    return write_pack(folder, params, jurisdiction="qq", calendar="solar_hijri", first_year="1399")


@pytest.fixture
def zz(tmp_path: Path) -> RulePack:
    return write_pack(tmp_path)


@pytest.fixture
def qq(tmp_path: Path) -> RulePack:
    return solar_pack(tmp_path)


# --- months in the pack's calendar ----------------------------------------------------------------


def test_months_between_gregorian(zz: RulePack) -> None:
    assert months_between(zz, start=date(2024, 1, 15), end=date(2024, 1, 15)) == (0, 0)
    assert months_between(zz, start=date(2024, 1, 15), end=date(2024, 2, 14)) == (0, 30)
    assert months_between(zz, start=date(2024, 1, 15), end=date(2024, 2, 15)) == (1, 0)
    # From 31 January one month ends on 29 February (2024 is a leap year), two on 31 March.
    assert months_between(zz, start=date(2024, 1, 31), end=date(2024, 2, 29)) == (1, 0)
    assert months_between(zz, start=date(2024, 1, 31), end=date(2024, 3, 30)) == (1, 30)
    assert months_between(zz, start=date(2024, 1, 31), end=date(2024, 3, 31)) == (2, 0)
    assert months_between(zz, start=date(2023, 12, 20), end=date(2025, 1, 19)) == (12, 30)
    with pytest.raises(ValueError):
        months_between(zz, start=date(2024, 1, 2), end=date(2024, 1, 1))


def test_months_between_across_esfand_and_farvardin(qq: RulePack) -> None:
    # 15 Esfand 1403 → 20 Farvardin 1404: one month (to 15 Farvardin) and 5 days.
    assert months_between(qq, start=jalali("1403-12-15"), end=jalali("1404-01-20")) == (1, 5)
    # From 30 Bahman 1403 one month ends on 30 Esfand 1403 (a leap year: Esfand has 30 days);
    # from 30 Bahman 1402 on 29 Esfand 1402 (Esfand has 29), the day after is 1 Farvardin 1403.
    assert months_between(qq, start=jalali("1403-11-30"), end=jalali("1403-12-30")) == (1, 0)
    assert months_between(qq, start=jalali("1402-11-30"), end=jalali("1402-12-29")) == (1, 0)
    assert months_between(qq, start=jalali("1402-11-30"), end=jalali("1403-01-01")) == (1, 1)
    # 31 Shahrivar → 30 Mehr is one month (Mehr has 30 days); → 31 Farvardin next year: 7.
    assert months_between(qq, start=jalali("1403-06-31"), end=jalali("1403-07-30")) == (1, 0)
    assert months_between(qq, start=jalali("1403-06-31"), end=jalali("1404-01-31")) == (7, 0)


# --- interest -------------------------------------------------------------------------------------


def test_interest_pro_rata_by_days(qq: RulePack) -> None:
    # 2.5 % × 1,000,000 × (1 + 5/30) = 29,166.67 → 29,166 (rounding down).
    line = late_payment_interest(
        qq,
        unpaid_minor=MILLION,
        due_on=jalali("1403-12-15"),
        paid_on=jalali("1404-01-20"),
        code="i",
    )
    assert line.amount_minor == 29_166
    assert line.formula == "2.5% × 1,000,000 × (1 + 5/30) months"
    assert line.parameter is not None and line.parameter.name == "interest.late_payment"
    assert line.code == "i" and "1403-12-15" in line.label and "1404-01-20" in line.label


def test_interest_whole_months(tmp_path: Path) -> None:
    pack = solar_pack(tmp_path, partial="whole_months")
    due, paid = jalali("1403-12-15"), jalali("1404-01-20")
    line = late_payment_interest(pack, unpaid_minor=MILLION, due_on=due, paid_on=paid, code="i")
    assert line.amount_minor == 50_000  # 2.5 % × 1,000,000 × 2 months (1 whole + 1 begun)
    assert line.formula == "2.5% × 1,000,000 × 2 months (1 whole + 1 begun)"
    exact = late_payment_interest(
        pack, unpaid_minor=MILLION, due_on=due, paid_on=jalali("1404-01-15"), code="i"
    )
    assert exact.amount_minor == 25_000  # exactly one month: nothing begun


def test_an_unverified_partial_month_rule_is_named_in_the_label(tmp_path: Path) -> None:
    pack = solar_pack(tmp_path, status="unverified")
    line = late_payment_interest(
        pack,
        unpaid_minor=MILLION,
        due_on=jalali("1403-12-15"),
        paid_on=jalali("1404-01-20"),
        code="i",
    )
    assert "interest.partial_month = pro_rata_days is unverified" in line.label


def test_interest_per_day(tmp_path: Path) -> None:
    yy = yy_pack(tmp_path)
    # 0.06 % × 1,000,000 × 12 days = 7,200.
    line = late_payment_interest(
        yy, unpaid_minor=MILLION, due_on=date(2024, 12, 30), paid_on=date(2025, 1, 11), code="i"
    )
    assert line.amount_minor == 7_200
    assert line.formula == "0.06% × 1,000,000 × 12 days"


def test_no_interest_when_paid_by_the_due_date(zz: RulePack) -> None:
    line = late_payment_interest(
        zz, unpaid_minor=MILLION, due_on=date(2024, 4, 1), paid_on=date(2024, 4, 1), code="i"
    )
    assert (line.amount_minor, line.parameter) == (0, None)
    with pytest.raises(ValueError):
        late_payment_interest(
            zz, unpaid_minor=-1, due_on=date(2024, 4, 1), paid_on=date(2024, 5, 1), code="i"
        )


def test_late_filing_penalty(zz: RulePack) -> None:
    due = date(2024, 4, 1)
    on_time = late_filing_penalty(
        zz, kind="personal", undeclared_minor=MILLION, due_on=due, filed_on=due
    )
    assert (on_time.amount_minor, on_time.parameter) == (0, None)
    assert "no late-filing penalty" in on_time.label
    late = late_filing_penalty(
        zz,
        kind="personal",
        undeclared_minor=12_345,
        due_on=due,
        filed_on=date(2024, 4, 2),
        due_reasons=["x"],
    )
    assert late.amount_minor == 1_234  # 10 % × 12,345 = 1,234.5 → 1,234
    assert late.formula == "10% × 12,345"
    assert late.parameter is not None and late.parameter.name == "penalty.late_filing.personal"
    assert "2024-04-01 (x)" in late.label


# --- assess (one version) -------------------------------------------------------------------------


def test_assess_on_time_first_filing(zz: RulePack) -> None:
    # 2023 is due 2024-03-31, a Sunday (weekend): rolled to Monday 2024-04-01.
    c = compute_return(zz, personal(zz, other_minor=5_000), today=date(2024, 4, 1))
    a = assess(
        zz,
        c,
        previous_tax_minor=0,
        previous_credits_minor=0,
        filed_on=date(2024, 4, 1),
        first_filing=True,
    )
    got = {line.code: line.amount_minor for line in a.lines}
    assert got == {
        "assessment.delta": 300,
        "penalty.late_filing": 0,
        "interest.late_payment": 0,
        "assessment.due": 300,
        "assessment.credit": 0,
    }
    assert (a.due_minor, a.credit_minor, a.due_on) == (300, 0, date(2024, 4, 1))
    penalty = a.lines[1]
    assert "2024-03-31 is a Sunday" in penalty.label


def test_assess_late_filing_and_payment(zz: RulePack) -> None:
    # Other income 22,000: exemption 0 (above 20,000); 10 % × 10,000 + 25 % × 12,000 = 4,000.
    # Filed 2024-05-15, due 2024-04-01: penalty 10 % × 4,000 = 400;
    # interest 2.5 % × 4,000 × (1 + 14/30) = 146.67 → 146.
    c = compute_return(zz, personal(zz, other_minor=22_000), today=date(2024, 5, 15))
    a = assess(
        zz,
        c,
        previous_tax_minor=0,
        previous_credits_minor=0,
        filed_on=date(2024, 5, 15),
        first_filing=True,
    )
    got = {line.code: line.amount_minor for line in a.lines}
    assert (got["assessment.delta"], got["penalty.late_filing"], got["interest.late_payment"]) == (
        4_000,
        400,
        146,
    )
    assert a.lines[2].formula == "2.5% × 4,000 × (1 + 14/30) months"
    assert (a.due_minor, a.credit_minor, a.due_on) == (4_546, 0, date(2024, 5, 15))


def test_assess_a_refund_on_time(zz: RulePack) -> None:
    data = personal(zz, other_minor=5_000, prepaid_minor=1_000)
    c = compute_return(zz, data, today=date(2024, 2, 1))
    a = assess(
        zz,
        c,
        previous_tax_minor=0,
        previous_credits_minor=0,
        filed_on=date(2024, 2, 1),
        first_filing=True,
    )
    assert (a.due_minor, a.credit_minor, a.due_on) == (0, 700, date(2024, 4, 1))


def test_assess_a_corporate_return_in_its_own_deadline(zz: RulePack) -> None:
    # Corporate 2023 is due four months after December: 2024-04-30 (a Tuesday).
    c = compute_return(zz, corporate(zz, "2023", profit_minor=4_000), today=date(2024, 5, 1))
    a = assess(
        zz,
        c,
        previous_tax_minor=0,
        previous_credits_minor=0,
        filed_on=date(2024, 5, 1),
        first_filing=True,
    )
    got = {line.code: line.amount_minor for line in a.lines}
    # Penalty 10 % × 1,000 = 100; interest 2.5 % × 1,000 × 1/30 = 0.83 → 0.
    assert (got["penalty.late_filing"], got["interest.late_payment"], a.due_minor) == (
        100,
        0,
        1_100,
    )


def test_assess_refuses_what_it_cannot_assess(zz: RulePack, tmp_path: Path) -> None:
    rejected = compute_return(zz, personal(zz, other_minor=1), today=date(2023, 6, 1))
    with pytest.raises(ValueError, match="accepted"):
        assess(
            zz,
            rejected,
            previous_tax_minor=0,
            previous_credits_minor=0,
            filed_on=date(2024, 1, 2),
            first_filing=True,
        )
    c = compute_return(zz, personal(zz, other_minor=1), today=date(2024, 1, 2))
    with pytest.raises(ValueError, match="first filing"):
        assess(
            zz,
            c,
            previous_tax_minor=1,
            previous_credits_minor=0,
            filed_on=date(2024, 1, 2),
            first_filing=True,
        )
    revised = write_pack(tmp_path, revision=2)
    with pytest.raises(ValueError, match="pack version"):
        assess(
            revised,
            c,
            previous_tax_minor=0,
            previous_credits_minor=0,
            filed_on=date(2024, 1, 2),
            first_filing=True,
        )
