"""Hypothesis over tax.invoices.check_invoice, with the small packs of tests/unit/tax/
test_invoices.py (both roundings; VAT 9 % then 10 %, and 0 %):

- an invoice built by a correct generator (amounts computed with Decimal, independently of the
  code's Fractions) always passes, and the checked figures are the generator's;
- changing any one amount by ±1 always fails, and every error names that amount or an amount
  that depends on it: a line's VAT and total, the invoice totals (and the payments, whose sum
  is bounded by the total).

What does not hold, and is therefore not claimed: a unit price ±1 on a line whose quantity is
below 1 may round to the same base (0.001 × 1000 and × 1001 are both 1) and leave a correct
invoice; the unit price is mutated only on lines with a quantity of at least 1, where the base
moves by at least one unit. A payment ±1 is not an equality: it fails only at the bound.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from tax.errors import TaxFieldError
from tax.invoices import MAX_PAYMENTS, check_invoice
from tests.unit.tax.test_invoices import (
    AT,
    INDEX,
    PACKS,
    SELLER,
    build_invoice,
    expected_line,
)

MAX_PRICE_MINOR = 10**9
MAX_QUANTITY_THOUSANDTHS = 10**7  # quantities up to 10 000.000
ISSUE_TIMES = (
    ("2023-06-01T10:00:00Z", ("0.09", "0")),
    ("2024-03-19T21:00:00Z", ("0.10", "0")),  # 00:30 on 2024-03-20 in Tehran: 10 % already
    ("2025-06-01T22:00:00Z", ("0.10", "0")),
)
LINE_DECLARED = ("vat_minor", "total_minor")
TOTALS = (
    "before_discount_minor",
    "discount_minor",
    "after_discount_minor",
    "vat_minor",
    "total_minor",
)


@st.composite
def invoices(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """(rounding, a correct raw invoice)."""
    rounding = draw(st.sampled_from(sorted(PACKS)))
    issued_at, rates = draw(st.sampled_from(ISSUE_TIMES))
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        thousandths = draw(st.integers(1, MAX_QUANTITY_THOUSANDTHS))
        quantity = f"{thousandths // 1000}.{thousandths % 1000:03d}".removesuffix(".000")
        price = draw(st.integers(0, MAX_PRICE_MINOR))
        rate = draw(st.sampled_from(rates))
        base = expected_line(quantity, price, 0, rate, rounding=rounding)["_base"]
        discount = draw(st.integers(0, base))
        lines.append(expected_line(quantity, price, discount, rate, rounding=rounding))
    invoice = build_invoice(lines, issued_at=issued_at, serial=draw(st.integers(0, 10**6)))
    total = invoice["totals"]["total_minor"]
    if total > 0 and draw(st.booleans()):
        count = draw(st.integers(1, min(MAX_PAYMENTS, total)))
        share = draw(st.integers(count, total)) // count
        payment = {"method": "card", "amount_minor": share, "paid_on": "2025-06-01"}
        invoice["payments"] = [payment] * count
    return rounding, invoice


@given(invoices())
def test_a_correct_invoice_passes(case: tuple[str, dict[str, Any]]) -> None:
    rounding, raw = case
    checked = check_invoice(PACKS[rounding], raw, seller=SELLER, index=INDEX)
    assert [line.vat_minor for line in checked.lines] == [x["vat_minor"] for x in raw["lines"]]
    assert [line.total_minor for line in checked.lines] == [x["total_minor"] for x in raw["lines"]]
    assert checked.totals.total_minor == raw["totals"]["total_minor"]
    assert checked.totals.before_discount_minor == raw["totals"]["before_discount_minor"]


def _dependents(pointer: str) -> set[str]:
    """The pointer itself and every declared amount derived from it."""
    if pointer == "/totals/total_minor":
        return {pointer, "/payments"}  # the payments are bounded by it
    if pointer.startswith("/totals/"):
        return {pointer}
    line, name = pointer.rsplit("/", 1)
    if name in LINE_DECLARED:  # a line's VAT or total is summed into the invoice's
        return {pointer, f"/totals/{name}"}
    # A unit price or a discount moves the line's VAT and total, and every invoice total.
    return {pointer, f"{line}/vat_minor", f"{line}/total_minor"} | {f"/totals/{t}" for t in TOTALS}


@given(invoices(), st.data())
def test_one_amount_off_by_one_fails_where_it_is(
    case: tuple[str, dict[str, Any]], data: st.DataObject
) -> None:
    rounding, raw = case
    lines = raw["lines"]
    choices = [f"/totals/{name}" for name in TOTALS]
    for i, line in enumerate(lines):
        choices += [f"/lines/{i}/{name}" for name in (*LINE_DECLARED, "discount_minor")]
        if Decimal(line["quantity"]) >= 1:
            choices.append(f"/lines/{i}/unit_price_minor")
    pointer = data.draw(st.sampled_from(choices))
    delta = data.draw(st.sampled_from((1, -1)))
    mutated = copy.deepcopy(raw)
    _, part, *rest = pointer.split("/")
    target = mutated[part][int(rest[0])] if part == "lines" else mutated[part]
    target[rest[-1]] += delta
    assume(target[rest[-1]] >= 0)  # a negative amount is refused by its shape: not the point
    if rest[-1] == "unit_price_minor":
        # A lower price can leave the line's discount above its base (the base is rounded to
        # within 1 of quantity x price): the discount's own bound refuses that, at the discount.
        base = Decimal(target["quantity"]) * target["unit_price_minor"]
        assume(base >= target["discount_minor"] + 1)
    try:
        check_invoice(PACKS[rounding], mutated, seller=SELLER, index=INDEX)
    except TaxFieldError as error:
        named = {e.pointer.removeprefix(AT) for e in error.errors}
    else:
        raise AssertionError(f"{pointer} {delta:+d} was accepted")
    assert named and named <= _dependents(pointer), (pointer, named)
