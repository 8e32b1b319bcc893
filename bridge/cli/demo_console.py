"""The web console of `linebridge demo`: `linebridge console` in its own process, its URL for the table."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import AsyncIterator

URL = {"console": ""}  # the running console's URL, for the demo's live table


def free_or_any(listen: str) -> str:
    """`listen` when its port is free on loopback, else the same host with any free port (port 0)."""
    host, _, port = listen.rpartition(":")
    with socket.socket() as probe:
        try:
            probe.bind((host.strip("[]"), int(port)))
        except OSError:
            return f"{host}:0"
    return listen


@contextlib.asynccontextmanager
async def console_process(target: str, listen: str) -> AsyncIterator[str]:
    """Run the console for the bridge at `target` while the block runs; yields its URL ("" when off or
    when it did not start, which the demo survives)."""
    if listen == "off":
        yield ""
        return
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "linebridge.cli",
        "console",
        "--target",
        target,
        "--listen",
        free_or_any(listen),
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        process_group=0,  # Ctrl-C reaches the bridge; the demo stops the console afterwards
    )
    assert process.stdout is not None
    try:
        URL["console"] = await _url(process.stdout)
        print(f"web console: {URL['console'] or 'did not start (see above)'}", flush=True)
        yield URL["console"]
    finally:
        URL["console"] = ""
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _url(stdout: asyncio.StreamReader) -> str:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while line := (await stdout.readline()).decode():
                if line.startswith("console: "):
                    return line.split()[1]
    return ""
