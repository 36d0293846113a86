"""Licences through POST /v1/transactions, on SQLite and PostgreSQL (docs/LICENCES.md).

Agencies issue, suspend, reinstate and revoke; holders renew with one signed licence.renew,
judged from the service's own records: each eligibility rule refused alone and all together,
and every window edge in both calendars. (Fees paid or not, lapses, voids, representatives and
races: tests/db/test_licence_renewal_fees.py.) The world's clock (tests/db/licences_world.py)
lives where each test needs it: Nowruz, the 2025 suspension of the business licence fee, or the
Estonian winter.

Expected dates are literals, worked out with jdatetime apart from licences.terms.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from tests.db.licences_world import (
    ASNAF,
    BUSINESS,
    BUSINESS_FEE_MINOR,
    DEC_1,
    DRIVING,
    DRIVING_FEE_MINOR,
    ENGINEERING,
    IN_WINDOW,
    OTHER_AGENCY,
    RAHVAR,
    TAXI,
    TAXI_FEE_MINOR,
    World,
    act,
    balances,
    event_kinds,
    file_personal_return,
    issue,
    issue_fine,
    issued,
    licences_world_fixture,  # noqa: F401 (the licences_world fixture)
    on_day,
    pay,
    payable_view,
    refused_rules,
    renew,
    result,
    rule_names,
    stored_licence,
    stored_renewals,
    tehran_midnight,
    tx_id,
)
from tests.db.test_transactions_pipeline import problem, tree_size

Open = Callable[[datetime], World]


# --- issuing -------------------------------------------------------------------------------------


def test_an_agency_issues_a_licence_of_its_type_with_dates_in_its_calendar(
    licences_world: Open,
) -> None:
    w = licences_world(on_day(date(2025, 12, 1)))
    citizen = w.person()
    r = issue(w, DRIVING, citizen.subject, date(2016, 3, 19))
    body = result(r)
    assert body["licence_id"] == tx_id(r)
    assert body["valid_from"] == {"date": "2016-03-19", "jalali": "1394-12-29"}
    # 1394-12-29 + 10 solar years = 1404-12-29; the term ends the day before.
    assert body["expires_on"] == {"date": "2026-03-19", "jalali": "1404-12-28"}
    assert (body["status"], body["holder"], body["issuer"]) == ("valid", citizen.subject, RAHVAR)
    assert stored_licence(w, tx_id(r)).version == 1
    assert event_kinds(w, tx_id(r)) == ["issued"]
    # Estonia keeps the Gregorian calendar: ISO dates alone, never a "jalali" member.
    resident = w.estonian()
    ee = result(issue(w, TAXI, resident.subject, date(2021, 9, 1)))
    assert ee["valid_from"] == {"date": "2021-09-01"}
    assert ee["expires_on"] == {"date": "2026-08-31"}
    assert ee["renewal_window"] == {
        "opens_on": {"date": "2026-06-30"},
        "closes_on": {"date": "2027-02-28"},
    }
    # valid_from may be today (Tehran's date), and a licence is then valid from today.
    today = result(issue(w, ENGINEERING, citizen.subject, date(2025, 12, 1)))
    assert today["status"] == "valid"


def _errors(r: Any, slug: str = "payload-invalid") -> dict[str, str]:
    errors: list[dict[str, str]] = problem(r, 400, slug)["errors"]  # type: ignore[assignment]
    return {e["field"]: e["rule"] for e in errors}


def test_issue_refusals_name_the_field_or_the_rule_and_record_nothing(
    licences_world: Open,
) -> None:
    w = licences_world(on_day(date(2025, 12, 1)))
    citizen, company, other = w.person(), w.entity(), w.person()
    number = w.number(DRIVING)
    tx_id(issue(w, DRIVING, citizen.subject, date(2020, 1, 1), number=number))
    before = tree_size(w.engine)
    # Only the type's agency issues it.
    refused = issue(w, DRIVING, citizen.subject, date(2020, 1, 1), agency=ASNAF)
    assert problem(refused, 403, "not-issuing-agency")
    problem(issue(w, DRIVING, citizen.subject, date(2020, 1, 1), agency=OTHER_AGENCY), 403,
            "not-issuing-agency")  # fmt: skip
    # A number is taken once per type (another type may use the same digits).
    taken = issue(w, DRIVING, other.subject, date(2021, 1, 1), number=number)
    body = problem(taken, 409, "licence-number-taken")
    assert number not in str(body)  # a licence number is personal data
    # A driving licence is a person's, never an entity's.
    assert _errors(issue(w, DRIVING, company.subject, date(2020, 1, 1))) == {
        "/envelope/payload/holder": "holder_kind_not_allowed"
    }
    assert _errors(issue(w, "ir.fishing", citizen.subject, date(2020, 1, 1), agency=RAHVAR)) == {
        "/envelope/payload/licence_type": "unknown_licence_type"
    }
    bad_number = issue(w, DRIVING, citizen.subject, date(2020, 1, 1), number="12345-ABC")
    assert _errors(bad_number) == {"/envelope/payload/number": "invalid_format"}
    assert "12345-ABC" not in bad_number.text
    # Tomorrow in Tehran is refused, naming valid_from.
    tomorrow = issue(w, DRIVING, citizen.subject, date(2025, 12, 2))
    fields = _errors(tomorrow)
    assert fields == {"/envelope/payload/valid_from": "in_future"}, fields
    # A citizen issues nothing.
    payload = {"licence_type": DRIVING, "holder": citizen.subject, "number": w.number(DRIVING),
               "valid_from": "2020-01-01"}  # fmt: skip
    problem(w.post(citizen, "licence.issue", payload), 403, "forbidden")
    assert tree_size(w.engine) == before
    # The same digits in another type are fine.
    tx_id(issue(w, BUSINESS, citizen.subject, date(2020, 1, 1), number=number))


# --- agency actions ------------------------------------------------------------------------------


def test_suspend_reinstate_and_revoke_follow_the_state_machine(licences_world: Open) -> None:
    w = licences_world(on_day(date(2025, 12, 1)))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, date(2020, 1, 1))
    assert problem(act(w, RAHVAR, "reinstate", licence), 409, "licence-state-conflict")
    suspended = result(act(w, RAHVAR, "suspend", licence, "unpaid_insurance"))
    assert (suspended["status"], suspended["status_reason"]) == ("suspended", "unpaid_insurance")
    problem(act(w, RAHVAR, "suspend", licence), 409, "licence-state-conflict")
    assert result(act(w, RAHVAR, "reinstate", licence))["status"] == "valid"
    tx_id(act(w, RAHVAR, "suspend", licence))
    assert result(act(w, RAHVAR, "revoke", licence, "court_order"))["status"] == "revoked"
    for action in ("suspend", "reinstate", "revoke"):
        problem(act(w, RAHVAR, action, licence), 409, "licence-state-conflict")
    assert event_kinds(w, licence) == [
        "issued",
        "suspended",
        "reinstated",
        "suspended",
        "revoked",
    ]
    stored = stored_licence(w, licence)
    assert (stored.status.value, stored.status_reason, stored.version) == (
        "revoked",
        "court_order",
        5,
    )
    # A valid licence is revoked directly too.
    other = issued(w, DRIVING, citizen.subject, date(2020, 1, 1))
    assert result(act(w, RAHVAR, "revoke", other))["status"] == "revoked"


def test_an_agency_acting_on_a_licence_it_did_not_issue_sees_404(licences_world: Open) -> None:
    w = licences_world(on_day(date(2025, 12, 1)))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, date(2020, 1, 1))
    before = tree_size(w.engine)
    for agency in (ASNAF, OTHER_AGENCY):
        problem(act(w, agency, "suspend", licence), 404, "licence-not-found")
    problem(act(w, RAHVAR, "suspend", "0" * 8 + "-0000-4000-8000-" + "0" * 12), 404,
            "licence-not-found")  # fmt: skip
    assert _errors(act(w, RAHVAR, "suspend", licence, "Not A Code")) == {
        "/envelope/payload/reason": "invalid_format"
    }
    assert _errors(act(w, RAHVAR, "suspend", "L-1")) == {
        "/envelope/payload/licence_id": "invalid_format"
    }
    # Holders do not suspend their own licences.
    payload = {"licence_id": licence, "reason": "holiday"}
    problem(w.post(citizen, "licence.suspend", payload), 403, "forbidden")
    assert tree_size(w.engine) == before
    assert stored_licence(w, licence).status.value == "valid"


# --- renewal windows at their edge days ----------------------------------------------------------


def test_ir_renewal_window_edges_around_nowruz(licences_world: Open) -> None:
    """A driving licence from 1394-01-01 (2015-03-21) expires on 1403-12-30 (2025-03-20, the
    30th of Esfand of a leap year). Its window opens 90 days before (1403-09-30, 2024-12-20)
    and closes a solar year after expiry: 1404 has no 30th of Esfand, so 1404-12-29
    (2026-03-20), the eve of Nowruz 1405. "Today" is Tehran's date."""
    w = licences_world(on_day(date(2024, 12, 19)))
    citizen = w.person()
    first, second, third = (issued(w, DRIVING, citizen.subject, date(2015, 3, 21)) for _ in "123")
    assert stored_licence(w, first).term.expires_on == date(2025, 3, 20)
    # The day before the window opens.
    (failure,) = refused_rules(renew(w, citizen, first))
    assert failure["rule"] == "in_renewal_window"
    assert failure["details"]["position"] == "before"
    assert failure["details"]["opens_on"] == {"date": "2024-12-20", "jalali": "1403-09-30"}
    assert failure["details"]["closes_on"] == {"date": "2026-03-20", "jalali": "1404-12-29"}
    assert "1403-09-30" in failure["remedy"] and "1404-12-29" in failure["remedy"]
    # The day it opens: the new term starts the day after expiry, Nowruz 1404.
    w.clock.to_day(date(2024, 12, 20))
    body = result(renew(w, citizen, first))
    assert body["status"] == "awaiting_payment"
    assert body["new_term"] == {
        "valid_from": {"date": "2025-03-21", "jalali": "1404-01-01"},
        "expires_on": {"date": "2035-03-20", "jalali": "1413-12-29"},
    }
    assert body["pay_by"] == {"date": "2025-01-19", "jalali": "1403-10-30"}
    # The day it closes: expired, so the new term starts today.
    w.clock.to_day(date(2026, 3, 20))
    late = result(renew(w, citizen, second))
    assert late["new_term"] == {
        "valid_from": {"date": "2026-03-20", "jalali": "1404-12-29"},
        "expires_on": {"date": "2036-03-18", "jalali": "1414-12-28"},
    }
    # Paid, after a year's gap: the licence takes the new term whole.
    tx_id(pay(w, citizen, late["payable_id"], DRIVING_FEE_MINOR))
    term = stored_licence(w, second).term
    assert (term.valid_from, term.expires_on) == (date(2026, 3, 20), date(2036, 3, 18))
    # One minute past midnight in Tehran on Nowruz 1405 (still the 20th in UTC): closed.
    w.clock.move_to(tehran_midnight(date(2026, 3, 21)) + timedelta(minutes=1))
    (failure,) = refused_rules(renew(w, citizen, third))
    assert failure["rule"] == "in_renewal_window"
    assert failure["details"]["position"] == "after"
    assert failure["details"]["today"] == {"date": "2026-03-21", "jalali": "1405-01-01"}


