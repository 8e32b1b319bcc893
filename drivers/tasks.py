"""Task helpers shared by drivers: run a driver's concurrent jobs as owned tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any


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
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
