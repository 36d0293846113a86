"""Known answers for Iranian bill and payment IDs, and mutated negatives named after the mutation.

Source: the three pairs published with issue 5 (two valid, the third refused on C2). Every
single-digit substitution of each valid pair is refused, and the rule says which check caught it.
"""

from __future__ import annotations

import pytest

from payments.bill_ids import (
    BILL_ID_POINTER,
    DEFAULT_BILL_SERVICE_TYPES,
    PAYMENT_ID_POINTER,
    RULE_AMOUNT_MISMATCH,
    RULE_BILL_ID_CHECK_DIGIT,
    RULE_BILL_ID_FORMAT,
    RULE_PAYMENT_ID_FIRST_CHECK_DIGIT,
    RULE_PAYMENT_ID_FORMAT,
    RULE_PAYMENT_ID_SECOND_CHECK_DIGIT,
    verify_bill_payment,
)
from payments.errors import PaymentFieldError

VALID = {
    "landline": ("7748317800142", "1770160"),
    "water": ("2050327604613", "1070189"),
}
INVALID_PUBLISHED = ("9174639504124", "12908197")


def _refusal(
    bill: str, payment: str, expected_amount_minor: int | None = None
) -> list[tuple[str, str]]:
    with pytest.raises(PaymentFieldError) as caught:
        verify_bill_payment(
            bill,
            payment,
            service_types=DEFAULT_BILL_SERVICE_TYPES,
            expected_amount_minor=expected_amount_minor,
        )
    return [(error.pointer, error.rule) for error in caught.value.errors]


def test_landline_vector_decodes() -> None:
    paid = verify_bill_payment(*VALID["landline"], service_types=DEFAULT_BILL_SERVICE_TYPES)
    assert (paid.bill.subscriber_code, paid.bill.company_code) == ("77483178", "001")
    assert (paid.bill.service_type, paid.bill.service_name, paid.bill.check_digit) == (
        4,
        "landline",
        2,
    )
    assert (paid.payment.amount_thousands_rials, paid.payment.year_digit) == (17, 7)
    assert (paid.payment.period, paid.payment.c1, paid.payment.c2) == (1, 6, 0)
    assert (paid.amount_minor, paid.currency) == (17_000, "IRR")


def test_water_vector_decodes() -> None:
    paid = verify_bill_payment(*VALID["water"], service_types=DEFAULT_BILL_SERVICE_TYPES)
    assert (paid.bill.subscriber_code, paid.bill.company_code) == ("20503276", "046")
    assert (paid.bill.service_type, paid.bill.service_name, paid.bill.check_digit) == (
        1,
        "water",
        3,
    )
    assert (paid.payment.amount_thousands_rials, paid.payment.year_digit) == (10, 7)
    assert (paid.payment.period, paid.payment.c1, paid.payment.c2) == (1, 8, 9)
    assert paid.amount_minor == 10_000


def test_published_invalid_pair_fails_exactly_on_second_check_digit() -> None:
    # Its bill ID and its C1 are right; only C2 (which binds the payment to the bill) is wrong.
    assert _refusal(*INVALID_PUBLISHED) == [
        (PAYMENT_ID_POINTER, RULE_PAYMENT_ID_SECOND_CHECK_DIGIT)
    ]


def _substitutions(text: str) -> list[tuple[int, str]]:
    return [(i, digit) for i in range(len(text)) for digit in "0123456789" if digit != text[i]]


def _substituted(text: str, position: int, digit: str) -> str:
    return text[:position] + digit + text[position + 1 :]


BILL_MUTATIONS = [
    pytest.param(name, position, digit, id=f"{name}-bill-digit{position}-to-{digit}")
    for name, (bill, _) in VALID.items()
    for position, digit in _substitutions(bill)
]
PAYMENT_MUTATIONS = [
    pytest.param(name, position, digit, id=f"{name}-payment-digit{position}-to-{digit}")
    for name, (_, payment) in VALID.items()
    for position, digit in _substitutions(payment)
]