def test_ee_renewal_window_edges_in_the_gregorian_calendar(licences_world: Open) -> None:
    """A taxi driver's card from 2021-09-01 expires on 2026-08-31; its window opens two months
    before (2026-06-30: June has no 31st) and closes six months after (2027-02-28)."""
    w = licences_world(on_day(date(2026, 6, 29)))
    driver = w.estonian()
    first, second, third = (issued(w, TAXI, driver.subject, date(2021, 9, 1)) for _ in "123")
    (failure,) = refused_rules(renew(w, driver, first))
    assert failure["rule"] == "in_renewal_window"
    assert failure["details"]["opens_on"] == {"date": "2026-06-30"}  # no Solar Hijri date
    assert "jalali" not in str(failure)
    w.clock.to_day(date(2026, 6, 30))
    body = result(renew(w, driver, first))
    assert body["new_term"] == {
        "valid_from": {"date": "2026-09-01"},
        "expires_on": {"date": "2031-08-31"},
    }
    assert body["pay_by"] == {"date": "2026-07-14"}
    assert body["fee"]["amount_minor"] == TAXI_FEE_MINOR and body["fee"]["currency"] == "EUR"
    w.clock.to_day(date(2027, 2, 28))
    late = result(renew(w, driver, second))
    assert late["new_term"] == {
        "valid_from": {"date": "2027-02-28"},
        "expires_on": {"date": "2032-02-27"},
    }
    w.clock.to_day(date(2027, 3, 1))
    (failure,) = refused_rules(renew(w, driver, third))
    assert (failure["rule"], failure["details"]["position"]) == ("in_renewal_window", "after")
    # The first one paid: the card runs to 2031.
    tx_id(pay(w, driver, body["payable_id"], body["fee"]["amount_minor"], currency="EUR"))
    assert stored_licence(w, first).term.expires_on == date(2031, 8, 31)
    assert balances(w)[("agency_revenue:transpordiamet", "EUR")] == -TAXI_FEE_MINOR


