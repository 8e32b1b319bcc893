"""The raw Modbus baseline: bare pymodbus clients doing the reads the bridge's modbus driver does.

`python -m bench.modbus_baseline --endpoints JSON --blocks JSON --interval S ...` opens one
AsyncModbusTcpClient per simulated PLC and sends, every cycle, the input register reads (FC4) the
driver's poll plan sends (`--blocks`: [[start, count], ...], one request each, one after the other)
on the same schedule as the driver's poller: a fixed-rate deadline that skips missed cycles instead
of bursting. Counts the requests sent inside the window and the registers that came back; prints
one RESULT line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient

from bench.common import emit_result, window_cpu


@dataclass
class Tally:
    """What one client did inside the window."""

    requests: int = 0
    registers: int = 0
    errors: int = 0
    overruns: int = 0


async def poll(endpoint: str, args: argparse.Namespace, tally: Tally) -> None:
    """Read the block at a fixed rate until the window closes."""
    host, _, port = endpoint.removeprefix("modbus+tcp://").rpartition(":")
    client = AsyncModbusTcpClient(host, port=int(port), timeout=2 * args.interval, retries=0)
    await client.connect()
    loop = asyncio.get_running_loop()
    end = args.start_at + args.duration
    deadline = loop.time()
    try:
        while time.time() < end:
            inside = time.time() >= args.start_at
            for start, count in args.blocks:
                reply = await client.read_input_registers(start, count=count, device_id=args.unit)
                if inside:
                    tally.requests += 1
                    if reply.isError():
                        tally.errors += 1
                    else:
                        tally.registers += len(reply.registers)
            deadline += args.interval
            now = loop.time()
            if deadline < now:  # the driver's rule: skip missed cycles
                tally.overruns += inside
                deadline += math.ceil((now - deadline) / args.interval) * args.interval
            await asyncio.sleep(deadline - now)
    finally:
        client.close()


async def run(args: argparse.Namespace) -> dict:
    endpoints = json.loads(args.endpoints)
    tallies = [Tally() for _ in endpoints]
    cpu = asyncio.create_task(window_cpu(args.start_at, args.start_at + args.duration))
    await asyncio.gather(*(poll(e, args, t) for e, t in zip(endpoints, tallies, strict=True)))
    requests = sum(t.requests for t in tallies)
    return {
        "clients": len(endpoints),
        "requests": requests,
        "request_rate": requests / args.duration,
        "samples": sum(t.registers for t in tallies),
        "rate": sum(t.registers for t in tallies) / args.duration,
        "errors": sum(t.errors for t in tallies),
        "overruns": sum(t.overruns for t in tallies),
        "seconds": args.duration,
        "window_cpu_pct": await cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.modbus_baseline")
    parser.add_argument("--endpoints", required=True, help="JSON list of modbus+tcp:// endpoints")
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument(
        "--blocks", type=json.loads, required=True, help="JSON [[start, count], ...] per cycle"
    )
    parser.add_argument("--interval", type=float, required=True, help="seconds between reads")
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    emit_result(asyncio.run(run(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
