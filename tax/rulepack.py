"""Rule packs: a jurisdiction's tax parameters as dated, sourced data (docs/TAX.md, "Rule packs").

A pack is one TOML file under tax/packs/. Every parameter value is in force from a date (`since`,
written in the pack's own calendar) until a later value supersedes it, names its legal source and
carries a status (`enacted` or `unverified`). The loader checks everything the format says and
raises RulePackError naming the file and the place; a loaded pack is immutable. No rate or
threshold lives in Python code: the engine reads them all from here.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import jdatetime

from signatures.canonical import MAX_SAFE_INTEGER, JsonValue
from signatures.errors import FieldError
from tax.errors import RuleNotInForceError, RulePackError, TaxFieldError

MAX_PACK_BYTES = 1_000_000
MAX_PARAMS = 500
MAX_VALUES_PER_PARAM = 200
MAX_BRACKETS = 50
MAX_HOLIDAYS = 2_000
MAX_SOURCES = 500
MAX_TEXT_CHARS = 2_000
# Amounts stay integers the canonical JSON profile (I-JSON) represents exactly: a value shows up
# in the traces that are hashed into the ledger.
MAX_AMOUNT_MINOR = MAX_SAFE_INTEGER
MAX_COUNT = 100_000
MAX_DEADLINE_MONTHS = 36
MAX_REVISION = 10**9
MAX_RATE_CHARS = 20  # "0.000123456789…": a rate is a short decimal string
MIN_YEAR = 1000  # dates in a pack are four-digit years of its calendar
MAX_YEAR = 2999

CALENDARS = ("solar_hijri", "gregorian")
ROUNDINGS = {"down": ROUND_DOWN, "half_up": ROUND_HALF_UP}
RETURN_NAMES = ("personal", "corporate", "vat")
PERIOD_KINDS = ("year", "quarter", "month")
SUBJECT_KINDS = ("ir-nid", "ir-lid", "ee-ik", "ee-rg")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
KINDS = ("rate", "amount", "count", "text", "brackets", "degressive", "deadline")
# The strings a `text` parameter may hold, per parameter (spec §2 catalogue).
TEXT_CHOICES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "corporate.base": ("profit", "distribution"),
        "interest.unit": ("month", "day"),
        "interest.partial_month": ("pro_rata_days", "whole_months"),
        "invoice.rounding": ("half_up", "down"),
    }
)
# The kind each catalogue parameter must have; a name not listed (a new parameter) may have any.
CATALOGUE_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "personal.salary.monthly_brackets": "brackets",
        "personal.brackets": "brackets",
        "personal.exemption": "degressive",
        "personal.deductions.total_cap": "amount",
        "corporate.base": "text",
        "corporate.rate": "rate",
        "penalty.late_filing.personal": "rate",
        "penalty.late_filing.corporate": "rate",
        "interest.late_payment": "rate",
        "interest.unit": "text",
        "interest.partial_month": "text",
        "deadline.personal": "deadline",
        "deadline.corporate": "deadline",
        "payment_deadline.personal": "deadline",
        "payment_deadline.corporate": "deadline",
        # E-tax II: electronic invoices and VAT returns (docs/TAX.md, "Parameter catalogue").
        "invoice.rounding": "text",
        "invoice.response_window_days": "count",
        "invoice.submission_window_days": "count",
        "deadline.vat": "deadline",
        "payment_deadline.vat": "deadline",
        "penalty.late_filing.vat": "rate",
        "interest.late_payment.vat": "rate",
    }
)
DEDUCTION_PREFIX = "personal.deductions."  # every name under it is an amount (a cap)
VAT_RATE_PREFIX = "vat.rate."  # every name under it is a rate; the rest is the VAT category

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_RATE = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")


class Status(StrEnum):
    ENACTED = "enacted"
    UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Source:
    key: str
    citation: str
    url: str | None


@dataclass(frozen=True)
class Bracket:
    """One band: the rate on income in (previous up_to_minor, up_to_minor]; None = open-ended."""

    up_to_minor: int | None
    rate: Decimal


@dataclass(frozen=True)
class Degressive:
    """An amount (an exemption) of full_minor up to from_minor, falling linearly to 0 at to_minor;
    from_minor and to_minor are both None for a flat amount."""

    full_minor: int
    from_minor: int | None
    to_minor: int | None

    def amount_for(self, income_minor: int, *, rounding: str) -> int:
        """The amount for this income, rounded per `rounding` ("down" | "half_up").

        Raises ValueError for an unknown rounding."""
        if self.from_minor is None or self.to_minor is None or income_minor <= self.from_minor:
            return self.full_minor
        if income_minor >= self.to_minor:
            return 0
        # Exact arithmetic first, one rounding at the end (the pack's rule for every amount).
        exact = self.full_minor - Fraction(
            self.full_minor * (income_minor - self.from_minor), self.to_minor - self.from_minor
        )
        return round_fraction(exact, rounding=rounding)


@dataclass(frozen=True)
class Deadline:
    """months_after_period_end months after the period's last month, on `day` (0 = last day)."""

    months_after_period_end: int
    day: int


