"""HTTP request limits: body size, JSON content type, and a per-subject rate limiter.

`install_limits(app)` adds a pure ASGI middleware (it streams; nothing is buffered):
- A body larger than MAX_BODY_BYTES is refused with 413 `body-too-large` (POST /v1/transactions
  alone may carry MAX_TRANSACTION_BODY_BYTES: a signed batch of invoices; the pipeline then holds
  each transaction type to its own envelope limit). A declared
  Content-Length over the limit is refused before the application runs and before any byte is
  read; a chunked (undeclared) body is counted as it streams, and the chunk that passes the limit
  is never handed to the application: reading it raises, and the 413 problem is answered instead.
- POST, PUT and PATCH requests that carry a body must say `Content-Type: application/json`
  (parameters such as `charset=utf-8` allowed); anything else, or no type at all, is 415
  `unsupported-media-type`. Every body we accept is JSON, so a form or a file is a client error.

`RateLimiter` is a token bucket per subject, kept in memory **per worker process**: the state is
soft (losing it only forgives some requests), so with N workers a subject may make up to N times
the limit. A limiter shared between workers (PostgreSQL or Redis) is future work. The limiter is
called after authentication, with the token's subject; it is not middleware because the subject
is only known once the request is authenticated.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import ABOUT_BLANK, Problem, problem_type
from signatures.jws import MAX_PAYLOAD_BYTES

MAX_BODY_BYTES = 64 * 1024
# A signed transaction's body: the envelope (at most signatures.jws.MAX_PAYLOAD_BYTES, a batch of
# invoices) and its JWS (api.transactions.checks.MAX_SIGNATURE_CHARS), with room to spare.
MAX_TRANSACTION_BODY_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024
# The routes allowed a larger body than MAX_BODY_BYTES, by (method, path).
LARGE_BODY_ROUTES: Mapping[tuple[str, str], int] = MappingProxyType(
    {("POST", "/v1/transactions"): MAX_TRANSACTION_BODY_BYTES}
)
MAX_TRACKED_SUBJECTS = 100_000
JSON_MEDIA_TYPE = "application/json"
# Methods whose body we interpret, and so whose body must be JSON.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SECONDS_PER_MINUTE = 60.0
# The smallest Retry-After we send: RFC 9110 §10.2.3 counts in whole seconds, and 0 invites
# an immediate retry that would be refused again.
MIN_RETRY_AFTER_S = 1


def body_too_large_problem(limit: int = MAX_BODY_BYTES) -> Problem:
    """413 `body-too-large`."""
    return Problem(
        413,
        problem_type("body-too-large"),
        "Request body too large",
        f"The request body exceeds {limit} bytes",
    )


def unsupported_media_type_problem() -> Problem:
    """415 `unsupported-media-type`."""
    return Problem(
        415,
        problem_type("unsupported-media-type"),
        "Unsupported media type",
        f"A request body must be {JSON_MEDIA_TYPE}",
    )


def rate_limited_problem(retry_after_s: float) -> Problem:
    """429 `rate-limited` with Retry-After in whole seconds, rounded up, at least 1."""
    seconds = MIN_RETRY_AFTER_S
    if math.isfinite(retry_after_s):
        seconds = max(MIN_RETRY_AFTER_S, math.ceil(retry_after_s))
    return Problem(
        429,
        problem_type("rate-limited"),
        "Too many requests",
        f"Retry after {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def _bad_content_length_problem() -> Problem:
    return Problem(400, ABOUT_BLANK, "Bad Request", "Content-Length is not a valid length")


class BodyTooLargeError(StarletteHTTPException):
    """Raised by the limited `receive` when a streamed body passes MAX_BODY_BYTES.

    An HTTPException so that FastAPI's body reading lets it through unchanged (it turns any other
    exception into a 400); install_limits registers the handler that answers it as a problem.
    """

    def __init__(self, limit: int = MAX_BODY_BYTES) -> None:
        super().__init__(status_code=413, detail="Request body too large")
        self.limit = limit


async def _on_body_too_large(_request: Request, exc: Exception) -> JSONResponse:
    limit = exc.limit if isinstance(exc, BodyTooLargeError) else MAX_BODY_BYTES
    return body_too_large_problem(limit).response()


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a Content-Type header names application/json (parameters ignored)."""
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() == JSON_MEDIA_TYPE


