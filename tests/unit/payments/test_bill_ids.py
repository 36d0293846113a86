"""Unit tests of payments.bill_ids: mod11, the service-type table, parsing, verifying, making."""

from __future__ import annotations

import pytest

from payments import bill_ids
from payments.bill_ids import (
    BILL_ID_POINTER,
    DEFAULT_BILL_SERVICE_TYPES,
    MAX_AMOUNT_THOUSANDS_RIALS,
    PAYMENT_ID_POINTER,
    BillServiceTypes,
    make_bill_id,
    make_payment_id,
    mod11,
    parse_bill_id,
    parse_payment_id,
    verify_bill_payment,
)
from payments.errors import PaymentFieldError

BILL = "7748317800142"
PAYMENT = "1770160"
SERVICES = DEFAULT_BILL_SERVICE_TYPES


def _rules(exc: pytest.ExceptionInfo[PaymentFieldError]) -> list[tuple[str, str]]:
    return [(error.pointer, error.rule) for error in exc.value.errors]


# --- mod11 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("", 0),  # r = 0
        ("0", 0),
        ("5", 1),  # 5·2 = 10 → 11 − 10
        ("6", 0),  # 6·2 = 12 ≡ 1 → r < 2 → 0
        ("1", 9),  # 2 → 11 − 2
        ("1000000", 9),  # weights wrap: the 7th digit from the right has weight 2 again
        ("774831780014", 2),
        ("17701", 6),
    ],
)
def test_mod11_known_values(digits: str, expected: int) -> None:
    assert mod11(digits) == expected


@pytest.mark.parametrize("digits", ["12a", "۱۲۳", "-1", " 1"])
def test_mod11_refuses_non_ascii_digits(digits: str) -> None:
    with pytest.raises(ValueError, match="ASCII digits"):
        mod11(digits)


# --- the service-type table ----------------------------------------------------------------------


def test_default_service_types_cover_one_to_nine() -> None:
    names = [SERVICES.name_of(code) for code in range(10)]
    assert names == [
        None,
        "water",
        "electricity",
        "gas",
        "landline",
        "mobile",
        "municipal",
        "tax",
        "traffic_fines",
        "other",
    ]


def test_service_types_from_mapping_sorts_and_overrides() -> None:
    table = BillServiceTypes.from_mapping({9: "traffic_fines", 1: "water", 8: "tax"})
    assert table.names == ((1, "water"), (8, "tax"), (9, "traffic_fines"))
    assert table.name_of(7) is None


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (((1, "water"), (1, "gas")), "twice"),
        (((10, "water"),), "single digits"),
        (((-1, "water"),), "single digits"),
        (((True, "water"),), "single digits"),
        (((1, "Water"),), "identifiers"),
        (((1, ""),), "identifiers"),
    ],
)
def test_service_types_refuse_bad_tables(names: tuple[tuple[int, str], ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BillServiceTypes(names)


# --- parse_bill_id -------------------------------------------------------------------------------


def test_parse_bill_id_splits_the_fields() -> None:
    bill = parse_bill_id(BILL, service_types=SERVICES)
    assert bill == bill_ids.BillId(BILL, "77483178", "001", 4, "landline", 2)


def test_parse_bill_id_minimum_length_has_one_subscriber_digit() -> None:
    text = make_bill_id("5", company_code="000", service_type=2)
    assert len(text) == bill_ids.BILL_ID_MIN_DIGITS
    assert parse_bill_id(text, service_types=SERVICES).subscriber_code == "5"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("00000", id="zeros-only"),
        pytest.param("12345", id="five-digits"),
        pytest.param("00012345", id="five-digits-after-leading-zeros"),
        pytest.param("12345678901234", id="fourteen-digits"),
        pytest.param("0" * 27 + "1", id="input-longer-than-limit"),
        pytest.param("77483178-00142", id="dash"),
        pytest.param(" 7748317800142", id="leading-space"),
        pytest.param(7748317800142, id="json-number"),
        pytest.param(None, id="null"),
    ],
)
def test_parse_bill_id_refuses_bad_format(text: object) -> None:
    with pytest.raises(PaymentFieldError) as caught:
        parse_bill_id(text, service_types=SERVICES)  # type: ignore[arg-type]
    assert _rules(caught) == [(BILL_ID_POINTER, "bill_id_format")]


def test_parse_bill_id_check_digit_message_names_the_check_not_the_digits() -> None:
    with pytest.raises(PaymentFieldError) as caught:
        parse_bill_id("7748317800143", service_types=SERVICES, pointer="/bill")
    assert _rules(caught) == [("/bill", "bill_id_check_digit")]
    message = caught.value.errors[0].message
    assert "check digit" in message
    assert "7748317800143" not in str(caught.value)
    assert "3" not in message  # not even the wrong digit itself


