"""Group commit: transactions that arrive while a batch is being written wait, then go to disk
together in the next batch — one write transaction, one ledger append, one checkpoint signature.

Each event loop (one per worker process) has its own queue. Nothing here is durable state: a
request is answered only after its batch has committed, and a crashed batch fails every request
in it (the client retries with its Idempotency-Key). Workers on other machines batch their own
requests; the ledger head lock orders the batches.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio.to_thread

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _LoopQueue(Generic[T, R]):
    pending: list[tuple[T, asyncio.Future[R]]] = field(default_factory=list)
    running: bool = False
    # The drain task, kept referenced so that it is not garbage-collected while it runs.
    task: asyncio.Task[None] | None = None


class GroupCommitter(Generic[T, R]):
    """Runs `commit(items) -> outcomes` (blocking; in a worker thread) over batches of at most
    max_batch items, one batch at a time per event loop."""

    def __init__(self, commit: Callable[[Sequence[T]], list[R]], *, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._commit = commit
        self._max_batch = max_batch
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue[T, R]] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, item: T) -> R:
        """The item's outcome once its batch committed; raises what the batch raised."""
        loop = asyncio.get_running_loop()
        queue = self._queues.setdefault(loop, _LoopQueue())
        future: asyncio.Future[R] = loop.create_future()
        queue.pending.append((item, future))
        if not queue.running:
            queue.running = True
            queue.task = loop.create_task(self._drain(queue))
        return await future

    async def _drain(self, queue: _LoopQueue[T, R]) -> None:
        try:
            while queue.pending:
                batch = queue.pending[: self._max_batch]
                del queue.pending[: self._max_batch]
                await self._run(batch)
        finally:
            queue.running = False

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            outcomes = await anyio.to_thread.run_sync(self._commit, items)
        except BaseException as exc:  # every waiter learns the batch failed
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
