"""telemetry_throughput: bench driver -> bridge -> one gRPC subscriber in another process, samples/s.

Baseline: a bare grpc.aio server streaming pre-built TelemetryUpdate batches of the size the bridge
sends (10,000 samples of 100 double signals), read by the same subscriber code.
"""

from __future__ import annotations

from bench.harness import Context, SubscriberPlan, bench_device, client_cpu, measure, start_bridge, total_rate
from bench.procs import Processes

NAME = "telemetry_throughput"
TARGET = ">= 2,000,000 samples/s and >= 0.5 x raw gRPC"
SIGNALS, ROWS, MESSAGE_SAMPLES = 100, 10, 10_000


def met(value: float, ratio: float) -> bool:
    return value >= 2_000_000 and ratio >= 0.5


async def run(ctx: Context) -> dict:
    warmup, duration = ctx.seconds(3, 1), ctx.seconds(10, 3)
    async with Processes() as procs:
        raw = await procs.start(
            "throughput-raw",
            "-m",
            "bench.raw_server",
            "--signals",
            str(SIGNALS),
            "--batch-samples",
            str(MESSAGE_SAMPLES),
        )
        base = await measure(
            procs,
            [SubscriberPlan(raw.endpoint, ["*"], max_size=MESSAGE_SAMPLES)],
            warmup,
            duration,
            ctx,
            label="throughput-raw-",
        )
    async with Processes() as procs:
        bridge = await start_bridge(
            procs, "throughput-bridge", [bench_device(signals=SIGNALS, rows_per_batch=ROWS)]
        )
        plan = SubscriberPlan(bridge.endpoint, ["bench-1/*"], max_size=MESSAGE_SAMPLES)
        win = await measure(procs, [plan], warmup, duration, ctx, bridge, "throughput-")
    raw_sub, sub = base.results["subscriber"][0], win.results["subscriber"][0]
    baseline, value = total_rate([raw_sub])[0], total_rate([sub])[0]
    ratio = value / baseline if baseline else 0.0
    return {
        "value": value,
        "unit": "samples/s",
        "baseline": baseline,
        "ratio": ratio,
        "target": TARGET,
        "met": met(value, ratio),
        "samples_per_message": _per_message(sub),
        "baseline_samples_per_message": _per_message(raw_sub),
        "driver_batch": f"{SIGNALS} signals x {ROWS} rows = {SIGNALS * ROWS} samples",
        "dropped": sub["subs"][0]["dropped"],
        "seconds": duration,
        "bridge_cpu_pct": win.bridge.get("cpu_pct"),
        "machine_cpu_pct": win.bridge.get("machine_cpu_pct"),
        "subscriber_cpu_pct": client_cpu([sub]),
        "baseline_subscriber_cpu_pct": client_cpu([raw_sub]),
    }


def _per_message(result: dict) -> float:
    s = result["subs"][0]
    return s["samples"] / s["messages"] if s["messages"] else 0.0
