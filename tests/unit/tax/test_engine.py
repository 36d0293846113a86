"""tax.engine.compute_return and tax.trace on small packs written here, so that every figure below
is worked out by hand from the pack in this file (never from the shipped packs' figures).

The pack "zz" (Gregorian, rounding down, weekend Saturday and Sunday):
- monthly salary brackets: 0 % up to 1,000, 10 % up to 3,000, 20 % above (since 2020-01-01);
  from 2023-07-01 (mid-year: first used for 2024) 0 % up to 2,000, 10 % above;
- general brackets: 10 % up to 10,000, 25 % above;
- exemption: 2,000 up to an income of 10,000, falling to 0 at 20,000;
- deductions: insurance (cap 500, unverified), training (cap 400), together at most 700;
- corporate: 25 % of the profit; late filing 10 %; interest 2.5 % a month, pro rata by days.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
import rfc8785

from tax.calendar import parse_period
from tax.engine import compute_return
from tax.returns import CORPORATE, PERSONAL, Deduction, FilingData, SalaryEntry
from tax.rulepack import RulePack, load_pack
from tax.trace import Computation, Tracer, format_rate

AFTER_2023 = date(2024, 2, 1)
EMPLOYER = "ir-lid:10380284790"
SECOND_EMPLOYER = "ir-nid:0499370899"

HEAD = """
[pack]
jurisdiction = "{jurisdiction}"
title = "Test pack"
revision = {revision}
currency = "EUR"
calendar = "{calendar}"
tax_agency = "agency:test-tax"
weekend = ["saturday", "sunday"]
rounding = "{rounding}"

[sources.test]
citation = "A test source"
url = "https://example.org/test"

[returns.personal]
period = "year"
subjects = ["ee-ik"]
first_period = "{first_year}"
deadline = "deadline.personal"
payment_deadline = "{payment_deadline}"

