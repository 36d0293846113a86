"""JwksSource from a URL (api/jwks.py): caching, stale keys on failure, unknown-kid refetches.

A local http.server serves the JWKS and counts requests; the clock is injected, so no test
waits or depends on timing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from api.jwks import (
    MAX_JWKS_BYTES,
    STALE_TTL_FACTOR,
    UNKNOWN_KID_REFETCH_INTERVAL_S,
    JwksError,
    JwksSource,
    JwksUnavailableError,
)

TTL_S = 300


def _jwk(algorithm: Any, key: Any, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = algorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid}


OLD = _jwk(ECAlgorithm, ec.generate_private_key(ec.SECP256R1()), "old")
NEW = _jwk(OKPAlgorithm, Ed25519PrivateKey.generate(), "new")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """Serves `document` at /jwks.json (or `status`), redirects /moved there; counts requests."""

    def __init__(self) -> None:
        self.document: bytes = json.dumps({"keys": [OLD]}).encode()
        self.status = 200
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/jwks.json")
                    self.end_headers()
                    return
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(outer.document)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.base + "/jwks.json"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def fetches(self) -> int:
        return self.hits.get("/jwks.json", 0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[JwksServer]:
    s = JwksServer()
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _source(server: JwksServer, clock: Clock) -> JwksSource:
    return JwksSource.from_url(server.url, ttl_s=TTL_S, clock=clock)


def test_nothing_fetched_before_first_use(server: JwksServer, clock: Clock) -> None:
    _source(server, clock)
    assert server.fetches == 0


def test_cached_for_the_ttl_then_refetched(server: JwksServer, clock: Clock) -> None:
    source = _source(server, clock)
    assert source.get_key("old") is not None
    for _ in range(5):
        source.get_key("old")
    assert server.fetches == 1
    clock.now += TTL_S - 1
    source.get_key("old")
    assert server.fetches == 1
    clock.now += 1
    source.get_key("old")
    assert server.fetches == 2


def test_refresh_failure_serves_cached_keys_until_stale_then_fails_closed(
    server: JwksServer, clock: Clock
) -> None:
    source = _source(server, clock)
    assert source.get_key("old") is not None
    server.status = 500
    clock.now += TTL_S
    assert source.get_key("old") is not None  # the refresh failed: the cached key serves
    assert server.fetches == 2
    clock.now += STALE_TTL_FACTOR * TTL_S - TTL_S - 1
    assert source.get_key("old") is not None
    clock.now += 1
    with pytest.raises(JwksUnavailableError):
        source.get_key("old")
    server.status = 200  # the provider is back: so are the keys
    clock.now += 60
    assert source.get_key("old") is not None


def test_never_fetched_fails_closed(server: JwksServer, clock: Clock) -> None:
    server.status = 503
    source = _source(server, clock)
    with pytest.raises(JwksUnavailableError):
        source.get_key("old")
    with pytest.raises(JwksUnavailableError):
        source.get_key("old")
    assert server.fetches == 1  # a failure is not retried on every request


def test_unknown_kid_refetches_at_most_once_per_interval(server: JwksServer, clock: Clock) -> None:
    source = _source(server, clock)
    source.get_key("old")
    assert server.fetches == 1
    for kid in ("a", "b", "c", "d"):
        assert source.get_key(kid) is None
    assert server.fetches == 2  # one refetch for the first unknown kid, none for the rest
    clock.now += UNKNOWN_KID_REFETCH_INTERVAL_S
    assert source.get_key("e") is None
    assert server.fetches == 3


def test_rotated_key_found_by_unknown_kid_refetch(server: JwksServer, clock: Clock) -> None:
    source = _source(server, clock)
    source.get_key("old")
    server.document = json.dumps({"keys": [OLD, NEW]}).encode()
    key = source.get_key("new")
    assert key is not None and key.algorithm_name == "EdDSA"
    assert server.fetches == 2


def test_redirect_not_followed(server: JwksServer, clock: Clock) -> None:
    source = JwksSource.from_url(server.base + "/moved", ttl_s=TTL_S, clock=clock)
    with pytest.raises(JwksUnavailableError):
        source.get_key("old")
    assert server.hits.get("/moved") == 1 and server.fetches == 0


def test_oversized_jwks_refused(server: JwksServer, clock: Clock) -> None:
    document = {"keys": [OLD], "padding": "x" * MAX_JWKS_BYTES}
    server.document = json.dumps(document).encode()
    with pytest.raises(JwksUnavailableError):
        _source(server, clock).get_key("old")


@pytest.mark.parametrize(
    "url",
    ["http://id.example/jwks.json", "ftp://id.example/jwks", "file:///etc/passwd", "https://"],
)
def test_insecure_or_odd_urls_refused(url: str) -> None:
    with pytest.raises(JwksError):
        JwksSource.from_url(url, ttl_s=TTL_S)


@pytest.mark.parametrize("ttl_s", [0, -1, 10**9])
def test_ttl_bounds(ttl_s: int) -> None:
    with pytest.raises(JwksError):
        JwksSource.from_url("https://id.example/jwks.json", ttl_s=ttl_s)


def test_file_read_once(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [OLD]}))
    source = JwksSource.from_file(path)
    path.write_text(json.dumps({"keys": [NEW]}))
    assert source.get_key("old") is not None and source.get_key("new") is None


@pytest.mark.parametrize(
    "content", [b"", b"[]", b'{"keys": {}}', b'{"keys": [], "keys": []}', b"not json"]
)
def test_file_unusable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "jwks.json"
    path.write_bytes(content)
    with pytest.raises(JwksError):
        JwksSource.from_file(path)
    with pytest.raises(JwksError):
        JwksSource.from_file(tmp_path / "missing.json")
