"""command_rtt: Execute(write setpoint) through the bridge to the sim driver, one at a time, p50/p99.

The sim device streams its default telemetry (6 signals at 100 Hz) meanwhile, as a device would.
Baseline: a bare grpc.aio unary call with the same request from the same kind of client process;
`ratio` is the bridge's p50 over the baseline's p50.
"""

from __future__ import annotations

from bench.harness import Context, start_bridge
from bench.procs import Processes

NAME = "command_rtt"
TARGET = "p50 <= 2 ms and <= 3 x raw unary"


async def calls(procs: Processes, target: str, count: int, warmup: int, raw: bool, label: str) -> dict:
    args = ["-m", "bench.commander", "--target", target, "--count", str(count), "--warmup", str(warmup)]
    child = await procs.start(label, *args, *(["--raw"] if raw else ["--device", "sim-1"]), ready=False)
    return await procs.result(child, timeout=120)


async def run(ctx: Context) -> dict:
    count, warmup = int(ctx.seconds(3000, 300)), int(ctx.seconds(300, 50))
    async with Processes() as procs:
        raw = await procs.start("rtt-raw", "-m", "bench.raw_server")
        base = await calls(procs, raw.endpoint, count, warmup, True, "rtt-raw-commander")
    async with Processes() as procs:
        device = {"id": "sim-1", "driver": "sim", "endpoint": "sim://sim-1", "options": {}}
        bridge = await start_bridge(procs, "rtt-bridge", [device])
        cpu0 = bridge.cpu_seconds()
        res = await calls(procs, bridge.endpoint, count, warmup, False, "rtt-commander")
        bridge_cpu_per_call_us = (bridge.cpu_seconds() - cpu0) / (count + warmup) * 1e6
    ratio = res["p50_ms"] / base["p50_ms"] if base["p50_ms"] else 0.0
    return {
        "value": res["p50_ms"],
        "unit": "ms",
        "baseline": base["p50_ms"],
        "ratio": ratio,
        "target": TARGET,
        "met": res["p50_ms"] <= 2.0 and ratio <= 3.0,
        "p50_ms": res["p50_ms"],
        "p99_ms": res["p99_ms"],
        "mean_ms": res["mean_ms"],
        "max_ms": res["max_ms"],
        "baseline_p99_ms": base["p99_ms"],
        "calls": res["count"],
        "calls_per_s": res["calls_per_s"],
        "bridge_cpu_us_per_call": bridge_cpu_per_call_us,
    }
