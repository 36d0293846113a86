"""Outbound webhooks in storage (payments.outbound_store) and the delivery worker
(payments.webhook_sender.deliver_due) against a real HTTP receiver on 127.0.0.1, on SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, func, select, text

from payments import outbound_store as store
from payments.errors import (
    DeliveryNotFoundError,
    PaymentFieldError,
    WebhookEndpointExistsError,
    WebhookEndpointLimitError,
    WebhookEndpointNotFoundError,
    WebhookSignatureError,
)
from payments.outbound_store import (
    DEFAULT_CLAIM_LEASE_S,
    MAX_CLAIM,
    MAX_ENDPOINTS_PER_AGENCY,
    MAX_URL_CHARS,
    WebhookEndpoint,
)
from payments.schema import webhook_deliveries
from payments.webhook_schedule import (
    MAX_ATTEMPTS,
    RETRY_DELAYS_S,
    Delivery,
    DeliveryAttempt,
    DeliveryReplay,
    DeliveryState,
    OutboundEvent,
    OutboundEventType,
    delivery_log_json,
    encode_event,
    record_attempt,
    replay,
)
from payments.webhook_sender import (
    CONTENT_TYPE,
    ERROR_ENDPOINT_INACTIVE,
    USER_AGENT,
    deliver_due,
    replay_delivery,
)
from payments.webhook_signing import (
    ED25519_HEADER,
    HMAC_HEADER,
    OutboundSigningKeys,
    ed25519_key_set,
    ed25519_kid,
    verify_ed25519,
    verify_hmac,
)

AGENCY = "agency:water-co"
OTHER_AGENCY = "agency:power-co"
NEW_SECRET = b"whsec_new_0123456789abcdef"
OLD_SECRET = b"whsec_old_fedcba9876543210"
T0 = datetime(2025, 3, 21, 8, 0, tzinfo=UTC)
S = timedelta(seconds=1)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _endpoint(
    endpoint_id: str,
    *,
    url: str = "https://water-co.example/hooks",
    agency: str = AGENCY,
    active: bool = True,
    ed25519: bool = False,
    secrets: tuple[bytes, ...] = (NEW_SECRET,),
) -> WebhookEndpoint:
    return WebhookEndpoint(endpoint_id, agency, url, secrets, ed25519, active, T0)


def _event(event_id: str = "evt_1", at: datetime = T0) -> OutboundEvent:
    return OutboundEvent(
        event_id, OutboundEventType.PAYMENT_SUCCEEDED, at, {"amount_minor": 1_770_000}
    )


def _add_endpoints(engine: Engine, *endpoints: WebhookEndpoint) -> None:
    with engine.begin() as conn:
        for endpoint in endpoints:
            store.insert_endpoint(conn, endpoint)


def _enqueue(engine: Engine, event: OutboundEvent, agency: str = AGENCY) -> list[str]:
    with engine.begin() as conn:
        return store.enqueue_event(conn, event, agency=agency)


def _delivery(engine: Engine, delivery_id: str) -> Delivery:
    with engine.begin() as conn:
        delivery = store.get_delivery(conn, delivery_id)
    assert delivery is not None
    return delivery


def _claim(engine: Engine, at: datetime, limit: int = MAX_CLAIM) -> list[str]:
    with engine.begin() as conn:
        return [d.delivery_id for d in store.claim_due(conn, now=at, limit=limit)]


# --- endpoint URLs (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "loopback_http"),
    [
        ("https://water-co.example/hooks", False),
        ("https://water-co.example:8443/hooks?v=1", False),
        ("HTTPS://Water-Co.Example/", False),
        ("https://xn--mgbh0fb.example/hooks", False),
        ("http://127.0.0.1:8080/hooks", True),
        ("http://[::1]/hooks", True),
        ("http://localhost/hooks", True),
    ],
)
def test_accepted_endpoint_urls(url: str, loopback_http: bool) -> None:
    assert store.check_endpoint_url(url, allow_loopback_http=loopback_http) == url


@pytest.mark.parametrize(
    ("url", "loopback_http", "rule"),
    [
        ("http://water-co.example/hooks", False, "https_required"),
        ("http://water-co.example/hooks", True, "https_required"),
        ("http://127.0.0.1:8080/hooks", False, "https_required"),
        ("http://localhost/hooks", False, "https_required"),
        ("http://10.0.0.1/hooks", True, "https_required"),
        ("http://127.0.0.2/hooks", True, "https_required"),
        ("http://localhost.water-co.example/hooks", True, "https_required"),
        ("ftp://water-co.example/hooks", False, "https_required"),
        ("https://user:pass@water-co.example/hooks", False, "invalid_url"),
        ("https://water-co.example@evil.example/hooks", False, "invalid_url"),
        ("https://water-co.example/hooks#fragment", False, "invalid_url"),
        ("https://water-co.example/#", False, "invalid_url"),
        ("https:///hooks", False, "invalid_url"),
        ("water-co.example/hooks", False, "invalid_url"),
        ("", False, "invalid_url"),
        ("https://water-co.example/my hooks", False, "invalid_url"),
        ("https://water-co.example/\nhooks", False, "invalid_url"),
        ("https://آب.example/hooks", False, "invalid_url"),
        ("https://water-co.example:99999/hooks", False, "invalid_url"),
        ("https://water-co.example:port/hooks", False, "invalid_url"),
        ("https://water-co.example/" + "a" * MAX_URL_CHARS, False, "too_long"),
    ],
)
def test_refused_endpoint_urls_name_their_rule(url: str, loopback_http: bool, rule: str) -> None:
    with pytest.raises(PaymentFieldError) as caught:
        store.check_endpoint_url(url, allow_loopback_http=loopback_http)
    assert [(e.pointer, e.rule) for e in caught.value.errors] == [("/url", rule)]


def test_the_longest_url_is_accepted() -> None:
    url = "https://water-co.example/"
    url += "a" * (MAX_URL_CHARS - len(url))
    assert store.check_endpoint_url(url, allow_loopback_http=False) == url


@pytest.mark.parametrize(
    "change",
    [
        {"endpoint_id": "has space"},
        {"agency": "ir-nid:0012345679"},
        {"agency": "water-co"},
        {"hmac_secrets": ()},
        {"hmac_secrets": (b"short",)},
        {"hmac_secrets": NEW_SECRET},
        {"hmac_secrets": (NEW_SECRET,) * 9},
        {"hmac_secrets": (b"x" * 129,)},
        {"url": "https://water-co.example/" + "a" * MAX_URL_CHARS},
        {"created_at": datetime(2025, 3, 21, 8, 0)},  # naive
    ],
)
def test_endpoint_values_are_checked(change: dict[str, object]) -> None:
    values: dict[str, object] = {
        "endpoint_id": "ep_1",
        "agency": AGENCY,
        "url": "https://water-co.example/hooks",
        "hmac_secrets": (NEW_SECRET,),
        "ed25519": False,
        "active": True,
        "created_at": T0,
    }
    with pytest.raises(ValueError):
        WebhookEndpoint(**{**values, **change})  # type: ignore[arg-type]


# --- endpoints -----------------------------------------------------------------------------------


def test_an_endpoint_round_trips(engine: Engine) -> None:
    endpoint = _endpoint("ep_1", ed25519=True, secrets=(NEW_SECRET, OLD_SECRET))
    _add_endpoints(engine, endpoint)
    with engine.begin() as conn:
        assert store.get_endpoint(conn, "ep_1") == endpoint
        assert store.get_endpoint(conn, "ep_missing") is None
        assert store.list_endpoints(conn, agency=AGENCY) == [endpoint]
        assert store.list_endpoints(conn, agency=OTHER_AGENCY) == []


def test_insert_endpoint_never_stores_plain_http_to_another_host(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(PaymentFieldError) as caught:
        store.insert_endpoint(conn, _endpoint("ep_1", url="http://water-co.example/hooks"))
    assert caught.value.errors[0].rule == "https_required"


def test_an_endpoint_id_is_stored_once_and_the_transaction_survives(engine: Engine) -> None:
    _add_endpoints(engine, _endpoint("ep_1"))
    with engine.begin() as conn:
        with pytest.raises(WebhookEndpointExistsError) as caught:
            store.insert_endpoint(conn, _endpoint("ep_1", url="https://other.example/"))
        assert caught.value.endpoint_id == "ep_1"
        # No failed statement: on PostgreSQL the transaction is still usable.
        stored = store.get_endpoint(conn, "ep_1")
    assert stored is not None
    assert stored.url == "https://water-co.example/hooks"


def test_at_most_five_active_endpoints_per_agency(engine: Engine) -> None:
    _add_endpoints(engine, *[_endpoint(f"ep_{i}") for i in range(MAX_ENDPOINTS_PER_AGENCY)])
    with engine.begin() as conn, pytest.raises(WebhookEndpointLimitError) as caught:
        store.insert_endpoint(conn, _endpoint("ep_extra"))
    assert (caught.value.agency, caught.value.limit) == (AGENCY, MAX_ENDPOINTS_PER_AGENCY)
    # Inactive ones and other agencies' do not count.
    _add_endpoints(
        engine,
        _endpoint("ep_inactive", active=False),
        _endpoint("ep_other", agency=OTHER_AGENCY),
    )
    with engine.begin() as conn:
        store.deactivate_endpoint(conn, "ep_0")
        store.insert_endpoint(conn, _endpoint("ep_extra"))
        active = [e.endpoint_id for e in store.list_endpoints(conn, agency=AGENCY) if e.active]
    assert len(active) == MAX_ENDPOINTS_PER_AGENCY
    assert "ep_0" not in active


def test_secret_rotation_and_deactivation(engine: Engine) -> None:
    _add_endpoints(engine, _endpoint("ep_1", secrets=(OLD_SECRET,)))
    with engine.begin() as conn:
        store.set_endpoint_secrets(conn, "ep_1", hmac_secrets=[NEW_SECRET, OLD_SECRET])
        rotated = store.get_endpoint(conn, "ep_1")
        assert rotated is not None
        assert rotated.hmac_secrets == (NEW_SECRET, OLD_SECRET)
        with pytest.raises(ValueError):
            store.set_endpoint_secrets(conn, "ep_1", hmac_secrets=[b"short"])
        with pytest.raises(WebhookEndpointNotFoundError):
            store.set_endpoint_secrets(conn, "ep_missing", hmac_secrets=[NEW_SECRET])
        store.deactivate_endpoint(conn, "ep_1")
        store.deactivate_endpoint(conn, "ep_1")  # a repeat is harmless
        with pytest.raises(WebhookEndpointNotFoundError):
            store.deactivate_endpoint(conn, "ep_missing")
        after = store.get_endpoint(conn, "ep_1")
    assert after is not None
    assert (after.active, after.hmac_secrets) == (False, (NEW_SECRET, OLD_SECRET))


# --- events and deliveries -----------------------------------------------------------------------


def _delivery_count(engine: Engine) -> int:
    with engine.begin() as conn:
        return int(conn.scalar(select(func.count()).select_from(webhook_deliveries)) or 0)


def test_enqueue_makes_one_pending_delivery_per_active_endpoint(engine: Engine) -> None:
    _add_endpoints(
        engine,
        _endpoint("ep_a"),
        _endpoint("ep_b", ed25519=True),
        _endpoint("ep_off", active=False),
        _endpoint("ep_other", agency=OTHER_AGENCY),
    )
    event = _event()
    ids = _enqueue(engine, event)
    expected = {
        endpoint: "dlv_" + hashlib.sha256(f"evt_1\0{endpoint}".encode()).hexdigest()[:24]
        for endpoint in ("ep_a", "ep_b")
    }
    assert sorted(ids) == sorted(expected.values())
    for endpoint_id, delivery_id in expected.items():
        delivery = _delivery(engine, delivery_id)
        assert delivery == Delivery(
            delivery_id, "evt_1", endpoint_id, T0, DeliveryState.PENDING, T0, ()
        )
    with engine.begin() as conn:
        assert store.event_body(conn, "evt_1") == encode_event(event)
        assert store.event_body(conn, "evt_missing") is None
        assert store.delivery_agency(conn, ids[0]) == AGENCY
        assert store.delivery_agency(conn, "dlv_missing") is None


def test_enqueue_is_idempotent_on_the_event_id(engine: Engine) -> None:
    _add_endpoints(engine, _endpoint("ep_a"))
    assert len(_enqueue(engine, _event())) == 1
    _add_endpoints(engine, _endpoint("ep_b"))
    with engine.begin() as conn:
        assert store.enqueue_event(conn, _event(), agency=AGENCY) == []
        # Same id, other content: still nothing written, and the transaction is usable.
        assert store.enqueue_event(conn, _event(at=T0 + S), agency=AGENCY) == []
        assert store.event_body(conn, "evt_1") == encode_event(_event())
    assert _delivery_count(engine) == 1


def test_enqueue_for_an_agency_without_endpoints_stores_the_event_only(engine: Engine) -> None:
    assert _enqueue(engine, _event()) == []
    with engine.begin() as conn:
        assert store.event_body(conn, "evt_1") == encode_event(_event())
    assert _delivery_count(engine) == 0


def test_enqueue_with_a_custom_delivery_id(engine: Engine) -> None:
    _add_endpoints(engine, _endpoint("ep_a"))
    with engine.begin() as conn:
        ids = store.enqueue_event(
            conn, _event(), agency=AGENCY, delivery_id_for=lambda event, ep: f"d.{event}.{ep}"
        )
    assert ids == ["d.evt_1.ep_a"]


def test_list_deliveries_newest_first_with_a_cursor(engine: Engine) -> None:
    _add_endpoints(engine, _endpoint("ep_a"), _endpoint("ep_other", agency=OTHER_AGENCY))
    made = [_enqueue(engine, _event(f"evt_{i}", T0 + i * S))[0] for i in range(5)]
    _enqueue(engine, _event("evt_other", T0), agency=OTHER_AGENCY)
    pages: list[list[str]] = []
    before: tuple[datetime, str] | None = None
    with engine.begin() as conn:
        while True:
            page = store.list_deliveries(conn, agency=AGENCY, before=before, limit=2)
            if not page:
                break
            pages.append([d.delivery_id for d in page])
            before = (page[-1].created_at, page[-1].delivery_id)
        with pytest.raises(ValueError):
            store.list_deliveries(conn, agency=AGENCY, limit=0)
        with pytest.raises(ValueError):
            store.list_deliveries(conn, agency=AGENCY, limit=store.MAX_LIST_LIMIT + 1)
    assert pages == [made[4:2:-1], made[2:0:-1], made[0:1]]


def test_the_log_round_trips_exactly(engine: Engine) -> None:
    _add_endpoints(engine, _endpoint("ep_a"))
    [delivery_id] = _enqueue(engine, _event())
    delivery = _delivery(engine, delivery_id)
    delivery = record_attempt(delivery, DeliveryAttempt(T0 + 1234 * S / 1000, 500, None, 12))
    delivery = record_attempt(delivery, DeliveryAttempt(T0 + 61 * S, None, "ConnectError: x", 3))
    delivery = replay(delivery, at=T0 + 100 * S)
    delivery = record_attempt(delivery, DeliveryAttempt(T0 + 101 * S, 503, "also an error", 0))
    delivery = record_attempt(delivery, DeliveryAttempt(T0 + 200 * S, 204, None, 7))
    assert delivery.state is DeliveryState.DELIVERED
    with engine.begin() as conn:
        store.save_delivery(conn, delivery)
    again = _delivery(engine, delivery_id)
    assert again == delivery
    assert delivery_log_json(again) == delivery_log_json(delivery)
    assert isinstance(again.log[2], DeliveryReplay)
    assert store.decode_log(store.encode_log(delivery.log)) == delivery.log


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        "[1]",
        '[{"kind":"attempt","at":"2025-03-21T08:00:00Z"}]',
        '[{"at":"2025-03-21T08:00:00","kind":"replay","from":"dead"}]',
        '[{"at":"2025-03-21T08:00:00Z","kind":"replay","from":"lost"}]',
        '[{"at":"2025-03-21T08:00:00Z","duration_ms":true,"error":null,"kind":"attempt",'
        '"status_code":200}]',
        "not json",
    ],
)
def test_a_corrupt_log_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        store.decode_log(text)


def test_save_of_an_unknown_delivery_is_refused(engine: Engine) -> None:
    ghost = Delivery("dlv_ghost", "evt_1", "ep_a", T0, DeliveryState.PENDING, T0)
    with engine.begin() as conn, pytest.raises(DeliveryNotFoundError):
        store.save_delivery(conn, ghost)


# --- claiming ------------------------------------------------------------------------------------


def test_claim_due_respects_next_attempt_at_order_and_limit(engine: Engine) -> None:
    _add_endpoints(engine, _endpoint("ep_a"))
    later = _enqueue(engine, _event("evt_late", T0 + 10 * S))[0]
    first = _enqueue(engine, _event("evt_early", T0))[0]
    assert _claim(engine, T0 - S) == []
    assert _claim(engine, T0 + 20 * S, limit=1) == [first]
    assert _claim(engine, T0 + 20 * S) == [later]


def test_a_claimed_delivery_is_not_claimed_again_before_its_lease_ends(engine: Engine) -> None:
    _add_endpoints(engine, _endpoint("ep_a"))
    [delivery_id] = _enqueue(engine, _event())
    with engine.begin() as conn:
        [claimed] = store.claim_due(conn, now=T0, limit=1)
    lease_end = T0 + timedelta(seconds=DEFAULT_CLAIM_LEASE_S)
    assert claimed.next_attempt_at == lease_end
    assert _delivery(engine, delivery_id) == claimed
    assert _claim(engine, T0) == []
    assert _claim(engine, lease_end - S) == []
    # A worker that died holding it gives it back when the lease ends.
    assert _claim(engine, lease_end) == [delivery_id]


def test_finished_deliveries_are_never_claimed(engine: Engine) -> None:
    _add_endpoints(engine, _endpoint("ep_a"))
    [delivery_id] = _enqueue(engine, _event())
    delivered = record_attempt(_delivery(engine, delivery_id), DeliveryAttempt(T0, 200, None, 1))
    with engine.begin() as conn:
        store.save_delivery(conn, delivered)
    assert _claim(engine, T0 + timedelta(days=30)) == []


def test_claim_due_limits(engine: Engine) -> None:
    with engine.begin() as conn:
        for kwargs in ({"limit": 0}, {"limit": MAX_CLAIM + 1}, {"limit": 1, "lease_s": 0}):
            with pytest.raises(ValueError):
                store.claim_due(conn, now=T0, **kwargs)
        with pytest.raises(ValueError):
            store.claim_due(conn, now=datetime(2025, 3, 21), limit=1)  # naive


def _many_deliveries(engine: Engine, count: int) -> set[str]:
    _add_endpoints(engine, _endpoint("ep_a"))
    ids: set[str] = set()
    for i in range(count):
        ids.update(_enqueue(engine, _event(f"evt_{i}", T0 + i * S)))
    return ids


def test_two_open_transactions_never_claim_the_same_delivery(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers")
    ids = _many_deliveries(engine, 6)
    now = T0 + timedelta(hours=1)
    with engine.connect() as first, engine.connect() as second:
        first_tx = first.begin()
        mine = {d.delivery_id for d in store.claim_due(first, now=now, limit=3)}
        second_tx = second.begin()  # while the first still holds its row locks
        # Waiting for the first's locks would hang this one thread: fail fast instead.
        second.execute(text("SET LOCAL lock_timeout = '5s'"))
        theirs = {d.delivery_id for d in store.claim_due(second, now=now, limit=MAX_CLAIM)}
        first_tx.commit()
        second_tx.commit()
    assert len(mine) == 3
    assert mine.isdisjoint(theirs)
    assert mine | theirs == ids


def test_concurrent_claimers_take_each_delivery_once(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers")
    ids = _many_deliveries(engine, 40)
    now = T0 + timedelta(hours=1)
    taken: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(len(taken))

    def claimer(mine: list[str]) -> None:
        start.wait()
        while batch := _claim(engine, now, limit=3):
            mine.extend(batch)

    threads = [threading.Thread(target=claimer, args=(mine,)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [delivery_id for mine in taken for delivery_id in mine]
    assert len(every) == len(set(every)), "no delivery was claimed twice"
    assert set(every) == ids


# --- the worker against a real receiver ----------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    hmac: str  # "ok" or the WebhookSignatureError rule
    ed25519: str | None  # None when the header is absent


@dataclass
class Receiver:
    """An agency's endpoint: verifies both signatures with its own secrets and keys, then
    answers the next scripted status (200 when the script is empty; 401 on a bad signature)."""

    clock: Clock
    secrets: list[bytes] = field(default_factory=lambda: [OLD_SECRET])
    public_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        now_s = int(self.clock().timestamp())
        hmac_result = _check(
            lambda: verify_hmac(body, headers.get(HMAC_HEADER), secrets=self.secrets, now_s=now_s)
        )
        ed_header = headers.get(ED25519_HEADER)
        ed_result = None
        if ed_header is not None:
            ed_result = _check(
                lambda: verify_ed25519(body, ed_header, public_keys=self.public_keys, now_s=now_s)
            )
        self.received.append(Received(path, headers, body, hmac_result, ed_result))
        if hmac_result != "ok" or ed_result not in (None, "ok"):
            return 401
        return self.statuses.pop(0) if self.statuses else 200


def _check(verify: object) -> str:
    try:
        verify()  # type: ignore[operator]
    except WebhookSignatureError as exc:
        return exc.rule
    return "ok"


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def receiver(clock: Clock) -> Iterator[Receiver]:
    state = Receiver(clock)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = state.handle(self.path, dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as http:
        yield http


def test_a_500_is_retried_after_60_s_and_then_delivered_with_both_signatures(
    engine: Engine, receiver: Receiver, clock: Clock, client: httpx.Client
) -> None:
    service_key = Ed25519PrivateKey.generate()
    kid = ed25519_kid(service_key.public_key())
    receiver.public_keys = ed25519_key_set([service_key.public_key()])
    receiver.statuses = [500, 200]
    endpoint = _endpoint(
        "ep_a", url=receiver.url + "/hooks", ed25519=True, secrets=(NEW_SECRET, OLD_SECRET)
    )
    _add_endpoints(engine, endpoint)
    event = _event()
    [delivery_id] = _enqueue(engine, event)

    def keys_for(ep: WebhookEndpoint) -> OutboundSigningKeys:
        return OutboundSigningKeys(ep.hmac_secrets, service_key, kid)

    def run() -> int:
        return deliver_due(engine=engine, client=client, keys_for=keys_for, now=clock)

    assert run() == 1
    failed = _delivery(engine, delivery_id)
    assert failed.state is DeliveryState.FAILED_RETRYING
    assert failed.next_attempt_at == T0 + RETRY_DELAYS_S[0] * S
    assert [(a.at, a.status_code) for a in failed.log] == [(T0, 500)]  # type: ignore[union-attr]

    clock.at = T0 + 59 * S
    assert run() == 0, "not due yet"
    clock.at = T0 + 61 * S
    assert run() == 1
    done = _delivery(engine, delivery_id)
    assert done.state is DeliveryState.DELIVERED
    assert done.next_attempt_at is None
    assert [a.status_code for a in done.log] == [500, 200]  # type: ignore[union-attr]

    assert len(receiver.received) == 2
    for request in receiver.received:
        assert (request.hmac, request.ed25519) == ("ok", "ok")
        assert request.path == "/hooks"
        assert request.body == encode_event(event)
        assert request.headers["Content-Type"] == CONTENT_TYPE
        assert request.headers["User-Agent"] == USER_AGENT
        assert request.headers[HMAC_HEADER].count("v1=") == 2  # both secrets while rotating


def test_hmac_only_when_the_endpoint_did_not_ask_or_no_key_is_given(
    engine: Engine, receiver: Receiver, clock: Clock, client: httpx.Client
) -> None:
    _add_endpoints(
        engine,
        _endpoint("ep_plain", url=receiver.url + "/plain", secrets=(OLD_SECRET,)),
        _endpoint("ep_ed", url=receiver.url + "/ed", ed25519=True, secrets=(OLD_SECRET,)),
    )
    _enqueue(engine, _event())
    asked: list[str] = []

    def keys_for(ep: WebhookEndpoint) -> OutboundSigningKeys | None:
        asked.append(ep.endpoint_id)
        return None

    assert deliver_due(engine=engine, client=client, keys_for=keys_for, now=clock) == 2
    assert asked == ["ep_ed"]
    assert sorted((r.path, r.hmac, r.ed25519) for r in receiver.received) == [
        ("/ed", "ok", None),
        ("/plain", "ok", None),
    ]


def test_a_refused_connection_records_an_error_attempt(
    engine: Engine, clock: Clock, client: httpx.Client
) -> None:
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        _add_endpoints(engine, _endpoint("ep_a", url=f"http://127.0.0.1:{port}/hooks"))
        [delivery_id] = _enqueue(engine, _event())
        made = deliver_due(engine=engine, client=client, keys_for=lambda ep: None, now=clock)
    assert made == 1
    delivery = _delivery(engine, delivery_id)
    [attempt] = delivery.log
    assert isinstance(attempt, DeliveryAttempt)
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("ConnectError")
    assert delivery.state is DeliveryState.FAILED_RETRYING
    assert delivery.next_attempt_at == T0 + RETRY_DELAYS_S[0] * S


def test_an_inactive_endpoint_dies_by_schedule_and_a_replay_starts_a_new_one(
    engine: Engine, receiver: Receiver, clock: Clock, client: httpx.Client
) -> None:
    _add_endpoints(engine, _endpoint("ep_a", url=receiver.url + "/hooks"))
    [delivery_id] = _enqueue(engine, _event())
    with engine.begin() as conn:
        store.deactivate_endpoint(conn, "ep_a")
    delivery = _delivery(engine, delivery_id)
    for _ in range(MAX_ATTEMPTS):
        assert delivery.next_attempt_at is not None
        clock.at = delivery.next_attempt_at
        assert deliver_due(engine=engine, client=client, keys_for=lambda ep: None, now=clock) == 1
        delivery = _delivery(engine, delivery_id)
    assert delivery.state is DeliveryState.DEAD
    assert delivery.next_attempt_at is None
    errors = [a.error for a in delivery.log if isinstance(a, DeliveryAttempt)]
    assert errors == [ERROR_ENDPOINT_INACTIVE] * MAX_ATTEMPTS
    assert receiver.received == [], "nothing was sent to an inactive endpoint"

    replay_at = clock.at + timedelta(hours=1)
    with engine.begin() as conn:
        replayed = replay_delivery(conn, delivery_id, at=replay_at)
        with pytest.raises(DeliveryNotFoundError):
            replay_delivery(conn, "dlv_missing", at=replay_at)
    assert (replayed.state, replayed.next_attempt_at) == (DeliveryState.PENDING, replay_at)
    assert replayed.attempts_since_replay == 0
    assert _delivery(engine, delivery_id) == replayed
    clock.at = replay_at
    assert deliver_due(engine=engine, client=client, keys_for=lambda ep: None, now=clock) == 1
    again = _delivery(engine, delivery_id)
    assert again.state is DeliveryState.FAILED_RETRYING, "attempt 1 of a new schedule"
    assert again.next_attempt_at == replay_at + RETRY_DELAYS_S[0] * S


def test_an_attempt_is_not_recorded_over_a_replay_made_while_it_was_sent(
    engine: Engine, receiver: Receiver, clock: Clock, client: httpx.Client
) -> None:
    _add_endpoints(engine, _endpoint("ep_a", url=receiver.url + "/hooks", ed25519=True))
    [delivery_id] = _enqueue(engine, _event())
    replay_at = T0 + 5 * S

    def keys_for(ep: WebhookEndpoint) -> None:
        # Runs between the claim and the send: an operator replays the delivery meanwhile.
        with engine.begin() as conn:
            replay_delivery(conn, delivery_id, at=replay_at)

    assert deliver_due(engine=engine, client=client, keys_for=keys_for, now=clock) == 0
    assert len(receiver.received) == 1
    delivery = _delivery(engine, delivery_id)
    assert (delivery.state, delivery.next_attempt_at) == (DeliveryState.PENDING, replay_at)
    assert [type(entry) for entry in delivery.log] == [DeliveryReplay]


def test_deliver_due_limit(engine: Engine, client: httpx.Client) -> None:
    for limit in (0, MAX_CLAIM + 1):
        with pytest.raises(ValueError):
            deliver_due(
                engine=engine, client=client, keys_for=lambda ep: None, now=Clock(T0), limit=limit
            )
