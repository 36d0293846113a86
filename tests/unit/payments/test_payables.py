"""Payables: the payload, issuing, payments and instalments, compare-and-set refunds, tax."""

from __future__ import annotations

import copy
import dataclasses
from datetime import date

import pytest

from payments import payables, tax_payables
from payments.errors import (
    PayableAlreadyPaidError,
    PayableAmountError,
    PayableStateError,
    PaymentFieldError,
    StaleRefundableAmountError,
)
from payments.payables import Payable, PayableKind, PayableStatus, Transfer
from payments.tax_payables import TaxPayableRequest
from signatures.canonical import JsonValue

NATIONAL_ID = "ir-nid:0499370899"
WATER = "agency_revenue:water-tehran"
CITY = "agency_revenue:municipality"

PAYLOAD: dict[str, JsonValue] = {
    "kind": "bill",
    "debtor": NATIONAL_ID,
    "amount": {"amount_minor": 1_770_000, "currency": "IRR"},
    "transfers": [
        {"account": WATER, "amount_minor": 1_500_000, "category": "water_charge"},
        {"account": CITY, "amount_minor": 270_000, "category": "sewage"},
    ],
    "due_on": "2025-04-20",
    "reference": "7748317800142",
}


def _payload(**changes: JsonValue) -> dict[str, JsonValue]:
    payload = copy.deepcopy(PAYLOAD)
    payload.update(changes)
    return payload


def _refusals(payload: JsonValue, **kwargs: object) -> dict[str, str]:
    with pytest.raises(PaymentFieldError) as caught:
        payables.parse_payable_payload(payload, **kwargs)  # type: ignore[arg-type]
    return {error.pointer: error.rule for error in caught.value.errors}


def _payable(*, instalments: bool = False, amount_minor: int = 1000) -> Payable:
    return Payable(
        payable_id="p-1",
        kind=PayableKind.FEE,
        issuer="agency:registry",
        debtor=NATIONAL_ID,
        amount_minor=amount_minor,
        currency="IRR",
        transfers=(
            Transfer(WATER, amount_minor - amount_minor // 4, "a"),
            Transfer(CITY, amount_minor // 4, "b"),
        ),
        allows_instalments=instalments,
        due_on=date(2025, 4, 20),
        reference="passport.issue",
    )


# --- the payload ------------------------------------------------------------------------------


def test_a_valid_payload_parses() -> None:
    draft = payables.parse_payable_payload(PAYLOAD)
    assert draft.kind is PayableKind.BILL and draft.debtor == NATIONAL_ID
    assert (draft.amount_minor, draft.currency) == (1_770_000, "IRR")
    assert draft.transfers == (
        Transfer(WATER, 1_500_000, "water_charge"),
        Transfer(CITY, 270_000, "sewage"),
    )
    assert draft.due_on == date(2025, 4, 20) and draft.reference == "7748317800142"
    assert draft.allows_instalments is False
    assert payables.parse_payable_payload(_payload(allows_instalments=True)).allows_instalments


def test_five_transfers_and_extra_members_the_caller_parses() -> None:
    transfers: list[JsonValue] = [
        {"account": f"agency_revenue:agency-{i}", "amount_minor": 100, "category": "fee"}
        for i in range(payables.MAX_TRANSFERS)
    ]
    payload = _payload(transfers=transfers, amount={"amount_minor": 500, "currency": "USD"})
    payload["payment_id"] = "1770160"
    draft = payables.parse_payable_payload(payload, extra_members=("payment_id",))
    assert len(draft.transfers) == payables.MAX_TRANSFERS and draft.currency == "USD"
    assert _refusals(payload) == {"/payload/payment_id": "unknown_member"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"kind": "loan"}, {"/payload/kind": "unknown_kind"}),
        ({"kind": 1}, {"/payload/kind": "wrong_type"}),
        ({"debtor": "ir-nid:0499370898"}, {"/payload/debtor": "invalid_check_digit"}),
        ({"debtor": "someone"}, {"/payload/debtor": "invalid_subject"}),
        ({"debtor": 42}, {"/payload/debtor": "wrong_type"}),
        (
            {"amount": {"amount_minor": 0, "currency": "IRR"}},
            {"/payload/amount/amount_minor": "out_of_range"},
        ),
        (
            {"amount": {"amount_minor": 1.5, "currency": "IRR"}},
            {"/payload/amount/amount_minor": "float_not_allowed"},
        ),
        (
            {"amount": {"amount_minor": 1_770_000, "currency": "XTS"}},
            {"/payload/amount/currency": "unknown_currency"},
        ),
        ({"amount": 1_770_000}, {"/payload/amount": "wrong_type"}),
        ({"transfers": {}}, {"/payload/transfers": "wrong_type"}),
        ({"transfers": []}, {"/payload/transfers": "transfer_count"}),
        ({"transfers": [7]}, {"/payload/transfers/0": "wrong_type"}),
        ({"due_on": "20/04/2025"}, {"/payload/due_on": "invalid_format"}),
        ({"due_on": "2025-02-30"}, {"/payload/due_on": "invalid_date"}),
        ({"due_on": "۲۰۲۵-04-20"}, {"/payload/due_on": "invalid_format"}),
        ({"reference": ""}, {"/payload/reference": "invalid_format"}),
        ({"reference": "x" * 65}, {"/payload/reference": "invalid_format"}),
        ({"reference": "bill 1"}, {"/payload/reference": "invalid_format"}),
        ({"allows_instalments": "yes"}, {"/payload/allows_instalments": "wrong_type"}),
        ({"allows_instalments": None}, {"/payload/allows_instalments": "wrong_type"}),
        # As in the envelope, a member present as null is the wrong type (absence is "none").
        ({"debtor": None}, {"/payload/debtor": "wrong_type"}),
        ({"surprise": 1}, {"/payload/surprise": "unknown_member"}),
    ],
)
def test_payload_refusals(changes: dict[str, JsonValue], expected: dict[str, str]) -> None:
    assert _refusals(_payload(**changes)) == expected


