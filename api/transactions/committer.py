"""Group commit: transactions that arrive while a batch is being written wait, then go to disk
together in the next batch — one write transaction, one ledger append, one checkpoint signature.

Each event loop (one per worker process) has its own queue. Nothing here is durable state: a
request is answered only after its batch has committed, and a crashed batch fails every request
in it (the client retries with its Idempotency-Key). Workers on other machines batch their own
requests; the ledger head lock orders the batches.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")
W = TypeVar("W")
R = TypeVar("R")


class LoopLimiters:
    """One anyio CapacityLimiter of `tokens` threads per event loop (a limiter belongs to the
    loop that made it, and tests run several loops)."""

    def __init__(self, tokens: int) -> None:
        if tokens < 1:
            raise ValueError("a limiter needs at least one token")
        self._tokens = tokens
        self._limiters: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, anyio.CapacityLimiter
        ] = weakref.WeakKeyDictionary()

    def current(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self._tokens)
        return limiter


@dataclass
class _LoopQueue(Generic[T, R]):
    pending: list[tuple[T, asyncio.Future[R]]] = field(default_factory=list)
    # pending is appended to on the loop's thread and taken from on the batch's thread.
    mutex: threading.Lock = field(default_factory=threading.Lock)
    running: bool = False
    # The drain task, kept referenced so that it is not garbage-collected while it runs.
    task: asyncio.Task[None] | None = None
    # The batch's thread has a token of its own: it never waits behind request threads holding
    # the shared default limiter's tokens (one batch at a time per loop needs exactly one).
    limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(1))
    # Finishing (the receipts) has a thread of its own too, one batch at a time, and its tasks
    # are kept referenced until done.
    finish_limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(1))
    finishing: set[asyncio.Task[None]] = field(default_factory=set)


class _Take(Generic[T, R]):
    """The batch's items, taken from the queue at the first call and the same at every later
    one (a retried transaction sees the batch it began with)."""

    def __init__(self, queue: _LoopQueue[T, R], max_batch: int) -> None:
        self._queue = queue
        self._max_batch = max_batch
        self.taken: list[tuple[T, asyncio.Future[R]]] | None = None

    def __call__(self) -> list[T]:
        return [item for item, _ in self.waiters()]

    def waiters(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The batch's (item, future) pairs, taken now if the commit has not taken them."""
        if self.taken is None:
            with self._queue.mutex:
                self.taken = self._queue.pending[: self._max_batch]
                del self._queue.pending[: self._max_batch]
        return self.taken


class GroupCommitter(Generic[T, W, R]):
    """Runs `commit(take) -> written` and then `finish(written) -> outcomes` (blocking; each in
    a worker thread) over batches of at most max_batch items, one commit at a time per event
    loop.

    `take()` returns the batch's items, and commit calls it as late as it can: once nothing can
    overtake the batch any more (the service calls it after taking the ledger lock), so that
    what arrived while it waited for the lock joins the batch. A commit that fails before
    calling take fails the items it would have taken.

    finish (the service builds the receipts there) runs while the next batch commits: the
    outcomes, in take()'s order, are given to the waiters when it returns."""

    def __init__(
        self,
        commit: Callable[[Callable[[], Sequence[T]]], W],
        *,
        finish: Callable[[W], list[R]],
        max_batch: int,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._commit = commit
        self._finish = finish
        self._max_batch = max_batch
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue[T, R]] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, item: T) -> R:
        """The item's outcome once its batch committed; raises what the batch raised."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _LoopQueue()
        future: asyncio.Future[R] = loop.create_future()
        with queue.mutex:
            queue.pending.append((item, future))
        if not queue.running:
            queue.running = True
            queue.task = loop.create_task(self._drain(queue))
        return await future

    async def _drain(self, queue: _LoopQueue[T, R]) -> None:
        try:
            while queue.pending:
                await self._run(queue)
        finally:
            queue.running = False

    async def _run(self, queue: _LoopQueue[T, R]) -> None:
        take = _Take(queue, self._max_batch)
        try:
            written = await anyio.to_thread.run_sync(self._commit, take, limiter=queue.limiter)
        except BaseException as exc:
            _fail(take.waiters(), exc)
            if not isinstance(exc, Exception):
                raise
            return
        if take.taken is None:  # the commit never asked for its items: none was written
            _fail(take.waiters(), RuntimeError("the batch's commit did not take its items"))
            return
        task = asyncio.get_running_loop().create_task(
            self._finished(queue, take.waiters(), written)
        )
        queue.finishing.add(task)
        task.add_done_callback(queue.finishing.discard)

    async def _finished(
        self, queue: _LoopQueue[T, R], waiters: list[tuple[T, asyncio.Future[R]]], written: W
    ) -> None:
        try:
            outcomes = await anyio.to_thread.run_sync(
                self._finish, written, limiter=queue.finish_limiter
            )
            if len(outcomes) != len(waiters):
                raise RuntimeError("a batch's outcomes do not match its items")
        except BaseException as exc:
            _fail(waiters, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(waiters, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)


def _fail(waiters: Sequence[tuple[object, asyncio.Future[R]]], exc: BaseException) -> None:
    """Every waiter of a failed batch learns that it failed."""
    for _, future in waiters:
        if not future.done():
            future.set_exception(exc)
