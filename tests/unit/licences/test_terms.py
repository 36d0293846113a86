"""Unit tests of licences.terms: durations in both calendars, terms and renewal windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from licences.terms import (
    Term,
    Window,
    add_duration,
    calendar_of,
    dual,
    dual_text,
    first_term,
    licence_term_after,
    local_date,
    renewal_window,
    renewed_term,
    subtract_duration,
)
from licences.types import LicenceType, default_licence_types, parse_duration
from tax.rulepack import date_from_text, date_to_text

SH = "solar_hijri"
GR = "gregorian"


def j(text: str) -> date:
    """A Solar Hijri day as a Gregorian date."""
    return date_from_text(SH, text)


def jtext(day: date) -> str:
    return date_to_text(SH, day)


def licence_type(code: str) -> LicenceType:
    found = default_licence_types().get(code)
    assert found is not None
    return found


DRIVING = licence_type("ir.driving")  # P10Y, window P90D before .. P1Y after
BUSINESS = licence_type("ir.business")  # P5Y, window P3M before .. P6M after
TAXI = licence_type("ee.taxi-driver")  # P5Y, window P2M before .. P6M after


# --- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        ("1403-12-30", "P1Y", "1404-12-29"),  # the leap day of Esfand clamps in a common year
        ("1403-12-30", "P12M", "1404-12-29"),
        ("1403-12-30", "P4Y", "1407-12-29"),  # 1407 is not leap in jdatetime's (33-year) rule
        ("1399-12-30", "P4Y", "1403-12-30"),  # leap to leap keeps the 30th
        ("1403-06-31", "P1M", "1403-07-30"),  # Shahrivar has 31 days, Mehr 30
        ("1403-11-30", "P1M", "1403-12-30"),  # Bahman 30 → a leap Esfand has a 30th
        ("1402-11-30", "P1M", "1402-12-29"),  # … a common Esfand has not
        ("1403-11-15", "P3M", "1404-02-15"),  # across Nowruz
        ("1403-12-29", "P1D", "1403-12-30"),
        ("1403-12-30", "P1D", "1404-01-01"),
        ("1403-10-01", "P90D", "1404-01-01"),  # Dey, Bahman and a leap Esfand: 30 days each
    ],
)
def test_add_in_solar_hijri(start: str, duration: str, expected: str) -> None:
    assert jtext(add_duration(j(start), parse_duration(duration), calendar=SH)) == expected


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        ("1404-12-29", "P1Y", "1403-12-29"),  # not back to the leap day: nothing is clamped
        ("1404-01-31", "P1M", "1403-12-30"),  # Farvardin 31 → leap Esfand 30
        ("1405-01-31", "P1M", "1404-12-29"),  # … common Esfand 29
        ("1404-01-01", "P1D", "1403-12-30"),
        ("1404-03-01", "P90D", "1403-12-03"),
    ],
)
def test_subtract_in_solar_hijri(start: str, duration: str, expected: str) -> None:
    assert jtext(subtract_duration(j(start), parse_duration(duration), calendar=SH)) == expected


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (date(2024, 2, 29), "P1Y", date(2025, 2, 28)),
        (date(2024, 2, 29), "P4Y", date(2028, 2, 29)),
        (date(2024, 1, 31), "P1M", date(2024, 2, 29)),
        (date(2023, 1, 31), "P1M", date(2023, 2, 28)),
        (date(2024, 3, 31), "P1M", date(2024, 4, 30)),
        (date(2024, 11, 30), "P3M", date(2025, 2, 28)),
        (date(2024, 12, 31), "P1M", date(2025, 1, 31)),
        (date(2024, 2, 28), "P1D", date(2024, 2, 29)),
        (date(2024, 12, 1), "P90D", date(2025, 3, 1)),
    ],
)
def test_add_in_gregorian(start: date, duration: str, expected: date) -> None:
    assert add_duration(start, parse_duration(duration), calendar=GR) == expected


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (date(2024, 3, 31), "P1M", date(2024, 2, 29)),
        (date(2025, 3, 31), "P1M", date(2025, 2, 28)),
        (date(2028, 2, 29), "P1Y", date(2027, 2, 28)),
        (date(2025, 1, 15), "P2M", date(2024, 11, 15)),
        (date(2024, 3, 1), "P1D", date(2024, 2, 29)),
    ],
)
def test_subtract_in_gregorian(start: date, duration: str, expected: date) -> None:
    assert subtract_duration(start, parse_duration(duration), calendar=GR) == expected


def test_the_same_day_and_duration_differ_by_calendar() -> None:
    one_month = parse_duration("P1M")
    start = j("1403-11-30")  # 2025-02-18
    assert add_duration(start, one_month, calendar=SH) == j("1403-12-30") == date(2025, 3, 20)
    assert add_duration(start, one_month, calendar=GR) == date(2025, 3, 18)
    start = date(2025, 1, 31)  # 1403-11-12
    assert add_duration(start, one_month, calendar=SH) == j("1403-12-12") == date(2025, 3, 2)
    assert add_duration(start, one_month, calendar=GR) == date(2025, 2, 28)


def test_unknown_calendar_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="unknown calendar"):
        add_duration(date(2024, 1, 1), parse_duration("P1Y"), calendar="julian")
    with pytest.raises(ValueError, match="out_of_range"):
        add_duration(date(2999, 6, 1), parse_duration("P1Y"), calendar=GR)
    with pytest.raises(ValueError, match="out_of_range"):
        add_duration(date.max - timedelta(days=1), parse_duration("P2D"), calendar=GR)


# --- terms ---------------------------------------------------------------------------------------


def test_term_refuses_to_be_empty() -> None:
    Term(date(2024, 1, 1), date(2024, 1, 1))  # one day is a term
    with pytest.raises(ValueError):
        Term(date(2024, 1, 2), date(2024, 1, 1))


def test_first_term_in_solar_hijri() -> None:
    term = first_term(j("1394-01-01"), DRIVING)
    assert jtext(term.expires_on) == "1403-12-30"  # add P10Y = 1404-01-01, minus one day
    term = first_term(j("1394-03-01"), DRIVING)
    assert (term.valid_from, term.expires_on) == (date(2015, 5, 22), date(2025, 5, 21))
    assert jtext(term.expires_on) == "1404-02-31"


def test_first_term_in_gregorian() -> None:
    assert first_term(date(2020, 2, 29), TAXI) == Term(date(2020, 2, 29), date(2025, 2, 27))
    assert first_term(date(2020, 3, 1), TAXI) == Term(date(2020, 3, 1), date(2025, 2, 28))


@pytest.mark.parametrize(
    ("today", "expected_from"),
    [
        ("1403-10-01", "1404-01-01"),  # early: the new term follows the old one
        ("1403-12-30", "1404-01-01"),  # on the expiry day itself
        ("1404-01-01", "1404-01-01"),  # the day after: today
        ("1404-06-15", "1404-06-15"),  # late: from today, no back-dating
    ],
)
def test_renewed_term(today: str, expected_from: str) -> None:
    current = first_term(j("1394-01-01"), DRIVING)  # expires 1403-12-30
    renewed = renewed_term(current, today=j(today), licence_type=DRIVING)
    assert jtext(renewed.valid_from) == expected_from
    assert renewed == first_term(renewed.valid_from, DRIVING)


def test_renewed_term_in_gregorian() -> None:
    current = Term(date(2020, 5, 1), date(2025, 4, 30))
    early = renewed_term(current, today=date(2025, 3, 1), licence_type=TAXI)
    assert early == Term(date(2025, 5, 1), date(2030, 4, 30))
    late = renewed_term(current, today=date(2025, 6, 3), licence_type=TAXI)
    assert late == Term(date(2025, 6, 3), date(2030, 6, 2))


# --- renewal windows at their edge days ---------------------------------------------------------


def _edges(window: Window) -> list[tuple[date, bool]]:
    one = timedelta(days=1)
    return [
        (window.opens_on - one, False),
        (window.opens_on, True),
        (window.closes_on, True),
        (window.closes_on + one, False),
    ]


def test_window_of_a_driving_licence_expiring_on_the_leap_day_of_esfand() -> None:
    current = first_term(j("1394-01-01"), DRIVING)  # expires 1403-12-30 = 2025-03-20
    window = renewal_window(current, DRIVING)
    assert (jtext(window.opens_on), window.opens_on) == ("1403-09-30", date(2024, 12, 20))
    # a year after 1403-12-30 clamps to 1404-12-29; the day after is Nowruz 1405
    assert (jtext(window.closes_on), window.closes_on) == ("1404-12-29", date(2026, 3, 20))
    edges = _edges(window)
    assert [(jtext(day), day.isoformat(), inside) for day, inside in edges] == [
        ("1403-09-29", "2024-12-19", False),
        ("1403-09-30", "2024-12-20", True),
        ("1404-12-29", "2026-03-20", True),
        ("1405-01-01", "2026-03-21", False),
    ]
    for day, inside in edges:
        assert window.contains(day) is inside


def test_window_of_a_business_licence_in_months() -> None:
    current = Term(j("1399-07-01"), j("1404-06-31"))
    window = renewal_window(current, BUSINESS)
    assert jtext(window.opens_on) == "1404-03-31"  # three months before, Khordad has 31 days
    assert jtext(window.closes_on) == "1404-12-29"  # six months after 06-31: Esfand 1404 has 29
    assert [(jtext(day), inside) for day, inside in _edges(window)] == [
        ("1404-03-30", False),
        ("1404-03-31", True),
        ("1404-12-29", True),
        ("1405-01-01", False),
    ]
    for day, inside in _edges(window):
        assert window.contains(day) is inside


def test_window_of_a_taxi_card_in_gregorian() -> None:
    current = Term(date(2020, 5, 1), date(2025, 4, 30))
    window = renewal_window(current, TAXI)
    assert window == Window(date(2025, 2, 28), date(2025, 10, 30))  # 2 months before clamps
    assert [(day.isoformat(), inside) for day, inside in _edges(window)] == [
        ("2025-02-27", False),
        ("2025-02-28", True),
        ("2025-10-30", True),
        ("2025-10-31", False),
    ]
    for day, inside in _edges(window):
        assert window.contains(day) is inside


# --- calendars, local dates and dual dates -------------------------------------------------------


def test_calendar_and_dual_dates() -> None:
    assert (calendar_of(DRIVING), calendar_of(TAXI)) == (SH, GR)
    assert dual(DRIVING, date(2025, 3, 21)) == {"date": "2025-03-21", "jalali": "1404-01-01"}
    assert dual(TAXI, date(2025, 3, 21)) == {"date": "2025-03-21"}
    assert dual_text(DRIVING, date(2025, 3, 21)) == "1404-01-01 (2025-03-21)"
    assert dual_text(TAXI, date(2025, 3, 21)) == "2025-03-21"


def test_local_date_is_the_jurisdictions_day() -> None:
    at = datetime(2025, 3, 20, 21, 0, tzinfo=UTC)  # 00:30 on 21 March in Tehran
    assert local_date(DRIVING, at) == date(2025, 3, 21)
    assert local_date(TAXI, at) == date(2025, 3, 20)  # 23:00 in Tallinn
    east = timezone(timedelta(hours=9))
    assert local_date(TAXI, datetime(2025, 3, 21, 5, 0, tzinfo=east)) == date(2025, 3, 20)
    with pytest.raises(ValueError, match="aware"):
        local_date(DRIVING, datetime(2025, 3, 20, 12, 0))


# --- the licence's term after a renewal (regression: an early renewal read not_yet_valid) -----


def test_early_renewal_continues_the_current_term() -> None:
    current = Term(valid_from=date(2020, 1, 1), expires_on=date(2029, 12, 31))
    renewed = Term(valid_from=date(2030, 1, 1), expires_on=date(2039, 12, 31))
    assert licence_term_after(current, renewed) == Term(date(2020, 1, 1), date(2039, 12, 31))


def test_renewal_after_a_lapse_starts_the_new_term_alone() -> None:
    current = Term(valid_from=date(2020, 1, 1), expires_on=date(2029, 12, 31))
    renewed = Term(valid_from=date(2030, 3, 5), expires_on=date(2040, 3, 4))
    assert licence_term_after(current, renewed) == renewed


def test_a_renewed_term_that_does_not_start_later_is_refused() -> None:
    current = Term(valid_from=date(2020, 1, 1), expires_on=date(2029, 12, 31))
    with pytest.raises(ValueError):
        licence_term_after(current, current)
