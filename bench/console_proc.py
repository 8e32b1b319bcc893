"""The console of a benchmark: `python -m bench.console_proc --target HOST:PORT`, prints `READY <url>`."""

from __future__ import annotations

import argparse
import asyncio

from bench.common import emit_ready
from linebridge.cli.runner import stop_event
from linebridge.console.config import ConsoleOptions
from linebridge.console.server import ConsoleServer


async def main(target: str) -> None:
    server = ConsoleServer(ConsoleOptions(target=target, listen="127.0.0.1:0"))
    emit_ready(await server.start())
    stop = stop_event()
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    asyncio.run(main(parser.parse_args().target))
