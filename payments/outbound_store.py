"""Storage of our outbound webhooks: agency endpoints, the events for them, and their deliveries.

Tables outbound_events, webhook_endpoints and webhook_deliveries (payments.schema). The rules
(retry schedule, replay, event bodies) are payments.webhook_schedule; this module only stores
and finds. Every function takes a Connection already inside a transaction and never commits;
none raises IntegrityError in normal use (the caller may run several steps in one database
transaction without savepoints, and on PostgreSQL one failed statement aborts them all): inserts
that may meet an existing row use ON CONFLICT DO NOTHING, the rest select first.

The delivery log column is canonical JSON, oldest entry first:
{"kind":"attempt","at":RFC 3339,"status_code":int|null,"error":str|null,"duration_ms":int} or
{"kind":"replay","at":RFC 3339,"from":state}. encode_log / decode_log round-trip it
exactly.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import NoReturn
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row, Table, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from payments.errors import (
    DeliveryNotFoundError,
    PaymentFieldError,
    WebhookEndpointExistsError,
    WebhookEndpointLimitError,
    WebhookEndpointNotFoundError,
)
from payments.schema import outbound_events, webhook_deliveries, webhook_endpoints
from payments.webhook_schedule import (
    MAX_ID_CHARS,
    Delivery,
    DeliveryAttempt,
    DeliveryReplay,
    DeliveryState,
    LogEntry,
    OutboundEvent,
    encode_event,
    log_json,
    new_delivery,
)
from payments.webhook_signing import MAX_SECRETS, MIN_SECRET_BYTES
from signatures.canonical import JsonValue, canonicalize, parse_json
from signatures.envelope import SubjectKind, parse_subject
from signatures.errors import FieldError, SignaturesError
from signatures.jwk import b64url_encode, parse_b64url
from signatures.registry_schema import lock_subject

MAX_URL_CHARS = 2048
MAX_ENDPOINTS_PER_AGENCY = 5  # active ones; each event is signed and sent once per endpoint
MAX_SECRET_BYTES = 128  # a 32-byte secret is plenty; more is a pasted key file, not a secret
MAX_CLAIM = 50  # deliveries one claim takes
MAX_LIST_LIMIT = 100  # deliveries one page lists
DEFAULT_CLAIM_LEASE_S = 20.0  # 2 × the sender's WEBHOOK_TIMEOUT_S
MAX_CLAIM_LEASE_S = 3600.0
DELIVERY_ID_HEX_CHARS = 24

RULE_HTTPS_REQUIRED = "https_required"
RULE_INVALID_URL = "invalid_url"
RULE_TOO_LONG = "too_long"
URL_POINTER = "/url"

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_OPEN_STATES = (DeliveryState.PENDING.value, DeliveryState.FAILED_RETRYING.value)
_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_ID_CHARS}}}")
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_LOCK_SCOPE = "webhook_endpoints"


@dataclass(frozen=True)
class WebhookEndpoint:
    """One agency's receiving URL and the HMAC secrets it verifies with (newest first).

    Raises ValueError for an id outside [A-Za-z0-9_.:-]{1,128}, an agency that is not an
    `agency:<id>` subject, 1..MAX_SECRETS secrets of MIN_SECRET_BYTES..MAX_SECRET_BYTES not
    given, a URL longer than MAX_URL_CHARS or a naive created_at. The URL's other rules are
    check_endpoint_url's.
    """

    endpoint_id: str
    agency: str
    url: str
    hmac_secrets: tuple[bytes, ...]
    ed25519: bool
    active: bool
    created_at: datetime

    def __post_init__(self) -> None:
        if _ID.fullmatch(self.endpoint_id) is None:
            raise ValueError(f"endpoint_id must match [A-Za-z0-9_.:-]{{1,{MAX_ID_CHARS}}}")
        _require_agency(self.agency)
        if len(self.url) > MAX_URL_CHARS:
            raise ValueError(f"url is longer than MAX_URL_CHARS={MAX_URL_CHARS}")
        object.__setattr__(self, "hmac_secrets", _checked_secrets(self.hmac_secrets))
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")


def check_endpoint_url(url: str, *, allow_loopback_http: bool) -> str:
    """The URL itself when an agency may register it as a webhook endpoint.

    Raises PaymentFieldError at /url with rule too_long (over MAX_URL_CHARS), invalid_url
    (not visible ASCII, no host, a bad port, userinfo or a fragment) or https_required.
    """
    # SSRF: the service POSTs to whatever an agency registers, so the URL must not be a way
    # to reach our own internal addresses or confuse a parser. Plain http is allowed only to a
    # loopback host and only when allow_loopback_http (tests, local development). userinfo is
    # refused because `https://trusted@evil/` reads as trusted to a human; a fragment is never
    # sent and only hides text. This does not stop an https URL whose name resolves to a private
    # address (or is rebound after registration): production also needs egress filtering (a
    # proxy or firewall that refuses private, link-local and metadata ranges). Not built here.
    if len(url) > MAX_URL_CHARS:
        _refuse_url(RULE_TOO_LONG, f"the URL is longer than {MAX_URL_CHARS} characters")
    if _VISIBLE_ASCII.fullmatch(url) is None:
        _refuse_url(RULE_INVALID_URL, "the URL is visible ASCII (punycode, percent-encoding)")
    try:
        parts = urlsplit(url)
        _ = parts.port  # a non-numeric or out-of-range port raises here
    except ValueError:
        _refuse_url(RULE_INVALID_URL, "the URL cannot be parsed")
    if not parts.hostname:
        _refuse_url(RULE_INVALID_URL, "the URL has no host")
    if "@" in parts.netloc:
        _refuse_url(RULE_INVALID_URL, "the URL must not carry a user name or password")
    if "#" in url:
        _refuse_url(RULE_INVALID_URL, "the URL must not have a fragment")
    scheme = parts.scheme.lower()
    loopback = allow_loopback_http and parts.hostname in LOOPBACK_HOSTS
    if scheme != "https" and not (scheme == "http" and loopback):
        _refuse_url(RULE_HTTPS_REQUIRED, "the URL must use https")
    return url


def _refuse_url(rule: str, message: str) -> NoReturn:
    raise PaymentFieldError((FieldError(URL_POINTER, rule, message),))


# --- endpoints -----------------------------------------------------------------------------------


def insert_endpoint(conn: Connection, endpoint: WebhookEndpoint) -> None:
    """Store a new endpoint.

    The URL is checked with check_endpoint_url(allow_loopback_http=True), so the table never
    holds a non-loopback http URL; the caller applies its own, stricter setting first.
    Raises PaymentFieldError for the URL, WebhookEndpointLimitError when the agency already has
    MAX_ENDPOINTS_PER_AGENCY active endpoints (and this one is active), and
    WebhookEndpointExistsError when the id is taken.
    """
    check_endpoint_url(endpoint.url, allow_loopback_http=True)
    # Count under a per-agency lock: two transactions could otherwise both find room.
    lock_subject(conn, _LOCK_SCOPE, endpoint.agency)
    if endpoint.active:
        active = conn.scalar(
            select(func.count()).where(
                webhook_endpoints.c.agency == endpoint.agency, webhook_endpoints.c.active
            )
        )
        if int(active or 0) >= MAX_ENDPOINTS_PER_AGENCY:
            raise WebhookEndpointLimitError(agency=endpoint.agency, limit=MAX_ENDPOINTS_PER_AGENCY)
    values: dict[str, object] = {
        "id": endpoint.endpoint_id,
        "agency": endpoint.agency,
        "url": endpoint.url,
        "hmac_secrets": _encode_secrets(endpoint.hmac_secrets),
        "ed25519": endpoint.ed25519,
        "active": endpoint.active,
        "created_at": endpoint.created_at,
    }
    if not _insert_or_ignore(conn, webhook_endpoints, values):
        raise WebhookEndpointExistsError(endpoint_id=endpoint.endpoint_id)


def get_endpoint(conn: Connection, endpoint_id: str) -> WebhookEndpoint | None:
    row = conn.execute(
        select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
    ).first()
    return None if row is None else _endpoint_from_row(row)


def list_endpoints(conn: Connection, *, agency: str) -> list[WebhookEndpoint]:
    """The agency's endpoints, active or not, oldest first (then by id)."""
    rows = conn.execute(
        select(webhook_endpoints)
        .where(webhook_endpoints.c.agency == agency)
        .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
    )
    return [_endpoint_from_row(row) for row in rows]


