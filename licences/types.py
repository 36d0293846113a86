"""Licence types as data (docs/LICENCES.md, "Licence types"): licences/licence_types.toml.

A type names its issuing agency, the kinds of subject it may be issued to, its validity and
renewal window as durations in the jurisdiction's calendar, the fee service charged for a
renewal, the optional eligibility rules that apply, the shape of its numbers, and the source and
status (`enacted` | `unverified` | `illustrative`) of what it says. The loader checks every rule
and raises LicenceTypeFileError naming the key and the rule at the first problem; a loaded book is
immutable.

Pure except load_licence_types(Path) and default_licence_types(), which read a file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from licences.errors import LicenceTypeFileError
from payments.fees import load_default_fee_schedules
from signatures.canonical import JsonValue
from signatures.envelope import SubjectKind, parse_subject
from signatures.errors import SubjectError
from tax.rulepack import shipped_packs

LICENCE_TYPES_FORMAT = "pishkhan.licence_types/1"
DEFAULT_LICENCE_TYPES_RESOURCE = "licence_types.toml"  # inside the licences package
MAX_FILE_BYTES = 256_000
MAX_TYPES = 200
MAX_TEXT_CHARS = 300  # titles and source titles
MAX_NOTE_CHARS = 2_000
MAX_URL_CHARS = 500
MAX_PATTERN_CHARS = 100
MIN_PAYMENT_DAYS = 1
MAX_PAYMENT_DAYS = 90
MAX_DURATION_COUNT = 99  # years or months
MAX_DURATION_DAYS = 999
DURATION_UNITS = ("Y", "M", "D")
# The optional rules a type may list; the others (not_revoked, …) always apply.
OPTIONAL_RULES = ("no_unpaid_fines", "no_overdue_tax")
STATUSES = ("enacted", "unverified", "illustrative")
# The longest and shortest a unit can be, in days: a window must open after its term starts.
_MAX_DAYS_PER_UNIT = {"Y": 366, "M": 31, "D": 1}
_MIN_DAYS_PER_UNIT = {"Y": 365, "M": 28, "D": 1}

RULE_TOO_LARGE = "too_large"
RULE_NOT_TOML = "not_toml"
RULE_UNKNOWN_FORMAT = "unknown_format"
RULE_WRONG_TYPE = "wrong_type"
RULE_MISSING_MEMBER = "missing_member"
RULE_UNKNOWN_MEMBER = "unknown_member"
RULE_EMPTY = "empty"
RULE_TOO_MANY = "too_many"
RULE_TOO_LONG = "too_long"
RULE_INVALID_CODE = "invalid_code"
RULE_DUPLICATE_CODE = "duplicate_code"
RULE_UNKNOWN_JURISDICTION = "unknown_jurisdiction"
RULE_JURISDICTION_MISMATCH = "jurisdiction_mismatch"
RULE_INVALID_AGENCY = "invalid_agency"
RULE_INVALID_HOLDER_KIND = "invalid_holder_kind"
RULE_DUPLICATE_ENTRY = "duplicate_entry"
RULE_INVALID_DURATION = "invalid_duration"
RULE_WINDOW_BEFORE_TERM = "window_opens_before_term"
RULE_OUT_OF_RANGE = "out_of_range"
RULE_UNKNOWN_FEE_SERVICE = "unknown_fee_service"
RULE_UNKNOWN_RULE = "unknown_rule"
RULE_INVALID_PATTERN = "invalid_pattern"
RULE_INVALID_STATUS = "invalid_status"
RULE_INVALID_URL = "invalid_url"

_FILE_MEMBERS = {"format": True, "note": False, "types": True}  # name → required
_TYPE_MEMBERS = {
    "code": True,
    "title": True,
    "jurisdiction": True,
    "agency": True,
    "holder_kinds": True,
    "validity": True,
    "renew_from": True,
    "renew_until": True,
    "payment_days": True,
    "fee_service": False,
    "rules": True,
    "number_pattern": True,
    "status": True,
    "source_title": True,
    "source_url": False,
    "note": False,
}
# [0-9], never \d: \d also matches Persian and Arabic-Indic digits.
_CODE = re.compile(r"[a-z][a-z0-9-]{1,30}\.[a-z][a-z0-9-]{1,30}")
_DURATION = re.compile(r"P([1-9][0-9]{0,2})([YMD])")
_SERVICE_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}(?:\.[a-z][a-z0-9_]{0,31}){1,3}")
_HTTPS_URL = re.compile(r"https://[A-Za-z0-9.-]+(?:[/?#][\x21-\x7e]*)?")
# Classes that match far more than ASCII in Python's default (Unicode) mode.
_UNICODE_CLASSES = ("\\d", "\\w", "\\s", "\\D", "\\W", "\\S")


@dataclass(frozen=True)
class Duration:
    """A count of years, months or days: "P10Y", "P6M", "P90D"."""

    count: int
    unit: str  # "Y" | "M" | "D"

    def __post_init__(self) -> None:
        limit = MAX_DURATION_DAYS if self.unit == "D" else MAX_DURATION_COUNT
        if self.unit not in DURATION_UNITS or not 1 <= self.count <= limit:
            raise ValueError("a duration is 1..99 years or months, or 1..999 days")

    def __str__(self) -> str:
        return f"P{self.count}{self.unit}"

    @property
    def max_days(self) -> int:
        """The most days this duration can span, in either calendar."""
        return self.count * _MAX_DAYS_PER_UNIT[self.unit]

    @property
    def min_days(self) -> int:
        """The fewest days this duration can span, in either calendar."""
        return self.count * _MIN_DAYS_PER_UNIT[self.unit]


def parse_duration(text: str) -> Duration:
    """ "P<n>Y" | "P<n>M" (n 1..99) or "P<n>D" (n 1..999), no leading zeros, one unit only.

    Raises ValueError for anything else."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError('a duration is "P<n>Y", "P<n>M" or "P<n>D"')
    return Duration(count=int(match.group(1)), unit=match.group(2))


