"""Request limits: 413 body size (declared and streamed), 415 content type, 429 rate limiting."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.limits import (
    MAX_BODY_BYTES,
    MAX_TRACKED_SUBJECTS,
    RateLimiter,
    enforce_rate_limit,
    install_limits,
    is_json_media_type,
    rate_limited_problem,
)
from api.problems import PROBLEM_MEDIA_TYPE, Problem, install_problem_handlers, problem_type

CHUNK_BYTES = 16 * 1024


class Calls:
    """What the endpoints saw: whether they ran, and how many body bytes reached them."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.streamed_bytes = 0


def _app(calls: Calls, *, limits_first: bool = False) -> FastAPI:
    app = FastAPI()
    if limits_first:  # either installation order must give the same answers
        install_limits(app)
        install_problem_handlers(app)
    else:
        install_problem_handlers(app)
        install_limits(app)

    @app.post("/submit")
    def submit(payload: dict[str, Any]) -> dict[str, int]:
        calls.ran.append("submit")
        return {"keys": len(payload)}

    @app.post("/stream")
    async def stream(request: Request) -> dict[str, int]:
        calls.ran.append("stream")
        async for chunk in request.stream():
            calls.streamed_bytes += len(chunk)
        return {"bytes": calls.streamed_bytes}

    @app.get("/plain")
    def plain() -> dict[str, str]:
        calls.ran.append("plain")
        return {"ok": "yes"}

    return app


def _problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = r.json()
    assert body["type"] == problem_type(slug)
    assert body["status"] == status
    return body


def _json_body(size_bytes: int) -> bytes:
    """A JSON object of exactly `size_bytes` bytes."""
    body = b'{"pad":"' + b"x" * (size_bytes - len(b'{"pad":""}')) + b'"}'
    assert len(body) == size_bytes
    return body


# --- 413 -----------------------------------------------------------------------------------------


def test_413_by_content_length_without_reading_the_body() -> None:
    calls = Calls()
    app = _app(calls)
    sent: list[dict[str, Any]] = []
    received: list[str] = []

    async def receive() -> dict[str, Any]:
        received.append("receive")
        raise AssertionError("the body must not be read")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/submit",
        "raw_path": b"/submit",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(MAX_BODY_BYTES + 1).encode()),
        ],
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 413
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body["type"] == problem_type("body-too-large")
    assert received == [] and calls.ran == []


def test_413_by_content_length_through_a_client() -> None:
    calls = Calls()
    r = TestClient(_app(calls)).post(
        "/submit",
        content=_json_body(MAX_BODY_BYTES + 1),
        headers={"content-type": "application/json"},
    )
    _problem(r, 413, "body-too-large")
    assert calls.ran == []


