"""The pure core of electronic invoices (tax.invoice.submit): a batch's envelope-level shape, and
everything about one invoice that needs no database (docs/EINVOICE.md; s5_einv_spec §§ 1, 4).

check_invoice reports every problem of one invoice at once, in one TaxFieldError, each at a
/payload/invoices/<i>/… JSON Pointer with a stable rule; messages never repeat a refused value.
The header is checked here; the lines, totals and payments, with their exact arithmetic, in
tax.invoice_lines.

Which day: a tax ID's day count must be the UTC day of issued_at, as every published Moadian
implementation computes it (floor(unix_ms / 86 400 000); tax/tax_ids.py) — the spec had said the
pack's time zone, which would refuse their tax IDs issued between midnight in Tehran and
midnight UTC. The VAT rates and the rounding are those in force on the issue day in the pack's
time zone (the law's own day), which is also Invoice.issued_on.
An absent optional member is the one spelling of "none": a null is refused (wrong_type), as in
every payload (signatures.envelope.check_members).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from signatures.canonical import JsonValue, join_pointer
from signatures.envelope import (
    RULE_INVALID_SUBJECT,
    RULE_REQUIRED,
    RULE_TOO_LONG,
    RULE_TOO_SHORT,
    RULE_WRONG_TYPE,
    add_field_error,
    check_members,
    parse_subject,
    read_utc_timestamp,
)
from signatures.errors import FieldError, SubjectError
from tax.errors import RuleNotInForceError, RulePackError, TaxFieldError
from tax.invoice_lines import (
    MAX_INVOICE_LINES,
    MAX_PAYMENTS,
    MAX_QUANTITY_FRACTION_DIGITS,
    DayRules,
    InvoiceLine,
    InvoiceTotals,
    Payment,
    parse_lines,
    parse_payments,
    parse_totals,
    read_choice,
    read_integer,
)
from tax.rulepack import ROUNDINGS, SUBJECT_KINDS, RulePack, pack_for
from tax.tax_ids import TaxId, parse_tax_id

__all__ = [
    "MAX_BATCH_INVOICES",
    "MAX_INVOICE_LINES",
    "MAX_PAYMENTS",
    "MAX_QUANTITY_FRACTION_DIGITS",
    "Invoice",
    "InvoiceLine",
    "InvoiceTotals",
    "Payment",
    "check_invoice",
    "parse_batch",
    "vat_rates_on",
]

MAX_BATCH_INVOICES = 1000
MAX_PATTERN = 7  # Moadian's invoice patterns 1..7
SUPPORTED_PATTERNS = (1,)  # sale; the others (foreign currency, gold, …) are not modelled yet
TYPE_BUYER_IDENTIFIED = 1
TYPE_BUYER_NOT_IDENTIFIED = 2
ORIGINAL = "original"
SUBTYPES = (ORIGINAL, "corrective", "cancellation", "sales_return")
ROUNDING_PARAM = "invoice.rounding"

RULE_UNSUPPORTED_PATTERN = "unsupported_pattern"
RULE_TAX_ID_DAY_MISMATCH = "tax_id_day_mismatch"
RULE_NO_INVOICE_RULES = "no_invoice_rules"
RULE_NOT_APPLICABLE = "not_applicable"
RULE_BUYER_IS_SELLER = "buyer_is_seller"
RULE_REFERENCES_ITSELF = "references_itself"

PAYLOAD = "/payload"
INVOICES = "/payload/invoices"
_INVOICE_REQUIRED = ("tax_id", "issued_at", "type", "pattern", "subtype", "lines", "totals")
_INVOICE_OPTIONAL = ("reference_tax_id", "buyer", "payments")


@dataclass(frozen=True)
class Invoice:
    """A checked invoice. `issued_on` is the issue day in the pack's time zone."""

    tax_id: TaxId
    issued_at: datetime
    type: int
    pattern: int
    subtype: str
    reference_tax_id: str | None
    seller: str
    buyer: str | None
    lines: tuple[InvoiceLine, ...]
    totals: InvoiceTotals
    payments: tuple[Payment, ...]
    issued_on: date


@dataclass(frozen=True)
class _Head:
    tax_id: TaxId | None
    issued_at: datetime | None
    type: int | None
    pattern: int | None
    subtype: str | None
    reference: str | None
    buyer: str | None