ParamValue = Decimal | int | str | tuple[Bracket, ...] | Degressive | Deadline


@dataclass(frozen=True)
class DatedValue:
    name: str
    kind: str
    value: ParamValue
    since: date
    source: Source
    status: Status
    note: str

    def value_json(self) -> JsonValue:
        """The value as JSON: rates as decimal strings, brackets as a list of objects, …"""
        value = self.value
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, int | str):
            return value
        if isinstance(value, Degressive):
            out: dict[str, JsonValue] = {"full_minor": value.full_minor}
            if value.from_minor is not None and value.to_minor is not None:
                out["from_minor"] = value.from_minor
                out["to_minor"] = value.to_minor
            return out
        if isinstance(value, Deadline):
            return {"months_after_period_end": value.months_after_period_end, "day": value.day}
        bands: list[JsonValue] = []
        for band in value:
            item: dict[str, JsonValue] = {"rate": str(band.rate)}
            if band.up_to_minor is not None:
                item["up_to_minor"] = band.up_to_minor
            bands.append(item)
        return bands


@dataclass(frozen=True)
class ReturnKind:
    name: str
    period: str
    subjects: frozenset[str]
    first_period: str
    deadline: str
    payment_deadline: str


@dataclass(frozen=True)
class Holiday:
    day: date
    name: str
    source: Source