# --- each eligibility rule alone -----------------------------------------------------------------


def test_a_revoked_licence_fails_not_revoked_alone(licences_world: Open) -> None:
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    tx_id(act(w, RAHVAR, "revoke", licence))
    before = tree_size(w.engine)
    (failure,) = refused_rules(renew(w, citizen, licence))
    assert failure["rule"] == "not_revoked"
    assert RAHVAR in failure["remedy"] and "new" in failure["remedy"]
    assert tree_size(w.engine) == before  # a refused renewal records nothing
    assert stored_renewals(w, licence) == {}


def test_a_suspended_licence_fails_not_suspended_alone_until_reinstated(
    licences_world: Open,
) -> None:
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    tx_id(act(w, RAHVAR, "suspend", licence))
    (failure,) = refused_rules(renew(w, citizen, licence))
    assert failure["rule"] == "not_suspended"
    assert "reinstate" in failure["remedy"]
    tx_id(act(w, RAHVAR, "reinstate", licence))
    assert result(renew(w, citizen, licence))["status"] == "awaiting_payment"


def test_an_unpaid_fine_fails_no_unpaid_fines_alone_until_it_is_paid(licences_world: Open) -> None:
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    fine, bill_id, payment_id = issue_fine(w, citizen.subject, 1_500_000)
    # An unpaid gas bill is no fine: only the fine is listed.
    issue_fine(w, citizen.subject, 990_000, kind="bill")
    (failure,) = refused_rules(renew(w, citizen, licence))
    assert failure["rule"] == "no_unpaid_fines"
    assert failure["details"]["count"] == 1
    (listed,) = failure["details"]["payables"]
    assert (listed["payable_id"], listed["amount_minor"], listed["currency"]) == (
        fine,
        1_500_000,
        "IRR",
    )
    assert fine in failure["remedy"] and "1,500,000 IRR" in failure["remedy"]
    # Paid the way Iranian traffic fines are: with its bill ID and payment ID.
    payload = {
        "bill_id": bill_id,
        "payment_id": payment_id,
        "amount": {"amount_minor": 1_500_000, "currency": "IRR"},
        "provider": "sandbox",
        "payment_method": "4242424242424242",
    }
    tx_id(w.post(citizen, "payment.create", payload))
    assert result(renew(w, citizen, licence))["status"] == "awaiting_payment"
    # Another holder's fine is not this holder's business.
    other = w.person()
    issue_fine(w, other.subject)
    theirs = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    assert result(renew(w, citizen, theirs))["status"] == "awaiting_payment"