def parse_batch(payload: JsonValue) -> tuple[str, list[JsonValue]]:
    """The jurisdiction and the raw invoices of a tax.invoice.submit payload.

    Raises TaxFieldError listing every envelope-level problem: wrong_type (not an object, a
    jurisdiction not a string, invoices not an array), required, unknown_member,
    unknown_jurisdiction (no pack ships for it), too_short (no invoice), too_long (more than
    MAX_BATCH_INVOICES). The invoices themselves are checked one by one by check_invoice."""
    if not isinstance(payload, dict):
        raise TaxFieldError((FieldError(PAYLOAD, RULE_WRONG_TYPE, "the payload is an object"),))
    errors: list[FieldError] = []
    required = ("jurisdiction", "invoices")
    check_members(payload, required=required, optional=(), pointer=PAYLOAD, errors=errors)
    jurisdiction = payload.get("jurisdiction")
    if isinstance(jurisdiction, str):
        try:
            pack_for(jurisdiction)
        except TaxFieldError as error:
            errors.extend(error.errors)
    elif jurisdiction is not None:
        add_field_error(errors, f"{PAYLOAD}/jurisdiction", RULE_WRONG_TYPE, "a string")
    invoices = payload.get("invoices")
    if invoices is not None and not isinstance(invoices, list):
        add_field_error(errors, INVOICES, RULE_WRONG_TYPE, "invoices is an array")
    elif isinstance(invoices, list) and not invoices:
        add_field_error(errors, INVOICES, RULE_TOO_SHORT, "at least one invoice")
    elif isinstance(invoices, list) and len(invoices) > MAX_BATCH_INVOICES:
        add_field_error(errors, INVOICES, RULE_TOO_LONG, f"at most {MAX_BATCH_INVOICES} invoices")
    if errors or not isinstance(jurisdiction, str) or not isinstance(invoices, list):
        raise TaxFieldError(tuple(errors))
    return jurisdiction, list(invoices)


def check_invoice(pack: RulePack, raw: JsonValue, *, seller: str, index: int) -> Invoice:
    """Check invoice number `index` of a batch issued by `seller` (a subject text) under `pack`.

    Raises TaxFieldError with every problem, at /payload/invoices/<index>/…: the shape rules
    (required, unknown_member, wrong_type, float_not_allowed, out_of_range, too_short, too_long,
    invalid_format, invalid_choice, too_many_fraction_digits, invalid_date, the timestamp rules
    of signatures.envelope), the tax ID's (invalid_format, invalid_check_digit) and
    tax_id_day_mismatch, unsupported_pattern, the subject rules for the buyer and
    buyer_is_seller, not_applicable (a buyer on a type-2 invoice, a reference on an original),
    references_itself, no_invoice_rules (the pack has no rounding or VAT rate on the issue
    day), vat_rate_not_in_force, discount_exceeds_price, arithmetic_mismatch,
    payments_exceed_total.
    Raises RulePackError when the pack's invoice.rounding is neither "half_up" nor "down"."""
    pointer = join_pointer(INVOICES, index)
    if not isinstance(raw, dict):
        raise TaxFieldError((FieldError(pointer, RULE_WRONG_TYPE, "an invoice is an object"),))
    errors: list[FieldError] = []
    required, optional = _INVOICE_REQUIRED, _INVOICE_OPTIONAL
    check_members(raw, required=required, optional=optional, pointer=pointer, errors=errors)
    head = _head(raw, pointer, seller=seller, errors=errors)
    rules = _rules_of_day(pack, head.issued_at, pointer, errors)
    lines = parse_lines(raw.get("lines"), rules, join_pointer(pointer, "lines"), errors)
    totals = parse_totals(raw.get("totals"), lines, join_pointer(pointer, "totals"), errors)
    payments = parse_payments(
        raw.get("payments"), totals, join_pointer(pointer, "payments"), errors
    )
    if errors:
        raise TaxFieldError(tuple(errors))
    # No error was reported, so every member was present and accepted.
    assert head.tax_id and head.issued_at and head.type and head.pattern and head.subtype
    assert lines is not None and totals is not None
    return Invoice(
        tax_id=head.tax_id,
        issued_at=head.issued_at,
        type=head.type,
        pattern=head.pattern,
        subtype=head.subtype,
        reference_tax_id=head.reference,
        seller=seller,
        buyer=head.buyer,
        lines=lines,
        totals=totals,
        payments=payments,
        issued_on=pack.local_date(head.issued_at),
    )


def vat_rates_on(pack: RulePack, *, day: date) -> dict[str, Decimal]:
    """Every VAT rate of the pack in force on `day`, by category (`vat.rate.<category>`);
    categories with no value yet on that day are left out (RulePack.vat_rates_at).

    Raises RulePackError only for a vat.rate.* parameter that is not a rate (the loader never
    lets one through)."""
    rates = pack.vat_rates_at(on=day)
    return {name: rate.value for name, rate in rates.items() if isinstance(rate.value, Decimal)}


# --- header ---------------------------------------------------------------------------------------


