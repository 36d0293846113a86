"""The signed transaction envelope, its subjects (who signs, for whom) and money in payloads.

An envelope is a JSON object with exactly these members (docs/ENVELOPE.md is the full spec):
`type`, `version`, `signer`, optional `on_behalf_of`, `nonce`, `created_at`, `payload`. What gets
signed is its RFC 8785 canonical form (signatures.canonical), so the envelope is checked against
both the canonical profile and the member rules here, and every refused field is reported at once.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

from signatures.canonical import (
    MAX_JSON_BYTES,
    MAX_SAFE_INTEGER,
    RULE_FLOAT_NOT_ALLOWED,
    RULE_INTEGER_OUT_OF_RANGE,
    JsonValue,
    canonicalize,
    join_pointer,
    parse_json,
)
from signatures.errors import CanonicalFormError, EnvelopeError, FieldError, SubjectError

MAX_TYPE_CHARS = 64
MIN_VERSION = 1
MIN_NONCE_BYTES = 16  # 128 random bits
MAX_NONCE_BYTES = 64
MAX_NONCE_CHARS = (MAX_NONCE_BYTES * 4 + 2) // 3  # base64url without padding: 86
MAX_FRACTION_DIGITS = 9  # created_at may carry nanoseconds; datetime keeps microseconds
MAX_TIMESTAMP_CHARS = len("YYYY-MM-DDTHH:MM:SS.") + MAX_FRACTION_DIGITS + len("Z")  # 30
MAX_AGENCY_ID_CHARS = 63
MAX_SUBJECT_CHARS = len("agency:") + MAX_AGENCY_ID_CHARS  # the longest subject: 70
MAX_AMOUNT_MINOR = MAX_SAFE_INTEGER

REQUIRED_MEMBERS = ("type", "version", "signer", "nonce", "created_at", "payload")
OPTIONAL_MEMBERS = ("on_behalf_of",)
MONEY_MEMBERS = ("amount_minor", "currency")

RULE_REQUIRED = "required"
RULE_UNKNOWN_MEMBER = "unknown_member"
RULE_WRONG_TYPE = "wrong_type"
RULE_INVALID_FORMAT = "invalid_format"
RULE_TOO_SHORT = "too_short"
RULE_TOO_LONG = "too_long"
RULE_OUT_OF_RANGE = "out_of_range"
RULE_TIMEZONE_NOT_UTC = "timezone_not_utc"
RULE_INVALID_TIMESTAMP = "invalid_timestamp"
RULE_SAME_AS_SIGNER = "same_as_signer"
RULE_INVALID_SUBJECT = "invalid_subject"
RULE_INVALID_CHECK_DIGIT = "invalid_check_digit"
RULE_INVALID_IDENTIFIER = "invalid_identifier"
RULE_UNKNOWN_CURRENCY = "unknown_currency"

# ISO 4217 alphabetic codes of circulating national and regional currencies, as data. Left out on
# purpose: fund and metal codes (BOV, CLF, XAU, XDR, …), testing codes (XTS, XXX), withdrawn codes
# (HRK, SLL, …) and codes changing at the time of writing (ANG/XCG, BGN, CUC, VED, ZWL/ZWG).
_ISO_4217_CODES = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
    KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR
    MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR
    SDG SEK SGD SHP SLE SOS SRD SSP STN SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD
    UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW
"""
ISO_4217_CURRENCIES = frozenset(_ISO_4217_CODES.split())

