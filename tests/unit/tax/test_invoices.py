"""tax.invoices and tax.invoice_lines: every rule of one invoice and of a batch's envelope, with
the arithmetic checked at its rounding boundaries.

Expected amounts are computed here independently of the code under test (decimal.Decimal with
ROUND_HALF_UP / ROUND_DOWN, where the code uses Fractions), or written out by hand.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import pytest

from signatures.canonical import MAX_SAFE_INTEGER, JsonValue
from tax.errors import RulePackError, TaxFieldError
from tax.invoices import (
    MAX_BATCH_INVOICES,
    MAX_INVOICE_LINES,
    MAX_PAYMENTS,
    MAX_QUANTITY_FRACTION_DIGITS,
    Invoice,
    check_invoice,
    parse_batch,
    vat_rates_on,
)
from tax.rulepack import RulePack, pack_for, parse_pack
from tax.tax_ids import make_tax_id

SELLER = "ir-lid:10380284790"
BUYER = "ir-lid:14003778990"
MEMORY_ID = "A1B2C3"
INDEX = 7
AT = f"/payload/invoices/{INDEX}"

# A small pack: the minimal shape of tests/unit/tax/test_rulepack.py's BASE, in Tehran's time
# zone, with two VAT categories (standard 9 % then 10 % from 2024-03-20, zero) and a rounding.
PACK_TEXT = """
[pack]
jurisdiction = "xx"
title = "Invoice test pack"
revision = 1
currency = "IRR"
calendar = "gregorian"
tax_agency = "agency:test"
timezone = "Asia/Tehran"
weekend = ["friday"]
rounding = "down"

[sources.law]
citation = "Test VAT Act"

[returns.personal]
period = "year"
subjects = ["ir-nid"]
first_period = "2024"
deadline = "deadline.personal"
payment_deadline = "deadline.personal"

[params."deadline.personal"]
kind = "deadline"
[[params."deadline.personal".values]]
since = "2020-01-01"
value = { months_after_period_end = 4, day = 30 }
source = "law"
status = "enacted"

[params."vat.rate.standard"]
kind = "rate"
[[params."vat.rate.standard".values]]
since = "2020-01-01"
value = "0.09"
source = "law"
status = "enacted"
[[params."vat.rate.standard".values]]
since = "2024-03-20"
value = "0.10"
source = "law"
status = "enacted"

[params."vat.rate.zero"]
kind = "rate"
[[params."vat.rate.zero".values]]
since = "2020-01-01"
value = "0"
source = "law"
status = "enacted"

