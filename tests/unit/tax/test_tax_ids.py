"""tax.tax_ids: published tax-ID vectors (tests/vectors/tax_ids.yaml), the Verhoeff check digit,
make/parse round trips, and what a one-character mutation does.

What truly holds for mutations. Verhoeff catches every single-digit substitution and every
adjacent transposition of the DIGIT STRING it is computed over (the decimal form). A change of
one character of the 22-character text is not always such a change there:
- a digit of the memory ID, or the check digit: one decimal digit changes → always refused;
- a letter of the memory ID becomes its two-digit ASCII code: D (68) → E (69) changes one digit
  (refused), D (68) → O (79) changes two (may pass), a letter → a digit shortens the form;
- a hex digit of the day or the serial changes the NUMBER, whose decimal digits may change in
  several places (serial 0xC → 0x8 is "12" → "08").
So the tests assert: every mutation whose decimal form differs by one substitution or one
adjacent transposition is refused; every mutation of the check digit and every non-format
character is refused; the few accepted mutants are exactly the multi-digit kind, and three of
them are pinned as vectors ("undetected"). A mutated day is still caught by check_invoice, which
compares it with issued_at; a mutated serial is caught by nothing but the duplicate check.
"""

from __future__ import annotations

import re
import shutil
import string
from datetime import date
from pathlib import Path

import pytest
import yaml

from tax.errors import TaxFieldError
from tax.tax_ids import (
    EPOCH,
    MAX_DAY_COUNT,
    MAX_SERIAL,
    MAX_VERHOEFF_DIGITS,
    RULE_INVALID_CHECK_DIGIT,
    RULE_INVALID_FORMAT,
    RULE_WRONG_TYPE,
    TAX_ID_CHARS,
    TaxId,
    decimal_form,
    is_verhoeff_valid,
    make_tax_id,
    parse_tax_id,
    verhoeff_check_digit,
)

VECTOR_FILE = Path(__file__).parents[2] / "vectors" / "tax_ids.yaml"
POINTER = "/payload/invoices/0/tax_id"
SECTIONS = {"sources", "valid", "invalid", "undetected", "verhoeff", "verhoeff_invalid"}
CASE_KEYS = {
    "valid": ({"name", "source", "tax_id", "memory_id", "day", "serial"}, {"decimal_form"}),
    "invalid": ({"name", "source", "tax_id", "rule"}, set()),
    "undetected": ({"name", "source", "of", "tax_id"}, set()),
    "verhoeff": ({"name", "source", "digits", "check"}, set()),
    "verhoeff_invalid": ({"name", "source", "digits"}, set()),
}
ALPHABET = string.ascii_uppercase + string.digits
_WELL_FORMED = re.compile(r"[A-Z0-9]{6}[0-9A-F]{15}[0-9]")

Case = dict[str, object]


# --- the runner -----------------------------------------------------------------------------------


