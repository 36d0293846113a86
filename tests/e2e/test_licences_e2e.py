"""Licence renewals end to end: `pishkhan serve --workers 2` (dev mode: the sandbox provider),
real clients over HTTP, on SQLite and PostgreSQL.

The double-renewal race: for each of several licences (Iranian driving licences and Estonian
taxi driver cards), its holder's two clients, each on its own connection, send a licence.renew
at the same moment to a server with two worker processes. Exactly one is accepted (201) and
waits for its fee; the other gets 409 licence-renewal-pending naming the winner. Then each
holder pays the winner's fee with payment.create, whichever worker answers, and the licence is
renewed with no further signature: the paid hook runs in every worker.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import create_engine, func, select

from licences.schema import licence_renewals
from signatures.canonical import JsonValue
from signatures.envelope import parse_subject
from signatures.errors import EnvelopeError, SubjectError
from signatures.jws import PrivateKey
from tests.e2e.client import ApiClient, national_id

if TYPE_CHECKING:
    from tests.e2e.conftest import Server

LICENCES_PER_TYPE = 4
PROBLEMS = "https://pishkhan.example/problems/"
# (type, issuing agency, days a term lasts (about), fee currency): valid_from is picked so the
# term ends about a month from now, inside every type's renewal window.
TYPES = (
    ("ir.driving", "agency:rahvar", 3652, "IRR"),
    ("ee.taxi-driver", "agency:transpordiamet", 1826, "EUR"),
)
EXPIRES_IN_DAYS = 30


@dataclass
class Holder:
    subject: str
    key: PrivateKey
    clients: tuple[ApiClient, ApiClient]  # one subject, two connections


@dataclass
class Case:
    licence_id: str
    holder: Holder
    old_expiry: str  # ISO date
    currency: str


def _estonian_code(rng: random.Random) -> str:
    """A valid ee-ik subject (the check digit found by asking signatures.envelope)."""
    while True:
        born = f"{rng.randrange(50, 99):02d}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
        body = f"4{born}{rng.randrange(1000):03d}"  # 4: a woman born in the 1900s
        for check in range(10):
            try:
                return str(parse_subject(f"ee-ik:{body}{check}"))
            except (EnvelopeError, SubjectError):
                continue


def _holder(server: Server, subject: str) -> Holder:
    first, second = server.client(subject), server.client(subject)
    return Holder(subject, first.new_key(), (first, second))


def _number(licence_type: str, n: int) -> str:
    return f"{n:010d}" if licence_type == "ir.driving" else str(700_000 + n)


def _race(holder: Holder, licence_id: str) -> list[httpx.Response]:
    barrier = threading.Barrier(2)
    payload: dict[str, JsonValue] = {"licence_id": licence_id}

    def send(client: ApiClient) -> httpx.Response:
        barrier.wait()
        return client.send(holder.key, "licence.renew", payload)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(send, holder.clients))


def _issue_licences(server: Server, rng: random.Random) -> list[Case]:
    """LICENCES_PER_TYPE licences of each type, each to its own holder, expiring in about a
    month (inside every type's renewal window)."""
    today = datetime.now(UTC).date()
    cases = []
    for n_type, (licence_type, agency_subject, term_days, currency) in enumerate(TYPES):
        agency = server.client(agency_subject, roles=("agency",))
        agency_key = agency.new_key()
        valid_from: date = today - timedelta(days=term_days - EXPIRES_IN_DAYS)
        ir = licence_type.startswith("ir.")
        for n in range(LICENCES_PER_TYPE):
            holder = _holder(server, national_id(rng) if ir else _estonian_code(rng))
            payload: dict[str, JsonValue] = {
                "licence_type": licence_type,
                "holder": holder.subject,
                "number": _number(licence_type, n_type * LICENCES_PER_TYPE + n),
                "valid_from": valid_from.isoformat(),
            }
            r = agency.send(agency_key, "licence.issue", payload)
            assert r.status_code == 201, r.text
            body = r.json()["result"]
            assert ("jalali" in body["expires_on"]) is ir  # dual dates for ir only
            cases.append(Case(body["licence_id"], holder, body["expires_on"]["date"], currency))
    return cases


def _pay_and_check(case: Case, renewal: dict[str, Any]) -> None:
    """The holder pays the renewal's fee; both its connections then see the licence renewed."""
    holder = case.holder
    assert renewal["fee"]["currency"] == case.currency
    pay: dict[str, JsonValue] = {
        "payable_id": renewal["payable_id"],
        "amount": {"amount_minor": renewal["fee"]["amount_minor"], "currency": case.currency},
        "provider": "sandbox",
        "payment_method": "4242424242424242",
    }
    r = holder.clients[1].send(holder.key, "payment.create", pay)
    assert r.status_code == 201, r.text
    for client in holder.clients:  # likely both workers: each sees the renewal completed
        view = client.get(f"/v1/licences/{case.licence_id}")
        assert view.status_code == 200, view.text
        licence = view.json()
        assert (licence["status"], licence["pending_renewal"]) == ("valid", None)
        assert licence["expires_on"] == renewal["new_term"]["expires_on"]
        assert licence["expires_on"]["date"] > case.old_expiry
        assert [r["status"] for r in licence["renewals"]] == ["completed"]


def test_two_clients_renewing_one_licence_at_once_one_proceeds_then_payment_completes_it(
    server: Server,
) -> None:
    cases = _issue_licences(server, random.Random(8))
    for case in cases:
        responses = _race(case.holder, case.licence_id)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409], [r.text for r in responses]
        loser = next(r for r in responses if r.status_code == 409)
        winner = next(r for r in responses if r.status_code == 201)
        assert loser.json()["type"] == PROBLEMS + "licence-renewal-pending", loser.text
        renewal = winner.json()["result"]
        assert renewal["status"] == "awaiting_payment"
        assert loser.json()["renewal_id"] == renewal["renewal_id"]
        _pay_and_check(case, renewal)
    engine = create_engine(server.env["PISHKHAN_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(licence_renewals.c.status, func.count()).group_by(licence_renewals.c.status)
            ).all()
    finally:
        engine.dispose()
    assert {status: int(count) for status, count in rows} == {"completed": len(cases)}
