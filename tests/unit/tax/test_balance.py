"""A chain's balance: assessed − credited − paid, and the interest that accrues after each due date
until the payable is paid (shipped ir pack: 2.5 % a month, pro rata by days/30)."""

from __future__ import annotations

from datetime import date

import pytest

from tax.balance import INTEREST_CODE, VersionPayment, chain_balance
from tax.rulepack import shipped_packs

IR = shipped_packs()["ir"]
DUE = date(2025, 6, 22)  # 1404-04-01
TWO_MONTHS_LATER = date(2025, 8, 23)  # 1404-06-01: two whole Jalali months


def version(*, due: int = 1_000_000, paid: int = 0, paid_on: date | None = None) -> VersionPayment:
    return VersionPayment("f1", due, 0, DUE, paid, paid_on)


def test_unpaid_accrues_interest_to_today() -> None:
    balance = chain_balance(IR, [version()], today=TWO_MONTHS_LATER)
    assert balance["outstanding_minor"] == 1_000_000
    # 2.5 % × 1,000,000 × 2 months, worked by hand.
    assert balance["interest_accrued_minor"] == 50_000
    lines = balance["interest_lines"]
    assert isinstance(lines, list) and len(lines) == 1
    line = lines[0]
    assert isinstance(line, dict)
    assert (line["code"], line["paid"], line["amount_minor"]) == (INTEREST_CODE, False, 50_000)


def test_paid_late_accrues_to_the_payment_day_and_no_further() -> None:
    paid = version(paid=1_000_000, paid_on=TWO_MONTHS_LATER)
    balance = chain_balance(IR, [paid], today=date(2026, 6, 1))
    assert balance["outstanding_minor"] == 0
    assert balance["interest_accrued_minor"] == 50_000


def test_paid_on_time_or_not_yet_due_accrues_nothing() -> None:
    on_time = version(paid=1_000_000, paid_on=DUE)
    assert chain_balance(IR, [on_time], today=TWO_MONTHS_LATER)["interest_lines"] == []
    assert chain_balance(IR, [version()], today=DUE)["interest_accrued_minor"] == 0


def test_versions_add_up_credits_included() -> None:
    first = version(due=900, paid=900, paid_on=DUE)
    credit = VersionPayment("f2", 0, 300, None, 0, None)
    more = VersionPayment("f3", 100, 0, DUE, 0, None)
    balance = chain_balance(IR, [first, credit, more], today=DUE)
    assert (balance["assessed_minor"], balance["credited_minor"], balance["paid_minor"]) == (
        1000,
        300,
        900,
    )
    assert balance["outstanding_minor"] == -200  # a credit the taxpayer holds


def test_a_version_paid_more_than_assessed_is_refused() -> None:
    with pytest.raises(ValueError, match="paid more"):
        chain_balance(IR, [version(due=10, paid=11, paid_on=DUE)], today=DUE)
