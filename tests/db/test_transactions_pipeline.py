"""The transaction pipeline in process (FastAPI TestClient), on SQLite and PostgreSQL.

Each step's refusal is its own problem type; what is accepted commits with its ledger entry;
every receipt passes the offline verifier (audit/receipt_check.py) with the service's vkeys.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from api.settings import Settings
from api.transactions.schema import transactions
from audit.receipt_check import check_receipt
from ledger import store
from ledger.note import NoteSigner
from signatures.canonical import JsonValue
from signatures.client import (
    build_envelope,
    build_key_registration,
    generate_private_key,
    public_jwk,
    sign_envelope,
    transaction_body,
)
from signatures.jws import PrivateKey
from tests.db.conftest import ORIGIN
from tests.e2e.client import legal_id, national_id
from tests.idp import bearer, verifier


@pytest.fixture
def client(engine: Engine, signer: NoteSigner) -> Iterator[TestClient]:
    settings = Settings.model_construct(ledger_origin=ORIGIN, rate_limit_per_minute=10_000)
    app = create_app(settings, engine=engine, checkpoint_signer=signer, token_verifier=verifier())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@dataclass
class Party:
    subject: str
    headers: dict[str, str]
    key: PrivateKey

    @property
    def kid(self) -> str:
        return public_jwk(self.key).kid


def _now() -> datetime:
    return datetime.now(UTC)


def signed(
    party: Party,
    type_: str,
    payload: dict[str, JsonValue],
    *,
    key: PrivateKey | None = None,
    on_behalf_of: str | None = None,
    created_at: datetime | None = None,
) -> dict[str, JsonValue]:
    envelope = build_envelope(
        type=type_,
        version=1,
        signer=party.subject,
        payload=payload,
        on_behalf_of=on_behalf_of,
        created_at=created_at or _now(),
    )
    at = int(_now().timestamp())
    return transaction_body(sign_envelope(envelope, key or party.key, iat=at))


def register(
    client: TestClient, party: Party, key: PrivateKey | None = None
) -> dict[str, JsonValue]:
    key = key or party.key
    r = client.post("/v1/keys/challenges", headers=party.headers)
    assert r.status_code == 201, r.text
    envelope = build_key_registration(
        key, subject=party.subject, challenge=r.json()["challenge"], created_at=_now()
    )
    body = transaction_body(sign_envelope(envelope, key, iat=int(_now().timestamp())))
    r = client.post("/v1/transactions", json=body, headers=party.headers)
    assert r.status_code == 201, r.text
    receipt: dict[str, JsonValue] = r.json()
    return receipt


def new_party(
    client: TestClient,
    rng: random.Random,
    role: str = "citizen",
    *,
    entity: bool = False,
    alg: str = "EdDSA",
) -> Party:
    subject = legal_id(rng) if entity else national_id(rng)
    party = Party(subject, bearer(subject, role), generate_private_key(alg))  # type: ignore[arg-type]
    register(client, party)
    return party


def vkeys(signer: NoteSigner) -> list[str]:
    return [signer.verifier.vkey]


def assert_verifies(
    receipt: dict[str, JsonValue], signer: NoteSigner, indication: str = "TOTAL_PASSED"
) -> None:
    report = check_receipt(json.dumps(receipt).encode(), trusted_vkeys=vkeys(signer), at=_now())
    assert report.as_dict()["indication"] == indication, report.as_dict()


def problem(r: object, status: int, slug: str) -> dict[str, JsonValue]:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body: dict[str, JsonValue] = r.json()  # type: ignore[attr-defined]
    assert body["type"] == f"https://pishkhan.example/problems/{slug}", body
    return body


def tree_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return store.current_tree_size(conn)


def tx_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(transactions)).scalar_one())


# --- accepted transactions and their receipts ------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "PS256"])
def test_key_registration_receipt_verifies_offline(
    client: TestClient, signer: NoteSigner, alg: str
) -> None:
    rng = random.Random(alg)
    subject = national_id(rng)
    party = Party(subject, bearer(subject, "citizen"), generate_private_key(alg))  # type: ignore[arg-type]
    receipt = register(client, party)
    assert receipt["leaf_index"] == 0
    assert receipt["signer_key"]["kid"] == party.kid  # type: ignore[index]
    assert_verifies(receipt, signer)


def test_state_changes_commit_with_their_ledger_entries(
    client: TestClient, engine: Engine, signer: NoteSigner
) -> None:
    rng = random.Random(1)
    alice = new_party(client, rng)
    spare = generate_private_key("EdDSA")
    register(client, alice, spare)
    spare_kid = public_jwk(spare).kid
    for kind in ("key.suspend", "key.reinstate", "key.suspend"):
        r = client.post(
            "/v1/transactions", json=signed(alice, kind, {"kid": spare_kid}), headers=alice.headers
        )
        assert r.status_code == 201, r.text
        assert_verifies(r.json(), signer)
    assert tree_size(engine) == tx_count(engine) == 5
    keys = {k["kid"]: k for k in client.get("/v1/keys", headers=alice.headers).json()}
    assert keys[spare_kid]["status"] == "suspended"
    assert [e["kind"] for e in keys[spare_kid]["events"]] == [
        "registered",
        "suspended",
        "reinstated",
        "suspended",
    ]


def test_revoked_key_signs_no_more_but_its_earlier_receipts_still_pass(
    client: TestClient, signer: NoteSigner
) -> None:
    rng = random.Random(2)
    bob = new_party(client, rng)
    second = generate_private_key("ES256")
    first_receipt = register(client, bob, second)
    r = client.post(
        "/v1/transactions",
        json=signed(bob, "key.revoke", {"kid": bob.kid, "reason": "key_compromise"}),
        headers=bob.headers,
    )
    assert r.status_code == 201, r.text
    later = signed(bob, "key.suspend", {"kid": public_jwk(second).kid})
    body = problem(
        client.post("/v1/transactions", json=later, headers=bob.headers),
        403,
        "signing-key-not-active",
    )
    assert body["sub_indication"] == "REVOKED_NO_POE"
    # The registration of `second` was signed (by itself) before the revocation of bob's first key.
    tx_id = first_receipt["transaction_id"]
    fresh = client.get(f"/v1/transactions/{tx_id}/receipt", headers=bob.headers)
    assert fresh.status_code == 200
    assert_verifies(fresh.json(), signer)
    # A receipt of a transaction signed by the revoked key, fetched after the revocation, still
    # passes: the ledger proves the signature existed before the revocation.
    page = client.get("/v1/transactions", headers=bob.headers).json()["items"]
    revoked_signed = [t for t in page if t["type"] == "key.register"][-1]
    receipt = client.get(
        f"/v1/transactions/{revoked_signed['id']}/receipt", headers=bob.headers
    ).json()
    assert receipt["signer_key"]["events"], "the revocation is in the receipt"
    assert_verifies(receipt, signer)


# --- refusals, each its own problem type, none leaving anything behind ------------------------


def test_replayed_nonce_is_refused(client: TestClient, engine: Engine) -> None:
    alice = new_party(client, random.Random(3))
    spare = generate_private_key("EdDSA")
    register(client, alice, spare)
    body = signed(alice, "key.suspend", {"kid": public_jwk(spare).kid})
    assert client.post("/v1/transactions", json=body, headers=alice.headers).status_code == 201
    size = tree_size(engine)
    problem(
        client.post("/v1/transactions", json=body, headers=alice.headers), 409, "nonce-replayed"
    )
    assert tree_size(engine) == size


def test_idempotent_retry_returns_the_same_receipt(client: TestClient) -> None:
    alice = new_party(client, random.Random(4))
    spare = generate_private_key("EdDSA")
    register(client, alice, spare)
    body = signed(alice, "key.suspend", {"kid": public_jwk(spare).kid})
    headers = {**alice.headers, "Idempotency-Key": "retry-1"}
    first = client.post("/v1/transactions", json=body, headers=headers)
    assert first.status_code == 201
    again = client.post("/v1/transactions", json=body, headers=headers)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    other = signed(alice, "key.reinstate", {"kid": public_jwk(spare).kid})
    problem(
        client.post("/v1/transactions", json=other, headers=headers), 409, "idempotency-key-reused"
    )


def test_stale_and_future_created_at_are_refused(client: TestClient) -> None:
    alice = new_party(client, random.Random(5))
    for delta in (timedelta(minutes=-10), timedelta(minutes=6)):
        body = signed(alice, "key.suspend", {"kid": alice.kid}, created_at=_now() + delta)
        problem(
            client.post("/v1/transactions", json=body, headers=alice.headers),
            400,
            "created-at-out-of-window",
        )


def test_signer_must_be_the_caller(client: TestClient) -> None:
    rng = random.Random(6)
    alice, mallory = new_party(client, rng), new_party(client, rng)
    body = signed(alice, "key.suspend", {"kid": alice.kid})
    problem(
        client.post("/v1/transactions", json=body, headers=mallory.headers),
        403,
        "signer-not-caller",
    )


def test_citizen_may_not_grant_delegations(client: TestClient) -> None:
    rng = random.Random(7)
    alice = new_party(client, rng)
    body = signed(
        alice,
        "delegation.grant",
        {
            "delegate": national_id(rng),
            "types": ["key.suspend"],
            "not_after": "2027-01-01T00:00:00Z",
        },
    )
    problem(client.post("/v1/transactions", json=body, headers=alice.headers), 403, "forbidden")


def test_signature_by_an_unregistered_key_is_refused(client: TestClient) -> None:
    alice = new_party(client, random.Random(8))
    body = signed(alice, "key.suspend", {"kid": alice.kid}, key=generate_private_key("EdDSA"))
    problem(
        client.post("/v1/transactions", json=body, headers=alice.headers),
        400,
        "signing-key-unknown",
    )


def test_changed_envelope_breaks_the_signature(client: TestClient) -> None:
    alice = new_party(client, random.Random(9))
    body = signed(alice, "key.suspend", {"kid": alice.kid})
    body["envelope"]["payload"]["kid"] = "A" * 43  # type: ignore[index]
    problem(
        client.post("/v1/transactions", json=body, headers=alice.headers), 400, "signature-invalid"
    )


def test_domain_refusal_leaves_no_entry(client: TestClient, engine: Engine) -> None:
    rng = random.Random(10)
    alice, bob = new_party(client, rng), new_party(client, rng)
    size, count = tree_size(engine), tx_count(engine)
    # bob's key exists, but alice may not touch it: 404 exactly as for a missing key.
    body = signed(alice, "key.suspend", {"kid": bob.kid})
    theirs = problem(
        client.post("/v1/transactions", json=body, headers=alice.headers), 404, "key-not-found"
    )
    body = signed(alice, "key.suspend", {"kid": "A" * 42 + "E"})
    missing = problem(
        client.post("/v1/transactions", json=body, headers=alice.headers), 404, "key-not-found"
    )
    assert theirs == missing
    assert (tree_size(engine), tx_count(engine)) == (size, count)


def test_unknown_type_and_bad_payload(client: TestClient) -> None:
    alice = new_party(client, random.Random(11))
    problem(
        client.post(
            "/v1/transactions", json=signed(alice, "tax.nothing", {}), headers=alice.headers
        ),
        400,
        "unknown-transaction-type",
    )
    body = problem(
        client.post(
            "/v1/transactions", json=signed(alice, "key.suspend", {"kid": 7}), headers=alice.headers
        ),
        400,
        "payload-invalid",
    )
    assert body["errors"][0]["field"] == "/envelope/payload/kid"  # type: ignore[index]


def test_mass_assignment_is_refused(client: TestClient) -> None:
    alice = new_party(client, random.Random(12))
    body = {**signed(alice, "key.suspend", {"kid": alice.kid}), "leaf_index": 0}
    problem(client.post("/v1/transactions", json=body, headers=alice.headers), 400, "invalid-body")


def test_reused_challenge_is_refused(client: TestClient) -> None:
    rng = random.Random(13)
    alice = new_party(client, rng)
    challenge = client.post("/v1/keys/challenges", headers=alice.headers).json()["challenge"]
    for expected in (201, 400):
        key = generate_private_key("EdDSA")
        envelope = build_key_registration(
            key, subject=alice.subject, challenge=challenge, created_at=_now()
        )
        body = transaction_body(sign_envelope(envelope, key, iat=int(_now().timestamp())))
        r = client.post("/v1/transactions", json=body, headers=alice.headers)
        assert r.status_code == expected, r.text
    problem(r, 400, "challenge-invalid")


# --- delegation ------------------------------------------------------------------------------


def test_delegate_acts_for_the_entity_until_revoked(client: TestClient, signer: NoteSigner) -> None:
    rng = random.Random(14)
    entity = new_party(client, rng, "business", entity=True)
    entity_spare = generate_private_key("EdDSA")
    register(client, entity, entity_spare)
    spare_kid = public_jwk(entity_spare).kid
    clerk = new_party(client, rng, "business")
    act = lambda kind: signed(clerk, kind, {"kid": spare_kid}, on_behalf_of=entity.subject)  # noqa: E731
    problem(
        client.post("/v1/transactions", json=act("key.suspend"), headers=clerk.headers),
        403,
        "no-delegation",
    )
    grant = signed(
        entity,
        "delegation.grant",
        {
            "delegate": clerk.subject,
            "types": ["key.suspend", "key.reinstate"],
            "not_after": (_now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    r = client.post("/v1/transactions", json=grant, headers=entity.headers)
    assert r.status_code == 201, r.text
    delegation_id = r.json()["result"]["delegation_id"]
    r = client.post("/v1/transactions", json=act("key.suspend"), headers=clerk.headers)
    assert r.status_code == 201, r.text
    assert_verifies(r.json(), signer)
    # The entity sees what was signed for it; the clerk sees what it signed.
    for party in (entity, clerk):
        got = client.get(f"/v1/transactions/{r.json()['transaction_id']}", headers=party.headers)
        assert got.status_code == 200
    revoke = signed(entity, "delegation.revoke", {"delegation_id": delegation_id})
    assert client.post("/v1/transactions", json=revoke, headers=entity.headers).status_code == 201
    problem(
        client.post("/v1/transactions", json=act("key.reinstate"), headers=clerk.headers),
        403,
        "no-delegation",
    )


# --- reading: own objects only ----------------------------------------------------------------


def test_others_transactions_answer_404_like_missing_ones(client: TestClient) -> None:
    rng = random.Random(15)
    alice, eve = new_party(client, rng), new_party(client, rng)
    mine = client.get("/v1/transactions", headers=alice.headers).json()["items"]
    assert len(mine) == 1
    tx_id = mine[0]["id"]
    for path in (f"/v1/transactions/{tx_id}", f"/v1/transactions/{tx_id}/receipt"):
        theirs = client.get(path, headers=eve.headers)
        missing = client.get(
            path.replace(tx_id, "00000000-0000-4000-8000-000000000000"), headers=eve.headers
        )
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
    assert client.get(f"/v1/keys/{alice.kid}", headers=eve.headers).status_code == 404
    assert all(
        t["signer"] == eve.subject
        for t in client.get("/v1/transactions", headers=eve.headers).json()["items"]
    )


def test_listing_pages_newest_first(client: TestClient) -> None:
    alice = new_party(client, random.Random(16))
    for _ in range(4):
        register(client, alice, generate_private_key("EdDSA"))
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/transactions", params=params, headers=alice.headers).json()
        seen += [t["leaf_index"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 5


def test_no_token_is_401(client: TestClient) -> None:
    r = client.post("/v1/transactions", json={})
    problem(r, 401, "unauthenticated")
    assert "Bearer" in r.headers["WWW-Authenticate"]
