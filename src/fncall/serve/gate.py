"""Fair access to one model: a FIFO queue of requests in front of a fixed number of slots.

A local model is a single CPU-bound object; two requests generating at once would interleave
its state (KV cache, sampler) or simply fight for the same cores. ``ModelGate`` admits at most
``slots`` requests into the model (1 unless the model declares batching support), queues the
rest in arrival order, and refuses new arrivals once ``max_waiting`` are queued, so an overload
answers quickly with a 503 instead of piling up.

The model runs in worker threads. A slot is released by the worker when the model call has
actually returned, never by the request's coroutine: a cancelled request (client gone) must not
free the slot while its generation is still running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from fncall.engine.base import ChatModel

T = TypeVar("T")


class QueueFullError(Exception):
    """The request queue is full; the caller should answer 503 and let the client retry."""


def model_slots(model: ChatModel) -> int:
    """How many requests may be inside ``model`` at once: its declared ``max_batch_size``."""
    return model.capabilities.max_batch_size


class ModelGate:
    """A FIFO semaphore with a bounded waiting line, bound to one event loop."""

    def __init__(self, *, slots: int = 1, max_waiting: int = 32) -> None:
        if slots < 1 or max_waiting < 0:
            raise ValueError(f"slots must be >= 1 and max_waiting >= 0; got {slots}, {max_waiting}")
        self.slots = slots
        self.max_waiting = max_waiting
        self._free = slots
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=slots, thread_name_prefix="fncall-model"
        )

    @property
    def busy(self) -> int:
        """Slots in use."""
        return self.slots - self._free

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    async def acquire(self) -> None:
        """Wait for a slot in arrival order; raise ``QueueFullError`` when the line is full."""
        self._loop = asyncio.get_running_loop()
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        if self.waiting >= self.max_waiting:
            raise QueueFullError(
                f"the model is busy and {self.waiting} request(s) are already queued "
                f"(limit {self.max_waiting}); retry later"
            )
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed to us just as we were cancelled
            else:
                waiter.cancel()
                self._remove(waiter)
            raise

    def _remove(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def release(self) -> None:
        """Hand the slot to the oldest waiter, or free it. Call on the gate's event loop."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def release_threadsafe(self) -> None:
        if self._loop is None:
            raise RuntimeError("release_threadsafe() before any acquire()")
        self._loop.call_soon_threadsafe(self.release)

    def submit(self, function: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``function`` on a model thread; its slot (already acquired) is released when it
        returns. The caller must have awaited ``acquire()`` first."""
        future = self._executor.submit(function)
        future.add_done_callback(lambda _: self.release_threadsafe())
        return future

    async def run(self, function: Callable[[], T]) -> T:
        """Acquire a slot, run ``function`` in a model thread, return its result.

        If the awaiting request is cancelled the model call runs to completion in its thread
        and only then frees the slot.
        """
        await self.acquire()
        future = self.submit(function)
        return await asyncio.shield(asyncio.wrap_future(future))

    def start_thread(self, target: Callable[[], None], *, name: str) -> threading.Thread:
        """Start a dedicated thread holding an acquired slot (for streams), released at exit."""

        def body() -> None:
            try:
                target()
            finally:
                self.release_threadsafe()

        thread = threading.Thread(target=body, name=name, daemon=True)
        thread.start()
        return thread

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