@dataclass(frozen=True)
class LicenceType:
    """One licence type of the book (see the module docstring and licence_types.toml)."""

    code: str  # "<jurisdiction>.<name>", e.g. "ir.driving"
    title: str
    jurisdiction: str  # a tax rule pack: "ir" | "ee"
    agency: str  # "agency:<id>"
    holder_kinds: frozenset[SubjectKind]
    validity: Duration
    renew_from: Duration  # the window opens this long before the expiry day
    renew_until: Duration  # and closes this long after it
    payment_days: int  # a renewal's fee is due this many days after the request
    fee_service: str | None  # a service code of payments' FeeBook; None: renewals are free
    rules: frozenset[str]  # a subset of OPTIONAL_RULES
    number_pattern: str  # a regex the licence number must fullmatch
    source_title: str
    source_url: str | None
    status: str  # one of STATUSES
    note: str = ""


@dataclass(frozen=True)
class LicenceTypeBook:
    """Every licence type, by code."""

    types: tuple[LicenceType, ...]
    _by_code: Mapping[str, LicenceType] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_code = {licence_type.code: licence_type for licence_type in self.types}
        if len(by_code) != len(self.types):
            raise ValueError("two licence types share a code")
        object.__setattr__(self, "_by_code", by_code)

    def get(self, code: str) -> LicenceType | None:
        return self._by_code.get(code)

    def codes(self) -> list[str]:
        return sorted(self._by_code)

    def agencies(self) -> list[str]:
        """Every issuing agency (subject text), sorted, each once."""
        return sorted({licence_type.agency for licence_type in self.types})


