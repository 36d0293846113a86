"""Security end to end, named after the OWASP API Security Top 10 (2023) risk each test covers.

A real `pishkhan serve --workers 2` per database (one per module and backend, `shared_server`;
the rate-limit test starts its own with a small limit). Subjects are fresh in every test, so the
tests share the server without depending on one another. The last test checks the whole run on
that server: no response was a 5xx, and every error was `application/problem+json` (the
fixture's teardown checks the server's own access log as well).
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from api.dev_issuer import mint_token
from api.limits import MAX_TRANSACTION_BODY_BYTES
from api.settings import Settings
from ledger.leaf import MEMBERS as LEAF_MEMBERS
from signatures.canonical import JsonValue
from signatures.client import generate_private_key
from signatures.jws import PrivateKey
from tests.e2e.client import (
    KEY_SUSPEND,
    TRANSACTIONS,
    ApiClient,
    encode,
    legal_id,
    national_id,
    signed_body,
)

if TYPE_CHECKING:
    from tests.e2e.conftest import Server

PROBLEM_JSON = "application/problem+json"
PROBLEMS = "https://pishkhan.example/problems/"
BODY_LIMIT_BYTES = 64 * 1024
CALCULATE = "/v1/tax/calculate"
SMALL_RATE_LIMIT_PER_MINUTE = 5
WORKERS = 2
NESTING_DEPTH = 5000

_rng = random.Random(2023)  # each module run starts on an empty database: no collisions


@dataclass
class Citizen:
    """A citizen with a registered key A, a registered key B, and one accepted transaction."""

    client: ApiClient
    key: PrivateKey
    b_kid: str
    tx_id: str
    leaf_index: int

    @property
    def subject(self) -> str:
        return self.client.subject


def _citizen(server: Server) -> Citizen:
    client = server.client(national_id(_rng))
    lane, _ = client.lane(b_keys=1)
    response = client.send(lane.signing_key, KEY_SUSPEND, {"kid": lane.b_kids[0]})
    assert response.status_code == 201, response.text
    receipt = response.json()
    return Citizen(
        client, lane.signing_key, lane.b_kids[0], receipt["transaction_id"], receipt["leaf_index"]
    )


def _assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["status"] == status
    if slug is not None:
        assert problem["type"] == PROBLEMS + slug, problem


def _without_instance(response: httpx.Response) -> dict[str, object]:
    body: dict[str, object] = response.json()
    body.pop("instance", None)  # an incident id may differ per response; nothing else may
    return body


@pytest.fixture
def alice(shared_server: Server) -> Citizen:
    return _citizen(shared_server)


@pytest.fixture
def bob(shared_server: Server) -> Citizen:
    return _citizen(shared_server)


# --- API1: broken object level authorization -----------------------------------------------------


def test_api1_bola_another_subjects_transaction_is_404_like_a_random_id(
    alice: Citizen, bob: Citizen
) -> None:
    random_id = str(uuid.uuid4())
    for suffix in ("", "/receipt"):
        theirs = bob.client.get(f"/v1/transactions/{alice.tx_id}{suffix}")
        missing = bob.client.get(f"/v1/transactions/{random_id}{suffix}")
        _assert_problem(theirs, 404, "transaction-not-found")
        assert _without_instance(theirs) == _without_instance(missing)
        own = alice.client.get(f"/v1/transactions/{alice.tx_id}{suffix}")
        assert own.status_code == 200, own.text  # the 404 is about the caller, not the id


def test_api1_bola_another_subjects_key_is_404_like_an_unknown_kid(
    alice: Citizen, bob: Citizen
) -> None:
    alice_kid = alice.b_kid
    unknown = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    theirs = bob.client.get(f"/v1/keys/{alice_kid}")
    _assert_problem(theirs, 404)
    assert _without_instance(theirs) == _without_instance(bob.client.get(f"/v1/keys/{unknown}"))
    assert alice.client.get(f"/v1/keys/{alice_kid}").status_code == 200


def test_api1_bola_signer_other_than_the_caller_is_403(alice: Citizen, bob: Citizen) -> None:
    # Alice's token, an envelope whose signer is Bob, signed with Bob's own registered key.
    body = signed_body(
        bob.key, type_name=KEY_SUSPEND, signer=bob.subject, payload={"kid": bob.b_kid}
    )
    _assert_problem(alice.client.post(body), 403, "signer-not-caller")
    state = bob.client.get(f"/v1/keys/{bob.b_kid}").json()["status"]
    assert state == "suspended"  # as Bob left it: nothing was applied


# --- API2: broken authentication -----------------------------------------------------------------


def _token(key_file: Path, subject: str, *, now: datetime | None = None, ttl_s: int = 3600) -> str:
    settings = Settings(env="dev", dev_issuer_key_file=key_file)
    return mint_token(settings, subject=subject, roles=["citizen"], ttl_s=ttl_s, now=now)


def test_api2_missing_or_bad_token_is_401_with_a_challenge(
    shared_server: Server, alice: Citizen, tmp_path: Path
) -> None:
    http = shared_server.http()
    body = signed_body(
        alice.key, type_name=KEY_SUSPEND, signer=alice.subject, payload={"kid": "x" * 43}
    )
    issuer_key = Path(shared_server.env["PISHKHAN_DEV_ISSUER_KEY_FILE"])
    expired = _token(
        issuer_key, alice.subject, now=datetime.now(UTC) - timedelta(hours=2), ttl_s=60
    )
    other_issuer = _token(tmp_path / "other-issuer.pem", alice.subject)
    header, _, _ = alice.client.token.partition(".")
    unsigned = f"{header}.{base64.urlsafe_b64encode(b'{}').decode().rstrip('=')}."
    cases: dict[str, dict[str, str]] = {
        "none": {},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "other issuer key": {"Authorization": f"Bearer {other_issuer}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "no signature": {"Authorization": f"Bearer {unsigned}"},
    }
    for name, headers in cases.items():
        for response in (
            http.post(
                "/v1/transactions",
                content=body,
                headers={**headers, "Content-Type": "application/json"},
            ),
            http.get(f"/v1/transactions/{alice.tx_id}", headers=headers),
        ):
            _assert_problem(response, 401, "unauthenticated")
            assert response.headers["www-authenticate"].startswith("Bearer"), name
            assert alice.subject.split(":")[1] not in response.text


# --- API3: broken object property level authorization --------------------------------------------


def test_api3_mass_assignment_extra_members_are_400_invalid_body(alice: Citizen) -> None:
    body = signed_body(
        alice.key, type_name="key.reinstate", signer=alice.subject, payload={"kid": alice.b_kid}
    )
    value = json.loads(body)
    extras: list[dict[str, JsonValue]] = [
        {"leaf_index": 0},
        {"status": "accepted"},
        {"leaf_index": 7, "status": "accepted"},
    ]
    for extra in extras:
        response = alice.client.post(encode({**value, **extra}))
        _assert_problem(response, 400, "invalid-body")
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields == {f"/{name}" for name in extra}
    smuggled = {**value, "envelope": {**value["envelope"], "accepted_at": "2020-01-01T00:00:00Z"}}
    _assert_problem(alice.client.post(encode(smuggled)), 400)
    assert alice.client.post(body).status_code == 201  # the clean body was never consumed


def test_api3_excessive_data_exposure_lists_and_ledger_leaves(
    shared_server: Server, alice: Citizen, bob: Citizen
) -> None:
    alice_digits, bob_digits = alice.subject.split(":")[1], bob.subject.split(":")[1]
    listed = alice.client.get("/v1/transactions?limit=100")
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert items and all(item["signer"] == alice.subject for item in items)
    assert alice.tx_id in {item["id"] for item in items}
    assert bob.tx_id not in listed.text and bob_digits not in listed.text
    detail = alice.client.get(f"/v1/transactions/{alice.tx_id}")
    assert bob_digits not in detail.text and bob.tx_id not in detail.text
    keys = alice.client.get("/v1/keys").json()
    assert keys and {k["subject"] for k in keys} == {alice.subject}

    entry = shared_server.http().get(f"/v1/ledger/entries/{alice.leaf_index}")
    assert entry.status_code == 200
    assert set(entry.json()) == {"index", "leaf", "leaf_hash"}
    leaf = base64.b64decode(entry.json()["leaf"]).decode()
    assert alice_digits not in leaf and "ir-nid" not in leaf
    assert set(json.loads(leaf)) == set(LEAF_MEMBERS)  # hashes and ids only, nothing in clear


# --- API4: unrestricted resource consumption -----------------------------------------------------


def test_api4_rate_limit_is_429_with_retry_after(make_server: Callable[..., Server]) -> None:
    server = make_server(PISHKHAN_RATE_LIMIT_PER_MINUTE=str(SMALL_RATE_LIMIT_PER_MINUTE))
    client = server.client(national_id(_rng))
    statuses = []
    limited = None
    for _ in range(WORKERS * SMALL_RATE_LIMIT_PER_MINUTE + 2):  # more than every worker allows
        response = client.get("/v1/keys")
        statuses.append(response.status_code)
        limited = response if response.status_code == 429 else limited
    assert set(statuses) == {200, 429} and statuses[0] == 200, statuses
    assert limited is not None
    _assert_problem(limited, 429, "rate-limited")
    assert int(limited.headers["retry-after"]) >= 1
    other = server.client(national_id(_rng)).get("/v1/keys")
    assert other.status_code == 200  # the limit is per subject


def test_api4_body_over_64_kib_is_413(alice: Citizen) -> None:
    """Every route but POST /v1/transactions refuses a body over 64 KiB, declared or streamed;
    that one route reads up to MAX_TRANSACTION_BODY_BYTES (a signed batch of invoices) and no
    more."""
    big = encode({"type": "tax.return.personal", "payload": {"x": "x" * BODY_LIMIT_BYTES}})
    assert len(big) > BODY_LIMIT_BYTES
    headers = {**alice.client.auth, "Content-Type": "application/json"}
    _assert_problem(
        alice.client.http.post(CALCULATE, content=big, headers=headers), 413, "body-too-large"
    )

    def chunks(body: bytes) -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield body[: len(body) // 2]
        yield body[len(body) // 2 :]

    streamed = alice.client.http.post(CALCULATE, content=chunks(big), headers=headers)
    _assert_problem(streamed, 413, "body-too-large")
    huge = encode({"envelope": {}, "signature": "x" * MAX_TRANSACTION_BODY_BYTES})
    _assert_problem(alice.client.post(huge), 413, "body-too-large")
    streamed = alice.client.http.post(TRANSACTIONS, content=chunks(huge), headers=headers)
    _assert_problem(streamed, 413, "body-too-large")


def test_api4_deeply_nested_json_is_400(alice: Citizen) -> None:
    arrays = b'{"envelope":' + b"[" * NESTING_DEPTH + b"]" * NESTING_DEPTH + b',"signature":"x"}'
    objects = b'{"envelope":' + b'{"a":' * NESTING_DEPTH + b"1" + b"}" * NESTING_DEPTH
    objects += b',"signature":"x"}'
    for body in (arrays, objects):
        assert len(body) < BODY_LIMIT_BYTES
        _assert_problem(alice.client.post(body), 400, "invalid-body")


# --- API5: broken function level authorization ---------------------------------------------------


def _grant(key: PrivateKey, grantor: str, delegate: str) -> bytes:
    not_after = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload: dict[str, JsonValue] = {
        "delegate": delegate,
        "types": [KEY_SUSPEND],
        "not_after": not_after,
    }
    return signed_body(key, type_name="delegation.grant", signer=grantor, payload=payload)


def test_api5_citizen_posting_delegation_grant_is_403_forbidden(
    shared_server: Server, alice: Citizen
) -> None:
    business = shared_server.client(legal_id(_rng), roles=["business"])
    business_key = business.new_key()
    # The citizen's token, an envelope of the company's, signed with the company's key.
    _assert_problem(
        alice.client.post(_grant(business_key, business.subject, alice.subject)), 403, "forbidden"
    )
    granted = business.post(_grant(business_key, business.subject, alice.subject))
    assert granted.status_code == 201, granted.text  # the company itself may: a role, not a bug
    citizen_own = _grant(generate_private_key("EdDSA"), business.subject, alice.subject)
    _assert_problem(alice.client.post(citizen_own), 403, "forbidden")


# --- API8: security misconfiguration -------------------------------------------------------------


def test_api8_text_plain_body_is_415(alice: Citizen) -> None:
    body = signed_body(
        alice.key, type_name="key.reinstate", signer=alice.subject, payload={"kid": alice.b_kid}
    )
    headers = {**alice.client.auth, "Content-Type": "text/plain"}
    response = alice.client.http.post("/v1/transactions", content=body, headers=headers)
    _assert_problem(response, 415, "unsupported-media-type")


def test_api8_every_error_is_problem_json(shared_server: Server, alice: Citizen) -> None:
    http = shared_server.http()
    auth = alice.client.auth
    json_auth = {**auth, "Content-Type": "application/json"}
    responses = [
        http.get("/v1/no-such-route"),
        http.delete("/v1/transactions", headers=auth),
        http.get("/v1/transactions?limit=0", headers=auth),
        http.get("/v1/transactions?cursor=abc", headers=auth),
        http.get("/v1/transactions/not-a-uuid", headers=auth),
        http.get("/v1/ledger/entries/-1"),
        http.get("/v1/ledger/entries/999999999"),
        http.post("/v1/transactions", content=b"{not json", headers=json_auth),
        http.post("/v1/transactions", content=b"[]", headers=json_auth),
        http.post(
            "/v1/transactions", content=b'{"envelope": {}, "signature": "a..b"}', headers=json_auth
        ),
        http.post(
            "/v1/transactions", content=b"{}", headers={**json_auth, "Idempotency-Key": "k" * 300}
        ),
    ]
    for response in responses:
        assert 400 <= response.status_code < 500, (response.request.url, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON, response.request.url
        problem = response.json()
        assert {"type", "title", "status"} <= set(problem)
        assert problem["status"] == response.status_code


def test_api8_no_response_in_the_run_was_a_server_error(shared_server: Server) -> None:
    """Runs last in the module: everything this server answered so far."""
    assert shared_server.seen, "the tests above made requests through recorded clients"
    assert shared_server.server_errors() == []
    not_problems = [
        s for s in shared_server.seen if s.status >= 400 and s.content_type != PROBLEM_JSON
    ]
    assert not_problems == []
