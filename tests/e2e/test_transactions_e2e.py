"""The transaction API end to end: `pishkhan serve --workers 2`, real clients over HTTP.

The load test: CLIENTS threads, each with its own connection, citizen subject and development
token, register a key A and a key B, then alternate key.suspend B / key.reinstate B signed with A
until each has sent TRANSACTIONS_PER_CLIENT transactions. Every one must be accepted, every
receipt must verify offline (in-process and, for a sample, with the `pishkhan audit
verify-receipt` command), and the ledger must hold exactly those transactions at indices 0..N-1.
Then the refusals that protect it: a replayed envelope, a stale one, an idempotent retry and an
Idempotency-Key reused for another body. Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from audit.receipt_check import check_receipt
from signatures.jws import PrivateKey
from signatures.validation import Indication
from tests.e2e.client import KEY_REINSTATE, KEY_SUSPEND, ApiClient, national_id

if TYPE_CHECKING:
    from tests.e2e.conftest import Server

CLIENTS = 8
TRANSACTIONS_PER_CLIENT = 250
CLI_TIMEOUT_S = 120
PROBLEM_JSON = "application/problem+json"
PROBLEMS = "https://pishkhan.example/problems/"
STALE_BY = timedelta(minutes=10)


def _subjects(count: int, seed: int) -> list[str]:
    rng, found = random.Random(seed), dict[str, None]()
    while len(found) < count:
        found[national_id(rng)] = None
    return list(found)


def _assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == PROBLEMS + slug, response.text


def _client_run(server: Server, subject: str) -> tuple[list[httpx.Response], list[bytes]]:
    """One client's whole run: its responses, and the bodies it sent after registering."""
    client = server.client(subject)
    lane, responses = client.lane(b_keys=1)
    bodies = []
    while len(responses) < TRANSACTIONS_PER_CLIENT:
        body = lane.bodies(1)[0]  # signed just before it is sent: created_at is now
        bodies.append(body)
        responses.append(client.post(body))
    return responses, bodies


def _verify_with_cli(receipts: list[bytes], vkeys: str, workdir: Path) -> list[str]:
    """Run `python -m api.cli audit verify-receipt` on each receipt, all at once; the failures."""
    trusted = workdir / "trusted.vkeys"
    trusted.write_text(vkeys)
    procs = []
    for i, receipt in enumerate(receipts):
        path = workdir / f"receipt-{i}.json"
        path.write_bytes(receipt)
        cmd = [sys.executable, "-m", "api.cli", "audit", "verify-receipt", str(path)]
        cmd += ["--trusted-keys", str(trusted)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    failures = []
    for proc in procs:
        output, _ = proc.communicate(timeout=CLI_TIMEOUT_S)
        if proc.returncode != 0:
            failures.append(f"exit {proc.returncode}: {output.decode(errors='replace')[-500:]}")
    return failures


@pytest.mark.slow
def test_concurrent_clients_every_transaction_accepted_provable_and_indexed_once(
    server: Server, tmp_path: Path
) -> None:
    subjects = _subjects(CLIENTS, seed=6962)
    with ThreadPoolExecutor(CLIENTS) as pool:
        runs = list(pool.map(lambda s: _client_run(server, s), subjects))
    responses = [r for run, _ in runs for r in run]
    total = CLIENTS * TRANSACTIONS_PER_CLIENT
    assert len(responses) == total
    refused = [f"{r.status_code} {r.text[:300]}" for r in responses if r.status_code != 201]
    assert not refused, f"{len(refused)} refused, first: {refused[:3]}"

    http = server.http()
    vkeys = http.get("/v1/ledger/keys").text
    now = datetime.now(UTC)
    for response in responses:
        report = check_receipt(response.content, trusted_vkeys=vkeys.splitlines(), at=now)
        assert report.indication is Indication.TOTAL_PASSED, report.detail

    indices = sorted(json.loads(r.content)["leaf_index"] for r in responses)
    assert indices == list(range(total))  # contiguous, and no index twice
    checkpoint = http.get("/v1/ledger/checkpoint").text
    assert checkpoint.split("\n")[:2] == [server.env["PISHKHAN_LEDGER_ORIGIN"], str(total)]

    sample = [run[-1].content for run, _ in runs]  # one receipt per client
    assert _verify_with_cli(sample, vkeys, tmp_path) == []

    for (_, bodies), subject in zip(runs, subjects, strict=True):
        replay = server.client(subject).post(bodies[0])  # accepted long ago, sent again
        _assert_problem(replay, 409, "nonce-replayed")
    assert http.get("/v1/ledger/checkpoint").text == checkpoint  # nothing was appended


def _registered(server: Server, seed: int) -> tuple[ApiClient, PrivateKey, str]:
    """A new citizen with a registered key A and the kid of a registered key B."""
    client = server.client(_subjects(1, seed)[0])
    lane, _ = client.lane(b_keys=1)
    return client, lane.signing_key, lane.b_kids[0]


def test_envelope_ten_minutes_old_is_refused(shared_server: Server) -> None:
    client, key, b_kid = _registered(shared_server, seed=1)
    stale = datetime.now(UTC) - STALE_BY
    response = client.send(key, KEY_SUSPEND, {"kid": b_kid}, created_at=stale)
    _assert_problem(response, 400, "created-at-out-of-window")
    fresh = client.send(key, KEY_SUSPEND, {"kid": b_kid})
    assert fresh.status_code == 201, fresh.text  # the refusal changed nothing


def test_retry_with_same_idempotency_key_returns_the_identical_receipt(
    shared_server: Server,
) -> None:
    client, key, b_kid = _registered(shared_server, seed=2)
    first = client.send(key, KEY_SUSPEND, {"kid": b_kid}, idempotency_key="retry-1")
    assert first.status_code == 201, first.text
    body = first.request.content
    retry = client.post(body, idempotency_key="retry-1")
    assert retry.status_code == 201, retry.text
    assert retry.content == first.content  # byte for byte
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    listed = client.get("/v1/transactions").json()["items"]
    assert [t["type"] for t in listed].count(KEY_SUSPEND) == 1  # applied once
    replay = client.post(body)  # without the key, the same envelope is a replay
    _assert_problem(replay, 409, "nonce-replayed")


def test_same_idempotency_key_with_another_body_is_refused(shared_server: Server) -> None:
    client, key, b_kid = _registered(shared_server, seed=3)
    first = client.send(key, KEY_SUSPEND, {"kid": b_kid}, idempotency_key="reuse-1")
    assert first.status_code == 201, first.text
    other = client.send(key, KEY_REINSTATE, {"kid": b_kid}, idempotency_key="reuse-1")
    _assert_problem(other, 409, "idempotency-key-reused")
    state = client.get(f"/v1/keys/{b_kid}").json()["status"]
    assert state == "suspended"  # the refused reinstatement was not applied