def _declared_length(headers: Headers) -> int | None:
    """The Content-Length, None when absent; raises ValueError when it is not a length."""
    values = headers.getlist("content-length")
    if not values:
        return None
    # Several (even equal) values, or anything but digits, are a malformed request: refuse
    # rather than guess which framing the server used.
    if len(values) != 1 or not values[0].strip().isdigit():
        raise ValueError("invalid Content-Length")
    return int(values[0])


def _has_body(headers: Headers, declared: int | None) -> bool:
    # HTTP/1.1 framing: a body is declared by its length or by chunked transfer coding. (Over
    # HTTP/2 a body may have neither; it is still counted, and FastAPI's strict content type
    # then refuses to read it as JSON.)
    return (declared is not None and declared > 0) or "transfer-encoding" in headers


class LimitsMiddleware:
    """Body size and content-type limits for every HTTP request (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        large_body_routes: Mapping[tuple[str, str], int] = LARGE_BODY_ROUTES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.large_body_routes = large_body_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            declared = _declared_length(headers)
        except ValueError:
            await _bad_content_length_problem().response()(scope, receive, send)
            return
        route = (str(scope.get("method", "")), str(scope.get("path", "")))
        limit = self.large_body_routes.get(route, self.max_body_bytes)
        if declared is not None and declared > limit:
            await body_too_large_problem(limit).response()(scope, receive, send)
            return
        if (
            scope.get("method") in BODY_METHODS
            and _has_body(headers, declared)
            and not is_json_media_type(headers.get("content-type"))
        ):
            await unsupported_media_type_problem().response()(scope, receive, send)
            return
        await self._call_counting(scope, receive, send, limit=limit)

    async def _call_counting(
        self, scope: Scope, receive: Receive, send: Send, *, limit: int
    ) -> None:
        received_bytes = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received_bytes
            message = await receive()
            if message["type"] == "http.request":
                received_bytes += len(message.get("body", b""))
                if received_bytes > limit:
                    raise BodyTooLargeError(limit)  # the chunk is dropped: the app never sees it
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            # Reached here only when no exception handler answered it (e.g. raised outside
            # the routes); once a response has started nothing else can be said.
            if started:
                raise
            await body_too_large_problem(limit).response()(scope, receive, send)


def install_limits(app: FastAPI) -> None:
    """Add the body-size and content-type limits to `app` (413 and 415 problems)."""
    app.add_exception_handler(BodyTooLargeError, _on_body_too_large)
    app.add_middleware(LimitsMiddleware)


# --- Rate limiting --------------------------------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float
    updated_s: float


class RateLimiter:
    """A token bucket per subject: `limit_per_minute` requests in a burst, refilled evenly.

    Memory is bounded: at most `max_subjects` buckets are kept, and the least recently used is
    dropped first. A dropped bucket comes back full, which is what an idle subject's bucket is
    anyway (it refills completely within a minute). Thread-safe. Raises ValueError when
    limit_per_minute or max_subjects is below 1.
    """

    def __init__(
        self,
        limit_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_subjects: int = MAX_TRACKED_SUBJECTS,
    ) -> None:
        if limit_per_minute < 1:
            raise ValueError(f"limit_per_minute must be at least 1, not {limit_per_minute}")
        if max_subjects < 1:
            raise ValueError(f"max_subjects must be at least 1, not {max_subjects}")
        self.capacity = float(limit_per_minute)
        self.refill_per_s = limit_per_minute / SECONDS_PER_MINUTE
        self.max_subjects = max_subjects
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many subjects are tracked now (at most max_subjects)."""
        with self._lock:
            return len(self._buckets)

    def check(self, subject: str) -> float | None:
        """Take a token for `subject`: None when allowed, else seconds until one is available."""
        with self._lock:
            now_s = self._clock()
            bucket = self._buckets.get(subject)
            if bucket is None:
                bucket = _Bucket(tokens=self.capacity, updated_s=now_s)
                self._buckets[subject] = bucket
                self._evict()
            else:
                self._buckets.move_to_end(subject)
                elapsed_s = max(0.0, now_s - bucket.updated_s)  # a clock never runs backwards
                bucket.tokens = min(self.capacity, bucket.tokens + elapsed_s * self.refill_per_s)
                bucket.updated_s = now_s
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / self.refill_per_s

    def _evict(self) -> None:
        while len(self._buckets) > self.max_subjects:
            self._buckets.popitem(last=False)


def enforce_rate_limit(limiter: RateLimiter, subject: str) -> None:
    """Take a token for `subject`; raises Problem (429 `rate-limited`) when none is left."""
    wait_s = limiter.check(subject)
    if wait_s is not None:
        raise rate_limited_problem(wait_s)