def load_licence_types(
    source: Path | bytes, *, fee_codes: Collection[str] | None = None
) -> LicenceTypeBook:
    """Load and check licence types from a file (Path) or its bytes.

    `fee_codes`, when given, are the service codes of the fee book in use: every fee_service
    must be one of them. Raises LicenceTypeFileError naming the key and rule of the first
    problem: too large, not UTF-8 TOML, unknown format, wrong types, missing or unknown members,
    too many types, bad or duplicate codes, a code whose prefix is not its jurisdiction, a
    jurisdiction without a tax rule pack, a bad agency, holder kind, duration, payment period,
    fee service, rule, number pattern, status or URL, over-long or empty text, a renewal window
    that opens before its term starts. Raises OSError when the file cannot be read.
    """
    if isinstance(source, Path):
        if source.stat().st_size > MAX_FILE_BYTES:  # refused before it is read
            raise _error("", RULE_TOO_LARGE, f"larger than {MAX_FILE_BYTES} bytes")
        source = source.read_bytes()
    if len(source) > MAX_FILE_BYTES:
        raise _error("", RULE_TOO_LARGE, f"larger than {MAX_FILE_BYTES} bytes")
    try:
        document: object = tomllib.loads(source.decode("utf-8"))
    except UnicodeDecodeError:
        raise _error("", RULE_NOT_TOML, "not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise _error("", RULE_NOT_TOML, f"not TOML: {exc}") from None
    obj = _members(document, _FILE_MEMBERS, key="")
    if obj["format"] != LICENCE_TYPES_FORMAT:
        raise _error("format", RULE_UNKNOWN_FORMAT, f"must be {LICENCE_TYPES_FORMAT!r}")
    if "note" in obj:
        _text(obj["note"], key="note", limit=MAX_NOTE_CHARS)
    items = obj["types"]
    if not isinstance(items, list):
        raise _error("types", RULE_WRONG_TYPE, "must be an array of tables")
    if not items:
        raise _error("types", RULE_EMPTY, "must not be empty")
    if len(items) > MAX_TYPES:
        raise _error("types", RULE_TOO_MANY, f"must have at most {MAX_TYPES} entries")
    types: list[LicenceType] = []
    for index, item in enumerate(items):
        key = f"types[{index}]"
        licence_type = _read_type(item, key=key, fee_codes=fee_codes)
        if any(other.code == licence_type.code for other in types):
            raise _error(f"{key}.code", RULE_DUPLICATE_CODE, "another type has this code")
        types.append(licence_type)
    return LicenceTypeBook(tuple(types))


@cache
def default_licence_types() -> LicenceTypeBook:
    """The types packaged with licences, checked against payments' packaged fee schedules;
    loaded once. Raises LicenceTypeFileError as load_licence_types."""
    data = resources.files("licences").joinpath(DEFAULT_LICENCE_TYPES_RESOURCE).read_bytes()
    return load_licence_types(data, fee_codes=load_default_fee_schedules().service_codes)


def licence_type_json(t: LicenceType) -> dict[str, JsonValue]:
    """The public description of a type (GET /v1/licences/types): no personal data in it."""
    holder_kinds: list[JsonValue] = [kind.value for kind in sorted(t.holder_kinds)]
    rules: list[JsonValue] = [rule for rule in OPTIONAL_RULES if rule in t.rules]
    return {
        "code": t.code,
        "title": t.title,
        "jurisdiction": t.jurisdiction,
        "agency": t.agency,
        "holder_kinds": holder_kinds,
        "validity": str(t.validity),
        "renew_from": str(t.renew_from),
        "renew_until": str(t.renew_until),
        "payment_days": t.payment_days,
        "fee_service": t.fee_service,
        "rules": rules,
        "number_pattern": t.number_pattern,
        "source_title": t.source_title,
        "source_url": t.source_url,
        "status": t.status,
        "note": t.note,
    }


# --- reading one type: each reader raises at the first problem -----------------------------------


def _error(key: str, rule: str, message: str) -> LicenceTypeFileError:
    return LicenceTypeFileError(message, key=key, rule=rule)


def _members(value: object, spec: Mapping[str, bool], *, key: str) -> dict[str, object]:
    """`value` as a table whose members follow `spec` (name → required)."""
    if not isinstance(value, dict):
        raise _error(key, RULE_WRONG_TYPE, "must be a table")
    for name in value:
        if name not in spec:
            raise _error(_join(key, name), RULE_UNKNOWN_MEMBER, "no such member")
    for name, required in spec.items():
        if required and name not in value:
            raise _error(_join(key, name), RULE_MISSING_MEMBER, "this member is required")
    return value


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _text(value: object, *, key: str, limit: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str):
        raise _error(key, RULE_WRONG_TYPE, "must be a string")
    if not value.strip():
        raise _error(key, RULE_EMPTY, "must not be empty")
    if len(value) > limit:
        raise _error(key, RULE_TOO_LONG, f"must be at most {limit} characters")
    return value


def _string_list(value: object, *, key: str, allow_empty: bool) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _error(key, RULE_WRONG_TYPE, "must be an array of strings")
    if not value and not allow_empty:
        raise _error(key, RULE_EMPTY, "must not be empty")
    if len(set(value)) != len(value):
        raise _error(key, RULE_DUPLICATE_ENTRY, "lists an entry twice")
    return [str(item) for item in value]


def _read_type(value: object, *, key: str, fee_codes: Collection[str] | None) -> LicenceType:
    obj = _members(value, _TYPE_MEMBERS, key=key)
    code = _text(obj["code"], key=f"{key}.code")
    if not _CODE.fullmatch(code):
        raise _error(f"{key}.code", RULE_INVALID_CODE, "must be '<jurisdiction>.<name>' [a-z0-9-]")
    jurisdiction = _read_jurisdiction(obj["jurisdiction"], code=code, key=key)
    validity = _duration(obj["validity"], key=f"{key}.validity")
    renew_from = _duration(obj["renew_from"], key=f"{key}.renew_from")
    if renew_from.max_days >= validity.min_days:
        message = "the renewal window must open after the term starts (renew_from < validity)"
        raise _error(f"{key}.renew_from", RULE_WINDOW_BEFORE_TERM, message)
    return LicenceType(
        code=code,
        title=_text(obj["title"], key=f"{key}.title"),
        jurisdiction=jurisdiction,
        agency=_read_agency(obj["agency"], key=f"{key}.agency"),
        holder_kinds=_read_holder_kinds(obj["holder_kinds"], key=f"{key}.holder_kinds"),
        validity=validity,
        renew_from=renew_from,
        renew_until=_duration(obj["renew_until"], key=f"{key}.renew_until"),
        payment_days=_read_payment_days(obj["payment_days"], key=f"{key}.payment_days"),
        fee_service=_read_fee_service(obj.get("fee_service"), key=key, fee_codes=fee_codes),
        rules=_read_rules(obj["rules"], key=f"{key}.rules"),
        number_pattern=_read_pattern(obj["number_pattern"], key=f"{key}.number_pattern"),
        source_title=_text(obj["source_title"], key=f"{key}.source_title"),
        source_url=_read_url(obj.get("source_url"), key=f"{key}.source_url"),
        status=_read_status(obj["status"], key=f"{key}.status"),
        note=_text(obj["note"], key=f"{key}.note", limit=MAX_NOTE_CHARS) if "note" in obj else "",
    )


def _read_jurisdiction(value: object, *, code: str, key: str) -> str:
    jurisdiction = _text(value, key=f"{key}.jurisdiction")
    if jurisdiction not in shipped_packs():
        message = "must be a jurisdiction with a tax rule pack"
        raise _error(f"{key}.jurisdiction", RULE_UNKNOWN_JURISDICTION, message)
    if code.partition(".")[0] != jurisdiction:
        message = "the code must start with the jurisdiction"
        raise _error(f"{key}.code", RULE_JURISDICTION_MISMATCH, message)
    return jurisdiction


def _read_agency(value: object, *, key: str) -> str:
    text = _text(value, key=key)
    try:
        subject = parse_subject(text)
    except SubjectError:
        subject = None
    if subject is None or subject.kind is not SubjectKind.AGENCY:
        raise _error(key, RULE_INVALID_AGENCY, "must be 'agency:<id>'")
    return text


def _read_holder_kinds(value: object, *, key: str) -> frozenset[SubjectKind]:
    kinds: set[SubjectKind] = set()
    for text in _string_list(value, key=key, allow_empty=False):
        try:
            kind = SubjectKind(text)
        except ValueError:
            kind = SubjectKind.AGENCY  # refused just below
        if kind is SubjectKind.AGENCY:
            message = "each must be a person or entity kind: ir-nid, ir-lid, ee-ik, ee-rg"
            raise _error(key, RULE_INVALID_HOLDER_KIND, message)
        kinds.add(kind)
    return frozenset(kinds)


def _duration(value: object, *, key: str) -> Duration:
    if not isinstance(value, str):
        raise _error(key, RULE_WRONG_TYPE, "must be a string")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _error(key, RULE_INVALID_DURATION, str(exc)) from None


def _read_payment_days(value: object, *, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _error(key, RULE_WRONG_TYPE, "must be an integer")
    if not MIN_PAYMENT_DAYS <= value <= MAX_PAYMENT_DAYS:
        message = f"must be within {MIN_PAYMENT_DAYS}..{MAX_PAYMENT_DAYS}"
        raise _error(key, RULE_OUT_OF_RANGE, message)
    return value


def _read_fee_service(value: object, *, key: str, fee_codes: Collection[str] | None) -> str | None:
    if value is None:
        return None
    service = _text(value, key=f"{key}.fee_service")
    known = _SERVICE_CODE.fullmatch(service) and (fee_codes is None or service in fee_codes)
    if not known:
        message = "must be a service code of the fee schedules"
        raise _error(f"{key}.fee_service", RULE_UNKNOWN_FEE_SERVICE, message)
    return service


def _read_rules(value: object, *, key: str) -> frozenset[str]:
    rules = _string_list(value, key=key, allow_empty=True)
    for rule in rules:
        if rule not in OPTIONAL_RULES:
            message = f"each must be one of {', '.join(OPTIONAL_RULES)}"
            raise _error(key, RULE_UNKNOWN_RULE, message)
    return frozenset(rules)


def _read_pattern(value: object, *, key: str) -> str:
    pattern = _text(value, key=key, limit=MAX_PATTERN_CHARS)
    if any(klass in pattern for klass in _UNICODE_CLASSES):
        message = "write ASCII classes such as [0-9]: \\d also matches Persian digits"
        raise _error(key, RULE_INVALID_PATTERN, message)
    try:
        compiled = re.compile(pattern)
    except re.error:
        raise _error(key, RULE_INVALID_PATTERN, "must be a regular expression") from None
    if compiled.fullmatch(""):
        raise _error(key, RULE_INVALID_PATTERN, "must not match an empty number")
    return pattern


def _read_status(value: object, *, key: str) -> str:
    status = _text(value, key=key)
    if status not in STATUSES:
        raise _error(key, RULE_INVALID_STATUS, f"must be one of {', '.join(STATUSES)}")
    return status


def _read_url(value: object, *, key: str) -> str | None:
    if value is None:
        return None
    url = _text(value, key=key, limit=MAX_URL_CHARS)
    if not _HTTPS_URL.fullmatch(url):
        raise _error(key, RULE_INVALID_URL, "must be an https URL")
    return url