def test_parse_bill_id_refuses_an_unconfigured_service_type() -> None:
    no_landline = BillServiceTypes(((1, "water"), (2, "electricity")))
    with pytest.raises(PaymentFieldError) as caught:
        parse_bill_id(BILL, service_types=no_landline)
    assert _rules(caught) == [(BILL_ID_POINTER, "unknown_service_type")]
    assert "service type" in caught.value.errors[0].message


def test_service_type_zero_is_unknown_by_default() -> None:
    text = make_bill_id("1234", company_code="001", service_type=0)
    with pytest.raises(PaymentFieldError) as caught:
        parse_bill_id(text, service_types=SERVICES)
    assert _rules(caught) == [(BILL_ID_POINTER, "unknown_service_type")]


# --- parse_payment_id ----------------------------------------------------------------------------


def test_parse_payment_id_splits_the_fields() -> None:
    bill = parse_bill_id(BILL, service_types=SERVICES)
    payment = parse_payment_id("0001770160", bill_id=bill)
    assert payment == bill_ids.PaymentId("1770160", 17, 7, 1, 6, 0)
    assert payment.amount_minor == 17_000


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("17716", "payment_id_format"),
        ("17701a0", "payment_id_format"),
        ("12345678901234", "payment_id_format"),
        ("1770150", "payment_id_first_check_digit"),
        ("1770161", "payment_id_second_check_digit"),
    ],
)
def test_parse_payment_id_refusals(text: str, rule: str) -> None:
    bill = parse_bill_id(BILL, service_types=SERVICES)
    with pytest.raises(PaymentFieldError) as caught:
        parse_payment_id(text, bill_id=bill, pointer="/pid")
    assert _rules(caught) == [("/pid", rule)]


# --- verify_bill_payment -------------------------------------------------------------------------


def test_verify_lists_both_fields_when_both_are_wrong() -> None:
    with pytest.raises(PaymentFieldError) as caught:
        verify_bill_payment("7748317800143", "1770150", service_types=SERVICES)
    assert _rules(caught) == [
        (BILL_ID_POINTER, "bill_id_check_digit"),
        (PAYMENT_ID_POINTER, "payment_id_first_check_digit"),
    ]


def test_verify_does_not_blame_the_payment_id_when_the_bill_id_is_wrong() -> None:
    # The payment ID is right for the real bill; C2 would fail only because the bill ID is wrong.
    with pytest.raises(PaymentFieldError) as caught:
        verify_bill_payment("7748317800143", PAYMENT, service_types=SERVICES)
    assert _rules(caught) == [(BILL_ID_POINTER, "bill_id_check_digit")]


def test_verify_still_judges_c2_when_only_the_service_type_is_unknown() -> None:
    water_only = BillServiceTypes(((1, "water"),))
    with pytest.raises(PaymentFieldError) as caught:
        verify_bill_payment(BILL, "1770161", service_types=water_only)
    assert _rules(caught) == [
        (BILL_ID_POINTER, "unknown_service_type"),
        (PAYMENT_ID_POINTER, "payment_id_second_check_digit"),
    ]


def test_verify_refuses_unknown_service_type_even_when_the_pair_matches() -> None:
    with pytest.raises(PaymentFieldError) as caught:
        verify_bill_payment(BILL, PAYMENT, service_types=BillServiceTypes(()))
    assert _rules(caught) == [(BILL_ID_POINTER, "unknown_service_type")]


def test_verify_custom_pointers() -> None:
    with pytest.raises(PaymentFieldError) as caught:
        verify_bill_payment(
            "x",
            "y",
            service_types=SERVICES,
            bill_pointer="/payload/bill/id",
            payment_pointer="/payload/bill/payment",
        )
    assert _rules(caught) == [
        ("/payload/bill/id", "bill_id_format"),
        ("/payload/bill/payment", "payment_id_format"),
    ]


def test_verify_amount_matches() -> None:
    paid = verify_bill_payment(BILL, PAYMENT, service_types=SERVICES, expected_amount_minor=17_000)
    assert paid.amount_minor == 17_000


@pytest.mark.parametrize("expected", [16_000, 17_001, 0])
def test_verify_amount_mismatch_at_the_amount_pointer(expected: int) -> None:
    with pytest.raises(PaymentFieldError) as caught:
        verify_bill_payment(
            BILL,
            PAYMENT,
            service_types=SERVICES,
            expected_amount_minor=expected,
            amount_pointer="/payload/amount/amount_minor",
        )
    assert _rules(caught) == [("/payload/amount/amount_minor", "amount_mismatch")]
    assert "17" not in str(caught.value)


def test_verify_skips_the_amount_when_a_check_digit_failed() -> None:
    with pytest.raises(PaymentFieldError) as caught:
        verify_bill_payment(
            BILL,
            "1770161",
            service_types=SERVICES,
            expected_amount_minor=1,
            amount_pointer="/payload/amount",
        )
    assert _rules(caught) == [(PAYMENT_ID_POINTER, "payment_id_second_check_digit")]


