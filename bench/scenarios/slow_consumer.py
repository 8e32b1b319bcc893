"""slow_consumer: 5 normal subscribers and 1 that subscribes, reads up to sync and stops reading.

One bridge, the 5 normal subscriptions stream throughout, and three windows follow each other: A1
without the stalled subscriber, B with it (60 s in a full run, 10 s quick), A2 after it left. `ratio`
is the normal subscribers' mean rate in B over their mean rate in A1 and A2, so drift in the machine's
load (it is shared) hits both sides alike. The bench driver is paced by the subscriptions that keep up
(one that has dropped samples or sat at its high-water mark no longer paces it), so the stalled one can
only cost the others what the bridge spends on it. `rss_growth_mb` is the bridge's RSS at the end of B
minus at its start; the stalled subscriber's queue is bounded, so it should stay flat.
"""

from __future__ import annotations

import asyncio
import time

from bench.harness import Context, SubscriberPlan, Window, bench_device, start_bridge, watch_bridge
from bench.procs import Processes

NAME = "slow_consumer"
TARGET = "ratio >= 0.9 and RSS growth <= 50 MB"
SIGNALS, ROWS, NORMAL = 100, 10, 5


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


async def run(ctx: Context) -> dict:
    warmup, side, stalled_s, settle = (
        ctx.seconds(3, 1),
        ctx.seconds(15, 3),
        ctx.seconds(60, 10),
        ctx.seconds(2, 1),
    )
    async with Processes() as procs:
        bridge = await start_bridge(
            procs, "slow-bridge", [bench_device(signals=SIGNALS, rows_per_batch=ROWS)]
        )
        rss_before = bridge.rss_mb()
        a1 = time.time() + 2.0 + warmup
        stall_at = a1 + side
        b = stall_at + settle
        a2 = b + stalled_s + settle
        normal = SubscriberPlan(bridge.endpoint, ["bench-1/*"], subs_per_process=NORMAL)
        stalled = SubscriberPlan(bridge.endpoint, ["bench-1/*"], stall=True)
        normal_child = await procs.start(
            "slow-normal",
            *normal.args(b, stalled_s),
            "--also",
            f"{a1:.6f}",
            f"{side:g}",
            "--also",
            f"{a2:.6f}",
            f"{side:g}",
            ready=False,
        )
        stalled_child = await procs.start(
            "slow-stalled", *stalled.args(b, stalled_s), "--subscribe-at", f"{stall_at:.6f}", ready=False
        )
        watch = asyncio.create_task(watch_bridge(bridge, Window(b, stalled_s), ctx, "slow-"))
        res = await procs.result(normal_child, timeout=a2 + side - time.time() + 60)
        stall_res = await procs.result(stalled_child, timeout=60)
        info = await watch
    before, after = res["extra"][0]["rates"], res["extra"][1]["rates"]
    baseline, value = mean(before + after), mean(res["rates"])
    ratio = value / baseline if baseline else 0.0
    growth = info["rss_mb_end"] - info["rss_mb_start"]
    return {
        "value": value,
        "unit": "samples/s",
        "baseline": baseline,
        "ratio": ratio,
        "target": TARGET,
        "met": ratio >= 0.9 and growth <= 50.0,
        "rss_growth_mb": growth,
        "rss_growth_seconds": stalled_s,
        "rss_mb_start": info["rss_mb_start"],
        "rss_mb_end": info["rss_mb_end"],
        "rss_mb_max": info["rss_mb_max"],
        "rss_mb_before_subscribers": rss_before,
        "rate_before": mean(before),
        "rate_after": mean(after),
        "min_per_subscriber": min(res["rates"]),
        "normal_dropped": sum(s["dropped"] for s in res["subs"]),
        "bridge_dropped_in_window": info["dropped_in_window"],
        "stalled_received": stall_res["subs"][0]["total_received"],
        "bridge_cpu_pct": info.get("cpu_pct"),
        "machine_cpu_pct": info.get("machine_cpu_pct"),
    }
