"""Payloads of tax.return.personal and tax.return.corporate, parsed into FilingData.

parse_return checks the shape of a return (docs/TAX.md, "Filing"): members, types, limits,
identifiers, the period in the pack's calendar. It reports every problem at once, each with its
/payload/… JSON Pointer and rule, and never repeats a refused value. Whether the pack allows a
deduction, whether the period has ended or has rules are business rules: the engine reports
them as issues of a recorded return (tax.engine).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from signatures.canonical import MAX_SAFE_INTEGER, RULE_FLOAT_NOT_ALLOWED, JsonValue, join_pointer
from signatures.envelope import (
    RULE_INVALID_FORMAT,
    RULE_OUT_OF_RANGE,
    RULE_REQUIRED,
    RULE_TOO_LONG,
    RULE_WRONG_TYPE,
    add_field_error,
    check_members,
    parse_subject,
)
from signatures.errors import FieldError, SubjectError
from tax.calendar import Period, parse_period
from tax.errors import RuleNotInForceError, TaxFieldError
from tax.identifiers import verify_postal_code_ir
from tax.rulepack import RulePack, pack_for

__all__ = [
    "CORPORATE",
    "MAX_AMOUNT_MINOR",
    "MAX_DEDUCTIONS",
    "MAX_EMPLOYERS",
    "MONTHS_PER_YEAR",
    "PERSONAL",
    "Deduction",
    "FilingData",
    "SalaryEntry",
    "parse_return",
]

PERSONAL = "personal"
CORPORATE = "corporate"
RETURN_KINDS = (PERSONAL, CORPORATE)

MAX_EMPLOYERS = 20
MAX_DEDUCTIONS = 20
MONTHS_PER_YEAR = 12  # both shipped calendars (Solar Hijri, Gregorian) have twelve months
MAX_DEDUCTION_CODE_CHARS = 64
# Every amount, and every total of amounts, stays an integer the canonical JSON profile (RFC 8785
# / I-JSON) represents exactly, so that each trace line can be hashed (spec §5 said 10**18, which
# signatures.canonical would refuse in a trace).
MAX_AMOUNT_MINOR = MAX_SAFE_INTEGER

RULE_NOT_APPLICABLE = "not_applicable"
RULE_DUPLICATE = "duplicate"
RULE_CONFLICTING = "conflicting_members"
RULE_UNSUPPORTED_RETURN = "unsupported_return"

PAYLOAD = "/payload"
_PERSONAL_MEMBERS = tuple(
    ["postal_code", "salary", "other_income_minor", "deductions", "tax_prepaid_minor", "amends"]
)
_CORPORATE_MEMBERS = tuple(
    ["postal_code", "profit_minor", "distributed_profit_minor", "tax_prepaid_minor", "amends"]
)
_BASE_MEMBERS = {"profit": "profit_minor", "distribution": "distributed_profit_minor"}
_DEDUCTION_CODE = re.compile(r"[a-z][a-z0-9_]*")
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class _PostalCodeVerifier(Protocol):
    def __call__(self, text: str, *, pointer: str) -> None: ...


# The jurisdictions whose returns carry a postal code, and how it is checked (each verifier
# raises TaxFieldError at the pointer given). A return of any other jurisdiction must omit it.
POSTAL_CODE_VERIFIERS: Mapping[str, _PostalCodeVerifier] = MappingProxyType(
    {"ir": verify_postal_code_ir}
)


@dataclass(frozen=True)
class SalaryEntry:
    """One employer's salary for the period: an annual total or twelve monthly amounts."""

    employer: str  # subject text, e.g. "ir-lid:10380284790"
    annual_minor: int | None
    monthly_minor: tuple[int, ...] | None
    withheld_minor: int

    @property
    def total_minor(self) -> int:
        if self.monthly_minor is not None:
            return sum(self.monthly_minor)
        return self.annual_minor or 0


@dataclass(frozen=True)
class Deduction:
    code: str  # the pack parameter personal.deductions.<code> caps it
    amount_minor: int


@dataclass(frozen=True)
class FilingData:
    """A parsed return. Personal returns use salary, other_income_minor and deductions; corporate
    returns profit_minor or distributed_profit_minor (the one the pack's corporate.base uses)."""

    kind: str
    jurisdiction: str
    period: Period
    postal_code: str | None
    salary: tuple[SalaryEntry, ...] = ()
    other_income_minor: int | None = None
    deductions: tuple[Deduction, ...] = ()
    profit_minor: int | None = None
    distributed_profit_minor: int | None = None
    tax_prepaid_minor: int = 0
    amends: str | None = None


