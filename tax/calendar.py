"""Tax periods, deadlines and working days in a rule pack's calendar (Solar Hijri or Gregorian).

Inside the engine every day is a Gregorian `datetime.date`; the pack's calendar matters only for
period boundaries (an ir fiscal year runs 1 Farvardin … 29 or 30 Esfand), for counting deadline
months, and at the edges where dates are parsed from input or written in output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import jdatetime

from signatures.errors import FieldError
from tax.errors import TaxFieldError
from tax.rulepack import (
    MAX_YEAR,
    MIN_YEAR,
    WEEKDAYS,
    Deadline,
    ReturnKind,
    RulePack,
    date_from_text,
    date_to_text,
)

# A deadline never rolls further than this: a longer run of days off means a broken holiday list.
MAX_ROLL_DAYS = 31
# ended_periods lists at most this many periods (a century of monthly returns).
MAX_ENDED_PERIODS = 1_200
PERIOD_POINTER = "/payload/period"
RULE_INVALID_PERIOD = "invalid_period"
MONTHS_PER_YEAR = 12
MONTHS_PER_QUARTER = 3
QUARTERS_PER_YEAR = 4

# Each kind's label: the year, then the second number (quarter or month) if the kind has one.
_LABELS = {
    "year": re.compile(r"([0-9]{4})"),
    "quarter": re.compile(r"([0-9]{4})-Q([0-9])"),
    "month": re.compile(r"([0-9]{4})-([0-9]{2})"),
}
_SHAPES = {"year": "YYYY", "quarter": "YYYY-Qn", "month": "YYYY-MM"}


@dataclass(frozen=True)
class Period:
    """A tax period: a year, a quarter (months 1-3, 4-6, 7-9, 10-12) or a month of the pack's
    calendar; `end` is its last day (inclusive)."""

    kind: str
    label: str
    start: date
    end: date


def _invalid_period(message: str) -> TaxFieldError:
    return TaxFieldError(
        (FieldError(pointer=PERIOD_POINTER, rule=RULE_INVALID_PERIOD, message=message),)
    )


def _year_month(pack: RulePack, day: date) -> tuple[int, int]:
    """The (year, month) of `day` in the pack's calendar."""
    if pack.calendar == "solar_hijri":
        jalali = jdatetime.date.fromgregorian(date=day)
        return jalali.year, jalali.month
    return day.year, day.month


def month_length(pack: RulePack, *, year: int, month: int) -> int:
    """Days in `month` of `year` in the pack's calendar (Esfand has 30 in a leap year)."""
    if pack.calendar == "solar_hijri":
        if month < 12:
            return 31 if month <= 6 else 30
        return 30 if jdatetime.date(year, 1, 1).isleap() else 29
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _day_in(pack: RulePack, *, year: int, month: int, day: int) -> date:
    """A day of the pack's calendar as a Gregorian date (the arguments are known valid)."""
    return date_from_text(pack.calendar, f"{year:04d}-{month:02d}-{day:02d}")


def _month_period(pack: RulePack, *, year: int, month: int) -> Period:
    return Period(
        kind="month",
        label=f"{year:04d}-{month:02d}",
        start=_day_in(pack, year=year, month=month, day=1),
        end=_day_in(pack, year=year, month=month, day=month_length(pack, year=year, month=month)),
    )


def _quarter_period(pack: RulePack, *, year: int, quarter: int) -> Period:
    first_month = (quarter - 1) * MONTHS_PER_QUARTER + 1
    last_month = quarter * MONTHS_PER_QUARTER
    return Period(
        kind="quarter",
        label=f"{year:04d}-Q{quarter}",
        start=_day_in(pack, year=year, month=first_month, day=1),
        end=_day_in(
            pack, year=year, month=last_month, day=month_length(pack, year=year, month=last_month)
        ),
    )


def _year_period(pack: RulePack, *, year: int) -> Period:
    return Period(
        kind="year",
        label=f"{year:04d}",
        start=_day_in(pack, year=year, month=1, day=1),
        end=_day_in(pack, year=year, month=12, day=month_length(pack, year=year, month=12)),
    )


def parse_period(pack: RulePack, label: str, *, kind: str) -> Period:
    """The period a label names: "1403" / "2024" (kind "year"), "1403-Q4" (kind "quarter", n in
    1..4) or "2025-03" (kind "month").

    Raises TaxFieldError at /payload/period, rule invalid_period, for a malformed label, a
    quarter outside 1..4, a month outside 01..12 or a year outside MIN_YEAR..MAX_YEAR; ValueError
    for an unknown kind (a programming error)."""
    pattern = _LABELS.get(kind)
    if pattern is None:
        raise ValueError(f"unknown period kind {kind!r}")
    match = pattern.fullmatch(label)
    if match is None:
        raise _invalid_period(f"a {kind} period is written {_SHAPES[kind]} in the pack's calendar")
    year = int(match.group(1))
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _invalid_period(f"the year must be within {MIN_YEAR}..{MAX_YEAR}")
    if kind == "year":
        return _year_period(pack, year=year)
    number = int(match.group(2))
    if kind == "quarter":
        if not 1 <= number <= QUARTERS_PER_YEAR:
            raise _invalid_period(f"the quarter must be within Q1..Q{QUARTERS_PER_YEAR}")
        return _quarter_period(pack, year=year, quarter=number)
    if not 1 <= number <= MONTHS_PER_YEAR:
        raise _invalid_period("the month must be within 01..12")
    return _month_period(pack, year=year, month=number)