# [0-9], never \d: \d also matches Persian and Arabic-Indic digits.
_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_UTC_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.([0-9]{1,9}))?Z"
)
_OTHER_ZONE = re.compile(  # a date-time with an offset or no zone at all
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[+-][0-9]{2}:[0-9]{2})?"
)
_CURRENCY = re.compile(r"[A-Z]{3}")
_NATIONAL_ID = re.compile(r"[0-9]{10}")
_LEGAL_ID = re.compile(r"[0-9]{11}")
_AGENCY_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
# The legal-entity check digit: ten data digits, each plus (10th digit + 2), weighted cyclically.
_LEGAL_ID_WEIGHTS = (29, 27, 23, 19, 17)
# Estonian codes: isikukood GYYMMDDSSSC (G 1-8: sex and century) and registrikood (8 digits, first
# 1 companies, 7 state and municipal bodies, 8 non-profit associations, 9 foundations).
_EE_PERSONAL_CODE = re.compile(r"[1-8][0-9]{10}")
_EE_REGISTRY_CODE = re.compile(r"[1789][0-9]{7}")
_EE_FIRST_CENTURY = 1800  # first digits 1 and 2; each later pair of digits adds a century
# The two passes of the Estonian mod-11 check digit (EVS 585:2007): the second when the first
# leaves 10, and 0 when the second leaves 10 too. Registry codes use the first seven of each.
_EE_CHECK_WEIGHTS = ((1, 2, 3, 4, 5, 6, 7, 8, 9, 1), (3, 4, 5, 6, 7, 8, 9, 1, 2, 3))


# --- subjects ------------------------------------------------------------------------------------


class SubjectKind(StrEnum):
    NATURAL_PERSON = "ir-nid"  # کد ملی, national ID: 10 digits, mod-11 check digit
    LEGAL_ENTITY = "ir-lid"  # شناسه ملی, legal-entity national ID: 11 digits, check digit
    EE_PERSON = "ee-ik"  # isikukood, Estonian personal code: 11 digits, birth date, check digit
    EE_ENTITY = "ee-rg"  # registrikood, Estonian registry code of a legal person: 8 digits
    AGENCY = "agency"  # a government agency, by its registered lowercase id

    def is_person(self) -> bool:
        """Whether this kind names a natural person (ir-nid, ee-ik), in any jurisdiction."""
        return self in PERSON_KINDS

    def is_entity(self) -> bool:
        """Whether this kind names a legal entity (ir-lid, ee-rg), in any jurisdiction."""
        return self in ENTITY_KINDS


PERSON_KINDS = frozenset({SubjectKind.NATURAL_PERSON, SubjectKind.EE_PERSON})
ENTITY_KINDS = frozenset({SubjectKind.LEGAL_ENTITY, SubjectKind.EE_ENTITY})


@dataclass(frozen=True)
class Subject:
    """Who signs or is signed for; str(subject) is the `kind:identifier` text."""

    kind: SubjectKind
    identifier: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.identifier}"


def parse_subject(text: str) -> Subject:
    """Parse `ir-nid:<10 digits>`, `ir-lid:<11 digits>`, `ee-ik:<11 digits>`,
    `ee-rg:<8 digits>` or `agency:<id>`.

    Raises SubjectError with rule invalid_subject (unknown kind or wrong shape, an Estonian code
    with a first digit it never has), invalid_check_digit, or invalid_identifier (a national ID
    of one repeated digit, a legal ID whose serial digits are all zero, a personal code whose
    birth date is not a real date).
    """
    if len(text) > MAX_SUBJECT_CHARS:
        raise SubjectError(f"longer than {MAX_SUBJECT_CHARS} characters", rule=RULE_INVALID_SUBJECT)
    kind_text, _, identifier = text.partition(":")
    try:
        kind = SubjectKind(kind_text)
    except ValueError:
        kinds = ", ".join(member.value for member in SubjectKind)
        raise SubjectError(f"the kind is one of {kinds}", rule=RULE_INVALID_SUBJECT) from None
    if kind is SubjectKind.NATURAL_PERSON:
        _check_national_id(identifier)
    elif kind is SubjectKind.LEGAL_ENTITY:
        _check_legal_id(identifier)
    elif kind is SubjectKind.EE_PERSON:
        _check_ee_personal_code(identifier)
    elif kind is SubjectKind.EE_ENTITY:
        _check_ee_registry_code(identifier)
    elif not _AGENCY_ID.fullmatch(identifier):
        raise SubjectError("an agency id is 2-63 of [a-z0-9-]", rule=RULE_INVALID_SUBJECT)
    return Subject(kind=kind, identifier=identifier)