def test_every_missing_member_is_reported_under_a_custom_pointer() -> None:
    assert _refusals({}, pointer="/payload/payable") == {
        f"/payload/payable/{name}": "required" for name in payables.PAYLOAD_REQUIRED
    }
    assert _refusals([], pointer="/x") == {"/x": "wrong_type"}


def test_too_many_transfers_are_refused_before_they_are_read() -> None:
    transfers: list[JsonValue] = ["not even an object"] * (payables.MAX_TRANSFERS + 1)
    assert _refusals(_payload(transfers=transfers)) == {"/payload/transfers": "transfer_count"}


@pytest.mark.parametrize(
    ("transfer", "expected"),
    [
        ({"account": "agency_refunds:water-tehran"}, {"account": "not_agency_revenue_account"}),
        ({"account": "payer_clearing"}, {"account": "not_agency_revenue_account"}),
        ({"account": 3}, {"account": "wrong_type"}),
        ({"amount_minor": 0}, {"amount_minor": "out_of_range"}),
        ({"amount_minor": 2**53}, {"amount_minor": "out_of_range"}),
        ({"amount_minor": True}, {"amount_minor": "wrong_type"}),
        ({"amount_minor": "1500000"}, {"amount_minor": "wrong_type"}),
        ({"category": "Water"}, {"category": "invalid_format"}),
        ({"category": "c" * 33}, {"category": "invalid_format"}),
        ({"currency": "IRR"}, {"currency": "unknown_member"}),
    ],
)
def test_transfer_refusals(transfer: dict[str, JsonValue], expected: dict[str, str]) -> None:
    payload = _payload()
    first = payload["transfers"][0]  # type: ignore[index]
    first.update(transfer)  # type: ignore[union-attr]
    assert _refusals(payload) == {f"/payload/transfers/0/{k}": v for k, v in expected.items()}


def test_transfers_must_sum_to_the_amount_and_not_repeat() -> None:
    amount: JsonValue = {"amount_minor": 1_770_001, "currency": "IRR"}
    assert _refusals(_payload(amount=amount)) == {"/payload/transfers": "transfers_sum_mismatch"}
    same: dict[str, JsonValue] = {
        "account": WATER,
        "amount_minor": 885_000,
        "category": "water_charge",
    }
    assert _refusals(_payload(transfers=[same, dict(same)])) == {
        "/payload/transfers/1": "duplicate_transfer"
    }
    other: JsonValue = {"account": WATER, "amount_minor": 885_000, "category": "sewage"}
    assert len(payables.parse_payable_payload(_payload(transfers=[same, other])).transfers) == 2


def test_messages_never_repeat_the_refused_value() -> None:
    with pytest.raises(PaymentFieldError) as caught:
        payables.parse_payable_payload(_payload(debtor="ir-nid:0499370898"))
    assert all("0499370898" not in error.message for error in caught.value.errors)
    assert "0499370898" not in str(caught.value)


# --- issuing ----------------------------------------------------------------------------------


def test_issue_payable_from_a_draft() -> None:
    draft = payables.parse_payable_payload(PAYLOAD)
    payable = payables.issue_payable(draft, payable_id="p-1", issuer="agency:water-tehran")
    assert payable.issuer == "agency:water-tehran" and payable.status is PayableStatus.OPEN
    assert payable.outstanding_minor == 1_770_000 and payable.paid_minor == 0
    assert payables.is_open(payable)


