"""Periods, deadlines and working days in the ir (Solar Hijri) and ee (Gregorian) packs.

Known Jalali/ISO pairs: 1403-01-01 = 2024-03-20 (Nowruz 1403), 1404-03-31 = 2025-06-21,
1403-12-30 = 2025-03-20 (1403 is a leap year), 1402-12-29 = 2024-03-19 (1402 is not).
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest

from tax.calendar import (
    Period,
    deadline_day,
    dual_date,
    due_date,
    ended_periods,
    format_date,
    is_working_day,
    month_length,
    parse_date,
    parse_period,
    period_containing,
    roll_to_working_day,
)
from tax.errors import TaxFieldError
from tax.rulepack import Deadline, RulePack, pack_for


@pytest.fixture(scope="module")
def ir() -> RulePack:
    return pack_for("ir")


@pytest.fixture(scope="module")
def ee() -> RulePack:
    return pack_for("ee")


# --- Jalali ↔ ISO -------------------------------------------------------------------------------

JALALI_PAIRS = [
    ("1403-01-01", date(2024, 3, 20)),
    ("1404-03-31", date(2025, 6, 21)),
    ("1403-12-30", date(2025, 3, 20)),
    ("1404-01-01", date(2025, 3, 21)),
    ("1402-12-29", date(2024, 3, 19)),
    ("1401-01-01", date(2022, 3, 21)),
    ("1404-12-29", date(2026, 3, 20)),
]


@pytest.mark.parametrize(("jalali", "iso"), JALALI_PAIRS)
def test_jalali_dates_both_ways(ir: RulePack, jalali: str, iso: date) -> None:
    assert parse_date(ir, jalali) == iso
    assert format_date(ir, iso) == jalali
    assert dual_date(ir, iso) == {"date": iso.isoformat(), "jalali": jalali}


def test_gregorian_pack_writes_iso(ee: RulePack) -> None:
    assert parse_date(ee, "2025-04-30") == date(2025, 4, 30)
    assert format_date(ee, date(2025, 4, 30)) == "2025-04-30"
    assert dual_date(ee, date(2025, 4, 30)) == {"date": "2025-04-30"}


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("1403/01/01", "invalid_format"),
        ("1403-1-1", "invalid_format"),
        ("۱۴۰۳-۰۱-۰۱", "invalid_format"),  # Persian digits are not ASCII digits
        ("0999-01-01", "out_of_range"),
        ("1402-12-30", "invalid_date"),  # 1402 is not a leap year
        ("1403-13-01", "invalid_date"),
        ("1403-07-31", "invalid_date"),  # Mehr has 30 days
    ],
)
def test_bad_jalali_dates_name_the_rule(ir: RulePack, text: str, rule: str) -> None:
    with pytest.raises(ValueError, match=f"^{rule}"):
        parse_date(ir, text)


@pytest.mark.parametrize(("year", "days"), [(1399, 30), (1402, 29), (1403, 30), (1404, 29)])
def test_esfand_has_30_days_in_leap_years(ir: RulePack, year: int, days: int) -> None:
    assert month_length(ir, year=year, month=12) == days
    assert parse_period(ir, str(year), kind="year").end == parse_date(ir, f"{year}-12-{days}")


# --- periods ------------------------------------------------------------------------------------


def test_solar_hijri_fiscal_years(ir: RulePack) -> None:
    assert parse_period(ir, "1403", kind="year") == Period(
        "year", "1403", date(2024, 3, 20), date(2025, 3, 20)
    )
    year_1402 = parse_period(ir, "1402", kind="year")
    assert (year_1402.start, year_1402.end) == (date(2023, 3, 21), date(2024, 3, 19))
    assert parse_period(ir, "1403-12", kind="month").end == date(2025, 3, 20)
    assert parse_period(ir, "1403-07", kind="month") == Period(
        "month", "1403-07", date(2024, 9, 22), date(2024, 10, 21)
    )


def test_gregorian_months_and_years(ee: RulePack) -> None:
    assert parse_period(ee, "2025", kind="year") == Period(
        "year", "2025", date(2025, 1, 1), date(2025, 12, 31)
    )
    assert parse_period(ee, "2025-12", kind="month").end == date(2025, 12, 31)
    assert parse_period(ee, "2025-02", kind="month").end == date(2025, 2, 28)
    assert parse_period(ee, "2024-02", kind="month").end == date(2024, 2, 29)


def test_month_periods_across_december(ee: RulePack) -> None:
    december = period_containing(ee, date(2025, 12, 31), kind="month")
    january = period_containing(ee, december.end + timedelta(days=1), kind="month")
    assert (december.label, january.label) == ("2025-12", "2026-01")
    assert january.start == date(2026, 1, 1)


def test_period_containing_across_nowruz(ir: RulePack) -> None:
    assert period_containing(ir, date(2025, 3, 20), kind="year").label == "1403"
    assert period_containing(ir, date(2025, 3, 21), kind="year").label == "1404"
    assert period_containing(ir, date(2025, 3, 21), kind="month").label == "1404-01"
    with pytest.raises(ValueError, match="unknown period kind"):
        period_containing(ir, date(2025, 3, 21), kind="week")


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("1403-13", "month"),
        ("2025-00", "month"),
        ("14O3", "year"),
        ("", "year"),
        ("2025", "month"),
        ("2025-01", "year"),
        ("0999", "year"),
        (" 2025", "year"),
        ("۲۰۲۵", "year"),  # Persian digits
    ],
)
def test_bad_period_labels_are_field_errors(ee: RulePack, label: str, kind: str) -> None:
    with pytest.raises(TaxFieldError) as caught:
        parse_period(ee, label, kind=kind)
    (error,) = caught.value.errors
    assert (error.pointer, error.rule) == ("/payload/period", "invalid_period")
    assert label.strip() == "" or label not in error.message


def test_unknown_period_kind_is_a_programming_error(ee: RulePack) -> None:
    with pytest.raises(ValueError, match="unknown period kind"):
        parse_period(ee, "2025", kind="week")


def test_ended_periods_up_to_today(ee: RulePack, ir: RulePack) -> None:
    corporate = ee.returns["corporate"]
    labels = [p.label for p in ended_periods(ee, corporate, today=date(2025, 4, 1))]
    assert labels == ["2025-01", "2025-02", "2025-03"]
    labels = [p.label for p in ended_periods(ee, corporate, today=date(2025, 3, 31))]
    assert labels == ["2025-01", "2025-02"]  # March ends on the 31st: not over yet
    personal = ir.returns["personal"]
    labels = [p.label for p in ended_periods(ir, personal, today=date(2025, 3, 21))]
    assert labels == ["1401", "1402", "1403"]  # 1404-01-01: 1403 has just ended
    assert ended_periods(ir, personal, today=date(2022, 3, 21)) == []


# --- deadlines ----------------------------------------------------------------------------------


def test_deadlines_before_rolling(ir: RulePack, ee: RulePack) -> None:
    year_1403 = parse_period(ir, "1403", kind="year")
    # End of Khordad 1404 (3 months after Esfand, day 0 = the month's last day).
    assert deadline_day(ir, year_1403, Deadline(3, 0)) == parse_date(ir, "1404-03-31")
    # End of Tir 1404 (4 months after the year end).
    assert deadline_day(ir, year_1403, Deadline(4, 0)) == parse_date(ir, "1404-04-31")
    # The 10th of the next month, across the year end.
    assert deadline_day(ee, parse_period(ee, "2025-12", kind="month"), Deadline(1, 10)) == date(
        2026, 1, 10
    )
    # A day beyond the month's length is its last day.
    assert deadline_day(ee, parse_period(ee, "2025-01", kind="month"), Deadline(1, 31)) == date(
        2025, 2, 28
    )
    # 30 Esfand exists in 1403, not in 1404.
    assert deadline_day(ir, parse_period(ir, "1402", kind="year"), Deadline(12, 30)) == parse_date(
        ir, "1403-12-30"
    )
    assert deadline_day(ir, year_1403, Deadline(12, 30)) == parse_date(ir, "1404-12-29")


def test_ir_returns_due_at_end_of_khordad_and_tir(ir: RulePack) -> None:
    year_1403 = parse_period(ir, "1403", kind="year")
    assert due_date(ir, year_1403, "deadline.personal") == (date(2025, 6, 21), [])
    assert due_date(ir, year_1403, "deadline.corporate") == (date(2025, 7, 22), [])


def test_ir_deadline_rolls_over_the_year_end_and_nowruz(ir: RulePack) -> None:
    # A monthly period of Azar 1402 puts deadline.personal (3 months, last day) on 29 Esfand 1402,
    # the oil nationalisation holiday, followed by the four days of Nowruz 1403.
    day, reasons = due_date(ir, parse_period(ir, "1402-09", kind="month"), "deadline.personal")
    assert day == parse_date(ir, "1403-01-05") == date(2024, 3, 24)
    assert reasons == [
        "1402-12-29 is a holiday: Iranian Oil Industry Nationalization Day",
        "1403-01-01 is a holiday: Nowruz",
        "1403-01-02 is a holiday: Nowruz Holiday",
        "1403-01-03 is a holiday: Nowruz Holiday",
        "1403-01-04 is a holiday: Nowruz Holiday",
    ]


def test_ir_deadline_rolls_over_a_friday(ir: RulePack) -> None:
    day, reasons = due_date(ir, parse_period(ir, "1403-06", kind="month"), "deadline.personal")
    assert reasons == ["1403-09-30 is a Friday (weekend)"]
    assert day == parse_date(ir, "1403-10-01")


def test_ir_consecutive_holidays_and_weekend(ir: RulePack) -> None:
    # 1404-01-01 (Friday, Nowruz) … 1404-01-04: next working day 1404-01-05.
    assert roll_to_working_day(ir, date(2025, 3, 21)) == date(2025, 3, 25)
    # Eid al-Fitr 1404-01-11, its holiday and Islamic Republic Day 01-12, Nature's Day 01-13.
    assert roll_to_working_day(ir, date(2025, 3, 31)) == date(2025, 4, 3)
    assert is_working_day(ir, date(2025, 4, 3))  # a Thursday is a working day in ir
    assert not is_working_day(ir, date(2025, 4, 4))  # Friday
    assert roll_to_working_day(ir, date(2025, 4, 5)) == date(2025, 4, 5)  # a plain Saturday


def test_ee_deadline_rolls_over_weekend_and_may_day(ee: RulePack) -> None:
    # The 2022 return was due on Sunday 30 April 2023; 1 May is a holiday: Tuesday 2 May.
    day, reasons = due_date(ee, parse_period(ee, "2022", kind="year"), "deadline.personal")
    assert day == date(2023, 5, 2)
    assert reasons == ["2023-04-30 is a Sunday (weekend)", "2023-05-01 is a holiday: May Day"]
    day, reasons = due_date(ee, parse_period(ee, "2022", kind="year"), "payment_deadline.personal")
    assert (day, reasons) == (date(2023, 10, 2), ["2023-10-01 is a Sunday (weekend)"])
    assert due_date(ee, parse_period(ee, "2025", kind="year"), "payment_deadline.personal") == (
        date(2026, 10, 1),
        [],
    )


def test_ee_rolls_over_easter_midsummer_and_christmas(ee: RulePack) -> None:
    # Good Friday 3 April 2026, Saturday, Easter Sunday: Monday 6 April (not a holiday in ee).
    assert roll_to_working_day(ee, date(2026, 4, 3)) == date(2026, 4, 6)
    # Victory Day and Midsummer Day, Tuesday and Wednesday.
    assert roll_to_working_day(ee, date(2026, 6, 23)) == date(2026, 6, 25)
    # Christmas Eve (Friday) to Boxing Day (Sunday) 2027.
    assert roll_to_working_day(ee, date(2027, 12, 24)) == date(2027, 12, 27)
    assert not is_working_day(ee, date(2025, 4, 19))  # a Saturday
    assert is_working_day(ee, date(2025, 4, 21))  # Easter Monday is a working day


def test_monthly_corporate_deadline_across_the_year_end(ee: RulePack) -> None:
    # December 2026's TSD is due on 10 January 2027, a Sunday: Monday 11 January.
    day, reasons = due_date(ee, parse_period(ee, "2026-12", kind="month"), "deadline.corporate")
    assert day == date(2027, 1, 11)
    assert reasons == ["2027-01-10 is a Sunday (weekend)"]


# --- quarters -----------------------------------------------------------------------------------


def test_solar_hijri_quarters_follow_the_seasons(ir: RulePack) -> None:
    # Spring is Farvardin-Khordad (31 days each), autumn Mehr-Azar (30 days each).
    assert parse_period(ir, "1403-Q1", kind="quarter") == Period(
        "quarter", "1403-Q1", date(2024, 3, 20), parse_date(ir, "1403-03-31")
    )
    summer = parse_period(ir, "1403-Q2", kind="quarter")
    assert (format_date(ir, summer.start), format_date(ir, summer.end)) == (
        "1403-04-01",
        "1403-06-31",
    )
    autumn = parse_period(ir, "1403-Q3", kind="quarter")
    assert (format_date(ir, autumn.start), format_date(ir, autumn.end)) == (
        "1403-07-01",
        "1403-09-30",
    )


@pytest.mark.parametrize(
    ("label", "last_day", "iso"),
    [
        ("1403-Q4", "1403-12-30", date(2025, 3, 20)),  # 1403 is a leap year: 30 Esfand
        ("1402-Q4", "1402-12-29", date(2024, 3, 19)),
        ("1404-Q4", "1404-12-29", date(2026, 3, 20)),
    ],
)
def test_ir_fourth_quarter_ends_on_29_or_30_esfand(
    ir: RulePack, label: str, last_day: str, iso: date
) -> None:
    winter = parse_period(ir, label, kind="quarter")
    assert winter.end == parse_date(ir, last_day) == iso
    assert format_date(ir, winter.start) == f"{label[:4]}-10-01"
    # The next day is Nowruz, the first day of the next year's Q1.
    assert period_containing(ir, iso + timedelta(days=1), kind="quarter").label == (
        f"{int(label[:4]) + 1}-Q1"
    )


@pytest.mark.parametrize("year", range(1399, 1406))
def test_ir_quarters_tile_the_year(ir: RulePack, year: int) -> None:
    quarters = [parse_period(ir, f"{year}-Q{n}", kind="quarter") for n in range(1, 5)]
    whole = parse_period(ir, str(year), kind="year")
    assert quarters[0].start == whole.start and quarters[-1].end == whole.end
    for earlier, later in pairwise(quarters):
        assert later.start == earlier.end + timedelta(days=1)
    assert sum((q.end - q.start).days + 1 for q in quarters) == (whole.end - whole.start).days + 1


def test_gregorian_quarters_and_the_leap_day(ee: RulePack) -> None:
    assert parse_period(ee, "2025-Q4", kind="quarter") == Period(
        "quarter", "2025-Q4", date(2025, 10, 1), date(2025, 12, 31)
    )
    leap = parse_period(ee, "2024-Q1", kind="quarter")
    assert (leap.end - leap.start).days + 1 == 91  # 29 February 2024
    plain = parse_period(ee, "2025-Q1", kind="quarter")
    assert (plain.end - plain.start).days + 1 == 90
    assert period_containing(ee, date(2024, 2, 29), kind="quarter") == leap


def test_quarter_containing_across_the_year_end(ee: RulePack, ir: RulePack) -> None:
    assert period_containing(ee, date(2025, 12, 31), kind="quarter").label == "2025-Q4"
    assert period_containing(ee, date(2026, 1, 1), kind="quarter").label == "2026-Q1"
    assert period_containing(ee, date(2025, 6, 30), kind="quarter").label == "2025-Q2"
    assert period_containing(ee, date(2025, 7, 1), kind="quarter").label == "2025-Q3"
    assert period_containing(ir, date(2025, 3, 20), kind="quarter").label == "1403-Q4"
    assert period_containing(ir, date(2025, 3, 21), kind="quarter").label == "1404-Q1"
    # 1 Tir 1403 opens the summer quarter.
    assert period_containing(ir, parse_date(ir, "1403-04-01"), kind="quarter").label == "1403-Q2"
    assert period_containing(ir, parse_date(ir, "1403-03-31"), kind="quarter").label == "1403-Q1"


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("1403-Q0", "quarter"),
        ("1403-Q5", "quarter"),
        ("1403-q1", "quarter"),
        ("1403Q1", "quarter"),
        ("1403-Q01", "quarter"),
        ("1403-04", "quarter"),
        ("1403", "quarter"),
        ("0999-Q1", "quarter"),
        ("1403-Q1", "month"),
        ("1403-Q1", "year"),
    ],
)
def test_bad_quarter_labels_are_field_errors(ir: RulePack, label: str, kind: str) -> None:
    with pytest.raises(TaxFieldError) as caught:
        parse_period(ir, label, kind=kind)
    (error,) = caught.value.errors
    assert (error.pointer, error.rule) == ("/payload/period", "invalid_period")
    assert label not in error.message


def test_ended_quarters_up_to_today(ir: RulePack) -> None:
    vat = ir.returns["vat"]
    assert vat.period == "quarter"
    # 31 Khordad 1403 (2024-06-20) is Q1's last day: Q1 ends only when 1 Tir begins.
    assert ended_periods(ir, vat, today=date(2024, 6, 20)) == []
    assert [p.label for p in ended_periods(ir, vat, today=date(2024, 6, 21))] == ["1403-Q1"]
    labels = [p.label for p in ended_periods(ir, vat, today=date(2025, 3, 21))]
    assert labels == ["1403-Q1", "1403-Q2", "1403-Q3", "1403-Q4"]  # across Nowruz 1404
    labels = [p.label for p in ended_periods(ir, vat, today=date(2025, 7, 1))]
    assert labels[-2:] == ["1403-Q4", "1404-Q1"]


def test_quarter_deadlines_count_from_the_quarters_last_month(ir: RulePack, ee: RulePack) -> None:
    # One month after Esfand, last day: 31 Farvardin of the next year.
    winter_1403 = parse_period(ir, "1403-Q4", kind="quarter")
    assert deadline_day(ir, winter_1403, Deadline(1, 0)) == parse_date(ir, "1404-01-31")
    assert deadline_day(ir, winter_1403, Deadline(0, 0)) == parse_date(ir, "1403-12-30")
    assert deadline_day(ir, parse_period(ir, "1404-Q4", kind="quarter"), Deadline(0, 30)) == (
        parse_date(ir, "1404-12-29")  # no 30 Esfand in 1404: the month's last day
    )
    # Spring 1403 ends in Khordad: one month later is Tir, which has 31 days.
    spring = parse_period(ir, "1403-Q1", kind="quarter")
    assert deadline_day(ir, spring, Deadline(1, 0)) == parse_date(ir, "1403-04-31")
    assert deadline_day(ee, parse_period(ee, "2025-Q4", kind="quarter"), Deadline(1, 20)) == date(
        2026, 1, 20
    )
    assert deadline_day(ee, parse_period(ee, "2025-Q1", kind="quarter"), Deadline(1, 0)) == date(
        2025, 4, 30
    )
