"""tax.returns.parse_return: shapes, limits, identifiers and every error in one raise.

The packs are the small ones of test_engine (written into tmp_path), served in place of the
shipped packs: "ir" (Solar Hijri, so postal codes are required) and "yy" (no postal code, a
distribution-based corporate tax, monthly corporate returns).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import cast

import pytest

from signatures.canonical import MAX_SAFE_INTEGER, JsonValue
from signatures.errors import FieldError
from tax import returns
from tax.errors import TaxFieldError
from tax.returns import (
    MAX_AMOUNT_MINOR,
    MAX_DEDUCTIONS,
    MAX_EMPLOYERS,
    Deduction,
    SalaryEntry,
    parse_return,
)
from tax.rulepack import RulePack
from tests.unit.tax.test_engine import HEAD, ZZ_PARAMS, write_pack, yy_pack

UUID4 = "5f0c1a2e-8d3b-4c6f-9a1e-2b3c4d5e6f70"
POSTAL_CODE = "1193653471"


@pytest.fixture
def packs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, RulePack]:
    jalali = ZZ_PARAMS.replace('since = "2020-01-01"', 'since = "1399-01-01"').replace(
        'since = "2023-07-01"', 'since = "1402-04-10"'
    )
    served = {
        "ir": write_pack(
            tmp_path, jalali, jurisdiction="ir", calendar="solar_hijri", first_year="1399"
        ),
        "yy": yy_pack(tmp_path),
    }

    def pack_for(jurisdiction: str) -> RulePack:
        if jurisdiction not in served:
            raise TaxFieldError(
                (FieldError("/payload/jurisdiction", "unknown_jurisdiction", "no pack"),)
            )
        return served[jurisdiction]

    monkeypatch.setattr(returns, "pack_for", pack_for)
    return served


def refused(payload: object, *, kind: str = "personal") -> list[tuple[str, str]]:
    """The (pointer, rule) of every error; payloads here may hold what JSON cannot (floats)."""
    with pytest.raises(TaxFieldError) as caught:
        parse_return(cast(JsonValue, payload), kind=kind)
    return [(error.pointer, error.rule) for error in caught.value.errors]


def ir_personal(**members: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "jurisdiction": "ir",
        "period": "1403",
        "postal_code": POSTAL_CODE,
    }
    payload.update(members)
    return payload


def test_the_spec_example_parses(packs: dict[str, RulePack]) -> None:
    payload = ir_personal(
        salary=[
            {
                "employer": "ir-lid:10380284790",
                "annual_minor": 1_800_000_000,
                "withheld_minor": 12_000_000,
            },
            {
                "employer": "ir-nid:0499370899",
                "monthly_minor": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            },
        ],
        other_income_minor=900_000_000,
        deductions=[{"code": "insurance", "amount_minor": 5_000_000}],
        tax_prepaid_minor=7,
        amends=UUID4,
    )
    data = parse_return(cast(JsonValue, payload), kind="personal")
    assert data.kind == "personal" and data.jurisdiction == "ir"
    assert data.period.label == "1403"
    assert (data.period.start, data.period.end) == (date(2024, 3, 20), date(2025, 3, 20))
    assert data.postal_code == POSTAL_CODE
    assert data.salary == (
        SalaryEntry("ir-lid:10380284790", 1_800_000_000, None, 12_000_000),
        SalaryEntry("ir-nid:0499370899", None, tuple(range(1, 13)), 0),
    )
    assert data.salary[1].total_minor == 78
    assert data.other_income_minor == 900_000_000
    assert data.deductions == (Deduction("insurance", 5_000_000),)
    assert data.tax_prepaid_minor == 7 and data.amends == UUID4


def test_a_minimal_return_has_defaults(packs: dict[str, RulePack]) -> None:
    data = parse_return({"jurisdiction": "yy", "period": "2024"}, kind="personal")
    assert data.salary == () and data.deductions == () and data.other_income_minor is None
    assert data.tax_prepaid_minor == 0 and data.amends is None and data.postal_code is None


def test_every_error_in_one_raise(packs: dict[str, RulePack]) -> None:
    payload = {
        "jurisdiction": "ir",
        "period": "14x3",
        "salary": [{"employer": "ir-nid:1234567890", "annual_minor": 1.5}],
        "other_income_minor": -1,
        "deductions": [{"code": "Bad", "amount_minor": 1}, {"code": "x"}],
        "amends": "not-a-uuid",
        "bogus": 1,
    }
    assert refused(payload) == [
        ("/payload/bogus", "unknown_member"),
        ("/payload/period", "invalid_period"),
        ("/payload/postal_code", "required"),
        ("/payload/amends", "invalid_format"),
        ("/payload/salary/0/employer", "invalid_check_digit"),
        ("/payload/salary/0/annual_minor", "float_not_allowed"),
        ("/payload/other_income_minor", "out_of_range"),
        ("/payload/deductions/0/code", "invalid_format"),
        ("/payload/deductions/1/amount_minor", "required"),
    ]


def test_messages_never_repeat_the_value(packs: dict[str, RulePack]) -> None:
    payload = ir_personal(
        postal_code="1293653471", salary=[{"employer": "ir-nid:1234567890", "annual_minor": 1}]
    )
    with pytest.raises(TaxFieldError) as caught:
        parse_return(cast(JsonValue, payload), kind="personal")
    rules = {error.pointer: error.rule for error in caught.value.errors}
    assert rules == {
        "/payload/postal_code": "invalid_postal_code",
        "/payload/salary/0/employer": "invalid_check_digit",
    }
    for error in caught.value.errors:
        assert "1293653471" not in error.message and "1234567890" not in error.message


def test_unknown_jurisdiction_and_unsupported_return(
    packs: dict[str, RulePack], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert refused({"jurisdiction": "xx", "period": "2024"}) == [
        ("/payload/jurisdiction", "unknown_jurisdiction")
    ]
    assert refused({"jurisdiction": 7, "period": "2024"}) == [
        ("/payload/jurisdiction", "wrong_type")
    ]
    # A pack with a personal return only.
    no_corporate = HEAD.split("[returns.corporate]")[0]
    path = tmp_path / "pp.toml"
    path.write_text(
        no_corporate.format(
            jurisdiction="pp",
            calendar="gregorian",
            rounding="down",
            revision=1,
            first_year="2020",
            corporate_period="year",
            corporate_first="2020",
            payment_deadline="deadline.personal",
        )
        + ZZ_PARAMS,
        encoding="utf-8",
    )
    from tax.rulepack import load_pack

    personal_only = load_pack(path)
    monkeypatch.setattr(returns, "pack_for", lambda jurisdiction: personal_only)
    assert refused({"jurisdiction": "pp", "period": "2024"}, kind="corporate") == [
        ("/payload/jurisdiction", "unsupported_return")
    ]


def test_postal_code_only_where_the_jurisdiction_has_one(packs: dict[str, RulePack]) -> None:
    assert refused({"jurisdiction": "ir", "period": "1403"}) == [
        ("/payload/postal_code", "required")
    ]
    assert refused(ir_personal(postal_code="12345")) == [("/payload/postal_code", "invalid_format")]
    assert refused(ir_personal(postal_code=1193653471)) == [("/payload/postal_code", "wrong_type")]
    assert refused({"jurisdiction": "yy", "period": "2024", "postal_code": POSTAL_CODE}) == [
        ("/payload/postal_code", "not_applicable")
    ]


def test_limits(packs: dict[str, RulePack]) -> None:
    employers = [{"employer": "ir-lid:10380284790", "annual_minor": 1}] * (MAX_EMPLOYERS + 1)
    assert refused(ir_personal(salary=employers)) == [("/payload/salary", "too_long")]
    deductions = [{"code": f"c{n}", "amount_minor": 1} for n in range(MAX_DEDUCTIONS + 1)]
    assert refused(ir_personal(deductions=deductions)) == [("/payload/deductions", "too_long")]
    assert refused(ir_personal(other_income_minor=MAX_AMOUNT_MINOR + 1)) == [
        ("/payload/other_income_minor", "out_of_range")
    ]
    assert MAX_AMOUNT_MINOR == MAX_SAFE_INTEGER
    parse_return(cast(JsonValue, ir_personal(other_income_minor=MAX_AMOUNT_MINOR)), kind="personal")


def test_totals_stay_within_the_limit(packs: dict[str, RulePack]) -> None:
    half = MAX_AMOUNT_MINOR // 2 + 1
    salary = [{"employer": "ir-lid:10380284790", "annual_minor": half, "withheld_minor": half}]
    assert refused(ir_personal(salary=salary, other_income_minor=half)) == [
        ("/payload", "out_of_range")
    ]
    assert refused(ir_personal(salary=salary, tax_prepaid_minor=half)) == [
        ("/payload", "out_of_range")
    ]
    deductions = [{"code": "a", "amount_minor": half}, {"code": "b", "amount_minor": half}]
    assert refused(ir_personal(deductions=deductions)) == [("/payload", "out_of_range")]


def test_salary_entry_shapes(packs: dict[str, RulePack]) -> None:
    employer = "ir-lid:10380284790"
    assert refused(ir_personal(salary=[{"employer": employer, "monthly_minor": [1] * 11}])) == [
        ("/payload/salary/0/monthly_minor", "wrong_type")
    ]
    assert refused(
        ir_personal(salary=[{"employer": employer, "monthly_minor": [1] * 11 + [-1]}])
    ) == [("/payload/salary/0/monthly_minor/11", "out_of_range")]
    both = {"employer": employer, "annual_minor": 1, "monthly_minor": [1] * 12}
    assert refused(ir_personal(salary=[both])) == [("/payload/salary/0", "conflicting_members")]
    assert refused(ir_personal(salary=[{"employer": employer}])) == [
        ("/payload/salary/0/annual_minor", "required")
    ]
    assert refused(ir_personal(salary=[{"annual_minor": 1}])) == [
        ("/payload/salary/0/employer", "required")
    ]
    assert refused(ir_personal(salary=[{"employer": "nobody", "annual_minor": 1}])) == [
        ("/payload/salary/0/employer", "invalid_subject")
    ]
    twice = [{"employer": employer, "annual_minor": 1}, {"employer": employer, "annual_minor": 2}]
    assert refused(ir_personal(salary=twice)) == [("/payload/salary/1/employer", "duplicate")]
    assert refused(ir_personal(salary={"employer": employer})) == [
        ("/payload/salary", "wrong_type")
    ]
    assert refused(ir_personal(salary=["x"])) == [("/payload/salary/0", "wrong_type")]


def test_amount_types(packs: dict[str, RulePack]) -> None:
    assert refused(ir_personal(other_income_minor=True)) == [
        ("/payload/other_income_minor", "wrong_type")
    ]
    assert refused(ir_personal(other_income_minor="5")) == [
        ("/payload/other_income_minor", "wrong_type")
    ]
    assert refused(ir_personal(other_income_minor=None)) == [
        ("/payload/other_income_minor", "wrong_type")
    ]
    assert refused(ir_personal(tax_prepaid_minor=0.0)) == [
        ("/payload/tax_prepaid_minor", "float_not_allowed")
    ]


def test_deduction_codes(packs: dict[str, RulePack]) -> None:
    twice = [{"code": "a", "amount_minor": 1}, {"code": "a", "amount_minor": 2}]
    assert refused(ir_personal(deductions=twice)) == [("/payload/deductions/1/code", "duplicate")]
    too_long = [{"code": "a" * 65, "amount_minor": 1}]
    assert refused(ir_personal(deductions=too_long)) == [
        ("/payload/deductions/0/code", "invalid_format")
    ]
    extra = [{"code": "a", "amount_minor": 1, "note": "x"}]
    assert refused(ir_personal(deductions=extra)) == [
        ("/payload/deductions/0/note", "unknown_member")
    ]


def test_corporate_members_follow_the_packs_base(packs: dict[str, RulePack]) -> None:
    base = {"jurisdiction": "ir", "period": "1403", "postal_code": POSTAL_CODE}
    data = parse_return({**base, "profit_minor": -5}, kind="corporate")
    assert data.profit_minor == -5 and data.distributed_profit_minor is None
    assert refused(base, kind="corporate") == [("/payload/profit_minor", "required")]
    assert refused(
        {**base, "profit_minor": 1, "distributed_profit_minor": 1}, kind="corporate"
    ) == [("/payload/distributed_profit_minor", "not_applicable")]
    assert refused({**base, "profit_minor": -MAX_AMOUNT_MINOR - 1}, kind="corporate") == [
        ("/payload/profit_minor", "out_of_range")
    ]
    monthly = {"jurisdiction": "yy", "period": "2025-02"}
    data = parse_return({**monthly, "distributed_profit_minor": 9}, kind="corporate")
    assert data.distributed_profit_minor == 9 and data.period.label == "2025-02"
    assert refused({**monthly, "profit_minor": 9}, kind="corporate") == [
        ("/payload/profit_minor", "not_applicable"),
        ("/payload/distributed_profit_minor", "required"),
    ]
    assert refused({**monthly, "distributed_profit_minor": -1}, kind="corporate") == [
        ("/payload/distributed_profit_minor", "out_of_range")
    ]
    assert refused({"jurisdiction": "yy", "period": "2025"}, kind="corporate") == [
        ("/payload/period", "invalid_period")
    ]
    assert refused(ir_personal(profit_minor=1)) == [("/payload/profit_minor", "unknown_member")]


def test_corporate_base_unknown_before_the_packs_first_value(packs: dict[str, RulePack]) -> None:
    # No corporate.base in force in 1398: neither member is required (the engine reports
    # no_rules_for_period on the recorded return).
    data = parse_return(
        {"jurisdiction": "ir", "period": "1398", "postal_code": POSTAL_CODE}, kind="corporate"
    )
    assert data.profit_minor is None and data.distributed_profit_minor is None


def test_payload_must_be_an_object_and_kind_known(packs: dict[str, RulePack]) -> None:
    assert refused([1, 2]) == [("/payload", "wrong_type")]
    with pytest.raises(ValueError, match="kind"):
        parse_return({}, kind="vat")
    assert refused({}) == [("/payload/jurisdiction", "required"), ("/payload/period", "required")]
    assert refused({"jurisdiction": "yy", "period": 2024}) == [("/payload/period", "wrong_type")]
