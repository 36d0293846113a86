"""Identifiers in tax payloads: Iranian postal codes, national IDs and legal-entity IDs, and
Estonian personal codes.

Each verify_* returns None for an accepted value and otherwise raises TaxFieldError holding
exactly one FieldError at the pointer the caller gives (a payload pointer such as
"/payload/postal_code"). Messages never repeat the value: it is personal data.

The national ID, legal-entity ID and personal code checks are signatures.envelope's (through
parse_subject), so a value accepted here is accepted as a subject and the other way round; only
the rule names change, to say what is wrong with a field rather than with a subject.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NoReturn

from signatures import envelope
from signatures.envelope import SubjectKind, parse_subject
from signatures.errors import FieldError, SubjectError
from tax.errors import TaxFieldError

RULE_WRONG_TYPE = "wrong_type"
RULE_INVALID_FORMAT = "invalid_format"
RULE_INVALID_CHECK_DIGIT = "invalid_check_digit"
RULE_INVALID_POSTAL_CODE = "invalid_postal_code"
RULE_INVALID_DATE = "invalid_date"
RULE_INVALID_IDENTIFIER = "invalid_identifier"

POSTAL_CODE_IR_DIGITS = 10
# Iranian postal codes: the first five digits locate the delivery area (city and zone), the last
# five the building. The rules below are not in any published text of the Iranian post we could
# find; they are those every public validator applies. Sources:
# - the digits 0 and 2 are not used in the first five, being easily misread as 5 and 3 when
#   handwritten: the description quoted at khabarkhan.molisy.ir (tag "نشانی پستی چیست"), and
#   github.com/anetwork/validation pull 65;
# - the first four are never one digit repeated: github.com/VahidN/
#   DNTPersianUtils.Core pull 22 (citing fa.wikipedia.org/wiki/کد_پستی), whose regular expression
#   `(?!(\d)\1{3})[13-9]{4}[1346-9][013-9]{5}` validator.js and many others reuse.
# That expression also refused 2 in the last five digits; we do not, because real codes have one
# there (1416932790, confirmed at gnaf2.post.ir: DNTPersianUtils.Core issue 89; 5951412749:
# sadegh19b/laravel-persian-validation issue 18). Status: unverified (no official source).
# We do not apply that expression's "fifth digit never 5" either: DNTPersianUtils.Core itself
# dropped it in 2025 (its expression is now `(?!(\d)\1{3})[13-9]{5}\d{5}`), and refusing a real
# code would keep its holder from filing at all.
_POSTAL_CODE_IR = re.compile(r"[0-9]{10}")  # [0-9], never \d: \d also matches Persian digits
_POSTAL_AREA_DIGITS = 5
_POSTAL_AREA_NEVER = frozenset("02")
_POSTAL_REPEATED_PREFIX_DIGITS = 4

# What each subject rule of signatures.envelope means for a field of a given kind.
_SUBJECT_RULES: Mapping[SubjectKind, Mapping[str, str]] = MappingProxyType(
    {
        SubjectKind.NATURAL_PERSON: {
            envelope.RULE_INVALID_SUBJECT: RULE_INVALID_FORMAT,
            envelope.RULE_INVALID_CHECK_DIGIT: RULE_INVALID_CHECK_DIGIT,
            envelope.RULE_INVALID_IDENTIFIER: RULE_INVALID_IDENTIFIER,  # one digit repeated
        },
        SubjectKind.LEGAL_ENTITY: {
            envelope.RULE_INVALID_SUBJECT: RULE_INVALID_FORMAT,
            envelope.RULE_INVALID_CHECK_DIGIT: RULE_INVALID_CHECK_DIGIT,
            envelope.RULE_INVALID_IDENTIFIER: RULE_INVALID_IDENTIFIER,  # an all-zero serial
        },
        SubjectKind.EE_PERSON: {
            envelope.RULE_INVALID_SUBJECT: RULE_INVALID_FORMAT,
            envelope.RULE_INVALID_CHECK_DIGIT: RULE_INVALID_CHECK_DIGIT,
            envelope.RULE_INVALID_IDENTIFIER: RULE_INVALID_DATE,  # no such birth date
        },
    }
)
# The format messages are ours: a subject's could speak of the whole subject's length.
_FORMAT_MESSAGES: Mapping[SubjectKind, str] = MappingProxyType(
    {
        SubjectKind.NATURAL_PERSON: "a national ID is 10 ASCII digits",
        SubjectKind.LEGAL_ENTITY: "a legal-entity ID is 11 ASCII digits",
        SubjectKind.EE_PERSON: "a personal code is 11 ASCII digits, the first 1 to 8",
    }
)


def verify_postal_code_ir(text: str, *, pointer: str) -> None:
    """Check an Iranian postal code (کد پستی): 10 ASCII digits, no 0 or 2 among the first five,
    the first four not one digit repeated.

    Raises TaxFieldError at pointer: wrong_type (not a string), invalid_format (not 10 ASCII
    digits), invalid_postal_code (digits no postal code has).
    """
    _require_text(text, pointer=pointer)
    if not _POSTAL_CODE_IR.fullmatch(text):
        _refuse(pointer, RULE_INVALID_FORMAT, "a postal code is 10 ASCII digits")
    area = text[:_POSTAL_AREA_DIGITS]
    if not _POSTAL_AREA_NEVER.isdisjoint(area):
        _refuse(pointer, RULE_INVALID_POSTAL_CODE, "a postal code has no 0 or 2 in its first five")
    if len(set(text[:_POSTAL_REPEATED_PREFIX_DIGITS])) == 1:
        message = "a postal code does not start with four equal digits"
        _refuse(pointer, RULE_INVALID_POSTAL_CODE, message)


def verify_national_id_ir(text: str, *, pointer: str) -> None:
    """Check an Iranian national ID (کد ملی), as the subject kind ir-nid.

    Raises TaxFieldError at pointer: wrong_type, invalid_format (not 10 ASCII digits),
    invalid_check_digit, invalid_identifier (one digit repeated).
    """
    _verify_subject(SubjectKind.NATURAL_PERSON, text, pointer=pointer)


def verify_legal_id_ir(text: str, *, pointer: str) -> None:
    """Check an Iranian legal-entity national ID (شناسه ملی), as the subject kind ir-lid.

    Raises TaxFieldError at pointer: wrong_type, invalid_format (not 11 ASCII digits),
    invalid_check_digit, invalid_identifier (the serial digits all zero).
    """
    _verify_subject(SubjectKind.LEGAL_ENTITY, text, pointer=pointer)


def verify_personal_code_ee(text: str, *, pointer: str) -> None:
    """Check an Estonian personal code (isikukood), as the subject kind ee-ik.

    Raises TaxFieldError at pointer: wrong_type, invalid_format (not 11 ASCII digits, or a first
    digit other than 1 to 8), invalid_date (the birth date it encodes does not exist),
    invalid_check_digit.
    """
    _verify_subject(SubjectKind.EE_PERSON, text, pointer=pointer)


def _verify_subject(kind: SubjectKind, text: str, *, pointer: str) -> None:
    _require_text(text, pointer=pointer)
    try:
        # A ":" in text stays in the identifier, which then fails its shape: invalid_format.
        parse_subject(f"{kind.value}:{text}")
    except SubjectError as exc:
        rule = _SUBJECT_RULES[kind].get(exc.rule, RULE_INVALID_FORMAT)
        # signatures.envelope's messages are fixed texts: none repeats the identifier.
        message = _FORMAT_MESSAGES[kind] if rule == RULE_INVALID_FORMAT else str(exc)
        _refuse(pointer, rule, message)


def _require_text(value: object, *, pointer: str) -> None:
    # The signature says str, but payload values come from JSON: refuse anything else plainly.
    if not isinstance(value, str):
        _refuse(pointer, RULE_WRONG_TYPE, "must be a string")


def _refuse(pointer: str, rule: str, message: str) -> NoReturn:
    raise TaxFieldError((FieldError(pointer=pointer, rule=rule, message=message),))
