"""Hypothesis: make_* and verify_bill_payment round-trip, and what mod 11 does and does not detect.

mod 11 with weights 2-7 changes the remainder r on every single-digit substitution (11 is prime
and no weight or digit difference is a multiple of it), but r = 0 and r = 1 both give check
digit 0. So a substitution goes unseen by one check exactly when it moves r between 0 and 1,
and a pair goes unseen only when every check covering the digit is fooled that way at once.
A substitution of a check digit itself is always caught.
"""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from payments.bill_ids import (
    DEFAULT_BILL_SERVICE_TYPES,
    MAX_AMOUNT_THOUSANDS_RIALS,
    MOD11_WEIGHTS,
    make_bill_id,
    make_payment_id,
    mod11,
    verify_bill_payment,
)
from payments.errors import PaymentFieldError


def _remainder(digits: str) -> int:
    """Σ weight·digit mod 11, written independently of the module under test."""
    weights = MOD11_WEIGHTS * (len(digits) // len(MOD11_WEIGHTS) + 1)
    return sum(w * int(d) for w, d in zip(weights, reversed(digits), strict=False)) % 11


subscriber_codes = st.from_regex(r"[1-9][0-9]{0,7}", fullmatch=True)
company_codes = st.from_regex(r"[0-9]{3}", fullmatch=True)
pairs = st.builds(
    lambda sub, company, service, thousands, year, period: (
        make_bill_id(sub, company_code=company, service_type=service),
        thousands,
        year,
        period,
    ),
    subscriber_codes,
    company_codes,
    st.integers(1, 9),
    st.integers(1, MAX_AMOUNT_THOUSANDS_RIALS),
    st.integers(0, 9),
    st.integers(0, 99),
)


@given(pairs)
def test_make_then_verify_round_trips(pair: tuple[str, int, int, int]) -> None:
    bill, thousands, year, period = pair
    payment = make_payment_id(
        bill_id=bill, amount_minor=thousands * 1000, year_digit=year, period=period
    )
    paid = verify_bill_payment(
        bill,
        payment,
        service_types=DEFAULT_BILL_SERVICE_TYPES,
        expected_amount_minor=thousands * 1000,
    )
    assert paid.bill.text == bill
    assert (paid.payment.amount_thousands_rials, paid.payment.year_digit) == (thousands, year)
    assert paid.payment.period == period


@given(st.from_regex(r"[0-9]{1,30}", fullmatch=True), st.data())
def test_single_substitution_always_moves_the_remainder(digits: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(digits) - 1))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != digits[position]]))
    mutated = digits[:position] + digit + digits[position + 1 :]
    before, after = _remainder(digits), _remainder(mutated)
    assert before != after
    unseen = mod11(mutated) == mod11(digits)
    assert unseen == ({before, after} == {0, 1})


@given(pairs, st.data())
def test_an_unseen_pair_substitution_fooled_every_check_covering_it(
    pair: tuple[str, int, int, int], data: st.DataObject
) -> None:
    bill, thousands, year, period = pair
    payment = make_payment_id(
        bill_id=bill, amount_minor=thousands * 1000, year_digit=year, period=period
    )
    joined = bill + payment
    position = data.draw(st.integers(0, len(joined) - 1))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != joined[position]]))
    # A leading 0 shortens the number (canonical form): that is a length change, not a
    # substitution, and the vectors cover it.
    assume(not (digit == "0" and position in (0, len(bill))))
    mutated = joined[:position] + digit + joined[position + 1 :]
    new_bill, new_payment = mutated[: len(bill)], mutated[len(bill) :]
    try:
        verify_bill_payment(new_bill, new_payment, service_types=DEFAULT_BILL_SERVICE_TYPES)
    except PaymentFieldError:
        return
    check_positions = {len(bill) - 1, len(joined) - 2, len(joined) - 1}
    assert position not in check_positions
    covering = [(joined[:-1], mutated[:-1])]  # C2 covers every digit before it
    if position < len(bill):
        covering.append((bill[:-1], new_bill[:-1]))
    else:
        covering.append((payment[:-2], new_payment[:-2]))
    for old, new in covering:
        assert {_remainder(old), _remainder(new)} == {0, 1}


@given(st.text(max_size=40), st.text(max_size=40))
def test_arbitrary_text_is_refused_only_with_a_field_error(bill: str, payment: str) -> None:
    try:
        verify_bill_payment(bill, payment, service_types=DEFAULT_BILL_SERVICE_TYPES)
    except PaymentFieldError as exc:
        assert {error.pointer for error in exc.errors} <= {
            "/payload/bill_id",
            "/payload/payment_id",
        }
