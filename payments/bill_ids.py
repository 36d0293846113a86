"""Iranian bill IDs and payment IDs (شناسه قبض / شناسه پرداخت) and their mod-11 check digits.

A citizen can pay a utility bill, a municipal charge, a fine or a tax with the two numbers printed
on it and nothing else, so the numbers carry their own checks:

* mod11(s): weights 2, 3, 4, 5, 6, 7 repeating from the rightmost digit; r = Σ weight·digit
  mod 11; the check digit is 0 when r < 2, else 11 − r.
* bill ID = subscriber code ‖ company code (3 digits) ‖ service type (1 digit) ‖ mod11(all before).
* payment ID = amount in thousands of rials ‖ year digit ‖ period (2 digits) ‖ C1 ‖ C2, with
  C1 = mod11(amount ‖ year ‖ period) and C2 = mod11(bill ID ‖ amount ‖ year ‖ period ‖ C1).

Both numbers are read in their canonical form, without leading zeros (bank counters strip them
and C2 depends on it: a zero inside "bill ID ‖ payment ID" shifts every weight to its left).
Inputs padded with leading zeros are accepted and stripped. Only the ASCII digits 0-9 are
accepted: a client that lets people type Persian digits converts them first.

Pure: no I/O. Every refusal is a PaymentFieldError whose message says which check failed and
never repeats the digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from payments.errors import PaymentFieldError
from signatures.envelope import add_field_error
from signatures.errors import FieldError

MOD11_WEIGHTS = (2, 3, 4, 5, 6, 7)  # from the rightmost digit, repeating
MOD11_MODULUS = 11
BILL_ID_MIN_DIGITS = 6  # subscriber code (≥ 1) + company (3) + service type (1) + check (1)
BILL_ID_MAX_DIGITS = 13
PAYMENT_ID_MIN_DIGITS = 6  # amount (≥ 1) + year (1) + period (2) + C1 + C2
PAYMENT_ID_MAX_DIGITS = 13
MAX_ID_INPUT_CHARS = 26  # a padded form field; longer input is refused before any work
COMPANY_CODE_DIGITS = 3
PERIOD_DIGITS = 2
MAX_PERIOD = 10**PERIOD_DIGITS - 1
MAX_SUBSCRIBER_CODE_DIGITS = BILL_ID_MAX_DIGITS - COMPANY_CODE_DIGITS - 2
MAX_AMOUNT_THOUSANDS_RIALS = 10 ** (PAYMENT_ID_MAX_DIGITS - PERIOD_DIGITS - 3) - 1
RIALS_PER_THOUSAND = 1000
BILL_CURRENCY = "IRR"  # ISO 4217 exponent 0: one minor unit is one rial

BILL_ID_POINTER = "/payload/bill_id"
PAYMENT_ID_POINTER = "/payload/payment_id"

RULE_BILL_ID_FORMAT = "bill_id_format"
RULE_BILL_ID_CHECK_DIGIT = "bill_id_check_digit"
RULE_UNKNOWN_SERVICE_TYPE = "unknown_service_type"
RULE_PAYMENT_ID_FORMAT = "payment_id_format"
RULE_PAYMENT_ID_FIRST_CHECK_DIGIT = "payment_id_first_check_digit"
RULE_PAYMENT_ID_SECOND_CHECK_DIGIT = "payment_id_second_check_digit"
RULE_AMOUNT_MISMATCH = "amount_mismatch"
RULE_AMOUNT_NOT_WHOLE_THOUSANDS = "amount_not_whole_thousands"

# [0-9], never \d: \d also matches Persian and Arabic-Indic digits.
_DIGITS = re.compile(r"[0-9]+")
_SERVICE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def mod11(digits: str) -> int:
    """The mod-11 check digit of `digits` (see the module docstring); 0 for the empty string.

    Raises ValueError when `digits` holds anything but the ASCII digits 0-9.
    """
    if digits and not _DIGITS.fullmatch(digits):
        raise ValueError("mod11 takes ASCII digits only")
    total = sum(
        int(digit) * MOD11_WEIGHTS[i % len(MOD11_WEIGHTS)]
        for i, digit in enumerate(reversed(digits))
    )
    remainder = total % MOD11_MODULUS
    return 0 if remainder < 2 else MOD11_MODULUS - remainder


@dataclass(frozen=True)
class BillServiceTypes:
    """Which service each 1-digit service-type code names (configuration, passed in).

    `names` holds (code, name) pairs, codes 0-9 each at most once, names lower-case identifiers.
    Raises ValueError from the constructor otherwise.
    """

    names: tuple[tuple[int, str], ...]

    def __post_init__(self) -> None:
        codes = [code for code, _ in self.names]
        if len(set(codes)) != len(codes):
            raise ValueError("a service-type code is listed twice")
        for code, name in self.names:
            if isinstance(code, bool) or not 0 <= code <= 9:
                raise ValueError("service-type codes are single digits 0-9")
            if not _SERVICE_NAME.fullmatch(name):
                raise ValueError("service-type names are lower-case identifiers")

    @classmethod
    def from_mapping(cls, names: Mapping[int, str]) -> BillServiceTypes:
        """Build from a {code: name} mapping (settings). Raises ValueError as the constructor."""
        return cls(tuple(sorted(names.items())))

    def name_of(self, code: int) -> str | None:
        """The service name of `code`, or None when the code is not configured."""
        return next((name for known, name in self.names if known == code), None)


# Codes 1-6 agree across every published table. Sources disagree on 7-9 (7 tax and 8 traffic
# fines in some; 8 tax and 9 traffic fines in others): deployments override them from settings.
DEFAULT_BILL_SERVICE_TYPES = BillServiceTypes(
    (
        (1, "water"),
        (2, "electricity"),
        (3, "gas"),
        (4, "landline"),
        (5, "mobile"),
        (6, "municipal"),
        (7, "tax"),
        (8, "traffic_fines"),
        (9, "other"),
    )
)


@dataclass(frozen=True)
class BillId:
    """A checked bill ID. `text` is its canonical digits (no leading zeros)."""

    text: str
    subscriber_code: str
    company_code: str  # 3 digits
    service_type: int
    service_name: str
    check_digit: int


@dataclass(frozen=True)
class PaymentId:
    """A checked payment ID. `text` is its canonical digits; period is 0-99 (2 digits)."""

    text: str
    amount_thousands_rials: int
    year_digit: int
    period: int
    c1: int  # mod11 of amount ‖ year ‖ period
    c2: int  # mod11 of bill ID ‖ amount ‖ year ‖ period ‖ C1

    @property
    def amount_minor(self) -> int:
        """The amount in IRR minor units (rials)."""
        return self.amount_thousands_rials * RIALS_PER_THOUSAND


@dataclass(frozen=True)
class BillPayment:
    """A bill ID and payment ID that belong together, and the amount they encode."""

    bill: BillId
    payment: PaymentId
    amount_minor: int
    currency: str = BILL_CURRENCY


def parse_bill_id(
    text: str, *, service_types: BillServiceTypes, pointer: str = BILL_ID_POINTER
) -> BillId:
    """Check a bill ID: digits and length, check digit, and a configured service type.

    Raises PaymentFieldError at `pointer` with rule bill_id_format, bill_id_check_digit or
    unknown_service_type.
    """
    errors: list[FieldError] = []
    digits = _bill_digits(text, pointer=pointer, errors=errors)
    bill = None if digits is None else _bill_from_digits(digits, service_types, pointer, errors)
    if bill is None:
        raise PaymentFieldError(tuple(errors))
    return bill


def parse_payment_id(text: str, *, bill_id: BillId, pointer: str = PAYMENT_ID_POINTER) -> PaymentId:
    """Check a payment ID against the bill it pays: digits and length, then C1, then C2.

    Raises PaymentFieldError at `pointer` with rule payment_id_format,
    payment_id_first_check_digit or payment_id_second_check_digit.
    """
    errors: list[FieldError] = []
    digits = _payment_digits(text, pointer=pointer, errors=errors)
    if digits is None or not _second_check_digit_ok(bill_id.text, digits, pointer, errors):
        raise PaymentFieldError(tuple(errors))
    return _payment_from_digits(digits)


def verify_bill_payment(
    bill_id_text: str,
    payment_id_text: str,
    *,
    service_types: BillServiceTypes,
    expected_amount_minor: int | None = None,
    bill_pointer: str = BILL_ID_POINTER,
    payment_pointer: str = PAYMENT_ID_POINTER,
    amount_pointer: str = PAYMENT_ID_POINTER,
) -> BillPayment:
    """Check that a bill ID and a payment ID are well formed, carry correct check digits and
    belong together, and (when `expected_amount_minor` is given) encode that amount in IRR.

    Every field is judged, so one refusal lists both numbers when both are wrong. C2 is judged
    only when the bill ID's own check digit is right: otherwise the bill ID is the wrong one and
    blaming the payment ID would mislead. The amount is compared only when every check passed.

    Raises PaymentFieldError with rules bill_id_format, bill_id_check_digit,
    unknown_service_type (at bill_pointer), payment_id_format, payment_id_first_check_digit,
    payment_id_second_check_digit (at payment_pointer) and amount_mismatch (at amount_pointer).
    """
    errors: list[FieldError] = []
    bill_digits = _bill_digits(bill_id_text, pointer=bill_pointer, errors=errors)
    bill = None
    if bill_digits is not None:
        bill = _bill_from_digits(bill_digits, service_types, bill_pointer, errors)
    payment_digits = _payment_digits(payment_id_text, pointer=payment_pointer, errors=errors)
    if bill_digits is not None and payment_digits is not None:
        _second_check_digit_ok(bill_digits, payment_digits, payment_pointer, errors)
    if errors or bill is None or payment_digits is None:
        raise PaymentFieldError(tuple(errors))
    payment = _payment_from_digits(payment_digits)
    if expected_amount_minor is not None and payment.amount_minor != expected_amount_minor:
        message = "the amount in the payment ID differs from the amount of the bill"
        raise PaymentFieldError((FieldError(amount_pointer, RULE_AMOUNT_MISMATCH, message),))
    return BillPayment(bill=bill, payment=payment, amount_minor=payment.amount_minor)


def make_bill_id(subscriber_code: str, *, company_code: str, service_type: int) -> str:
    """The canonical bill ID of a subscriber code (1-8 digits, no leading zero), a 3-digit
    company code and a service-type digit, with its check digit appended.

    Raises PaymentFieldError (rule bill_id_format) at /subscriber_code, /company_code or
    /service_type, listing every refused part.
    """
    errors: list[FieldError] = []
    if not re.fullmatch(rf"[1-9][0-9]{{0,{MAX_SUBSCRIBER_CODE_DIGITS - 1}}}", subscriber_code):
        message = (
            f"the subscriber code must have 1 to {MAX_SUBSCRIBER_CODE_DIGITS} digits"
            " and no leading zero"
        )
        errors.append(FieldError("/subscriber_code", RULE_BILL_ID_FORMAT, message))
    if not re.fullmatch(rf"[0-9]{{{COMPANY_CODE_DIGITS}}}", company_code):
        message = f"the company code must have exactly {COMPANY_CODE_DIGITS} digits"
        errors.append(FieldError("/company_code", RULE_BILL_ID_FORMAT, message))
    if not _is_digit_value(service_type, 9):
        message = "the service type must be a single digit"
        errors.append(FieldError("/service_type", RULE_BILL_ID_FORMAT, message))
    if errors:
        raise PaymentFieldError(tuple(errors))
    body = f"{subscriber_code}{company_code}{service_type}"
    return f"{body}{mod11(body)}"


def make_payment_id(*, bill_id: str, amount_minor: int, year_digit: int, period: int) -> str:
    """The canonical payment ID of `amount_minor` IRR for `bill_id`, with C1 and C2.

    The amount must be a positive whole number of thousands of rials, at most
    MAX_AMOUNT_THOUSANDS_RIALS thousands; year_digit is 0-9 and period 0-99.

    Raises PaymentFieldError: at /bill_id as parse_bill_id would (format, check digit), at
    /amount_minor (amount_not_whole_thousands, payment_id_format), at /year_digit and /period
    (payment_id_format).
    """
    errors: list[FieldError] = []
    bill_digits = _bill_digits(bill_id, pointer="/bill_id", errors=errors)
    if not _is_digit_value(amount_minor, MAX_AMOUNT_THOUSANDS_RIALS * RIALS_PER_THOUSAND):
        message = "the amount must be positive and fit in a payment ID"
        errors.append(FieldError("/amount_minor", RULE_PAYMENT_ID_FORMAT, message))
    elif amount_minor == 0 or amount_minor % RIALS_PER_THOUSAND:
        message = "a payment ID encodes a positive whole number of thousands of rials"
        errors.append(FieldError("/amount_minor", RULE_AMOUNT_NOT_WHOLE_THOUSANDS, message))
    if not _is_digit_value(year_digit, 9):
        errors.append(
            FieldError("/year_digit", RULE_PAYMENT_ID_FORMAT, "the year must be one digit")
        )
    if not _is_digit_value(period, MAX_PERIOD):
        message = f"the period must have at most {PERIOD_DIGITS} digits"
        errors.append(FieldError("/period", RULE_PAYMENT_ID_FORMAT, message))
    if errors or bill_digits is None:
        raise PaymentFieldError(tuple(errors))
    body = f"{amount_minor // RIALS_PER_THOUSAND}{year_digit}{period:0{PERIOD_DIGITS}d}"
    c1 = mod11(body)
    return f"{body}{c1}{mod11(f'{bill_digits}{body}{c1}')}"


# --- the checks, each adding at most one error per pointer ---------------------------------------


def _is_digit_value(value: object, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def _canonical_digits(
    text: object,
    *,
    what: str,
    limits: tuple[int, int],
    pointer: str,
    rule: str,
    errors: list[FieldError],
) -> str | None:
    """The digits of `text` without leading zeros, or None with a format error added."""
    low, high = limits
    if not isinstance(text, str):  # payload values arrive as any JSON type
        add_field_error(errors, pointer, rule, f"the {what} must be a string of digits")
    elif len(text) > MAX_ID_INPUT_CHARS or not _DIGITS.fullmatch(text):
        add_field_error(errors, pointer, rule, f"the {what} must hold only the digits 0-9")
    elif not low <= len(digits := text.lstrip("0")) <= high:
        message = f"the {what} must have {low} to {high} digits after leading zeros"
        add_field_error(errors, pointer, rule, message)
    else:
        return digits
    return None


def _bill_digits(text: object, *, pointer: str, errors: list[FieldError]) -> str | None:
    """Canonical bill ID digits whose check digit is right, or None with one error added."""
    limits = (BILL_ID_MIN_DIGITS, BILL_ID_MAX_DIGITS)
    digits = _canonical_digits(
        text,
        what="bill ID",
        limits=limits,
        pointer=pointer,
        rule=RULE_BILL_ID_FORMAT,
        errors=errors,
    )
    if digits is not None and mod11(digits[:-1]) != int(digits[-1]):
        message = "the bill ID's check digit (its last digit) is wrong"
        add_field_error(errors, pointer, RULE_BILL_ID_CHECK_DIGIT, message)
        return None
    return digits


def _bill_from_digits(
    digits: str, service_types: BillServiceTypes, pointer: str, errors: list[FieldError]
) -> BillId | None:
    service_type = int(digits[-2])
    service_name = service_types.name_of(service_type)
    if service_name is None:
        message = "the bill ID's service type (its second-to-last digit) is not a known service"
        add_field_error(errors, pointer, RULE_UNKNOWN_SERVICE_TYPE, message)
        return None
    return BillId(
        text=digits,
        subscriber_code=digits[: -COMPANY_CODE_DIGITS - 2],
        company_code=digits[-COMPANY_CODE_DIGITS - 2 : -2],
        service_type=service_type,
        service_name=service_name,
        check_digit=int(digits[-1]),
    )


def _payment_digits(text: object, *, pointer: str, errors: list[FieldError]) -> str | None:
    """Canonical payment ID digits whose C1 is right, or None with one error added."""
    limits = (PAYMENT_ID_MIN_DIGITS, PAYMENT_ID_MAX_DIGITS)
    digits = _canonical_digits(
        text,
        what="payment ID",
        limits=limits,
        pointer=pointer,
        rule=RULE_PAYMENT_ID_FORMAT,
        errors=errors,
    )
    if digits is not None and mod11(digits[:-2]) != int(digits[-2]):
        message = "the payment ID's first check digit (its second-to-last digit) is wrong"
        add_field_error(errors, pointer, RULE_PAYMENT_ID_FIRST_CHECK_DIGIT, message)
        return None
    return digits


def _second_check_digit_ok(
    bill_digits: str, payment_digits: str, pointer: str, errors: list[FieldError]
) -> bool:
    if mod11(bill_digits + payment_digits[:-1]) == int(payment_digits[-1]):
        return True
    message = "the payment ID's second check digit (its last digit) does not match the bill ID"
    add_field_error(errors, pointer, RULE_PAYMENT_ID_SECOND_CHECK_DIGIT, message)
    return False


def _payment_from_digits(digits: str) -> PaymentId:
    body = digits[:-2]
    return PaymentId(
        text=digits,
        amount_thousands_rials=int(body[: -PERIOD_DIGITS - 1]),
        year_digit=int(body[-PERIOD_DIGITS - 1]),
        period=int(body[-PERIOD_DIGITS:]),
        c1=int(digits[-2]),
        c2=int(digits[-1]),
    )
