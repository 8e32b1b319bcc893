"""Simulated UR controllers for `ur_rtde`: `python -m bench.ur_sims --count N [--first K]`.

Runs N UR simulators (drivers/ur/simulator.py, UrSimulator: RTDE v2, Dashboard and secondary
interface, 500 Hz control cycle) in this one process on free loopback ports, without mDNS, named
ur-K .. ur-(K+N-1). Ten simulator processes would cost ten interpreters on a two-core machine; in one
process they share an event loop, and each simulator's cycle catches up (bursts) when the loop runs
late, skipping packages only when more than 250 cycles (0.5 s) behind, like the controller.
Prints `READY <json list of endpoints>`; on SIGTERM a RESULT line with the cycles each simulator
skipped and this process's CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from bench.common import emit_ready, emit_result
from linebridge.drivers.ur.simulator import SimConfig, UrSimulator


async def run(args: argparse.Namespace) -> dict:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sims = [
        UrSimulator(SimConfig(name=f"ur-{i}", mdns=False, rate=args.rate))
        for i in range(args.first, args.first + args.count)
    ]
    try:
        for sim in sims:
            await sim.start()
        emit_ready(json.dumps([sim.endpoint for sim in sims]))
        await stop.wait()
    finally:
        for sim in sims:
            await sim.stop()
    times = os.times()
    return {
        "simulators": len(sims),
        "cycles_skipped": [sim.cycles_skipped for sim in sims],
        "cpu_seconds": times.user + times.system,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ur_sims")
    parser.add_argument("--count", type=int, default=10, help="simulated robots in this process")
    parser.add_argument("--first", type=int, default=1, help="number of the first robot (ur-FIRST)")
    parser.add_argument("--rate", type=float, default=500.0, help="control cycle, Hz")
    emit_result(asyncio.run(run(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