@pytest.mark.parametrize(
    ("issuer", "rule"), [(NATIONAL_ID, "not_an_agency"), ("agency:X", "invalid_subject")]
)
def test_only_an_agency_issues(issuer: str, rule: str) -> None:
    draft = payables.parse_payable_payload(PAYLOAD)
    with pytest.raises(PaymentFieldError) as caught:
        payables.issue_payable(draft, payable_id="p-1", issuer=issuer)
    assert [(e.pointer, e.rule) for e in caught.value.errors] == [("/signer", rule)]


@pytest.mark.parametrize(
    "changes",
    [
        {"transfers": ()},
        {"transfers": (Transfer(WATER, 999, "a"),)},
        {"paid_minor": 1001},
        {"paid_minor": 10, "refunded_minor": 11},
        {"paid_minor": 1000},  # paid in full but still open
        {"status": PayableStatus.PAID, "paid_minor": 999},
        {"status": PayableStatus.OPEN, "paid_minor": 1},
    ],
)
def test_payable_invariants(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"transfer|paid|refunded|open"):
        dataclasses.replace(_payable(), **changes)  # type: ignore[arg-type]


# --- paying -----------------------------------------------------------------------------------


def test_a_full_payment_marks_the_payable_paid_once() -> None:
    paid = payables.apply_payment(_payable(), amount_minor=1000)
    assert paid.status is PayableStatus.PAID and paid.paid_minor == 1000
    assert paid.payments_made == 1 and not payables.is_open(paid)
    with pytest.raises(PayableAlreadyPaidError) as caught:
        payables.apply_payment(paid, amount_minor=1000)
    assert (caught.value.payable_id, caught.value.status, caught.value.action) == (
        "p-1",
        "paid",
        "pay",
    )


@pytest.mark.parametrize(
    ("instalments", "amount", "rule", "limit"),
    [
        (False, 999, "instalments_not_allowed", 1000),
        (True, 1001, "exceeds_outstanding", 1000),
        (False, 1001, "exceeds_outstanding", 1000),
        (True, 0, "not_positive", 1000),
        (True, -5, "not_positive", 1000),
    ],
)
def test_payment_amount_refusals(instalments: bool, amount: int, rule: str, limit: int) -> None:
    with pytest.raises(PayableAmountError) as caught:
        payables.apply_payment(_payable(instalments=instalments), amount_minor=amount)
    assert (caught.value.rule, caught.value.amount_minor, caught.value.limit_minor) == (
        rule,
        amount,
        limit,
    )


def test_instalments_add_up_to_paid() -> None:
    payable = _payable(instalments=True)
    payable = payables.apply_payment(payable, amount_minor=300)
    assert payable.status is PayableStatus.PARTIALLY_PAID and payable.outstanding_minor == 700
    with pytest.raises(PayableAmountError) as caught:
        payables.apply_payment(payable, amount_minor=701)
    assert caught.value.limit_minor == 700
    payable = payables.apply_payment(payable, amount_minor=700)
    assert payable.status is PayableStatus.PAID and payable.payments_made == 2


def test_the_last_instalment_allowed_must_pay_the_rest() -> None:
    payable = _payable(instalments=True)
    for _ in range(payables.MAX_PAYMENTS_PER_PAYABLE - 1):
        payable = payables.apply_payment(payable, amount_minor=1)
    with pytest.raises(PayableAmountError) as caught:
        payables.apply_payment(payable, amount_minor=1)
    assert caught.value.rule == "too_many_payments"
    assert caught.value.limit_minor == payables.MAX_PAYMENTS_PER_PAYABLE
    paid = payables.apply_payment(payable, amount_minor=payable.outstanding_minor)
    assert paid.status is PayableStatus.PAID
    assert paid.payments_made == payables.MAX_PAYMENTS_PER_PAYABLE


# --- cancelling -------------------------------------------------------------------------------


def test_cancelling() -> None:
    cancelled = payables.cancel_payable(_payable())
    assert cancelled.status is PayableStatus.CANCELLED
    with pytest.raises(PayableStateError) as caught:
        payables.apply_payment(cancelled, amount_minor=1000)
    assert (caught.value.status, caught.value.action) == ("cancelled", "pay")
    with pytest.raises(PayableStateError) as caught:
        payables.cancel_payable(cancelled)
    assert caught.value.action == "cancel"
    with pytest.raises(PayableStateError) as caught:
        payables.cancel_payable(payables.apply_payment(_payable(), amount_minor=1000))
    assert caught.value.status == "paid"


def test_a_cancelled_part_payment_stays_refundable() -> None:
    partly = payables.apply_payment(_payable(instalments=True), amount_minor=400)
    cancelled = payables.cancel_payable(partly)
    assert payables.refundable_minor(cancelled) == 400
    refunded = payables.apply_refund(cancelled, amount_minor=400, expected_refundable_minor=400)
    assert payables.refundable_minor(refunded) == 0