# --- make_bill_id / make_payment_id --------------------------------------------------------------


def test_make_reproduces_the_published_vectors() -> None:
    assert make_bill_id("77483178", company_code="001", service_type=4) == BILL
    made = make_payment_id(bill_id=BILL, amount_minor=17_000, year_digit=7, period=1)
    assert made == PAYMENT


def test_make_payment_id_accepts_a_padded_bill_id() -> None:
    made = make_payment_id(bill_id="00" + BILL, amount_minor=17_000, year_digit=7, period=1)
    assert made == PAYMENT


def test_make_payment_id_largest_amount_fits_thirteen_digits() -> None:
    amount_minor = MAX_AMOUNT_THOUSANDS_RIALS * 1000
    made = make_payment_id(bill_id=BILL, amount_minor=amount_minor, year_digit=9, period=99)
    assert len(made) == bill_ids.PAYMENT_ID_MAX_DIGITS
    paid = verify_bill_payment(BILL, made, service_types=SERVICES)
    assert (paid.amount_minor, paid.payment.period) == (amount_minor, 99)


def test_make_bill_id_lists_every_bad_part() -> None:
    with pytest.raises(PaymentFieldError) as caught:
        make_bill_id("0123", company_code="12", service_type=10)
    assert _rules(caught) == [
        ("/subscriber_code", "bill_id_format"),
        ("/company_code", "bill_id_format"),
        ("/service_type", "bill_id_format"),
    ]


@pytest.mark.parametrize(
    ("subscriber", "company", "service_type"),
    [
        ("123456789", "001", 1),
        ("", "001", 1),
        ("12a", "001", 1),
        ("1", "0011", 1),
        ("1", "001", True),
    ],
)
def test_make_bill_id_refuses(subscriber: str, company: str, service_type: int) -> None:
    with pytest.raises(PaymentFieldError):
        make_bill_id(subscriber, company_code=company, service_type=service_type)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"amount_minor": 17_500}, [("/amount_minor", "amount_not_whole_thousands")]),
        ({"amount_minor": 0}, [("/amount_minor", "amount_not_whole_thousands")]),
        ({"amount_minor": -1000}, [("/amount_minor", "payment_id_format")]),
        ({"amount_minor": True}, [("/amount_minor", "payment_id_format")]),
        (
            {"amount_minor": (MAX_AMOUNT_THOUSANDS_RIALS + 1) * 1000},
            [("/amount_minor", "payment_id_format")],
        ),
        ({"year_digit": 10}, [("/year_digit", "payment_id_format")]),
        ({"period": 100}, [("/period", "payment_id_format")]),
        ({"period": -1}, [("/period", "payment_id_format")]),
        ({"bill_id": "7748317800143"}, [("/bill_id", "bill_id_check_digit")]),
        ({"bill_id": "77"}, [("/bill_id", "bill_id_format")]),
    ],
)
def test_make_payment_id_refusals(
    kwargs: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    arguments: dict[str, object] = {
        "bill_id": BILL,
        "amount_minor": 17_000,
        "year_digit": 7,
        "period": 1,
    }
    arguments.update(kwargs)
    with pytest.raises(PaymentFieldError) as caught:
        make_payment_id(**arguments)  # type: ignore[arg-type]
    assert _rules(caught) == expected


# --- what mod 11 does not catch (documented in docs/PAYMENTS.md) ----------------------------------


def test_a_single_substitution_can_yield_another_valid_bill_id() -> None:
    # r moves from 0 to 1 (service-type digit 2 → 8: +6 at weight 2 adds 12 ≡ 1 mod 11) and both
    # remainders give check digit 0. The bill ID check alone cannot see it.
    original = make_bill_id("1002", company_code="001", service_type=2)
    mutated = make_bill_id("1002", company_code="001", service_type=8)
    assert (original, mutated) == ("100200120", "100200180")


def test_a_single_substitution_can_yield_another_valid_pair() -> None:
    # Amount digit 5 → 7 (75 → 77 thousand rials): C1's sum moves by 2·5 = 10 ≡ −1 (remainder
    # 1 → 0) and C2's by 2·6 = 12 ≡ 1 (remainder 0 → 1); every check digit stays 0 and the pair
    # still verifies. Only the amount check against the bill catches it.
    first = verify_bill_payment(BILL, "7530500", service_types=SERVICES)
    second = verify_bill_payment(BILL, "7730500", service_types=SERVICES)
    assert (first.amount_minor, second.amount_minor) == (75_000, 77_000)
    with pytest.raises(PaymentFieldError) as caught:
        verify_bill_payment(BILL, "7730500", service_types=SERVICES, expected_amount_minor=75_000)
    assert _rules(caught) == [(PAYMENT_ID_POINTER, "amount_mismatch")]
