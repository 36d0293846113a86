"""Group commit: concurrent submissions share batches, in order, and a failed batch fails
every waiter in it (and only those)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from api.transactions.committer import GroupCommitter


def test_concurrent_items_are_batched_in_arrival_order() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def commit(items: Sequence[int]) -> list[int]:
        if not batches:
            gate.wait(5)  # hold the first batch until the others have queued
        batches.append(list(items))
        return [i * 10 for i in items]

    committer: GroupCommitter[int, int] = GroupCommitter(commit, max_batch=4)

    async def main() -> list[int]:
        first = asyncio.ensure_future(committer.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(committer.submit(i)) for i in range(1, 10)]
        await asyncio.sleep(0.05)
        gate.set()
        return list(await asyncio.gather(first, *rest))

    assert asyncio.run(main()) == [i * 10 for i in range(10)]
    assert batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_a_failed_batch_fails_its_waiters_only() -> None:
    calls = 0

    def commit(items: Sequence[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if "boom" in items:
            raise RuntimeError("storage down")
        return list(items)

    committer: GroupCommitter[str, str] = GroupCommitter(commit, max_batch=1)

    async def main() -> tuple[object, ...]:
        return tuple(
            await asyncio.gather(
                committer.submit("a"), committer.submit("boom"), committer.submit("c"),
                return_exceptions=True,
            )
        )  # fmt: skip

    a, boom, c = asyncio.run(main())
    assert (a, c) == ("a", "c")
    assert isinstance(boom, RuntimeError)
    assert calls == 3


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommitter(lambda items: list(items), max_batch=0)