[returns.corporate]
period = "{corporate_period}"
subjects = ["ee-rg"]
first_period = "{corporate_first}"
deadline = "deadline.corporate"
payment_deadline = "deadline.corporate"
"""


def param(name: str, kind: str, *values: tuple[str, str], status: str = "enacted") -> str:
    """A parameter in TOML: each value is (since, TOML value)."""
    out = f'\n[params."{name}"]\nkind = "{kind}"\n'
    for since, value in values:
        out += (
            f'[[params."{name}".values]]\nsince = "{since}"\nvalue = {value}\nsource = "test"\n'
            f'status = "{status}"\nnote = "a note"\n'
        )
    return out


ZZ_PARAMS = "".join(
    [
        param(
            "personal.salary.monthly_brackets",
            "brackets",
            (
                "2020-01-01",
                '[{up_to_minor = 1000, rate = "0"}, {up_to_minor = 3000, rate = "0.10"}, '
                '{rate = "0.20"}]',
            ),
            ("2023-07-01", '[{up_to_minor = 2000, rate = "0"}, {rate = "0.10"}]'),
        ),
        param(
            "personal.brackets",
            "brackets",
            ("2020-01-01", '[{up_to_minor = 10000, rate = "0.10"}, {rate = "0.25"}]'),
        ),
        param(
            "personal.exemption",
            "degressive",
            ("2020-01-01", "{full_minor = 2000, from_minor = 10000, to_minor = 20000}"),
        ),
        param(
            "personal.deductions.insurance", "amount", ("2020-01-01", "500"), status="unverified"
        ),
        param("personal.deductions.training", "amount", ("2020-01-01", "400")),
        param("personal.deductions.total_cap", "amount", ("2020-01-01", "700")),
        param("corporate.base", "text", ("2020-01-01", '"profit"')),
        param("corporate.rate", "rate", ("2020-01-01", '"0.25"')),
        param("penalty.late_filing.personal", "rate", ("2020-01-01", '"0.10"')),
        param("penalty.late_filing.corporate", "rate", ("2020-01-01", '"0.10"')),
        param("interest.late_payment", "rate", ("2020-01-01", '"0.025"')),
        param("interest.unit", "text", ("2020-01-01", '"month"')),
        param("interest.partial_month", "text", ("2020-01-01", '"pro_rata_days"')),
        param(
            "deadline.personal",
            "deadline",
            ("2020-01-01", "{months_after_period_end = 3, day = 0}"),
        ),
        param(
            "deadline.corporate",
            "deadline",
            ("2020-01-01", "{months_after_period_end = 4, day = 0}"),
        ),
    ]
)

# "yy": no salary brackets (salary joins the general income), a flat 20 % (22 % from 2025), the
# exemption 600 falling to 0 between 1,440 and 2,520, distributed profit taxed 20/80 (22/78),
# interest 0.06 % a day, a monthly corporate return due on the 10th of the next month.
YY_PARAMS = "".join(
    [
        param(
            "personal.brackets",
            "brackets",
            ("2020-01-01", '[{rate = "0.20"}]'),
            ("2025-01-01", '[{rate = "0.22"}]'),
        ),
        param(
            "personal.exemption",
            "degressive",
            ("2020-01-01", "{full_minor = 600, from_minor = 1440, to_minor = 2520}"),
        ),
        param("personal.deductions.training", "amount", ("2020-01-01", "400")),
        param("corporate.base", "text", ("2020-01-01", '"distribution"')),
        param("corporate.rate", "rate", ("2020-01-01", '"0.20"'), ("2025-01-01", '"0.22"')),
        param("penalty.late_filing.personal", "rate", ("2020-01-01", '"0"')),
        param("penalty.late_filing.corporate", "rate", ("2020-01-01", '"0"')),
        param("interest.late_payment", "rate", ("2020-01-01", '"0.0006"')),
        param("interest.unit", "text", ("2020-01-01", '"day"')),
        param(
            "deadline.personal",
            "deadline",
            ("2020-01-01", "{months_after_period_end = 4, day = 30}"),
        ),
        param(
            "payment_deadline.personal",
            "deadline",
            ("2020-01-01", "{months_after_period_end = 9, day = 1}"),
        ),
        param(
            "deadline.corporate",
            "deadline",
            ("2020-01-01", "{months_after_period_end = 1, day = 10}"),
        ),
    ]
)


def write_pack(
    folder: Path,
    params: str = ZZ_PARAMS,
    *,
    jurisdiction: str = "zz",
    calendar: str = "gregorian",
    rounding: str = "down",
    revision: int = 1,
    first_year: str = "2020",
    corporate_period: str = "year",
    payment_deadline: str = "deadline.personal",
) -> RulePack:
    """Write a pack file into folder and load it with the real loader."""
    corporate_first = first_year if corporate_period == "year" else f"{first_year}-01"
    text = HEAD.format(
        jurisdiction=jurisdiction,
        calendar=calendar,
        rounding=rounding,
        revision=revision,
        first_year=first_year,
        corporate_period=corporate_period,
        corporate_first=corporate_first,
        payment_deadline=payment_deadline,
    )
    path = folder / f"{jurisdiction}-{revision}.toml"
    path.write_text(text + params, encoding="utf-8")
    return load_pack(path)


def yy_pack(folder: Path) -> RulePack:
    return write_pack(
        folder,
        YY_PARAMS,
        jurisdiction="yy",
        corporate_period="month",
        payment_deadline="payment_deadline.personal",
    )


def personal(
    pack: RulePack,
    label: str = "2023",
    *,
    salary: tuple[SalaryEntry, ...] = (),
    other_minor: int | None = None,
    deductions: tuple[Deduction, ...] = (),
    prepaid_minor: int = 0,
) -> FilingData:
    return FilingData(
        kind=PERSONAL,
        jurisdiction=pack.jurisdiction,
        period=parse_period(pack, label, kind="year"),
        postal_code=None,
        salary=salary,
        other_income_minor=other_minor,
        deductions=deductions,
        tax_prepaid_minor=prepaid_minor,
    )


def corporate(
    pack: RulePack,
    label: str,
    *,
    profit_minor: int | None = None,
    distributed_minor: int | None = None,
    prepaid_minor: int = 0,
) -> FilingData:
    return FilingData(
        kind=CORPORATE,
        jurisdiction=pack.jurisdiction,
        period=parse_period(pack, label, kind=pack.returns[CORPORATE].period),
        postal_code=None,
        profit_minor=profit_minor,
        distributed_profit_minor=distributed_minor,
        tax_prepaid_minor=prepaid_minor,
    )


def annual(amount_minor: int, withheld_minor: int = 0, employer: str = EMPLOYER) -> SalaryEntry:
    return SalaryEntry(employer, amount_minor, None, withheld_minor)


def monthly(amounts: list[int], withheld_minor: int = 0, employer: str = EMPLOYER) -> SalaryEntry:
    return SalaryEntry(employer, None, tuple(amounts), withheld_minor)


def amounts(computation: Computation) -> dict[str, int]:
    return {line.code: line.amount_minor for line in computation.lines}


def issue_codes(computation: Computation) -> list[str]:
    return [issue.code for issue in computation.issues]


@pytest.fixture
def zz(tmp_path: Path) -> RulePack:
    return write_pack(tmp_path)


@pytest.fixture
def yy(tmp_path: Path) -> RulePack:
    return yy_pack(tmp_path)


# --- salary ---------------------------------------------------------------------------------------


def test_annual_salary_applies_the_monthly_bounds_times_twelve(zz: RulePack) -> None:
    # Bands × 12: 0 % to 12,000, 10 % to 36,000, 20 % above. 30,000 → 10 % × 18,000 = 1,800.
    c = compute_return(zz, personal(zz, salary=(annual(30_000),)), today=AFTER_2023)
    got = amounts(c)
    assert got["salary.income"] == 30_000
    assert (got["salary.tax.band.1"], got["salary.tax.band.2"], got["salary.tax.band.3"]) == (
        0,
        1_800,
        0,
    )
    assert got["salary.tax"] == 1_800 == c.tax_minor
    line = c.line("salary.tax.band.2")
    assert line is not None and line.formula == "10% × (30,000 − 12,000)"
    mode = c.line("salary.mode")
    assert mode is not None and "× 12" in mode.label
    assert c.accepted and c.issues == ()


def test_monthly_mode_taxes_each_months_total_over_employers(zz: RulePack) -> None:
    # Month 12 holds 30,000 over two employers: 10 % × 2,000 + 20 % × 27,000 = 5,600; months
    # 1-11 hold 500 (under the 0 % band). Annually the same 35,500 would be 10 % × 23,500.
    first = monthly([500] * 11 + [20_000])
    second = monthly([0] * 11 + [10_000], employer=SECOND_EMPLOYER)
    c = compute_return(zz, personal(zz, salary=(first, second)), today=AFTER_2023)
    got = amounts(c)
    assert got["salary.income"] == 35_500
    assert [got[f"salary.tax.month.{m}"] for m in range(1, 13)] == [0] * 11 + [5_600]
    assert got["salary.tax"] == 5_600
    assert "salary.tax.band.1" not in got
    month = c.line("salary.tax.month.12")
    assert month is not None and month.formula == "0% × 1,000 + 10% × 2,000 + 20% × 27,000"
    assert month.inputs == (
        "/payload/salary/0/monthly_minor/11",
        "/payload/salary/1/monthly_minor/11",
    )
    annual_c = compute_return(zz, personal(zz, salary=(annual(35_500),)), today=AFTER_2023)
    assert annual_c.tax_minor == 2_350


def test_one_annual_entry_makes_the_whole_return_annual(zz: RulePack) -> None:
    salary = (monthly([2_500] * 12), annual(6_000, employer=SECOND_EMPLOYER))
    c = compute_return(zz, personal(zz, salary=salary), today=AFTER_2023)
    # 36,000 annually: 10 % × (36,000 − 12,000) = 2,400.
    assert amounts(c)["salary.tax"] == 2_400
    assert "salary.tax.month.1" not in amounts(c)


def test_the_value_in_force_on_the_first_day_of_the_period_is_used(zz: RulePack) -> None:
    # The value since 2023-07-01 is not in force on 2023-01-01: 2023 uses the first one, 2024
    # the second (0 % to 24,000 a year, 10 % above: 10 % × 6,000 = 600).
    before = compute_return(
        zz, personal(zz, "2023", salary=(annual(30_000),)), today=date(2025, 1, 1)
    )
    after = compute_return(
        zz, personal(zz, "2024", salary=(annual(30_000),)), today=date(2025, 1, 1)
    )
    assert before.tax_minor == 1_800
    assert after.tax_minor == 600
    line = after.line("salary.tax.band.2")
    assert line is not None and line.parameter is not None
    assert line.parameter.since == date(2023, 7, 1)


# --- general income, deductions, exemption --------------------------------------------------------


def test_general_income_deductions_caps_and_degressive_exemption(zz: RulePack) -> None:
    # insurance 600 capped at 500 (warning); training 300; together 800 capped at 700 (warning).
    # Exemption at 15,000: 2,000 − 2,000 × 5,000 / 10,000 = 1,000. Taxable 15,000 − 700 − 1,000
    # = 13,300: 10 % × 10,000 + 25 % × 3,300 = 1,000 + 825 = 1,825.
    deductions = (Deduction("insurance", 600), Deduction("training", 300))
    c = compute_return(
        zz, personal(zz, other_minor=15_000, deductions=deductions), today=AFTER_2023
    )
    got = amounts(c)
    assert got["general.deductions.insurance"] == 500
    assert got["general.deductions.training"] == 300
    assert got["general.deductions"] == 700
    assert got["general.exemption"] == 1_000
    assert got["general.taxable"] == 13_300
    assert (got["general.tax.band.1"], got["general.tax.band.2"]) == (1_000, 825)
    assert got["general.tax"] == 1_825 == got["tax.total"] == c.tax_minor
    capped = [i.pointer for i in c.issues if i.code == "deduction_capped"]
    assert capped == ["/payload/deductions/0/amount_minor", "/payload/deductions"]
    assert c.accepted
    assert c.unverified == ("personal.deductions.insurance",)
    warnings = [i for i in c.issues if i.code == "unverified_parameter"]
    assert len(warnings) == 1 and warnings[0].severity == "warning"


def test_a_deduction_the_pack_lacks_is_an_error(zz: RulePack) -> None:
    deductions = (Deduction("training", 100), Deduction("yacht", 5_000))
    c = compute_return(zz, personal(zz, other_minor=5_000, deductions=deductions), today=AFTER_2023)
    errors = [i for i in c.issues if i.severity == "error"]
    assert [(i.code, i.pointer) for i in errors] == [
        ("deduction_not_allowed", "/payload/deductions/1/code")
    ]
    assert not c.accepted
    assert amounts(c)["general.deductions"] == 100


def test_every_line_is_rounded_down_on_its_own(zz: RulePack) -> None:
    # Exemption at 10,005: 2,000 − 2,000 × 5 / 10,000 = 1,999. Taxable 8,006 → 800.6 → 800.
    c = compute_return(zz, personal(zz, other_minor=10_005), today=AFTER_2023)
    assert amounts(c)["general.exemption"] == 1_999
    assert c.tax_minor == 800


def test_half_up_rounding_of_the_pack(tmp_path: Path) -> None:
    pack = write_pack(tmp_path, rounding="half_up")
    c = compute_return(pack, personal(pack, other_minor=10_005), today=AFTER_2023)
    assert c.tax_minor == 801


def test_exemption_beyond_its_band_is_zero_and_income_below_it_untaxed(zz: RulePack) -> None:
    high = compute_return(zz, personal(zz, other_minor=20_000), today=AFTER_2023)
    # 10 % × 10,000 + 25 % × 10,000 = 3,500.
    assert amounts(high)["general.exemption"] == 0 and high.tax_minor == 3_500
    low = compute_return(zz, personal(zz, other_minor=1_500), today=AFTER_2023)
    assert amounts(low)["general.taxable"] == 0 and low.tax_minor == 0


def test_salary_joins_the_general_income_without_salary_brackets(yy: RulePack) -> None:
    # 2,000 of salary + 100 other: exemption 600 − 600 × 660 / 1,080 = 233.33 → 233;
    # taxable 1,867 × 20 % = 373.4 → 373.
    data = personal(yy, salary=(annual(2_000, withheld_minor=400),), other_minor=100)
    c = compute_return(yy, data, today=AFTER_2023)
    got = amounts(c)
    assert got["general.income"] == 2_100
    assert got["general.exemption"] == 233
    assert c.tax_minor == 373
    assert "salary.tax" not in got
    assert got["credits.withheld"] == 400 and c.credits_minor == 400
    assert got["balance"] == -27


def test_credits_and_balance(zz: RulePack) -> None:
    data = personal(zz, salary=(annual(30_000, withheld_minor=1_000),), prepaid_minor=300)
    c = compute_return(zz, data, today=AFTER_2023)
    got = amounts(c)
    assert (got["credits.withheld"], got["credits.prepaid"], got["credits.total"]) == (
        1_000,
        300,
        1_300,
    )
    assert got["balance"] == 500
    assert c.credits_minor == 1_300


def test_line_order_is_stable(zz: RulePack) -> None:
    data = personal(zz, salary=(annual(1),), other_minor=1, deductions=(Deduction("training", 1),))
    codes = [line.code for line in compute_return(zz, data, today=AFTER_2023).lines]
    assert codes == [
        "salary.income",
        "salary.mode",
        "salary.tax.band.1",
        "salary.tax.band.2",
        "salary.tax.band.3",
        "salary.tax",
        "general.income",
        "general.deductions.training",
        "general.deductions",
        "general.exemption",
        "general.taxable",
        "general.tax.band.1",
        "general.tax.band.2",
        "general.tax",
        "tax.total",
        "credits.withheld",
        "credits.prepaid",
        "credits.total",
        "balance",
    ]


# --- corporate ------------------------------------------------------------------------------------


def test_corporate_profit_and_loss(zz: RulePack) -> None:
    c = compute_return(zz, corporate(zz, "2023", profit_minor=10_001), today=AFTER_2023)
    assert c.tax_minor == 2_500  # 25 % × 10,001 = 2,500.25, down
    assert amounts(c)["corporate.base"] == 10_001
    loss = compute_return(zz, corporate(zz, "2023", profit_minor=-500), today=AFTER_2023)
    assert loss.tax_minor == 0 and amounts(loss)["corporate.base"] == 0


def test_corporate_distribution_is_grossed_up(yy: RulePack) -> None:
    # 8,000 × 20 / 80 = 2,000; from 2025, 7,800 × 22 / 78 = 2,200.
    c = compute_return(
        yy, corporate(yy, "2024-03", distributed_minor=8_000), today=AFTER_2023.replace(year=2026)
    )
    assert c.tax_minor == 2_000
    line = c.line("corporate.tax")
    assert line is not None and line.formula == "8,000 × 20% / (100% − 20%)"
    later = compute_return(
        yy, corporate(yy, "2025-01", distributed_minor=7_800), today=date(2026, 1, 1)
    )
    assert later.tax_minor == 2_200


def test_corporate_balance_with_prepaid(zz: RulePack) -> None:
    data = corporate(zz, "2023", profit_minor=4_000, prepaid_minor=1_500)
    c = compute_return(zz, data, today=AFTER_2023)
    assert [line.code for line in c.lines] == [
        "corporate.base",
        "corporate.tax",
        "tax.total",
        "credits.prepaid",
        "credits.total",
        "balance",
    ]
    assert amounts(c)["balance"] == -500


# --- issues ---------------------------------------------------------------------------------------


def test_a_period_not_ended_is_an_error_but_still_computed(zz: RulePack) -> None:
    data = personal(zz, other_minor=5_000)
    during = compute_return(zz, data, today=date(2023, 12, 31))
    assert issue_codes(during) == ["period_not_ended"] and not during.accepted
    assert during.tax_minor == 300  # a preview: 10 % × (5,000 − 2,000)
    assert compute_return(zz, data, today=date(2024, 1, 1)).accepted


def test_no_rules_for_the_period(zz: RulePack) -> None:
    c = compute_return(zz, personal(zz, "2019", other_minor=5_000), today=AFTER_2023)
    assert issue_codes(c) == ["no_rules_for_period"]
    assert c.issues[0].severity == "error" and c.issues[0].pointer == "/payload/period"
    assert c.lines == () and c.tax_minor == 0 and c.unverified == ()


def test_unverified_parameter_is_reported_once(tmp_path: Path) -> None:
    params = ZZ_PARAMS.replace(
        '[[params."personal.salary.monthly_brackets".values]]\nsince = "2020-01-01"',
        '[[params."personal.salary.monthly_brackets".values]]\nsince = "2020-01-01"',
    )
    params = params.replace('status = "enacted"', 'status = "unverified"', 1)
    pack = write_pack(tmp_path, params)
    data = personal(pack, salary=(monthly([2_500] * 12),))
    c = compute_return(pack, data, today=AFTER_2023)
    assert issue_codes(c) == ["unverified_parameter"]
    assert c.unverified == ("personal.salary.monthly_brackets",)
    assert "a note" in c.issues[0].message
    assert c.accepted


def test_data_of_another_jurisdiction_is_refused(zz: RulePack, yy: RulePack) -> None:
    with pytest.raises(ValueError, match="jurisdiction"):
        compute_return(zz, personal(yy), today=AFTER_2023)


# --- trace ----------------------------------------------------------------------------------------


def test_trace_json_names_parameter_since_source_and_status(zz: RulePack) -> None:
    c = compute_return(zz, personal(zz, deductions=(Deduction("insurance", 10),)), today=AFTER_2023)
    lines = c.trace_json(zz)
    insurance = next(
        line
        for line in lines
        if isinstance(line, dict) and line["code"] == "general.deductions.insurance"
    )
    assert insurance == {
        "code": "general.deductions.insurance",
        "label": "Deduction insurance, up to its cap",
        "amount_minor": 10,
        "inputs": ["/payload/deductions/0/amount_minor"],
        "formula": "min(10, 500)",
        "parameter": {
            "name": "personal.deductions.insurance",
            "value": 500,
            "since": {"date": "2020-01-01"},
            "source": {
                "key": "test",
                "citation": "A test source",
                "url": "https://example.org/test",
            },
            "status": "unverified",
            "note": "a note",
        },
    }


def test_trace_dates_are_dual_in_a_solar_hijri_pack(tmp_path: Path) -> None:
    params = ZZ_PARAMS.replace('since = "2020-01-01"', 'since = "1399-01-01"').replace(
        'since = "2023-07-01"', 'since = "1402-04-10"'
    )
    pack = write_pack(tmp_path, params, calendar="solar_hijri", first_year="1399")
    c = compute_return(pack, personal(pack, "1402", other_minor=5), today=date(2025, 1, 1))
    band = next(
        line
        for line in c.trace_json(pack)
        if isinstance(line, dict) and line["code"] == "general.tax.band.1"
    )
    assert isinstance(band, dict) and isinstance(band["parameter"], dict)
    assert band["parameter"]["since"] == {"date": "2020-03-20", "jalali": "1399-01-01"}


def test_trace_sha256_is_sha256_of_rfc8785_bytes(zz: RulePack) -> None:
    c = compute_return(zz, personal(zz, other_minor=12_345), today=AFTER_2023)
    expected = hashlib.sha256(rfc8785.dumps(c.trace_json(zz))).hexdigest()
    assert c.trace_sha256(zz) == expected
    other = compute_return(zz, personal(zz, other_minor=12_346), today=AFTER_2023)
    assert other.trace_sha256(zz) != expected


def test_trace_refuses_another_pack_version(zz: RulePack, tmp_path: Path) -> None:
    c = compute_return(zz, personal(zz, other_minor=1), today=AFTER_2023)
    revised = write_pack(tmp_path, revision=2)
    with pytest.raises(ValueError, match="pack version"):
        c.trace_json(revised)
    assert c.pack_version == zz.version != revised.version


def test_a_large_return_has_a_hashable_trace(zz: RulePack) -> None:
    # The biggest return parse_return accepts: 20 monthly employers, 20 deductions (most not in
    # the pack: errors, but the trace must still hash).
    salary = tuple(monthly([10**9] * 12, employer=f"ir-nid:{n:09d}0") for n in range(20))
    deductions = tuple(Deduction(f"code_{n}", 10**9) for n in range(20))
    c = compute_return(zz, personal(zz, salary=salary, deductions=deductions), today=AFTER_2023)
    assert len(c.trace_sha256(zz)) == 64


@pytest.mark.parametrize(
    ("rate", "text"),
    [("0.025", "2.5%"), ("0.1", "10%"), ("1", "100%"), ("0", "0%"), ("0.0006", "0.06%")],
)
def test_format_rate(rate: str, text: str) -> None:
    from decimal import Decimal

    assert format_rate(Decimal(rate)) == text


def test_the_tracer_records_an_unverified_parameter_once(zz: RulePack) -> None:
    tracer = Tracer(zz)
    for _ in range(3):
        tracer.amount("personal.deductions.insurance", on=date(2023, 1, 1))
    tracer.amount("personal.deductions.training", on=date(2023, 1, 1))  # enacted: not recorded
    assert tracer.unverified == ["personal.deductions.insurance"]
    assert [issue.code for issue in tracer.unverified_issues()] == ["unverified_parameter"]
