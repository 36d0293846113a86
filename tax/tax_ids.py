"""Tax IDs of electronic invoices (شماره منحصر به فرد مالیاتی), as in Iran's Moadian system.

A tax ID is 22 characters: the seller's 6-character memory ID (شناسه یکتای حافظه مالیاتی,
[A-Z0-9]) ‖ the issue day as days since 1970-01-01 in uppercase hex, zero-padded to 5 ‖ the
internal serial in uppercase hex, zero-padded to 10 ‖ one Verhoeff check digit.

The check digit is Verhoeff over a decimal string: each LETTER of the memory ID as its ASCII code
("D" → "68"), each DIGIT of it as itself ("5" → "5"), then the day count zero-padded to 6 decimal
digits, then the serial zero-padded to 12. Our spec (s5_einv_spec § 2) said a digit becomes its
ASCII code too ("1" → "49"); every published implementation and vector says otherwise, and the
published rule is the one followed here:
- the tax organisation's worked examples (document RC_DCPS.SN v1.3, annex 1): memory ID DEF5GH,
  day 18463 (2020-07-20), serials 12, 8173 and 2572613409 give DEF5GH0481F000000000C2,
  DEF5GH0481F0000001FED8 and DEF5GH0481F009956F7211, over the decimal string
  "68697057172" ‖ "018463" ‖ serial — the "5" stays "5". Those three are the test vectors of
  github.com/Snapp-Market-Pro/moadian (MIT), tests/InvoiceIdGenerationTest.php and
  tests/VerhoeffServiceTest.php;
- the C# SDK of the tax organisation (TaxCollectData.Library, copy at github.com/hamed-lohi/
  TaxCollectData.Library.Main, TaxCollectData.Library/Business/TaxIdGenerator.cs): a digit of
  the memory ID is appended as is, any other character as its code;
- tax IDs printed in the organisation's API document RC_TICS.IS v1.6 (A1121604C220002F095011,
  A111DW04E8300004349008, …) validate only under this rule (tests/vectors/tax_ids.yaml).
Those implementations pad without truncating ("at least 6 / 12 digits"), and so does this module:
it only matters past day 999 999 (year 4707) or serial 10**12 - 1, both within the hex widths.

The day count is the day of the issue time in UTC (floor(unix_ms / 86 400 000) in the SDKs):
tax.invoices compares it with issued_at that way.

Verhoeff's tables (dihedral group D5: multiplication d, position permutation p, inverse inv) are
those of J. Verhoeff, "Error Detecting Decimal Codes", Mathematical Centre Tract 29, Amsterdam
1969, as tabulated at https://en.wikipedia.org/wiki/Verhoeff_algorithm ("236" → 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NoReturn

from signatures.errors import FieldError
from tax.errors import TaxFieldError

__all__ = [
    "EPOCH",
    "MAX_DAY_COUNT",
    "MAX_SERIAL",
    "MAX_VERHOEFF_DIGITS",
    "RULE_INVALID_CHECK_DIGIT",
    "RULE_INVALID_FORMAT",
    "RULE_WRONG_TYPE",
    "TAX_ID_CHARS",
    "TaxId",
    "decimal_form",
    "is_verhoeff_valid",
    "make_tax_id",
    "parse_tax_id",
    "verhoeff_check_digit",
]

RULE_WRONG_TYPE = "wrong_type"
RULE_INVALID_FORMAT = "invalid_format"
RULE_INVALID_CHECK_DIGIT = "invalid_check_digit"

MEMORY_ID_CHARS = 6
DAY_HEX_CHARS = 5
SERIAL_HEX_CHARS = 10
TAX_ID_CHARS = MEMORY_ID_CHARS + DAY_HEX_CHARS + SERIAL_HEX_CHARS + 1  # 22
DAY_DECIMAL_DIGITS = 6
SERIAL_DECIMAL_DIGITS = 12
EPOCH = date(1970, 1, 1)
MAX_DAY_COUNT = 16**DAY_HEX_CHARS - 1  # 1 048 575 days: year 4840
MAX_SERIAL = 16**SERIAL_HEX_CHARS - 1
# The longest decimal form is 6 letters × 2 + 7 + 13 = 32 digits; Verhoeff is linear in the
# length, but an input from outside is still bounded.
MAX_VERHOEFF_DIGITS = 64

_MEMORY_ID = re.compile(r"[A-Z0-9]{6}")
# Uppercase hex only: "…c2" and "…C2" would be one tax ID in two spellings, and the duplicate
# check (a unique column) would let the second through.
_TAX_ID = re.compile(r"([A-Z0-9]{6})([0-9A-F]{5})([0-9A-F]{10})([0-9])")
_ASCII_DIGITS = re.compile(r"[0-9]+")

# d: the Cayley table of D5; p: the position permutations, p[i] = p[1]^i, period 8; inv: inverses.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


@dataclass(frozen=True)
class TaxId:
    """A well-formed tax ID: its parts and its 22-character text."""

    memory_id: str
    day: date
    serial: int
    text: str

    @property
    def day_count(self) -> int:
        """Days since 1970-01-01."""
        return (self.day - EPOCH).days


def _verhoeff_state(digits: str, *, offset: int) -> int:
    # The last digit takes position `offset` (1 when a check digit is still to be appended).
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _D[check][_P[(position + offset) % 8][ord(char) - ord("0")]]
    return check


def verhoeff_check_digit(digits: str) -> int:
    """The Verhoeff check digit to append to `digits` (ASCII decimal digits).

    Raises ValueError when digits is empty, holds anything but ASCII digits, or is longer than
    MAX_VERHOEFF_DIGITS."""
    if len(digits) > MAX_VERHOEFF_DIGITS or not _ASCII_DIGITS.fullmatch(digits):
        raise ValueError(f"1 to {MAX_VERHOEFF_DIGITS} ASCII digits are needed")
    return _INV[_verhoeff_state(digits, offset=1)]


def is_verhoeff_valid(digits: str) -> bool:
    """Whether `digits` (ASCII digits, its check digit last) passes Verhoeff's check; False for
    anything else, including "" and strings longer than MAX_VERHOEFF_DIGITS."""
    if len(digits) > MAX_VERHOEFF_DIGITS or not _ASCII_DIGITS.fullmatch(digits):
        return False
    return _verhoeff_state(digits, offset=0) == 0


def decimal_form(memory_id: str, *, day_count: int, serial: int) -> str:
    """The decimal string the check digit is computed over (module docstring): letters of the
    memory ID as ASCII codes, its digits as themselves, then the day count and the serial,
    zero-padded to at least 6 and 12 digits.

    Raises ValueError (naming the rule) for a memory ID not of 6 [A-Z0-9] or a negative count."""
    if not _MEMORY_ID.fullmatch(memory_id):
        raise ValueError("invalid_memory_id: a memory ID is 6 of [A-Z0-9]")
    if day_count < 0 or serial < 0:
        raise ValueError("out_of_range: the day count and the serial are not negative")
    letters = "".join(char if char.isdigit() else str(ord(char)) for char in memory_id)
    return f"{letters}{day_count:0{DAY_DECIMAL_DIGITS}d}{serial:0{SERIAL_DECIMAL_DIGITS}d}"


def make_tax_id(memory_id: str, *, day: date, serial: int) -> TaxId:
    """The tax ID of the invoice numbered `serial` by the memory `memory_id`, issued on `day`
    (its UTC day).

    Raises ValueError naming the rule: invalid_memory_id (not 6 of [A-Z0-9]), day_out_of_range
    (before 1970-01-01 or past MAX_DAY_COUNT days), serial_out_of_range (not 0..MAX_SERIAL)."""
    if not _MEMORY_ID.fullmatch(memory_id):
        raise ValueError("invalid_memory_id: a memory ID is 6 of [A-Z0-9]")
    day_count = (day - EPOCH).days
    if not 0 <= day_count <= MAX_DAY_COUNT:
        raise ValueError(f"day_out_of_range: {EPOCH.isoformat()} + 0..{MAX_DAY_COUNT} days")
    if isinstance(serial, bool) or not 0 <= serial <= MAX_SERIAL:
        raise ValueError(f"serial_out_of_range: a serial is within 0..{MAX_SERIAL}")
    check = verhoeff_check_digit(decimal_form(memory_id, day_count=day_count, serial=serial))
    text = f"{memory_id}{day_count:05X}{serial:010X}{check}"
    return TaxId(memory_id=memory_id, day=day, serial=serial, text=text)


def parse_tax_id(text: str, *, pointer: str) -> TaxId:
    """Parse and check a tax ID.

    Raises TaxFieldError holding one FieldError at `pointer`: wrong_type (not a string),
    invalid_format (not 22 characters: 6 of [A-Z0-9], 15 of uppercase hex, one digit),
    invalid_check_digit (the last digit is not the Verhoeff digit of the rest). Messages never
    repeat the value."""
    if not isinstance(text, str):  # payload values come from JSON: refuse anything else plainly
        _refuse(pointer, RULE_WRONG_TYPE, "a tax ID is a string")
    match = _TAX_ID.fullmatch(text) if len(text) == TAX_ID_CHARS else None
    if match is None:
        message = "a tax ID is 22 characters: 6 of [A-Z0-9], 15 uppercase hex digits, a digit"
        _refuse(pointer, RULE_INVALID_FORMAT, message)
    memory_id, day_hex, serial_hex, check = match.groups()
    day_count = int(day_hex, 16)
    serial = int(serial_hex, 16)
    digits = decimal_form(memory_id, day_count=day_count, serial=serial) + check
    if not is_verhoeff_valid(digits):
        _refuse(pointer, RULE_INVALID_CHECK_DIGIT, "the check digit does not match the tax ID")
    day = EPOCH + timedelta(days=day_count)
    return TaxId(memory_id=memory_id, day=day, serial=serial, text=text)


def _refuse(pointer: str, rule: str, message: str) -> NoReturn:
    raise TaxFieldError((FieldError(pointer=pointer, rule=rule, message=message),))