def set_endpoint_secrets(
    conn: Connection, endpoint_id: str, *, hmac_secrets: Sequence[bytes]
) -> None:
    """Replace the endpoint's HMAC secrets (rotation: the new one first, the old one after it,
    then later the new one alone).

    Raises WebhookEndpointNotFoundError; ValueError for secrets WebhookEndpoint refuses.
    """
    endpoint = get_endpoint(conn, endpoint_id)
    if endpoint is None:
        raise WebhookEndpointNotFoundError(endpoint_id=endpoint_id)
    checked = replace(endpoint, hmac_secrets=tuple(_checked_secrets(hmac_secrets)))
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(hmac_secrets=_encode_secrets(checked.hmac_secrets))
    )


def deactivate_endpoint(conn: Connection, endpoint_id: str) -> None:
    """Stop creating deliveries for the endpoint (its open ones die by schedule).

    Deactivating an inactive endpoint does nothing. Raises WebhookEndpointNotFoundError.
    """
    result = conn.execute(
        update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(active=False)
    )
    if result.rowcount == 0:
        raise WebhookEndpointNotFoundError(endpoint_id=endpoint_id)


# --- events and deliveries -----------------------------------------------------------------------


def default_delivery_id(event_id: str, endpoint_id: str) -> str:
    """dlv_ + 24 hex digits of SHA-256(event_id NUL endpoint_id): the same pair, the same id."""
    digest = hashlib.sha256(f"{event_id}\0{endpoint_id}".encode()).hexdigest()
    return f"dlv_{digest[:DELIVERY_ID_HEX_CHARS]}"


