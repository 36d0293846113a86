"""The VAT return's payload and computation: figures from the records, signed declared figures,
adjustments, the credit brought forward, and a trace like every return's."""

from __future__ import annotations

from datetime import date

import pytest

from signatures.canonical import canonicalize
from tax.errors import TaxFieldError
from tax.vat import VatFigures, compute_vat, parse_vat_return

FIGURES = VatFigures(
    output_vat_minor=1_000_000, sales=3, input_vat_minor=400_000, purchases=2,
    brought_forward_minor=50_000,
)  # fmt: skip
AFTER_Q1 = date(2024, 7, 1)  # 1403-Q1 ended on 1403-03-31 = 2024-06-20


def payload(**extra: object) -> dict[str, object]:
    return {
        "jurisdiction": "ir",
        "period": "1403-Q1",
        "declared": {"output_vat_minor": 1_000_000, "input_vat_minor": 400_000},
        **extra,
    }


def test_the_balance_is_output_less_input_adjustments_and_credit_brought_forward() -> None:
    data, pack = parse_vat_return(payload(adjustments=[
        {"side": "output", "amount_minor": -30_000, "reason": "bad debt written off"},
        {"side": "input", "amount_minor": 20_000, "reason": "import VAT paid at customs"},
    ]))  # fmt: skip
    c = compute_vat(pack, data, FIGURES, today=AFTER_Q1)
    assert c.accepted and c.kind == "vat" and c.period.label == "1403-Q1"
    lines = {line.code: line.amount_minor for line in c.lines}
    # By hand: tax = 1,000,000 − 30,000; credits = 400,000 + 20,000 + 50,000.
    assert (c.tax_minor, c.credits_minor) == (970_000, 470_000)
    assert lines["balance"] == 500_000
    assert lines["vat.adjustment.1"] == -30_000 and lines["vat.adjustments.input"] == 20_000
    canonicalize(c.trace_json(pack))  # the trace is hashable as every return's


def test_figures_that_changed_since_signing_reject_the_return() -> None:
    data, pack = parse_vat_return(payload())
    changed = VatFigures(1_000_001, 4, 400_000, 2, 0)
    c = compute_vat(pack, data, changed, today=AFTER_Q1)
    assert not c.accepted
    assert [(i.code, i.pointer) for i in c.issues] == [
        ("declared_figures_differ", "/payload/declared/output_vat_minor")
    ]


def test_a_period_not_ended_is_rejected() -> None:
    data, pack = parse_vat_return(payload())
    c = compute_vat(pack, data, FIGURES, today=date(2024, 6, 20))
    assert "period_not_ended" in {i.code for i in c.issues}


@pytest.mark.parametrize(
    ("bad", "pointer", "rule"),
    [
        ({"period": "1403"}, "/payload/period", "invalid_period"),  # a year, not a quarter
        ({"declared": {"output_vat_minor": 1}}, "/payload/declared/input_vat_minor", "required"),
        ({"adjustments": [{"side": "sideways", "amount_minor": 1, "reason": "x"}]},
         "/payload/adjustments/0/side", "invalid_choice"),
        ({"adjustments": [{"side": "input", "amount_minor": 1, "reason": ""}]},
         "/payload/adjustments/0/reason", "invalid_reason"),
        ({"adjustments": [{"side": "input", "amount_minor": 1.5, "reason": "r"}]},
         "/payload/adjustments/0/amount_minor", "float_not_allowed"),
        ({"adjustments": [{"side": "input", "amount_minor": 1, "reason": "r"}] * 21},
         "/payload/adjustments", "too_long"),
        ({"jurisdiction": "zz"}, "/payload/jurisdiction", "unknown_jurisdiction"),
        ({"extra": 1}, "/payload/extra", "unknown_member"),
    ],
)  # fmt: skip
def test_bad_payloads_name_the_field(bad: dict[str, object], pointer: str, rule: str) -> None:
    with pytest.raises(TaxFieldError) as caught:
        parse_vat_return(payload(**bad))
    assert (pointer, rule) in {(e.pointer, e.rule) for e in caught.value.errors}
