"""telemetry_latency: 100,000 samples/s offered, latency from the hand-off to the bus to the decoded batch.

The bench driver publishes 100 samples (100 signals x 1 row) every 1 ms and stamps every sample with
time.time_ns() at the hand-off; the subscriber, asking for a 5 ms batching window, subtracts that from
time.time_ns() after the protobuf decode (one machine clock). Baseline: a bare grpc.aio server that
produces the same stamped batches on the same timer and sends what piled up once per 5 ms window.
"""

from __future__ import annotations

from bench.harness import Context, SubscriberPlan, bench_device, measure, start_bridge, total_rate
from bench.procs import Processes

NAME = "telemetry_latency"
TARGET = "p99 <= 15 ms"
SIGNALS, RATE_HZ, WINDOW_MS = 100, 1000.0, 5.0


async def run(ctx: Context) -> dict:
    warmup, duration = ctx.seconds(3, 1), ctx.seconds(20, 3)
    async with Processes() as procs:
        raw = await procs.start(
            "latency-raw",
            "-m",
            "bench.raw_server",
            "--signals",
            str(SIGNALS),
            "--batch-samples",
            str(SIGNALS),
            "--rate-hz",
            f"{RATE_HZ:g}",
        )
        plan = SubscriberPlan(raw.endpoint, ["*"], max_latency_ms=WINDOW_MS, latency=True)
        base = await measure(procs, [plan], warmup, duration, ctx, label="latency-raw-")
    async with Processes() as procs:
        device = bench_device(signals=SIGNALS, rows_per_batch=1, rate_hz=RATE_HZ, stamp=True)
        bridge = await start_bridge(procs, "latency-bridge", [device])
        plan = SubscriberPlan(bridge.endpoint, ["bench-1/*"], max_latency_ms=WINDOW_MS, latency=True)
        win = await measure(procs, [plan], warmup, duration, ctx, bridge, "latency-")
    raw_sub, sub = base.results["subscriber"][0], win.results["subscriber"][0]
    lat, raw_lat = sub["latency"], raw_sub["latency"]
    ratio = lat["p99_ms"] / raw_lat["p99_ms"] if raw_lat["p99_ms"] else None
    return {
        "value": lat["p99_ms"],
        "unit": "ms",
        "baseline": raw_lat["p99_ms"],
        "ratio": ratio,
        "target": TARGET,
        "met": lat["p99_ms"] <= 15.0,
        "p50_ms": lat["p50_ms"],
        "p99_ms": lat["p99_ms"],
        "p999_ms": lat["p999_ms"],
        "max_ms": lat["max_ms"],
        "baseline_p50_ms": raw_lat["p50_ms"],
        "baseline_p999_ms": raw_lat["p999_ms"],
        "offered_per_s": SIGNALS * RATE_HZ,
        "delivered_per_s": total_rate([sub])[0],
        "samples": lat["samples"],
        "batching_window_ms": WINDOW_MS,
        "seconds": duration,
        "dropped": sub["subs"][0]["dropped"],
        "bridge_cpu_pct": win.bridge.get("cpu_pct"),
        "machine_cpu_pct": win.bridge.get("machine_cpu_pct"),
    }
