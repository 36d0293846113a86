"""The VAT return (docs/EINVOICE.md, "VAT return"): its payload, and its computation from the
period's invoices with a trace like every other return's.

Pure: the figures come from the service's own records (tax.vat_store sums the period's invoices,
once-only: the business never retypes them), and the business signs the figures it was shown,
so a return signed against figures that changed since is rejected (`declared_figures_differ`),
never silently recomputed.

tax = output VAT (sales) + output adjustments; credits = input VAT (accepted purchases) + input
adjustments + the credit brought forward from the previous period; a negative balance is carried
forward to the next period (tax.vat_store reads it from the previous period's head).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from signatures.canonical import JsonValue, join_pointer
from signatures.envelope import RULE_WRONG_TYPE, add_field_error, check_members
from signatures.errors import FieldError
from tax.calendar import Period
from tax.errors import TaxFieldError
from tax.returns import (
    MAX_AMOUNT_MINOR,
    PAYLOAD,
    read_amends,
    read_integer,
    read_pack,
    read_period,
)
from tax.rulepack import RulePack
from tax.trace import ERROR, Computation, Issue, Tracer, format_minor

VAT = "vat"
MAX_ADJUSTMENTS = 20
MAX_REASON_CHARS = 200
ADJUSTMENT_SIDES = ("output", "input")
ISSUE_PERIOD_NOT_ENDED = "period_not_ended"
ISSUE_DECLARED_FIGURES_DIFFER = "declared_figures_differ"
RULE_TOO_LONG = "too_long"
RULE_INVALID_CHOICE = "invalid_choice"
RULE_INVALID_REASON = "invalid_reason"
_MEMBERS = ("jurisdiction", "period", "declared", "adjustments", "amends")
_DECLARED = ("output_vat_minor", "input_vat_minor")


@dataclass(frozen=True)
class Adjustment:
    side: str  # output | input
    amount_minor: int  # signed
    reason: str


@dataclass(frozen=True)
class VatReturn:
    jurisdiction: str
    period: Period
    declared_output_minor: int
    declared_input_minor: int
    adjustments: tuple[Adjustment, ...]
    amends: str | None


@dataclass(frozen=True)
class VatFigures:
    """What the service's records say of a taxpayer's period."""

    output_vat_minor: int
    sales: int  # invoices counted (originals, corrections, returns, cancellations)
    input_vat_minor: int
    purchases: int
    brought_forward_minor: int  # credit carried from the previous period, ≥ 0


def parse_vat_return(payload: JsonValue) -> tuple[VatReturn, RulePack]:
    """Parse a `tax.return.vat` payload.

    Raises TaxFieldError listing every problem at /payload/… pointers.
    """
    errors: list[FieldError] = []
    if not isinstance(payload, dict):
        raise TaxFieldError((FieldError(PAYLOAD, RULE_WRONG_TYPE, "the payload is an object"),))
    required = ("jurisdiction", "period", "declared")
    optional = tuple(m for m in _MEMBERS if m not in required)
    check_members(payload, required=required, optional=optional, pointer=PAYLOAD, errors=errors)
    pack = read_pack(payload, VAT, errors)
    period = read_period(payload, pack, VAT, errors) if pack is not None else None
    declared = _declared(payload.get("declared"), errors)
    adjustments = _adjustments(payload.get("adjustments", []), errors)
    amends = read_amends(payload, errors)
    if errors or pack is None or period is None or declared is None:
        raise TaxFieldError(tuple(errors))
    return (
        VatReturn(pack.jurisdiction, period, declared[0], declared[1], adjustments, amends),
        pack,
    )


def _declared(value: JsonValue, errors: list[FieldError]) -> tuple[int, int] | None:
    pointer = f"{PAYLOAD}/declared"
    if value is None:
        return None
    if not isinstance(value, dict):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "declared is an object")
        return None
    check_members(value, required=_DECLARED, optional=(), pointer=pointer, errors=errors)
    # A chain's VAT may be negative (returns and corrections of an earlier period's sales).
    found = [
        read_integer(
            value.get(m), join_pointer(pointer, m), errors, minimum_minor=-MAX_AMOUNT_MINOR
        )
        for m in _DECLARED
    ]
    if found[0] is None or found[1] is None:
        return None
    return found[0], found[1]


def _adjustments(value: JsonValue, errors: list[FieldError]) -> tuple[Adjustment, ...]:
    pointer = f"{PAYLOAD}/adjustments"
    if not isinstance(value, list):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "adjustments is an array")
        return ()
    if len(value) > MAX_ADJUSTMENTS:
        add_field_error(errors, pointer, RULE_TOO_LONG, f"at most {MAX_ADJUSTMENTS} adjustments")
        return ()
    out: list[Adjustment] = []
    for i, item in enumerate(value):
        at = join_pointer(pointer, i)
        if not isinstance(item, dict):
            add_field_error(errors, at, RULE_WRONG_TYPE, "an adjustment is an object")
            continue
        members = ("side", "amount_minor", "reason")
        check_members(item, required=members, optional=(), pointer=at, errors=errors)
        side, reason = item.get("side"), item.get("reason")
        if side is not None and side not in ADJUSTMENT_SIDES:
            add_field_error(errors, f"{at}/side", RULE_INVALID_CHOICE, "output or input")
        if reason is not None and (
            not isinstance(reason, str) or not 0 < len(reason.strip()) <= MAX_REASON_CHARS
        ):
            message = f"a reason of 1..{MAX_REASON_CHARS} characters"
            add_field_error(errors, f"{at}/reason", RULE_INVALID_REASON, message)
        amount = read_integer(
            item.get("amount_minor"), f"{at}/amount_minor", errors, minimum_minor=-MAX_AMOUNT_MINOR
        )
        if isinstance(side, str) and isinstance(reason, str) and amount is not None:
            out.append(Adjustment(side, amount, reason.strip()))
    return tuple(out)


def compute_vat(
    pack: RulePack, data: VatReturn, figures: VatFigures, *, today: date
) -> Computation:
    """The VAT return's computation. Issues: period_not_ended and declared_figures_differ
    (errors). Raises ValueError when data is of another jurisdiction than pack."""
    if data.jurisdiction != pack.jurisdiction:
        raise ValueError("the return is of another jurisdiction than the pack")
    t = Tracer(pack)
    issues: list[Issue] = []
    if today <= data.period.end:
        message = f"the period {data.period.label} has not ended: a return is filed after its end"
        issues.append(Issue(ISSUE_PERIOD_NOT_ENDED, ERROR, message, f"{PAYLOAD}/period"))
    for name, declared, found in (
        ("output_vat_minor", data.declared_output_minor, figures.output_vat_minor),
        ("input_vat_minor", data.declared_input_minor, figures.input_vat_minor),
    ):
        if declared != found:
            message = (
                f"the invoices now give {format_minor(found)}, not the {format_minor(declared)} "
                "signed: preview the return again (GET /v1/tax/vat/{period}) and sign that"
            )
            issues.append(
                Issue(ISSUE_DECLARED_FIGURES_DIFFER, ERROR, message, f"{PAYLOAD}/declared/{name}")
            )
    output = t.add(
        "vat.output",
        f"Output VAT on the period's sales ({figures.sales} invoices)",
        figures.output_vat_minor,
        inputs=(),  # the service's own records (tax.vat_store), not the payload
        formula=f"Σ VAT of {figures.sales} sales invoices",
    )
    purchases = t.add(
        "vat.input",
        f"Input VAT on the period's accepted purchases ({figures.purchases} invoices)",
        figures.input_vat_minor,
        inputs=(),
        formula=f"Σ VAT of {figures.purchases} accepted purchase invoices",
    )
    out_adj, in_adj = _adjustment_lines(t, data.adjustments)
    forward = t.add(
        "vat.brought_forward",
        "Credit brought forward from the previous period",
        figures.brought_forward_minor,
        inputs=(),  # the previous period's accepted VAT return
        formula=format_minor(figures.brought_forward_minor),
    )
    tax = t.add(
        "tax.total",
        "Output VAT and output adjustments",
        output + out_adj,
        inputs=("vat.output", "vat.adjustments.output"),
        formula=f"{format_minor(output)} + {format_minor(out_adj)}",
    )
    credits = t.add(
        "credits.total",
        "Input VAT, input adjustments and the credit brought forward",
        purchases + in_adj + forward,
        inputs=("vat.input", "vat.adjustments.input", "vat.brought_forward"),
        formula=f"{format_minor(purchases)} + {format_minor(in_adj)} + {format_minor(forward)}",
    )
    t.add(
        "balance",
        "Balance: payable when positive, carried forward when negative",
        tax - credits,
        inputs=("tax.total", "credits.total"),
        formula=f"{format_minor(tax)} − {format_minor(credits)}",
    )
    return Computation(
        kind=VAT,
        jurisdiction=pack.jurisdiction,
        period=data.period,
        pack_version=pack.version,
        lines=tuple(t.lines),
        tax_minor=tax,
        credits_minor=credits,
        issues=tuple(issues),
        unverified=(),
    )


def _adjustment_lines(t: Tracer, adjustments: tuple[Adjustment, ...]) -> tuple[int, int]:
    totals = {side: 0 for side in ADJUSTMENT_SIDES}
    for n, a in enumerate(adjustments, start=1):
        totals[a.side] += t.add(
            f"vat.adjustment.{n}",
            f"Adjustment of {a.side} VAT: {a.reason}",
            a.amount_minor,
            inputs=(f"/payload/adjustments/{n - 1}",),
            formula=format_minor(a.amount_minor),
        )
    for side in ADJUSTMENT_SIDES:
        t.add(
            f"vat.adjustments.{side}",
            f"Adjustments of {side} VAT",
            totals[side],
            inputs=tuple(f"vat.adjustment.{n}" for n, a in enumerate(adjustments, 1)
                         if a.side == side),
            formula=format_minor(totals[side]),
        )  # fmt: skip
    return totals["output"], totals["input"]