def test_an_overdue_tax_payable_fails_no_overdue_tax_alone_until_it_is_paid(
    licences_world: Open,
) -> None:
    """The tax payable comes from a real return: 1403's, filed late on 2025-12-01, is due that
    very day. Due today is not overdue; the next day it is."""
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    engineering = issued(w, ENGINEERING, citizen.subject, date(2021, 1, 1))
    driving = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    tax, due_minor = file_personal_return(w, citizen, "1403")
    assert payable_view(w, citizen, tax)["due_on"] == "2025-12-01"
    assert result(renew(w, citizen, engineering))["status"] == "awaiting_payment"
    w.clock.to_day(date(2025, 12, 2))
    (failure,) = refused_rules(renew(w, citizen, driving))
    assert failure["rule"] == "no_overdue_tax"
    (listed,) = failure["details"]["payables"]
    assert (listed["payable_id"], listed["amount_minor"]) == (tax, due_minor)
    assert listed["due_on"] == {"date": "2025-12-01", "jalali": "1404-09-10"}
    assert tax in failure["remedy"]
    tx_id(pay(w, citizen, tax, due_minor))
    assert result(renew(w, citizen, driving))["status"] == "awaiting_payment"


def test_a_suspended_fee_fails_fee_in_force_alone_until_the_suspension_ends(
    licences_world: Open,
) -> None:
    """The business licence renewal fee is suspended from 2025-03-21 to 2025-06-21 inclusive
    (payments/fee_schedules.json). A licence from 1399-03-01 (2020-05-21) expires on
    1404-02-31 (2025-05-21); its window runs 1403-11-30..1404-08-30 (Bahman and Aban have 30
    days), so only the fee refuses the renewal."""
    w = licences_world(on_day(date(2025, 4, 1)))
    shopkeeper = w.person()
    licence = issued(w, BUSINESS, shopkeeper.subject, date(2020, 5, 21))
    (failure,) = refused_rules(renew(w, shopkeeper, licence))
    assert failure["rule"] == "fee_in_force"
    assert failure["details"]["reason"] == "suspended"
    assert failure["details"]["suspension_ends_on"] == {
        "date": "2025-06-22",
        "jalali": "1404-04-01",
    }
    assert "1404-04-01" in failure["remedy"]
    # 23:30 on 2025-06-21 in Tehran: still suspended.
    w.clock.move_to(tehran_midnight(date(2025, 6, 22)) - timedelta(minutes=30))
    assert rule_names(renew(w, shopkeeper, licence)) == ["fee_in_force"]
    # 00:01 on 2025-06-22 in Tehran (20:31 on the 21st in UTC): the 1404 fee is in force.
    w.clock.move_to(tehran_midnight(date(2025, 6, 22)) + timedelta(minutes=1))
    body = result(renew(w, shopkeeper, licence))
    assert body["fee"]["amount_minor"] == BUSINESS_FEE_MINOR
    assert body["fee"]["legal_source"]["reference"] == "ILLUSTRATIVE/1404/guilds/renewal"
    assert body["new_term"]["valid_from"] == {"date": "2025-06-22", "jalali": "1404-04-01"}
    assert body["new_term"]["expires_on"] == {"date": "2030-06-21", "jalali": "1409-03-31"}
    assert body["pay_by"] == {"date": "2025-07-22", "jalali": "1404-04-31"}