def is_valid_subject(text: str) -> bool:
    """Whether parse_subject accepts `text`."""
    try:
        parse_subject(text)
    except SubjectError:
        return False
    return True


def _check_national_id(digits: str) -> None:
    if not _NATIONAL_ID.fullmatch(digits):
        raise SubjectError("a national ID is 10 ASCII digits", rule=RULE_INVALID_SUBJECT)
    if len(set(digits)) == 1:  # 0000000000, 1111111111, … pass the check digit but are not IDs
        raise SubjectError("a national ID is not one repeated digit", rule=RULE_INVALID_IDENTIFIER)
    remainder = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9])) % 11
    if int(digits[9]) != (remainder if remainder < 2 else 11 - remainder):
        raise SubjectError("the national ID check digit is wrong", rule=RULE_INVALID_CHECK_DIGIT)


def _check_legal_id(digits: str) -> None:
    # Algorithm as implemented (identically) by persian-tools/persian-tools
    # src/modules/legalId/index.ts and persian-tools/rust-persian-tools src/legal_id/mod.rs (which
    # cite aliarash.com/article/shenasameli/shenasa_meli.htm), with their vector 10380284790.
    if not _LEGAL_ID.fullmatch(digits):
        raise SubjectError("a legal-entity ID is 11 ASCII digits", rule=RULE_INVALID_SUBJECT)
    if digits[3:9] == "000000":
        raise SubjectError("the legal-entity serial is all zeros", rule=RULE_INVALID_IDENTIFIER)
    offset = int(digits[9]) + 2
    total = sum((offset + int(d)) * _LEGAL_ID_WEIGHTS[i % 5] for i, d in enumerate(digits[:10]))
    if int(digits[10]) != total % 11 % 10:  # a remainder of 10 gives check digit 0
        raise SubjectError("the legal-entity check digit is wrong", rule=RULE_INVALID_CHECK_DIGIT)


def _check_ee_personal_code(digits: str) -> None:
    # Structure and check digit: EVS 585:2007 "Isikukood. Struktuur", required by the regulation
    # "Isikukoodide moodustamise, väljajagamise ja andmise kord" § 2 (riigiteataja.ee/akt/
    # 110062015004); as described at et.wikipedia.org/wiki/Isikukood and implemented by
    # python-stdnum stdnum/ee/ik.py, whose test vectors we reuse.
    if not _EE_PERSONAL_CODE.fullmatch(digits):
        raise SubjectError(
            "a personal code is 11 ASCII digits, the first 1 to 8", rule=RULE_INVALID_SUBJECT
        )
    year = _EE_FIRST_CENTURY + (int(digits[0]) - 1) // 2 * 100 + int(digits[1:3])
    try:
        date(year, int(digits[3:5]), int(digits[5:7]))
    except ValueError:
        raise SubjectError(
            "the personal code's birth date is not a real date", rule=RULE_INVALID_IDENTIFIER
        ) from None
    if int(digits[10]) != _ee_check_digit(digits[:10]):
        raise SubjectError("the personal code check digit is wrong", rule=RULE_INVALID_CHECK_DIGIT)


def _check_ee_registry_code(digits: str) -> None:
    # The registers publish no check-digit rule. python-stdnum stdnum/ee/registrikood.py notes the
    # isikukood method (over seven digits) "although that fact is undocumented", and every code in
    # its list of codes found online (tests/test_ee_registrikood.doctest) satisfies it.
    if not _EE_REGISTRY_CODE.fullmatch(digits):
        raise SubjectError(
            "a registry code is 8 ASCII digits, the first 1, 7, 8 or 9", rule=RULE_INVALID_SUBJECT
        )
    if int(digits[7]) != _ee_check_digit(digits[:7]):
        raise SubjectError("the registry code check digit is wrong", rule=RULE_INVALID_CHECK_DIGIT)