def parse_return(envelope_payload: JsonValue, *, kind: str) -> FilingData:
    """Parse the payload of a `kind` ("personal" | "corporate") return.

    Raises TaxFieldError listing every problem, each at a /payload/… pointer: unknown_jurisdiction,
    unsupported_return (the pack has no such return), invalid_period, the postal code's rules,
    required, unknown_member, wrong_type, float_not_allowed, out_of_range (an amount beyond
    MAX_AMOUNT_MINOR, or a total of them), too_long (more than MAX_EMPLOYERS salaries or
    MAX_DEDUCTIONS deductions), duplicate, conflicting_members, not_applicable (a member the
    jurisdiction or the pack's corporate base does not use), invalid_format, and the subject
    rules of signatures.envelope.parse_subject for employers.
    Raises ValueError for an unknown `kind` (a programming error, not the filer's).
    """
    if kind not in RETURN_KINDS:
        raise ValueError(f"kind is one of {RETURN_KINDS}")
    if not isinstance(envelope_payload, dict):
        raise TaxFieldError((FieldError(PAYLOAD, RULE_WRONG_TYPE, "the payload is an object"),))
    obj = envelope_payload
    errors: list[FieldError] = []
    optional = _PERSONAL_MEMBERS if kind == PERSONAL else _CORPORATE_MEMBERS
    required = ("jurisdiction", "period")
    check_members(obj, required=required, optional=optional, pointer=PAYLOAD, errors=errors)
    pack = read_pack(obj, kind, errors)
    period = read_period(obj, pack, kind, errors) if pack is not None else None
    postal_code = _postal_code(obj, pack, errors) if pack is not None else None
    prepaid = _amount(obj, "tax_prepaid_minor", PAYLOAD, errors)
    amends = read_amends(obj, errors)
    if kind == PERSONAL:
        fields = _personal(obj, errors)
        _check_total([*(e.withheld_minor for e in fields.salary), prepaid or 0], "credits", errors)
    else:
        fields = _corporate(obj, pack, period, errors)
    if errors or pack is None or period is None:
        raise TaxFieldError(tuple(errors))
    return FilingData(
        kind=kind,
        jurisdiction=pack.jurisdiction,
        period=period,
        postal_code=postal_code,
        salary=fields.salary,
        other_income_minor=fields.other_income_minor,
        deductions=fields.deductions,
        profit_minor=fields.profit_minor,
        distributed_profit_minor=fields.distributed_profit_minor,
        tax_prepaid_minor=prepaid or 0,
        amends=amends,
    )


@dataclass(frozen=True)
class _Fields:
    salary: tuple[SalaryEntry, ...] = ()
    other_income_minor: int | None = None
    deductions: tuple[Deduction, ...] = ()
    profit_minor: int | None = None
    distributed_profit_minor: int | None = None


def read_pack(obj: dict[str, JsonValue], kind: str, errors: list[FieldError]) -> RulePack | None:
    """The pack of /payload/jurisdiction when it has a `kind` return; None with the refusal in
    errors otherwise (also tax.vat's reader)."""
    value = obj.get("jurisdiction")
    pointer = join_pointer(PAYLOAD, "jurisdiction")
    if value is None:
        return None  # check_members reported it
    if not isinstance(value, str):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "the jurisdiction is a string")
        return None
    try:
        pack = pack_for(value)
    except TaxFieldError as error:
        errors.extend(error.errors)
        return None
    if kind not in pack.returns:
        add_field_error(errors, pointer, RULE_UNSUPPORTED_RETURN, f"no {kind} return there")
        return None
    return pack


def read_period(
    obj: dict[str, JsonValue], pack: RulePack, kind: str, errors: list[FieldError]
) -> Period | None:
    value = obj.get("period")
    if value is None:
        return None
    if not isinstance(value, str):
        add_field_error(errors, f"{PAYLOAD}/period", RULE_WRONG_TYPE, "the period is a string")
        return None
    try:
        return parse_period(pack, value, kind=pack.returns[kind].period)
    except TaxFieldError as error:
        errors.extend(error.errors)
        return None


