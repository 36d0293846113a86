"""Fee schedules as dated data with their legal source (after OpenFisca parameters).

Each service has a list of periods, in order and without gaps: [valid_from, valid_until) with
valid_until null on the last, open-ended period. A period either sets an amount (integer minor
units and an accepted ISO 4217 code) or documents a suspension (no fee can be charged while it
lasts); either way it names the legal source it comes from. The fee that applies to a
transaction is the one in force on its date (the caller's legal calendar date, Asia/Tehran for
Iranian agencies): fees are never prorated and never chosen by the time of payment.

The file format is documented in docs/PAYMENTS.md ("Fee schedules"). The packaged
payments/fee_schedules.json is illustrative data, not law.

Pure except load_fee_schedules(Path) and load_default_fee_schedules(), which read a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import NoReturn

from payments.currency import is_accepted_currency
from payments.errors import FeeNotFoundError, PaymentFieldError
from signatures import canonical
from signatures.canonical import JsonValue, join_pointer
from signatures.envelope import add_field_error
from signatures.errors import CanonicalFormError, FieldError

FEE_SCHEDULES_FORMAT = "pishkhan.fee_schedules/1"
DEFAULT_FEE_SCHEDULES_RESOURCE = "fee_schedules.json"  # inside the payments package
MAX_FEE_FILE_BYTES = canonical.MAX_JSON_BYTES  # the JSON profile's limit: split larger books
MAX_SERVICES = 200
MAX_PERIODS_PER_SERVICE = 100
MAX_FEE_AMOUNT_MINOR = canonical.MAX_SAFE_INTEGER  # enforced by parse_json (integer_out_of_range)
MAX_TEXT_CHARS = 300  # titles, references, suspension reasons
MAX_NOTE_CHARS = 2000
MAX_URL_CHARS = 500
MAX_REPORTED_ERRORS = 16  # one refusal lists at most this many problems

RULE_WRONG_TYPE = "wrong_type"
RULE_MISSING_MEMBER = "missing_member"
RULE_UNKNOWN_MEMBER = "unknown_member"
RULE_UNKNOWN_FORMAT = "unknown_format"
RULE_TOO_MANY = "too_many"
RULE_TOO_LONG = "too_long"
RULE_EMPTY = "empty"
RULE_INVALID_SERVICE_CODE = "invalid_service_code"
RULE_DUPLICATE_SERVICE_CODE = "duplicate_service_code"
RULE_INVALID_DATE = "invalid_date"
RULE_EMPTY_PERIOD = "empty_period"
RULE_PERIODS_OVERLAP = "periods_overlap"
RULE_PERIODS_GAP = "periods_gap"
RULE_NON_POSITIVE_AMOUNT = "non_positive_amount"
RULE_UNKNOWN_CURRENCY = "unknown_currency"
RULE_AMOUNT_AND_SUSPENSION = "amount_and_suspension"
RULE_INVALID_URL = "invalid_url"

REASON_UNKNOWN_SERVICE = "unknown_service"
REASON_NOT_IN_FORCE = "not_in_force"
REASON_SUSPENDED = "suspended"

_FILE_MEMBERS = {"format": True, "note": False, "services": True}  # name → required
_SERVICE_MEMBERS = {"service_code": True, "title": True, "periods": True}
_PERIOD_MEMBERS = {
    "valid_from": True,
    "valid_until": True,
    "amount_minor": False,
    "currency": False,
    "suspended": False,
    "legal_source": True,
}
_SOURCE_MEMBERS = {"title": True, "reference": True, "url": False}
# [0-9], never \d: \d also matches Persian and Arabic-Indic digits.
_SERVICE_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}(?:\.[a-z][a-z0-9_]{0,31}){1,3}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_HTTPS_URL = re.compile(r"https://[A-Za-z0-9.-]+(?:[/?#][\x21-\x7e]*)?")


@dataclass(frozen=True)
class LegalSource:
    """Where a fee comes from: a title, a citable reference, optionally an https URL."""

    title: str
    reference: str
    url: str | None = None


@dataclass(frozen=True)
class FeePeriod:
    """[valid_from, valid_until): an amount in force, or a documented suspension (amount None)."""

    valid_from: date
    valid_until: date | None  # exclusive; None: until further notice
    amount_minor: int | None
    currency: str | None
    legal_source: LegalSource
    suspended: str | None = None  # why no fee can be charged in this period

    def is_in_force_on(self, on: date) -> bool:
        """Whether `on` falls in [valid_from, valid_until)."""
        return self.valid_from <= on and (self.valid_until is None or on < self.valid_until)


@dataclass(frozen=True)
class FeeSchedule:
    """Every period of one service's fee, in date order and without gaps."""

    service_code: str
    title: str
    periods: tuple[FeePeriod, ...]

    def period_on(self, on: date) -> FeePeriod | None:
        """The period in force on `on`, or None before the first or after a closed last one."""
        return next((period for period in self.periods if period.is_in_force_on(on)), None)


