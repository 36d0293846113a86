"""What agencies run, in process on SQLite and PostgreSQL: webhook endpoints, deliveries to a real
loopback receiver that verifies both signatures, replay, and the reconciliation report."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.payments.worker import signing_keys_for
from payments.webhook_schedule import decode_event
from payments.webhook_sender import deliver_due
from payments.webhook_signing import (
    ED25519_HEADER,
    HMAC_HEADER,
    ed25519_key_set,
    verify_ed25519,
    verify_hmac,
)
from signatures.jwk import parse_b64url
from tests.db.payments_world import World
from tests.db.test_payments_api import AMOUNT, issue_bill, pay, refund, tx_id
from tests.db.test_transactions_pipeline import new_party, problem
from tests.idp import bearer


class Receiver:
    """A loopback HTTP server that records what it is sent and answers the statuses queued."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.received.append((self.rfile.read(length), dict(self.headers.items())))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _allow_loopback(w: World) -> None:
    settings = w.client.app.state.settings  # type: ignore[attr-defined]
    object.__setattr__(settings, "webhook_allow_loopback_http", True)


def test_payment_events_reach_the_agency_signed_both_ways_and_replay(
    world: World, receiver: Receiver
) -> None:
    w = world
    refused = w.client.post(
        "/v1/webhook-endpoints", json={"url": receiver.url}, headers=w.agency.headers
    )
    assert problem(refused, 400, "invalid-field")["errors"][0]["rule"] == "https_required"  # type: ignore[index]
    _allow_loopback(w)
    r = w.client.post("/v1/webhook-endpoints", json={"url": receiver.url}, headers=w.agency.headers)
    assert r.status_code == 201, r.text
    secret = parse_b64url(r.json()["secret"])
    assert secret is not None
    citizen = new_party(w.client, w.rng)
    payable_id, *_ = issue_bill(w, citizen.subject)
    intent_id = tx_id(pay(w, citizen, payable_id=payable_id))
    key = Ed25519PrivateKey.generate()
    receiver.statuses = [500]
    with httpx.Client(timeout=5, trust_env=False) as http:
        sent = deliver_due(
            engine=w.engine, client=http, keys_for=signing_keys_for(key), now=w.clock
        )
        assert sent == 2  # payment.succeeded and payable.paid; the first answered 500
        w.clock.advance(61)
        assert (
            deliver_due(engine=w.engine, client=http, keys_for=signing_keys_for(key), now=w.clock)
            == 1
        )
    bodies = []
    for body, headers in receiver.received:
        now_s = int(w.clock().timestamp())
        verify_hmac(body, headers[HMAC_HEADER], secrets=[secret], now_s=now_s)
        verify_ed25519(
            body,
            headers[ED25519_HEADER],
            public_keys=ed25519_key_set([key.public_key()]),
            now_s=now_s,
        )
        bodies.append(decode_event(body))
    assert sorted({(e.type.value, e.data["payment"]) for e in bodies}) == [
        ("payable.paid", intent_id),
        ("payment.succeeded", intent_id),
    ]
    log = w.client.get("/v1/webhook-deliveries", headers=w.agency.headers).json()["items"]
    assert sorted(d["state"] for d in log) == ["delivered", "delivered"]
    retried = [d for d in log if len(d["log"]) == 2]
    assert [a.get("status_code") for a in retried[0]["log"]] == [500, 200]
    other = bearer("agency:gas-tehran", "agency")
    delivery_id = log[0]["delivery_id"]
    problem(
        w.client.post(f"/v1/webhook-deliveries/{delivery_id}/replay", headers=other),
        404,
        "delivery-not-found",
    )
    r = w.client.post(f"/v1/webhook-deliveries/{delivery_id}/replay", headers=w.agency.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "pending"


def test_reconciliation_ties_settlements_to_the_book_for_admins_and_each_agency(
    world: World,
) -> None:
    w = world
    citizen = new_party(w.client, w.rng)
    for _ in range(2):
        payable_id, *_ = issue_bill(w, citizen.subject)
        intent_id = tx_id(pay(w, citizen, payable_id=payable_id))
    tx_id(refund(w, intent_id, 100_000, AMOUNT))
    short_id, *_ = issue_bill(w, citizen.subject)
    tx_id(pay(w, citizen, payable_id=short_id, method="pm_sandbox_settlement_short"))
    day = w.clock().date().isoformat()
    admin = bearer("ir-nid:0499370899", "admin")
    r = w.client.get(f"/v1/reconciliation/sandbox/{day}", headers=admin)
    assert r.status_code == 200, r.text
    report = r.json()
    statuses = sorted(line["status"] for line in report["lines"])
    assert statuses.count("matched") == 3, report
    assert len(report["lines"]) == 4
    mismatch = [line for line in report["lines"] if line["status"] != "matched"]
    assert mismatch[0]["status"] == "amount_differs"
    r = w.client.get(f"/v1/reconciliation/sandbox/{day}?format=csv", headers=w.agency.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 4
    assert all("municipality" not in row.get("agency_accounts", "") for row in rows)
    citizen_view = w.client.get(f"/v1/reconciliation/sandbox/{day}", headers=citizen.headers)
    problem(citizen_view, 403, "forbidden")
    problem(
        w.client.get("/v1/reconciliation/sandbox/2026-02-30", headers=admin), 400, "invalid-day"
    )
