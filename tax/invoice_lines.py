"""Lines, totals and payments of an electronic invoice: their shape and their exact arithmetic
(s5_einv_spec § 1). tax.invoices checks a whole invoice with these; every function here adds its
refusals to the caller's list of FieldErrors (one per pointer) instead of raising, so that one
TaxFieldError can list every problem of the invoice.

Arithmetic is exact: the quantity is a decimal, products are Fractions, and the only roundings
are the two the pack's `invoice.rounding` names (a line's base and its VAT). A declared line
amount is compared with the amount derived from the line's inputs (quantity, unit price,
discount, rate), so a wrong VAT does not make its line's total wrong too; the invoice totals are
compared with the sums of the lines as declared (spec: "totals = sums of lines"), so a line VAT
one unit off is reported at the line and, unless the total VAT followed it, at the total. Each
mismatch names the expected value in its message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from signatures.canonical import MAX_SAFE_INTEGER, RULE_FLOAT_NOT_ALLOWED, JsonValue, join_pointer
from signatures.envelope import (
    RULE_INVALID_FORMAT,
    RULE_OUT_OF_RANGE,
    RULE_TOO_LONG,
    RULE_TOO_SHORT,
    RULE_WRONG_TYPE,
    add_field_error,
    check_members,
)
from signatures.errors import FieldError
from tax.rulepack import parse_rate, round_fraction

MAX_INVOICE_LINES = 100
MAX_PAYMENTS = 20
MAX_QUANTITY_FRACTION_DIGITS = 3
MAX_QUANTITY_INTEGER_DIGITS = 12  # with 3 fraction digits: a quantity below 10**12
PRODUCT_CODE_DIGITS = 13
MAX_UNIT_CODE_DIGITS = 8
MAX_AMOUNT_MINOR = MAX_SAFE_INTEGER  # every amount and every sum (signatures.canonical)
PAYMENT_METHODS = ("card", "cash", "transfer", "cheque", "other")

RULE_ARITHMETIC_MISMATCH = "arithmetic_mismatch"
RULE_DISCOUNT_EXCEEDS_PRICE = "discount_exceeds_price"
RULE_PAYMENTS_EXCEED_TOTAL = "payments_exceed_total"
RULE_VAT_RATE_NOT_IN_FORCE = "vat_rate_not_in_force"
RULE_INVALID_CHOICE = "invalid_choice"
RULE_TOO_MANY_FRACTION_DIGITS = "too_many_fraction_digits"
RULE_INVALID_DATE = "invalid_date"

_LINE_MEMBERS = ("code", "quantity", "unit", "unit_price_minor", "discount_minor", "vat_rate")
_LINE_DECLARED = ("vat_minor", "total_minor")
TOTALS_MEMBERS = (
    "before_discount_minor",
    "discount_minor",
    "after_discount_minor",
    "vat_minor",
    "total_minor",
)
_PAYMENT_MEMBERS = ("method", "amount_minor", "paid_on")
_PRODUCT_CODE = re.compile(f"[0-9]{{{PRODUCT_CODE_DIGITS}}}")  # [0-9], never \d (Persian digits)
_UNIT_CODE = re.compile(f"[0-9]{{1,{MAX_UNIT_CODE_DIGITS}}}")
_QUANTITY = re.compile(rf"(0|[1-9][0-9]{{0,{MAX_QUANTITY_INTEGER_DIGITS - 1}}})(?:\.([0-9]+))?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class InvoiceLine:
    """One body line; base_minor and after_discount_minor are derived, never sent."""

    code: str
    quantity: Decimal
    unit: str
    unit_price_minor: int
    discount_minor: int
    base_minor: int  # round(quantity × unit price) per the pack's invoice.rounding
    after_discount_minor: int
    vat_rate: Decimal
    vat_minor: int
    total_minor: int


@dataclass(frozen=True)
class InvoiceTotals:
    before_discount_minor: int
    discount_minor: int
    after_discount_minor: int
    vat_minor: int
    total_minor: int


@dataclass(frozen=True)
class Payment:
    method: str
    amount_minor: int
    paid_on: date


@dataclass(frozen=True)
class DayRules:
    """The pack's invoice rules on the issue day: its rounding and the set of VAT rates."""

    rounding: str
    rates: frozenset[Decimal]


# --- lines ----------------------------------------------------------------------------------------


def parse_lines(
    value: JsonValue, rules: DayRules | None, pointer: str, errors: list[FieldError]
) -> tuple[InvoiceLine, ...] | None:
    """The lines, or None when any is refused or the day's rules are unknown."""
    if value is None:
        return None
    if not isinstance(value, list):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "lines is an array")
        return None
    if not value or len(value) > MAX_INVOICE_LINES:
        rule = RULE_TOO_SHORT if not value else RULE_TOO_LONG
        add_field_error(errors, pointer, rule, f"1 to {MAX_INVOICE_LINES} lines")
        return None
    lines = [_line(item, rules, join_pointer(pointer, i), errors) for i, item in enumerate(value)]
    checked = tuple(line for line in lines if line is not None)
    return checked if len(checked) == len(lines) else None


