"""The licences world of the storage tests: the service in process (FastAPI TestClient) on the
test database, with the sandbox payment provider, the four licence agencies (and one that
issues no licence type) with registered keys, and one clock for everything, moved by the tests.

The clock starts where a test says (`open_world(start)`), before any key is registered, and
only moves forward: every signature is made on it (created_at and the JWS's iat), so a test
may live in Nowruz 1404 or in the fee suspension of 2025 with keys that were registered "then".
After each world the journal must balance per currency.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.keys import CheckpointKeyring, checkpoint_sign_note
from api.settings import Settings
from api.transactions.registry import default_registry
from api.transactions.service import TransactionService
from ledger.note import NoteSigner
from licences import renewal_store
from licences import store as licence_store
from payments import journal_store
from payments.bill_ids import make_bill_id, make_payment_id
from payments.sandbox import SandboxProvider
from signatures.canonical import JsonValue
from signatures.client import (
    build_envelope,
    build_key_registration,
    generate_private_key,
    sign_envelope,
    transaction_body,
)
from signatures.envelope import parse_subject
from signatures.errors import EnvelopeError, SubjectError
from tests.db.conftest import ORIGIN
from tests.db.payments_world import assert_journal_balances, sandbox_app
from tests.db.test_transactions_pipeline import Party, problem
from tests.e2e.client import legal_id, national_id
from tests.idp import bearer, verifier

SUCCESS = "4242424242424242"
THREE_DS = "4000000000003220"
# 08:00 UTC is 11:30 in Tehran and 10:00 or 11:00 in Tallinn: the same calendar day everywhere.
DAY_HOUR_UTC = 8
TICK_S = 1
TEHRAN_OFFSET = timedelta(hours=3, minutes=30)  # Iran has kept +03:30 all year since 2022

RAHVAR, ASNAF, MRUD, TRANSPORT = (
    "agency:rahvar",
    "agency:asnaf",
    "agency:mrud",
    "agency:transpordiamet",
)
OTHER_AGENCY = "agency:gas-tehran"  # issues no licence type
AGENCIES = (RAHVAR, ASNAF, MRUD, TRANSPORT, OTHER_AGENCY)

DRIVING, BUSINESS, ENGINEERING, TAXI = (
    "ir.driving",
    "ir.business",
    "ir.engineering",
    "ee.taxi-driver",
)
DRIVING_FEE_MINOR = 4_500_000  # IRR, payments/fee_schedules.json, since 2024-03-20
BUSINESS_FEE_MINOR = 10_000_000  # IRR, from 2025-06-22 (suspended 2025-03-21..2025-06-21)
TAXI_FEE_MINOR = 2_000  # EUR cents
POSTAL = "1193653471"
# A driving licence from 2016-01-01 (1394-10-11) expires on 2025-12-31 (1404-10-10): on
# 2025-12-01 its window (from 2025-10-02) is open.
IN_WINDOW = date(2016, 1, 1)
DEC_1 = date(2025, 12, 1)


def on_day(day: date, *, hour: int = DAY_HOUR_UTC, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def tehran_midnight(day: date) -> datetime:
    """The UTC moment Tehran's `day` begins."""
    return datetime.combine(day, time(0), tzinfo=UTC) - TEHRAN_OFFSET


