"""Fetch a log's newest checkpoint and a consistency proof over HTTP, with the standard library.

The only network code in audit/: an auditor's machine needs no HTTP client package. Nothing
fetched is trusted: the checkpoint is verified against trusted keys and the proof checked by
audit.consistency_check. Every request has a timeout and every answer a size limit; only http
and https are spoken (no file:, ftp: or data: URLs, also not through a redirect).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from audit.errors import FetchError
from ledger.errors import NoteFormatError
from ledger.merkle import MAX_PROOF_HASHES
from ledger.note import MAX_NOTE_BYTES, strict_b64decode

CHECKPOINT_PATH = "/v1/ledger/checkpoint"
CONSISTENCY_PATH = "/v1/ledger/proofs/consistency"
FETCH_TIMEOUT_S = 10
MAX_CHECKPOINT_RESPONSE_BYTES = MAX_NOTE_BYTES
# MAX_PROOF_HASHES hashes of 44 base64 characters and the sizes: a few kilobytes.
MAX_PROOF_RESPONSE_BYTES = 64 * 1024
MAX_URL_CHARS = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})
USER_AGENT = "pishkhan-audit"


def _opener() -> urllib.request.OpenerDirector:
    # Only HTTP(S) handlers: the default opener also speaks file: and ftp:, which a redirect
    # from a hostile server could otherwise reach.
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _url(base_url: str, path: str, query: dict[str, int] | None = None) -> str:
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ALLOWED_SCHEMES or not parts.netloc:
        raise FetchError(f"{base_url!r} is not an http(s) URL", url=base_url, reason="scheme")
    url = base_url.rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    if len(url) > MAX_URL_CHARS:
        raise FetchError(f"URL longer than {MAX_URL_CHARS} characters", url=url, reason="scheme")
    return url


def get(url: str, *, accept: str, max_bytes: int, timeout_s: float = FETCH_TIMEOUT_S) -> bytes:
    """GET url and return the body of a 200 answer of at most max_bytes.

    Raises FetchError: reason status (any other HTTP status), network (unreachable, timeout,
    TLS), too_large.
    """
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked by _url)
        url, headers={"Accept": accept, "User-Agent": USER_AGENT}
    )
    try:
        with _opener().open(request, timeout=timeout_s) as response:
            body: bytes = response.read(max_bytes + 1)
            status = response.status
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url} answered HTTP {exc.code}", url=url, reason="status") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"{url} is unreachable: {reason}", url=url, reason="network") from None
    if status != 200:
        raise FetchError(f"{url} answered HTTP {status}", url=url, reason="status")
    if len(body) > max_bytes:
        raise FetchError(f"{url} sent more than {max_bytes} bytes", url=url, reason="too_large")
    return body


def fetch_checkpoint(base_url: str, *, timeout_s: float = FETCH_TIMEOUT_S) -> str:
    """The newest signed checkpoint note from base_url + CHECKPOINT_PATH, unverified.

    Raises FetchError (reason scheme, network, status, too_large, or content when it is not
    UTF-8).
    """
    url = _url(base_url, CHECKPOINT_PATH)
    body = get(
        url, accept="text/plain", max_bytes=MAX_CHECKPOINT_RESPONSE_BYTES, timeout_s=timeout_s
    )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        message = f"{url} sent a checkpoint that is not UTF-8"
        raise FetchError(message, url=url, reason="content") from None


def fetch_consistency_proof(
    base_url: str, *, first_size: int, second_size: int, timeout_s: float = FETCH_TIMEOUT_S
) -> list[bytes]:
    """The RFC 9162 consistency proof between two tree sizes, from base_url + CONSISTENCY_PATH.

    The answer must be JSON {"first", "second", "first_root_hash", "second_root_hash", "proof"}
    for exactly the sizes asked, with at most MAX_PROOF_HASHES canonical base64 hashes. The root
    hashes beside the proof are ignored: the signed checkpoints are what is trusted. Raises
    FetchError (reason scheme, network, status, too_large, or content for any other answer).
    """
    query = {"first": first_size, "second": second_size}
    url = _url(base_url, CONSISTENCY_PATH, query)
    body = get(
        url, accept="application/json", max_bytes=MAX_PROOF_RESPONSE_BYTES, timeout_s=timeout_s
    )

    def bad(what: str) -> FetchError:
        return FetchError(f"{url} sent an unusable proof: {what}", url=url, reason="content")

    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        raise bad("not JSON") from None
    if not isinstance(answer, dict):
        raise bad("not a JSON object")
    if answer.get("first") != first_size or answer.get("second") != second_size:
        raise bad("the sizes are not the ones asked for")
    proof = answer.get("proof")
    if not isinstance(proof, list) or len(proof) > MAX_PROOF_HASHES:
        raise bad(f"proof is not an array of at most {MAX_PROOF_HASHES} hashes")
    if not all(isinstance(h, str) for h in proof):
        raise bad("a proof hash is not a string")
    try:
        return [strict_b64decode(h, what="proof hash") for h in proof]
    except NoteFormatError as exc:
        raise bad(str(exc)) from None
