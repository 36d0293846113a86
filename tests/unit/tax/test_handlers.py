"""The filing handler's pure parts: who files where, the chain's compare-and-set, and amounts the
ledger could not record exactly."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from tax.errors import FilingChainError, TaxFieldError
from tax.filing_store import StoredFiling
from tax.handlers import check_chain, evaluate, parse_filing

POSTAL = "1193653471"
PERSON, ENTITY, EE_PERSON = "ir-nid:0499370899", "ir-lid:10380284790", "ee-ik:37605030299"


def personal(**extra: object) -> dict[str, object]:
    return {"jurisdiction": "ir", "period": "1403", "postal_code": POSTAL, **extra}


def head(version: int = 1) -> StoredFiling:
    return StoredFiling(
        str(uuid.uuid4()), PERSON, PERSON, "ir", "personal", "1403", "accepted", version, None,
        None, "ir-r2-x", "00" * 32, "IRR", 10, 0, 10, 0, date(2025, 6, 21), date(2025, 6, 1),
        None, datetime(2025, 6, 1, tzinfo=UTC), 1, {},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("taxpayer", "kind", "payload"),
    [
        (PERSON, "corporate", {"jurisdiction": "ir", "period": "1403", "postal_code": POSTAL,
                               "profit_minor": 1}),
        (ENTITY, "personal", personal(other_income_minor=1)),
        (EE_PERSON, "personal", personal(other_income_minor=1)),
        (PERSON, "personal", {"jurisdiction": "ee", "period": "2025", "other_income_minor": 1}),
    ],
)  # fmt: skip
def test_a_taxpayer_files_only_what_its_kind_of_subject_files(
    taxpayer: str, kind: str, payload: dict[str, object]
) -> None:
    with pytest.raises(TaxFieldError) as caught:
        parse_filing(payload, kind=kind, taxpayer=taxpayer)  # type: ignore[arg-type]
    assert [(e.pointer, e.rule) for e in caught.value.errors] == [
        ("/payload/jurisdiction", "not_a_taxpayer_of_jurisdiction")
    ]


def test_the_chain_is_a_compare_and_set() -> None:
    check_chain(None, amends=None, version_limit=3)
    current = head(2)
    check_chain(current, amends=current.filing_id, version_limit=3)
    cases = [
        (None, "x", "nothing_to_amend"),
        (current, None, "amends_required"),
        (current, str(uuid.uuid4()), "amends_not_head"),
        (replace(current, version=3), current.filing_id, "chain_too_long"),
    ]
    for found, amends, rule in cases:
        with pytest.raises(FilingChainError) as caught:
            check_chain(found, amends=amends, version_limit=3)
        assert caught.value.rule == rule
        assert caught.value.head == (found.filing_id if found else None)


def test_an_amount_the_ledger_cannot_record_exactly_is_refused_not_rounded() -> None:
    data, pack = parse_filing(
        personal(other_income_minor=2**53 - 1), kind="personal", taxpayer=PERSON
    )
    ordinary = evaluate(pack, data, head=None, filed_on=date(2026, 1, 1))
    assert ordinary.assessment is not None and ordinary.assessment.due_minor > 0
    # Three centuries of late-payment interest on it cannot be an exact JSON integer.
    with pytest.raises(TaxFieldError) as caught:
        evaluate(pack, data, head=None, filed_on=date(2325, 1, 1))
    assert [(e.pointer, e.rule) for e in caught.value.errors] == [("/payload", "out_of_range")]


def test_a_return_whose_period_has_no_deadline_in_the_pack_is_rejected_not_a_500() -> None:
    """ee has rates from 2018 but its deadlines from 2020: a 2019 return computes, yet cannot be
    assessed, so it is rejected with no_rules_for_period (it once raised RuleNotInForceError)."""
    payload = {"jurisdiction": "ee", "period": "2019", "other_income_minor": 1_000_000}
    data, pack = parse_filing(payload, kind="personal", taxpayer=EE_PERSON)
    outcome = evaluate(pack, data, head=None, filed_on=date(2026, 1, 1))
    assert outcome.assessment is None and not outcome.computation.accepted
    assert "no_rules_for_period" in {i.code for i in outcome.computation.issues}


def test_every_obligation_the_packs_list_has_a_deadline() -> None:
    """obligations_of skips a period without a deadline; no shipped period may need skipping."""
    from tax.calendar import due_date, ended_periods
    from tax.rulepack import shipped_packs

    for pack in shipped_packs().values():
        for kind in pack.returns.values():
            for period in ended_periods(pack, kind, today=date(2026, 11, 22)):
                due_on, _ = due_date(pack, period, kind.deadline)
                assert due_on > period.end