def _postal_code(obj: dict[str, JsonValue], pack: RulePack, errors: list[FieldError]) -> str | None:
    pointer = f"{PAYLOAD}/postal_code"
    verify = POSTAL_CODE_VERIFIERS.get(pack.jurisdiction)
    value = obj.get("postal_code")
    if verify is None:
        if "postal_code" in obj:
            add_field_error(errors, pointer, RULE_NOT_APPLICABLE, "no postal code in this return")
        return None
    if "postal_code" not in obj:
        add_field_error(errors, pointer, RULE_REQUIRED, "postal_code is required")
        return None
    if not isinstance(value, str):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "the postal code is a string")
        return None
    try:
        verify(value, pointer=pointer)
    except TaxFieldError as error:
        errors.extend(error.errors)
        return None
    return value


def read_amends(obj: dict[str, JsonValue], errors: list[FieldError]) -> str | None:
    value = obj.get("amends")
    pointer = f"{PAYLOAD}/amends"
    if value is None:
        return None
    if not isinstance(value, str) or not _UUID4.fullmatch(value):
        add_field_error(errors, pointer, RULE_INVALID_FORMAT, "amends is a lowercase UUID v4")
        return None
    return value


def _amount(
    obj: dict[str, JsonValue],
    name: str,
    pointer: str,
    errors: list[FieldError],
    *,
    minimum_minor: int = 0,
) -> int | None:
    """The integer member `name` within minimum_minor..MAX_AMOUNT_MINOR, or None (absent or
    refused: the refusal is in errors)."""
    if name not in obj:
        return None
    return read_integer(obj[name], join_pointer(pointer, name), errors, minimum_minor=minimum_minor)


def read_integer(
    value: object, pointer: str, errors: list[FieldError], *, minimum_minor: int = 0
) -> int | None:
    if isinstance(value, float):  # a payload built in Python; parsed JSON never holds one
        add_field_error(errors, pointer, RULE_FLOAT_NOT_ALLOWED, "amounts are integer minor units")
    elif isinstance(value, bool) or not isinstance(value, int):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "an integer of minor units")
    elif not minimum_minor <= value <= MAX_AMOUNT_MINOR:
        add_field_error(
            errors, pointer, RULE_OUT_OF_RANGE, f"within {minimum_minor}..{MAX_AMOUNT_MINOR}"
        )
    else:
        return value
    return None


def _check_total(amounts: list[int], what: str, errors: list[FieldError]) -> None:
    if sum(amounts) > MAX_AMOUNT_MINOR:
        add_field_error(
            errors, PAYLOAD, RULE_OUT_OF_RANGE, f"the total {what} exceed {MAX_AMOUNT_MINOR}"
        )


def _personal(obj: dict[str, JsonValue], errors: list[FieldError]) -> _Fields:
    salary = _salary(obj["salary"], errors) if "salary" in obj else ()
    other = _amount(obj, "other_income_minor", PAYLOAD, errors)
    deductions = _deductions(obj["deductions"], errors) if "deductions" in obj else ()
    _check_total([*(e.total_minor for e in salary), other or 0], "income", errors)
    _check_total([d.amount_minor for d in deductions], "deductions", errors)
    return _Fields(salary=salary, other_income_minor=other, deductions=deductions)


def _salary(value: JsonValue, errors: list[FieldError]) -> tuple[SalaryEntry, ...]:
    pointer = f"{PAYLOAD}/salary"
    if not isinstance(value, list):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "salary is an array")
        return ()
    if len(value) > MAX_EMPLOYERS:
        add_field_error(errors, pointer, RULE_TOO_LONG, f"at most {MAX_EMPLOYERS} employers")
        return ()
    entries: list[SalaryEntry] = []
    for index, item in enumerate(value):
        entry = _salary_entry(item, join_pointer(pointer, index), errors)
        if entry is None:
            continue
        if any(other.employer == entry.employer for other in entries):
            add_field_error(
                errors, f"{pointer}/{index}/employer", RULE_DUPLICATE, "employer listed twice"
            )
        entries.append(entry)
    return tuple(entries)


def _salary_entry(item: JsonValue, pointer: str, errors: list[FieldError]) -> SalaryEntry | None:
    if not isinstance(item, dict):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "a salary entry is an object")
        return None
    before = len(errors)
    optional = ("annual_minor", "monthly_minor", "withheld_minor")
    check_members(item, required=("employer",), optional=optional, pointer=pointer, errors=errors)
    employer = _employer(item.get("employer"), f"{pointer}/employer", errors)
    annual = _amount(item, "annual_minor", pointer, errors)
    monthly = _monthly(item["monthly_minor"], pointer, errors) if "monthly_minor" in item else None
    withheld = _amount(item, "withheld_minor", pointer, errors)
    if "annual_minor" in item and "monthly_minor" in item:
        add_field_error(
            errors, pointer, RULE_CONFLICTING, "give annual_minor or monthly_minor, not both"
        )
    elif "annual_minor" not in item and "monthly_minor" not in item:
        add_field_error(
            errors, f"{pointer}/annual_minor", RULE_REQUIRED, "annual_minor or monthly_minor"
        )
    if len(errors) > before or employer is None:
        return None
    return SalaryEntry(employer, annual, monthly, withheld or 0)