[params."invoice.rounding"]
kind = "text"
[[params."invoice.rounding".values]]
since = "2020-01-01"
value = "ROUNDING"
source = "law"
status = "enacted"
"""


def make_pack(rounding: str = "half_up", *, text: str = PACK_TEXT) -> RulePack:
    return parse_pack(text.replace("ROUNDING", rounding).encode(), name="xx.toml")


PACKS = {rounding: make_pack(rounding) for rounding in ("half_up", "down")}


def expected_line(
    quantity: str, price: int, discount: int, rate: str, *, rounding: str
) -> dict[str, Any]:
    """A correct line, computed with Decimal (independently of the code's Fractions)."""
    mode = ROUND_HALF_UP if rounding == "half_up" else ROUND_DOWN
    with localcontext() as context:
        context.prec = 100
        base = int((Decimal(quantity) * price).quantize(Decimal(1), rounding=mode))
        after = base - discount
        vat = int((after * Decimal(rate)).quantize(Decimal(1), rounding=mode))
    return {
        "code": "2330001234567",
        "quantity": quantity,
        "unit": "164",
        "unit_price_minor": price,
        "discount_minor": discount,
        "vat_rate": rate,
        "vat_minor": vat,
        "total_minor": after + vat,
        "_base": base,  # not a member: removed by build_invoice, kept for the totals
    }


def build_invoice(
    lines: list[dict[str, Any]], *, issued_at: str = "2025-06-01T10:00:00Z", serial: int = 1
) -> dict[str, Any]:
    """A correct invoice with these lines (from expected_line) and correct totals."""
    day = datetime.fromisoformat(issued_at).astimezone(UTC).date()
    bases = [line["_base"] for line in lines]
    body = [{k: v for k, v in line.items() if k != "_base"} for line in lines]
    after = [b - line["discount_minor"] for b, line in zip(bases, body, strict=True)]
    return {
        "tax_id": make_tax_id(MEMORY_ID, day=day, serial=serial).text,
        "issued_at": issued_at,
        "type": 1,
        "pattern": 1,
        "subtype": "original",
        "buyer": BUYER,
        "lines": body,
        "totals": {
            "before_discount_minor": sum(bases),
            "discount_minor": sum(line["discount_minor"] for line in body),
            "after_discount_minor": sum(after),
            "vat_minor": sum(line["vat_minor"] for line in body),
            "total_minor": sum(line["total_minor"] for line in body),
        },
    }


def simple_invoice(
    *, issued_at: str = "2025-06-01T10:00:00Z", serial: int = 1, **members: Any
) -> dict[str, Any]:
    """The spec's example invoice (one line: 2.5 × 1 000 000 at 10 %), issued at `issued_at`;
    `members` replace or add members (None removes one)."""
    line = expected_line("2.5", 1_000_000, 0, "0.10", rounding="half_up")
    invoice = build_invoice([line], issued_at=issued_at, serial=serial)
    for name, value in members.items():
        if value is None:
            invoice.pop(name, None)
        else:
            invoice[name] = value
    return invoice


def check(raw: object, *, rounding: str = "half_up", seller: str = SELLER) -> Invoice:
    return check_invoice(PACKS[rounding], raw, seller=seller, index=INDEX)  # type: ignore[arg-type]


def refusals(raw: object, *, rounding: str = "half_up") -> dict[str, str]:
    """{pointer relative to the invoice: rule} of every error check_invoice reports."""
    with pytest.raises(TaxFieldError) as caught:
        check(raw, rounding=rounding)
    errors = caught.value.errors
    assert all(error.pointer.startswith(AT) for error in errors)
    found = {error.pointer[len(AT) :]: error.rule for error in errors}
    assert len(found) == len(errors), "one error per pointer"
    return found


def messages(raw: object) -> list[str]:
    with pytest.raises(TaxFieldError) as caught:
        check(raw)
    return [error.message for error in caught.value.errors]


# --- a valid invoice ----------------------------------------------------------------------------


def test_the_spec_example_is_accepted() -> None:
    invoice = check(simple_invoice())
    (line,) = invoice.lines
    assert (line.base_minor, line.after_discount_minor) == (2_500_000, 2_500_000)
    assert (line.vat_minor, line.total_minor) == (250_000, 2_750_000)
    assert line.quantity == Decimal("2.5") and line.vat_rate == Decimal("0.10")
    assert invoice.totals.total_minor == 2_750_000
    assert invoice.seller == SELLER and invoice.buyer == BUYER
    assert invoice.tax_id.serial == 1 and invoice.issued_on == date(2025, 6, 1)
    assert invoice.payments == () and invoice.reference_tax_id is None


def test_every_field_of_a_full_invoice_is_kept() -> None:
    payments = [
        {"method": "card", "amount_minor": 2_000_000, "paid_on": "2025-06-01"},
        {"method": "cash", "amount_minor": 750_000, "paid_on": "2025-06-02"},
    ]
    invoice = check(simple_invoice(payments=payments))  # they add up to the total exactly
    assert [(p.method, p.amount_minor, p.paid_on) for p in invoice.payments] == [
        ("card", 2_000_000, date(2025, 6, 1)),
        ("cash", 750_000, date(2025, 6, 2)),
    ]


def test_a_type_2_invoice_has_no_buyer() -> None:
    invoice = check(simple_invoice(type=2, buyer=None))
    assert invoice.buyer is None and invoice.type == 2


@pytest.mark.parametrize("subtype", ["corrective", "cancellation", "sales_return"])
def test_a_later_subtype_references_the_original(subtype: str) -> None:
    original = make_tax_id(MEMORY_ID, day=date(2025, 5, 1), serial=9).text
    invoice = check(simple_invoice(subtype=subtype, reference_tax_id=original, serial=10))
    assert (invoice.subtype, invoice.reference_tax_id) == (subtype, original)


# --- the issue day ----------------------------------------------------------------------------


def test_the_tax_id_day_is_the_utc_day_of_issued_at() -> None:
    # 22:00 UTC on 1 June is 01:30 on 2 June in Tehran: the tax ID counts 1 June (as every
    # published implementation does); issued_on, the law's day, is 2 June.
    invoice = check(simple_invoice(issued_at="2025-06-01T22:00:00Z"))
    assert invoice.tax_id.day == date(2025, 6, 1)
    assert invoice.issued_on == date(2025, 6, 2)
    tehran_day = make_tax_id(MEMORY_ID, day=date(2025, 6, 2), serial=1).text
    raw = simple_invoice(issued_at="2025-06-01T22:00:00Z", tax_id=tehran_day)
    assert refusals(raw) == {"/tax_id": "tax_id_day_mismatch"}


def test_vat_rates_are_those_in_force_on_the_issue_day_in_the_pack_zone() -> None:
    # 2024-03-19T21:00Z is 2024-03-20 00:30 in Tehran: the 10 % rate is in force, 9 % is not.
    ten = expected_line("1", 1000, 0, "0.10", rounding="half_up")
    nine = expected_line("1", 1000, 0, "0.09", rounding="half_up")
    assert check(build_invoice([ten], issued_at="2024-03-19T21:00:00Z"))
    raw = build_invoice([nine], issued_at="2024-03-19T21:00:00Z")
    assert refusals(raw) == {"/lines/0/vat_rate": "vat_rate_not_in_force"}
    assert check(build_invoice([nine], issued_at="2024-03-19T20:00:00Z"))  # 23:30 on the 19th
    raw = build_invoice([ten], issued_at="2024-03-19T20:00:00Z")
    assert refusals(raw) == {"/lines/0/vat_rate": "vat_rate_not_in_force"}


def test_vat_rates_on() -> None:
    pack = PACKS["down"]
    assert vat_rates_on(pack, day=date(2019, 12, 31)) == {}
    assert vat_rates_on(pack, day=date(2024, 3, 19)) == {
        "standard": Decimal("0.09"),
        "zero": Decimal("0"),
    }
    assert vat_rates_on(pack, day=date(2024, 3, 20))["standard"] == Decimal("0.10")


def test_a_rate_is_compared_as_a_number() -> None:
    line = expected_line("1", 1000, 0, "0.1", rounding="half_up")
    assert check(build_invoice([line])).lines[0].vat_rate == Decimal("0.1")
    zero = expected_line("3", 1000, 0, "0.000", rounding="half_up")
    assert check(build_invoice([zero])).totals.vat_minor == 0


def test_no_rules_on_the_issue_day() -> None:
    line = expected_line("1", 1000, 0, "0.09", rounding="half_up")
    raw = build_invoice([line], issued_at="2019-06-01T10:00:00Z")
    assert refusals(raw) == {"/issued_at": "no_invoice_rules"}
    without_rounding = PACK_TEXT[: PACK_TEXT.index('[params."invoice.rounding"]')]
    pack = make_pack(text=without_rounding)
    with pytest.raises(TaxFieldError) as caught:
        check_invoice(pack, simple_invoice(), seller=SELLER, index=INDEX)
    assert [(e.pointer, e.rule) for e in caught.value.errors] == [
        (f"{AT}/issued_at", "no_invoice_rules")
    ]


def test_an_unknown_rounding_in_the_pack_is_the_pack_s_fault() -> None:
    with pytest.raises(RulePackError):  # the loader refuses it (tax.rulepack.TEXT_CHOICES)
        make_pack("banker")
    # A pack built some other way is still not trusted: check_invoice refuses it too.
    pack = PACKS["down"]
    (value,) = pack.params["invoice.rounding"]
    params = {**pack.params, "invoice.rounding": (dataclasses.replace(value, value="banker"),)}
    with pytest.raises(RulePackError):
        check_invoice(
            dataclasses.replace(pack, params=params), simple_invoice(), seller=SELLER, index=INDEX
        )


@pytest.mark.parametrize(
    ("jurisdiction", "issued_at", "accepted", "refused"),
    [
        ("ir", "2025-06-01T10:00:00Z", "0.10", "0.09"),  # VAT law 1400; 10 % from 1403
        ("ee", "2025-06-30T20:00:00Z", "0.22", "0.24"),  # 23:00 in Tallinn on 30 June
        ("ee", "2025-06-30T21:00:00Z", "0.24", "0.22"),  # 00:00 on 1 July: 24 %
    ],
)
def test_the_shipped_packs_rates(
    jurisdiction: str, issued_at: str, accepted: str, refused: str
) -> None:
    pack = pack_for(jurisdiction)
    rounding = pack.text_at("invoice.rounding", on=date(2025, 6, 1)).value
    assert isinstance(rounding, str)
    good = build_invoice(
        [expected_line("3", 999, 0, accepted, rounding=rounding)], issued_at=issued_at
    )
    assert check_invoice(pack, good, seller=SELLER, index=INDEX).lines[0].vat_rate == Decimal(
        accepted
    )
    bad = build_invoice(
        [expected_line("3", 999, 0, refused, rounding=rounding)], issued_at=issued_at
    )
    with pytest.raises(TaxFieldError) as caught:
        check_invoice(pack, bad, seller=SELLER, index=INDEX)
    assert [e.rule for e in caught.value.errors] == ["vat_rate_not_in_force"]


# --- the header -------------------------------------------------------------------------------


def test_not_an_object() -> None:
    raws: list[object] = [[], "invoice", None, 1]
    for raw in raws:
        with pytest.raises(TaxFieldError) as caught:
            check(raw)
        assert [(e.pointer, e.rule) for e in caught.value.errors] == [(AT, "wrong_type")]


@pytest.mark.parametrize(
    "name", ["tax_id", "issued_at", "type", "pattern", "subtype", "lines", "totals"]
)
def test_a_required_member_is_missing(name: str) -> None:
    raw = simple_invoice()
    del raw[name]
    assert refusals(raw)[f"/{name}"] == "required"


def test_unknown_and_null_members() -> None:
    raw = simple_invoice(seller=SELLER)
    assert refusals(raw) == {"/seller": "unknown_member"}
    raw = simple_invoice()
    raw["reference_tax_id"] = None  # absence is the one spelling of "none"
    assert refusals(raw) == {"/reference_tax_id": "wrong_type"}


@pytest.mark.parametrize(
    ("tax_id", "rule"),
    [
        ("A1B2C304F1000000000017", "invalid_check_digit"),
        ("A1B2C304F1000000000016X", "invalid_format"),
        ("a1b2c304f1000000000016", "invalid_format"),
        (12, "wrong_type"),
    ],
)
def test_tax_id_refusals(tax_id: object, rule: str) -> None:
    assert make_tax_id(MEMORY_ID, day=date(2025, 6, 1), serial=1).text == "A1B2C304F1000000000016"
    assert refusals(simple_invoice(tax_id=tax_id)) == {"/tax_id": rule}


@pytest.mark.parametrize(
    ("issued_at", "rule"),
    [
        ("2025-06-01T10:00:00+03:30", "timezone_not_utc"),
        ("2025-06-01 10:00:00Z", "invalid_format"),
        ("2025-02-30T10:00:00Z", "invalid_timestamp"),
        (1748772000, "wrong_type"),
    ],
)
def test_issued_at_refusals(issued_at: object, rule: str) -> None:
    raw = simple_invoice()
    raw["issued_at"] = issued_at
    assert refusals(raw) == {"/issued_at": rule}


def test_the_tax_id_day_must_match() -> None:
    other_day = make_tax_id(MEMORY_ID, day=date(2025, 5, 31), serial=1).text
    assert refusals(simple_invoice(tax_id=other_day)) == {"/tax_id": "tax_id_day_mismatch"}


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("type", 0, "out_of_range"),
        ("type", 3, "out_of_range"),
        ("type", "1", "wrong_type"),
        ("type", True, "wrong_type"),
        ("type", 1.0, "float_not_allowed"),
        ("pattern", 2, "unsupported_pattern"),
        ("pattern", 7, "unsupported_pattern"),
        ("pattern", 8, "out_of_range"),
        ("pattern", 0, "out_of_range"),
        ("subtype", "credit_note", "invalid_choice"),
        ("subtype", 1, "wrong_type"),
    ],
)
def test_header_values(name: str, value: object, rule: str) -> None:
    raw = simple_invoice()
    raw[name] = value
    assert refusals(raw)[f"/{name}"] == rule


