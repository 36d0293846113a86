"""A per-worker cache of registered signing keys for the checks before the write.

Caching a key record here is safe because of two facts, both required:
- a kid is the RFC 7638 thumbprint of its JWK, and a key's subject never changes, so the key
  material the signature is verified with cannot be stale;
- the key's *state* (active, suspended, revoked, expired) is checked again under the ledger lock
  when the transaction is written (api.transactions.commit), with a fresh read. A cached record
  can only let a transaction reach that authoritative check a little earlier.

A cached record that is not active at the check's time is never trusted for a refusal: it is
read again, so a reinstated key signs at once. A worker that writes a key change drops the key
from its own cache; other workers see it within KEY_CACHE_TTL_S, or at the re-check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from signatures.keys import KeyRecord

# How long a cached key record may be used for the pre-write checks.
KEY_CACHE_TTL_S = 5.0
# Keys cached per worker at most; the oldest entry goes first.
MAX_CACHED_KEYS = 10_000


@dataclass(frozen=True)
class _Entry:
    record: KeyRecord
    loaded_s: float


class SigningKeyCache:
    """Thread-safe: the pre-write checks run in worker threads."""

    def __init__(
        self,
        *,
        ttl_s: float = KEY_CACHE_TTL_S,
        max_keys: int = MAX_CACHED_KEYS,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s < 0 or max_keys < 1:
            raise ValueError("ttl_s must be ≥ 0 and max_keys ≥ 1")
        self._ttl_s = ttl_s
        self._max_keys = max_keys
        self._clock_s = clock_s
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(
        self, kid: str, load: Callable[[str], KeyRecord | None], *, at: datetime
    ) -> KeyRecord | None:
        """The record of kid: cached when fresh and active at `at`, else load(kid) (cached when
        found). None when the key is not registered."""
        now_s = self._clock_s()
        with self._lock:
            entry = self._entries.get(kid)
        fresh = entry is not None and now_s - entry.loaded_s < self._ttl_s
        if fresh and entry is not None and entry.record.is_active_at(at):
            return entry.record
        record = load(kid)
        with self._lock:
            if record is None:
                self._entries.pop(kid, None)
                return None
            self._entries.pop(kid, None)  # re-inserted last: the oldest entries are first
            while len(self._entries) >= self._max_keys:
                del self._entries[next(iter(self._entries))]
            self._entries[kid] = _Entry(record, now_s)
        return record

    def forget(self, kid: str) -> None:
        """Drop kid (this worker changed its state)."""
        with self._lock:
            self._entries.pop(kid, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