def test_every_failing_rule_is_listed_together_in_order(licences_world: Open) -> None:
    """On 2025-03-31 (1404-01-11): a suspended driving licence whose window opens in October,
    with an unpaid fine and an overdue tax payable; a revoked business licence whose window
    closed on 1403-12-30 (1403-06-31 + 6 months, Esfand's 30th of a leap year), renewed while
    its fee is suspended. Every rule of the six fails on one or the other."""
    w = licences_world(on_day(date(2025, 3, 30)))
    citizen = w.person()
    driving = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    business = issued(w, BUSINESS, citizen.subject, date(2019, 9, 23))
    assert stored_licence(w, business).term.expires_on == date(2024, 9, 21)
    tx_id(act(w, RAHVAR, "suspend", driving))
    tx_id(act(w, ASNAF, "revoke", business))
    fine, *_ = issue_fine(w, citizen.subject)
    tax, _ = file_personal_return(w, citizen, "1402")
    w.clock.to_day(date(2025, 3, 31))
    rules = refused_rules(renew(w, citizen, driving))
    assert [r["rule"] for r in rules] == [
        "not_suspended",
        "in_renewal_window",
        "no_unpaid_fines",
        "no_overdue_tax",
    ]
    assert rules[1]["details"]["position"] == "before"
    assert rules[2]["details"]["payables"][0]["payable_id"] == fine
    assert rules[3]["details"]["payables"][0]["payable_id"] == tax
    rules = refused_rules(renew(w, citizen, business))
    assert [r["rule"] for r in rules] == [
        "not_revoked",
        "in_renewal_window",
        "no_overdue_tax",
        "fee_in_force",
    ]
    assert rules[1]["details"]["closes_on"] == {"date": "2025-03-20", "jalali": "1403-12-30"}
    assert rules[1]["details"]["position"] == "after"
    assert stored_renewals(w, driving) == stored_renewals(w, business) == {}