@dataclass(frozen=True)
class Fee:
    """The fee of `service_code` in force on a date, with the period and source it comes from."""

    service_code: str
    amount_minor: int
    currency: str
    legal_source: LegalSource
    period: FeePeriod


@dataclass(frozen=True)
class FeeBook:
    """Every fee schedule, by service code."""

    schedules: tuple[FeeSchedule, ...]
    _by_code: dict[str, FeeSchedule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_code = {schedule.service_code: schedule for schedule in self.schedules}
        if len(by_code) != len(self.schedules):
            raise ValueError("a service code has two fee schedules")
        object.__setattr__(self, "_by_code", by_code)

    @property
    def service_codes(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_code))

    def fee_at(self, service_code: str, *, on: date) -> Fee:
        """The fee of `service_code` in force on the date `on`.

        Raises FeeNotFoundError with reason "unknown_service", "not_in_force" (before the first
        period or after a closed last one) or "suspended" (a documented suspension).
        """
        schedule = self._by_code.get(service_code)
        if schedule is None:
            raise FeeNotFoundError(service_code, on, reason=REASON_UNKNOWN_SERVICE)
        period = schedule.period_on(on)
        if period is None:
            raise FeeNotFoundError(service_code, on, reason=REASON_NOT_IN_FORCE)
        if period.amount_minor is None or period.currency is None:
            raise FeeNotFoundError(service_code, on, reason=REASON_SUSPENDED)
        return Fee(
            service_code=service_code,
            amount_minor=period.amount_minor,
            currency=period.currency,
            legal_source=period.legal_source,
            period=period,
        )


def load_fee_schedules(source: Path | str | bytes) -> FeeBook:
    """Load and check fee schedules from a file (Path) or from JSON text (str or bytes).

    Raises PaymentFieldError listing every problem (at most MAX_REPORTED_ERRORS), each with a
    JSON Pointer into the file: JSON outside the canonical profile (its rules), a file larger
    than MAX_FEE_FILE_BYTES, wrong types, missing or unknown members, an unknown format, bad or
    duplicate service codes, bad dates, empty, overlapping or gapped periods, an amount that is
    not positive, an unaccepted currency, a period with both an amount and a suspension, a
    missing legal source, an over-long text or a URL that is not https. Raises OSError when the
    file cannot be read.
    """
    if isinstance(source, Path):
        if source.stat().st_size > MAX_FEE_FILE_BYTES:  # refused before it is read
            _refuse_file_size()
        source = source.read_bytes()
    data = source.encode("utf-8") if isinstance(source, str) else source
    if len(data) > MAX_FEE_FILE_BYTES:
        _refuse_file_size()
    try:
        document = canonical.parse_json(data)
    except CanonicalFormError as exc:
        raise PaymentFieldError(exc.errors) from None
    errors: list[FieldError] = []
    schedules = _read_file(document, errors)
    if errors:
        raise PaymentFieldError(tuple(errors[:MAX_REPORTED_ERRORS]))
    return FeeBook(schedules)


def load_default_fee_schedules() -> FeeBook:
    """The fee schedules packaged with payments (illustrative). Raises as load_fee_schedules."""
    data = resources.files("payments").joinpath(DEFAULT_FEE_SCHEDULES_RESOURCE).read_bytes()
    return load_fee_schedules(data)


# --- reading the file: each reader adds errors and returns what it could read -------------------


def _refuse_file_size() -> NoReturn:
    message = f"the fee schedule file is larger than {MAX_FEE_FILE_BYTES} bytes"
    raise PaymentFieldError((FieldError("", RULE_TOO_LONG, message),))


# One error per pointer, the first found: a missing member is not also reported as mistyped.
_add = add_field_error


