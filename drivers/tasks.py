"""Task helpers shared by drivers: run a driver's concurrent jobs as owned tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

RECANCEL_SECONDS = 1.5


async def until_first_failure(jobs: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run jobs as owned tasks until one fails (re-raised as is, not as an ExceptionGroup) or all are cancelled.

    With no jobs it idles until cancelled. The remaining tasks are cancelled and awaited on the way out.
    """
    if not jobs:
        await asyncio.Event().wait()
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        await _cancel_all(tasks)


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait until every one has ended, cancelling again every RECANCEL_SECONDS: on
    Python 3.11 `asyncio.wait_for` can swallow a cancel that arrives just as its inner call finishes (a UR
    stream connecting at stop went on streaming, outliving its stopped session). The interval leaves a
    task's own cleanup (closing a socket: at most 1 s) time to finish before it is interrupted."""
    pending = set(tasks)
    try:
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    finally:
        for task in pending:  # we were cancelled ourselves while waiting: still leave none running
            task.cancel()
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" noise for the losers


async def bounded(awaitable: Awaitable[T], timeout: float) -> T:
    """`asyncio.wait_for(awaitable, timeout)` without its Python 3.11 flaw: wait_for runs the call in a task
    of its own and, when a cancel lands as that task finishes, returns the result and drops the cancel (a
    gRPC Cancel of a UR motion was lost this way in a loaded run: the robot went on to its target). Here
    the call runs in the caller's task under `asyncio.timeout`, so the cancel is always delivered."""
    async with asyncio.timeout(timeout):
        return await awaitable