@pytest.mark.parametrize("subtype", ["corrective", "cancellation", "sales_return"])
def test_a_later_subtype_needs_a_reference(subtype: str) -> None:
    assert refusals(simple_invoice(subtype=subtype)) == {"/reference_tax_id": "required"}


def test_reference_refusals() -> None:
    original = make_tax_id(MEMORY_ID, day=date(2025, 5, 1), serial=9).text
    raw = simple_invoice(reference_tax_id=original)
    assert refusals(raw) == {"/reference_tax_id": "not_applicable"}
    broken = original[:-1] + str((int(original[-1]) + 1) % 10)
    raw = simple_invoice(subtype="corrective", reference_tax_id=broken)
    assert refusals(raw) == {"/reference_tax_id": "invalid_check_digit"}
    itself = simple_invoice(subtype="cancellation")
    itself["reference_tax_id"] = itself["tax_id"]
    assert refusals(itself) == {"/reference_tax_id": "references_itself"}


@pytest.mark.parametrize(
    ("members", "rule"),
    [
        ({"buyer": None}, "required"),
        ({"type": 2}, "not_applicable"),
        ({"buyer": "ir-lid:14003778991"}, "invalid_check_digit"),
        ({"buyer": "ir-xx:14003778990"}, "invalid_subject"),
        ({"buyer": "agency:inta"}, "invalid_subject"),
        ({"buyer": 14003778990}, "wrong_type"),
        ({"buyer": SELLER}, "buyer_is_seller"),
    ],
)
def test_buyer_refusals(members: dict[str, Any], rule: str) -> None:
    assert refusals(simple_invoice(**members)) == {"/buyer": rule}


