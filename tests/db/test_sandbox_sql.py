"""The sandbox provider over SQL records (payments.sandbox_sql.SqlSandboxRecords) answers exactly as
over InMemorySandboxRecords: every scenario runs over both stores, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from payments.errors import ProviderError
from payments.providers import ChargeRequest, ProviderStatus, Settlement, SettlementKind
from payments.sandbox import ACTION_URL_PREFIX, SandboxProvider
from payments.sandbox_records import (
    Behaviour,
    InMemorySandboxRecords,
    SandboxCharge,
    SandboxRecords,
    SandboxRefund,
)
from payments.sandbox_sql import SqlSandboxRecords

SECRET = b"whsec_sandbox_test_secret_01"
T0 = datetime(2025, 3, 21, 23, 59, 50, tzinfo=UTC)
DAY = T0.date()
NEXT_DAY = date(2025, 3, 22)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: int) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture(params=["memory", "sql"])
def records(request: pytest.FixtureRequest, engine: Engine) -> SandboxRecords:
    if request.param == "memory":
        return InMemorySandboxRecords()
    return SqlSandboxRecords(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def sandbox(records: SandboxRecords, clock: Clock) -> SandboxProvider:
    return SandboxProvider(records=records, now=clock, webhook_secrets=[SECRET])


def _request(method: str, key: str = "intent_1:charge", amount: int = 1_770_000) -> ChargeRequest:
    return ChargeRequest(
        intent_id="intent_1",
        amount_minor=amount,
        currency="IRR",
        payment_method=method,
        idempotency_key=key,
    )


def test_success_is_stored_and_replayed(sandbox: SandboxProvider) -> None:
    first = sandbox.create_charge(_request("pm_sandbox_success"))
    assert (first.status, first.amount_minor, first.failure_code) == (
        ProviderStatus.SUCCEEDED,
        1_770_000,
        None,
    )
    assert sandbox.retrieve_charge(first.provider_ref) == first
    assert sandbox.create_charge(_request("pm_sandbox_success")) == first
    with pytest.raises(ProviderError) as reused:
        sandbox.create_charge(_request("pm_sandbox_success", amount=1))
    assert reused.value.code == "idempotency_key_reused"


def test_decline(sandbox: SandboxProvider) -> None:
    declined = sandbox.create_charge(_request("pm_sandbox_decline"))
    assert (declined.status, declined.failure_code) == (ProviderStatus.FAILED, "card_declined")
    assert sandbox.retrieve_charge(declined.provider_ref) == declined
    assert sandbox.settlements(DAY) == []
    with pytest.raises(ProviderError) as refund:
        sandbox.refund(declined.provider_ref, amount_minor=1, currency="IRR", idempotency_key="r")
    assert refund.value.code == "charge_not_refundable"


def test_3ds_confirm_settles_on_the_day_it_succeeded(
    sandbox: SandboxProvider, clock: Clock
) -> None:
    challenged = sandbox.create_charge(_request("pm_sandbox_3ds"))
    assert challenged.status is ProviderStatus.REQUIRES_ACTION
    assert challenged.action_url == ACTION_URL_PREFIX + challenged.provider_ref
    assert sandbox.settlements(DAY) == []
    clock.advance(60)  # past midnight UTC
    confirmed = sandbox.confirm_action(challenged.provider_ref, idempotency_key="c1")
    assert (confirmed.status, confirmed.action_url) == (ProviderStatus.SUCCEEDED, None)
    assert sandbox.confirm_action(challenged.provider_ref, idempotency_key="c1") == confirmed
    assert sandbox.settlements(DAY) == []
    assert sandbox.settlements(NEXT_DAY) == [
        Settlement(
            "sandbox", challenged.provider_ref, SettlementKind.CHARGE, 1_770_000, "IRR", NEXT_DAY
        )
    ]


def test_refunds_partial_full_over_and_idempotent(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_success", amount=1000)).provider_ref
    first = sandbox.refund(ref, amount_minor=300, currency="IRR", idempotency_key="r1")
    assert (first.succeeded, first.amount_minor, first.charge_ref) == (True, 300, ref)
    assert sandbox.refund(ref, amount_minor=300, currency="IRR", idempotency_key="r1") == first
    with pytest.raises(ProviderError) as over:
        sandbox.refund(ref, amount_minor=701, currency="IRR", idempotency_key="r2")
    assert over.value.code == "amount_too_large"
    rest = sandbox.refund(ref, amount_minor=700, currency="IRR", idempotency_key="r2")
    assert rest.amount_minor == 700
    with pytest.raises(ProviderError) as done:
        sandbox.refund(ref, amount_minor=1, currency="IRR", idempotency_key="r3")
    assert done.value.code == "charge_already_refunded"


def test_settlements_of_a_day(sandbox: SandboxProvider, clock: Clock) -> None:
    ok = sandbox.create_charge(_request("pm_sandbox_success", key="ok", amount=1000)).provider_ref
    short = sandbox.create_charge(_request("pm_sandbox_settlement_short", key="short", amount=500))
    sandbox.create_charge(_request("pm_sandbox_decline", key="declined"))
    sandbox.create_charge(_request("pm_sandbox_3ds", key="challenged"))
    refund = sandbox.refund(ok, amount_minor=250, currency="IRR", idempotency_key="r1")
    clock.advance(20)  # the next UTC day
    late = sandbox.refund(ok, amount_minor=50, currency="IRR", idempotency_key="r2")
    expected = [
        Settlement("sandbox", ok, SettlementKind.CHARGE, 1000, "IRR", DAY),
        Settlement("sandbox", short.provider_ref, SettlementKind.CHARGE, 499, "IRR", DAY),
        Settlement("sandbox", refund.provider_ref, SettlementKind.REFUND, 250, "IRR", DAY),
    ]
    assert sandbox.settlements(DAY) == sorted(
        expected, key=lambda s: (s.kind.value, s.provider_ref)
    )
    assert sandbox.settlements(NEXT_DAY) == [
        Settlement("sandbox", late.provider_ref, SettlementKind.REFUND, 50, "IRR", NEXT_DAY)
    ]
    assert sandbox.settlements(date(2025, 3, 20)) == []


def test_webhooks_are_the_same_bytes(sandbox: SandboxProvider) -> None:
    ref = sandbox.create_charge(_request("pm_sandbox_webhook_twice")).provider_ref
    deliveries = sandbox.webhook_deliveries(ref)
    assert [d.deliver_after_s for d in deliveries] == [0, 60]
    event = sandbox.parse_webhook(deliveries[0].body, deliveries[0].headers, now=T0)
    assert (event.charge_ref, event.status) == (ref, ProviderStatus.SUCCEEDED)


def _transcript(records: SandboxRecords) -> list[object]:
    """Every answer of one long scenario, to compare two record stores."""
    clock = Clock(T0)
    sandbox = SandboxProvider(records=records, now=clock, webhook_secrets=[SECRET])
    answers: list[object] = []
    refs = []
    for key, method in [
        ("a", "pm_sandbox_success"),
        ("b", "pm_sandbox_decline"),
        ("c", "pm_sandbox_3ds"),
        ("d", "pm_sandbox_webhook_out_of_order"),
        ("e", "pm_sandbox_settlement_short"),
        ("f", "pm_sandbox_insufficient_funds"),
    ]:
        result = sandbox.create_charge(_request(method, key=key, amount=1000))
        answers.append(result)
        refs.append(result.provider_ref)
    clock.advance(30)
    answers.append(sandbox.confirm_action(refs[2], idempotency_key="c"))
    answers.append(sandbox.refund(refs[0], amount_minor=400, currency="IRR", idempotency_key="r"))
    answers.append(sandbox.refund(refs[2], amount_minor=1000, currency="IRR", idempotency_key="s"))
    for ref in refs:
        answers.append(sandbox.retrieve_charge(ref))
        answers.append(sandbox.webhook_deliveries(ref))
        answers.append(records.get_charge(ref))
        answers.append(records.refunds_of(ref))
    answers.append(sandbox.settlements(DAY))
    answers.append(sandbox.settlements(NEXT_DAY))
    return answers


def test_sql_and_memory_records_give_the_same_transcript(engine: Engine) -> None:
    assert _transcript(SqlSandboxRecords(engine)) == _transcript(InMemorySandboxRecords())


# --- the SQL store itself ------------------------------------------------------------------------


def _charge(ref: str = "sbx_ch_1", amount: int = 1000) -> SandboxCharge:
    return SandboxCharge(
        provider_ref=ref,
        idempotency_key="k",
        intent_id="intent_1",
        payment_method="pm_sandbox_success",
        behaviour=Behaviour.SUCCESS,
        amount_minor=amount,
        currency="IRR",
        status=ProviderStatus.SUCCEEDED,
        failure_code=None,
        created_at=T0,
        updated_at=T0,
        settled_on=DAY,
    )


def _refund(ref: str, amount: int, charge_ref: str = "sbx_ch_1") -> SandboxRefund:
    return SandboxRefund(ref, f"key-{ref}", charge_ref, amount, "IRR", T0, DAY)


def test_put_replaces_by_provider_ref(engine: Engine) -> None:
    records = SqlSandboxRecords(engine)
    charge = _charge()
    records.put_charge(charge)
    assert records.get_charge("sbx_ch_1") == charge
    moved = replace(
        charge,
        status=ProviderStatus.FAILED,
        failure_code="card_declined",
        updated_at=T0 + timedelta(microseconds=1),
        settled_on=None,
    )
    records.put_charge(moved)
    assert records.get_charge("sbx_ch_1") == moved
    assert records.charges_settled_on(DAY) == []
    records.put_charge(charge)
    records.put_refund(_refund("sbx_re_1", 100))
    records.put_refund(_refund("sbx_re_1", 200))
    assert records.get_refund("sbx_re_1") == _refund("sbx_re_1", 200)
    assert records.refunds_of("sbx_ch_1") == [_refund("sbx_re_1", 200)]
    assert records.refunds_settled_on(DAY) == [_refund("sbx_re_1", 200)]
    assert records.get_charge("sbx_ch_missing") is None
    assert records.get_refund("sbx_re_missing") is None


def test_put_refund_never_refunds_more_than_the_charge(engine: Engine) -> None:
    """The guard for two processes that both passed the sandbox's in-process check."""
    records = SqlSandboxRecords(engine)
    records.put_charge(_charge(amount=1000))
    records.put_refund(_refund("sbx_re_1", 600))
    with pytest.raises(ProviderError) as over:
        records.put_refund(_refund("sbx_re_2", 401))
    assert (over.value.code, over.value.retryable) == ("amount_too_large", False)
    assert records.get_refund("sbx_re_2") is None
    records.put_refund(_refund("sbx_re_2", 400))
    with pytest.raises(ProviderError) as orphan:
        records.put_refund(_refund("sbx_re_3", 1, charge_ref="sbx_ch_missing"))
    assert orphan.value.code == "no_such_charge"
    assert sum(r.amount_minor for r in records.refunds_of("sbx_ch_1")) == 1000
