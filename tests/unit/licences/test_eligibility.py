"""Unit tests of licences.eligibility: every renewal rule failing alone, and all together."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import pytest

from licences.eligibility import (
    RULES,
    Debt,
    RenewalFacts,
    applicable_rules,
    check_renewal,
    debt_of,
    fee_resumes_on,
    verify_renewal,
)
from licences.errors import RenewalRefusedError, RuleFailure
from licences.status import LicenceStatus
from licences.terms import Term, first_term
from licences.types import LicenceType, default_licence_types
from payments.errors import FeeNotFoundError
from payments.fees import Fee, load_default_fee_schedules
from payments.payables import Payable, PayableKind, PayableStatus, Transfer
from tax.rulepack import date_from_text

BOOK = load_default_fee_schedules()


def j(text: str) -> date:
    return date_from_text("solar_hijri", text)


def licence_type(code: str) -> LicenceType:
    found = default_licence_types().get(code)
    assert found is not None
    return found


DRIVING = licence_type("ir.driving")
BUSINESS = licence_type("ir.business")
TAXI = licence_type("ee.taxi-driver")
TERM = first_term(j("1394-01-01"), DRIVING)  # expires 1403-12-30; window 1403-09-30..1404-12-29
TODAY = j("1403-12-11")  # 2025-03-01, inside the window
FINES = (
    Debt("fine-1", 1_500_000, "IRR", date(2024, 5, 1)),
    Debt("fine-2", 500_000, "IRR", date(2025, 2, 1)),
)
TAX = (Debt("tax-1", 12_000_000, "IRR", date(2024, 7, 22)),)


def _fee(code: str, on: date) -> tuple[Fee | None, FeeNotFoundError | None]:
    try:
        return BOOK.fee_at(code, on=on), None
    except FeeNotFoundError as exc:
        return None, exc


def _facts(**changes: object) -> RenewalFacts:
    fee, problem = _fee("driving_licence.renewal", TODAY)
    facts = RenewalFacts(
        licence_type=DRIVING,
        status=LicenceStatus.VALID,
        term=TERM,
        today=TODAY,
        unpaid_fines=(),
        overdue_tax=(),
        fee=fee,
        fee_problem=problem,
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def _rules(failures: tuple[RuleFailure, ...]) -> list[str]:
    return [failure.rule for failure in failures]


SUSPENDED_FEE = FeeNotFoundError("driving_licence.renewal", TODAY, reason="suspended")
NOT_IN_FORCE_FEE = FeeNotFoundError("driving_licence.renewal", TODAY, reason="not_in_force")
UNKNOWN_FEE = FeeNotFoundError("driving_licence.renewal", TODAY, reason="unknown_service")


def test_the_base_facts_are_eligible() -> None:
    facts = _facts()
    assert facts.fee is not None and facts.fee.amount_minor == 4_500_000
    assert check_renewal(facts) == ()
    verify_renewal(facts)  # does not raise


def test_rule_order_and_applicability() -> None:
    assert RULES == (
        "not_revoked",
        "not_suspended",
        "in_renewal_window",
        "no_unpaid_fines",
        "no_overdue_tax",
        "fee_in_force",
    )
    assert applicable_rules(DRIVING) == RULES
    assert applicable_rules(BUSINESS) == (
        "not_revoked",
        "not_suspended",
        "in_renewal_window",
        "no_overdue_tax",
        "fee_in_force",
    )
    free = replace(DRIVING, fee_service=None, rules=frozenset())
    assert applicable_rules(free) == RULES[:3]


# --- each rule failing alone ---------------------------------------------------------------------


def test_revoked_alone() -> None:
    (failure,) = check_renewal(_facts(status=LicenceStatus.REVOKED))
    assert failure.rule == "not_revoked" and failure.details == {"status": "revoked"}
    assert "agency:rahvar" in failure.remedy and "new" in failure.remedy


def test_suspended_alone() -> None:
    (failure,) = check_renewal(_facts(status=LicenceStatus.SUSPENDED))
    assert failure.rule == "not_suspended"
    assert failure.remedy == "agency:rahvar must reinstate the licence before it can be renewed"


@pytest.mark.parametrize(
    ("today", "inside"),
    [
        ("1403-09-29", False),  # 2024-12-19, the day before the window opens
        ("1403-09-30", True),  # 2024-12-20, the day it opens
        ("1403-12-30", True),  # the expiry day (a leap day)
        ("1404-01-01", True),  # Nowruz, the day after expiry: still renewable
        ("1404-12-29", True),  # 2026-03-20, the day it closes
        ("1405-01-01", False),  # 2026-03-21, Nowruz: closed
    ],
)
def test_window_edges_in_solar_hijri(today: str, inside: bool) -> None:
    day = j(today)
    fee, problem = _fee("driving_licence.renewal", day)
    failures = check_renewal(_facts(today=day, fee=fee, fee_problem=problem))
    assert _rules(failures) == ([] if inside else ["in_renewal_window"])


def test_window_remedy_before_names_both_calendars() -> None:
    (failure,) = check_renewal(_facts(today=j("1403-09-29")))
    assert failure.rule == "in_renewal_window"
    assert failure.message == "the renewal window opens on 1403-09-30 (2024-12-20)"
    assert failure.remedy == "renew between 1403-09-30 and 1404-12-29 (2024-12-20..2026-03-20)"
    assert failure.details["position"] == "before"
    assert failure.details["opens_on"] == {"date": "2024-12-20", "jalali": "1403-09-30"}
    assert failure.details["closes_on"] == {"date": "2026-03-20", "jalali": "1404-12-29"}
    assert failure.details["expires_on"] == {"date": "2025-03-20", "jalali": "1403-12-30"}


def test_window_remedy_after_says_it_will_not_reopen() -> None:
    day = j("1405-01-01")
    fee, _ = _fee("driving_licence.renewal", day)
    (failure,) = check_renewal(_facts(today=day, fee=fee))
    assert failure.message == "the renewal window closed on 1404-12-29 (2026-03-20)"
    assert "1403-09-30 and 1404-12-29 (2024-12-20..2026-03-20)" in failure.remedy
    assert "new licence" in failure.remedy and failure.details["position"] == "after"


@pytest.mark.parametrize(
    ("today", "inside"),
    [
        (date(2025, 2, 27), False),
        (date(2025, 2, 28), True),  # two months before 2025-04-30, clamped from the 30th
        (date(2025, 10, 30), True),
        (date(2025, 10, 31), False),
    ],
)
def test_window_edges_in_gregorian(today: date, inside: bool) -> None:
    fee, problem = _fee("taxi_driver_card.renewal", today)
    facts = _facts(
        licence_type=TAXI,
        term=Term(date(2020, 5, 1), date(2025, 4, 30)),
        today=today,
        fee=fee,
        fee_problem=problem,
    )
    failures = check_renewal(facts)
    assert _rules(failures) == ([] if inside else ["in_renewal_window"])
    if not inside:
        assert "2025-02-28 and 2025-10-30" in failures[0].remedy
        assert "(" not in failures[0].remedy  # no Jalali dates for Estonia
        assert failures[0].details["opens_on"] == {"date": "2025-02-28"}


def test_unpaid_fines_alone() -> None:
    (failure,) = check_renewal(_facts(unpaid_fines=FINES))
    assert failure.rule == "no_unpaid_fines"
    assert failure.message == "the holder has 2 unpaid fines"
    assert (
        failure.remedy == "pay the 2 unpaid fines (payables fine-1, fine-2): 2,000,000 IRR in all"
    )
    assert failure.details["count"] == 2
    assert failure.details["totals"] == [{"amount_minor": 2_000_000, "currency": "IRR"}]
    first = failure.details["payables"][0]  # type: ignore[index]
    assert first == {
        "payable_id": "fine-1",
        "amount_minor": 1_500_000,
        "currency": "IRR",
        "due_on": {"date": "2024-05-01", "jalali": "1403-02-12"},
    }


def test_many_fines_are_named_up_to_a_limit() -> None:
    fines = tuple(Debt(f"fine-{i}", 100, "IRR", date(2024, 1, 1)) for i in range(7))
    (failure,) = check_renewal(_facts(unpaid_fines=fines))
    assert "fine-4 and 2 more" in failure.remedy and "fine-5" not in failure.remedy
    assert len(failure.details["payables"]) == 7  # type: ignore[arg-type]


def test_overdue_tax_alone() -> None:
    (failure,) = check_renewal(_facts(overdue_tax=TAX))
    assert failure.rule == "no_overdue_tax"
    assert failure.remedy == (
        "pay the 1 overdue tax payable (payables tax-1): 12,000,000 IRR in all"
    )


def test_tax_due_today_is_not_overdue() -> None:
    due_today = (Debt("tax-2", 1000, "IRR", TODAY),)
    assert check_renewal(_facts(overdue_tax=due_today)) == ()
    yesterday = (Debt("tax-2", 1000, "IRR", TODAY - timedelta(days=1)),)
    assert _rules(check_renewal(_facts(overdue_tax=yesterday))) == ["no_overdue_tax"]


def test_rules_a_type_does_not_list_are_not_judged() -> None:
    fee, problem = _fee("business_licence.renewal", TODAY)
    facts = _facts(licence_type=BUSINESS, unpaid_fines=FINES, fee=fee, fee_problem=problem)
    assert check_renewal(facts) == ()  # a business licence does not look at fines
    free = replace(DRIVING, fee_service=None)
    assert check_renewal(_facts(licence_type=free, fee=None, fee_problem=UNKNOWN_FEE)) == ()


def test_fee_suspended_alone() -> None:
    on = date(2025, 4, 1)  # the business licence fee is suspended 2025-03-21..2025-06-21
    fee, problem = _fee("business_licence.renewal", on)
    assert fee is None and problem is not None and problem.reason == "suspended"
    resumes = fee_resumes_on(BOOK, "business_licence.renewal", on=on)
    assert resumes == date(2025, 6, 22)
    term = first_term(j("1399-01-13"), BUSINESS)  # expires 1404-01-12 = 2025-04-01
    facts = _facts(
        licence_type=BUSINESS,
        term=term,
        today=on,
        fee=None,
        fee_problem=problem,
        fee_resumes_on=resumes,
    )
    (failure,) = check_renewal(facts)
    assert failure.rule == "fee_in_force"
    assert failure.message == "the renewal fee is suspended on 1404-01-12 (2025-04-01)"
    assert failure.remedy == (
        "wait until the fee schedule sets a fee (suspension ends 1404-04-01 (2025-06-22))"
    )
    assert failure.details["reason"] == "suspended"
    assert failure.details["suspension_ends_on"] == {"date": "2025-06-22", "jalali": "1404-04-01"}


def test_fee_suspended_without_a_known_end() -> None:
    (failure,) = check_renewal(_facts(fee=None, fee_problem=SUSPENDED_FEE))
    assert failure.remedy == "wait until the fee schedule sets a fee"
    assert "suspension_ends_on" not in failure.details


def test_fee_not_in_force_differs_from_suspended() -> None:
    (failure,) = check_renewal(_facts(fee=None, fee_problem=NOT_IN_FORCE_FEE))
    assert failure.rule == "fee_in_force" and failure.details["reason"] == "not_in_force"
    assert failure.message == "no renewal fee is in force on 1403-12-11 (2025-03-01)"
    assert "publishes" in failure.remedy and "suspension" not in failure.remedy


def test_fee_service_unknown_or_not_looked_up() -> None:
    for problem in (UNKNOWN_FEE, None):
        (failure,) = check_renewal(_facts(fee=None, fee_problem=problem))
        assert failure.details["reason"] == "unknown_service"
        assert failure.message == "the renewal fee service is not in the fee schedules"


def test_fee_resumes_on_is_none_outside_a_suspension() -> None:
    assert fee_resumes_on(BOOK, "business_licence.renewal", on=date(2025, 7, 1)) is None
    assert fee_resumes_on(BOOK, "no.such_service", on=date(2025, 4, 1)) is None
    assert fee_resumes_on(BOOK, "passport.issue", on=date(2020, 1, 1)) is None  # before any


# --- all together --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [LicenceStatus.REVOKED, LicenceStatus.SUSPENDED])
def test_every_failure_is_listed_in_rules_order(status: LicenceStatus) -> None:
    facts = _facts(
        status=status,
        today=j("1403-09-01"),
        unpaid_fines=FINES,
        overdue_tax=TAX,
        fee=None,
        fee_problem=SUSPENDED_FEE,
    )
    first = "not_revoked" if status is LicenceStatus.REVOKED else "not_suspended"
    expected = [first, "in_renewal_window", "no_unpaid_fines", "no_overdue_tax", "fee_in_force"]
    assert _rules(check_renewal(facts)) == expected
    with pytest.raises(RenewalRefusedError) as caught:
        verify_renewal(facts)
    assert _rules(caught.value.failures) == expected
    assert str(caught.value).endswith("(and 4 more)")
    for failure in caught.value.failures:
        json.dumps(failure.details)  # plain JSON
        assert failure.message and failure.remedy


def test_refusal_needs_a_failure() -> None:
    with pytest.raises(ValueError):
        RenewalRefusedError(())


def test_euro_amounts_and_mixed_currencies() -> None:
    fines = (Debt("f-1", 2050, "EUR", date(2025, 1, 1)), Debt("f-2", 7, "IRR", date(2025, 1, 1)))
    (failure,) = check_renewal(_facts(unpaid_fines=fines))
    assert failure.remedy.endswith(": 20.50 EUR + 7 IRR in all")


def test_debt_of_a_partially_paid_payable() -> None:
    payable = Payable(
        payable_id="pay-1",
        kind=PayableKind.FINE,
        issuer="agency:rahvar",
        debtor="ir-nid:0013542419",
        amount_minor=1_000_000,
        currency="IRR",
        transfers=(Transfer("agency_revenue:rahvar", 1_000_000, "traffic_fine"),),
        allows_instalments=True,
        due_on=date(2025, 1, 1),
        reference="fine",
        status=PayableStatus.PARTIALLY_PAID,
        paid_minor=400_000,
        payments_made=1,
    )
    assert debt_of(payable) == Debt("pay-1", 600_000, "IRR", date(2025, 1, 1))