def test_messages_never_repeat_the_buyer() -> None:
    for buyer in ("ir-lid:14003778991", SELLER):
        assert all(buyer.split(":")[1] not in m for m in messages(simple_invoice(buyer=buyer)))


def test_a_person_or_an_estonian_business_may_buy() -> None:
    for buyer in ("ir-nid:0499370899", "ee-rg:10137025"):
        assert check(simple_invoice(buyer=buyer)).buyer == buyer


# --- lines ------------------------------------------------------------------------------------


def test_line_count_limits() -> None:
    assert refusals(simple_invoice(lines=[]))["/lines"] == "too_short"  # and the totals are off
    line = expected_line("1", 10, 0, "0.10", rounding="half_up")
    assert len(check(build_invoice([line] * MAX_INVOICE_LINES)).lines) == MAX_INVOICE_LINES
    too_many = build_invoice([line] * (MAX_INVOICE_LINES + 1))
    assert refusals(too_many) == {"/lines": "too_long"}
    assert refusals(simple_invoice(lines={"0": line}))["/lines"] == "wrong_type"
    assert refusals(simple_invoice(lines=["line"]))["/lines/0"] == "wrong_type"


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("code", "233000123456", "invalid_format"),
        ("code", "23300012345678", "invalid_format"),
        ("code", "۲۳۳۰۰۰۱۲۳۴۵۶۷", "invalid_format"),
        ("code", 2330001234567, "wrong_type"),
        ("unit", "", "invalid_format"),
        ("unit", "123456789", "invalid_format"),
        ("unit", "16a", "invalid_format"),
        ("quantity", "0", "out_of_range"),
        ("quantity", "0.000", "out_of_range"),
        ("quantity", "-1", "invalid_format"),
        ("quantity", "1e3", "invalid_format"),
        ("quantity", "02.5", "invalid_format"),
        ("quantity", "2.", "invalid_format"),
        ("quantity", "1000000000000", "invalid_format"),
        ("quantity", "2.5001", "too_many_fraction_digits"),
        ("quantity", 2, "wrong_type"),
        ("unit_price_minor", -1, "out_of_range"),
        ("unit_price_minor", MAX_SAFE_INTEGER + 1, "out_of_range"),
        ("unit_price_minor", 1.5, "float_not_allowed"),
        ("unit_price_minor", "1000", "wrong_type"),
        ("discount_minor", -1, "out_of_range"),
        ("vat_rate", "10%", "invalid_format"),
        ("vat_rate", "1.5", "invalid_format"),
        ("vat_rate", 0.1, "wrong_type"),
        ("vat_rate", "0.08", "vat_rate_not_in_force"),
        ("vat_rate", "0.09", "vat_rate_not_in_force"),
        ("vat_minor", False, "wrong_type"),
        ("total_minor", None, "required"),
        ("colour", "red", "unknown_member"),
    ],
)
def test_line_values(name: str, value: object, rule: str) -> None:
    raw = simple_invoice()
    if value is None:
        del raw["lines"][0][name]
    else:
        raw["lines"][0][name] = value
    assert refusals(raw)[f"/lines/0/{name}"] == rule


