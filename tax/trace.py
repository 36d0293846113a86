"""The trace of a tax computation: every line says what was computed, from which inputs, by which
formula and with which dated, sourced parameter (docs/TAX.md, "Traces").

The canonical trace is the JSON list of a computation's lines in RFC 8785 form
(signatures.canonical); its SHA-256 and the pack's version go into the signed result recorded in
the ledger, so anyone holding the pack file can re-check a computation years later.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from signatures.canonical import JsonValue, canonicalize
from tax.calendar import Period, dual_date, format_date
from tax.errors import RulePackError
from tax.rulepack import Bracket, DatedValue, Degressive, RulePack, Status, round_fraction

__all__ = [
    "ERROR",
    "WARNING",
    "Band",
    "Computation",
    "Issue",
    "TraceLine",
    "Tracer",
    "bands",
    "format_minor",
    "format_rate",
    "format_sum",
    "parameter_json",
]

ERROR = "error"
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)
ISSUE_UNVERIFIED = "unverified_parameter"


def format_minor(amount_minor: int) -> str:
    """An amount of minor units with thousands separators, as formulas show it: "1,200,000"."""
    return f"{amount_minor:,}"


def format_rate(rate: Decimal) -> str:
    """A rate as a percentage without trailing zeros: Decimal("0.025") → "2.5%"."""
    text = format(rate * 100, "f")
    if "." in text:  # "2.500" → "2.5", "10.00" → "10"; "10" itself keeps its zero
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def format_sum(amounts: list[int]) -> str:
    """A sum as formulas show it: "1,000 + 2,500" ("0" for none)."""
    return " + ".join(format_minor(amount) for amount in amounts) or "0"


class Band(NamedTuple):
    """A band of brackets applied to an income: bounds (× the scale) and the part in it."""

    bracket: Bracket
    low_minor: int
    up_minor: int | None  # None: open-ended
    part_minor: int


def bands(brackets: tuple[Bracket, ...], *, income_minor: int, scale: int) -> list[Band]:
    """Each band with its lower and upper bound (each up_to × scale) and the part of the income
    in it: the income in (low, up]; the first band starts at 0."""
    out: list[Band] = []
    low = 0
    for bracket in brackets:
        up = None if bracket.up_to_minor is None else bracket.up_to_minor * scale
        top = income_minor if up is None else min(income_minor, up)
        out.append(Band(bracket, low, up, max(top - low, 0)))
        if up is None:
            break
        low = up
    return out


def parameter_json(pack: RulePack, parameter: DatedValue) -> dict[str, JsonValue]:
    """A parameter as a trace shows it: name, value, since (pack calendar and ISO), source and
    status; its note too when it has one (why a value is unverified, for instance)."""
    source = parameter.source
    out: dict[str, JsonValue] = {
        "name": parameter.name,
        "value": parameter.value_json(),
        "since": dict(dual_date(pack, parameter.since)),
        "source": {"key": source.key, "citation": source.citation, "url": source.url},
        "status": parameter.status.value,
    }
    if parameter.note:
        out["note"] = parameter.note
    return out


@dataclass(frozen=True)
class TraceLine:
    """One computed amount. `code` is stable (vectors and amendments' differences name it);
    `inputs` are codes of earlier lines or payload pointers; `formula` shows the arithmetic with
    the actual figures; `parameter` is the pack value used, or None when the line uses none."""

    code: str
    label: str
    amount_minor: int
    inputs: tuple[str, ...]
    formula: str
    parameter: DatedValue | None

    def as_json(self, pack: RulePack) -> dict[str, JsonValue]:
        """The line as JSON; its parameter's dates are written with dual_date of `pack`."""
        return {
            "code": self.code,
            "label": self.label,
            "amount_minor": self.amount_minor,
            "inputs": list(self.inputs),
            "formula": self.formula,
            "parameter": None if self.parameter is None else parameter_json(pack, self.parameter),
        }


@dataclass(frozen=True)
class Issue:
    """A business-rule finding about a return: `severity` "error" rejects it, "warning" does not.
    `pointer` is the payload field concerned ("" when it is the return as a whole)."""

    code: str
    severity: str
    message: str
    pointer: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity is one of {SEVERITIES}")

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "pointer": self.pointer,
        }


