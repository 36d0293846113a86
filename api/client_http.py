"""HTTP for the client commands (`pishkhan keys register`): JSON POSTs with a bearer token.

Standard library only (urllib). Redirects are never followed: urllib would resend the bearer
token to wherever the redirect points. Plain http is refused except to a loopback address, where
it is what a local development server speaks. Every wait and every body has a limit.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from signatures.canonical import JsonValue

HTTP_TIMEOUT_S = 30.0  # per socket operation (connect, each read)
MAX_RESPONSE_BYTES = 4 * 1024 * 1024  # a receipt carries proofs and keys: well under this
MAX_URL_CHARS = 2048
LOOPBACK_HOSTS = frozenset({"localhost"})
JSON_MEDIA_TYPE = "application/json"
CHALLENGES_PATH = "/v1/keys/challenges"
TRANSACTIONS_PATH = "/v1/transactions"


class ClientHttpError(Exception):
    """The server refused, could not be reached, or gave an unusable answer (the message, one
    line, says which, with the problem's title and detail when there is one)."""


@dataclass(frozen=True)
class HttpAnswer:
    """A server's answer: status and parsed JSON body (None when the body is not JSON)."""

    status: int
    body: JsonValue | None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 3xx then surfaces as an answer, and the token goes nowhere else


def is_loopback(host: str) -> bool:
    """Whether host names this machine (localhost or a loopback address)."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str) -> str:
    """url without a trailing slash, when it is https (or http to loopback) with no query.

    Raises ClientHttpError otherwise.
    """
    parts = urllib.parse.urlsplit(url)
    if len(url) > MAX_URL_CHARS or not parts.hostname or parts.query or parts.fragment:
        raise ClientHttpError("the server URL is scheme://host[:port][/path], no query")
    if parts.username is not None or parts.password is not None:
        raise ClientHttpError("the server URL must not hold credentials")
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise ClientHttpError("the server URL must be https (http only to a loopback address)")
    return url.rstrip("/")


def _parse_body(data: bytes) -> JsonValue | None:
    try:
        value: JsonValue = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return value


def post_json(
    url: str,
    body: JsonValue,
    *,
    token: str,
    idempotency_key: str | None = None,
    timeout_s: float = HTTP_TIMEOUT_S,
) -> HttpAnswer:
    """POST body as JSON to url with `Authorization: Bearer token`; any status is an answer.

    Raises ClientHttpError when the server cannot be reached, times out, or answers more than
    MAX_RESPONSE_BYTES.
    """
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": JSON_MEDIA_TYPE,
        "Accept": f"{JSON_MEDIA_TYPE}, application/problem+json",
    }
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    data = json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked by check_server_url)
        check_server_url(url), data=data, headers=headers, method="POST"
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        try:
            response = opener.open(request, timeout=timeout_s)
        except urllib.error.HTTPError as exc:  # a 4xx/5xx (or 3xx) is an answer too
            response = exc
        with response:
            status = response.status
            raw = response.read(MAX_RESPONSE_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise ClientHttpError(f"cannot reach {url}: {reason}") from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise ClientHttpError(f"the answer of {url} is larger than {MAX_RESPONSE_BYTES} bytes")
    return HttpAnswer(status=status if status is not None else 0, body=_parse_body(raw))


def _refusal(step: str, answer: HttpAnswer) -> ClientHttpError:
    body = answer.body if isinstance(answer.body, dict) else {}
    said = ": ".join(str(body[m]) for m in ("title", "detail") if isinstance(body.get(m), str))
    return ClientHttpError(f"{step}: the server answered {answer.status}: {said or 'no details'}")


def request_challenge(server: str, *, token: str) -> tuple[str, str]:
    """(challenge, subject) from POST server/v1/keys/challenges.

    Raises ClientHttpError when the server refuses (not 200/201), cannot be reached, or answers
    without a challenge string and a subject string.
    """
    answer = post_json(check_server_url(server) + CHALLENGES_PATH, {}, token=token)
    if answer.status not in (200, 201):
        raise _refusal("challenge", answer)
    body = answer.body if isinstance(answer.body, dict) else {}
    challenge, subject = body.get("challenge"), body.get("subject")
    if not isinstance(challenge, str) or not isinstance(subject, str):
        raise ClientHttpError("challenge: the answer has no challenge and subject strings")
    return challenge, subject


def submit_transaction(
    server: str, body: JsonValue, *, token: str, idempotency_key: str
) -> JsonValue:
    """The receipt from POST server/v1/transactions (status 201).

    Raises ClientHttpError when the server refuses (any other status) or cannot be reached.
    """
    url = check_server_url(server) + TRANSACTIONS_PATH
    answer = post_json(url, body, token=token, idempotency_key=idempotency_key)
    if answer.status != 201:
        raise _refusal("transaction", answer)
    return answer.body
