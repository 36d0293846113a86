"""The ledger over HTTP, on SQLite and PostgreSQL: every answer checked the way a client would."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.database import make_engine
from api.problems import ABOUT_BLANK, PROBLEM_MEDIA_TYPE, problem_type
from api.routes.ledger import read_snapshot
from api.settings import Settings
from ledger import merkle
from ledger.checkpoint import parse_checkpoint
from ledger.note import NoteSigner, NoteVerifier, verify_note
from tests.db.conftest import ORIGIN, append_leaves
from tests.idp import verifier

# Batches that end on a power of two, just past one, and in between; one leaf is empty.
BATCHES = ([b"", b"leaf-1", b"leaf-2"], [b"leaf-3"], [f"leaf-{i}".encode() for i in range(4, 13)])
LEAVES = [leaf for batch in BATCHES for leaf in batch]
SIZE = len(LEAVES)  # 13
PAST_SIZES = (1, 2, 3, 4, 5, 8, 12, SIZE)
TEXT_PLAIN = "text/plain; charset=utf-8"
MAX = 2**63 - 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text_: str) -> bytes:
    return base64.b64decode(text_, validate=True)


def _root(size: int) -> bytes:
    return merkle.root([merkle.leaf_hash(x) for x in LEAVES[:size]])


def _client(engine: Engine, signer: NoteSigner) -> TestClient:
    app = create_app(
        Settings.model_construct(),
        engine=engine,
        checkpoint_signer=signer,
        token_verifier=verifier(),
    )
    return TestClient(app)


@pytest.fixture
def client(engine: Engine, signer: NoteSigner) -> Iterator[TestClient]:
    for batch in BATCHES:
        append_leaves(engine, signer, batch)
    with _client(engine, signer) as c:
        yield c


@pytest.fixture
def empty_client(engine: Engine, signer: NoteSigner) -> Iterator[TestClient]:
    with _client(engine, signer) as c:
        yield c


def _verifiers(client: TestClient) -> list[NoteVerifier]:
    r = client.get("/v1/ledger/keys")
    assert r.status_code == 200
    assert r.headers["content-type"] == TEXT_PLAIN
    assert r.text.endswith("\n")
    return [NoteVerifier.from_vkey(line) for line in r.text.splitlines()]


def test_keys_list_the_checkpoint_vkey(client: TestClient, signer: NoteSigner) -> None:
    r = client.get("/v1/ledger/keys")
    assert r.text == f"{signer.verifier.vkey}\n"


def test_checkpoint_is_the_latest_signed_note_verbatim(client: TestClient, engine: Engine) -> None:
    r = client.get("/v1/ledger/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"] == TEXT_PLAIN
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT note FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1")
        ).scalar_one()
    assert r.content == stored.encode("utf-8")
    checkpoint = parse_checkpoint(verify_note(r.content, _verifiers(client)).text)
    assert (checkpoint.origin, checkpoint.tree_size) == (ORIGIN, SIZE)
    assert checkpoint.root_hash == _root(SIZE)


def test_every_entry_carries_its_rfc6962_leaf_hash(client: TestClient) -> None:
    for index, leaf in enumerate(LEAVES):
        r = client.get(f"/v1/ledger/entries/{index}")
        assert r.status_code == 200
        body = r.json()
        assert body == {"index": index, "leaf": _b64(leaf), "leaf_hash": body["leaf_hash"]}
        assert _unb64(body["leaf_hash"]) == hashlib.sha256(b"\x00" + leaf).digest()


def test_inclusion_proofs_verify_for_every_index_and_past_size(client: TestClient) -> None:
    note = client.get("/v1/ledger/checkpoint").content
    trusted_root = parse_checkpoint(verify_note(note, _verifiers(client)).text).root_hash
    for size in PAST_SIZES:
        root = trusted_root if size == SIZE else _root(size)
        for index in range(size):
            r = client.get(
                "/v1/ledger/proofs/inclusion", params={"index": index, "tree_size": size}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["index"], body["tree_size"]) == (index, size)
            assert _unb64(body["root_hash"]) == root
            merkle.verify_inclusion(
                leaf_hash=_unb64(body["leaf_hash"]),
                leaf_index=index,
                tree_size=size,
                proof=[_unb64(h) for h in body["proof"]],
                root=root,
            )


def test_consistency_proofs_verify_between_past_sizes(client: TestClient) -> None:
    for second in PAST_SIZES:
        for first in (s for s in PAST_SIZES if s <= second):
            r = client.get(
                "/v1/ledger/proofs/consistency", params={"first": first, "second": second}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["first"], body["second"]) == (first, second)
            assert _unb64(body["first_root_hash"]) == _root(first)
            assert _unb64(body["second_root_hash"]) == _root(second)
            merkle.verify_consistency(
                first_size=first,
                second_size=second,
                first_root=_root(first),
                second_root=_root(second),
                proof=[_unb64(h) for h in body["proof"]],
            )


INVALID = problem_type("invalid-request")
OUT_OF_RANGE = problem_type("tree-size-out-of-range")
NOT_FOUND = problem_type("not-found")
INCONSISTENT = problem_type("ledger-inconsistent")
# Part of the contract: a type always comes with the same title.
TITLES = {
    INVALID: "The request is not valid",
    OUT_OF_RANGE: "Tree size or index out of range",
    NOT_FOUND: "Not found",
    INCONSISTENT: "The ledger failed an integrity check",
    problem_type("not-ready"): "Service not ready",
}

L = "/v1/ledger"
INC = f"{L}/proofs/inclusion"
CON = f"{L}/proofs/consistency"

# name: (method, url, status, problem type, the field `errors` must name, or None)
BAD_REQUESTS = {
    "entry-not-integer": ("GET", f"{L}/entries/abc", 400, INVALID, "index"),
    "entry-negative": ("GET", f"{L}/entries/-1", 400, INVALID, "index"),
    "entry-float": ("GET", f"{L}/entries/1.0", 400, INVALID, "index"),
    "entry-exponent": ("GET", f"{L}/entries/1e1", 400, INVALID, "index"),
    "entry-leading-zero": ("GET", f"{L}/entries/01", 400, INVALID, "index"),
    "entry-underscore": ("GET", f"{L}/entries/1_0", 400, INVALID, "index"),
    "entry-plus-sign": ("GET", f"{L}/entries/%2B1", 400, INVALID, "index"),
    "entry-huge": ("GET", f"{L}/entries/{10**30}", 400, INVALID, "index"),
    "entry-int64-overflow": ("GET", f"{L}/entries/{MAX + 1}", 400, INVALID, "index"),
    "entry-at-size": ("GET", f"{L}/entries/{SIZE}", 404, NOT_FOUND, None),
    "entry-int64-max": ("GET", f"{L}/entries/{MAX}", 404, NOT_FOUND, None),
    "inclusion-size-missing": ("GET", f"{INC}?index=0", 400, INVALID, "tree_size"),
    "inclusion-index-missing": ("GET", f"{INC}?tree_size=4", 400, INVALID, "index"),
    "inclusion-size-empty": ("GET", f"{INC}?index=0&tree_size=", 400, INVALID, "tree_size"),
    "inclusion-size-zero": ("GET", f"{INC}?index=0&tree_size=0", 400, INVALID, "tree_size"),
    "inclusion-size-float": ("GET", f"{INC}?index=0&tree_size=4.0", 400, INVALID, "tree_size"),
    "inclusion-index-negative": ("GET", f"{INC}?index=-1&tree_size=4", 400, INVALID, "index"),
    "inclusion-index-equals-size": (
        "GET",
        f"{INC}?index=4&tree_size=4",
        400,
        OUT_OF_RANGE,
        "index",
    ),
    "inclusion-size-beyond-tree": (
        "GET",
        f"{INC}?index=0&tree_size={SIZE + 1}",
        400,
        OUT_OF_RANGE,
        "tree_size",
    ),
    "inclusion-size-int64-max": (
        "GET",
        f"{INC}?index=0&tree_size={MAX}",
        400,
        OUT_OF_RANGE,
        "tree_size",
    ),
    "inclusion-size-huge": ("GET", f"{INC}?index=0&tree_size={10**30}", 400, INVALID, "tree_size"),
    "consistency-first-above-second": (
        "GET",
        f"{CON}?first=5&second=4",
        400,
        OUT_OF_RANGE,
        "first",
    ),
    "consistency-first-zero": ("GET", f"{CON}?first=0&second=4", 400, INVALID, "first"),
    "consistency-first-negative": ("GET", f"{CON}?first=-3&second=4", 400, INVALID, "first"),
    "consistency-second-missing": ("GET", f"{CON}?first=1", 400, INVALID, "second"),
    "consistency-second-beyond-tree": (
        "GET",
        f"{CON}?first=1&second={SIZE + 1}",
        400,
        OUT_OF_RANGE,
        "second",
    ),
    "consistency-second-huge": ("GET", f"{CON}?first=1&second={10**30}", 400, INVALID, "second"),
    "unknown-route": ("GET", f"{L}/nothing-here", 404, ABOUT_BLANK, None),
    "method-not-allowed": ("POST", f"{L}/checkpoint", 405, ABOUT_BLANK, None),
}


def _assert_problem(r: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = r.json()
    assert body["type"] == type_
    assert body["status"] == status
    title = HTTPStatus(status).phrase if type_ == ABOUT_BLANK else TITLES[type_]
    assert body["title"] == title
    assert "Traceback" not in r.text
    return body


@pytest.mark.parametrize(
    ("method", "url", "status", "type_", "field"),
    list(BAD_REQUESTS.values()),
    ids=list(BAD_REQUESTS),
)
def test_bad_requests_answer_problem_details(
    client: TestClient, method: str, url: str, status: int, type_: str, field: str | None
) -> None:
    body = _assert_problem(client.request(method, url), status, type_)
    if field is not None:
        errors = body["errors"]
        assert isinstance(errors, list)
        assert field in [e["field"] for e in errors]
        assert all(set(e) == {"field", "rule", "message"} for e in errors)


EMPTY_LEDGER = {
    "checkpoint": (f"{L}/checkpoint", 404, NOT_FOUND),
    "entry-0": (f"{L}/entries/0", 404, NOT_FOUND),
    "inclusion": (f"{INC}?index=0&tree_size=1", 400, OUT_OF_RANGE),
    "consistency": (f"{CON}?first=1&second=1", 400, OUT_OF_RANGE),
}


@pytest.mark.parametrize(
    ("url", "status", "type_"), list(EMPTY_LEDGER.values()), ids=list(EMPTY_LEDGER)
)
def test_empty_ledger(empty_client: TestClient, url: str, status: int, type_: str) -> None:
    _assert_problem(empty_client.get(url), status, type_)


def test_empty_ledger_still_publishes_its_keys(empty_client: TestClient) -> None:
    assert len(_verifiers(empty_client)) == 1


def test_inconsistent_storage_fails_closed_without_leaking_internals(
    client: TestClient, engine: Engine
) -> None:
    # A stray entry beyond the newest checkpoint: the head no longer agrees with the entries.
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO ledger_entries (idx, leaf, leaf_hash) VALUES (:i, :l, :h)"),
            {"i": SIZE, "l": b"stray", "h": merkle.leaf_hash(b"stray")},
        )
    for url in (
        "/v1/ledger/checkpoint",
        f"/v1/ledger/entries/{SIZE}",
        "/v1/ledger/proofs/inclusion?index=0&tree_size=1",
        "/v1/ledger/proofs/consistency?first=1&second=2",
    ):
        body = _assert_problem(client.get(url), 500, INCONSISTENT)
        assert str(body["instance"]).startswith("urn:uuid:")
        assert "index" not in str(body["detail"]) and "checkpoint has size" not in str(body)


def test_readiness_on_a_migrated_database(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok"}


def _not_ready(engine: Engine, signer: NoteSigner) -> dict[str, Any]:
    with _client(engine, signer) as c:
        assert c.get("/healthz").status_code == 200  # alive, just not ready
        body = _assert_problem(c.get("/readyz"), 503, problem_type("not-ready"))
    assert body["title"] == "Service not ready"
    return body


def test_not_ready_before_migration(db_url: str, signer: NoteSigner) -> None:
    engine = make_engine(db_url)  # not migrated
    try:
        body = _not_ready(engine, signer)
    finally:
        engine.dispose()
    assert body["detail"] == "the database schema is not at the newest migration"


def test_not_ready_when_the_database_is_unreachable(signer: NoteSigner) -> None:
    # Port 1 on the loopback: the connection is refused at once.
    engine = make_engine("postgresql://pishkhan:secret-pw@127.0.0.1:1/pishkhan")
    try:
        body = _not_ready(engine, signer)
    finally:
        engine.dispose()
    assert body["detail"] == "the database is not reachable"
    assert "secret-pw" not in str(body) and "127.0.0.1" not in str(body)


def test_method_not_allowed_names_the_allowed_methods(client: TestClient) -> None:
    r = client.post(f"{L}/checkpoint")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]


def test_each_request_reads_one_read_only_snapshot(engine: Engine) -> None:
    with read_snapshot(engine) as conn:
        if engine.dialect.name == "postgresql":
            # REPEATABLE READ: the head and the entries are read from the same snapshot.
            assert conn.execute(text("SHOW transaction_isolation")).scalar_one() == (
                "repeatable read"
            )
            assert conn.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
        else:
            # SQLite: a deferred BEGIN, whose first read fixes the WAL snapshot.
            assert conn.get_execution_options()["pishkhan_read_only"] is True
            conn.execute(text("SELECT 1"))
            assert conn.in_transaction()
    with engine.connect() as conn:  # the pool hands back connections with defaults restored
        if engine.dialect.name == "postgresql":
            assert conn.execute(text("SHOW transaction_isolation")).scalar_one() == (
                "read committed"
            )