def test_three_fraction_digits_are_enough() -> None:
    assert MAX_QUANTITY_FRACTION_DIGITS == 3
    line = expected_line("0.001", 999_999, 0, "0.10", rounding="half_up")
    assert check(build_invoice([line])).lines[0].quantity == Decimal("0.001")


def test_a_product_beyond_the_safe_integer_is_refused() -> None:
    raw = simple_invoice()
    raw["lines"][0].update(quantity="999999999999.999", unit_price_minor=MAX_SAFE_INTEGER)
    assert refusals(raw)["/lines/0/unit_price_minor"] == "out_of_range"


# --- arithmetic at the rounding boundaries ----------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "price", "rounding", "base"),
    [
        ("0.5", 3, "half_up", 2),  # 1.5 exactly: half up
        ("0.5", 3, "down", 1),
        ("1.005", 100, "half_up", 101),  # 100.5 from a 3-decimal quantity
        ("1.005", 100, "down", 100),
        ("1.004", 100, "half_up", 100),  # 100.4
        ("0.333", 3, "half_up", 1),  # 0.999
        ("0.333", 3, "down", 0),
        ("2.5", 1_000_000, "down", 2_500_000),
    ],
)
def test_the_base_is_rounded_per_the_pack(
    quantity: str, price: int, rounding: str, base: int
) -> None:
    line = expected_line(quantity, price, 0, "0", rounding=rounding)
    invoice = check(build_invoice([line]), rounding=rounding)
    assert invoice.lines[0].base_minor == base == invoice.totals.before_discount_minor


