"""analytics_overhead: 100,000 samples/s through the bus with and without analytics; alarm latency.

20 bench devices x 50 signals, 10 rows per batch at 10 batches/s each (100,000 samples/s offered), one
subscriber on `*` in its own process. The same bridge runs twice in one scenario run: analytics off
(baseline), then on with 1,000 rules (per device: 20 limits, 15 rate-of-change, 10 stale, 5 drift
detectors - 100 EWMA/CUSUM in all), a state model and OEE for every device. Value: delivered samples/s
with analytics on; ratio to off (target >= 0.8). The bridge's CPU share is reported for both.

Alarm latency: one limit rule per device (on values/0, which crosses it about once a second) raises
alarms; an alarm watcher process on WatchAlarms takes time.time_ns() after the decode minus the
alarm's raised time, which is the bus hand-off stamp of the sample that crossed (target p99 <= 50 ms).
The other rules are set not to fire, so the alarm stream is the probe's, not a storm.
"""

from __future__ import annotations

import time

from bench.harness import Context, SubscriberPlan, bench_device, measure, start_bridge, total_rate
from bench.procs import Processes

NAME = "analytics_overhead"
TARGET = "ratio >= 0.8 of the throughput without analytics; alarm p99 <= 50 ms"
DEVICES, SIGNALS, ROWS, RATE_HZ = 20, 50, 10, 10.0


def rules() -> list[dict]:
    """50 rules per device: 20 limits (one probe that fires), 15 rate, 10 stale, 5 drift (EWMA/CUSUM)."""
    out: list[dict] = [
        {
            "name": "probe_hi",
            "type": "limit",
            "kind": "hi",
            "signal": "values/0",
            "limit": 0.9,
            "severity": 600,
        }
    ]
    out += [
        {
            "name": f"hi_{i}",
            "type": "limit",
            "kind": "hi",
            "signal": f"values/{i}",
            "limit": 5.0,
            "deadband": 0.1,
        }
        for i in range(1, 20)
    ]
    out += [
        {"name": f"rate_{i}", "type": "rate", "signal": f"values/{i}", "max_rate": 1e9} for i in range(20, 35)
    ]
    out += [
        {"name": f"stale_{i}", "type": "stale", "signal": f"values/{i}", "seconds": 30} for i in range(35, 45)
    ]
    out += [
        {
            "name": f"drift_{i}",
            "type": "ewma" if i % 2 else "cusum",
            "signal": f"values/{i}",
            "target": 0.0,
            "sigma": 100.0,
        }
        for i in range(45, 50)
    ]
    return out


def analytics() -> dict:
    """The analytics section: every bench device gets the rules, a state model and OEE."""
    return {
        "publish_interval_seconds": 1.0,
        "devices": {
            "bench-*": {
                "states": [{"state": "EXECUTE", "when": [{"signal": "values/1", "gt": 0.0}]}],
                "oee": {"produced": "values/2", "pri_seconds": 1.0},
                "rules": rules(),
            }
        },
    }


async def _run_bridge(ctx: Context, label: str, with_analytics: bool, warmup: float, duration: float):
    devices = [
        bench_device(f"bench-{d}", signals=SIGNALS, rows_per_batch=ROWS, rate_hz=RATE_HZ, stamp=True)
        for d in range(1, DEVICES + 1)
    ]
    section = analytics() if with_analytics else {"enabled": False}
    async with Processes() as procs:
        bridge = await start_bridge(procs, f"{label}bridge", devices, extra={"analytics": section})
        watcher = None
        if with_analytics:
            start_at = time.time() + 1.5 + warmup
            watcher = await procs.start(
                f"{label}alarms",
                "-m",
                "bench.alarm_watcher",
                "--target",
                bridge.endpoint,
                "--start-at",
                f"{start_at:.6f}",
                "--duration",
                f"{duration:g}",
                ready=False,
            )
        plan = SubscriberPlan(bridge.endpoint, ["*"], max_latency_ms=10.0)
        win = await measure(procs, [plan], warmup, duration, ctx, bridge, label)
        alarms = await procs.result(watcher, timeout=duration + 60) if watcher is not None else None
    return win, alarms


async def run(ctx: Context) -> dict:
    warmup, duration = ctx.seconds(3, 1), ctx.seconds(20, 5)
    off, _ = await _run_bridge(ctx, "analytics-off-", False, warmup, duration)
    on, alarms = await _run_bridge(ctx, "analytics-on-", True, warmup, duration)
    baseline = total_rate(off.results["subscriber"])[0]
    value = total_rate(on.results["subscriber"])[0]
    ratio = value / baseline if baseline else 0.0
    assert alarms is not None
    return {
        "value": value,
        "unit": "samples/s",
        "baseline": baseline,
        "ratio": ratio,
        "target": TARGET,
        "met": ratio >= 0.8 and alarms["raised"] > 0 and alarms["p99_ms"] <= 50.0,
        "offered_per_s": DEVICES * SIGNALS * ROWS * RATE_HZ,
        "rules": DEVICES * len(rules()),
        "alarm_p50_ms": alarms["p50_ms"],
        "alarm_p99_ms": alarms["p99_ms"],
        "alarm_p999_ms": alarms["p999_ms"],
        "alarm_max_ms": alarms["max_ms"],
        "alarms_raised": alarms["raised"],
        "alarm_events": alarms["events"],
        "alarm_dropped": alarms["dropped"],
        "bridge_cpu_pct": on.bridge.get("cpu_pct"),
        "baseline_bridge_cpu_pct": off.bridge.get("cpu_pct"),
        "machine_cpu_pct": on.bridge.get("machine_cpu_pct"),
        "dropped": on.bridge.get("dropped_in_window"),
        "seconds": duration,
    }
