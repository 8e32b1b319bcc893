"""Closing a TCP stream to the controller without ever hanging on it."""

from __future__ import annotations

import asyncio

from linebridge.drivers.tasks import bounded


async def close_writer(writer: asyncio.StreamWriter, timeout: float = 1.0) -> None:
    """Close `writer`; abort it when the flush does not finish in time.

    StreamWriter.close() first sends what is still buffered, so wait_closed() waits for a peer that
    may have stopped reading (a controller mid-reboot): unbounded, that hung bridge shutdown.
    """
    writer.close()
    try:
        await bounded(writer.wait_closed(), timeout)
    except (OSError, TimeoutError):
        writer.transport.abort()
