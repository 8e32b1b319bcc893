"""ur_rtde: 10 simulated UR robots streaming RTDE at 500 Hz -> ur driver -> bridge -> gRPC subscriber.

The robots are UR simulators (drivers/ur/simulator.py) in one process (bench.ur_sims); the bridge has
10 static `ur` devices with the driver's defaults (every RTDE variable, 500 Hz, batches of at most
10 packets or 4 ms), so 5,000 packets/s of 59 samples each. Two subscriber processes ask for a 5 ms
batching window: one takes everything (`*`, the load, latency measured), one takes only
`*/controller/timestamp` and checks that every robot's controller clock advances by one 2 ms step
per packet with no step missing between the first and last value of the window.

`delivered_share` = timestamp steps received / steps expected at that subscriber (1.0 = no packet
lost anywhere: simulator, socket, driver, bus, subscriber queue). The driver's own counters (gaps,
late, out-of-order packets) come from bench.probe. `p99_ms` is latency from packet receipt by the
driver to the decoded message at the subscriber: the bench bridge runs with --receipt-stamps, which
stamps every sample with the wall-clock time its packet reached the driver (the shipped driver stamps
the controller time anchored to the first packet's receipt, which adds the simulator's jitter; the
baseline measures that jitter as `sim_jitter_p99_ms`). Baseline: bare RTDE connections
(bench.ur_baseline) to the same simulators with the same recipe, counting packets and gaps.
"""

from __future__ import annotations

import json
import time

from bench.harness import Context, SubscriberPlan, Window, bridge_notes, measure, start_bridge, total_rate
from bench.procs import Processes

NAME = "ur_rtde"
TARGET = "delivered_share 1.0 (no RTDE packet lost)"
ROBOTS, RATE_HZ, WINDOW_MS = 10, 500.0, 5.0


async def baseline(procs: Processes, endpoints: list[str], warmup: float, duration: float) -> dict:
    start_at = time.time() + 2.0 + warmup  # interpreter start, 10 handshakes
    child = await procs.start(
        "ur-raw-client",
        "-m",
        "bench.ur_baseline",
        "--endpoints",
        json.dumps(endpoints),
        "--frequency",
        f"{RATE_HZ:g}",
        "--start-at",
        f"{start_at:.6f}",
        "--duration",
        f"{duration:g}",
        ready=False,
    )
    return await procs.result(child, timeout=start_at - time.time() + duration + 60)


def stream_counters(bridge_stats: dict) -> dict[str, int]:
    """The UR drivers' stream counters summed over every robot, over the window."""
    before, after = bridge_stats["probe"]
    out: dict[str, int] = {}
    for device, stats in after["devices"].items():
        old = before["devices"].get(device, {}).get("stream", {})
        for key, value in stats.get("stream", {}).items():
            out[key] = out.get(key, 0) + value - old.get(key, 0)
    return out


async def measure_both(ctx: Context, warmup: float, duration: float) -> tuple[dict, Window, dict]:
    """The bare RTDE baseline, then the bridge, against one simulator process; also its RESULT."""
    async with Processes() as procs:
        sims = await procs.start(
            "ur-sims", "-m", "bench.ur_sims", "--count", str(ROBOTS), "--rate", f"{RATE_HZ:g}"
        )
        endpoints = json.loads(sims.endpoint)
        base = await baseline(procs, endpoints, warmup, ctx.seconds(10, 3))
        devices = [{"id": f"ur-{i}", "driver": "ur", "endpoint": e} for i, e in enumerate(endpoints, 1)]
        bridge = await start_bridge(procs, "ur-bridge", devices, receipt_stamps=True)
        ctx.notes += bridge_notes(bridge)
        plans = [
            SubscriberPlan(bridge.endpoint, ["*"], max_latency_ms=WINDOW_MS, latency=True),
            SubscriberPlan(
                bridge.endpoint,
                ["*/controller/timestamp"],
                max_latency_ms=WINDOW_MS,
                track_period=1.0 / RATE_HZ,
                name="clock",
            ),
        ]
        win = await measure(procs, plans, warmup, duration, ctx, bridge, "ur-")
        sims_result = await procs.finish(sims)
    return base, win, sims_result


async def run(ctx: Context) -> dict:
    warmup, duration = ctx.seconds(3, 1), ctx.seconds(30, 5)
    base, win, sims = await measure_both(ctx, warmup, duration)
    sub, clock = win.results["subscriber"][0], win.results["clock"][0]
    tracked = clock["tracked"]
    expected = sum(t["expected"] for t in tracked.values())
    received = sum(t["unique"] for t in tracked.values())
    share = received / expected if expected else 0.0
    counters = stream_counters(win.bridge)
    lat = sub["latency"]
    notes = []
    if len(tracked) != ROBOTS:
        notes.append(f"clock subscriber saw {len(tracked)} of {ROBOTS} robots")
    if sum(sims["cycles_skipped"]):
        notes.append(
            f"simulators skipped {sum(sims['cycles_skipped'])} cycles (their loop fell > 0.5 s behind)"
        )
    return {
        "value": share,
        "unit": "share",
        "baseline": base["delivered_share"],
        "ratio": share / base["delivered_share"] if base["delivered_share"] else None,
        "target": TARGET,
        "met": expected > 0 and received == expected and len(tracked) == ROBOTS,
        "delivered_share": share,
        "p50_ms": lat["p50_ms"],
        "p99_ms": lat["p99_ms"],
        "p999_ms": lat["p999_ms"],
        "max_ms": lat["max_ms"],
        "packets_expected": expected,
        "packets_missing": expected - received,
        "repeated_or_out_of_order": sum(t["out_of_order_or_repeated"] for t in tracked.values()),
        "driver_packets_per_s": counters.get("packets", 0) / duration,
        "driver_gaps": counters.get("gaps", 0),
        "driver_late": counters.get("late", 0),
        "driver_out_of_order": counters.get("out_of_order", 0),
        "samples_per_s": total_rate([sub])[0],
        "dropped": sub["subs"][0]["dropped"] + clock["subs"][0]["dropped"],
        "baseline_packets_per_s": base["packets_per_s"],
        "baseline_missing": base["missing"],
        "sim_jitter_p50_ms": base["jitter_p50_ms"],
        "sim_jitter_p99_ms": base["jitter_p99_ms"],
        "robots": ROBOTS,
        "rate_hz": RATE_HZ,
        "batching_window_ms": WINDOW_MS,
        "seconds": duration,
        "bridge_cpu_pct": win.bridge.get("cpu_pct"),
        "machine_cpu_pct": win.bridge.get("machine_cpu_pct"),
        "subscriber_cpu_pct": sub.get("window_cpu_pct"),
        "simulators_cpu_seconds": sims["cpu_seconds"],
        "notes": notes,
    }