def load_vectors(path: Path) -> dict[str, list[Case]]:
    """The cases of a vector file by section, checked for shape.

    Raises AssertionError naming the section and case when the file is malformed."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict) and set(doc) == SECTIONS, f"sections are {sorted(SECTIONS)}"
    sources = doc["sources"]
    assert isinstance(sources, dict) and sources, "sources is a non-empty mapping"
    names: set[str] = set()
    out: dict[str, list[Case]] = {}
    for section, (required, optional) in CASE_KEYS.items():
        cases = doc[section]
        assert isinstance(cases, list) and cases, f"{section}: a non-empty list"
        for case in cases:
            assert isinstance(case, dict), f"{section}: each case is a mapping"
            keys = set(case)
            assert required <= keys <= required | optional, f"{section}: keys of {case}"
            assert case["name"] not in names, f"{section}: {case['name']} named twice"
            assert case["source"] in sources, f"{section}: {case['name']}: unknown source"
            names.add(str(case["name"]))
        out[section] = cases
    return out


def check_case(section: str, case: Case) -> None:
    """Assert one case holds. Raises AssertionError (or the code's own error) when it does not."""
    if section == "valid":
        check_valid(case)
    elif section == "invalid":
        with pytest.raises(TaxFieldError) as caught:
            parse_tax_id(str(case["tax_id"]), pointer=POINTER)
        (error,) = caught.value.errors
        assert (error.pointer, error.rule) == (POINTER, case["rule"])
        assert str(case["tax_id"]) not in error.message
    elif section == "undetected":
        original, mutant = str(case["of"]), str(case["tax_id"])
        assert sum(a != b for a, b in zip(original, mutant, strict=True)) == 1
        parse_tax_id(original, pointer=POINTER)
        parse_tax_id(mutant, pointer=POINTER)  # valid: the limit of one check digit
    elif section == "verhoeff":
        digits = str(case["digits"])
        assert verhoeff_check_digit(digits) == case["check"]
        assert is_verhoeff_valid(f"{digits}{case['check']}")
    else:
        assert not is_verhoeff_valid(str(case["digits"]))


def check_valid(case: Case) -> None:
    text, memory_id = str(case["tax_id"]), str(case["memory_id"])
    day, serial = date.fromisoformat(str(case["day"])), case["serial"]
    assert isinstance(serial, int)
    assert parse_tax_id(text, pointer=POINTER) == TaxId(memory_id, day, serial, text)
    assert make_tax_id(memory_id, day=day, serial=serial).text == text
    form = decimal_form(memory_id, day_count=(day - EPOCH).days, serial=serial)
    if "decimal_form" in case:
        assert form == case["decimal_form"]
    assert is_verhoeff_valid(form + text[-1])


VECTORS = load_vectors(VECTOR_FILE)
CASES = [
    pytest.param(section, case, id=f"{section}::{case['name']}")
    for section, cases in VECTORS.items()
    for case in cases
]


@pytest.mark.parametrize(("section", "case"), CASES)
def test_vector(section: str, case: Case) -> None:
    check_case(section, case)


@pytest.mark.parametrize(
    ("section", "key", "wrong"),
    [
        ("valid", "serial", 13),
        ("valid", "day", "2020-07-21"),
        ("valid", "decimal_form", "68697057172018463000000000013"),
        ("invalid", "rule", RULE_INVALID_FORMAT),
        ("verhoeff", "check", 4),
        ("undetected", "tax_id", "DEF5GH0481F000000000C3"),
    ],
)
def test_the_runner_fails_a_wrong_expectation(section: str, key: str, wrong: object) -> None:
    case = dict(VECTORS[section][0])
    case[key] = wrong
    with pytest.raises((AssertionError, TaxFieldError)):
        check_case(section, case)


def test_the_runner_refuses_malformed_files(tmp_path: Path) -> None:
    copy = tmp_path / "tax_ids.yaml"
    shutil.copy(VECTOR_FILE, copy)
    assert load_vectors(copy)  # the copy itself loads
    text = copy.read_text(encoding="utf-8")
    for old, new in [
        ("    source: rc_tics_is\n", "    source: nowhere\n"),  # an unknown source
        ("  - name: def5gh_serial_8173\n", "  - name: def5gh_serial_12\n"),  # a name twice
        ("    rule: invalid_format\n", "    rule: invalid_format\n    note: x\n"),  # a key
        ("\nverhoeff_invalid:\n", "\nverhoeff_wrong:\n"),  # a section
    ]:
        assert old in text
        copy.write_text(text.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(AssertionError):
            load_vectors(copy)


# --- Verhoeff -------------------------------------------------------------------------------------


@pytest.mark.parametrize("digits", ["", "12a", "١٢٣", " 123", "1" * (MAX_VERHOEFF_DIGITS + 1)])
def test_verhoeff_refuses_what_is_not_ascii_digits(digits: str) -> None:
    with pytest.raises(ValueError):
        verhoeff_check_digit(digits)
    assert not is_verhoeff_valid(digits)


def test_verhoeff_catches_every_single_error_of_a_long_string() -> None:
    digits = "6511216019490000049321217"
    valid = digits + str(verhoeff_check_digit(digits))
    assert is_verhoeff_valid(valid)
    for i in range(len(valid)):
        for other in "0123456789":
            if other != valid[i]:
                assert not is_verhoeff_valid(valid[:i] + other + valid[i + 1 :])
        if i + 1 < len(valid) and valid[i] != valid[i + 1]:
            swapped = valid[:i] + valid[i + 1] + valid[i] + valid[i + 2 :]
            assert not is_verhoeff_valid(swapped)


# --- make and parse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory_id", "day", "serial", "rule"),
    [
        ("DEF5G", date(2020, 7, 20), 1, "invalid_memory_id"),
        ("def5gh", date(2020, 7, 20), 1, "invalid_memory_id"),
        ("DEF5G-", date(2020, 7, 20), 1, "invalid_memory_id"),
        ("DEF5GH", date(1969, 12, 31), 1, "day_out_of_range"),
        ("DEF5GH", EPOCH.fromordinal(EPOCH.toordinal() + MAX_DAY_COUNT + 1), 1, "day_out_of_range"),
        ("DEF5GH", date(2020, 7, 20), -1, "serial_out_of_range"),
        ("DEF5GH", date(2020, 7, 20), MAX_SERIAL + 1, "serial_out_of_range"),
    ],
)
def test_make_refuses(memory_id: str, day: date, serial: int, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        make_tax_id(memory_id, day=day, serial=serial)


def test_make_and_parse_at_the_limits() -> None:
    last_day = EPOCH.fromordinal(EPOCH.toordinal() + MAX_DAY_COUNT)
    for day, serial in [(EPOCH, 0), (last_day, MAX_SERIAL), (date(2025, 6, 1), 1)]:
        made = make_tax_id("A1B2C3", day=day, serial=serial)
        assert len(made.text) == TAX_ID_CHARS
        assert parse_tax_id(made.text, pointer=POINTER) == made
        assert made.day_count == (day - EPOCH).days
    # Past 10**12 - 1 the serial has 13 decimal digits: padded, never truncated (as published).
    assert decimal_form("A1B2C3", day_count=0, serial=MAX_SERIAL).endswith(str(MAX_SERIAL))


@pytest.mark.parametrize("value", [None, 12, ["DEF5GH0481F000000000C2"]])
def test_parse_refuses_a_non_string(value: object) -> None:
    with pytest.raises(TaxFieldError) as caught:
        parse_tax_id(value, pointer=POINTER)  # type: ignore[arg-type]
    assert [(e.pointer, e.rule) for e in caught.value.errors] == [(POINTER, RULE_WRONG_TYPE)]


# --- one-character mutations ----------------------------------------------------------------------


def _digit_change(before: str, after: str) -> str:
    """How two digit strings differ: "single", "transposition" (of two adjacent digits), or
    "other"."""
    if len(before) != len(after):
        return "other"
    places = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    if len(places) == 1:
        return "single"
    if len(places) == 2 and places[1] == places[0] + 1:
        first, second = places
        if (before[first], before[second]) == (after[second], after[first]):
            return "transposition"
    return "other"


def _digits(text: str) -> str:
    """The decimal form of a well-formed tax ID with its check digit: what Verhoeff checks."""
    serial = int(text[11:21], 16)
    return decimal_form(text[:6], day_count=int(text[6:11], 16), serial=serial) + text[-1]


def _mutants(text: str) -> list[str]:
    """Every one-character substitution (any of [A-Z0-9a-z] and a few others) and every swap of
    two adjacent different characters."""
    out = [
        text[:i] + char + text[i + 1 :]
        for i in range(len(text))
        for char in ALPHABET + "afz-۱ "
        if char != text[i]
    ]
    out += [
        text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        for i in range(len(text) - 1)
        if text[i] != text[i + 1]
    ]
    return out


VALID_IDS = [str(case["tax_id"]) for case in VECTORS["valid"]]
UNDETECTED = {str(case["tax_id"]) for case in VECTORS["undetected"]}


@pytest.mark.parametrize("text", VALID_IDS)
def test_what_a_mutation_does(text: str) -> None:
    accepted: list[str] = []
    for mutant in _mutants(text):
        try:
            parse_tax_id(mutant, pointer=POINTER)
        except TaxFieldError as error:
            assert error.errors[0].rule in (RULE_INVALID_FORMAT, RULE_INVALID_CHECK_DIGIT)
            continue
        accepted.append(mutant)
        # Never a change Verhoeff guarantees to catch (so never the check digit alone).
        assert _digit_change(_digits(text), _digits(mutant)) == "other", mutant
    # The accepted share is small (about 1 in 20 here, near Verhoeff's 1 in 10 for random
    # multi-digit errors, since most mutations are caught for sure).
    assert len(accepted) < len(_mutants(text)) // 10
    if text == "DEF5GH0481F000000000C2":
        assert set(accepted) >= UNDETECTED


@pytest.mark.parametrize("text", VALID_IDS)
def test_single_digit_changes_of_the_decimal_form_are_always_refused(text: str) -> None:
    """Every well-formed mutant whose digit string differs by one digit or one adjacent
    transposition (a digit of the memory ID, the check digit, D → E, many hex changes) is
    refused, and there are many of them."""
    caught = 0
    for mutant in _mutants(text):
        if _WELL_FORMED.fullmatch(mutant) is None:
            continue
        if _digit_change(_digits(text), _digits(mutant)) in ("single", "transposition"):
            with pytest.raises(TaxFieldError) as error:
                parse_tax_id(mutant, pointer=POINTER)
            assert error.value.errors[0].rule == RULE_INVALID_CHECK_DIGIT
            caught += 1
    assert caught >= 30
