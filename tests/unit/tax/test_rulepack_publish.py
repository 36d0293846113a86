"""A pack's time zone decides the filing day, and a pack publishes itself whole as JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from signatures.canonical import canonicalize
from tax.errors import RulePackError
from tax.rulepack import parse_pack, shipped_packs
from tests.unit.tax.test_rulepack import BASE, NAME, _pack


def test_shipped_packs_count_days_in_their_own_zone() -> None:
    ir, ee = shipped_packs()["ir"], shipped_packs()["ee"]
    assert (ir.timezone, ee.timezone) == ("Asia/Tehran", "Europe/Tallinn")
    # 21:00 UTC on 21 June 2025 is already 22 June (00:30) in Tehran, still 21 June... no: 00:00
    # in Tallinn (UTC+3 in summer) is 22 June as well; 20:00 UTC is 23:30 in Tehran, 23:00 in
    # Tallinn: both still the 21st.
    assert ir.local_date(datetime(2025, 6, 21, 20, 0, tzinfo=UTC)) == date(2025, 6, 21)
    assert ir.local_date(datetime(2025, 6, 21, 20, 31, tzinfo=UTC)) == date(2025, 6, 22)
    assert ee.local_date(datetime(2025, 6, 21, 20, 59, tzinfo=UTC)) == date(2025, 6, 21)
    assert ee.local_date(datetime(2025, 6, 21, 21, 0, tzinfo=UTC)) == date(2025, 6, 22)


def test_a_pack_without_a_zone_counts_in_utc_and_a_bad_zone_is_refused() -> None:
    assert _pack().timezone == "UTC"
    with_zone = BASE.replace(
        'calendar = "gregorian"', 'calendar = "gregorian"\ntimezone = "Asia/Tehran"'
    )
    assert parse_pack(with_zone.encode(), name=NAME).timezone == "Asia/Tehran"
    for bad in ('"Mars/Olympus"', '"../etc/passwd"', "3"):
        text = BASE.replace('calendar = "gregorian"', f'calendar = "gregorian"\ntimezone = {bad}')
        with pytest.raises(RulePackError) as caught:
            parse_pack(text.encode(), name=NAME)
        assert caught.value.pointer == "pack.timezone"


def test_a_pack_publishes_every_dated_value_with_its_source() -> None:
    ir = shipped_packs()["ir"]
    published = ir.as_json()
    canonicalize(published)  # it is JSON under the canonical profile (no floats, no dates)
    assert published["version"] == ir.version and published["timezone"] == "Asia/Tehran"
    params = published["params"]
    assert isinstance(params, dict)
    assert set(params) == set(ir.params)
    rate = params["corporate.rate"]
    assert isinstance(rate, list) and isinstance(rate[0], dict)
    assert rate[0]["value"] == "0.25" and rate[0]["source"] in published["sources"]  # type: ignore[operator]
    since = rate[0]["since"]
    assert isinstance(since, dict) and set(since) == {"date", "solar_hijri"}
    assert published["weekend"] == ["friday"]
    holidays = published["holidays"]
    assert isinstance(holidays, list) and len(holidays) == len(ir.holidays)
    ee = shipped_packs()["ee"].as_json()
    assert isinstance(ee["holidays"], list) and isinstance(ee["holidays"][0], dict)
    assert isinstance(ee["holidays"][0]["day"], str)  # ISO only where the calendar is Gregorian
