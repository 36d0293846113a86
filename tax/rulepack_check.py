"""The checker of rule-pack files (tax.rulepack.parse_pack calls build_pack): it walks a parsed
TOML document against the format of docs/TAX.md, "Rule packs", and builds the immutable RulePack,
raising RulePackError naming the file and the place (a dotted path) of the first problem."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tax.errors import RulePackError
from tax.rulepack import (
    CALENDARS,
    CATALOGUE_KINDS,
    DEDUCTION_PREFIX,
    KINDS,
    MAX_AMOUNT_MINOR,
    MAX_BRACKETS,
    MAX_COUNT,
    MAX_DEADLINE_MONTHS,
    MAX_HOLIDAYS,
    MAX_PARAMS,
    MAX_REVISION,
    MAX_SOURCES,
    MAX_TEXT_CHARS,
    MAX_VALUES_PER_PARAM,
    PERIOD_KINDS,
    RETURN_NAMES,
    ROUNDINGS,
    SUBJECT_KINDS,
    TEXT_CHOICES,
    VAT_RATE_PREFIX,
    WEEKDAYS,
    Bracket,
    DatedValue,
    Deadline,
    Degressive,
    Holiday,
    ParamValue,
    ReturnKind,
    RulePack,
    Source,
    Status,
    date_from_text,
    parse_rate,
)

_KEY = re.compile(r"[a-z0-9-]+")
_PARAM_NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")
_URL = re.compile(r"https?://\S+")
_AGENCY = re.compile(r"agency:[a-z0-9-]{1,63}")
_JURISDICTION = re.compile(r"[a-z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
# The label of a return's first_period, by the return's period kind (tax.calendar reads them).
_LABELS = {
    "year": re.compile(r"[0-9]{4}"),
    "quarter": re.compile(r"[0-9]{4}-Q[1-4]"),
    "month": re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])"),
}
_HEAD_KEYS = ("jurisdiction", "title", "revision", "currency", "calendar", "tax_agency", "weekend",
              "rounding")  # fmt: skip
# Optional: the IANA zone whose calendar day a filing is made on; UTC when absent.
_DEFAULT_TIMEZONE = "UTC"
_RETURN_KEYS = ("period", "subjects", "first_period", "deadline", "payment_deadline")
_TIMEZONE = re.compile(r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)*")


# --- checking a parsed TOML document; each helper names the place of the first problem -----------


@dataclass(frozen=True)
class _Reader:
    """Checks the parts of one parsed pack file; every failure names the file and the place."""

    pack: str
    calendar: str = "gregorian"
    sources: Mapping[str, Source] = field(default_factory=lambda: MappingProxyType({}))

    def fail(self, at: str, message: str) -> NoReturn:
        raise RulePackError(message, pack=self.pack, pointer=at)

    def table(
        self, raw: object, at: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> dict[str, object]:
        if not isinstance(raw, dict):
            self.fail(at, "must be a table")
        table: dict[str, object] = {str(key): value for key, value in raw.items()}
        for key in table:
            if key not in required and key not in optional:
                self.fail(_join(at, key), "unknown key")
        for key in required:
            if key not in table:
                self.fail(_join(at, key), "is required")
        return table

    def named(
        self, raw: object, at: str, pattern: re.Pattern[str], limit: int
    ) -> dict[str, object]:
        """A table of tables keyed by names matching pattern (sources, params)."""
        if not isinstance(raw, dict):
            self.fail(at, "must be a table")
        if len(raw) > limit:
            self.fail(at, f"more than {limit} entries")
        for key in raw:
            self.text(key, _join(at, str(key)), pattern)
        return {str(key): value for key, value in raw.items()}

    def text(self, raw: object, at: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(raw, str) or not raw.strip():
            self.fail(at, "must be a non-empty string")
        if len(raw) > MAX_TEXT_CHARS:
            self.fail(at, f"longer than {MAX_TEXT_CHARS} characters")
        if pattern is not None and pattern.fullmatch(raw) is None:
            self.fail(at, f"must match {pattern.pattern}")
        return raw

    def choice(self, raw: object, at: str, choices: tuple[str, ...]) -> str:
        if raw not in choices:
            self.fail(at, f"must be one of {', '.join(choices)}")
        return str(raw)

    def integer(self, raw: object, at: str, high: int = MAX_AMOUNT_MINOR) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.fail(at, "must be an integer")
        if not 0 <= raw <= high:
            self.fail(at, f"must be within 0..{high}")
        return raw

    def array(self, raw: object, at: str, max_items: int) -> list[object]:
        if not isinstance(raw, list):
            self.fail(at, "must be an array")
        if not raw or len(raw) > max_items:
            self.fail(at, f"must have 1..{max_items} items")
        return list(raw)

    def day(self, raw: object, at: str) -> date:
        if not isinstance(raw, str):
            # An unquoted TOML date is read as Gregorian whatever the pack's calendar.
            self.fail(at, 'a date is a quoted "YYYY-MM-DD" string in the pack\'s calendar')
        try:
            return date_from_text(self.calendar, raw)
        except ValueError as exc:
            self.fail(at, str(exc))

    def source(self, raw: object, at: str) -> Source:
        key = self.text(raw, at)
        if key not in self.sources:
            self.fail(at, "unknown source key (not in [sources])")
        return self.sources[key]

    def rate(self, raw: object, at: str) -> Decimal:
        if not isinstance(raw, str):
            # TOML floats are binary: a rate is written as a string and read as a Decimal.
            self.fail(at, 'a rate is a decimal string such as "0.025"')
        try:
            return parse_rate(raw)
        except ValueError as exc:
            self.fail(at, str(exc))

    def value(self, raw: object, at: str, *, name: str, kind: str) -> ParamValue:
        if kind == "rate":
            return self.rate(raw, at)
        if kind in ("amount", "count"):
            return self.integer(raw, at, MAX_AMOUNT_MINOR if kind == "amount" else MAX_COUNT)
        if kind == "text":
            return self.choice(raw, at, TEXT_CHOICES[name])
        if kind == "brackets":
            return self.brackets(raw, at)
        if kind == "degressive":
            return self.degressive(raw, at)
        entry = self.table(raw, at, ("months_after_period_end", "day"))
        return Deadline(
            months_after_period_end=self.integer(
                entry["months_after_period_end"],
                f"{at}.months_after_period_end",
                MAX_DEADLINE_MONTHS,
            ),
            day=self.integer(entry["day"], f"{at}.day", 31),
        )

    def brackets(self, raw: object, at: str) -> tuple[Bracket, ...]:
        items = self.array(raw, at, MAX_BRACKETS)
        bands: list[Bracket] = []
        previous = 0
        for index, item in enumerate(items):
            where = f"{at}[{index}]"
            entry = self.table(item, where, ("rate",), ("up_to_minor",))
            up_to: int | None = None
            if index == len(items) - 1:
                if "up_to_minor" in entry:
                    self.fail(f"{where}.up_to_minor", "the last band is open-ended: no up_to_minor")
            elif "up_to_minor" not in entry:
                self.fail(f"{where}.up_to_minor", "every band but the last needs up_to_minor")
            else:
                up_to = self.integer(entry["up_to_minor"], f"{where}.up_to_minor")
                if up_to <= previous:
                    self.fail(f"{where}.up_to_minor", "up_to_minor must increase strictly from 0")
                previous = up_to
            bands.append(Bracket(up_to_minor=up_to, rate=self.rate(entry["rate"], f"{where}.rate")))
        return tuple(bands)

    def degressive(self, raw: object, at: str) -> Degressive:
        entry = self.table(raw, at, ("full_minor",), ("from_minor", "to_minor"))
        got = {key: self.integer(value, f"{at}.{key}") for key, value in entry.items()}
        if ("from_minor" in got) != ("to_minor" in got):
            self.fail(at, "from_minor and to_minor are both given or both absent")
        if "from_minor" in got and got["from_minor"] >= got["to_minor"]:
            self.fail(f"{at}.to_minor", "to_minor must be above from_minor")
        return Degressive(got["full_minor"], got.get("from_minor"), got.get("to_minor"))


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def build_pack(raw: object, *, name: str, digest: str) -> RulePack:
    """The RulePack of a parsed pack file. Raises RulePackError naming `name` and the place."""
    reader = _Reader(name)
    top = reader.table(raw, "", ("pack", "sources", "returns", "params"), ("holidays",))
    head = reader.table(top["pack"], "pack", _HEAD_KEYS, ("timezone",))
    reader = _Reader(
        name,
        calendar=reader.choice(head["calendar"], "pack.calendar", CALENDARS),
        sources=MappingProxyType(_sources(reader, top["sources"])),
    )
    params = _params(reader, top["params"])
    return RulePack(
        jurisdiction=reader.text(head["jurisdiction"], "pack.jurisdiction", _JURISDICTION),
        title=reader.text(head["title"], "pack.title"),
        revision=_revision(reader, head["revision"]),
        digest=digest,
        currency=reader.text(head["currency"], "pack.currency", _CURRENCY),
        calendar=reader.calendar,
        tax_agency=reader.text(head["tax_agency"], "pack.tax_agency", _AGENCY),
        timezone=_timezone(reader, head.get("timezone", _DEFAULT_TIMEZONE)),
        weekend=_weekend(reader, head["weekend"]),
        rounding=reader.choice(head["rounding"], "pack.rounding", tuple(ROUNDINGS)),
        holidays=MappingProxyType(_holidays(reader, top.get("holidays"))),
        returns=MappingProxyType(_returns(reader, top["returns"], params=params)),
        sources=reader.sources,
        params=MappingProxyType(params),
    )


def _revision(reader: _Reader, raw: object) -> int:
    revision = reader.integer(raw, "pack.revision", MAX_REVISION)
    if revision < 1:
        reader.fail("pack.revision", "revisions count from 1")
    return revision


def _weekend(reader: _Reader, raw: object) -> frozenset[int]:
    if not isinstance(raw, list):
        reader.fail("pack.weekend", "must be an array of weekday names")
    days: set[int] = set()
    for index, item in enumerate(raw):
        day = WEEKDAYS.index(reader.choice(item, f"pack.weekend[{index}]", WEEKDAYS))
        if day in days:
            reader.fail(f"pack.weekend[{index}]", "weekday listed twice")
        days.add(day)
    if len(days) == len(WEEKDAYS):
        reader.fail("pack.weekend", "a week needs at least one working day")
    return frozenset(days)


def _sources(reader: _Reader, raw: object) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    for key, item in reader.named(raw, "sources", _KEY, MAX_SOURCES).items():
        at = f"sources.{key}"
        entry = reader.table(item, at, ("citation",), ("url",))
        url = entry.get("url")
        sources[key] = Source(
            key=key,
            citation=reader.text(entry["citation"], f"{at}.citation"),
            url=None if url is None else reader.text(url, f"{at}.url", _URL),
        )
    return sources


def _params(reader: _Reader, raw: object) -> dict[str, tuple[DatedValue, ...]]:
    params: dict[str, tuple[DatedValue, ...]] = {}
    for name, item in reader.named(raw, "params", _PARAM_NAME, MAX_PARAMS).items():
        at = f"params.{name}"
        entry = reader.table(item, at, ("kind", "values"))
        kind = reader.choice(entry["kind"], f"{at}.kind", KINDS)
        expected = _expected_kind(name)
        if expected is not None and kind != expected:
            reader.fail(f"{at}.kind", f"the catalogue says {name} is of kind {expected}")
        if name.startswith(VAT_RATE_PREFIX) and "." in name.removeprefix(VAT_RATE_PREFIX):
            # vat_rates_at keys rates by what follows the prefix: one plain category name.
            reader.fail(at, "a VAT category is a single name: vat.rate.<category>")
        if kind == "text" and name not in TEXT_CHOICES:
            reader.fail(f"{at}.kind", "no allowed texts are known for this parameter")
        values: list[DatedValue] = []
        for index, value in enumerate(
            reader.array(entry["values"], f"{at}.values", MAX_VALUES_PER_PARAM)
        ):
            dated = _dated(reader, value, f"{at}.values[{index}]", name=name, kind=kind)
            if values and dated.since <= values[-1].since:
                reader.fail(f"{at}.values[{index}].since", "since must increase strictly")
            values.append(dated)
        params[name] = tuple(values)
    return params


def _expected_kind(name: str) -> str | None:
    """The kind the catalogue fixes for `name`, or None when any kind but text is allowed."""
    if name.startswith(DEDUCTION_PREFIX):
        return "amount"
    if name.startswith(VAT_RATE_PREFIX):
        return "rate"
    return CATALOGUE_KINDS.get(name)


def _dated(reader: _Reader, raw: object, at: str, *, name: str, kind: str) -> DatedValue:
    entry = reader.table(raw, at, ("since", "value", "source", "status"), ("note",))
    note = entry.get("note")
    return DatedValue(
        name=name,
        kind=kind,
        value=reader.value(entry["value"], f"{at}.value", name=name, kind=kind),
        since=reader.day(entry["since"], f"{at}.since"),
        source=reader.source(entry["source"], f"{at}.source"),
        status=Status(reader.choice(entry["status"], f"{at}.status", tuple(Status))),
        note="" if note is None else reader.text(note, f"{at}.note"),
    )


def _returns(
    reader: _Reader, raw: object, *, params: Mapping[str, tuple[DatedValue, ...]]
) -> dict[str, ReturnKind]:
    returns: dict[str, ReturnKind] = {}
    for name, item in reader.table(raw, "returns", (), RETURN_NAMES).items():
        at = f"returns.{name}"
        entry = reader.table(item, at, _RETURN_KEYS)
        period = reader.choice(entry["period"], f"{at}.period", PERIOD_KINDS)
        subjects = reader.array(entry["subjects"], f"{at}.subjects", len(SUBJECT_KINDS))
        for index, subject in enumerate(subjects):
            reader.choice(subject, f"{at}.subjects[{index}]", SUBJECT_KINDS)
        for key in ("deadline", "payment_deadline"):
            param = reader.text(entry[key], f"{at}.{key}")
            if param not in params or params[param][0].kind != "deadline":
                reader.fail(f"{at}.{key}", "must name a parameter of kind deadline")
        returns[name] = ReturnKind(
            name=name,
            period=period,
            subjects=frozenset(str(subject) for subject in subjects),
            first_period=reader.text(entry["first_period"], f"{at}.first_period", _LABELS[period]),
            deadline=str(entry["deadline"]),
            payment_deadline=str(entry["payment_deadline"]),
        )
    return returns


def _holidays(reader: _Reader, raw: object | None) -> dict[date, Holiday]:
    if raw is None:
        return {}
    table = reader.table(raw, "holidays", ("source", "dates"))
    default = reader.source(table["source"], "holidays.source")
    holidays: dict[date, Holiday] = {}
    for index, item in enumerate(reader.array(table["dates"], "holidays.dates", MAX_HOLIDAYS)):
        at = f"holidays.dates[{index}]"
        entry = reader.table(item, at, ("date", "name"), ("source",))
        day = reader.day(entry["date"], f"{at}.date")
        if day in holidays:
            reader.fail(f"{at}.date", "day listed twice: give one entry naming both")
        source = reader.source(entry["source"], f"{at}.source") if "source" in entry else default
        holidays[day] = Holiday(
            day=day, name=reader.text(entry["name"], f"{at}.name"), source=source
        )
    return dict(sorted(holidays.items()))


def _timezone(reader: _Reader, raw: object) -> str:
    name = reader.text(raw, "pack.timezone", _TIMEZONE)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        reader.fail("pack.timezone", "must be an IANA time zone name, e.g. Asia/Tehran")
    return name