def _line(
    item: JsonValue, rules: DayRules | None, pointer: str, errors: list[FieldError]
) -> InvoiceLine | None:
    if not isinstance(item, dict):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "a line is an object")
        return None
    required = _LINE_MEMBERS + _LINE_DECLARED
    check_members(item, required=required, optional=(), pointer=pointer, errors=errors)
    code = read_text(item, "code", _PRODUCT_CODE, pointer, errors, what="13 ASCII digits")
    unit = read_text(item, "unit", _UNIT_CODE, pointer, errors, what="1 to 8 ASCII digits")
    quantity = _quantity(item.get("quantity"), f"{pointer}/quantity", errors)
    price = read_integer(item, "unit_price_minor", pointer, errors)
    discount = read_integer(item, "discount_minor", pointer, errors)
    rate = _rate(item.get("vat_rate"), rules, f"{pointer}/vat_rate", errors)
    vat = read_integer(item, "vat_minor", pointer, errors)
    total = read_integer(item, "total_minor", pointer, errors)
    if (
        rules is None
        or code is None
        or unit is None
        or quantity is None
        or price is None
        or discount is None
        or rate is None
        or vat is None
        or total is None
    ):
        return None
    base = round_fraction(Fraction(quantity) * price, rounding=rules.rounding)
    if base > MAX_AMOUNT_MINOR:
        message = f"quantity × unit price exceeds {MAX_AMOUNT_MINOR}"
        add_field_error(errors, f"{pointer}/unit_price_minor", RULE_OUT_OF_RANGE, message)
        return None
    if discount > base:
        message = "the discount exceeds quantity × unit price"
        add_field_error(errors, f"{pointer}/discount_minor", RULE_DISCOUNT_EXCEEDS_PRICE, message)
        return None
    after = base - discount
    # VAT and total derive from the inputs alone: a wrong vat_minor does not spill onto the total.
    expected_vat = round_fraction(Fraction(after) * Fraction(rate), rounding=rules.rounding)
    _expect(errors, f"{pointer}/vat_minor", declared=vat, expected=expected_vat)
    _expect(errors, f"{pointer}/total_minor", declared=total, expected=after + expected_vat)
    return InvoiceLine(code, quantity, unit, price, discount, base, after, rate, vat, total)


def _quantity(value: JsonValue, pointer: str, errors: list[FieldError]) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, str):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, 'a quantity is a decimal string: "2.5"')
        return None
    match = _QUANTITY.fullmatch(value)
    if match is None:
        message = f"a decimal string below 10**{MAX_QUANTITY_INTEGER_DIGITS}, such as 2.5"
        add_field_error(errors, pointer, RULE_INVALID_FORMAT, message)
        return None
    if len(match.group(2) or "") > MAX_QUANTITY_FRACTION_DIGITS:
        message = f"at most {MAX_QUANTITY_FRACTION_DIGITS} fraction digits"
        add_field_error(errors, pointer, RULE_TOO_MANY_FRACTION_DIGITS, message)
        return None
    quantity = Decimal(value)
    if quantity <= 0:
        add_field_error(errors, pointer, RULE_OUT_OF_RANGE, "a quantity is above 0")
        return None
    return quantity


def _rate(
    value: JsonValue, rules: DayRules | None, pointer: str, errors: list[FieldError]
) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, str):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, 'a VAT rate is a decimal string: "0.1"')
        return None
    try:
        rate = parse_rate(value)
    except ValueError as error:
        add_field_error(errors, pointer, RULE_INVALID_FORMAT, str(error))
        return None
    if rules is not None and rate not in rules.rates:
        message = "not a VAT rate of the rule pack in force on the issue day"
        add_field_error(errors, pointer, RULE_VAT_RATE_NOT_IN_FORCE, message)
        return None
    return rate


# --- totals and payments --------------------------------------------------------------------------


def parse_totals(
    value: JsonValue,
    lines: tuple[InvoiceLine, ...] | None,
    pointer: str,
    errors: list[FieldError],
) -> InvoiceTotals | None:
    """The declared totals, each compared with the sum over `lines` when the lines are known;
    None when a member is missing or refused."""
    if value is None:
        return None
    if not isinstance(value, dict):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "totals is an object")
        return None
    check_members(value, required=TOTALS_MEMBERS, optional=(), pointer=pointer, errors=errors)
    declared = [read_integer(value, name, pointer, errors) for name in TOTALS_MEMBERS]
    if lines is not None:
        sums = (
            sum(line.base_minor for line in lines),
            sum(line.discount_minor for line in lines),
            sum(line.after_discount_minor for line in lines),
            sum(line.vat_minor for line in lines),
            sum(line.total_minor for line in lines),
        )
        for name, stated, expected in zip(TOTALS_MEMBERS, declared, sums, strict=True):
            if stated is not None:
                _expect(errors, join_pointer(pointer, name), declared=stated, expected=expected)
    amounts = [amount for amount in declared if amount is not None]
    return InvoiceTotals(*amounts) if len(amounts) == len(TOTALS_MEMBERS) else None


