"""The per-worker signing-key cache used by the checks before the write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.transactions.keycache import SigningKeyCache
from signatures.client import generate_private_key, public_jwk
from signatures.keys import AssuranceLevel, KeyEvent, KeyEventKind, KeyRecord

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _record(*, suspended: bool = False) -> KeyRecord:
    record = KeyRecord.register(
        jwk=public_jwk(generate_private_key("EdDSA")),
        subject="ir-nid:0499370899",
        assurance=AssuranceLevel.REGISTERED,
        at=T0,
        ledger_index=0,
    )
    if suspended:
        record = record.with_event(
            KeyEvent(KeyEventKind.SUSPENDED, T0 + timedelta(seconds=1), ledger_index=1)
        )
    return record


class Loader:
    def __init__(self, *records: KeyRecord) -> None:
        self.records = {r.kid: r for r in records}
        self.calls: list[str] = []

    def __call__(self, kid: str) -> KeyRecord | None:
        self.calls.append(kid)
        return self.records.get(kid)


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


AT = T0 + timedelta(minutes=1)


def test_an_active_key_is_read_once_within_the_ttl() -> None:
    record, clock = _record(), Clock()
    load, cache = Loader(record), SigningKeyCache(ttl_s=5, clock_s=clock)
    assert cache.get(record.kid, load, at=AT) is record
    clock.now_s += 4.9
    assert cache.get(record.kid, load, at=AT) is record
    assert load.calls == [record.kid]
    clock.now_s += 0.1  # the TTL has passed
    assert cache.get(record.kid, load, at=AT) is record
    assert load.calls == [record.kid, record.kid]


def test_a_cached_key_that_is_not_active_is_read_again() -> None:
    active = _record()
    suspended_then = _record(suspended=True)
    load = Loader(suspended_then)
    cache = SigningKeyCache(ttl_s=60, clock_s=Clock())
    assert cache.get(suspended_then.kid, load, at=AT) is suspended_then
    load.records[suspended_then.kid] = active  # reinstated elsewhere (same kid in this test)
    assert cache.get(suspended_then.kid, load, at=AT) is active
    assert load.calls == [suspended_then.kid, suspended_then.kid]


def test_an_unknown_key_is_not_cached() -> None:
    record = _record()
    load, cache = Loader(), SigningKeyCache(clock_s=Clock())
    assert cache.get(record.kid, load, at=AT) is None
    load.records[record.kid] = record  # registered since
    assert cache.get(record.kid, load, at=AT) is record
    assert len(cache) == 1


def test_forget_drops_a_key() -> None:
    record = _record()
    load, cache = Loader(record), SigningKeyCache(clock_s=Clock())
    cache.get(record.kid, load, at=AT)
    cache.forget(record.kid)
    cache.forget("never-cached")
    cache.get(record.kid, load, at=AT)
    assert load.calls == [record.kid, record.kid]


def test_the_oldest_entry_goes_first_at_the_limit() -> None:
    records = [_record() for _ in range(3)]
    load, cache = Loader(*records), SigningKeyCache(max_keys=2, clock_s=Clock())
    for r in records:
        cache.get(r.kid, load, at=AT)
    assert len(cache) == 2
    load.calls.clear()
    cache.get(records[2].kid, load, at=AT)
    cache.get(records[1].kid, load, at=AT)
    assert load.calls == []
    cache.get(records[0].kid, load, at=AT)
    assert load.calls == [records[0].kid]


@pytest.mark.parametrize(("ttl_s", "max_keys"), [(-1, 10), (5, 0)])
def test_limits_must_make_sense(ttl_s: float, max_keys: int) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        SigningKeyCache(ttl_s=ttl_s, max_keys=max_keys)
