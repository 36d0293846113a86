"""The payments world of the storage tests: the service in process (FastAPI TestClient) with the
sandbox provider on the test database, an agency with a registered key, and a clock the tests
move. After each test, the journal must balance per currency."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.payments.runtime import PaymentsRuntime
from api.payments.setup import payments_runtime
from api.settings import Settings
from ledger.note import NoteSigner
from payments import journal_store
from payments.sandbox import SandboxProvider
from payments.sandbox_sql import SqlSandboxRecords
from signatures.client import generate_private_key
from tests.db.conftest import ORIGIN
from tests.db.test_transactions_pipeline import Party, register
from tests.idp import bearer, verifier

SANDBOX_SECRET = b"sandbox-test-secret-0123456789abcdef"


class Clock:
    """The payments runtime's and the sandbox's clock, moved by the tests."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def advance_past(self, instant: str, seconds: float) -> None:
        """Move to `seconds` after `instant` (ISO 8601), or after now when that is later.

        An intent's created_at is its transaction's acceptance time, from the service's own
        clock, which this one does not drive: on a slow machine it can be seconds after this
        clock's start, so "advance by the TTL" would not yet reach the intent's expiry.
        """
        self.now = max(self.now, datetime.fromisoformat(instant)) + timedelta(seconds=seconds)


@dataclass
class World:
    client: TestClient
    engine: Engine
    signer: NoteSigner
    clock: Clock
    sandbox: SandboxProvider
    agency: Party
    rng: random.Random


def sandbox_app(
    engine: Engine,
    signer: NoteSigner,
    clock: Callable[[], datetime],
    *,
    rate_limit_per_minute: int,
) -> tuple[FastAPI, SandboxProvider, PaymentsRuntime]:
    """The service with the sandbox provider on the test database, payments on `clock`."""
    settings = Settings.model_construct(
        ledger_origin=ORIGIN, rate_limit_per_minute=rate_limit_per_minute
    )
    sandbox = SandboxProvider(
        records=SqlSandboxRecords(engine), now=clock, webhook_secrets=[SANDBOX_SECRET]
    )
    runtime = payments_runtime(settings, engine, clock=clock, providers={"sandbox": sandbox})
    app = create_app(
        settings,
        engine=engine,
        checkpoint_signer=signer,
        token_verifier=verifier(),
        payments_runtime_=runtime,
    )
    return app, sandbox, runtime


def assert_journal_balances(engine: Engine) -> None:
    """Every currency's journal sums to zero: what each world checks after its test."""
    with engine.connect() as conn:
        totals = journal_store.book_totals(conn)
    assert all(total == 0 for total in totals.values()), totals


@pytest.fixture
def world(engine: Engine, signer: NoteSigner) -> Iterator[World]:
    clock = Clock()
    app, sandbox, _ = sandbox_app(engine, signer, clock, rate_limit_per_minute=10_000)
    with TestClient(app, raise_server_exceptions=False) as client:
        agency = Party(
            "agency:water-tehran",
            bearer("agency:water-tehran", "agency"),
            generate_private_key("EdDSA"),
        )  # type: ignore[arg-type]
        register(client, agency)
        yield World(client, engine, signer, clock, sandbox, agency, random.Random(7))
    assert_journal_balances(engine)