class Clock:
    """The one clock of the world: transactions, payments, the sandbox and read views."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def move_to(self, moment: datetime) -> None:
        assert moment >= self.now, f"the clock only moves forward ({self.now} -> {moment})"
        self.now = moment

    def to_day(self, day: date, *, hour: int = DAY_HOUR_UTC, minute: int = 0) -> None:
        self.move_to(on_day(day, hour=hour, minute=minute))

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def tick(self) -> datetime:
        """One second on, then now. The ledger makes acceptance times strictly increasing (a
        microsecond apart on a clock that stands still), so on a frozen clock a key registered
        "now" would have a not_before after a signature made "now"; real clocks move on."""
        self.advance(TICK_S)
        return self.now


@dataclass
class World:
    client: TestClient
    engine: Engine
    signer: NoteSigner
    clock: Clock
    sandbox: SandboxProvider
    rng: random.Random
    agencies: dict[str, Party] = field(default_factory=dict)
    _numbers: Iterator[int] = field(default_factory=lambda: iter(range(1_000_000, 9_999_999)))

    # --- signing on the world's clock ----------------------------------------------------------

    def signed(
        self,
        party: Party,
        type_: str,
        payload: dict[str, Any],
        *,
        on_behalf_of: str | None = None,
    ) -> dict[str, JsonValue]:
        now = self.clock.tick()
        envelope = build_envelope(
            type=type_,
            version=1,
            signer=party.subject,
            payload=payload,
            on_behalf_of=on_behalf_of,
            created_at=now,
        )
        return transaction_body(sign_envelope(envelope, party.key, iat=int(now.timestamp())))

    def post(
        self,
        party: Party,
        type_: str,
        payload: dict[str, Any],
        *,
        on_behalf_of: str | None = None,
        client: TestClient | None = None,
    ) -> Any:
        body = self.signed(party, type_, payload, on_behalf_of=on_behalf_of)
        return (client or self.client).post("/v1/transactions", json=body, headers=party.headers)

    def register(self, party: Party) -> None:
        r = self.client.post("/v1/keys/challenges", headers=party.headers)
        assert r.status_code == 201, r.text
        now = self.clock.tick()
        envelope = build_key_registration(
            party.key, subject=party.subject, challenge=r.json()["challenge"], created_at=now
        )
        body = transaction_body(sign_envelope(envelope, party.key, iat=int(now.timestamp())))
        r = self.client.post("/v1/transactions", json=body, headers=party.headers)
        assert r.status_code == 201, r.text

    def party(self, subject: str, role: str = "citizen") -> Party:
        """A subject with a registered EdDSA key and a bearer token for `role`."""
        created = Party(subject, bearer(subject, role), generate_private_key("EdDSA"))
        self.register(created)
        return created

    def person(self, role: str = "citizen") -> Party:
        return self.party(national_id(self.rng), role)

    def entity(self) -> Party:
        return self.party(legal_id(self.rng), "business")

    def estonian(self) -> Party:
        return self.party(estonian_code(self.rng))

    def agency(self, subject: str) -> Party:
        return self.agencies[subject]

    def number(self, licence_type: str) -> str:
        n = next(self._numbers)
        if licence_type == ENGINEERING:
            return f"1-23-{n}"
        if licence_type == TAXI:
            return str(n)
        return f"{n:010d}"


def estonian_code(rng: random.Random) -> str:
    """A valid ee-ik subject: a man born in 1976 (first digit 3), any serial, the one check
    digit signatures.envelope accepts (found by asking it, not by re-implementing it)."""
    while True:
        body = f"376{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}"
        for check in range(10):
            try:
                return str(parse_subject(f"ee-ik:{body}{check}"))
            except (EnvelopeError, SubjectError):
                continue


@contextmanager
def open_world(engine: Engine, signer: NoteSigner, start: datetime) -> Iterator[World]:
    clock = Clock(start)
    app, sandbox, runtime = sandbox_app(engine, signer, clock, rate_limit_per_minute=100_000)
    app.state.clock = clock
    app.state.transactions = service(engine, signer, runtime=runtime, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        w = World(client, engine, signer, clock, sandbox, random.Random(start.isoformat()))
        for subject in AGENCIES:
            w.agencies[subject] = w.party(subject, "agency")
        yield w
    assert_journal_balances(engine)


def service(
    engine: Engine, signer: NoteSigner, *, runtime: Any, clock: Clock
) -> TransactionService:
    """The transaction service on the world's clock (create_app's runs on the wall clock)."""
    return TransactionService(
        engine,
        registry=default_registry(payments=runtime),
        origin=ORIGIN,
        sign_note=checkpoint_sign_note(CheckpointKeyring.single(signer)),
        clock=clock,
    )


@contextmanager
def second_client(w: World) -> Iterator[TestClient]:
    """Another app on the same database and clock: a second worker, for races."""
    settings = Settings.model_construct(ledger_origin=ORIGIN, rate_limit_per_minute=100_000)
    runtime = w.client.app.state.payments  # type: ignore[attr-defined]
    app = create_app(
        settings,
        engine=w.engine,
        checkpoint_signer=w.signer,
        token_verifier=verifier(),
        payments_runtime_=runtime,
    )
    app.state.clock = w.clock
    app.state.transactions = service(w.engine, w.signer, runtime=runtime, clock=w.clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(name="licences_world")
def licences_world_fixture(
    engine: Engine, signer: NoteSigner
) -> Iterator[Callable[[datetime], World]]:
    """open_world(start) for the test: one world per test, on SQLite and PostgreSQL."""
    with ExitStack() as stack:

        def start(at: datetime) -> World:
            return stack.enter_context(open_world(engine, signer, at))

        yield start


# --- transactions --------------------------------------------------------------------------------


def tx_id(r: Any) -> str:
    assert r.status_code == 201, r.text
    return str(r.headers["Location"]).rsplit("/", 1)[-1]


def result(r: Any) -> dict[str, Any]:
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()["result"]
    return body


def issue(
    w: World,
    licence_type: str,
    holder: str,
    valid_from: date,
    *,
    agency: str | None = None,
    number: str | None = None,
) -> Any:
    issuer = w.agency(agency or AGENCY_OF[licence_type])
    payload: dict[str, JsonValue] = {
        "licence_type": licence_type,
        "holder": holder,
        "number": number or w.number(licence_type),
        "valid_from": valid_from.isoformat(),
    }
    return w.post(issuer, "licence.issue", payload)


def issued(w: World, licence_type: str, holder: str, valid_from: date) -> str:
    """A new licence's id (its licence.issue transaction's id)."""
    return tx_id(issue(w, licence_type, holder, valid_from))


def renew(
    w: World,
    party: Party,
    licence_id: str,
    *,
    on_behalf_of: str | None = None,
    client: TestClient | None = None,
) -> Any:
    payload: dict[str, JsonValue] = {"licence_id": licence_id}
    return w.post(party, "licence.renew", payload, on_behalf_of=on_behalf_of, client=client)


def act(w: World, agency: str, action: str, licence_id: str, reason: str = "court_order") -> Any:
    payload: dict[str, JsonValue] = {"licence_id": licence_id, "reason": reason}
    return w.post(w.agency(agency), f"licence.{action}", payload)


def refused_rules(r: Any) -> list[dict[str, Any]]:
    """The failed rules of a refused renewal (409 licence-renewal-refused)."""
    body = problem(r, 409, "licence-renewal-refused")
    rules: list[dict[str, Any]] = body["failed_rules"]  # type: ignore[assignment]
    for rule in rules:
        assert set(rule) == {"rule", "message", "remedy", "details"}, rule
        assert rule["message"] and rule["remedy"], rule
    return rules


def rule_names(r: Any) -> list[str]:
    return [rule["rule"] for rule in refused_rules(r)]


def pay(
    w: World,
    payer: Party,
    payable_id: str,
    amount_minor: int,
    *,
    currency: str = "IRR",
    method: str = SUCCESS,
    on_behalf_of: str | None = None,
) -> Any:
    payload: dict[str, JsonValue] = {
        "payable_id": payable_id,
        "amount": {"amount_minor": amount_minor, "currency": currency},
        "provider": "sandbox",
        "payment_method": method,
    }
    return w.post(payer, "payment.create", payload, on_behalf_of=on_behalf_of)


def payable_view(w: World, party: Party, payable_id: str) -> dict[str, Any]:
    r = w.client.get(f"/v1/payables/{payable_id}", headers=party.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def payment_view(w: World, party: Party, intent_id: str) -> dict[str, Any]:
    r = w.client.get(f"/v1/payments/{intent_id}", headers=party.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


_fine_serials = iter(range(20_000, 99_999))


def issue_fine(
    w: World, debtor: str, amount_minor: int = 1_500_000, *, kind: str = "fine"
) -> tuple[str, str, str]:
    """A traffic fine (bill.issue, kind fine) issued by the traffic police to `debtor`, or with
    kind "bill" a gas bill: (payable id, bill ID, payment ID), with right check digits."""
    fine = kind == "fine"
    service_type, agency = (8, RAHVAR) if fine else (3, OTHER_AGENCY)
    serial = str(next(_fine_serials))
    bill_id = make_bill_id(serial, company_code="421", service_type=service_type)
    payment_id = make_payment_id(bill_id=bill_id, amount_minor=amount_minor, year_digit=4, period=7)
    account = "agency_revenue:" + agency.removeprefix("agency:")
    payload: dict[str, JsonValue] = {
        "kind": kind,
        "debtor": debtor,
        "amount": {"amount_minor": amount_minor, "currency": "IRR"},
        "transfers": [{"account": account, "amount_minor": amount_minor, "category": kind}],
        "due_on": (w.clock().date() + timedelta(days=60)).isoformat(),
        "reference": bill_id,
        "payment_id": payment_id,
    }
    return tx_id(w.post(w.agency(agency), "bill.issue", payload)), bill_id, payment_id


def file_personal_return(w: World, citizen: Party, period: str) -> tuple[str, int]:
    """A personal income tax return for `period` (Solar Hijri year), filed late: assessed into
    a tax payable due on the filing day. (payable id, amount due)."""
    payload: dict[str, JsonValue] = {
        "jurisdiction": "ir",
        "period": period,
        "postal_code": POSTAL,
        "salary": [{"employer": "ir-lid:10380284790", "annual_minor": 3_000_000_000}],
        "other_income_minor": 2_000_000_000,
    }
    body = result(w.post(citizen, "tax.return.personal", payload))
    assert body["status"] == "accepted", body
    assessment = body["assessment"]
    return str(assessment["payable_id"]), int(assessment["due_minor"])


# --- what is stored ------------------------------------------------------------------------------


def stored_licence(w: World, licence_id: str) -> licence_store.StoredLicence:
    with w.engine.connect() as conn:
        found = licence_store.get_licence(conn, licence_id)
    assert found is not None
    return found


def stored_renewals(w: World, licence_id: str) -> dict[str, str]:
    """renewal id → status."""
    with w.engine.connect() as conn:
        return {r.renewal_id: r.status for r in renewal_store.list_renewals(conn, licence_id)}


def licence_view(w: World, party: Party, licence_id: str) -> dict[str, Any]:
    """GET /v1/licences/{id} as `party` (200 expected)."""
    r = w.client.get(f"/v1/licences/{licence_id}", headers=party.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def event_kinds(w: World, licence_id: str) -> list[str]:
    with w.engine.connect() as conn:
        return [e.kind for e in licence_store.list_events(conn, licence_id)]


def balances(w: World) -> dict[tuple[str, str], int]:
    with w.engine.connect() as conn:
        return journal_store.balances(conn)


AGENCY_OF = {DRIVING: RAHVAR, BUSINESS: ASNAF, ENGINEERING: MRUD, TAXI: TRANSPORT}