@dataclass(frozen=True)
class RulePack:
    jurisdiction: str
    title: str
    revision: int
    digest: str
    currency: str
    calendar: str
    tax_agency: str
    timezone: str  # IANA name: the zone whose calendar day a filing is made on
    weekend: frozenset[int]
    rounding: str
    holidays: Mapping[date, Holiday]
    returns: Mapping[str, ReturnKind]
    sources: Mapping[str, Source]
    params: Mapping[str, tuple[DatedValue, ...]]  # each sorted by since, strictly increasing

    @property
    def version(self) -> str:
        return f"{self.jurisdiction}-r{self.revision}-{self.digest[:12]}"

    def local_date(self, at: datetime) -> date:
        """The calendar day `at` (an aware datetime) falls on in the pack's time zone: a return
        accepted at 23:00 in Tehran on the deadline day is on time, whatever the UTC date."""
        return at.astimezone(ZoneInfo(self.timezone)).date()

    def as_json(self) -> dict[str, JsonValue]:
        """The whole pack as JSON: its head, returns, sources, holidays and every dated value of
        every parameter, with dates in the pack's calendar (and ISO beside Jalali ones)."""
        return pack_json(self)

    def has(self, name: str) -> bool:
        return name in self.params

    def value_at(self, name: str, *, on: date) -> DatedValue:
        """The value of `name` in force on `on`: the last one with since ≤ on.

        Raises RuleNotInForceError when the pack lacks the parameter or on is before its first
        value."""
        found: DatedValue | None = None
        for value in self.params.get(name, ()):
            if value.since > on:
                break
            found = value
        if found is None:
            raise RuleNotInForceError(jurisdiction=self.jurisdiction, name=name, on=on.isoformat())
        return found

    def _typed_at(self, name: str, kind: str, on: date) -> DatedValue:
        value = self.value_at(name, on=on)
        if value.kind != kind:
            raise RulePackError(
                f"parameter is of kind {value.kind}, not {kind}",
                pack=self.jurisdiction,
                pointer=f"params.{name}.kind",
            )
        return value

    def rate_at(self, name: str, *, on: date) -> DatedValue:
        """value_at, checked to be a rate; raises RulePackError for another kind."""
        return self._typed_at(name, "rate", on)

    def amount_at(self, name: str, *, on: date) -> DatedValue:
        """value_at, checked to be an amount; raises RulePackError for another kind."""
        return self._typed_at(name, "amount", on)

    def count_at(self, name: str, *, on: date) -> DatedValue:
        """value_at, checked to be a count; raises RulePackError for another kind."""
        return self._typed_at(name, "count", on)

    def text_at(self, name: str, *, on: date) -> DatedValue:
        """value_at, checked to be a text; raises RulePackError for another kind."""
        return self._typed_at(name, "text", on)

    def brackets_at(self, name: str, *, on: date) -> DatedValue:
        """value_at, checked to be brackets; raises RulePackError for another kind."""
        return self._typed_at(name, "brackets", on)

    def degressive_at(self, name: str, *, on: date) -> DatedValue:
        """value_at, checked to be degressive; raises RulePackError for another kind."""
        return self._typed_at(name, "degressive", on)

    def deadline_at(self, name: str, *, on: date) -> DatedValue:
        """value_at, checked to be a deadline; raises RulePackError for another kind."""
        return self._typed_at(name, "deadline", on)

    def vat_rates_at(self, *, on: date) -> dict[str, DatedValue]:
        """Every VAT rate in force on `on`, by category ("standard" for `vat.rate.standard`).

        A category whose first value comes after `on` is left out, so the result may be empty.
        Raises RulePackError only for a `vat.rate.*` parameter that is not a rate, which the
        loader never lets through."""
        rates: dict[str, DatedValue] = {}
        for name in sorted(self.params):
            if not name.startswith(VAT_RATE_PREFIX):
                continue
            try:
                rates[name.removeprefix(VAT_RATE_PREFIX)] = self.rate_at(name, on=on)
            except RuleNotInForceError:
                continue  # not yet in force on that day: the category is not offered
        return rates

    def round_minor(self, value: Decimal) -> int:
        """value rounded to a whole minor unit per the pack's rounding ("down" is toward zero)."""
        context = Context(prec=80)  # room for 10**18 × long rates without InvalidOperation
        return int(value.quantize(Decimal(1), rounding=ROUNDINGS[self.rounding], context=context))

    def bounds(self, name: str) -> tuple[Decimal, Decimal]:
        """The lowest and highest rate of a rate or brackets parameter over all its values.

        Raises RuleNotInForceError for an unknown name, RulePackError for another kind."""
        values = self.params.get(name)
        if not values:
            raise RuleNotInForceError(jurisdiction=self.jurisdiction, name=name, on="any date")
        rates: list[Decimal] = []
        for value in values:
            if isinstance(value.value, Decimal):
                rates.append(value.value)
            elif isinstance(value.value, tuple):
                rates.extend(band.rate for band in value.value)
            else:
                raise RulePackError(
                    f"parameter is of kind {value.kind}, which has no rates",
                    pack=self.jurisdiction,
                    pointer=f"params.{name}.kind",
                )
        return min(rates), max(rates)


def round_fraction(value: Fraction, *, rounding: str) -> int:
    """An exact value rounded to an integer: "down" toward zero, "half_up" half away from zero.

    Raises ValueError for an unknown rounding."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}")
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    if rounding == "half_up":
        magnitude += Fraction(1, 2)
    return sign * (magnitude.numerator // magnitude.denominator)


def date_from_text(calendar: str, text: str) -> date:
    """A "YYYY-MM-DD" date written in `calendar` ("solar_hijri" | "gregorian"), as a Gregorian date.

    Raises ValueError saying which rule the text breaks."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError("invalid_format: a date is written YYYY-MM-DD")
    year, month, day = (int(group) for group in match.groups())
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"out_of_range: the year must be within {MIN_YEAR}..{MAX_YEAR}")
    try:
        if calendar == "solar_hijri":
            gregorian: date = jdatetime.date(year, month, day).togregorian()
            return gregorian
        if calendar == "gregorian":
            return date(year, month, day)
    except ValueError:
        raise ValueError(f"invalid_date: no such day in the {calendar} calendar") from None
    raise ValueError(f"unknown calendar {calendar!r}")


def date_to_text(calendar: str, day: date) -> str:
    """`day` written "YYYY-MM-DD" in `calendar`. Raises ValueError for an unknown calendar."""
    if calendar == "solar_hijri":
        jalali = jdatetime.date.fromgregorian(date=day)
        return f"{jalali.year:04d}-{jalali.month:02d}-{jalali.day:02d}"
    if calendar == "gregorian":
        return day.isoformat()
    raise ValueError(f"unknown calendar {calendar!r}")


# --- loading --------------------------------------------------------------------------------------


