"""An alarm watcher process: `python -m bench.alarm_watcher --target ADDR --start-at T --duration S`.

It streams WatchAlarms and, for every RAISED event that arrives inside the wall-clock window, records
time.time_ns() after the decode minus the alarm's raised time (the timestamp of the sample that crossed
the limit, stamped by the bench driver at the hand-off to the bus). Prints one RESULT line.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import grpc

from bench.common import emit_result, plain_percentiles
from linebridge.api import pb


async def watch(target: str, start_at: float, duration: float) -> dict:
    """Latencies (ms) of RAISED events in the window, and how many events and drop notices arrived."""
    latencies: list[float] = []
    events = dropped = 0
    end = start_at + duration
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb.alarm_grpc.AlarmServiceStub(channel)
        stream = stub.WatchAlarms(pb.alarm.WatchAlarmsRequest())
        try:
            async with asyncio.timeout(max(0.0, end - time.time()) + 1.0):
                async for update in stream:
                    now_ns = time.time_ns()
                    if now_ns / 1e9 >= end:
                        break
                    if now_ns / 1e9 < start_at:
                        continue
                    if update.HasField("dropped"):
                        dropped += update.dropped.events
                    elif update.HasField("event"):
                        events += 1
                        e = update.event
                        if e.change == pb.alarm.ALARM_CHANGE_RAISED:
                            latencies.append((now_ns - e.alarm.raised.ToNanoseconds()) / 1e6)
        except TimeoutError:
            pass
        finally:
            stream.cancel()
    p50, p99, p999 = plain_percentiles(latencies, (0.5, 0.99, 0.999)) if latencies else (0.0, 0.0, 0.0)
    return {
        "raised": len(latencies),
        "events": events,
        "dropped": dropped,
        "p50_ms": p50,
        "p99_ms": p99,
        "p999_ms": p999,
        "max_ms": max(latencies, default=0.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alarm_watcher")
    parser.add_argument("--target", required=True)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args(argv)
    emit_result(asyncio.run(watch(args.target, args.start_at, args.duration)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
