"""Unit tests of payments.fees: dated fee schedules with their legal sources."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from payments import fees
from payments.errors import FeeNotFoundError, PaymentFieldError
from payments.fees import (
    FeeBook,
    FeePeriod,
    FeeSchedule,
    LegalSource,
    load_default_fee_schedules,
    load_fee_schedules,
)

SOURCE = {"title": "Budget act 1403, fee table", "reference": "T-1403/12"}


def _period(start: str, end: str | None, amount: int | None = 1000, **more: Any) -> dict[str, Any]:
    period: dict[str, Any] = {"valid_from": start, "valid_until": end}
    if amount is not None:
        period.update(amount_minor=amount, currency="IRR")
    period["legal_source"] = dict(SOURCE)
    period.update(more)
    return period


def _document(*periods: dict[str, Any], code: str = "passport.issue") -> dict[str, Any]:
    if not periods:
        periods = (_period("2024-03-20", "2025-03-21"), _period("2025-03-21", None, 2000))
    return {
        "format": fees.FEE_SCHEDULES_FORMAT,
        "services": [{"service_code": code, "title": "Passport", "periods": list(periods)}],
    }


def _refusal(document: object) -> list[tuple[str, str]]:
    with pytest.raises(PaymentFieldError) as caught:
        load_fee_schedules(json.dumps(document))
    return [(error.pointer, error.rule) for error in caught.value.errors]


P0 = "/services/0/periods/0"
P1 = "/services/0/periods/1"

# --- the packaged book ---------------------------------------------------------------------------


def test_packaged_book_loads_through_importlib_resources() -> None:
    book = load_default_fee_schedules()
    assert book.service_codes == (
        "business_licence.renewal",
        "civil_registry.certificate_copy",
        "driving_licence.renewal",
        "engineering_licence.renewal",
        "passport.issue",
        "taxi_driver_card.renewal",
    )


def test_fee_changes_on_valid_from_and_not_a_day_earlier() -> None:
    book = load_default_fee_schedules()
    last_day = book.fee_at("passport.issue", on=date(2024, 3, 19))
    first_day = book.fee_at("passport.issue", on=date(2024, 3, 20))
    assert (last_day.amount_minor, first_day.amount_minor) == (15_000_000, 20_000_000)
    assert first_day.currency == "IRR"
    assert first_day.legal_source.reference == "ILLUSTRATIVE/1403/passport-fees/row-1"
    assert first_day.period.valid_until == date(2025, 3, 21)


def test_open_ended_period_applies_far_ahead() -> None:
    fee = load_default_fee_schedules().fee_at("passport.issue", on=date(2040, 1, 1))
    assert (fee.amount_minor, fee.period.valid_until) == (25_000_000, None)


@pytest.mark.parametrize(
    ("code", "on", "reason"),
    [
        ("passport.issue", date(2023, 3, 20), "not_in_force"),  # the day before the first period
        ("business_licence.renewal", date(2025, 3, 21), "suspended"),
        ("business_licence.renewal", date(2025, 6, 21), "suspended"),
        ("no.such_service", date(2025, 1, 1), "unknown_service"),
    ],
)
def test_fee_not_found(code: str, on: date, reason: str) -> None:
    with pytest.raises(FeeNotFoundError) as caught:
        load_default_fee_schedules().fee_at(code, on=on)
    assert (caught.value.service_code, caught.value.on, caught.value.reason) == (code, on, reason)


def test_fee_resumes_after_the_suspension() -> None:
    fee = load_default_fee_schedules().fee_at("business_licence.renewal", on=date(2025, 6, 22))
    assert fee.amount_minor == 10_000_000


def test_fee_not_in_force_after_a_closed_last_period() -> None:
    book = load_fee_schedules(json.dumps(_document(_period("2024-01-01", "2024-02-01"))))
    assert book.fee_at("passport.issue", on=date(2024, 1, 31)).amount_minor == 1000
    with pytest.raises(FeeNotFoundError) as caught:
        book.fee_at("passport.issue", on=date(2024, 2, 1))
    assert caught.value.reason == "not_in_force"


# --- sources: path, text, bytes, size ------------------------------------------------------------


def test_load_from_path_text_and_bytes_agree(tmp_path: Path) -> None:
    text = json.dumps(_document())
    path = tmp_path / "fees.json"
    path.write_text(text, encoding="utf-8")
    books = [load_fee_schedules(path), load_fee_schedules(text), load_fee_schedules(text.encode())]
    assert books[0] == books[1] == books[2]
    assert books[0].schedules[0].periods[1].amount_minor == 2000


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * (fees.MAX_FEE_FILE_BYTES + 1))
    with pytest.raises(PaymentFieldError) as caught:
        load_fee_schedules(path)
    assert caught.value.errors[0].rule == "too_long"


def test_oversized_text_is_refused() -> None:
    with pytest.raises(PaymentFieldError) as caught:
        load_fee_schedules(b" " * (fees.MAX_FEE_FILE_BYTES + 1))
    assert caught.value.errors[0].rule == "too_long"


@pytest.mark.parametrize(
    ("text", "pointer", "rule"),
    [
        ("{", "", "invalid_json"),
        ('{"format": 1, "format": 2}', "/format", "duplicate_key"),
        (
            '{"services": [{"periods": [{"amount_minor": 1.5}]}]}',
            P0 + "/amount_minor",
            "float_not_allowed",
        ),
    ],
)
def test_json_outside_the_canonical_profile(text: str, pointer: str, rule: str) -> None:
    with pytest.raises(PaymentFieldError) as caught:
        load_fee_schedules(text)
    assert (caught.value.errors[0].pointer, caught.value.errors[0].rule) == (pointer, rule)


# --- structure -----------------------------------------------------------------------------------


def test_root_must_be_an_object() -> None:
    assert _refusal([]) == [("", "wrong_type")]


def test_missing_unknown_and_wrong_members_of_the_file() -> None:
    assert _refusal({"format": "other/1", "note": 3, "extra": True}) == [
        ("/extra", "unknown_member"),
        ("/services", "missing_member"),
        ("/format", "unknown_format"),
        ("/note", "wrong_type"),
    ]


def test_services_must_be_a_non_empty_array() -> None:
    document = _document()
    document["services"] = []
    assert _refusal(document) == [("/services", "empty")]


def test_too_many_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fees, "MAX_SERVICES", 1)
    document = _document()
    document["services"].append(copy.deepcopy(document["services"][0]))
    assert _refusal(document) == [("/services", "too_many")]


def test_too_many_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fees, "MAX_PERIODS_PER_SERVICE", 1)
    assert _refusal(_document()) == [("/services/0/periods", "too_many")]


def test_service_must_be_an_object() -> None:
    document = _document()
    document["services"] = ["passport.issue"]
    assert _refusal(document) == [("/services/0", "wrong_type")]


@pytest.mark.parametrize(
    "code", ["passport", "Passport.issue", "passport..issue", "a.b.c.d.e", "پاس.issue"]
)
def test_invalid_service_codes(code: str) -> None:
    assert _refusal(_document(code=code)) == [("/services/0/service_code", "invalid_service_code")]


def test_duplicate_service_code() -> None:
    document = _document()
    document["services"].append(copy.deepcopy(document["services"][0]))
    assert _refusal(document) == [("/services/1/service_code", "duplicate_service_code")]


@pytest.mark.parametrize(
    ("title", "rule"),
    [("", "empty"), ("   ", "empty"), ("x" * 301, "too_long"), (None, "wrong_type")],
)
def test_service_title(title: object, rule: str) -> None:
    document = _document()
    document["services"][0]["title"] = title
    assert _refusal(document) == [("/services/0/title", rule)]


def test_period_must_be_an_object_and_blocks_the_timeline_check() -> None:
    document = _document()
    document["services"][0]["periods"].insert(0, "2024")
    assert _refusal(document) == [(P0, "wrong_type")]


# --- periods and the timeline --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["2024-02-30", "2024-3-20", "20240320", "2024-03-20T00:00:00Z", 20240320]
)
def test_invalid_dates(value: object) -> None:
    assert _refusal(_document(_period(value, None))) == [(P0 + "/valid_from", "invalid_date")]  # type: ignore[arg-type]


def test_valid_until_is_required_even_when_open() -> None:
    period = _period("2024-01-01", None)
    del period["valid_until"]
    assert _refusal(_document(period)) == [(P0 + "/valid_until", "missing_member")]


@pytest.mark.parametrize("end", ["2024-01-01", "2023-12-31"])
def test_empty_or_reversed_period(end: str) -> None:
    assert _refusal(_document(_period("2024-01-01", end))) == [
        (P0 + "/valid_until", "empty_period")
    ]


def test_overlapping_periods() -> None:
    document = _document(_period("2024-01-01", "2024-06-01"), _period("2024-05-01", None))
    assert _refusal(document) == [(P1 + "/valid_from", "periods_overlap")]


def test_periods_out_of_order_are_an_overlap() -> None:
    document = _document(_period("2025-01-01", None), _period("2024-01-01", "2025-01-01"))
    assert _refusal(document) == [(P1 + "/valid_from", "periods_overlap")]


def test_open_period_that_is_not_last_overlaps_the_next() -> None:
    document = _document(_period("2024-01-01", None), _period("2025-01-01", None))
    assert _refusal(document) == [(P1 + "/valid_from", "periods_overlap")]


def test_undocumented_gap() -> None:
    document = _document(_period("2024-01-01", "2024-06-01"), _period("2024-06-02", None))
    assert _refusal(document) == [(P1 + "/valid_from", "periods_gap")]


def test_documented_gap_is_a_suspension() -> None:
    book = load_fee_schedules(
        json.dumps(
            _document(
                _period("2024-01-01", "2024-06-01"),
                _period("2024-06-01", "2024-07-01", amount=None, suspended="court order"),
                _period("2024-07-01", None),
            )
        )
    )
    period = book.schedules[0].periods[1]
    assert (period.amount_minor, period.currency, period.suspended) == (None, None, "court order")


@pytest.mark.parametrize(
    ("amount", "rule"),
    [
        (0, "non_positive_amount"),
        (-5, "non_positive_amount"),
        (True, "wrong_type"),
        ("1000", "wrong_type"),
    ],
)
def test_amount_must_be_a_positive_integer(amount: object, rule: str) -> None:
    assert _refusal(_document(_period("2024-01-01", None, amount=amount))) == [  # type: ignore[arg-type]
        (P0 + "/amount_minor", rule)
    ]


@pytest.mark.parametrize(
    ("currency", "rule"), [("XYZ", "unknown_currency"), ("irr", "wrong_type"), (364, "wrong_type")]
)
def test_currency_must_be_accepted(currency: object, rule: str) -> None:
    assert _refusal(_document(_period("2024-01-01", None, currency=currency))) == [
        (P0 + "/currency", rule)
    ]


def test_period_needs_amount_and_currency_or_a_suspension() -> None:
    period = _period("2024-01-01", None, amount=None)
    period["currency"] = "IRR"
    assert _refusal(_document(period)) == [(P0 + "/amount_minor", "missing_member")]


def test_suspension_with_an_amount_is_ambiguous() -> None:
    period = _period("2024-01-01", None, suspended="why")
    assert _refusal(_document(period)) == [(P0 + "/suspended", "amount_and_suspension")]


def test_suspension_needs_a_reason() -> None:
    period = _period("2024-01-01", None, amount=None, suspended="")
    assert _refusal(_document(period)) == [(P0 + "/suspended", "empty")]


# --- legal sources -------------------------------------------------------------------------------


def test_every_period_needs_a_legal_source() -> None:
    period = _period("2024-01-01", None)
    del period["legal_source"]
    assert _refusal(_document(period)) == [(P0 + "/legal_source", "missing_member")]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Budget act", [("", "wrong_type")]),
        ({"title": "Budget act"}, [("/reference", "missing_member")]),
        ({**SOURCE, "page": 3}, [("/page", "unknown_member")]),
        ({**SOURCE, "url": "http://example.org/law"}, [("/url", "invalid_url")]),
        ({**SOURCE, "url": "https://"}, [("/url", "invalid_url")]),
        ({**SOURCE, "url": "https://example.org/" + "a" * 500}, [("/url", "too_long")]),
    ],
)
def test_legal_source_refusals(source: object, expected: list[tuple[str, str]]) -> None:
    pointer = P0 + "/legal_source"
    refused = _refusal(_document(_period("2024-01-01", None, legal_source=source)))
    assert refused == [(pointer + suffix, rule) for suffix, rule in expected]


def test_legal_source_url_is_kept() -> None:
    source = {**SOURCE, "url": "https://rc.majlis.ir/fa/law/show/1?x=1#table"}
    book = load_fee_schedules(
        json.dumps(_document(_period("2024-01-01", None, legal_source=source)))
    )
    fee = book.fee_at("passport.issue", on=date(2024, 1, 1))
    assert fee.legal_source == LegalSource(SOURCE["title"], SOURCE["reference"], source["url"])


def test_errors_are_capped() -> None:
    periods = [_period("2024-01-01", None, amount=0) for _ in range(fees.MAX_REPORTED_ERRORS + 5)]
    refused = _refusal(_document(*periods))
    assert len(refused) == fees.MAX_REPORTED_ERRORS


# --- the value types -----------------------------------------------------------------------------


def test_fee_book_refuses_two_schedules_for_one_service() -> None:
    period = FeePeriod(date(2024, 1, 1), None, 1, "IRR", LegalSource("t", "r"))
    schedule = FeeSchedule("passport.issue", "Passport", (period,))
    with pytest.raises(ValueError, match="two fee schedules"):
        FeeBook((schedule, schedule))


def test_period_bounds() -> None:
    period = FeePeriod(date(2024, 1, 1), date(2024, 2, 1), 1, "IRR", LegalSource("t", "r"))
    assert [
        period.is_in_force_on(day)
        for day in (date(2023, 12, 31), date(2024, 1, 1), date(2024, 1, 31), date(2024, 2, 1))
    ] == [False, True, True, False]
