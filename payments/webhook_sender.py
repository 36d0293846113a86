"""Sending our webhooks to agencies: one HTTP attempt, the delivery worker's pass, and replay.

The schedule is payments.webhook_schedule's, storage is payments.outbound_store's; this module
adds the network. Every delivery carries the `Pishkhan-Signature` HMAC header (the endpoint's
secrets) and, for endpoints that asked for it, `Pishkhan-Signature-Ed25519` with the service's
webhook key, both over the exact body bytes stored when the event was enqueued.

The httpx.Client is the caller's. Build it with trust_env=False, so no proxy or CA bundle comes
from the environment, and behind egress filtering in production (see
outbound_store.check_endpoint_url on SSRF).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import httpx
from sqlalchemy import Connection, Engine

from payments import outbound_store
from payments.errors import DeliveryNotFoundError
from payments.outbound_store import WebhookEndpoint
from payments.webhook_schedule import (
    MAX_ERROR_CHARS,
    MAX_HTTP_STATUS,
    MIN_HTTP_STATUS,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    record_attempt,
    replay,
)
from payments.webhook_signing import (
    HMAC_HEADER,
    OutboundSigningKeys,
    outbound_headers,
    sign_hmac,
)

WEBHOOK_TIMEOUT_S = 10.0  # per connect, write and read (httpx timeouts are per operation)
MAX_RESPONSE_BYTES_READ = 4096  # we never need the body; don't read more
CLAIM_LEASE_S = 2 * WEBHOOK_TIMEOUT_S
MAX_DELIVERIES_PER_PASS = outbound_store.MAX_CLAIM
MAX_ERROR_MESSAGE_CHARS = 200  # of an exception's text kept in the log (≤ MAX_ERROR_CHARS)
USER_AGENT = "Pishkhan-Webhooks/1"
CONTENT_TYPE = "application/json"
ERROR_ENDPOINT_INACTIVE = "endpoint_inactive"
ERROR_EVENT_MISSING = "event_missing"
ERROR_INVALID_STATUS = "invalid_status_code"

assert MAX_ERROR_MESSAGE_CHARS <= MAX_ERROR_CHARS
assert CLAIM_LEASE_S <= outbound_store.MAX_CLAIM_LEASE_S

_OPEN = frozenset({DeliveryState.PENDING, DeliveryState.FAILED_RETRYING})


def attempt_delivery(
    *,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    client: httpx.Client,
    now: Callable[[], datetime],
) -> DeliveryAttempt:
    """POST body to url once, with `headers` (the signatures), Content-Type and User-Agent.

    Redirects are never followed (a 3xx is the answer, and a failure). At most
    MAX_RESPONSE_BYTES_READ of the response body are read. Any exception (timeout, refused
    connection, TLS, a bad URL) becomes an attempt with status None and an error text of the
    exception's class name and a short message (never the URL, which may carry a token).
    Raises only what `now` raises, and ValueError when it gives a naive datetime.
    """
    at = now()
    sent = {**headers, "Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT}
    status_code: int | None = None
    error: str | None = None
    started = time.monotonic()
    try:
        with client.stream(
            "POST",
            url,
            content=body,
            headers=sent,
            follow_redirects=False,  # whatever the client's default
            timeout=WEBHOOK_TIMEOUT_S,
        ) as response:
            status_code = response.status_code
            _read_a_little(response)
    except Exception as exc:  # every failure to get an answer is a failed attempt
        error = _error_text(exc, url=url)
    duration_ms = int((time.monotonic() - started) * 1000)
    if status_code is not None and not MIN_HTTP_STATUS <= status_code <= MAX_HTTP_STATUS:
        status_code, error = None, ERROR_INVALID_STATUS
    return DeliveryAttempt(
        at=at, status_code=status_code, error=error, duration_ms=max(duration_ms, 0)
    )


def _read_a_little(response: httpx.Response) -> None:
    """Read at most about MAX_RESPONSE_BYTES_READ of the body, so that a short answer leaves the
    connection reusable and a long or endless one costs nothing; errors here do not matter."""
    read = 0
    try:
        for chunk in response.iter_raw(MAX_RESPONSE_BYTES_READ):
            read += len(chunk)
            if read >= MAX_RESPONSE_BYTES_READ:
                break
    except (httpx.HTTPError, httpx.StreamError):
        pass  # the status line and headers are the answer; the body is not needed


def _error_text(exc: Exception, *, url: str) -> str:
    message = " ".join(str(exc).split())
    if url:
        message = message.replace(url, "<url>")
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:MAX_ERROR_MESSAGE_CHARS]


@dataclass(frozen=True)
class _Claimed:
    delivery: Delivery
    endpoint: WebhookEndpoint | None
    body: bytes | None


def deliver_due(
    *,
    engine: Engine,
    client: httpx.Client,
    keys_for: Callable[[WebhookEndpoint], OutboundSigningKeys | None],
    now: Callable[[], datetime],
    limit: int = MAX_DELIVERIES_PER_PASS,
) -> int:
    """One pass of the delivery worker: send up to `limit` due deliveries, earliest first, and
    record each attempt. Returns the number of attempts recorded.

    No database transaction is held open across an HTTP call: on SQLite a write transaction
    is exclusive (BEGIN IMMEDIATE), so it would stop every other writer for up to the timeout,
    and on PostgreSQL it would hold a pooled connection and row locks as long. Instead each
    delivery is claimed in one short transaction (outbound_store.claim_due, which leases it:
    next_attempt_at = now + CLAIM_LEASE_S, twice the timeout, so another worker does not take
    it meanwhile and a worker that crashes gives it back when the lease ends), sent, and its
    attempt recorded in a second short transaction. Deliveries are claimed one at a time so
    that every lease covers a single HTTP call. The attempt is recorded only if the delivery
    is as it was claimed (nobody replayed it or recorded another attempt meanwhile); otherwise
    it is dropped, which at-least-once delivery allows. httpx timeouts are per operation, so
    a server that trickles its answer can outlast the lease and get the event twice: receivers
    deduplicate on the event id.

    Signing: the HMAC header with the endpoint's own secrets, always; the Ed25519 header as
    well when endpoint.ed25519 and keys_for(endpoint) gives keys (only their Ed25519 key is
    used: the stored secrets are the truth for HMAC). An inactive endpoint gets an attempt
    with error "endpoint_inactive", so its deliveries die by schedule instead of looping.
    Raises ValueError for limit outside 1..MAX_DELIVERIES_PER_PASS, and ValueError from
    signing with keys whose kid is not their key's.
    """
    if not 1 <= limit <= MAX_DELIVERIES_PER_PASS:
        raise ValueError(f"limit must be in 1..MAX_DELIVERIES_PER_PASS={MAX_DELIVERIES_PER_PASS}")
    recorded = 0
    for _ in range(limit):
        claimed = _claim_one(engine, now=now())
        if claimed is None:
            break
        attempt = _attempt(claimed, client=client, keys_for=keys_for, now=now)
        with engine.begin() as conn:
            recorded += _record(conn, claimed.delivery, attempt)
    return recorded


def _claim_one(engine: Engine, *, now: datetime) -> _Claimed | None:
    with engine.begin() as conn:
        due = outbound_store.claim_due(conn, now=now, limit=1, lease_s=CLAIM_LEASE_S)
        if not due:
            return None
        delivery = due[0]
        return _Claimed(
            delivery=delivery,
            endpoint=outbound_store.get_endpoint(conn, delivery.endpoint_id),
            body=outbound_store.event_body(conn, delivery.event_id),
        )


def _attempt(
    claimed: _Claimed,
    *,
    client: httpx.Client,
    keys_for: Callable[[WebhookEndpoint], OutboundSigningKeys | None],
    now: Callable[[], datetime],
) -> DeliveryAttempt:
    endpoint, body = claimed.endpoint, claimed.body
    if endpoint is None or not endpoint.active:
        return DeliveryAttempt(
            at=now(), status_code=None, error=ERROR_ENDPOINT_INACTIVE, duration_ms=0
        )
    if body is None:  # the foreign key makes this impossible; never send an empty event
        return DeliveryAttempt(at=now(), status_code=None, error=ERROR_EVENT_MISSING, duration_ms=0)
    headers = signature_headers(
        body, endpoint=endpoint, keys_for=keys_for, timestamp_s=int(now().timestamp())
    )
    return attempt_delivery(url=endpoint.url, body=body, headers=headers, client=client, now=now)


def signature_headers(
    body: bytes,
    *,
    endpoint: WebhookEndpoint,
    keys_for: Callable[[WebhookEndpoint], OutboundSigningKeys | None],
    timestamp_s: int,
) -> dict[str, str]:
    """The signature headers for one delivery to `endpoint` (see deliver_due).

    Raises ValueError as webhook_signing.sign_hmac and sign_ed25519 do.
    """
    keys = keys_for(endpoint) if endpoint.ed25519 else None
    if keys is None:
        return {
            HMAC_HEADER: sign_hmac(body, secrets=endpoint.hmac_secrets, timestamp_s=timestamp_s)
        }
    keys = replace(keys, hmac_secrets=endpoint.hmac_secrets)
    return outbound_headers(body, keys=keys, timestamp_s=timestamp_s)


def _record(conn: Connection, claimed: Delivery, attempt: DeliveryAttempt) -> int:
    stored = outbound_store.get_delivery(conn, claimed.delivery_id, for_update=True)
    if (
        stored is None
        or stored.state not in _OPEN
        or stored.log != claimed.log
        or stored.next_attempt_at != claimed.next_attempt_at
    ):
        return 0  # replayed, re-claimed after the lease, or recorded by another worker
    outbound_store.save_delivery(conn, record_attempt(stored, attempt))
    return 1


def replay_delivery(conn: Connection, delivery_id: str, *, at: datetime) -> Delivery:
    """Replay a delivery (any state): pending again, due at `at`, the replay in its log.

    Raises DeliveryNotFoundError, DeliveryReplayLimitError after MAX_REPLAYS, ValueError for a
    naive `at`.
    """
    delivery = outbound_store.get_delivery(conn, delivery_id, for_update=True)
    if delivery is None:
        raise DeliveryNotFoundError(delivery_id=delivery_id)
    replayed = replay(delivery, at=at)
    outbound_store.save_delivery(conn, replayed)
    return replayed