def period_containing(pack: RulePack, day: date, *, kind: str) -> Period:
    """The year, quarter or month period of the pack's calendar that contains `day`.

    Raises ValueError for an unknown kind."""
    year, month = _year_month(pack, day)
    if kind == "year":
        return _year_period(pack, year=year)
    if kind == "quarter":
        return _quarter_period(pack, year=year, quarter=(month - 1) // MONTHS_PER_QUARTER + 1)
    if kind == "month":
        return _month_period(pack, year=year, month=month)
    raise ValueError(f"unknown period kind {kind!r}")


def ended_periods(pack: RulePack, kind: ReturnKind, *, today: date) -> list[Period]:
    """The periods of a return kind from its first_period to the last one ended before `today`.

    Raises ValueError when more than MAX_ENDED_PERIODS would be listed."""
    periods: list[Period] = []
    period = parse_period(pack, kind.first_period, kind=kind.period)
    while period.end < today:
        if len(periods) == MAX_ENDED_PERIODS:
            raise ValueError(f"more than {MAX_ENDED_PERIODS} periods have ended")
        periods.append(period)
        period = period_containing(pack, period.end + timedelta(days=1), kind=kind.period)
    return periods


def deadline_day(pack: RulePack, period: Period, deadline: Deadline) -> date:
    """The deadline's day before rolling: months_after_period_end months after the period's last
    month (Esfand for an ir Q4 or year, the 3rd month of any quarter), on `day` (0, or a day beyond
    the month's length, means that month's last day)."""
    year, month = _year_month(pack, period.end)
    index = year * MONTHS_PER_YEAR + (month - 1) + deadline.months_after_period_end
    year, month = divmod(index, MONTHS_PER_YEAR)
    month += 1
    length = month_length(pack, year=year, month=month)
    day = length if deadline.day == 0 else min(deadline.day, length)
    return _day_in(pack, year=year, month=month, day=day)


def is_working_day(pack: RulePack, day: date) -> bool:
    """True unless `day` is a weekend day or an official holiday of the pack."""
    return day.weekday() not in pack.weekend and day not in pack.holidays


def _why_off(pack: RulePack, day: date) -> str:
    holiday = pack.holidays.get(day)
    if holiday is not None:
        return f"{format_date(pack, day)} is a holiday: {holiday.name}"
    return f"{format_date(pack, day)} is a {WEEKDAYS[day.weekday()].capitalize()} (weekend)"


def _roll(pack: RulePack, day: date) -> tuple[date, list[str]]:
    reasons: list[str] = []
    while not is_working_day(pack, day):
        if len(reasons) == MAX_ROLL_DAYS:
            raise ValueError(f"no working day within {MAX_ROLL_DAYS} days: check the holidays")
        reasons.append(_why_off(pack, day))
        day += timedelta(days=1)
    return day, reasons


def roll_to_working_day(pack: RulePack, day: date) -> date:
    """`day` if it is a working day, else the next working day.

    Raises ValueError when none comes within MAX_ROLL_DAYS (a broken holiday list)."""
    return _roll(pack, day)[0]


def due_date(pack: RulePack, period: Period, param: str) -> tuple[date, list[str]]:
    """The deadline `param` of the period rolled to a working day, and why it rolled (one
    sentence per day skipped, e.g. "1404-03-30 is a Friday (weekend)").

    The deadline value is the one in force on the period's last day. Raises RuleNotInForceError
    when there is none, RulePackError when `param` is not a deadline."""
    value = pack.deadline_at(param, on=period.end).value
    if not isinstance(value, Deadline):
        raise TypeError(f"{param} holds no Deadline")  # deadline_at already checked the kind
    return _roll(pack, deadline_day(pack, period, value))


def format_date(pack: RulePack, day: date) -> str:
    """`day` as "YYYY-MM-DD" in the pack's calendar (Jalali for solar_hijri, else ISO 8601)."""
    return date_to_text(pack.calendar, day)


def parse_date(pack: RulePack, text: str) -> date:
    """A "YYYY-MM-DD" date in the pack's calendar, as a Gregorian date.

    Raises ValueError whose message starts with the rule broken (invalid_format, out_of_range,
    invalid_date)."""
    return date_from_text(pack.calendar, text)


def dual_date(pack: RulePack, day: date) -> dict[str, str]:
    """{"date": ISO 8601} plus {"jalali": "YYYY-MM-DD"} when the pack's calendar is solar_hijri."""
    out = {"date": day.isoformat()}
    if pack.calendar == "solar_hijri":
        out["jalali"] = format_date(pack, day)
    return out