def _employer(value: JsonValue, pointer: str, errors: list[FieldError]) -> str | None:
    if value is None:
        return None  # check_members reported it
    if not isinstance(value, str):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "the employer is a subject string")
        return None
    try:
        return str(parse_subject(value))
    except SubjectError as error:
        add_field_error(
            errors, pointer, error.rule, f"the employer is not a valid subject: {error}"
        )
        return None


def _monthly(value: JsonValue, pointer: str, errors: list[FieldError]) -> tuple[int, ...] | None:
    pointer = join_pointer(pointer, "monthly_minor")
    if not isinstance(value, list) or len(value) != MONTHS_PER_YEAR:
        add_field_error(
            errors, pointer, RULE_WRONG_TYPE, f"an array of {MONTHS_PER_YEAR} monthly amounts"
        )
        return None
    months = [read_integer(item, join_pointer(pointer, i), errors) for i, item in enumerate(value)]
    amounts = [month for month in months if month is not None]
    return tuple(amounts) if len(amounts) == MONTHS_PER_YEAR else None


def _deductions(value: JsonValue, errors: list[FieldError]) -> tuple[Deduction, ...]:
    pointer = f"{PAYLOAD}/deductions"
    if not isinstance(value, list):
        add_field_error(errors, pointer, RULE_WRONG_TYPE, "deductions is an array")
        return ()
    if len(value) > MAX_DEDUCTIONS:
        add_field_error(errors, pointer, RULE_TOO_LONG, f"at most {MAX_DEDUCTIONS} deductions")
        return ()
    out: list[Deduction] = []
    for index, item in enumerate(value):
        here = join_pointer(pointer, index)
        if not isinstance(item, dict):
            add_field_error(errors, here, RULE_WRONG_TYPE, "a deduction is an object")
            continue
        required = ("code", "amount_minor")
        check_members(item, required=required, optional=(), pointer=here, errors=errors)
        code = _deduction_code(item.get("code"), f"{here}/code", errors)
        amount = _amount(item, "amount_minor", here, errors)
        if code is not None and any(other.code == code for other in out):
            add_field_error(errors, f"{here}/code", RULE_DUPLICATE, "deduction code given twice")
        elif code is not None and amount is not None:
            out.append(Deduction(code, amount))
    return tuple(out)


def _deduction_code(value: JsonValue, pointer: str, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_DEDUCTION_CODE_CHARS
        or not _DEDUCTION_CODE.fullmatch(value)
    ):
        add_field_error(
            errors,
            pointer,
            RULE_INVALID_FORMAT,
            f"a deduction code is 1-{MAX_DEDUCTION_CODE_CHARS} of [a-z0-9_], starting a-z",
        )
        return None
    return value


def _corporate(
    obj: dict[str, JsonValue],
    pack: RulePack | None,
    period: Period | None,
    errors: list[FieldError],
) -> _Fields:
    profit = _amount(obj, "profit_minor", PAYLOAD, errors, minimum_minor=-MAX_AMOUNT_MINOR)
    distributed = _amount(obj, "distributed_profit_minor", PAYLOAD, errors)
    base = _corporate_base(pack, period)
    if base is not None:
        needed = _BASE_MEMBERS[base]
        for name in _BASE_MEMBERS.values():
            pointer = join_pointer(PAYLOAD, name)
            if name == needed and name not in obj:
                add_field_error(errors, pointer, RULE_REQUIRED, f"{name} is required")
            elif name != needed and name in obj:
                add_field_error(
                    errors, pointer, RULE_NOT_APPLICABLE, f"this pack taxes the {base}, not this"
                )
    return _Fields(profit_minor=profit, distributed_profit_minor=distributed)


def _corporate_base(pack: RulePack | None, period: Period | None) -> str | None:
    """The pack's corporate.base for the period, or None when it is not known (the engine then
    reports no_rules_for_period)."""
    if pack is None or period is None:
        return None
    try:
        value = pack.text_at("corporate.base", on=period.start).value
    except RuleNotInForceError:
        return None
    return value if isinstance(value, str) and value in _BASE_MEMBERS else None
