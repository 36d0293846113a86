"""Group-commit batches on SQLite and PostgreSQL, driven through the service's own steps
(prepare each item, then commit them as one batch), which HTTP cannot line up on demand.

- A batch where every handler accepts runs without a SAVEPOINT; one refusal in the middle rolls
  the attempt back and the batch runs again with savepoints, so only the refused item is left out.
- The pre-write checks may use a cached signing key (api.transactions.keycache); the re-check
  under the ledger lock still refuses a key another worker suspended, with the same answer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from api.app import create_app
from api.auth import Principal, Role
from api.settings import Settings
from api.transactions import commit
from api.transactions.checks import Prepared
from api.transactions.service import TransactionService
from ledger.note import NoteSigner
from signatures.client import generate_private_key, public_jwk
from signatures.jws import PrivateKey
from tests.db.conftest import ORIGIN
from tests.db.test_transactions_pipeline import Party, assert_verifies, register, signed, tree_size
from tests.e2e.client import national_id
from tests.idp import bearer, verifier


def _app_client(engine: Engine, signer: NoteSigner) -> TestClient:
    settings = Settings.model_construct(ledger_origin=ORIGIN, rate_limit_per_minute=10_000)
    app = create_app(settings, engine=engine, checkpoint_signer=signer, token_verifier=verifier())
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def worker(engine: Engine, signer: NoteSigner) -> Iterator[TestClient]:
    with _app_client(engine, signer) as c:
        yield c


@pytest.fixture
def party(worker: TestClient) -> tuple[Party, list[PrivateKey]]:
    subject = national_id(random.Random(7))
    p = Party(subject, bearer(subject, "citizen"), generate_private_key("EdDSA"))
    register(worker, p)
    extra = [generate_private_key("EdDSA") for _ in range(3)]
    for key in extra:
        register(worker, p, key)
    return p, extra


def _service(client: TestClient) -> TransactionService:
    service: TransactionService = client.app.state.transactions  # type: ignore[attr-defined]
    return service


def _prepare(service: TransactionService, p: Party, body: dict[str, object]) -> Prepared:
    prepared = service._prepare(
        json.dumps(body).encode(), Principal(p.subject, frozenset({Role.CITIZEN})), None
    )
    assert isinstance(prepared, Prepared)
    return prepared


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_accepted_batch_runs_without_savepoints(
    engine: Engine,
    signer: NoteSigner,
    worker: TestClient,
    party: tuple[Party, list[PrivateKey]],
    statements: list[str],
) -> None:
    p, extra = party
    service = _service(worker)
    items = [
        _prepare(service, p, signed(p, "key.suspend", {"kid": public_jwk(k).kid})) for k in extra
    ]
    before = tree_size(engine)
    statements.clear()
    outcomes = service._commit(lambda: items)
    assert [type(o) for o in outcomes] == [commit.Accepted] * 3
    assert "SAVEPOINT" not in statements
    assert tree_size(engine) == before + 3
    for outcome in outcomes:
        assert isinstance(outcome, commit.Accepted) and outcome.receipt is not None
        assert_verifies(outcome.receipt, signer)


def test_a_refusal_mid_batch_leaves_out_that_item_only(
    engine: Engine,
    signer: NoteSigner,
    worker: TestClient,
    party: tuple[Party, list[PrivateKey]],
    statements: list[str],
) -> None:
    p, extra = party
    service = _service(worker)
    b1, b2 = (public_jwk(k).kid for k in extra[:2])
    # The second suspension of b1 is refused by the handler: b1 is already suspended by the first.
    bodies = [signed(p, "key.suspend", {"kid": kid}) for kid in (b1, b1, b2)]
    items = [_prepare(service, p, body) for body in bodies]
    before = tree_size(engine)
    statements.clear()
    outcomes = service._commit(lambda: items)
    first, refused, third = outcomes
    assert isinstance(first, commit.Accepted) and isinstance(third, commit.Accepted)
    assert isinstance(refused, commit.Refused)
    assert refused.problem.status == 409, refused.problem
    assert "SAVEPOINT" in statements  # the retry
    assert tree_size(engine) == before + 2
    assert (first.leaf_index, third.leaf_index) == (before, before + 1)
    keys = worker.get("/v1/keys", headers=p.headers).json()
    status = {k["kid"]: k["status"] for k in keys}
    assert status[b1] == "suspended" and status[b2] == "suspended"
    events = next(k for k in keys if k["kid"] == b1)["events"]
    assert [e["kind"] for e in events] == ["registered", "suspended"]  # not suspended twice
    assert first.receipt is not None and third.receipt is not None
    assert_verifies(first.receipt, signer)
    assert_verifies(third.receipt, signer)


def test_a_cached_key_suspended_elsewhere_is_refused_under_the_lock(
    engine: Engine, signer: NoteSigner, worker: TestClient, party: tuple[Party, list[PrivateKey]]
) -> None:
    p, extra = party
    b = extra[0]
    first_worker = _service(worker)
    # The first worker signs with b once, so b is in its cache as active.
    warm = _prepare(
        first_worker, p, signed(p, "key.suspend", {"kid": public_jwk(extra[1]).kid}, key=b)
    )
    assert isinstance(first_worker._commit(lambda: [warm])[0], commit.Accepted)
    # A second worker on the same database suspends b.
    with _app_client(engine, signer) as other:
        r = other.post(
            "/v1/transactions",
            json=signed(p, "key.suspend", {"kid": public_jwk(b).kid}),
            headers=p.headers,
        )
        assert r.status_code == 201, r.text
    # The first worker's check before the write still passes on its cached record...
    late = _prepare(
        first_worker, p, signed(p, "key.suspend", {"kid": public_jwk(extra[2]).kid}, key=b)
    )
    before = tree_size(engine)
    (outcome,) = first_worker._commit(lambda: [late])
    # ...and the re-check under the lock refuses it, as the check before the write would have.
    assert isinstance(outcome, commit.Refused)
    assert outcome.problem.type.endswith("/signing-key-not-active")
    assert outcome.problem.extensions == {
        "indication": "INDETERMINATE",
        "sub_indication": "TRY_LATER",
    }
    assert tree_size(engine) == before
    # A fresh submission through HTTP on that worker is refused before the write: a cached
    # record that is not active at the check is read again; this one was dropped at the commit.
    r = worker.post(
        "/v1/transactions",
        json=signed(p, "key.suspend", {"kid": public_jwk(extra[2]).kid}, key=b),
        headers=p.headers,
    )
    assert r.status_code == 403, r.text


def test_a_failed_write_lets_the_checks_of_new_requests_go_ahead(
    engine: Engine,
    worker: TestClient,
    party: tuple[Party, list[PrivateKey]],
) -> None:
    """New requests' checks wait while this worker's batch holds the ledger lock; a batch that
    fails under the lock must not leave them waiting."""
    p, extra = party
    service = _service(worker)
    item = _prepare(service, p, signed(p, "key.suspend", {"kid": public_jwk(extra[0]).kid}))
    taken: list[bool] = []

    def take_then_fail() -> list[Prepared]:
        taken.append(service._lock_free.is_set())
        raise ConnectionError("the database went away under the lock")

    before = tree_size(engine)
    with pytest.raises(ConnectionError):
        service._write(take_then_fail)
    assert taken == [False]  # the lock was held: the checks were told to wait
    assert service._lock_free.is_set()
    assert tree_size(engine) == before
    assert isinstance(service._commit(lambda: [item])[0], commit.Accepted)


def test_each_batch_is_counted_in_the_metrics_with_its_lock_times(
    worker: TestClient, party: tuple[Party, list[PrivateKey]]
) -> None:
    p, extra = party
    service = _service(worker)
    value = worker.app.state.metrics.registry.get_sample_value  # type: ignore[attr-defined]
    before = (value("pishkhan_batch_items_count"), value("pishkhan_batch_items_sum"))
    items = [
        _prepare(service, p, signed(p, "key.suspend", {"kid": public_jwk(k).kid})) for k in extra
    ]
    service._commit(lambda: items)
    assert value("pishkhan_batch_items_count") == before[0] + 1
    assert value("pishkhan_batch_items_sum") == before[1] + 3
    held = value("pishkhan_ledger_lock_held_seconds_count")
    assert held == value("pishkhan_batch_items_count")
    assert value("pishkhan_ledger_lock_held_seconds_sum") > 0
