"""Hypothesis over licence terms and renewal windows, in both calendars:

- adding then subtracting years or months returns the start day, or a day at most 3 earlier when
  the day of the month was clamped (31 → 28 at worst); days round-trip exactly;
- adding is monotonic and always moves forward;
- a first term ends the day before add(valid_from, validity);
- the renewal window of every packaged type contains the expiry day and opens after the term
  starts;
- a renewed term starts the day after the old one ends, or today when renewed late, and is a
  first term from that day;
- the effective status is valid exactly inside the term of a valid licence.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from licences.status import EffectiveStatus, LicenceStatus, effective_status
from licences.terms import (
    add_duration,
    first_term,
    renewal_window,
    renewed_term,
    subtract_duration,
)
from licences.types import Duration, LicenceType, default_licence_types
from tax.rulepack import date_to_text

CALENDARS = ("solar_hijri", "gregorian")
MAX_CLAMP_DAYS = 3  # the longest month (31) less the shortest (28)
days = st.dates(min_value=date(1950, 1, 1), max_value=date(2150, 12, 31))
month_durations = st.builds(
    Duration, count=st.integers(min_value=1, max_value=99), unit=st.sampled_from(["Y", "M"])
)
day_durations = st.builds(
    Duration, count=st.integers(min_value=1, max_value=999), unit=st.just("D")
)
durations = st.one_of(month_durations, day_durations)
calendars = st.sampled_from(CALENDARS)
licence_types = st.sampled_from(default_licence_types().types)


def _day_of_month(day: date, calendar: str) -> int:
    return int(date_to_text(calendar, day)[8:])


@given(days, month_durations, calendars)
def test_add_then_subtract_returns_within_clamping(
    day: date, duration: Duration, calendar: str
) -> None:
    there = add_duration(day, duration, calendar=calendar)
    back = subtract_duration(there, duration, calendar=calendar)
    assert day - timedelta(days=MAX_CLAMP_DAYS) <= back <= day
    if _day_of_month(day, calendar) <= 28:  # every month has a 28th: nothing was clamped
        assert back == day
    # the day of the month is kept or clamped, never moved forward
    assert _day_of_month(there, calendar) <= _day_of_month(day, calendar)


@given(days, day_durations, calendars)
def test_days_round_trip_exactly(day: date, duration: Duration, calendar: str) -> None:
    there = add_duration(day, duration, calendar=calendar)
    assert there - day == timedelta(days=duration.count)
    assert subtract_duration(there, duration, calendar=calendar) == day


@given(days, days, durations, calendars)
def test_add_is_monotonic_and_forward(
    first: date, second: date, duration: Duration, calendar: str
) -> None:
    early, late = min(first, second), max(first, second)
    assert add_duration(early, duration, calendar=calendar) <= add_duration(
        late, duration, calendar=calendar
    )
    assert add_duration(early, duration, calendar=calendar) > early
    assert subtract_duration(early, duration, calendar=calendar) < early


@given(days, licence_types)
def test_first_term_ends_the_day_before_the_next_would_start(
    valid_from: date, licence_type: LicenceType
) -> None:
    term = first_term(valid_from, licence_type)
    calendar = "solar_hijri" if licence_type.jurisdiction == "ir" else "gregorian"
    following = add_duration(valid_from, licence_type.validity, calendar=calendar)
    assert term.valid_from == valid_from and term.expires_on == following - timedelta(days=1)


@given(days, licence_types)
def test_window_contains_the_expiry_day_and_opens_inside_the_term(
    valid_from: date, licence_type: LicenceType
) -> None:
    term = first_term(valid_from, licence_type)
    window = renewal_window(term, licence_type)
    assert window.contains(term.expires_on)
    assert term.valid_from < window.opens_on <= term.expires_on < window.closes_on


@given(days, st.integers(min_value=-2000, max_value=2000), licence_types)
def test_renewed_term_follows_the_old_one_or_starts_today(
    valid_from: date, offset_days: int, licence_type: LicenceType
) -> None:
    current = first_term(valid_from, licence_type)
    today = current.expires_on + timedelta(days=offset_days)
    renewed = renewed_term(current, today=today, licence_type=licence_type)
    assert renewed.valid_from == max(current.expires_on + timedelta(days=1), today)
    assert renewed.valid_from > current.expires_on or renewed.valid_from == today
    assert renewed == first_term(renewed.valid_from, licence_type)
    assert renewed.expires_on > current.expires_on


@given(days, st.integers(min_value=-5000, max_value=5000), licence_types)
def test_valid_exactly_inside_the_term(
    valid_from: date, offset_days: int, licence_type: LicenceType
) -> None:
    term = first_term(valid_from, licence_type)
    today = valid_from + timedelta(days=offset_days)
    status = effective_status(LicenceStatus.VALID, term, today=today)
    inside = term.valid_from <= today <= term.expires_on
    assert (status is EffectiveStatus.VALID) is inside