@pytest.mark.parametrize(
    ("after", "rate", "rounding", "vat"),
    [
        (5, "0.10", "half_up", 1),  # 0.5: half up
        (5, "0.10", "down", 0),
        (15, "0.10", "half_up", 2),  # 1.5
        (14, "0.10", "half_up", 1),  # 1.4
        (1_000_005, "0.10", "half_up", 100_001),  # 100 000.5
        (1_000_005, "0.10", "down", 100_000),
        (19, "0.09", "half_up", 2),  # 1.71, before the 10 % rate
    ],
)
def test_the_vat_is_rounded_per_the_pack(after: int, rate: str, rounding: str, vat: int) -> None:
    issued_at = "2023-06-01T10:00:00Z" if rate == "0.09" else "2025-06-01T10:00:00Z"
    line = expected_line("1", after, 0, rate, rounding=rounding)
    invoice = check(build_invoice([line], issued_at=issued_at), rounding=rounding)
    assert invoice.lines[0].vat_minor == vat
    assert invoice.lines[0].total_minor == after + vat
    # The other rounding's figure is one minor unit off: refused, with the expected value.
    other = "down" if rounding == "half_up" else "half_up"
    if expected_line("1", after, 0, rate, rounding=other)["vat_minor"] != vat:
        found = refusals(build_invoice([line], issued_at=issued_at), rounding=other)
        assert found["/lines/0/vat_minor"] == "arithmetic_mismatch"


def test_the_mismatch_message_states_the_expected_value() -> None:
    raw = simple_invoice()
    raw["lines"][0]["vat_minor"] = 250_001
    raw["totals"]["vat_minor"] = 250_001  # the total follows the line: only the line is wrong
    with pytest.raises(TaxFieldError) as caught:
        check(raw)
    (error,) = caught.value.errors
    assert (error.pointer, error.rule) == (f"{AT}/lines/0/vat_minor", "arithmetic_mismatch")
    assert "250000" in error.message


def test_a_discount_equal_to_the_price_leaves_nothing_to_tax() -> None:
    line = expected_line("2", 500, 1000, "0.10", rounding="half_up")
    invoice = check(build_invoice([line]))
    assert invoice.lines[0].after_discount_minor == 0
    assert (invoice.totals.vat_minor, invoice.totals.total_minor) == (0, 0)
    assert invoice.totals.discount_minor == invoice.totals.before_discount_minor == 1000


def test_a_discount_above_the_price_is_refused() -> None:
    line = expected_line("2", 500, 1000, "0.10", rounding="half_up")
    raw = build_invoice([line])
    raw["lines"][0]["discount_minor"] = 1001
    assert refusals(raw) == {"/lines/0/discount_minor": "discount_exceeds_price"}


