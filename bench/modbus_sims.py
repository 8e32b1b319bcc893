"""Simulated PLCs for `modbus_poll`: `python -m bench.modbus_sims --count N --registers R`.

Runs N cell PLC simulators (drivers/modbus/simulator.py, CellPlcSimulator with its benchmark block of R
input registers that change every PLC scan) in this one process, each on its own free loopback port,
without mDNS. Prints `READY <json list of endpoints>`; on SIGTERM prints a RESULT line with this
process's CPU time, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from bench.common import emit_ready, emit_result
from linebridge.drivers.modbus.simulator import CellPlcSimulator


async def run(args: argparse.Namespace) -> dict:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sims = [
        CellPlcSimulator(name=f"bench-plc-{i}", seed=i, mdns=False, bench_registers=args.registers)
        for i in range(1, args.count + 1)
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
    return {"simulators": len(sims), "cpu_seconds": times.user + times.system}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.modbus_sims")
    parser.add_argument("--count", type=int, default=20, help="simulated PLCs (one port each)")
    parser.add_argument("--registers", type=int, default=100, help="benchmark input registers per PLC")
    emit_result(asyncio.run(run(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