def _ee_check_digit(digits: str) -> int:
    for weights in _EE_CHECK_WEIGHTS:
        pairs = zip(digits, weights[: len(digits)], strict=True)
        remainder = sum(int(digit) * weight for digit, weight in pairs) % 11
        if remainder < 10:
            return remainder
    return 0


# --- money ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """An amount in integer minor units (rials for IRR, cents for EUR) and its ISO 4217 code."""

    amount_minor: int
    currency: str


def parse_money(obj: JsonValue, *, pointer: str) -> Money:
    """Parse `{"amount_minor": <integer ≥ 0>, "currency": "<ISO 4217 code>"}` found at `pointer`.

    Raises EnvelopeError listing every refused member (pointers under `pointer`).
    """
    errors: list[FieldError] = []
    if not isinstance(obj, dict):
        raise EnvelopeError((FieldError(pointer, RULE_WRONG_TYPE, "money must be an object"),))
    check_members(obj, required=MONEY_MEMBERS, optional=(), pointer=pointer, errors=errors)
    amount = _amount_minor(obj.get("amount_minor"), join_pointer(pointer, "amount_minor"), errors)
    currency = _currency(obj.get("currency"), join_pointer(pointer, "currency"), errors)
    if errors or amount is None or currency is None:
        raise EnvelopeError(tuple(errors))
    return Money(amount_minor=amount, currency=currency)


def _amount_minor(value: object, pointer: str, errors: list[FieldError]) -> int | None:
    if value is None:
        return None  # reported as missing
    if isinstance(value, float):
        _add(errors, pointer, RULE_FLOAT_NOT_ALLOWED, "amounts are integer minor units")
    elif isinstance(value, bool) or not isinstance(value, int):
        _add(errors, pointer, RULE_WRONG_TYPE, "amount_minor must be an integer")
    elif value < 0:
        _add(errors, pointer, RULE_OUT_OF_RANGE, "amount_minor must not be negative")
    elif value > MAX_AMOUNT_MINOR:
        _add(errors, pointer, RULE_INTEGER_OUT_OF_RANGE, f"above {MAX_AMOUNT_MINOR}")
    else:
        return int(value)
    return None