# --- refunding --------------------------------------------------------------------------------


def test_partial_then_full_refund_with_compare_and_set() -> None:
    paid = payables.apply_payment(_payable(), amount_minor=1000)
    assert payables.refundable_minor(paid) == 1000
    once = payables.apply_refund(paid, amount_minor=250, expected_refundable_minor=1000)
    assert once.refunded_minor == 250 and payables.refundable_minor(once) == 750
    assert once.status is PayableStatus.PAID  # a refund does not reopen the debt
    with pytest.raises(StaleRefundableAmountError) as caught:
        payables.apply_refund(once, amount_minor=750, expected_refundable_minor=1000)
    assert (caught.value.expected, caught.value.actual, caught.value.payable_id) == (
        1000,
        750,
        "p-1",
    )
    twice = payables.apply_refund(once, amount_minor=750, expected_refundable_minor=750)
    assert payables.refundable_minor(twice) == 0
    with pytest.raises(PayableAlreadyPaidError):
        payables.apply_payment(twice, amount_minor=1000)


@pytest.mark.parametrize(("amount", "rule"), [(0, "not_positive"), (301, "exceeds_refundable")])
def test_refund_amount_refusals(amount: int, rule: str) -> None:
    partly = payables.apply_payment(_payable(instalments=True), amount_minor=300)
    with pytest.raises(PayableAmountError) as caught:
        payables.apply_refund(partly, amount_minor=amount, expected_refundable_minor=300)
    assert (caught.value.rule, caught.value.limit_minor) == (rule, 300)


def test_nothing_to_refund_on_an_unpaid_payable() -> None:
    with pytest.raises(PayableAmountError) as caught:
        payables.apply_refund(_payable(), amount_minor=1, expected_refundable_minor=0)
    assert caught.value.rule == "exceeds_refundable"


# --- tax --------------------------------------------------------------------------------------


def test_tax_payable_goes_to_the_tax_agency_by_default() -> None:
    request = TaxPayableRequest(
        assessment_id="TA-1403-000123",
        taxpayer=NATIONAL_ID,
        tax_agency="agency:inta",
        amount_minor=25_000_000,
        due_on=date(2025, 5, 31),
        allows_instalments=True,
    )
    payable = tax_payables.tax_payable_from_assessment(request, payable_id="p-9")
    assert payable.kind is PayableKind.TAX and payable.issuer == "agency:inta"
    assert payable.reference == "TA-1403-000123" and payable.debtor == NATIONAL_ID
    assert payable.transfers == (Transfer("agency_revenue:inta", 25_000_000, "tax"),)
    assert payable.allows_instalments and payable.currency == "IRR"


def test_tax_payable_with_its_own_split() -> None:
    split = (
        Transfer("agency_revenue:inta", 900, "vat"),
        Transfer("agency_revenue:municipality", 100, "municipal_levy"),
    )
    request = TaxPayableRequest(
        "TA-2", NATIONAL_ID, "agency:inta", 1000, date(2025, 5, 31), transfers=split
    )
    assert tax_payables.tax_payable_from_assessment(request, payable_id="p-9").transfers == split


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"taxpayer": "ir-nid:0499370898"}, {"/taxpayer": "invalid_check_digit"}),
        ({"assessment_id": "TA 1"}, {"/assessment_id": "invalid_format"}),
        ({"amount_minor": 0}, {"/amount_minor": "out_of_range"}),
        ({"currency": "XTS"}, {"/currency": "unknown_currency"}),
        ({"tax_agency": NATIONAL_ID}, {"/tax_agency": "not_an_agency"}),
        ({"tax_agency": "inta"}, {"/tax_agency": "invalid_subject"}),
        (
            {"transfers": (Transfer("agency_revenue:inta", 999, "tax"),)},
            {"/transfers": "transfers_sum_mismatch"},
        ),
        (
            {"transfers": (Transfer("agency_refunds:inta", 1000, "tax"),)},
            {"/transfers/0/account": "not_agency_revenue_account"},
        ),
    ],
)
def test_tax_refusals_name_request_fields(
    changes: dict[str, object], expected: dict[str, str]
) -> None:
    request = TaxPayableRequest("TA-1", NATIONAL_ID, "agency:inta", 1000, date(2025, 5, 31))
    with pytest.raises(PaymentFieldError) as caught:
        tax_payables.tax_payable_from_assessment(
            dataclasses.replace(request, **changes),  # type: ignore[arg-type]
            payable_id="p-9",
        )
    assert {e.pointer: e.rule for e in caught.value.errors} == expected