def test_a_discount_is_checked_against_the_rounded_base() -> None:
    # 0.5 × 3 = 1.5: the base is 2 half up (a discount of 2 is allowed), 1 down (it is not).
    line = expected_line("0.5", 3, 2, "0", rounding="half_up")
    assert check(build_invoice([line])).lines[0].after_discount_minor == 0
    found = refusals(build_invoice([line]), rounding="down")
    assert found["/lines/0/discount_minor"] == "discount_exceeds_price"


TWO_LINES = [
    expected_line("2.5", 1_000_000, 100_000, "0.10", rounding="half_up"),
    expected_line("1.333", 1001, 0, "0", rounding="half_up"),
]


# Each figure one minor unit off, and what is then refused: the figure, and the invoice total
# that sums it (the totals are the sums of the lines as declared).
OFF_BY_ONE = {
    "/lines/0/vat_minor": {"/lines/0/vat_minor", "/totals/vat_minor"},
    "/lines/0/total_minor": {"/lines/0/total_minor", "/totals/total_minor"},
    "/lines/1/total_minor": {"/lines/1/total_minor", "/totals/total_minor"},
    "/totals/before_discount_minor": {"/totals/before_discount_minor"},
    "/totals/discount_minor": {"/totals/discount_minor"},
    "/totals/after_discount_minor": {"/totals/after_discount_minor"},
    "/totals/vat_minor": {"/totals/vat_minor"},
    "/totals/total_minor": {"/totals/total_minor"},
}


@pytest.mark.parametrize(("pointer", "refused"), OFF_BY_ONE.items())
@pytest.mark.parametrize("delta", [1, -1])
def test_one_minor_unit_off_is_named_by_its_pointer(
    pointer: str, refused: set[str], delta: int
) -> None:
    raw = build_invoice(copy.deepcopy(TWO_LINES))
    assert check(raw)
    _, part, *rest = pointer.split("/")
    target = raw[part][int(rest[0])] if part == "lines" else raw[part]
    target[rest[-1]] += delta
    assert refusals(raw) == dict.fromkeys(refused, "arithmetic_mismatch")


def test_totals_are_the_sums_of_the_lines_as_declared() -> None:
    # A line's VAT one unit off, and a total VAT that follows it: only the line is wrong.
    raw = build_invoice(copy.deepcopy(TWO_LINES))
    raw["lines"][0]["vat_minor"] += 1
    raw["lines"][0]["total_minor"] += 1
    raw["totals"]["vat_minor"] += 1
    raw["totals"]["total_minor"] += 1
    assert refusals(raw) == {
        "/lines/0/vat_minor": "arithmetic_mismatch",
        "/lines/0/total_minor": "arithmetic_mismatch",
    }


def test_totals_shape() -> None:
    raw = simple_invoice()
    raw["totals"] = [1, 2, 3, 4, 5]
    assert refusals(raw) == {"/totals": "wrong_type"}
    raw = simple_invoice()
    del raw["totals"]["vat_minor"]
    raw["totals"]["total_minor"] = -1
    assert refusals(raw) == {"/totals/vat_minor": "required", "/totals/total_minor": "out_of_range"}


def test_a_sum_beyond_the_safe_integer_is_out_of_range() -> None:
    big = MAX_SAFE_INTEGER // 2 + 1
    line = expected_line("1", big, 0, "0", rounding="half_up")
    raw = build_invoice([line, line])
    raw["totals"] = {name: MAX_SAFE_INTEGER for name in raw["totals"]}
    raw["totals"]["discount_minor"] = 0
    assert refusals(raw) == {
        "/totals/before_discount_minor": "out_of_range",
        "/totals/after_discount_minor": "out_of_range",
        "/totals/total_minor": "out_of_range",
        "/totals/vat_minor": "arithmetic_mismatch",
    }


def test_a_unit_price_change_below_the_rounding_step_is_absorbed() -> None:
    """What truly holds: with a quantity below 1, a unit price one minor unit higher may give
    the same rounded base, and the invoice is then exactly right (0.001 × 1000 and × 1001 both
    round to 1)."""
    line = expected_line("0.001", 1000, 0, "0.10", rounding="half_up")
    raw = build_invoice([line])
    raw["lines"][0]["unit_price_minor"] = 1001
    assert check(raw).lines[0].base_minor == 1


# --- payments ---------------------------------------------------------------------------------


def _payment(amount_minor: int = 1000, **members: object) -> dict[str, object]:
    return {"method": "transfer", "amount_minor": amount_minor, "paid_on": "2025-06-01", **members}