def enqueue_event(
    conn: Connection,
    event: OutboundEvent,
    *,
    agency: str,
    delivery_id_for: Callable[[str, str], str] | None = None,
) -> list[str]:
    """Store the event and one pending delivery per active endpoint of the agency (due at the
    event's created_at); return the delivery ids, in endpoint order.

    Idempotent on event.event_id: when the event is stored already nothing is written and []
    is returned (even if the agency's endpoints changed since). Raises ValueError for an agency
    that is not an `agency:<id>` subject or a delivery id new_delivery refuses;
    signatures.errors.CanonicalFormError when event.data is outside the canonical profile.
    """
    _require_agency(agency)
    values: dict[str, object] = {
        "id": event.event_id,
        "type": event.type.value,
        "agency": agency,
        "created_at": event.created_at,
        "body": encode_event(event).decode("utf-8"),
    }
    if not _insert_or_ignore(conn, outbound_events, values):
        return []
    make_id = delivery_id_for or default_delivery_id
    deliveries = [
        new_delivery(
            delivery_id=make_id(event.event_id, endpoint.endpoint_id),
            event_id=event.event_id,
            endpoint_id=endpoint.endpoint_id,
            created_at=event.created_at,
        )
        for endpoint in list_endpoints(conn, agency=agency)
        if endpoint.active
    ]
    if deliveries:
        conn.execute(webhook_deliveries.insert(), [_delivery_values(d) for d in deliveries])
    return [d.delivery_id for d in deliveries]


def event_body(conn: Connection, event_id: str) -> bytes | None:
    """The event's body exactly as it is sent (encode_event's bytes), or None."""
    body = conn.scalar(select(outbound_events.c.body).where(outbound_events.c.id == event_id))
    return None if body is None else str(body).encode("utf-8")


def get_delivery(
    conn: Connection, delivery_id: str, *, for_update: bool = False
) -> Delivery | None:
    query = select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _delivery_from_row(row)


def save_delivery(conn: Connection, delivery: Delivery) -> None:
    """Write the delivery's state, next attempt time and log. Raises DeliveryNotFoundError."""
    result = conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery.delivery_id)
        .values(
            state=delivery.state.value,
            next_attempt_at=delivery.next_attempt_at,
            log=encode_log(delivery.log),
        )
    )
    if result.rowcount == 0:
        raise DeliveryNotFoundError(delivery_id=delivery.delivery_id)


