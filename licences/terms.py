"""Licence terms and renewal windows, counted in the jurisdiction's calendar (docs/LICENCES.md,
"Terms and renewal windows").

Every day is a Gregorian `datetime.date`; the calendar (Solar Hijri for ir, from the tax rule
pack) matters only when years or months are added: the day of the month is kept, clamped to the
target month's length, so 1403-12-30 (a leap Esfand) + P1Y = 1404-12-29 and 2024-01-31 + P1M =
2024-02-29. Jalali conversions go through tax.rulepack (jdatetime); none is done here.

A term is [valid_from, expires_on], both days inclusive; a window [opens_on, closes_on] too.
Pure: the clock is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from licences.types import Duration, LicenceType
from signatures.canonical import JsonValue
from tax.calendar import dual_date
from tax.rulepack import RulePack, date_from_text, date_to_text, pack_for

MONTHS_PER_YEAR = 12
ONE_DAY = timedelta(days=1)
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def _parts(day: date, *, calendar: str) -> tuple[int, int, int]:
    """(year, month, day) of `day` in `calendar`."""
    match = _DATE.fullmatch(date_to_text(calendar, day))
    assert match is not None, "date_to_text writes YYYY-MM-DD"
    year, month, day_of_month = (int(group) for group in match.groups())
    return year, month, day_of_month


def _day(calendar: str, *, year: int, month: int, day: int) -> date:
    """A day of `calendar` as a Gregorian date. Raises ValueError outside the supported years."""
    return date_from_text(calendar, f"{year:04d}-{month:02d}-{day:02d}")


def _shift_months(day: date, months: int, *, calendar: str) -> date:
    year, month, day_of_month = _parts(day, calendar=calendar)
    index = year * MONTHS_PER_YEAR + (month - 1) + months
    year, month = divmod(index, MONTHS_PER_YEAR)
    month += 1
    first = _day(calendar, year=year, month=month, day=1)
    next_year, next_month = divmod(index + 1, MONTHS_PER_YEAR)
    following = _day(calendar, year=next_year, month=next_month + 1, day=1)
    length = (following - first).days  # the month's length, whatever the calendar
    return first + timedelta(days=min(day_of_month, length) - 1)


def _shift(day: date, duration: Duration, *, sign: int, calendar: str) -> date:
    if duration.unit == "D":
        try:
            return day + timedelta(days=sign * duration.count)
        except OverflowError:
            raise ValueError("out_of_range: the date leaves the supported range") from None
    months = duration.count * (MONTHS_PER_YEAR if duration.unit == "Y" else 1)
    return _shift_months(day, sign * months, calendar=calendar)


def add_duration(day: date, duration: Duration, *, calendar: str) -> date:
    """`day` plus `duration` in `calendar` ("solar_hijri" | "gregorian"): days are added as
    they are; years and months keep the day of the month, clamped to the target month's length.

    Raises ValueError for an unknown calendar or a result outside the years 1000..2999 of it."""
    return _shift(day, duration, sign=1, calendar=calendar)


def subtract_duration(day: date, duration: Duration, *, calendar: str) -> date:
    """`day` minus `duration`, clamped as add_duration (1404-12-29 − P1Y = 1403-12-29).

    Raises ValueError as add_duration."""
    return _shift(day, duration, sign=-1, calendar=calendar)


@dataclass(frozen=True)
class Term:
    """[valid_from, expires_on], both days inclusive. Raises ValueError when it is empty."""

    valid_from: date
    expires_on: date

    def __post_init__(self) -> None:
        if self.expires_on < self.valid_from:
            raise ValueError("a term expires on or after the day it starts")


@dataclass(frozen=True)
class Window:
    """[opens_on, closes_on], both days inclusive."""

    opens_on: date
    closes_on: date

    def contains(self, day: date) -> bool:
        return self.opens_on <= day <= self.closes_on


def _pack(licence_type: LicenceType) -> RulePack:
    return pack_for(licence_type.jurisdiction)  # the loader checked a pack ships


def calendar_of(licence_type: LicenceType) -> str:
    """The calendar durations of this type are counted in: its jurisdiction's."""
    return _pack(licence_type).calendar


def local_date(licence_type: LicenceType, at: datetime) -> date:
    """The day `at` falls on in the jurisdiction's time zone ("today" for a transaction).

    Raises ValueError for a naive datetime (its zone would be the server's, silently)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("local_date needs an aware datetime")
    return _pack(licence_type).local_date(at)


def dual(licence_type: LicenceType, day: date) -> dict[str, JsonValue]:
    """{"date": ISO 8601} plus {"jalali": "YYYY-MM-DD"} when the jurisdiction is Solar Hijri."""
    return dict(dual_date(_pack(licence_type), day))


def dual_text(licence_type: LicenceType, day: date) -> str:
    """ "1404-03-01 (2025-05-22)" for a Solar Hijri jurisdiction, "2025-05-22" otherwise."""
    calendar = calendar_of(licence_type)
    if calendar == "gregorian":
        return day.isoformat()
    return f"{date_to_text(calendar, day)} ({day.isoformat()})"


def first_term(valid_from: date, licence_type: LicenceType) -> Term:
    """The term of a licence issued from `valid_from`: validity long, the last day inclusive.

    Raises ValueError when it would end outside the calendar's supported years."""
    calendar = calendar_of(licence_type)
    end = add_duration(valid_from, licence_type.validity, calendar=calendar)
    return Term(valid_from=valid_from, expires_on=end - ONE_DAY)


def renewed_term(current: Term, *, today: date, licence_type: LicenceType) -> Term:
    """The term a renewal on `today` gives: it follows the current term without a gap when
    renewed before expiry (a renewal never shortens the term paid for), else starts today.

    Raises ValueError as first_term."""
    if today <= current.expires_on:
        return first_term(current.expires_on + ONE_DAY, licence_type)
    return first_term(today, licence_type)


def licence_term_after(current: Term, renewed: Term) -> Term:
    """The licence's term once `renewed` (from renewed_term) applies: one continuous term from
    the current start when the renewal follows on without a gap (renewed before expiry), so a
    licence renewed early stays valid today; else the renewed term alone (renewed after a
    lapse: the days between were not covered).

    Raises ValueError when `renewed` starts on or before the current start."""
    if renewed.valid_from <= current.valid_from:
        raise ValueError("a renewed term starts after the current one")
    if renewed.valid_from == current.expires_on + ONE_DAY:
        return Term(valid_from=current.valid_from, expires_on=renewed.expires_on)
    return renewed


def renewal_window(current: Term, licence_type: LicenceType) -> Window:
    """When a licence with this term may be renewed: renew_from before its expiry day to
    renew_until after it, both inclusive. Raises ValueError as add_duration."""
    calendar = calendar_of(licence_type)
    expiry = current.expires_on
    return Window(
        opens_on=subtract_duration(expiry, licence_type.renew_from, calendar=calendar),
        closes_on=add_duration(expiry, licence_type.renew_until, calendar=calendar),
    )
