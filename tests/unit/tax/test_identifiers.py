"""tax.identifiers: one FieldError at the pointer given, a stable rule, never the value.

Postal codes: 1193653471 is the spec's example; 1416932790 was confirmed at gnaf2.post.ir
(github.com/VahidN/DNTPersianUtils.Core issue 89) and 5951412749 reported as a real code
(github.com/sadegh19b/laravel-persian-validation issue 18): both have a 2 in the last five digits,
which some validators wrongly refuse. National and legal-entity IDs are the vectors of
tests/unit/signatures/test_envelope.py; personal codes those of test_subjects_ee.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tax.errors import TaxFieldError
from tax.identifiers import (
    RULE_INVALID_CHECK_DIGIT,
    RULE_INVALID_DATE,
    RULE_INVALID_FORMAT,
    RULE_INVALID_IDENTIFIER,
    RULE_INVALID_POSTAL_CODE,
    RULE_WRONG_TYPE,
    verify_legal_id_ir,
    verify_national_id_ir,
    verify_personal_code_ee,
    verify_postal_code_ir,
)

Verifier = Callable[..., None]
POINTER = "/payload/some/field"


def refusal(verify: Verifier, value: object) -> tuple[str, str, str]:
    """(pointer, rule, message) of the one FieldError verify raises for value."""
    with pytest.raises(TaxFieldError) as caught:
        verify(value, pointer=POINTER)
    (error,) = caught.value.errors
    return error.pointer, error.rule, error.message


# --- postal codes --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["1193653471", "1416932790", "5951412749", "9813620000"])
def test_valid_postal_codes(code: str) -> None:
    verify_postal_code_ir(code, pointer=POINTER)


POSTAL_REFUSALS = [
    pytest.param("119365347", RULE_INVALID_FORMAT, id="9_digits"),
    pytest.param("11936534711", RULE_INVALID_FORMAT, id="11_digits"),
    pytest.param("", RULE_INVALID_FORMAT, id="empty"),
    pytest.param("۱۱۹۳۶۵۳۴۷۱", RULE_INVALID_FORMAT, id="persian_digits"),
    pytest.param("11936-53471", RULE_INVALID_FORMAT, id="hyphen"),
    pytest.param(" 1193653471", RULE_INVALID_FORMAT, id="leading_space"),
    pytest.param("1093653471", RULE_INVALID_POSTAL_CODE, id="0_second"),
    pytest.param("0193653471", RULE_INVALID_POSTAL_CODE, id="0_first"),
    pytest.param("1193053471", RULE_INVALID_POSTAL_CODE, id="0_fifth"),
    pytest.param("1123653471", RULE_INVALID_POSTAL_CODE, id="2_third"),
    pytest.param("2193653471", RULE_INVALID_POSTAL_CODE, id="2_first"),
    pytest.param("1111653471", RULE_INVALID_POSTAL_CODE, id="four_ones"),
    pytest.param("9999153471", RULE_INVALID_POSTAL_CODE, id="four_nines"),
    pytest.param(1193653471, RULE_WRONG_TYPE, id="integer"),
    pytest.param(None, RULE_WRONG_TYPE, id="null"),
]


@pytest.mark.parametrize(("value", "rule"), POSTAL_REFUSALS)
def test_postal_code_refusals(value: object, rule: str) -> None:
    pointer, got_rule, message = refusal(verify_postal_code_ir, value)
    assert (pointer, got_rule) == (POINTER, rule)
    if value:
        assert str(value) not in message


def test_a_five_in_fifth_place_is_accepted() -> None:
    """The "fifth digit never 5" rule of older validators is not applied (tax/identifiers.py)."""
    verify_postal_code_ir("1193553471", pointer=POINTER)


def test_three_equal_leading_digits_accepted() -> None:
    verify_postal_code_ir("1113653471", pointer=POINTER)


# --- Iranian national and legal-entity IDs -------------------------------------------------------


@pytest.mark.parametrize("value", ["0499370899", "0932833810", "0076229645", "1583250689"])
def test_valid_national_ids(value: str) -> None:
    verify_national_id_ir(value, pointer=POINTER)


@pytest.mark.parametrize("value", ["10380284790", "10380284700"])
def test_valid_legal_ids(value: str) -> None:
    verify_legal_id_ir(value, pointer=POINTER)


@pytest.mark.parametrize("value", ["37605030299", "46805280103", "50002290013", "37605030920"])
def test_valid_personal_codes(value: str) -> None:
    verify_personal_code_ee(value, pointer=POINTER)


SUBJECT_REFUSALS = [
    pytest.param(verify_national_id_ir, "0499370898", RULE_INVALID_CHECK_DIGIT, id="nid_check"),
    pytest.param(verify_national_id_ir, "1111111111", RULE_INVALID_IDENTIFIER, id="nid_repeated"),
    pytest.param(verify_national_id_ir, "049937089", RULE_INVALID_FORMAT, id="nid_9_digits"),
    pytest.param(verify_national_id_ir, "ir-nid:0499370899", RULE_INVALID_FORMAT, id="nid_kind"),
    pytest.param(verify_national_id_ir, "0" * 100, RULE_INVALID_FORMAT, id="nid_huge"),
    pytest.param(verify_national_id_ir, 499370899, RULE_WRONG_TYPE, id="nid_integer"),
    pytest.param(verify_legal_id_ir, "10380284792", RULE_INVALID_CHECK_DIGIT, id="lid_check"),
    pytest.param(verify_legal_id_ir, "00000000000", RULE_INVALID_IDENTIFIER, id="lid_zero"),
    pytest.param(verify_legal_id_ir, "1038028479", RULE_INVALID_FORMAT, id="lid_10_digits"),
    pytest.param(verify_legal_id_ir, "0499370899", RULE_INVALID_FORMAT, id="lid_a_national_id"),
    pytest.param(verify_personal_code_ee, "37605030298", RULE_INVALID_CHECK_DIGIT, id="ik_check"),
    pytest.param(verify_personal_code_ee, "38102290106", RULE_INVALID_DATE, id="ik_1981-02-29"),
    pytest.param(verify_personal_code_ee, "30002290011", RULE_INVALID_DATE, id="ik_1900-02-29"),
    pytest.param(verify_personal_code_ee, "37613010017", RULE_INVALID_DATE, id="ik_month_13"),
    pytest.param(verify_personal_code_ee, "06805280106", RULE_INVALID_FORMAT, id="ik_century_0"),
    pytest.param(verify_personal_code_ee, "96805280109", RULE_INVALID_FORMAT, id="ik_century_9"),
    pytest.param(verify_personal_code_ee, "3760503029", RULE_INVALID_FORMAT, id="ik_10_digits"),
    pytest.param(verify_personal_code_ee, "37605030299:1", RULE_INVALID_FORMAT, id="ik_colon"),
    pytest.param(verify_personal_code_ee, [], RULE_WRONG_TYPE, id="ik_list"),
]


@pytest.mark.parametrize(("verify", "value", "rule"), SUBJECT_REFUSALS)
def test_identifier_refusals(verify: Verifier, value: object, rule: str) -> None:
    pointer, got_rule, message = refusal(verify, value)
    assert (pointer, got_rule) == (POINTER, rule)
    if isinstance(value, str):
        assert value[:9] not in message  # not even most of it
    assert "ir-nid" not in message and "ee-ik" not in message  # no subject talk in tax fields


def test_the_pointer_is_the_callers() -> None:
    with pytest.raises(TaxFieldError) as caught:
        verify_national_id_ir("0499370898", pointer="/payload/salary/3/employer")
    assert [e.pointer for e in caught.value.errors] == ["/payload/salary/3/employer"]
    assert "0499370898" not in str(caught.value)
