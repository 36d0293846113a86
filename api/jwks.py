"""The identity provider's JSON Web Key Set: parsed with pyjwt, each key pinned to one algorithm.

A token names its key by `kid`; the key, never the token header, decides the algorithm (RFC 8725
§2.1, §3.1). Only asymmetric keys are kept: a symmetric (`oct`) key in a JWKS would let anyone
who can read the JWKS mint tokens, so it is ignored, as is every key we cannot pin:

* RSA, 2048 to 8192 bits         -> RS256
* EC on P-256                    -> ES256
* OKP on Ed25519                 -> EdDSA

A JWKS comes from a file (read once, at start) or a URL (fetched with urllib, cached). The URL
cache is refreshed every TTL; when a refresh fails the cached keys keep serving until
STALE_TTL_FACTOR × TTL, then the source fails closed (JwksUnavailableError). An unknown `kid`
triggers at most one refetch per UNKNOWN_KID_REFETCH_INTERVAL_S, so tokens with made-up kids
cannot make us hammer the provider. docs/AUTH.md states all of it.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK, PyJWTError

from api.client_http import is_loopback

ALLOWED_ALGS = ("RS256", "ES256", "EdDSA")
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192  # a larger modulus only costs us verification time
MAX_JWKS_BYTES = 64 * 1024
MAX_JWKS_KEYS = 64
MAX_KID_CHARS = 256
FETCH_TIMEOUT_S = 5.0  # the whole fetch, not only one socket operation
FETCH_CHUNK_BYTES = 8 * 1024
# When a refresh fails, cached keys keep serving until this many TTLs after the last success.
STALE_TTL_FACTOR = 10
# A failed fetch is not retried sooner than this (an unreachable provider costs one timeout).
RETRY_AFTER_FAILURE_S = 5.0
UNKNOWN_KID_REFETCH_INTERVAL_S = 30.0
MIN_TTL_S = 1
MAX_TTL_S = 24 * 3600

# Members that only private keys have: a JWKS publishing one is misconfigured; the key is unused.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

logger = logging.getLogger("pishkhan.auth")

Clock = Callable[[], float]
Keys = dict[str, PyJWK]


class JwksError(Exception):
    """A JWKS that cannot be used (bad configuration, unreadable, no usable key); `source` names
    the file or URL."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class JwksUnavailableError(JwksError):
    """No keys to verify with: the provider has not answered, or not for STALE_TTL_FACTOR × TTL."""


# --- parsing -------------------------------------------------------------------------------------


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member")
    return members


def _pinned_alg(jwk: Mapping[str, object]) -> str | None:
    """The one algorithm this key verifies, from kty/crv; None when it is not on the list."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    alg = None
    if kty == "RSA":
        alg = "RS256"
    elif kty == "EC" and crv == "P-256":
        alg = "ES256"
    elif kty == "OKP" and crv == "Ed25519":
        alg = "EdDSA"
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        return None  # a JWK claiming another algorithm than its type gives is not trusted
    return alg


def _skip_reason(jwk: Mapping[str, object]) -> str | None:
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
        return "no usable kid"
    if jwk.get("kty") == "oct":
        return "symmetric key"
    if _PRIVATE_MEMBERS & jwk.keys():
        return "private key material published"
    if jwk.get("use", "sig") != "sig":
        return "not a signature key (use)"
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return "not a verification key (key_ops)"
    if _pinned_alg(jwk) is None:
        return "key type, curve or alg not allowed"
    return None


def _to_pyjwk(jwk: dict[str, object]) -> PyJWK | str:
    """The key, or why it is skipped."""
    reason = _skip_reason(jwk)
    if reason is not None:
        return reason
    try:
        key = PyJWK(jwk, algorithm=_pinned_alg(jwk))
    except PyJWTError:
        return "invalid key material"
    if isinstance(key.key, rsa.RSAPublicKey) and not (
        MIN_RSA_BITS <= key.key.key_size <= MAX_RSA_BITS
    ):
        return f"RSA key outside {MIN_RSA_BITS}..{MAX_RSA_BITS} bits"
    return key


def parse_jwks(data: bytes, *, source: str) -> Keys:
    """The usable keys of a JWKS document, by kid; unusable keys are skipped (and logged).

    A kid held by two keys is ambiguous: both are skipped. Raises JwksError for a document over
    MAX_JWKS_BYTES or MAX_JWKS_KEYS keys, not a JSON object with a `keys` array, or without any
    usable key.
    """
    if len(data) > MAX_JWKS_BYTES:
        raise JwksError(f"larger than {MAX_JWKS_BYTES} bytes", source=source)
    try:
        document = json.loads(data, object_pairs_hook=_refuse_duplicates)
    except (ValueError, RecursionError):
        raise JwksError("not JSON (or a duplicate member)", source=source) from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise JwksError('not a JWKS: no "keys" array', source=source)
    if len(entries) > MAX_JWKS_KEYS:
        raise JwksError(f"more than {MAX_JWKS_KEYS} keys", source=source)
    keys: Keys = {}
    ambiguous: set[str] = set()
    for entry in entries:
        key = _to_pyjwk(entry) if isinstance(entry, dict) else "not an object"
        if isinstance(key, str):
            kid = entry.get("kid") if isinstance(entry, dict) else None
            logger.warning("JWKS %s: key %.64r skipped: %s", source, kid, key)
            continue
        kid = str(key.key_id)
        if kid in keys or kid in ambiguous:
            ambiguous.add(kid)
            keys.pop(kid, None)
            logger.warning("JWKS %s: kid %.64r held by several keys: none used", source, kid)
            continue
        keys[kid] = key
    if not keys:
        raise JwksError("no usable key", source=source)
    return keys


# --- fetching ------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # The configured URL is the trust anchor: a redirect could hand the keys to another host.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def check_jwks_url(url: str) -> str:
    """url, when it is https, or http to a loopback host. Raises JwksError otherwise."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and is_loopback(host):
        return url
    raise JwksError("a JWKS URL is https (http only to a loopback address)", source=url)