@pytest.mark.parametrize(
    ("payment", "pointer", "rule"),
    [
        (_payment(method="bitcoin"), "/payments/0/method", "invalid_choice"),
        (_payment(amount_minor=0), "/payments/0/amount_minor", "out_of_range"),
        (_payment(paid_on="2025-6-1"), "/payments/0/paid_on", "invalid_format"),
        (_payment(paid_on="2025-02-30"), "/payments/0/paid_on", "invalid_date"),
        (_payment(paid_on=20250601), "/payments/0/paid_on", "invalid_format"),
        (_payment(note="x"), "/payments/0/note", "unknown_member"),
        ("card", "/payments/0", "wrong_type"),
    ],
)
def test_payment_refusals(payment: object, pointer: str, rule: str) -> None:
    assert refusals(simple_invoice(payments=[payment])) == {pointer: rule}


def test_payment_limits() -> None:
    many = [_payment(1) for _ in range(MAX_PAYMENTS)]
    assert len(check(simple_invoice(payments=many)).payments) == MAX_PAYMENTS
    raw = simple_invoice(payments=[*many, _payment(1)])
    assert refusals(raw) == {"/payments": "too_long"}
    assert refusals(simple_invoice(payments={"method": "card"})) == {"/payments": "wrong_type"}
    assert check(simple_invoice(payments=[])).payments == ()


def test_payments_may_not_exceed_the_total() -> None:
    assert check(simple_invoice(payments=[_payment(2_750_000)]))
    raw = simple_invoice(payments=[_payment(2_000_000), _payment(750_001)])
    assert refusals(raw) == {"/payments": "payments_exceed_total"}


# --- all at once ------------------------------------------------------------------------------


def test_every_problem_of_an_invoice_is_reported_at_once() -> None:
    raw = simple_invoice(type=2, pattern=3, payments=[_payment(method="gold")])
    raw["lines"][0]["vat_minor"] += 1
    raw["lines"][0]["unit"] = "kg"
    raw["totals"]["discount_minor"] = 1
    assert refusals(raw) == {
        "/pattern": "unsupported_pattern",
        "/buyer": "not_applicable",
        "/lines/0/unit": "invalid_format",
        "/payments/0/method": "invalid_choice",
    }
    # With the line's shape right, its arithmetic and the totals are judged too.
    raw["lines"][0]["unit"] = "164"
    assert refusals(raw) == {
        "/pattern": "unsupported_pattern",
        "/buyer": "not_applicable",
        "/lines/0/vat_minor": "arithmetic_mismatch",
        "/totals/discount_minor": "arithmetic_mismatch",
        "/totals/vat_minor": "arithmetic_mismatch",
        "/payments/0/method": "invalid_choice",
    }


# --- the batch --------------------------------------------------------------------------------


def test_parse_batch() -> None:
    invoices: list[JsonValue] = [{"tax_id": "not checked here"}, 12]
    assert parse_batch({"jurisdiction": "ir", "invoices": invoices}) == ("ir", invoices)
    full: list[JsonValue] = [{}] * MAX_BATCH_INVOICES
    assert len(parse_batch({"jurisdiction": "ee", "invoices": full})[1]) == MAX_BATCH_INVOICES


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([], {"/payload": "wrong_type"}),
        ({}, {"/payload/jurisdiction": "required", "/payload/invoices": "required"}),
        (
            {"jurisdiction": "zz", "invoices": [{}]},
            {"/payload/jurisdiction": "unknown_jurisdiction"},
        ),
        ({"jurisdiction": 1, "invoices": [{}]}, {"/payload/jurisdiction": "wrong_type"}),
        ({"jurisdiction": "ir", "invoices": {}}, {"/payload/invoices": "wrong_type"}),
        ({"jurisdiction": "ir", "invoices": []}, {"/payload/invoices": "too_short"}),
        (
            {"jurisdiction": "ir", "invoices": [{}] * (MAX_BATCH_INVOICES + 1)},
            {"/payload/invoices": "too_long"},
        ),
        (
            {"jurisdiction": "ir", "invoices": [{}], "currency": "IRR"},
            {"/payload/currency": "unknown_member"},
        ),
    ],
)
def test_parse_batch_refusals(payload: object, expected: dict[str, str]) -> None:
    with pytest.raises(TaxFieldError) as caught:
        parse_batch(payload)  # type: ignore[arg-type]
    assert {e.pointer: e.rule for e in caught.value.errors} == expected