def claim_due(
    conn: Connection, *, now: datetime, limit: int, lease_s: float = DEFAULT_CLAIM_LEASE_S
) -> list[Delivery]:
    """Take up to `limit` open deliveries due at `now`, in webhook_schedule.due_deliveries order,
    and lease them: their next_attempt_at becomes now + lease_s, so no other claim takes them
    before then, and a worker that dies holding one gives it back when the lease ends.

    Returns the deliveries as leased. On PostgreSQL the rows are locked FOR UPDATE SKIP LOCKED,
    so concurrent claimers each take other rows without waiting; on SQLite BEGIN IMMEDIATE
    already serialises claimers. Raises ValueError for limit outside 1..MAX_CLAIM, lease_s
    outside (0, MAX_CLAIM_LEASE_S] or a naive now.
    """
    if not 1 <= limit <= MAX_CLAIM:
        raise ValueError(f"limit must be in 1..MAX_CLAIM={MAX_CLAIM}")
    if not 0 < lease_s <= MAX_CLAIM_LEASE_S:
        raise ValueError(f"lease_s must be in (0, MAX_CLAIM_LEASE_S={MAX_CLAIM_LEASE_S}]")
    _require_aware(now, "now")
    query = (
        select(webhook_deliveries)
        .where(
            webhook_deliveries.c.state.in_(_OPEN_STATES),
            webhook_deliveries.c.next_attempt_at <= now,
        )
        .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due = [_delivery_from_row(row) for row in conn.execute(query)]
    if not due:
        return []
    lease_until = now + timedelta(seconds=lease_s)
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id.in_([d.delivery_id for d in due]))
        .values(next_attempt_at=lease_until)
    )
    return [replace(d, next_attempt_at=lease_until) for d in due]


def list_deliveries(
    conn: Connection, *, agency: str, before: tuple[datetime, str] | None = None, limit: int
) -> list[Delivery]:
    """The agency's deliveries, newest first by (created_at, delivery id); `before` is the
    (created_at, delivery_id) of the last one of the previous page.

    Raises ValueError for limit outside 1..MAX_LIST_LIMIT.
    """
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"limit must be in 1..MAX_LIST_LIMIT={MAX_LIST_LIMIT}")
    d = webhook_deliveries.c
    query = (
        select(webhook_deliveries)
        .join(webhook_endpoints, webhook_endpoints.c.id == d.endpoint_id)
        .where(webhook_endpoints.c.agency == agency)
    )
    if before is not None:
        at, delivery_id = before
        query = query.where(or_(d.created_at < at, and_(d.created_at == at, d.id < delivery_id)))
    query = query.order_by(d.created_at.desc(), d.id.desc()).limit(limit)
    return [_delivery_from_row(row) for row in conn.execute(query)]


def delivery_agency(conn: Connection, delivery_id: str) -> str | None:
    """The agency whose endpoint the delivery goes to (for access checks), or None."""
    agency = conn.scalar(
        select(webhook_endpoints.c.agency)
        .join(webhook_deliveries, webhook_deliveries.c.endpoint_id == webhook_endpoints.c.id)
        .where(webhook_deliveries.c.id == delivery_id)
    )
    return None if agency is None else str(agency)


# --- the log column ------------------------------------------------------------------------------


def encode_log(log: Sequence[LogEntry]) -> str:
    """The delivery log as canonical JSON text (the webhook_deliveries.log column), in the
    shape webhook_schedule.log_json gives the API."""
    return canonicalize(log_json(log)).decode("utf-8")


def decode_log(text: str) -> tuple[LogEntry, ...]:
    """The log encode_log wrote. Raises ValueError for anything else (a corrupt column)."""
    try:
        value = parse_json(text.encode("utf-8"))
    except SignaturesError as exc:
        raise ValueError("the delivery log is not canonical JSON") from exc
    if not isinstance(value, list):
        raise ValueError("the delivery log is not a JSON list")
    return tuple(_decode_entry(item) for item in value)