@pytest.mark.parametrize(("name", "position", "digit"), BILL_MUTATIONS)
def test_bill_id_single_digit_substitution_is_refused(name: str, position: int, digit: str) -> None:
    bill, payment = VALID[name]
    # For these vectors the bill ID's own check digit catches every substitution, so C2 (which
    # also covers the bill ID) is never reached.
    assert _refusal(_substituted(bill, position, digit), payment) == [
        (BILL_ID_POINTER, RULE_BILL_ID_CHECK_DIGIT)
    ]


@pytest.mark.parametrize(("name", "position", "digit"), PAYMENT_MUTATIONS)
def test_payment_id_single_digit_substitution_is_refused(
    name: str, position: int, digit: str
) -> None:
    bill, payment = VALID[name]
    mutated = _substituted(payment, position, digit)
    if position == len(payment) - 1:
        expected = RULE_PAYMENT_ID_SECOND_CHECK_DIGIT
    elif len(mutated.lstrip("0")) < 6:  # "1070189" → "070189": five digits once the 0 goes
        expected = RULE_PAYMENT_ID_FORMAT
    else:
        expected = RULE_PAYMENT_ID_FIRST_CHECK_DIGIT
    assert _refusal(bill, mutated) == [(PAYMENT_ID_POINTER, expected)]


def test_mutation_payment_ids_swapped_between_vectors() -> None:
    assert _refusal(VALID["landline"][0], VALID["water"][1]) == [
        (PAYMENT_ID_POINTER, RULE_PAYMENT_ID_SECOND_CHECK_DIGIT)
    ]


def test_mutation_bill_and_payment_fields_swapped() -> None:
    bill, payment = VALID["landline"]
    # "1770160" happens to pass as a bill ID (0 = mod11("177016"), service type 6): only the
    # thirteen digits in the payment field are caught, by their C1.
    assert _refusal(payment, bill) == [(PAYMENT_ID_POINTER, RULE_PAYMENT_ID_FIRST_CHECK_DIGIT)]


def test_mutation_adjacent_transposition_in_payment_body() -> None:
    bill, _ = VALID["landline"]
    assert _refusal(bill, "7170160") == [(PAYMENT_ID_POINTER, RULE_PAYMENT_ID_FIRST_CHECK_DIGIT)]


def test_mutation_bill_id_last_digit_dropped() -> None:
    bill, payment = VALID["landline"]
    assert _refusal(bill[:-1], payment)[0] == (BILL_ID_POINTER, RULE_BILL_ID_CHECK_DIGIT)


def test_mutation_payment_id_digit_inserted() -> None:
    bill, payment = VALID["water"]
    assert _refusal(bill, "1" + payment) == [
        (PAYMENT_ID_POINTER, RULE_PAYMENT_ID_FIRST_CHECK_DIGIT)
    ]


def test_mutation_bill_id_persian_digits() -> None:
    _, payment = VALID["landline"]
    persian = "۷۷۴۸۳۱۷۸۰۰۱۴۲"
    assert _refusal(persian, payment) == [(BILL_ID_POINTER, RULE_BILL_ID_FORMAT)]


def test_mutation_payment_id_with_space() -> None:
    bill, _ = VALID["landline"]
    assert _refusal(bill, "17701 60") == [(PAYMENT_ID_POINTER, RULE_PAYMENT_ID_FORMAT)]


def test_mutation_amount_disagrees_with_bill() -> None:
    bill, payment = VALID["landline"]
    assert _refusal(bill, payment, expected_amount_minor=18_000) == [
        (PAYMENT_ID_POINTER, RULE_AMOUNT_MISMATCH)
    ]


def test_leading_zeros_padded_to_thirteen_digits_are_accepted() -> None:
    bill, payment = VALID["water"]
    paid = verify_bill_payment(
        bill.zfill(13), payment.zfill(13), service_types=DEFAULT_BILL_SERVICE_TYPES
    )
    assert (paid.bill.text, paid.payment.text) == (bill, payment)