def test_body_of_exactly_the_limit_is_accepted() -> None:
    calls = Calls()
    r = TestClient(_app(calls)).post(
        "/submit", content=_json_body(MAX_BODY_BYTES), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200, r.text
    assert calls.ran == ["submit"]


def _post_chunked(app: FastAPI, path: str, chunks: int) -> tuple[httpx.Response, int]:
    """POST `chunks` chunks of CHUNK_BYTES, no Content-Length; returns how many were pulled."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(chunks):
            pulled += 1
            yield b"x" * CHUNK_BYTES

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                path, content=body(), headers={"content-type": "application/json"}
            )

    response = asyncio.run(run())
    return response, pulled


@pytest.mark.parametrize("limits_first", [False, True])
def test_413_by_streamed_chunked_body_endpoint_never_ran(limits_first: bool) -> None:
    calls = Calls()
    r, pulled = _post_chunked(_app(calls, limits_first=limits_first), "/submit", chunks=10)
    _problem(r, 413, "body-too-large")
    assert calls.ran == []
    # The chunk that crossed the limit was the last one read: the rest was never pulled.
    assert pulled == MAX_BODY_BYTES // CHUNK_BYTES + 1


def test_a_streaming_endpoint_never_sees_more_than_the_limit() -> None:
    calls = Calls()
    r, _ = _post_chunked(_app(calls), "/stream", chunks=10)
    _problem(r, 413, "body-too-large")
    assert calls.ran == ["stream"]
    assert calls.streamed_bytes <= MAX_BODY_BYTES


def test_chunked_body_within_the_limit_reaches_the_endpoint() -> None:
    calls = Calls()
    r, pulled = _post_chunked(_app(calls), "/stream", chunks=MAX_BODY_BYTES // CHUNK_BYTES)
    assert r.status_code == 200, r.text
    assert r.json() == {"bytes": MAX_BODY_BYTES}
    assert pulled == MAX_BODY_BYTES // CHUNK_BYTES


def test_malformed_content_length_is_400() -> None:
    calls = Calls()
    r = TestClient(_app(calls)).post(
        "/submit",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "2x"},
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert calls.ran == []


# --- 415 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx",
     "application/problem+json", "multipart/form-data; boundary=x"],
)  # fmt: skip
def test_415_missing_or_wrong_content_type(content_type: str | None) -> None:
    calls = Calls()
    headers = {} if content_type is None else {"content-type": content_type}
    r = TestClient(_app(calls)).post("/submit", content=b'{"a": 1}', headers=headers)
    body = _problem(r, 415, "unsupported-media-type")
    assert body["title"] == "Unsupported media type"
    assert calls.ran == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"],
)
def test_json_with_charset_accepted(content_type: str) -> None:
    calls = Calls()
    r = TestClient(_app(calls)).post(
        "/submit", content=b'{"a": 1}', headers={"content-type": content_type}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"keys": 1}


def test_requests_without_a_body_need_no_content_type() -> None:
    calls = Calls()
    assert TestClient(_app(calls)).get("/plain").status_code == 200
    assert calls.ran == ["plain"]


def test_is_json_media_type() -> None:
    assert is_json_media_type("application/json ; charset=utf-8")
    assert not is_json_media_type(None)
    assert not is_json_media_type("")
    assert not is_json_media_type("text/json")


# --- 429 -----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_429_with_retry_after_then_allowed_after_the_clock_advances() -> None:
    clock = FakeClock()
    limiter = RateLimiter(6, clock=clock)  # one token every 10 s
    assert [limiter.check("alice") for _ in range(6)] == [None] * 6
    wait_s = limiter.check("alice")
    assert wait_s is not None and wait_s == pytest.approx(10.0)
    problem = rate_limited_problem(wait_s)
    assert problem.status == 429
    assert problem.type == problem_type("rate-limited")
    assert problem.headers == {"Retry-After": "10"}
    assert limiter.check("bob") is None  # buckets are per subject
    clock.now_s += 4.0
    assert limiter.check("alice") == pytest.approx(6.0)
    clock.now_s += 6.0
    assert limiter.check("alice") is None
    assert limiter.check("alice") is not None


def test_bucket_refills_to_capacity_only() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, clock=clock)
    assert limiter.check("a") is None
    clock.now_s += 3600.0
    assert [limiter.check("a") for _ in range(3)] == [None] * 3
    assert limiter.check("a") is not None


@pytest.mark.parametrize(("wait_s", "header"), [(0.0, "1"), (0.01, "1"), (1.0, "1"), (1.2, "2")])
def test_retry_after_is_whole_seconds_rounded_up(wait_s: float, header: str) -> None:
    assert rate_limited_problem(wait_s).headers == {"Retry-After": header}


def test_429_through_an_app() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    limiter = RateLimiter(1, clock=FakeClock())

    @app.get("/limited")
    def limited() -> dict[str, str]:
        enforce_rate_limit(limiter, "alice")
        return {"ok": "yes"}

    client = TestClient(app)
    assert client.get("/limited").status_code == 200
    r = client.get("/limited")
    _problem(r, 429, "rate-limited")
    assert r.headers["retry-after"] == "60"


def test_bounded_subjects() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock)
    assert limiter.check("first") is None
    assert limiter.check("first") is not None
    for i in range(MAX_TRACKED_SUBJECTS):
        limiter.check(f"subject-{i}")
    assert len(limiter) == MAX_TRACKED_SUBJECTS
    # "first" was the least recently used, so it was dropped: it comes back with a full bucket.
    assert limiter.check("first") is None


def test_eviction_is_least_recently_used() -> None:
    limiter = RateLimiter(1, clock=FakeClock(), max_subjects=3)
    for subject in ("a", "b", "c"):
        assert limiter.check(subject) is None
    assert limiter.check("a") is not None  # a is now the most recently used
    assert limiter.check("d") is None  # evicts b
    assert len(limiter) == 3
    assert limiter.check("a") is not None
    assert limiter.check("b") is None


def test_limiter_is_thread_safe() -> None:
    limiter = RateLimiter(500, clock=FakeClock())
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = [limiter.check("shared") is None for _ in range(100)]
        with lock:
            allowed.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 1000
    assert sum(allowed) == 500


@pytest.mark.parametrize(("limit", "max_subjects"), [(0, 10), (-1, 10), (5, 0)])
def test_limiter_refuses_nonsense_limits(limit: int, max_subjects: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(limit, max_subjects=max_subjects)


def test_problem_is_raisable() -> None:
    limiter = RateLimiter(1, clock=FakeClock())
    enforce_rate_limit(limiter, "x")
    with pytest.raises(Problem) as info:
        enforce_rate_limit(limiter, "x")
    assert info.value.status == 429