def load_pack(path: Path) -> RulePack:
    """Load and check the pack at `path`. Raises RulePackError naming the file and the place."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RulePackError(f"cannot read: {exc.strerror}", pack=path.name, pointer="") from None
    return parse_pack(data, name=path.name)


def parse_pack(data: bytes, *, name: str) -> RulePack:
    """Check and build a pack from a file's bytes; `name` is the file name used in errors.

    Raises RulePackError naming `name` and the place (a dotted path) of the first problem."""
    if len(data) > MAX_PACK_BYTES:
        raise RulePackError(f"larger than {MAX_PACK_BYTES} bytes", pack=name, pointer="")
    try:
        raw: object = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RulePackError("not UTF-8", pack=name, pointer="") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulePackError(f"not TOML: {exc}", pack=name, pointer="") from None
    from tax.rulepack_check import build_pack  # it builds RulePack values: imported when used

    return build_pack(raw, name=name, digest=hashlib.sha256(data).hexdigest())


@cache
def shipped_packs() -> Mapping[str, RulePack]:
    """The packs shipped in tax/packs/*.toml, by jurisdiction, loaded once.

    Raises RulePackError when a shipped pack is malformed or two share a jurisdiction."""
    packs: dict[str, RulePack] = {}
    folder = resources.files("tax").joinpath("packs")
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".toml"):
            continue
        pack = parse_pack(entry.read_bytes(), name=entry.name)
        if pack.jurisdiction in packs:
            raise RulePackError("jurisdiction shipped twice", pack=entry.name, pointer="pack")
        packs[pack.jurisdiction] = pack
    return MappingProxyType(packs)


def pack_for(jurisdiction: str) -> RulePack:
    """The shipped pack of `jurisdiction`.

    Raises TaxFieldError at /payload/jurisdiction, rule unknown_jurisdiction, when none ships."""
    pack = shipped_packs().get(jurisdiction)
    if pack is None:
        raise TaxFieldError(
            (
                FieldError(
                    pointer="/payload/jurisdiction",
                    rule="unknown_jurisdiction",
                    message="no rule pack is shipped for this jurisdiction",
                ),
            )
        )
    return pack


def parse_rate(text: str) -> Decimal:
    """A rate written as a decimal string within 0..1. Raises ValueError naming the rule."""
    if len(text) > MAX_RATE_CHARS or _RATE.fullmatch(text) is None:
        raise ValueError('a rate is a decimal string such as "0.025"')
    try:
        rate = Decimal(text)
    except InvalidOperation:
        raise ValueError("a rate is a decimal string") from None
    if rate > 1:
        raise ValueError("a rate is within 0..1")
    return rate


def _day_json(pack: RulePack, day: date) -> JsonValue:
    if pack.calendar == "gregorian":
        return day.isoformat()
    return {"date": day.isoformat(), pack.calendar: date_to_text(pack.calendar, day)}


def _source_json(source: Source) -> dict[str, JsonValue]:
    return {"key": source.key, "citation": source.citation, "url": source.url}


def pack_json(pack: RulePack) -> dict[str, JsonValue]:
    """RulePack.as_json: the pack as published at GET /v1/tax/packs/{jurisdiction}."""
    params: dict[str, JsonValue] = {
        name: [
            {
                "kind": v.kind,
                "since": _day_json(pack, v.since),
                "value": v.value_json(),
                "source": v.source.key,
                "status": v.status.value,
                "note": v.note,
            }
            for v in values
        ]
        for name, values in sorted(pack.params.items())
    }
    returns: dict[str, JsonValue] = {
        name: {
            "period": r.period,
            "subjects": list[JsonValue](sorted(r.subjects)),
            "first_period": r.first_period,
            "deadline": r.deadline,
            "payment_deadline": r.payment_deadline,
        }
        for name, r in sorted(pack.returns.items())
    }
    return {
        "jurisdiction": pack.jurisdiction,
        "title": pack.title,
        "version": pack.version,
        "digest": pack.digest,
        "currency": pack.currency,
        "calendar": pack.calendar,
        "timezone": pack.timezone,
        "tax_agency": pack.tax_agency,
        "weekend": [WEEKDAYS[d] for d in sorted(pack.weekend)],
        "rounding": pack.rounding,
        "returns": returns,
        "sources": {k: _source_json(s) for k, s in sorted(pack.sources.items())},
        "holidays": [
            {"day": _day_json(pack, h.day), "name": h.name, "source": h.source.key}
            for _, h in sorted(pack.holidays.items())
        ],
        "params": params,
    }