def _decode_entry(item: JsonValue) -> LogEntry:
    if not isinstance(item, dict):
        raise ValueError("a delivery log entry is not an object")
    kind, at = item.get("kind"), _parse_utc(item.get("at"))
    if kind == "replay" and set(item) == {"kind", "at", "from"}:
        return DeliveryReplay(at=at, previous_state=DeliveryState(str(item["from"])))
    if kind == "attempt" and set(item) == {"kind", "at", "status_code", "error", "duration_ms"}:
        status, error, duration = item["status_code"], item["error"], item["duration_ms"]
        if (
            (status is None or (isinstance(status, int) and not isinstance(status, bool)))
            and (error is None or isinstance(error, str))
            and isinstance(duration, int)
            and not isinstance(duration, bool)
        ):
            return DeliveryAttempt(at=at, status_code=status, error=error, duration_ms=duration)
    raise ValueError("a delivery log entry has an unknown shape")


def _parse_utc(value: JsonValue) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a delivery log time is not a string")
    at = datetime.fromisoformat(value)
    _require_aware(at, "a delivery log time")
    return at.astimezone(UTC)


# --- rows ----------------------------------------------------------------------------------------


def _delivery_values(delivery: Delivery) -> dict[str, object]:
    return {
        "id": delivery.delivery_id,
        "event_id": delivery.event_id,
        "endpoint_id": delivery.endpoint_id,
        "created_at": delivery.created_at,
        "state": delivery.state.value,
        "next_attempt_at": delivery.next_attempt_at,
        "log": encode_log(delivery.log),
    }


def _delivery_from_row(row: Row[tuple[object, ...]]) -> Delivery:
    m = row._mapping  # UtcDateTime columns come back aware UTC
    return Delivery(
        delivery_id=str(m["id"]),
        event_id=str(m["event_id"]),
        endpoint_id=str(m["endpoint_id"]),
        created_at=m["created_at"],
        state=DeliveryState(str(m["state"])),
        next_attempt_at=m["next_attempt_at"],
        log=decode_log(str(m["log"])),
    )


def _endpoint_from_row(row: Row[tuple[object, ...]]) -> WebhookEndpoint:
    m = row._mapping
    return WebhookEndpoint(
        endpoint_id=str(m["id"]),
        agency=str(m["agency"]),
        url=str(m["url"]),
        hmac_secrets=_decode_secrets(str(m["hmac_secrets"])),
        ed25519=bool(m["ed25519"]),
        active=bool(m["active"]),
        created_at=m["created_at"],
    )


def _encode_secrets(secrets: Sequence[bytes]) -> str:
    return canonicalize([b64url_encode(secret) for secret in secrets]).decode("ascii")


def _decode_secrets(text: str) -> tuple[bytes, ...]:
    value = parse_json(text.encode("utf-8"))
    if not isinstance(value, list):
        raise ValueError("hmac_secrets is not a JSON list")
    secrets = [parse_b64url(item) if isinstance(item, str) else None for item in value]
    if any(secret is None for secret in secrets):
        raise ValueError("hmac_secrets holds a value that is not base64url")
    return tuple(secret for secret in secrets if secret is not None)


def _insert_or_ignore(conn: Connection, table: Table, values: dict[str, object]) -> bool:
    """Insert one row unless a unique key exists; whether it went in.

    RETURNING tells, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING.
    """
    key = table.c.id
    if conn.dialect.name == "postgresql":
        pg = pg_insert(table).values(values).on_conflict_do_nothing().returning(key)
        return conn.execute(pg).first() is not None
    lite = sqlite_insert(table).values(values).on_conflict_do_nothing().returning(key)
    return conn.execute(lite).first() is not None


def _checked_secrets(secrets: Sequence[bytes]) -> tuple[bytes, ...]:
    if isinstance(secrets, bytes | str):
        # A bare bytes value is a Sequence too: each byte would become a "secret".
        raise ValueError("hmac_secrets is a sequence of secrets, not one secret")
    checked = tuple(secrets)
    if not 1 <= len(checked) <= MAX_SECRETS:
        raise ValueError(f"an endpoint has 1 to MAX_SECRETS={MAX_SECRETS} HMAC secrets")
    for secret in checked:
        if not isinstance(secret, bytes) or not (
            MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES
        ):
            raise ValueError(f"every HMAC secret is {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return checked


def _require_agency(agency: str) -> None:
    try:
        kind = parse_subject(agency).kind
    except SignaturesError:
        kind = None
    if kind is not SubjectKind.AGENCY:
        raise ValueError("agency must be an agency:<id> subject")


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
