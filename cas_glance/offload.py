"""The one door from the event loop to threads: two bounded pools, `cpu` and `io`.

Concern: coroutines never do CPU work, LMDB commits or blocking store calls on the loop; they
`await offload.cpu(fn, ...)` (chunking, hashing, compression: all release the GIL) or
`await offload.io(fn, ...)` (store calls, index transactions: latency bound, many in flight).

Invariants:
* both pools are bounded (`cpu_threads`, `io_threads`), so load cannot create threads;
* `settle()` waits for a future even through cancellation and re-raises the cancellation
  afterwards: clean-up work (a revert transaction) can never be torn by a client disconnect.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Offload:
    """Bounded `cpu` and `io` thread pools behind two awaitables."""

    def __init__(self, cpu_threads: int, io_threads: int) -> None:
        self._cpu = ThreadPoolExecutor(cpu_threads, thread_name_prefix="cas-cpu")
        self._io = ThreadPoolExecutor(io_threads, thread_name_prefix="cas-io")
        self.cpu_threads = cpu_threads
        self.io_threads = io_threads

    def cpu(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run CPU-bound `fn(*args)` on the cpu pool (it should release the GIL)."""
        return self._run(self._cpu, fn, args)

    def io(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run blocking `fn(*args)` (store call, LMDB transaction) on the io pool."""
        return self._run(self._io, fn, args)

    @staticmethod
    def _run(pool: ThreadPoolExecutor, fn: Callable[..., T], args: tuple[Any, ...]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(pool, functools.partial(fn, *args))

    def close(self) -> None:
        """Finish queued jobs and stop the threads. Safe to call twice."""
        self._cpu.shutdown(wait=True)
        self._io.shutdown(wait=True)


async def settle(aw: Awaitable[T]) -> T:
    """Await `aw` to completion even if the calling task is cancelled meanwhile.

    The awaitable is shielded, so a cancellation cannot abort it; we keep waiting until it is
    done and only then re-raise the CancelledError we swallowed (the caller still sees it).
    """
    fut = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(fut)
            break
        except asyncio.CancelledError:
            if fut.done():  # the inner work itself was cancelled, not us
                if fut.cancelled():
                    raise
                result = fut.result()
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()
    return result


async def settle_all(futures: list[asyncio.Future[Any]]) -> None:
    """Wait (through cancellation) until every future is done; swallow their errors.

    Used on failure paths so no job of a failed upload is still running when its revert runs.
    """
    pending = [f for f in futures if not f.done()]
    for f in futures:
        if f.done() and not f.cancelled():
            f.exception()  # retrieved: its error is swallowed here, not logged at collection
    if not pending:
        return
    await settle(asyncio.gather(*pending, return_exceptions=True))
