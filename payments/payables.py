"""What is owed: payables (bills, fees, taxes, fines) split over agency accounts, paid and refunded.

A payable is paid in full, or in instalments when its issuer allows them, never beyond what is
outstanding; refunds are compare-and-set on the refundable amount, so two refunds racing on a
stale view cannot both succeed, and they do not reopen the debt. Pure: storage persists Payable
values and runs these rules inside its transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import NoReturn

from payments.errors import (
    PayableAlreadyPaidError,
    PayableAmountError,
    PayableStateError,
    PaymentFieldError,
    StaleRefundableAmountError,
)
from payments.journal import is_agency_revenue_account
from signatures.canonical import JsonValue, join_pointer
from signatures.envelope import (
    MAX_AMOUNT_MINOR,
    RULE_INVALID_FORMAT,
    RULE_OUT_OF_RANGE,
    RULE_WRONG_TYPE,
    SubjectKind,
    add_field_error,
    check_members,
    parse_money,
    parse_subject,
)
from signatures.errors import EnvelopeError, FieldError, SubjectError

MAX_TRANSFERS = 5
MAX_PAYMENTS_PER_PAYABLE = 12  # instalments included; the last one allowed must pay the rest
MAX_REFERENCE_CHARS = 64
MAX_CATEGORY_CHARS = 32

RULE_UNKNOWN_KIND = "unknown_kind"
RULE_TRANSFER_COUNT = "transfer_count"
RULE_NOT_REVENUE_ACCOUNT = "not_agency_revenue_account"
RULE_DUPLICATE_TRANSFER = "duplicate_transfer"
RULE_TRANSFERS_SUM = "transfers_sum_mismatch"
RULE_INVALID_DATE = "invalid_date"
RULE_NOT_AN_AGENCY = "not_an_agency"

PAYLOAD_REQUIRED = ("kind", "debtor", "amount", "transfers", "due_on", "reference")
PAYLOAD_OPTIONAL = ("allows_instalments",)
TRANSFER_MEMBERS = ("account", "amount_minor", "category")

# [0-9], never \d: \d also matches Persian and Arabic-Indic digits.
_REFERENCE = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_REFERENCE_CHARS}}}")
_CATEGORY = re.compile(rf"[a-z][a-z0-9_]{{0,{MAX_CATEGORY_CHARS - 1}}}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class PayableKind(StrEnum):
    BILL = "bill"  # a utility or municipal bill (bill ID + payment ID)
    FEE = "fee"  # a service fee from a dated fee schedule
    TAX = "tax"  # created by a tax assessment
    FINE = "fine"  # a penalty (e.g. a traffic fine), issued and paid as a bill is


_KINDS = frozenset(kind.value for kind in PayableKind)

_RuleCheck = tuple[str, str, Callable[[str], object]]  # rule, message, check (truthy = good)
_KIND_CHECK: _RuleCheck = (
    RULE_UNKNOWN_KIND,
    "bill, fee, tax or fine",
    lambda v: v in _KINDS,
)
_REFERENCE_CHECK: _RuleCheck = (
    RULE_INVALID_FORMAT,
    "1-64 of [A-Za-z0-9._:-]",
    _REFERENCE.fullmatch,
)
_CATEGORY_CHECK: _RuleCheck = (RULE_INVALID_FORMAT, "1-32 of [a-z0-9_]", _CATEGORY.fullmatch)
_ACCOUNT_CHECK: _RuleCheck = (
    RULE_NOT_REVENUE_ACCOUNT,
    "an agency_revenue:<agency-id> account",
    is_agency_revenue_account,
)
_DATE_CHECK: _RuleCheck = (RULE_INVALID_FORMAT, "a date is YYYY-MM-DD", _DATE.fullmatch)


class PayableStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Transfer:
    """A part of a payable for one agency revenue account (`agency_revenue:<agency-id>`)."""

    account: str
    amount_minor: int
    category: str  # what the agency books it as, e.g. "water_charge", "vat"


@dataclass(frozen=True)
class PayableDraft:
    """A checked payable payload, before it has an id and an issuer."""

    kind: PayableKind
    debtor: str  # subject text: ir-nid:…, ir-lid:… or agency:…
    amount_minor: int
    currency: str
    transfers: tuple[Transfer, ...]
    allows_instalments: bool
    due_on: date
    reference: str  # bill ID, fee service code or tax assessment id


@dataclass(frozen=True)
class Payable:
    """What `debtor` owes `issuer`; construction checks the invariants (ValueError if broken)."""

    payable_id: str
    kind: PayableKind
    issuer: str  # agency:<id>
    debtor: str
    amount_minor: int
    currency: str
    transfers: tuple[Transfer, ...]
    allows_instalments: bool
    due_on: date
    reference: str
    status: PayableStatus = PayableStatus.OPEN
    paid_minor: int = 0
    refunded_minor: int = 0
    payments_made: int = 0

    def __post_init__(self) -> None:
        if not 1 <= len(self.transfers) <= MAX_TRANSFERS:
            raise ValueError(f"a payable has 1..{MAX_TRANSFERS} transfers")
        if sum(t.amount_minor for t in self.transfers) != self.amount_minor:
            raise ValueError("the transfers must sum to the amount")
        if not 0 <= self.refunded_minor <= self.paid_minor <= self.amount_minor:
            raise ValueError("0 ≤ refunded ≤ paid ≤ amount")
        if (self.status is PayableStatus.PAID) != (self.paid_minor == self.amount_minor):
            raise ValueError("a payable is paid exactly when all of it is")
        if self.status is PayableStatus.OPEN and self.paid_minor:
            raise ValueError("an open payable has no payments")

    @property
    def outstanding_minor(self) -> int:
        return self.amount_minor - self.paid_minor


# --- the payload ---------------------------------------------------------------------------------


def parse_payable_payload(
    payload: JsonValue, *, pointer: str = "/payload", extra_members: Collection[str] = ()
) -> PayableDraft:
    """Check a payable payload (docs/PAYMENTS.md has the shape) found at `pointer`.

    `extra_members` names members the caller parses itself (e.g. bill_id), left alone here.
    Raises PaymentFieldError listing every refused member, pointers under `pointer`.
    """
    errors: list[FieldError] = []
    if not isinstance(payload, dict):
        raise PaymentFieldError((FieldError(pointer, RULE_WRONG_TYPE, "must be an object"),))
    optional = (*PAYLOAD_OPTIONAL, *extra_members)
    check_members(
        payload, required=PAYLOAD_REQUIRED, optional=optional, pointer=pointer, errors=errors
    )
    at = {name: join_pointer(pointer, name) for name in (*PAYLOAD_REQUIRED, *PAYLOAD_OPTIONAL)}
    kind = _text(payload.get("kind"), at["kind"], errors, _KIND_CHECK)
    debtor = read_subject(payload.get("debtor"), at["debtor"], errors)
    amount, currency = _money(payload.get("amount"), at["amount"], errors)
    transfers = _transfers(payload.get("transfers"), at["transfers"], errors)
    due_on = read_date(payload.get("due_on"), at["due_on"], errors)
    reference = _text(payload.get("reference"), at["reference"], errors, _REFERENCE_CHECK)
    instalments = payload.get("allows_instalments", False)
    if not isinstance(instalments, bool):
        instalments = False
        add_field_error(errors, at["allows_instalments"], RULE_WRONG_TYPE, "must be true or false")
    if amount is not None and transfers and sum(t.amount_minor for t in transfers) != amount:
        add_field_error(errors, at["transfers"], RULE_TRANSFERS_SUM, "must sum to the amount")
    if errors:
        raise PaymentFieldError(tuple(errors))
    assert kind is not None and debtor is not None and amount is not None and currency is not None
    assert transfers is not None and due_on is not None and reference is not None
    kinds = PayableKind(kind)
    return PayableDraft(kinds, debtor, amount, currency, transfers, instalments, due_on, reference)


def _text(
    value: JsonValue, pointer: str, errors: list[FieldError], rule_check: _RuleCheck
) -> str | None:
    rule, message, check = rule_check
    if value is None:
        return None
    if not isinstance(value, str):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "must be a string")
    elif not check(value):
        add_field_error(errors, pointer, rule, message)
    else:
        return value
    return None


def read_subject(value: JsonValue, pointer: str, errors: list[FieldError]) -> str | None:
    """The subject text at `pointer`, canonical, or None with its error added (None: absent)."""
    text = _text(value, pointer, errors, (RULE_WRONG_TYPE, "", lambda _: True))
    try:
        return None if text is None else str(parse_subject(text))
    except SubjectError as error:
        add_field_error(errors, pointer, error.rule, str(error))
        return None


def _money(
    value: JsonValue, pointer: str, errors: list[FieldError]
) -> tuple[int | None, str | None]:
    if value is None:
        return None, None
    try:
        money = parse_money(value, pointer=pointer)
    except EnvelopeError as error:
        for e in error.errors:
            add_field_error(errors, e.pointer, e.rule, e.message)
        return None, None
    if money.amount_minor == 0:
        add_field_error(errors, join_pointer(pointer, "amount_minor"), RULE_OUT_OF_RANGE, "> 0")
        return None, None
    return money.amount_minor, money.currency


def _transfers(
    value: JsonValue, pointer: str, errors: list[FieldError]
) -> tuple[Transfer, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "must be an array")
        return None
    if not 1 <= len(value) <= MAX_TRANSFERS:
        add_field_error(errors, pointer, RULE_TRANSFER_COUNT, f"1..{MAX_TRANSFERS} transfers")
        return None
    found = [_transfer(item, join_pointer(pointer, i), errors) for i, item in enumerate(value)]
    seen: set[tuple[str, str]] = set()
    for i, transfer in enumerate(found):
        if transfer is not None and (transfer.account, transfer.category) in seen:
            add_field_error(errors, join_pointer(pointer, i), RULE_DUPLICATE_TRANSFER, "repeated")
        elif transfer is not None:
            seen.add((transfer.account, transfer.category))
    checked = tuple(t for t in found if t is not None)
    return checked if len(checked) == len(found) else None


def _transfer(value: JsonValue, pointer: str, errors: list[FieldError]) -> Transfer | None:
    if not isinstance(value, dict):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "a transfer is an object")
        return None
    before = len(errors)
    check_members(value, required=TRANSFER_MEMBERS, optional=(), pointer=pointer, errors=errors)
    at = {name: join_pointer(pointer, name) for name in TRANSFER_MEMBERS}
    account = _text(value.get("account"), at["account"], errors, _ACCOUNT_CHECK)
    amount = _positive_amount(value.get("amount_minor"), at["amount_minor"], errors)
    category = _text(value.get("category"), at["category"], errors, _CATEGORY_CHECK)
    if len(errors) > before or account is None or category is None or amount is None:
        return None
    return Transfer(account=account, amount_minor=amount, category=category)


def _positive_amount(value: JsonValue, pointer: str, errors: list[FieldError]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "amount_minor must be an integer")
    elif not 0 < value <= MAX_AMOUNT_MINOR:
        add_field_error(errors, pointer, RULE_OUT_OF_RANGE, f"must be 1..{MAX_AMOUNT_MINOR}")
    else:
        return value
    return None


def read_date(value: JsonValue, pointer: str, errors: list[FieldError]) -> date | None:
    """The YYYY-MM-DD calendar date at `pointer`, or None with its error added (None: absent)."""
    text = _text(value, pointer, errors, _DATE_CHECK)
    try:
        return None if text is None else date.fromisoformat(text)
    except ValueError:
        add_field_error(errors, pointer, RULE_INVALID_DATE, "not a calendar date")
        return None


# --- issuing, paying, refunding ------------------------------------------------------------------


def issue_payable(
    draft: PayableDraft, *, payable_id: str, issuer: str, issuer_pointer: str = "/signer"
) -> Payable:
    """An open payable from a checked draft, issued by `issuer` (an `agency:<id>` subject,
    normally the envelope's signer).

    Raises PaymentFieldError at `issuer_pointer` (rule not_an_agency or the subject's rule).
    """
    agency = agency_id_of(issuer, pointer=issuer_pointer)
    return Payable(
        payable_id=payable_id,
        kind=draft.kind,
        issuer=f"agency:{agency}",
        debtor=draft.debtor,
        amount_minor=draft.amount_minor,
        currency=draft.currency,
        transfers=draft.transfers,
        allows_instalments=draft.allows_instalments,
        due_on=draft.due_on,
        reference=draft.reference,
    )


def is_open(payable: Payable) -> bool:
    """Whether the payable takes payments (open or partially paid)."""
    return payable.status in (PayableStatus.OPEN, PayableStatus.PARTIALLY_PAID)


def apply_payment(payable: Payable, *, amount_minor: int) -> Payable:
    """The payable after a succeeded payment of `amount_minor`.

    The whole outstanding amount, unless the payable allows instalments; never more than it;
    the MAX_PAYMENTS_PER_PAYABLE-th payment must pay the rest. Raises PayableAlreadyPaidError
    (paid), PayableStateError (cancelled), PayableAmountError (rule not_positive,
    exceeds_outstanding, instalments_not_allowed, too_many_payments).
    """
    if payable.status is PayableStatus.PAID:
        raise PayableAlreadyPaidError(payable.payable_id)
    if payable.status is PayableStatus.CANCELLED:
        _refuse_state(payable, action="pay")
    outstanding = payable.outstanding_minor
    if amount_minor <= 0:
        _refuse(payable, "not_positive", "a payment must be positive", amount_minor, outstanding)
    if amount_minor > outstanding:
        _refuse(payable, "exceeds_outstanding", "more than is owed", amount_minor, outstanding)
    if amount_minor < outstanding and not payable.allows_instalments:
        _refuse(payable, "instalments_not_allowed", "pay it in full", amount_minor, outstanding)
    if amount_minor < outstanding and payable.payments_made + 1 >= MAX_PAYMENTS_PER_PAYABLE:
        message = "the last instalment allowed must pay the rest"
        _refuse(payable, "too_many_payments", message, amount_minor, MAX_PAYMENTS_PER_PAYABLE)
    paid = payable.paid_minor + amount_minor
    status = PayableStatus.PAID if paid == payable.amount_minor else PayableStatus.PARTIALLY_PAID
    return replace(payable, paid_minor=paid, status=status, payments_made=payable.payments_made + 1)


def refundable_minor(payable: Payable) -> int:
    """What can still be refunded: paid minus already refunded."""
    return payable.paid_minor - payable.refunded_minor


def apply_refund(payable: Payable, *, amount_minor: int, expected_refundable_minor: int) -> Payable:
    """The payable after a refund of `amount_minor`, compare-and-set on the refundable amount.

    Raises StaleRefundableAmountError when `expected_refundable_minor` is not refundable_minor
    (someone refunded or paid since the caller looked), PayableAmountError (rule not_positive,
    exceeds_refundable). The status stays: a refund returns money, it does not reopen the debt.
    """
    actual = refundable_minor(payable)
    if expected_refundable_minor != actual:
        raise StaleRefundableAmountError(
            expected_refundable_minor, actual, payable_id=payable.payable_id
        )
    if amount_minor <= 0:
        _refuse(payable, "not_positive", "a refund must be positive", amount_minor, actual)
    if amount_minor > actual:
        _refuse(payable, "exceeds_refundable", "more than can be refunded", amount_minor, actual)
    return replace(payable, refunded_minor=payable.refunded_minor + amount_minor)


def cancel_payable(payable: Payable) -> Payable:
    """The payable cancelled: it takes no more payments (what was paid stays refundable).

    Raises PayableStateError unless it is open or partially paid.
    """
    if not is_open(payable):
        _refuse_state(payable, action="cancel")
    return replace(payable, status=PayableStatus.CANCELLED)


def _refuse_state(payable: Payable, *, action: str) -> NoReturn:
    status = payable.status.value
    raise PayableStateError(
        f"the payable is {status}", payable_id=payable.payable_id, status=status, action=action
    )


def _refuse(
    payable: Payable, rule: str, message: str, amount_minor: int, limit_minor: int
) -> NoReturn:
    raise PayableAmountError(
        message,
        rule=rule,
        payable_id=payable.payable_id,
        amount_minor=amount_minor,
        limit_minor=limit_minor,
    )


def agency_id_of(subject_text: str, *, pointer: str) -> str:
    try:
        subject = parse_subject(subject_text)
    except SubjectError as error:
        raise PaymentFieldError((FieldError(pointer, error.rule, str(error)),)) from None
    if subject.kind is not SubjectKind.AGENCY:
        message = "only an agency:<id> subject issues payables"
        raise PaymentFieldError((FieldError(pointer, RULE_NOT_AN_AGENCY, message),))
    return subject.identifier
