"""What every simulator's command line shares: start, say READY, run until SIGINT/SIGTERM, stop."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from typing import Protocol


class Simulator(Protocol):
    """A simulator that serves on loopback and knows the endpoint a driver connects to."""

    endpoint: str

    async def start(self) -> None:
        """Start serving."""

    async def stop(self) -> None:
        """Stop serving."""


async def serve_until_signalled(sim: Simulator, name: str, on_ready: Callable[[], None] | None = None) -> int:
    """Run `sim` until SIGINT or SIGTERM. Prints `READY <endpoint>` (the only stdout line a parent
    process reads) once it serves; returns the process exit code (1 when it cannot start)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await sim.start()
    except (OSError, ValueError, RuntimeError) as exc:  # pymodbus reports an unbindable port as RuntimeError
        print(f"{name}: cannot start: {exc}", file=sys.stderr)
        await sim.stop()
        return 1
    try:
        if on_ready is not None:
            on_ready()
        print(f"READY {sim.endpoint}", flush=True)
        await stop.wait()
    finally:
        await sim.stop()
    return 0
