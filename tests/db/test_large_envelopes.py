"""Envelope size limits per transaction type: 64 KiB unless the type allows a batch (up to the JWS
payload limit, 1 MiB); the transactions route alone accepts a body that large, and the receipt of a
large transaction still verifies offline."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine

from api.app import create_app
from api.auth import Role
from api.limits import MAX_BODY_BYTES, MAX_TRANSACTION_BODY_BYTES
from api.settings import Settings
from api.transactions.registry import TransactionType, TypeRegistry, default_registry
from ledger.note import NoteSigner
from signatures.canonical import MAX_JSON_BYTES, JsonValue
from signatures.envelope import Envelope
from signatures.jws import MAX_PAYLOAD_BYTES
from tests.db.conftest import ORIGIN
from tests.db.test_transactions_pipeline import assert_verifies, new_party, problem, signed
from tests.idp import verifier


def _count(conn: Connection, envelope: Envelope, **_: Any) -> dict[str, JsonValue]:
    payload = envelope.payload
    assert isinstance(payload, dict) and isinstance(payload["items"], list)
    return {"items": len(payload["items"])}


def _types() -> list[TransactionType]:
    citizens = frozenset({Role.CITIZEN})
    return [
        TransactionType("test.batch", 1, citizens, False, lambda e: None, _count,
                        max_envelope_bytes=MAX_PAYLOAD_BYTES),
        TransactionType("test.small", 1, citizens, False, lambda e: None, _count),
    ]  # fmt: skip


@pytest.fixture
def client(engine: Engine, signer: NoteSigner) -> Iterator[TestClient]:
    settings = Settings.model_construct(ledger_origin=ORIGIN, rate_limit_per_minute=10_000)
    base = default_registry()
    registry = TypeRegistry([*(base.get(n) for n in base.names()), *_types()])  # type: ignore[misc]
    app = create_app(
        settings, engine=engine, checkpoint_signer=signer, token_verifier=verifier(),
        registry=registry,
    )  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _items(total_bytes: int) -> list[JsonValue]:
    return ["x" * 990 for _ in range(total_bytes // 1000)]


def test_a_batch_type_takes_an_envelope_far_above_64_kib(
    client: TestClient, signer: NoteSigner
) -> None:
    citizen = new_party(client, random.Random(91))
    items = _items(600_000)
    body = signed(citizen, "test.batch", {"items": items})
    r = client.post("/v1/transactions", json=body, headers=citizen.headers)
    assert r.status_code == 201, r.text[:500]
    assert r.json()["result"] == {"items": len(items)}
    assert_verifies(r.json(), signer)  # the receipt carries the whole envelope and still checks
    got = client.get(
        f"/v1/transactions/{r.json()['transaction_id']}/receipt", headers=citizen.headers
    )
    assert got.status_code == 200 and got.json()["envelope"]["payload"]["items"] == items


def test_other_types_stay_at_64_kib(client: TestClient) -> None:
    citizen = new_party(client, random.Random(92))
    body = signed(citizen, "test.small", {"items": _items(MAX_JSON_BYTES + 2_000)})
    r = client.post("/v1/transactions", json=body, headers=citizen.headers)
    assert problem(r, 413, "envelope-too-large")["detail"].endswith(
        f"at most {MAX_JSON_BYTES} bytes in canonical form"
    )


def test_bodies_beyond_the_route_limits_are_refused_before_reading(client: TestClient) -> None:
    citizen = new_party(client, random.Random(93))
    huge = b"{" + b" " * MAX_TRANSACTION_BODY_BYTES + b"}"
    headers = {**citizen.headers, "content-type": "application/json"}
    problem(client.post("/v1/transactions", content=huge, headers=headers), 413, "body-too-large")
    # Every other route keeps the small limit.
    over = b"{" + b" " * MAX_BODY_BYTES + b"}"
    problem(client.post("/v1/tax/calculate", content=over, headers=headers), 413, "body-too-large")