def parse_payments(
    value: JsonValue, totals: InvoiceTotals | None, pointer: str, errors: list[FieldError]
) -> tuple[Payment, ...]:
    """The payments accepted (none when absent); their sum may not exceed totals.total_minor."""
    if value is None:
        return ()
    if not isinstance(value, list):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "payments is an array")
        return ()
    if len(value) > MAX_PAYMENTS:
        add_field_error(errors, pointer, RULE_TOO_LONG, f"at most {MAX_PAYMENTS} payments")
        return ()
    payments = [_payment(item, join_pointer(pointer, i), errors) for i, item in enumerate(value)]
    checked = tuple(payment for payment in payments if payment is not None)
    paid_minor = sum(payment.amount_minor for payment in checked)
    if totals is not None and paid_minor > totals.total_minor:
        message = "the payments add up to more than the invoice total"
        add_field_error(errors, pointer, RULE_PAYMENTS_EXCEED_TOTAL, message)
    return checked


def _payment(item: JsonValue, pointer: str, errors: list[FieldError]) -> Payment | None:
    if not isinstance(item, dict):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "a payment is an object")
        return None
    check_members(item, required=_PAYMENT_MEMBERS, optional=(), pointer=pointer, errors=errors)
    method = read_choice(item, "method", PAYMENT_METHODS, pointer, errors)
    amount = read_integer(item, "amount_minor", pointer, errors, low=1)
    paid_on = read_iso_date(item.get("paid_on"), f"{pointer}/paid_on", errors)
    if method is None or amount is None or paid_on is None:
        return None
    return Payment(method=method, amount_minor=amount, paid_on=paid_on)


# --- members --------------------------------------------------------------------------------------


def _expect(errors: list[FieldError], pointer: str, *, declared: int, expected: int) -> None:
    if declared == expected:
        return
    if expected > MAX_AMOUNT_MINOR:
        add_field_error(errors, pointer, RULE_OUT_OF_RANGE, f"the sum exceeds {MAX_AMOUNT_MINOR}")
    else:
        add_field_error(errors, pointer, RULE_ARITHMETIC_MISMATCH, f"expected {expected}")


def read_integer(
    obj: dict[str, JsonValue],
    name: str,
    pointer: str,
    errors: list[FieldError],
    *,
    low: int = 0,
    high: int = MAX_AMOUNT_MINOR,
) -> int | None:
    """The integer member `name` of obj within low..high; None when absent or refused."""
    value = obj.get(name)
    here = join_pointer(pointer, name)
    if value is None:
        return None  # check_members reported it
    if isinstance(value, float):  # a payload built in Python; parsed JSON never holds one
        add_field_error(errors, here, RULE_FLOAT_NOT_ALLOWED, "an integer")
    elif isinstance(value, bool) or not isinstance(value, int):
        add_field_error(errors, here, RULE_WRONG_TYPE, "an integer")
    elif not low <= value <= high:
        add_field_error(errors, here, RULE_OUT_OF_RANGE, f"within {low}..{high}")
    else:
        return value
    return None


def read_text(
    obj: dict[str, JsonValue],
    name: str,
    shape: re.Pattern[str],
    pointer: str,
    errors: list[FieldError],
    *,
    what: str,
) -> str | None:
    """The string member `name` of obj matching `shape` (`what` describes it in messages)."""
    value = obj.get(name)
    here = join_pointer(pointer, name)
    if value is None:
        return None
    if not isinstance(value, str):
        add_field_error(errors, here, RULE_WRONG_TYPE, f"{name} is a string of {what}")
    elif not shape.fullmatch(value):
        add_field_error(errors, here, RULE_INVALID_FORMAT, f"{name} is {what}")
    else:
        return value
    return None


def read_choice(
    obj: dict[str, JsonValue],
    name: str,
    choices: tuple[str, ...],
    pointer: str,
    errors: list[FieldError],
) -> str | None:
    """The string member `name` of obj, one of `choices`."""
    value = obj.get(name)
    here = join_pointer(pointer, name)
    if value is None:
        return None
    if not isinstance(value, str):
        add_field_error(errors, here, RULE_WRONG_TYPE, f"{name} is a string")
    elif value not in choices:
        add_field_error(errors, here, RULE_INVALID_CHOICE, f"{name} is one of {', '.join(choices)}")
    else:
        return value
    return None


def read_iso_date(value: JsonValue, pointer: str, errors: list[FieldError]) -> date | None:
    """A Gregorian "YYYY-MM-DD" date; None when absent or refused."""
    if value is None:
        return None
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        add_field_error(errors, pointer, RULE_INVALID_FORMAT, "a date is written YYYY-MM-DD")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        add_field_error(errors, pointer, RULE_INVALID_DATE, "no such day")
        return None