@dataclass(frozen=True)
class Computation:
    """A return's computation: its trace lines, the tax due for the period before credits, the
    credits (withheld, prepaid), the issues found and the unverified parameters used."""

    kind: str
    jurisdiction: str
    period: Period
    pack_version: str
    lines: tuple[TraceLine, ...]
    tax_minor: int
    credits_minor: int
    issues: tuple[Issue, ...]
    unverified: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        """No issue of severity error."""
        return all(issue.severity != ERROR for issue in self.issues)

    def line(self, code: str) -> TraceLine | None:
        """The line with this code, or None."""
        return next((line for line in self.lines if line.code == code), None)

    def trace_json(self, pack: RulePack) -> list[JsonValue]:
        """The lines as JSON, in order.

        Raises ValueError when `pack` is not the pack version the computation used: the trace
        would cite values the computation did not use."""
        if pack.version != self.pack_version:
            raise ValueError("the trace is written with the pack version it was computed with")
        return [line.as_json(pack) for line in self.lines]

    def trace_sha256(self, pack: RulePack) -> str:
        """Hex SHA-256 of the RFC 8785 bytes of trace_json(pack).

        Raises ValueError (another pack version) or signatures.errors.CanonicalFormError (an
        amount beyond the canonical profile's integers, a trace larger than its byte limit)."""
        return hashlib.sha256(canonicalize(self.trace_json(pack))).hexdigest()


