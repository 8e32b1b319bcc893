"""fanout: 10 subscribers on the same paths; per-subscriber rate as a ratio of the single-subscriber rate.

The bench driver publishes as fast as the subscribers that keep up take the data (the fullest queue
paces it), so the rate is that of the slowest subscriber. The 10 subscriptions run in 2 client
processes of 5 (each its own channel): 10 client processes would mostly measure 10 interpreters
fighting over 2 cores. The single-subscriber run uses the same driver and batch shape.
"""

from __future__ import annotations

from bench.harness import Context, SubscriberPlan, bench_device, client_cpu, measure, start_bridge, total_rate
from bench.procs import Processes

NAME = "fanout"
TARGET = "per-subscriber rate >= 0.4 x single-subscriber rate"
SIGNALS, ROWS, SUBSCRIBERS, PROCESSES = 100, 10, 10, 2


async def rates(ctx: Context, processes: int, per_process: int, label: str) -> tuple[list[float], dict]:
    warmup, duration = ctx.seconds(3, 1), ctx.seconds(10, 3)
    async with Processes() as procs:
        bridge = await start_bridge(
            procs, f"{label}bridge", [bench_device(signals=SIGNALS, rows_per_batch=ROWS)]
        )
        plan = SubscriberPlan(
            bridge.endpoint, ["bench-1/*"], processes=processes, subs_per_process=per_process
        )
        win = await measure(procs, [plan], warmup, duration, ctx, bridge, label)
    results = win.results["subscriber"]
    dropped = sum(s["dropped"] for r in results for s in r["subs"])
    return total_rate(results), {**win.bridge, "dropped": dropped, "clients_cpu_pct": client_cpu(results)}


async def run(ctx: Context) -> dict:
    single, single_info = await rates(ctx, 1, 1, "fanout-single-")
    many, info = await rates(ctx, PROCESSES, SUBSCRIBERS // PROCESSES, "fanout-10-")
    baseline = single[0]
    value = sum(many) / len(many)
    ratio = value / baseline if baseline else 0.0
    return {
        "value": value,
        "unit": "samples/s",
        "baseline": baseline,
        "ratio": ratio,
        "target": TARGET,
        "met": ratio >= 0.4,
        "subscribers": len(many),
        "min_per_subscriber": min(many),
        "max_per_subscriber": max(many),
        "aggregate_per_s": sum(many),
        "dropped": info["dropped"],
        "bridge_cpu_pct": info.get("cpu_pct"),
        "machine_cpu_pct": info.get("machine_cpu_pct"),
        "subscribers_cpu_pct": info["clients_cpu_pct"],
        "single_bridge_cpu_pct": single_info.get("cpu_pct"),
        "single_subscriber_cpu_pct": single_info["clients_cpu_pct"],
    }
