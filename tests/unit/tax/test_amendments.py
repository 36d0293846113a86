"""Amendments at the pure level: tax.amendments.diff_lines, and chains of versions assessed with
the previous version's figures (increase, decrease, several in a row).

The pack is test_engine's "zz": personal 2023 is due on 2024-03-31, a Sunday, rolled to Monday
2024-04-01; late filing 10 % of the tax not declared in time; interest 2.5 % a month, pro rata.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from signatures.canonical import JsonValue
from tax.amendments import diff_lines
from tax.engine import Assessment, Computation, assess, compute_return
from tax.returns import Deduction, FilingData
from tax.rulepack import RulePack
from tests.unit.tax.test_engine import annual, personal, write_pack


@pytest.fixture
def zz(tmp_path: Path) -> RulePack:
    return write_pack(tmp_path)


def file(
    pack: RulePack, data: FilingData, filed_on: date, previous: Computation | None
) -> tuple[Computation, Assessment]:
    c = compute_return(pack, data, today=filed_on)
    a = assess(
        pack,
        c,
        previous_tax_minor=previous.tax_minor if previous else 0,
        previous_credits_minor=previous.credits_minor if previous else 0,
        filed_on=filed_on,
        first_filing=previous is None,
    )
    return c, a


def lines_of(a: Assessment) -> dict[str, int]:
    return {line.code: line.amount_minor for line in a.lines}


def test_a_chain_of_increase_decrease_and_increase(zz: RulePack) -> None:
    # v1, on time: other income 15,000; exemption 2,000 − 2,000 × 5,000/10,000 = 1,000;
    # taxable 14,000: 10 % × 10,000 + 25 % × 4,000 = 2,000. Due 2,000.
    v1, a1 = file(zz, personal(zz, other_minor=15_000), date(2024, 3, 1), None)
    assert v1.tax_minor == 2_000
    assert (a1.due_minor, a1.credit_minor, a1.due_on) == (2_000, 0, date(2024, 4, 1))

    # v2, an increase filed late on 2024-05-15: other income 22,000 → tax 4,000 (exemption 0).
    # delta 2,000; penalty 10 % × (4,000 − 2,000) = 200; interest from 2024-04-01: 1 month and
    # 14 days, 2.5 % × 2,000 × (1 + 14/30) = 73.33 → 73. Due 2,273 on the filing day.
    v2, a2 = file(zz, personal(zz, other_minor=22_000), date(2024, 5, 15), v1)
    assert lines_of(a2) == {
        "assessment.delta": 2_000,
        "penalty.late_filing": 200,
        "interest.late_payment": 73,
        "assessment.due": 2_273,
        "assessment.credit": 0,
    }
    assert a2.due_on == date(2024, 5, 15)

    # v3, a decrease on 2024-06-10 back to 15,000 → tax 2,000: a credit of 2,000; nothing was
    # left undeclared (2,000 − 4,000 < 0) and nothing is unpaid: penalty and interest 0.
    v3, a3 = file(zz, personal(zz, other_minor=15_000), date(2024, 6, 10), v2)
    assert lines_of(a3) == {
        "assessment.delta": -2_000,
        "penalty.late_filing": 0,
        "interest.late_payment": 0,
        "assessment.due": 0,
        "assessment.credit": 2_000,
    }
    assert a3.lines[1].parameter is not None  # examined: filed late, on nothing undeclared

    # v4 on 2024-06-11 adds a salary of 30,000 with 1,000 withheld: salary tax 10 % × 18,000 =
    # 1,800; tax 3,800, credits 1,000, net 2,800 against 2,000: delta 800. Penalty 10 % ×
    # (3,800 − 2,000) = 180; interest 2 months and 10 days: 2.5 % × 800 × (2 + 10/30) = 46.67 →
    # 46. Due 800 + 180 + 46 = 1,026.
    data = personal(zz, salary=(annual(30_000, withheld_minor=1_000),), other_minor=15_000)
    v4, a4 = file(zz, data, date(2024, 6, 11), v3)
    assert (v4.tax_minor, v4.credits_minor) == (3_800, 1_000)
    assert lines_of(a4) == {
        "assessment.delta": 800,
        "penalty.late_filing": 180,
        "interest.late_payment": 46,
        "assessment.due": 1_026,
        "assessment.credit": 0,
    }
    # Over the chain the deltas add up to the last version's balance.
    deltas = [lines_of(a)["assessment.delta"] for a in (a1, a2, a3, a4)]
    assert sum(deltas) == v4.tax_minor - v4.credits_minor


def test_an_amendment_on_time_carries_no_penalty(zz: RulePack) -> None:
    v1, _ = file(zz, personal(zz, other_minor=15_000), date(2024, 2, 1), None)
    _, a2 = file(zz, personal(zz, other_minor=22_000), date(2024, 3, 15), v1)
    assert (a2.due_minor, a2.credit_minor, a2.due_on) == (2_000, 0, date(2024, 4, 1))


def test_diff_lines_in_new_order_then_old_only(zz: RulePack) -> None:
    old = compute_return(
        zz,
        personal(zz, other_minor=15_000, deductions=(Deduction("training", 300),)),
        today=date(2024, 2, 1),
    )
    new = compute_return(
        zz, personal(zz, salary=(annual(30_000),), other_minor=15_000), today=date(2024, 2, 1)
    )
    rows = diff_lines(old, new)
    codes = [row["code"] for row in rows]
    new_codes = [line.code for line in new.lines]
    assert codes == [*new_codes, "general.deductions.training"]
    by_code = {row["code"]: row for row in rows}
    assert by_code["salary.tax"] == {
        "code": "salary.tax",
        "label": "Salary tax",
        "old_minor": 0,
        "new_minor": 1_800,
        "delta_minor": 1_800,
    }
    # Deductions 300 → 0; exemption 1,000 either way; taxable 13,700 → 14,000.
    assert by_code["general.deductions.training"] == {
        "code": "general.deductions.training",
        "label": "Deduction training, up to its cap",
        "old_minor": 300,
        "new_minor": 0,
        "delta_minor": -300,
    }
    assert (by_code["general.taxable"]["old_minor"], by_code["general.taxable"]["new_minor"]) == (
        13_700,
        14_000,
    )
    assert by_code["tax.total"]["delta_minor"] == new.tax_minor - old.tax_minor


def test_diff_lines_against_a_stored_trace(zz: RulePack) -> None:
    old = compute_return(zz, personal(zz, other_minor=15_000), today=date(2024, 2, 1))
    new = compute_return(zz, personal(zz, other_minor=16_000), today=date(2024, 2, 1))
    assert diff_lines(old.trace_json(zz), new) == diff_lines(old, new)
    assert diff_lines(old, new.trace_json(zz)) == diff_lines(old, new)
    assert all(row["delta_minor"] == 0 for row in diff_lines(old, old))


@pytest.mark.parametrize(
    "stored",
    [
        ["line"],
        [{"code": "a", "label": "A"}],
        [{"code": "a", "label": "A", "amount_minor": True}],
        [{"code": 1, "label": "A", "amount_minor": 1}],
        [
            {"code": "a", "label": "A", "amount_minor": 1},
            {"code": "a", "label": "B", "amount_minor": 2},
        ],
    ],
)
def test_diff_lines_refuses_malformed_stored_lines(zz: RulePack, stored: list[JsonValue]) -> None:
    new = compute_return(zz, personal(zz, other_minor=1), today=date(2024, 2, 1))
    with pytest.raises(ValueError):
        diff_lines(stored, new)