def fetch_jwks(url: str, *, timeout_s: float = FETCH_TIMEOUT_S) -> bytes:
    """GET url (no redirects), at most MAX_JWKS_BYTES, within timeout_s in all.

    Raises JwksError on any network error, a status other than 200, a larger body or a timeout.
    """
    deadline = time.monotonic() + timeout_s
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked by check_jwks_url)
        check_jwks_url(url), headers={"Accept": "application/json"}
    )
    body = bytearray()
    try:
        with opener.open(request, timeout=timeout_s) as response:
            if response.status != 200:
                raise JwksError(f"HTTP status {response.status}", source=url)
            while chunk := response.read(FETCH_CHUNK_BYTES):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksError(f"larger than {MAX_JWKS_BYTES} bytes", source=url)
                if time.monotonic() > deadline:
                    raise JwksError(f"slower than {timeout_s} s", source=url)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise JwksError(f"fetch failed ({type(exc).__name__})", source=url) from None
    return bytes(body)


# --- the source ----------------------------------------------------------------------------------


class JwksSource:
    """Where the keys that verify tokens come from: a fixed set, or a URL fetched and cached.

    Thread-safe: one request refreshes while the others keep using the cached keys.
    """

    def __init__(
        self,
        *,
        keys: Keys | None = None,
        fetch: Callable[[], Keys] | None = None,
        ttl_s: float = math.inf,
        clock: Clock = time.monotonic,
        source: str = "JWKS",
    ) -> None:
        if (keys is None) == (fetch is None):
            raise ValueError("give either keys or fetch")
        self._keys = keys
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._source = source
        self._lock = threading.Lock()
        self._fetched_at = -math.inf
        self._next_fetch_at = -math.inf
        self._unknown_kid_fetch_at = -math.inf

    @classmethod
    def from_document(cls, data: bytes, *, source: str = "JWKS") -> JwksSource:
        """A fixed set of keys from a JWKS document. Raises JwksError (see parse_jwks)."""
        return cls(keys=parse_jwks(data, source=source), source=source)

    @classmethod
    def from_file(cls, path: Path) -> JwksSource:
        """The keys of a JWKS file, read once. Raises JwksError when unreadable or unusable."""
        try:
            with path.open("rb") as file:
                data = file.read(MAX_JWKS_BYTES + 1)
        except OSError as exc:
            raise JwksError(f"cannot read it ({exc.strerror})", source=str(path)) from None
        return cls.from_document(data, source=str(path))

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ttl_s: float,
        clock: Clock = time.monotonic,
        timeout_s: float = FETCH_TIMEOUT_S,
    ) -> JwksSource:
        """Keys fetched from url on first use and cached ttl_s seconds (clock: monotonic seconds).

        Raises JwksError for a URL that is not https (or http to loopback) or a TTL outside
        MIN_TTL_S..MAX_TTL_S. Nothing is fetched here.
        """
        check_jwks_url(url)
        if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
            raise JwksError(f"the TTL is {MIN_TTL_S} to {MAX_TTL_S} s", source=url)

        def fetch() -> Keys:
            return parse_jwks(fetch_jwks(url, timeout_s=timeout_s), source=url)

        return cls(fetch=fetch, ttl_s=ttl_s, clock=clock, source=url)

    def get_key(self, kid: str) -> PyJWK | None:
        """The key named kid, or None when the JWKS has none (after at most one refetch).

        Raises JwksUnavailableError when no keys can be had: never fetched successfully, or the
        last success is STALE_TTL_FACTOR × TTL old.
        """
        if self._fetch is not None and self._clock() >= self._next_fetch_at:
            self._refresh(lambda now: now >= self._next_fetch_at)
        key = self._usable_keys().get(kid)
        if key is None and self._fetch is not None:
            self._refresh(lambda now: self._is_unknown_kid_refetch_due(kid, now))
            key = self._usable_keys().get(kid)
        return key

    def _is_unknown_kid_refetch_due(self, kid: str, now: float) -> bool:
        if self._keys is not None and kid in self._keys:
            return False  # another request fetched it meanwhile
        if now - self._unknown_kid_fetch_at < UNKNOWN_KID_REFETCH_INTERVAL_S:
            return False
        self._unknown_kid_fetch_at = now
        return True

    def _refresh(self, is_due: Callable[[float], bool]) -> None:
        # With keys to serve, nobody waits for a refresh in progress; without, wait for its result.
        if not self._lock.acquire(blocking=self._keys is None):
            return
        try:
            now = self._clock()
            if is_due(now):
                self._attempt(now)
        finally:
            self._lock.release()

    def _attempt(self, now: float) -> None:
        assert self._fetch is not None
        try:
            keys = self._fetch()
        except JwksError as exc:
            self._next_fetch_at = now + RETRY_AFTER_FAILURE_S
            logger.warning("JWKS refresh failed: %s", exc)
            return
        self._keys = keys
        self._fetched_at = now
        self._next_fetch_at = now + self._ttl_s

    def _usable_keys(self) -> Keys:
        if self._keys is None:
            raise JwksUnavailableError("no keys fetched yet", source=self._source)
        if self._fetch is not None:
            age_s = self._clock() - self._fetched_at
            if age_s >= STALE_TTL_FACTOR * self._ttl_s:
                raise JwksUnavailableError(
                    f"the keys are {age_s:.0f} s old and cannot be refreshed", source=self._source
                )
        return self._keys