def _members(
    value: JsonValue, spec: dict[str, bool], *, pointer: str, what: str, errors: list[FieldError]
) -> dict[str, JsonValue] | None:
    """`value` as an object whose members follow `spec`, or None when it is not an object."""
    if not isinstance(value, dict):
        _add(errors, pointer, RULE_WRONG_TYPE, f"{what} must be an object")
        return None
    unknown, missing = f"{what} has no such member", f"{what} needs this member"
    for name in (name for name in value if name not in spec):
        _add(errors, join_pointer(pointer, name), RULE_UNKNOWN_MEMBER, unknown)
    for name in (name for name, required in spec.items() if required and name not in value):
        _add(errors, join_pointer(pointer, name), RULE_MISSING_MEMBER, missing)
    return value


def _text(
    value: JsonValue, *, pointer: str, errors: list[FieldError], limit: int = MAX_TEXT_CHARS
) -> str | None:
    if not isinstance(value, str):
        _add(errors, pointer, RULE_WRONG_TYPE, "must be a string")
    elif not value.strip():
        _add(errors, pointer, RULE_EMPTY, "must not be empty")
    elif len(value) > limit:
        _add(errors, pointer, RULE_TOO_LONG, f"must be at most {limit} characters")
    else:
        return value
    return None


def _list(
    value: JsonValue, *, pointer: str, limit: int, errors: list[FieldError]
) -> list[JsonValue]:
    if not isinstance(value, list):
        _add(errors, pointer, RULE_WRONG_TYPE, "must be an array")
    elif not value:
        _add(errors, pointer, RULE_EMPTY, "must not be empty")
    elif len(value) > limit:
        _add(errors, pointer, RULE_TOO_MANY, f"must have at most {limit} entries")
    else:
        return value
    return []


def _read_file(document: JsonValue, errors: list[FieldError]) -> tuple[FeeSchedule, ...]:
    obj = _members(document, _FILE_MEMBERS, pointer="", what="the file", errors=errors)
    if obj is None:
        return ()
    if "format" in obj and obj["format"] != FEE_SCHEDULES_FORMAT:
        _add(errors, "/format", RULE_UNKNOWN_FORMAT, f"must be {FEE_SCHEDULES_FORMAT!r}")
    if "note" in obj:
        _text(obj["note"], pointer="/note", errors=errors, limit=MAX_NOTE_CHARS)
    schedules: list[FeeSchedule] = []
    seen: set[str] = set()
    services = _list(obj.get("services"), pointer="/services", limit=MAX_SERVICES, errors=errors)
    for index, item in enumerate(services):
        pointer = f"/services/{index}"
        schedule = _read_service(item, pointer=pointer, errors=errors)
        if schedule is None:
            continue
        if schedule.service_code in seen:
            message = "another schedule already has this service code"
            _add(errors, f"{pointer}/service_code", RULE_DUPLICATE_SERVICE_CODE, message)
        seen.add(schedule.service_code)
        schedules.append(schedule)
    return tuple(schedules)


def _read_service(
    value: JsonValue, *, pointer: str, errors: list[FieldError]
) -> FeeSchedule | None:
    obj = _members(value, _SERVICE_MEMBERS, pointer=pointer, what="a service", errors=errors)
    if obj is None:
        return None
    before = len(errors)
    code = _text(obj.get("service_code"), pointer=f"{pointer}/service_code", errors=errors)
    if code is not None and not _SERVICE_CODE.fullmatch(code):
        message = "must be dotted lower-case names, e.g. 'passport.issue'"
        _add(errors, f"{pointer}/service_code", RULE_INVALID_SERVICE_CODE, message)
    title = _text(obj.get("title"), pointer=f"{pointer}/title", errors=errors)
    at = f"{pointer}/periods"
    items = _list(obj.get("periods"), pointer=at, limit=MAX_PERIODS_PER_SERVICE, errors=errors)
    periods = [
        _read_period(item, pointer=f"{at}/{i}", errors=errors) for i, item in enumerate(items)
    ]
    known = [period for period in periods if period is not None]
    if len(known) == len(periods):  # a timeline with holes in it cannot be judged
        _check_timeline(known, pointer=at, errors=errors)
    if len(errors) > before or code is None or title is None:
        return None
    return FeeSchedule(service_code=code, title=title, periods=tuple(known))