def _currency(value: object, pointer: str, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        _add(errors, pointer, RULE_WRONG_TYPE, "currency must be a string")
    elif not _CURRENCY.fullmatch(value):
        _add(errors, pointer, RULE_INVALID_FORMAT, "currency is three capital letters")
    elif value not in ISO_4217_CURRENCIES:
        _add(errors, pointer, RULE_UNKNOWN_CURRENCY, "not an accepted ISO 4217 code")
    else:
        return str(value)
    return None


# --- the envelope --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """A checked envelope; `canonical` holds the exact RFC 8785 bytes that are signed."""

    type: str
    version: int
    signer: Subject
    on_behalf_of: Subject | None
    nonce: str  # base64url text, as signed
    created_at: datetime  # aware, UTC
    payload: dict[str, JsonValue]
    canonical: bytes = field(repr=False)

    @property
    def sha256(self) -> bytes:
        """SHA-256 of the canonical bytes (what the ledger leaf records)."""
        return hashlib.sha256(self.canonical).digest()

    @property
    def nonce_bytes(self) -> bytes:
        return base64.urlsafe_b64decode(self.nonce + "=" * (-len(self.nonce) % 4))


def parse_envelope_json(data: bytes, *, max_bytes: int = MAX_JSON_BYTES) -> Envelope:
    """parse_json then parse_envelope. Raises EnvelopeError for every refusal of either."""
    try:
        value = parse_json(data, max_bytes=max_bytes)
    except CanonicalFormError as exc:
        raise EnvelopeError(exc.errors) from None
    return parse_envelope(value, max_bytes=max_bytes)


def parse_envelope(value: JsonValue, *, max_bytes: int = MAX_JSON_BYTES) -> Envelope:
    """Check an envelope (parsed, or built in Python) and compute its canonical bytes, at most
    max_bytes of them (MAX_JSON_BYTES unless the caller allows a larger document, such as a batch
    of invoices, up to signatures.canonical.MAX_DOCUMENT_BYTES).

    Raises EnvelopeError listing every refused field, each with a pointer and a rule: those of
    signatures.canonical and the RULE_* of this module (docs/ENVELOPE.md lists them all).
    """
    errors: list[FieldError] = []
    try:
        canonical = canonicalize(value, max_bytes=max_bytes)
        value = parse_json(canonical, max_bytes=max_bytes)  # a plain copy of exactly what is signed
    except CanonicalFormError as exc:
        errors.extend(exc.errors)
        canonical = b""
    if not isinstance(value, dict):
        _add(errors, "", RULE_WRONG_TYPE, "the envelope must be a JSON object")
        raise EnvelopeError(tuple(errors))
    check_members(
        value, required=REQUIRED_MEMBERS, optional=OPTIONAL_MEMBERS, pointer="", errors=errors
    )
    type_name = _type_name(value.get("type"), errors)
    version = _version(value.get("version"), errors)
    signer = _subject(value.get("signer"), "/signer", errors)
    on_behalf_of = _subject(value.get("on_behalf_of"), "/on_behalf_of", errors)
    if signer is not None and signer == on_behalf_of:
        _add(errors, "/on_behalf_of", RULE_SAME_AS_SIGNER, "a signer does not act for itself")
    nonce = _nonce(value.get("nonce"), errors)
    created_at = _created_at(value.get("created_at"), errors)
    payload = value.get("payload")
    if payload is not None and not isinstance(payload, dict):
        _add(errors, "/payload", RULE_WRONG_TYPE, "payload must be an object")
    if errors:
        raise EnvelopeError(tuple(errors))
    assert type_name is not None and version is not None and signer is not None
    assert nonce is not None and created_at is not None and isinstance(payload, dict)
    return Envelope(
        type=type_name,
        version=version,
        signer=signer,
        on_behalf_of=on_behalf_of,
        nonce=nonce,
        created_at=created_at,
        payload=payload,
        canonical=canonical,
    )


def payload_object(envelope: Envelope) -> dict[str, JsonValue]:
    """The envelope's payload as an object (parse_envelope guarantees one). Raises EnvelopeError
    at /payload otherwise (an Envelope built by hand)."""
    payload = envelope.payload
    if not isinstance(payload, dict):
        error = FieldError(
            pointer="/payload", rule=RULE_WRONG_TYPE, message="the payload is an object"
        )
        raise EnvelopeError((error,))
    return payload


def read_payload_text(
    payload: dict[str, JsonValue],
    name: str,
    pattern: re.Pattern[str],
    shape: str,
    errors: list[FieldError],
) -> str | None:
    """The payload member `name` when it is a string that fullmatches `pattern`; None when it is
    absent, or with an invalid_format error at /payload/<name> added. The message gives the
    shape, never the value (it may be personal data)."""
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        add_field_error(errors, f"/payload/{name}", RULE_INVALID_FORMAT, f"{name} is {shape}")
        return None
    return value


def add_field_error(errors: list[FieldError], pointer: str, rule: str, message: str) -> None:
    """Add one error for pointer, unless that field already has one: a value the canonical
    profile refused is not judged again."""
    if all(error.pointer != pointer for error in errors):
        errors.append(FieldError(pointer=pointer, rule=rule, message=message))


_add = add_field_error


def check_members(
    obj: dict[str, JsonValue],
    *,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    pointer: str,
    errors: list[FieldError],
) -> None:
    """Add to errors each required member missing, each member not required or optional, and
    each present member that is null (absence is the one spelling of "none")."""
    for name in required:
        if name not in obj:
            _add(errors, join_pointer(pointer, name), RULE_REQUIRED, f"{name} is required")
    for name, member in obj.items():
        if name not in required and name not in optional:
            _add(errors, join_pointer(pointer, name), RULE_UNKNOWN_MEMBER, "not a known member")
        elif member is None:  # absence is the one spelling of "none"
            _add(errors, join_pointer(pointer, name), RULE_WRONG_TYPE, f"{name} must not be null")


def _type_name(value: JsonValue, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        _add(errors, "/type", RULE_WRONG_TYPE, "type must be a string")
    elif len(value) > MAX_TYPE_CHARS:
        _add(errors, "/type", RULE_TOO_LONG, f"type is longer than {MAX_TYPE_CHARS} characters")
    elif not _TYPE_NAME.fullmatch(value):
        _add(errors, "/type", RULE_INVALID_FORMAT, "type is dotted lowercase, like key.register")
    else:
        return value
    return None


def _version(value: JsonValue, errors: list[FieldError]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        _add(errors, "/version", RULE_WRONG_TYPE, "version must be an integer")
    elif value < MIN_VERSION:
        _add(errors, "/version", RULE_OUT_OF_RANGE, f"version must be at least {MIN_VERSION}")
    else:
        return value
    return None


def _subject(value: JsonValue, pointer: str, errors: list[FieldError]) -> Subject | None:
    if value is None:
        return None
    if not isinstance(value, str):
        _add(errors, pointer, RULE_WRONG_TYPE, "a subject must be a string")
        return None
    try:
        return parse_subject(value)
    except SubjectError as exc:
        _add(errors, pointer, exc.rule, str(exc))
    return None


def _nonce(value: JsonValue, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        _add(errors, "/nonce", RULE_WRONG_TYPE, "nonce must be a string")
    elif len(value) > MAX_NONCE_CHARS:
        _add(errors, "/nonce", RULE_TOO_LONG, f"nonce is more than {MAX_NONCE_BYTES} bytes")
    elif not _BASE64URL.fullmatch(value) or len(value) % 4 == 1:
        _add(errors, "/nonce", RULE_INVALID_FORMAT, "nonce is base64url without padding")
    else:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != value:
            # Unused trailing bits set: a second spelling of the same bytes.
            _add(errors, "/nonce", RULE_INVALID_FORMAT, "nonce is not canonical base64url")
        elif len(raw) < MIN_NONCE_BYTES:
            _add(errors, "/nonce", RULE_TOO_SHORT, f"nonce is fewer than {MIN_NONCE_BYTES} bytes")
        else:
            return value
    return None


def _created_at(value: JsonValue, errors: list[FieldError]) -> datetime | None:
    return read_utc_timestamp(value, "/created_at", errors)


def read_utc_timestamp(value: JsonValue, pointer: str, errors: list[FieldError]) -> datetime | None:
    """An RFC 3339 UTC timestamp ending in Z (up to nanoseconds, kept to microseconds) as an
    aware datetime, or None with one error for pointer added to errors (None when absent)."""
    if value is None:
        return None
    name = pointer.rsplit("/", 1)[-1]
    if not isinstance(value, str):
        _add(errors, pointer, RULE_WRONG_TYPE, f"{name} must be a string")
    elif len(value) > MAX_TIMESTAMP_CHARS:
        _add(errors, pointer, RULE_TOO_LONG, f"{name} is too long")
    elif match := _UTC_TIMESTAMP.fullmatch(value):
        microsecond = int((match.group(1) or "0")[:6].ljust(6, "0"))  # nanoseconds truncated
        try:  # the shape is checked: only the calendar (Feb 30, hour 24, second 60) can fail
            start = datetime.fromisoformat(value[: len("YYYY-MM-DDTHH:MM:SS")])
            return start.replace(microsecond=microsecond, tzinfo=UTC)
        except ValueError:
            _add(errors, pointer, RULE_INVALID_TIMESTAMP, f"{name} is not a real time")
    elif _OTHER_ZONE.fullmatch(value):
        _add(errors, pointer, RULE_TIMEZONE_NOT_UTC, f"{name} must be UTC, ending in Z")
    else:
        _add(errors, pointer, RULE_INVALID_FORMAT, f"{name} is RFC 3339 UTC, ends in Z")
    return None
