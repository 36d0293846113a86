"""One outbound webhook attempt (payments.webhook_sender.attempt_delivery) over httpx.MockTransport:
what is sent, redirects not followed, timeouts and errors recorded, bounded error text, bounded
reading of the answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from payments.webhook_schedule import MAX_ERROR_CHARS
from payments.webhook_sender import (
    CONTENT_TYPE,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_RESPONSE_BYTES_READ,
    USER_AGENT,
    attempt_delivery,
)
from payments.webhook_signing import HMAC_HEADER

URL = "https://agency.example/hooks/pishkhan"
BODY = b'{"created_at":"2025-03-21T08:00:00Z","data":{},"id":"evt_1","type":"payment.succeeded"}'
SIGNATURE = {HMAC_HEADER: "t=1742544000,v1=" + "ab" * 32}
AT = datetime(2025, 3, 21, 8, 0, tzinfo=UTC)


def _client(
    handler: Callable[[httpx.Request], httpx.Response], *, follow_redirects: bool = False
) -> httpx.Client:
    return httpx.Client(
        transport=httpx.MockTransport(handler), trust_env=False, follow_redirects=follow_redirects
    )


def test_posts_the_exact_body_with_signature_content_type_and_user_agent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    attempt = attempt_delivery(
        url=URL, body=BODY, headers=SIGNATURE, client=_client(handler), now=lambda: AT
    )
    assert len(seen) == 1
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.content == BODY
    assert request.headers[HMAC_HEADER] == SIGNATURE[HMAC_HEADER]
    assert request.headers["content-type"] == CONTENT_TYPE
    assert request.headers["user-agent"] == USER_AGENT
    assert (attempt.at, attempt.status_code, attempt.error) == (AT, 204, None)
    assert attempt.succeeded
    assert attempt.duration_ms >= 0


@pytest.mark.parametrize("status", [500, 404, 101, 199, 301])
def test_a_non_2xx_answer_is_a_failed_attempt_with_its_status(status: int) -> None:
    attempt = attempt_delivery(
        url=URL,
        body=BODY,
        headers=SIGNATURE,
        client=_client(lambda request: httpx.Response(status)),
        now=lambda: AT,
    )
    assert (attempt.status_code, attempt.error, attempt.succeeded) == (status, None, False)


def test_a_redirect_is_not_followed_even_by_a_client_that_follows_redirects() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/hooks/pishkhan":
            return httpx.Response(302, headers={"Location": "https://agency.example/elsewhere"})
        return httpx.Response(200)

    client = _client(handler, follow_redirects=True)
    attempt = attempt_delivery(url=URL, body=BODY, headers=SIGNATURE, client=client, now=lambda: AT)
    assert seen == [URL], "only the registered URL was called"
    assert attempt.status_code == 302
    assert not attempt.succeeded


def test_a_timeout_is_an_error_attempt_without_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    attempt = attempt_delivery(
        url=URL, body=BODY, headers=SIGNATURE, client=_client(handler), now=lambda: AT
    )
    assert attempt.status_code is None
    assert attempt.error == "ReadTimeout: timed out"
    assert not attempt.succeeded
    assert attempt.at == AT


def test_a_refused_connection_is_an_error_attempt() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    attempt = attempt_delivery(
        url=URL, body=BODY, headers=SIGNATURE, client=_client(handler), now=lambda: AT
    )
    assert attempt.status_code is None
    assert attempt.error == "ConnectError: [Errno 111] Connection refused"


def test_any_exception_becomes_an_error_attempt() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("boom")

    attempt = attempt_delivery(
        url=URL, body=BODY, headers=SIGNATURE, client=_client(handler), now=lambda: AT
    )
    assert (attempt.status_code, attempt.error) == (None, "RuntimeError: boom")


def test_error_text_is_bounded_on_one_line_and_never_repeats_the_url() -> None:
    url = "https://agency.example/hooks?token=s3cr3t-t0ken"

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {url}\n" + "x" * 5000, request=request)

    attempt = attempt_delivery(
        url=url, body=BODY, headers=SIGNATURE, client=_client(handler), now=lambda: AT
    )
    assert attempt.error is not None
    assert len(attempt.error) == MAX_ERROR_MESSAGE_CHARS <= MAX_ERROR_CHARS
    assert attempt.error.startswith("ConnectError: cannot reach <url> xxx")
    assert "s3cr3t" not in attempt.error
    assert "\n" not in attempt.error


def test_an_invalid_url_is_an_error_attempt_not_a_crash() -> None:
    client = _client(lambda request: httpx.Response(200))
    attempt = attempt_delivery(
        url="not a url", body=BODY, headers=SIGNATURE, client=client, now=lambda: AT
    )
    assert attempt.status_code is None
    assert attempt.error is not None


def test_only_the_start_of_a_long_answer_is_read() -> None:
    chunk = b"y" * 1024
    pulled: list[int] = []

    def endless() -> Iterator[bytes]:
        for _ in range(10_000):  # 10 MiB if read to the end
            pulled.append(1)
            yield chunk

    client = _client(lambda request: httpx.Response(200, content=endless()))
    attempt = attempt_delivery(url=URL, body=BODY, headers=SIGNATURE, client=client, now=lambda: AT)
    assert attempt.status_code == 200
    assert len(pulled) * len(chunk) <= 2 * MAX_RESPONSE_BYTES_READ


def test_a_naive_clock_is_refused() -> None:
    client = _client(lambda request: httpx.Response(200))
    with pytest.raises(ValueError, match="timezone-aware"):
        attempt_delivery(
            url=URL,
            body=BODY,
            headers=SIGNATURE,
            client=client,
            now=lambda: datetime(2025, 3, 21, 8, 0),  # naive on purpose
        )
