"""Licence renewals and their fees through POST /v1/transactions, on SQLite and PostgreSQL:
the fee paid with payment.create completes the renewal with no second signature; unpaid, it
keeps the renewal pending until pay_by and then lapses; a revocation voids it; a delegated
representative renews an entity's licence; two renewals at once, exactly one proceeds.

Expected dates are literals, worked out with jdatetime apart from licences.terms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

from tests.db.licences_world import (
    BUSINESS,
    BUSINESS_FEE_MINOR,
    DEC_1,
    DRIVING,
    DRIVING_FEE_MINOR,
    IN_WINDOW,
    RAHVAR,
    THREE_DS,
    World,
    act,
    balances,
    event_kinds,
    issued,
    licence_view,
    licences_world_fixture,  # noqa: F401 (the licences_world fixture)
    on_day,
    pay,
    payable_view,
    payment_view,
    refused_rules,
    renew,
    result,
    second_client,
    stored_licence,
    stored_renewals,
    tehran_midnight,
    tx_id,
)
from tests.db.test_transactions_pipeline import problem

Open = Callable[[datetime], World]


# --- the fee, paid or not ------------------------------------------------------------------------


def test_a_paid_fee_completes_the_renewal_with_no_second_signature(licences_world: Open) -> None:
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    r = renew(w, citizen, licence)
    body = result(r)
    renewal = tx_id(r)
    assert (body["renewal_id"], body["payable_id"], body["status"]) == (
        renewal,
        renewal,
        "awaiting_payment",
    )
    assert body["pay_by"] == {"date": "2025-12-31", "jalali": "1404-10-10"}
    assert body["fee"]["amount_minor"] == DRIVING_FEE_MINOR and body["fee"]["currency"] == "IRR"
    assert body["licence"]["expires_on"] == {"date": "2025-12-31", "jalali": "1404-10-10"}
    due = payable_view(w, citizen, renewal)
    assert (due["kind"], due["status"], due["debtor"]) == ("fee", "open", citizen.subject)
    assert due["transfers"] == [
        {"account": "agency_revenue:rahvar", "amount_minor": DRIVING_FEE_MINOR,
         "category": "licence_fee"}
    ]  # fmt: skip
    view = licence_view(w, citizen, licence)
    assert view["pending_renewal"] == {
        "renewal_id": renewal,
        "payable_id": renewal,
        "pay_by": {"date": "2025-12-31", "jalali": "1404-10-10"},
    }
    assert view["expires_on"] == {"date": "2025-12-31", "jalali": "1404-10-10"}
    # The holder pays; nothing else is signed.
    w.clock.to_day(date(2025, 12, 5))
    intent = tx_id(pay(w, citizen, renewal, DRIVING_FEE_MINOR))
    assert payment_view(w, citizen, intent)["state"] == "succeeded"
    assert payable_view(w, citizen, renewal)["status"] == "paid"
    after = stored_licence(w, licence)
    assert after.term.expires_on == date(2035, 12, 31)
    assert after.version == 2 and after.status.value == "valid"
    assert stored_renewals(w, licence) == {renewal: "completed"}
    assert event_kinds(w, licence) == ["issued", "renewal_requested", "renewed"]
    view = licence_view(w, citizen, licence)
    assert view["pending_renewal"] is None
    assert (view["status"], view["version"]) == ("valid", 2)
    assert view["valid_from"] == {"date": "2016-01-01", "jalali": "1394-10-11"}  # extended
    assert view["expires_on"] == {"date": "2035-12-31", "jalali": "1414-10-10"}
    assert [(r["renewal_id"], r["status"]) for r in view["renewals"]] == [(renewal, "completed")]
    assert [e["kind"] for e in view["events"]] == ["issued", "renewal_requested", "renewed"]
    assert licence_view(w, w.agency(RAHVAR), licence)["expires_on"] == view["expires_on"]
    assert balances(w)[("agency_revenue:rahvar", "IRR")] == -DRIVING_FEE_MINOR
    # Renewed, the licence's window is years away: a second renewal is refused by it.
    (failure,) = refused_rules(renew(w, citizen, licence))
    assert failure["rule"] == "in_renewal_window"


def test_regression_a_licence_renewed_before_it_expires_stays_valid_until_then(
    licences_world: Open,
) -> None:
    """Regression: completing a renewal replaced the licence's term with the renewal's new one
    (from the day after the old expiry), so a licence renewed and paid in its window answered
    "not_yet_valid" until its old expiry. A term that follows on extends the licence."""
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    renewal = tx_id(renew(w, citizen, licence))
    tx_id(pay(w, citizen, renewal, DRIVING_FEE_MINOR))
    for day in (date(2025, 12, 2), date(2025, 12, 31), date(2026, 1, 1)):
        w.clock.to_day(day)
        view = licence_view(w, citizen, licence)
        assert view["status"] == "valid", (day, view["status"])
        assert view["valid_from"]["date"] == "2016-01-01"
        assert view["expires_on"]["date"] == "2035-12-31"
    renewed = licence_view(w, citizen, licence)["renewals"]
    assert renewed[0]["new_term"]["valid_from"]["date"] == "2026-01-01"  # the renewal's own


def test_an_unpaid_renewal_is_pending_until_pay_by_then_lapses(licences_world: Open) -> None:
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    first = tx_id(renew(w, citizen, licence))
    # On pay_by itself the renewal still waits: a second one is told what to pay, and by when.
    w.clock.to_day(date(2025, 12, 31), hour=19)  # 22:30 in Tehran
    body = problem(renew(w, citizen, licence), 409, "licence-renewal-pending")
    assert (body["renewal_id"], body["payable_id"], body["pay_by"]) == (first, first, "2025-12-31")
    assert body["pay_by_jalali"] == "1404-10-10"  # an ir licence: both calendars
    # The day after, the unpaid renewal lapses and the new one proceeds, with a new term from
    # today (the licence expired on 2025-12-31).
    w.clock.to_day(date(2026, 1, 1))
    r = renew(w, citizen, licence)
    second = tx_id(r)
    assert result(r)["new_term"]["valid_from"] == {"date": "2026-01-01", "jalali": "1404-10-11"}
    assert payable_view(w, citizen, first)["status"] == "cancelled"
    assert stored_renewals(w, licence) == {first: "lapsed", second: "awaiting_payment"}
    view = licence_view(w, citizen, licence)
    assert view["pending_renewal"]["renewal_id"] == second
    assert view["status"] == "expired"  # no renewal is paid yet: the licence ran out
    assert event_kinds(w, licence) == [
        "issued",
        "renewal_requested",
        "renewal_lapsed",
        "renewal_requested",
    ]
    problem(pay(w, citizen, first, DRIVING_FEE_MINOR), 409, "payable-state-conflict")
    tx_id(pay(w, citizen, second, DRIVING_FEE_MINOR))
    assert stored_licence(w, licence).term.expires_on == date(2035, 12, 31)


def test_a_payment_in_progress_past_pay_by_keeps_the_renewal_and_completes_it(
    licences_world: Open,
) -> None:
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    renewal = tx_id(renew(w, citizen, licence))
    # 23:40 in Tehran on pay_by: the holder starts paying; a 3-D Secure challenge is pending.
    w.clock.move_to(tehran_midnight(date(2026, 1, 1)) - timedelta(minutes=20))
    intent = tx_id(pay(w, citizen, renewal, DRIVING_FEE_MINOR, method=THREE_DS))
    assert payment_view(w, citizen, intent)["state"] == "requires_action"
    # Past midnight the fee is overdue, but a payment may still charge it: no lapse.
    w.clock.move_to(tehran_midnight(date(2026, 1, 1)) + timedelta(minutes=10))
    problem(renew(w, citizen, licence), 409, "licence-renewal-pending")
    assert payable_view(w, citizen, renewal)["status"] != "cancelled"
    r = w.client.post(f"/v1/payments/{intent}/confirm", headers=citizen.headers)
    assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
    assert stored_renewals(w, licence) == {renewal: "completed"}
    assert stored_licence(w, licence).term.expires_on == date(2035, 12, 31)


def test_revocation_voids_a_renewal_awaiting_payment_and_cancels_its_fee(
    licences_world: Open,
) -> None:
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    renewal = tx_id(renew(w, citizen, licence))
    assert result(act(w, RAHVAR, "revoke", licence))["status"] == "revoked"
    assert stored_renewals(w, licence) == {renewal: "void"}
    assert payable_view(w, citizen, renewal)["status"] == "cancelled"
    assert event_kinds(w, licence)[-2:] == ["revoked", "renewal_void"]
    problem(pay(w, citizen, renewal, DRIVING_FEE_MINOR), 409, "payable-state-conflict")
    assert stored_licence(w, licence).term.expires_on == date(2025, 12, 31)
    assert balances(w) == {}


def test_revocation_during_a_payment_voids_the_renewal_when_the_payment_completes(
    licences_world: Open,
) -> None:
    """The payable cannot be cancelled while a payment may still charge it: the revocation
    goes through, and the renewal becomes void when the payment succeeds; the agency refunds."""
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    renewal = tx_id(renew(w, citizen, licence))
    intent = tx_id(pay(w, citizen, renewal, DRIVING_FEE_MINOR, method=THREE_DS))
    tx_id(act(w, RAHVAR, "revoke", licence))
    assert stored_renewals(w, licence) == {renewal: "awaiting_payment"}
    r = w.client.post(f"/v1/payments/{intent}/confirm", headers=citizen.headers)
    assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
    assert stored_renewals(w, licence) == {renewal: "void"}
    stored = stored_licence(w, licence)
    assert (stored.status.value, stored.term.expires_on) == ("revoked", date(2025, 12, 31))
    assert event_kinds(w, licence)[-2:] == ["revoked", "renewal_void"]
    payload = {
        "payment": intent,
        "amount": {"amount_minor": DRIVING_FEE_MINOR, "currency": "IRR"},
        "expected_refundable_minor": DRIVING_FEE_MINOR,
        "reason": "licence revoked before renewal",
    }
    tx_id(w.post(w.agency(RAHVAR), "refund.create", payload))
    assert payable_view(w, citizen, renewal)["refunded_minor"] == DRIVING_FEE_MINOR


def test_a_suspended_licence_takes_its_paid_term_and_stays_suspended(licences_world: Open) -> None:
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licence = issued(w, DRIVING, citizen.subject, IN_WINDOW)
    renewal = tx_id(renew(w, citizen, licence))
    tx_id(act(w, RAHVAR, "suspend", licence))
    tx_id(pay(w, citizen, renewal, DRIVING_FEE_MINOR))
    stored = stored_licence(w, licence)
    assert (stored.status.value, stored.term.expires_on) == ("suspended", date(2035, 12, 31))
    assert stored_renewals(w, licence) == {renewal: "completed"}


# --- who renews ----------------------------------------------------------------------------------


def test_a_delegated_representative_renews_an_entitys_business_licence(
    licences_world: Open,
) -> None:
    """A company's business licence from 1399-10-01 (2020-12-21) expires on 1404-09-30
    (2025-12-21). Its clerk, delegated licence.renew and payment.create, renews and pays for
    it; another clerk, not delegated, is refused both with and without on_behalf_of."""
    w = licences_world(on_day(DEC_1))
    company = w.entity()
    clerk, stranger = w.person("business"), w.person("business")
    licence = issued(w, BUSINESS, company.subject, date(2020, 12, 21))
    not_after = (w.clock() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    grant = {
        "delegate": clerk.subject,
        "types": ["licence.renew", "payment.create"],
        "not_after": not_after,
    }
    tx_id(w.post(company, "delegation.grant", grant))
    problem(renew(w, stranger, licence, on_behalf_of=company.subject), 403, "no-delegation")
    problem(renew(w, stranger, licence), 404, "licence-not-found")
    problem(renew(w, clerk, licence), 404, "licence-not-found")  # it is not the clerk's own
    r = renew(w, clerk, licence, on_behalf_of=company.subject)
    renewal = tx_id(r)
    assert result(r)["new_term"]["expires_on"] == {"date": "2030-12-21", "jalali": "1409-09-30"}
    due = payable_view(w, company, renewal)
    assert (due["debtor"], due["amount"]["amount_minor"]) == (company.subject, BUSINESS_FEE_MINOR)
    assert licence_view(w, clerk, licence)["pending_renewal"]["payable_id"] == renewal
    problem(w.client.get(f"/v1/licences/{licence}", headers=stranger.headers), 404,
            "licence-not-found")  # fmt: skip
    tx_id(pay(w, clerk, renewal, BUSINESS_FEE_MINOR, on_behalf_of=company.subject))
    assert stored_licence(w, licence).term.expires_on == date(2030, 12, 21)
    assert stored_renewals(w, licence) == {renewal: "completed"}
    # Nor does any other citizen renew someone else's licence.
    problem(renew(w, stranger, licence), 404, "licence-not-found")


# --- races ---------------------------------------------------------------------------------------

RACES = 4


def test_two_renewals_of_one_licence_at_once_exactly_one_proceeds(licences_world: Open) -> None:
    """Two apps on one database (two workers), one renewal each at the same moment, for several
    licences: exactly one 201 and one 409 licence-renewal-pending each time."""
    w = licences_world(on_day(DEC_1))
    citizen = w.person()
    licences = [issued(w, DRIVING, citizen.subject, IN_WINDOW) for _ in range(RACES)]
    with second_client(w) as other:
        for licence in licences:
            bodies = [w.signed(citizen, "licence.renew", {"licence_id": licence}) for _ in "ab"]
            barrier = threading.Barrier(2)

            def send(pair: tuple[Any, dict[str, Any]], barrier: threading.Barrier = barrier) -> Any:
                client, body = pair
                barrier.wait()
                return client.post("/v1/transactions", json=body, headers=citizen.headers)

            with ThreadPoolExecutor(max_workers=2) as pool:
                responses = list(pool.map(send, zip((w.client, other), bodies, strict=True)))
            assert sorted(r.status_code for r in responses) == [201, 409], [
                r.text for r in responses
            ]
            loser = next(r for r in responses if r.status_code == 409)
            winner = next(r for r in responses if r.status_code == 201)
            assert problem(loser, 409, "licence-renewal-pending")["renewal_id"] == tx_id(winner)
            assert list(stored_renewals(w, licence).values()) == ["awaiting_payment"]