class Tracer:
    """Builds a computation: its lines in order, its issues, and the unverified parameters it
    used (each recorded once, in order of first use). Reading a parameter through the tracer is
    what records it, so no unverified value can be used unseen."""

    def __init__(self, pack: RulePack) -> None:
        self.pack = pack
        self.lines: list[TraceLine] = []
        self.issues: list[Issue] = []
        self.unverified: list[str] = []
        self._unverified_issues: list[Issue] = []

    def add(
        self,
        code: str,
        label: str,
        amount_minor: int,
        *,
        inputs: tuple[str, ...],
        formula: str,
        parameter: DatedValue | None = None,
    ) -> int:
        """Append a line; returns its amount, so a computation reads as a chain of lines."""
        self.lines.append(TraceLine(code, label, amount_minor, inputs, formula, parameter))
        return amount_minor

    def round(self, exact: Fraction) -> int:
        """An exact amount rounded to a minor unit per the pack's rounding."""
        return round_fraction(exact, rounding=self.pack.rounding)

    def band_lines(
        self,
        prefix: str,
        *,
        income_code: str,
        income_minor: int,
        brackets: tuple[DatedValue, tuple[Bracket, ...]],
        scale: int,
    ) -> tuple[str, ...]:
        """One line per band, `prefix`.1, …: the band's rate on the part of the income in it,
        each rounded on its own. Returns the lines' codes."""
        value, table = brackets
        codes: list[str] = []
        for n, band in enumerate(bands(table, income_minor=income_minor, scale=scale), start=1):
            rate = format_rate(band.bracket.rate)
            low = format_minor(band.low_minor)
            upper = "" if band.up_minor is None else f" up to {format_minor(band.up_minor)}"
            if band.part_minor:
                formula = f"{rate} × ({format_minor(band.low_minor + band.part_minor)} − {low})"
            else:
                formula = f"{rate} × 0 (the income does not exceed {low})"
            codes.append(f"{prefix}.{n}")
            self.add(
                codes[-1],
                f"Band {n}: {rate} on the income above {low}{upper}",
                self.round(Fraction(band.bracket.rate) * band.part_minor),
                inputs=(income_code,),
                formula=formula,
                parameter=value,
            )
        return tuple(codes)

    def credits(
        self, *, tax_minor: int, prepaid_minor: int, withheld: list[tuple[str, int]] | None
    ) -> int:
        """Lines of the credits (tax withheld by employers, for a personal return; tax prepaid),
        their total and the balance. Returns the credits' total."""
        codes: list[str] = []
        amounts: list[int] = []
        if withheld is not None:
            codes.append("credits.withheld")
            amounts.append(
                self.add(
                    "credits.withheld",
                    "Tax withheld by employers",
                    sum(amount for _, amount in withheld),
                    inputs=tuple(pointer for pointer, _ in withheld),
                    formula=format_sum([amount for _, amount in withheld]),
                )
            )
        codes.append("credits.prepaid")
        amounts.append(
            self.add(
                "credits.prepaid",
                "Tax prepaid",
                prepaid_minor,
                inputs=("/payload/tax_prepaid_minor",),
                formula=format_minor(prepaid_minor),
            )
        )
        total = self.add(
            "credits.total",
            "Credits",
            sum(amounts),
            inputs=tuple(codes),
            formula=format_sum(amounts),
        )
        self.add(
            "balance",
            "Balance: the tax less the credits (below 0: owed to the taxpayer)",
            tax_minor - total,
            inputs=("tax.total", "credits.total"),
            formula=f"{format_minor(tax_minor)} − {format_minor(total)}",
        )
        return total

    def issue(self, code: str, severity: str, message: str, pointer: str) -> None:
        self.issues.append(Issue(code, severity, message, pointer))

    def unverified_issues(self) -> tuple[Issue, ...]:
        """One unverified_parameter warning per unverified parameter used."""
        return tuple(self._unverified_issues)

    def use(self, value: DatedValue) -> DatedValue:
        """Record that the computation uses `value`; returns it."""
        if value.status is Status.UNVERIFIED and value.name not in self.unverified:
            self.unverified.append(value.name)
            note = f": {value.note}" if value.note else ""
            self._unverified_issues.append(
                Issue(
                    ISSUE_UNVERIFIED,
                    WARNING,
                    f"the value of {value.name} in force since "
                    f"{format_date(self.pack, value.since)} is not confirmed from a primary "
                    f"source{note}",
                    "",
                )
            )
        return value

    def rate(self, name: str, *, on: date) -> tuple[DatedValue, Decimal]:
        """A rate in force on `on`, recorded. Raises RuleNotInForceError, RulePackError."""
        value = self.use(self.pack.rate_at(name, on=on))
        if not isinstance(value.value, Decimal):
            raise self._kind_error(value)
        return value, value.value

    def amount(self, name: str, *, on: date) -> tuple[DatedValue, int]:
        """An amount in force on `on`, recorded. Raises RuleNotInForceError, RulePackError."""
        value = self.use(self.pack.amount_at(name, on=on))
        if isinstance(value.value, bool) or not isinstance(value.value, int):
            raise self._kind_error(value)
        return value, value.value

    def text(self, name: str, *, on: date) -> tuple[DatedValue, str]:
        """A text in force on `on`, recorded. Raises RuleNotInForceError, RulePackError."""
        value = self.use(self.pack.text_at(name, on=on))
        if not isinstance(value.value, str):
            raise self._kind_error(value)
        return value, value.value

    def brackets(self, name: str, *, on: date) -> tuple[DatedValue, tuple[Bracket, ...]]:
        """Brackets in force on `on`, recorded. Raises RuleNotInForceError, RulePackError."""
        value = self.use(self.pack.brackets_at(name, on=on))
        if not isinstance(value.value, tuple):
            raise self._kind_error(value)
        return value, value.value

    def degressive(self, name: str, *, on: date) -> tuple[DatedValue, Degressive]:
        """A degressive amount in force on `on`, recorded. Raises RuleNotInForceError,
        RulePackError."""
        value = self.use(self.pack.degressive_at(name, on=on))
        if not isinstance(value.value, Degressive):
            raise self._kind_error(value)
        return value, value.value

    def _kind_error(self, value: DatedValue) -> RulePackError:
        return RulePackError(
            f"the value is not of kind {value.kind}",
            pack=self.pack.jurisdiction,
            pointer=value.name,
        )