def _head(
    raw: dict[str, JsonValue], pointer: str, *, seller: str, errors: list[FieldError]
) -> _Head:
    tax_id = _tax_id(raw, "tax_id", pointer, errors)
    issued_at = read_utc_timestamp(raw.get("issued_at"), f"{pointer}/issued_at", errors)
    if tax_id is not None and issued_at is not None and tax_id.day != issued_at.date():
        message = "the tax ID's day is not the UTC day of issued_at"
        add_field_error(errors, f"{pointer}/tax_id", RULE_TAX_ID_DAY_MISMATCH, message)
    kind = read_integer(raw, "type", pointer, errors, low=1, high=TYPE_BUYER_NOT_IDENTIFIED)
    pattern = read_integer(raw, "pattern", pointer, errors, low=1, high=MAX_PATTERN)
    if pattern is not None and pattern not in SUPPORTED_PATTERNS:
        message = f"only patterns {SUPPORTED_PATTERNS} are accepted"
        add_field_error(errors, f"{pointer}/pattern", RULE_UNSUPPORTED_PATTERN, message)
    subtype = read_choice(raw, "subtype", SUBTYPES, pointer, errors)
    reference = _reference(raw, subtype, tax_id, pointer, errors)
    buyer = _buyer(raw, kind, pointer, seller=seller, errors=errors)
    return _Head(tax_id, issued_at, kind, pattern, subtype, reference, buyer)


def _tax_id(
    raw: dict[str, JsonValue], name: str, pointer: str, errors: list[FieldError]
) -> TaxId | None:
    value = raw.get(name)
    if value is None:
        return None  # check_members reported it, when it is required
    here = join_pointer(pointer, name)
    if not isinstance(value, str):
        add_field_error(errors, here, RULE_WRONG_TYPE, "a tax ID is a string")
        return None
    try:
        return parse_tax_id(value, pointer=here)
    except TaxFieldError as error:
        errors.extend(error.errors)
        return None


def _reference(
    raw: dict[str, JsonValue],
    subtype: str | None,
    tax_id: TaxId | None,
    pointer: str,
    errors: list[FieldError],
) -> str | None:
    here = f"{pointer}/reference_tax_id"
    if subtype == ORIGINAL and "reference_tax_id" in raw:
        add_field_error(errors, here, RULE_NOT_APPLICABLE, "an original references nothing")
        return None
    if subtype not in (None, ORIGINAL) and "reference_tax_id" not in raw:
        add_field_error(errors, here, RULE_REQUIRED, f"a {subtype} names the original's tax ID")
        return None
    reference = _tax_id(raw, "reference_tax_id", pointer, errors)
    if reference is not None and tax_id is not None and reference.text == tax_id.text:
        add_field_error(errors, here, RULE_REFERENCES_ITSELF, "an invoice cannot reference itself")
        return None
    return reference.text if reference is not None else None


def _buyer(
    raw: dict[str, JsonValue],
    kind: int | None,
    pointer: str,
    *,
    seller: str,
    errors: list[FieldError],
) -> str | None:
    here = f"{pointer}/buyer"
    value = raw.get("buyer")
    if kind == TYPE_BUYER_NOT_IDENTIFIED and "buyer" in raw:
        add_field_error(errors, here, RULE_NOT_APPLICABLE, "a type 2 invoice names no buyer")
        return None
    if kind == TYPE_BUYER_IDENTIFIED and "buyer" not in raw:
        add_field_error(errors, here, RULE_REQUIRED, "a type 1 invoice names its buyer")
        return None
    if value is None:
        return None
    if not isinstance(value, str):
        add_field_error(errors, here, RULE_WRONG_TYPE, "the buyer is a subject string")
        return None
    try:
        buyer = parse_subject(value)
    except SubjectError as error:
        add_field_error(errors, here, error.rule, f"the buyer is not a valid subject: {error}")
        return None
    if buyer.kind.value not in SUBJECT_KINDS:
        message = f"the buyer is a taxpayer: one of {', '.join(SUBJECT_KINDS)}"
        add_field_error(errors, here, RULE_INVALID_SUBJECT, message)
        return None
    if str(buyer) == seller:
        add_field_error(errors, here, RULE_BUYER_IS_SELLER, "the seller cannot buy from itself")
        return None
    return str(buyer)


def _rules_of_day(
    pack: RulePack, issued_at: datetime | None, pointer: str, errors: list[FieldError]
) -> DayRules | None:
    if issued_at is None:
        return None
    day = pack.local_date(issued_at)
    rates = vat_rates_on(pack, day=day)
    try:
        rounding_value = pack.text_at(ROUNDING_PARAM, on=day)
    except RuleNotInForceError:
        rounding_value = None
    if rounding_value is None or not rates:
        message = "the rule pack has no invoice rounding or VAT rate in force on the issue day"
        add_field_error(errors, f"{pointer}/issued_at", RULE_NO_INVOICE_RULES, message)
        return None
    rounding = rounding_value.value
    if not isinstance(rounding, str) or rounding not in ROUNDINGS:
        message = f"{ROUNDING_PARAM} is one of {sorted(ROUNDINGS)}"
        raise RulePackError(message, pack=pack.jurisdiction, pointer=f"params.{ROUNDING_PARAM}")
    return DayRules(rounding=rounding, rates=frozenset(rates.values()))
