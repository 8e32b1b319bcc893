"""Command round trips from a client process: `python -m bench.commander --target ADDR --raw|--device ID`.

Bridge: `Execute(write setpoint)` followed to its final event, which must be SUCCEEDED. Raw: one bare
grpc.aio unary call carrying the same ExecuteRequest. One call at a time; prints a RESULT line with
p50/p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import grpc

from bench.common import emit_result, plain_percentiles
from bench.raw_server import EXECUTE
from linebridge.api import pb

_SUCCEEDED = 3  # COMMAND_STATE_SUCCEEDED
_STATES = {
    1: "QUEUED",
    2: "RUNNING",
    3: "SUCCEEDED",
    4: "FAILED",
    5: "REJECTED",
    6: "CANCELLED",
    7: "TIMED_OUT",
}


def write_request(device: str, value: float) -> pb.command.ExecuteRequest:
    req = pb.command.ExecuteRequest(device_id=device)
    req.write.writes.add(path="setpoint", value=pb.common.Value(double_value=value))
    return req


async def bridge_call(stub: pb.command_grpc.CommandServiceStub, device: str, value: float) -> None:
    last = None
    async for event in stub.Execute(write_request(device, value)):
        last = event
    if last is None or last.state != _SUCCEEDED:
        state = "no event" if last is None else _STATES.get(last.state, str(last.state))
        raise RuntimeError(f"write did not succeed: {state} {last.error.message if last else ''}")


async def run(args: argparse.Namespace) -> dict:
    async with grpc.aio.insecure_channel(args.target) as channel:
        await channel.channel_ready()
        if args.raw:
            unary = channel.unary_unary(
                EXECUTE,
                request_serializer=pb.command.ExecuteRequest.SerializeToString,
                response_deserializer=pb.command.CommandEvent.FromString,
            )

            async def call(value: float) -> None:
                await unary(write_request("raw", value))
        else:
            stub = pb.command_grpc.CommandServiceStub(channel)

            async def call(value: float) -> None:
                await bridge_call(stub, args.device, value)

        for i in range(args.warmup):
            await call(float(i % 100))
        rtts = []
        started = time.perf_counter()
        for i in range(args.count):
            t0 = time.perf_counter_ns()
            await call(float(i % 100))
            rtts.append((time.perf_counter_ns() - t0) / 1e6)
        elapsed = time.perf_counter() - started
    p50, p99 = plain_percentiles(rtts, (0.5, 0.99))
    return {
        "count": len(rtts),
        "p50_ms": p50,
        "p99_ms": p99,
        "mean_ms": sum(rtts) / len(rtts),
        "max_ms": max(rtts),
        "calls_per_s": len(rtts) / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.commander")
    parser.add_argument("--target", required=True)
    parser.add_argument("--raw", action="store_true", help="call the raw baseline server")
    parser.add_argument("--device", default="sim-1")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    emit_result(asyncio.run(run(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
