"""The raw OPC UA baseline: a bare asyncua client subscribing to the bench server's variables.

`python -m bench.opcua_baseline --endpoint URL --start-at EPOCH --duration S` uses asyncua's own
subscription API (the async iterator), with the publishing interval, sampling interval and queue size
the Linebridge opcua driver asks for, and counts the data changes that arrive inside the window.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time

from asyncua import Client

from bench.common import emit_result
from bench.opcua_server import FOLDER


async def run(args: argparse.Namespace) -> dict:
    client = Client(args.endpoint, timeout=10)
    await client.connect()
    try:
        nodes = await client.get_node(FOLDER).get_children()
        queue = min(1000, math.ceil(args.publishing_interval / args.sampling_interval) + 1)
        sub = await client.create_subscription(args.publishing_interval * 1000.0, queue_maxsize=10_000_000)
        await sub.subscribe_data_change(
            nodes, queuesize=queue, sampling_interval=args.sampling_interval * 1000.0
        )
        samples = total = 0
        cpu_start = None
        end = args.start_at + args.duration
        while True:
            event = await sub.next_event(timeout=max(0.01, end - time.time()))
            now = time.time()
            if now >= end:
                break
            if event is None:
                continue
            total += 1
            if now >= args.start_at:
                samples += 1
                if cpu_start is None:
                    cpu_start = cpu_seconds(), now
        cpu_end = cpu_seconds(), time.time()
        await sub.delete()
    finally:
        await client.disconnect()
    window_cpu = (
        100.0 * (cpu_end[0] - cpu_start[0]) / (cpu_end[1] - cpu_start[1])
        if cpu_start is not None and cpu_end[1] > cpu_start[1]
        else None
    )
    return {
        "samples": samples,
        "total_received": total,
        "seconds": args.duration,
        "rate": samples / args.duration,
        "variables": len(nodes),
        "window_cpu_pct": window_cpu,
    }


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.opcua_baseline")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument(
        "--publishing-interval", type=float, default=0.1, help="seconds (the driver's default)"
    )
    parser.add_argument("--sampling-interval", type=float, default=0.01, help="seconds (the device default)")
    emit_result(asyncio.run(run(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