def _read_period(value: JsonValue, *, pointer: str, errors: list[FieldError]) -> FeePeriod | None:
    obj = _members(value, _PERIOD_MEMBERS, pointer=pointer, what="a period", errors=errors)
    if obj is None:
        return None
    before = len(errors)
    valid_from = _date(obj.get("valid_from"), pointer=f"{pointer}/valid_from", errors=errors)
    valid_until = None
    if obj.get("valid_until") is not None:
        valid_until = _date(obj["valid_until"], pointer=f"{pointer}/valid_until", errors=errors)
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        message = "valid_until must be after valid_from (it is exclusive)"
        _add(errors, f"{pointer}/valid_until", RULE_EMPTY_PERIOD, message)
    amount_minor, currency, suspended = _amount_or_suspension(obj, pointer=pointer, errors=errors)
    source = _read_source(obj.get("legal_source"), pointer=f"{pointer}/legal_source", errors=errors)
    if len(errors) > before or valid_from is None or source is None:
        return None
    return FeePeriod(valid_from, valid_until, amount_minor, currency, source, suspended)


def _amount_or_suspension(
    obj: dict[str, JsonValue], *, pointer: str, errors: list[FieldError]
) -> tuple[int | None, str | None, str | None]:
    if "suspended" in obj:
        if "amount_minor" in obj or "currency" in obj:
            message = "a suspended period has no amount and no currency"
            _add(errors, f"{pointer}/suspended", RULE_AMOUNT_AND_SUSPENSION, message)
        return None, None, _text(obj["suspended"], pointer=f"{pointer}/suspended", errors=errors)
    for name in ("amount_minor", "currency"):
        if name not in obj:
            message = "a period needs an amount and a currency, or a suspension"
            _add(errors, join_pointer(pointer, name), RULE_MISSING_MEMBER, message)
    amount, currency = obj.get("amount_minor"), obj.get("currency")
    amount_pointer, currency_pointer = f"{pointer}/amount_minor", f"{pointer}/currency"
    if "amount_minor" in obj and (not isinstance(amount, int) or isinstance(amount, bool)):
        _add(errors, amount_pointer, RULE_WRONG_TYPE, "must be an integer (minor units)")
    elif isinstance(amount, int) and amount <= 0:
        _add(errors, amount_pointer, RULE_NON_POSITIVE_AMOUNT, "must be positive")
    if "currency" in obj and not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        _add(errors, currency_pointer, RULE_WRONG_TYPE, "must be a 3-letter ISO 4217 code")
    elif isinstance(currency, str) and not is_accepted_currency(currency):
        _add(errors, currency_pointer, RULE_UNKNOWN_CURRENCY, "not an accepted ISO 4217 code")
    if isinstance(amount, int) and isinstance(currency, str):
        return amount, currency, None
    return None, None, None


def _read_source(value: JsonValue, *, pointer: str, errors: list[FieldError]) -> LegalSource | None:
    obj = _members(value, _SOURCE_MEMBERS, pointer=pointer, what="a legal source", errors=errors)
    if obj is None:
        return None
    title = _text(obj.get("title"), pointer=f"{pointer}/title", errors=errors)
    reference = _text(obj.get("reference"), pointer=f"{pointer}/reference", errors=errors)
    url = None
    if "url" in obj:
        url = _text(obj["url"], pointer=f"{pointer}/url", errors=errors, limit=MAX_URL_CHARS)
        if url is not None and not _HTTPS_URL.fullmatch(url):
            _add(errors, f"{pointer}/url", RULE_INVALID_URL, "must be an https URL")
            url = None
    if title is None or reference is None or ("url" in obj and url is None):
        return None
    return LegalSource(title=title, reference=reference, url=url)


def _date(value: JsonValue, *, pointer: str, errors: list[FieldError]) -> date | None:
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass  # the shape is right; the calendar (February 30) is not
    _add(errors, pointer, RULE_INVALID_DATE, "must be a date YYYY-MM-DD")
    return None


def _check_timeline(
    periods: Iterable[FeePeriod], *, pointer: str, errors: list[FieldError]
) -> None:
    """Periods must follow each other exactly: each starts where the previous one ends."""
    previous_until: date | None = None
    for index, period in enumerate(periods):
        here = f"{pointer}/{index}/valid_from"
        if index > 0 and (previous_until is None or period.valid_from < previous_until):
            message = "starts before the previous period ends (list periods in order)"
            _add(errors, here, RULE_PERIODS_OVERLAP, message)
        elif index > 0 and previous_until is not None and period.valid_from > previous_until:
            message = "leaves a gap after the previous period (document it as a suspension)"
            _add(errors, here, RULE_PERIODS_GAP, message)
        previous_until = period.valid_until
