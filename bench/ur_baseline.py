"""The raw RTDE baseline of `ur_rtde`: bare RTDE connections to the simulated robots, no bridge.

`python -m bench.ur_baseline --endpoints JSON --start-at T --duration S` opens one RTDE connection per
robot with the protocol client the UR driver uses (drivers/ur/rtde_client.py: v2 handshake, framing;
no batching, bus or gRPC), sets up the recipe the driver sets up (every RTDE variable of the driver's
table, timestamp first) at 500 Hz, starts the stream and decodes every data package. Per robot it
counts, inside the window, the packages received and the controller-timestamp steps missing between
the first and the last (gaps); and the arrival jitter: receive time minus the controller timestamp
anchored to the first package's receive time, which is what the driver's source timestamps carry
beyond the receive time. Prints one RESULT line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from bench.common import emit_result, percentiles, window_cpu
from linebridge.drivers.ur.fields import FIELDS, FIELDS_BY_NAME
from linebridge.drivers.ur.rtde_client import RtdeClient


@dataclass
class Robot:
    """What one connection saw inside the window."""

    packets: int = 0
    first: float = -1.0
    last: float = -1.0
    backwards: int = 0
    jitter: Counter = field(default_factory=Counter)  # 10 us buckets -> packets


async def stream(endpoint: str, args: argparse.Namespace, robot: Robot) -> None:
    parts = urlsplit(endpoint)
    client = RtdeClient(parts.hostname or "127.0.0.1", int(parse_qs(parts.query)["rtde"][0]))
    names = [f.name for f in FIELDS]
    await client.connect()
    try:
        await client.negotiate()
        recipe = await client.recipe(names, args.frequency, {n: FIELDS_BY_NAME[n].rtde_type for n in names})
        await client.start()
        anchor_ns, anchor_ts, previous = 0, -1.0, -1.0
        end = args.start_at + args.duration
        while True:
            payloads = await client.receive()
            now_ns = time.time_ns()
            if now_ns / 1e9 >= end:
                break
            inside = now_ns / 1e9 >= args.start_at
            for payload in payloads:
                ts = recipe.decode(payload)[1]
                if anchor_ts < 0:
                    anchor_ns, anchor_ts = now_ns, ts
                if not inside:
                    previous = ts
                    continue
                robot.packets += 1
                robot.backwards += ts <= previous
                robot.first = ts if robot.first < 0 else robot.first
                robot.last = previous = ts
                robot.jitter[(now_ns - anchor_ns - round((ts - anchor_ts) * 1e9)) // 10_000] += 1
    finally:
        await client.close()


async def run(args: argparse.Namespace) -> dict:
    endpoints = json.loads(args.endpoints)
    robots = [Robot() for _ in endpoints]
    cpu = asyncio.create_task(window_cpu(args.start_at, args.start_at + args.duration))
    await asyncio.gather(*(stream(e, args, r) for e, r in zip(endpoints, robots, strict=True)))
    period = 1.0 / args.frequency
    expected = [round((r.last - r.first) / period) + 1 if r.packets else 0 for r in robots]
    jitter: Counter = Counter()
    for robot in robots:
        jitter.update(robot.jitter)
    p50, p99 = percentiles(((k / 100.0, w) for k, w in jitter.items()), (0.5, 0.99))
    received = sum(r.packets for r in robots)
    return {
        "packets": received,
        "expected": sum(expected),
        "delivered_share": received / max(1, sum(expected)),
        "missing": sum(expected) - received,
        "out_of_order": sum(r.backwards for r in robots),
        "packets_per_s": received / args.duration,
        "jitter_p50_ms": p50,
        "jitter_p99_ms": p99,
        "seconds": args.duration,
        "window_cpu_pct": await cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ur_baseline")
    parser.add_argument("--endpoints", required=True, help="JSON list of ur:// endpoints")
    parser.add_argument("--frequency", type=float, default=500.0)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    emit_result(asyncio.run(run(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
