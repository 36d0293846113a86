"""Group commit: concurrent submissions share batches, in order; a batch takes its items as late
as its commit asks for them; its finishing step runs while the next batch commits; a failed batch
fails every waiter in it (and only those)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

import pytest

from api.transactions.committer import GroupCommitter, LoopLimiters

Take = Callable[[], Sequence[int]]


def test_concurrent_items_are_batched_in_arrival_order() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def commit(take: Take) -> list[int]:
        items = list(take())
        if not batches:
            gate.wait(5)  # hold the first batch until the others have queued
        batches.append(items)
        return [i * 10 for i in items]

    committer: GroupCommitter[int, list[int], int] = GroupCommitter(
        commit, finish=list, max_batch=4
    )

    async def main() -> list[int]:
        first = asyncio.ensure_future(committer.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(committer.submit(i)) for i in range(1, 10)]
        await asyncio.sleep(0.05)
        gate.set()
        return list(await asyncio.gather(first, *rest))

    assert asyncio.run(main()) == [i * 10 for i in range(10)]
    assert batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_items_submitted_before_the_batch_takes_them_join_it() -> None:
    """The service takes its items after the ledger lock: what arrives while a batch waits for
    the lock goes into that batch, not the next one."""
    batches: list[list[int]] = []
    waiting = threading.Event()
    go = threading.Event()

    def commit(take: Take) -> list[int]:
        if not batches and not waiting.is_set():
            waiting.set()  # "waiting for the lock", nothing taken yet
            go.wait(5)
        items = list(take())
        batches.append(items)
        return items

    committer: GroupCommitter[int, list[int], int] = GroupCommitter(
        commit, finish=list, max_batch=8
    )

    async def main() -> list[int]:
        first = asyncio.ensure_future(committer.submit(0))
        while not waiting.is_set():
            await asyncio.sleep(0.01)
        later = [asyncio.ensure_future(committer.submit(i)) for i in range(1, 5)]
        await asyncio.sleep(0.05)
        go.set()
        return list(await asyncio.gather(first, *later))

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    assert batches == [[0, 1, 2, 3, 4]]


def test_take_gives_the_same_batch_at_every_call() -> None:
    """A retried transaction calls take again: it must see the batch it began with, even when
    more items have arrived since."""
    seen: list[tuple[list[int], list[int]]] = []
    taken_once = threading.Event()
    go = threading.Event()

    def commit(take: Take) -> list[int]:
        first = list(take())
        if not seen:
            taken_once.set()
            go.wait(5)
        again = list(take())
        seen.append((first, again))
        return again

    committer: GroupCommitter[int, list[int], int] = GroupCommitter(
        commit, finish=list, max_batch=8
    )

    async def main() -> list[int]:
        first = asyncio.ensure_future(committer.submit(0))
        while not taken_once.is_set():
            await asyncio.sleep(0.01)
        later = asyncio.ensure_future(committer.submit(1))
        await asyncio.sleep(0.05)
        go.set()
        return [await first, await later]

    assert asyncio.run(main()) == [0, 1]
    assert seen == [([0], [0]), ([1], [1])]


@pytest.mark.parametrize("failing_step", ["commit", "finish"])
def test_a_failed_batch_fails_its_waiters_only(failing_step: str) -> None:
    calls = 0

    def step(name: str, items: list[str]) -> list[str]:
        if name == failing_step and "boom" in items:
            raise RuntimeError(f"{name} failed")
        return items

    def commit(take: Callable[[], Sequence[str]]) -> list[str]:
        nonlocal calls
        calls += 1
        return step("commit", list(take()))

    committer: GroupCommitter[str, list[str], str] = GroupCommitter(
        commit, finish=lambda written: step("finish", written), max_batch=1
    )

    async def main() -> tuple[object, ...]:
        return tuple(
            await asyncio.gather(
                committer.submit("a"), committer.submit("boom"), committer.submit("c"),
                return_exceptions=True,
            )
        )  # fmt: skip

    a, boom, c = asyncio.run(main())
    assert (a, c) == ("a", "c")
    assert isinstance(boom, RuntimeError) and str(boom) == f"{failing_step} failed"
    assert calls == 3


def test_a_batch_failing_before_it_takes_fails_what_it_would_have_taken() -> None:
    """Say the database is down when the batch asks for the lock: the waiting items fail (they
    are not left queued for ever), and the next submission gets a batch of its own."""
    calls = 0

    def commit(take: Take) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database unreachable")
        return list(take())

    committer: GroupCommitter[int, list[int], int] = GroupCommitter(
        commit, finish=list, max_batch=2
    )

    async def main() -> tuple[object, ...]:
        failed = await asyncio.gather(
            committer.submit(1), committer.submit(2), committer.submit(3), return_exceptions=True
        )
        return (*failed, await committer.submit(4))

    one, two, three, four = asyncio.run(main())
    assert isinstance(one, ConnectionError)
    assert isinstance(two, ConnectionError)
    assert (three, four) == (3, 4)
    assert calls == 3


def test_the_next_batch_commits_while_the_last_one_finishes() -> None:
    """The receipts of a batch are built while the next batch already writes."""
    events: list[str] = []
    finishing = threading.Event()
    second_committed = threading.Event()

    def commit(take: Take) -> list[int]:
        items = list(take())
        events.append(f"commit {items}")
        if items == [1]:
            second_committed.set()
        return items

    def finish(written: list[int]) -> list[int]:
        if written == [0]:
            finishing.set()
            assert second_committed.wait(5), "the second batch did not commit meanwhile"
        events.append(f"finish {written}")
        return [i * 10 for i in written]

    committer: GroupCommitter[int, list[int], int] = GroupCommitter(
        commit, finish=finish, max_batch=8
    )

    async def main() -> list[int]:
        first = asyncio.ensure_future(committer.submit(0))
        while not finishing.is_set():
            await asyncio.sleep(0.01)
        second = asyncio.ensure_future(committer.submit(1))
        return [await first, await second]

    assert asyncio.run(main()) == [0, 10]
    assert events == ["commit [0]", "commit [1]", "finish [0]", "finish [1]"]


def test_a_commit_that_never_takes_or_answers_short_fails_its_waiters() -> None:
    """Programming errors in a commit or finish step fail the batch's waiters: none is left
    waiting for ever."""
    no_take: GroupCommitter[int, list[int], int] = GroupCommitter(
        lambda take: [], finish=list, max_batch=4
    )
    short: GroupCommitter[int, list[int], int] = GroupCommitter(
        lambda take: list(take())[:1], finish=list, max_batch=4
    )

    async def main(committer: GroupCommitter[int, list[int], int]) -> list[object]:
        return list(
            await asyncio.gather(committer.submit(1), committer.submit(2), return_exceptions=True)
        )

    for committer, message in ((no_take, "did not take"), (short, "do not match")):
        results = asyncio.run(main(committer))
        assert all(isinstance(r, RuntimeError) and message in str(r) for r in results), results


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommitter(lambda take: list(take()), finish=list, max_batch=0)


def test_a_loop_limiter_has_its_tokens_and_one_limiter_per_loop() -> None:
    limiters = LoopLimiters(3)

    async def current() -> tuple[float, bool]:
        limiter = limiters.current()
        return limiter.total_tokens, limiter is limiters.current()

    assert asyncio.run(current()) == (3, True)
    with pytest.raises(ValueError, match="token"):
        LoopLimiters(0)
