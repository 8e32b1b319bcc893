"""opcua_ingest: an OPC UA server process with 1,000 changing variables -> bridge -> gRPC subscriber.

The bench server (bench.opcua_server) writes all 1,000 Double variables 10 times a second: 10,000
samples/s offered, a load one Python server process sustains with room to spare, so both runs see the
same offer. The bridge's opcua driver (a static device entry, browse root the server's Bench folder)
subscribes with its default 100 ms publishing interval and the device's 10 ms sampling interval.
Baseline: a bare asyncua client with the same subscription settings counting data changes.
"""

from __future__ import annotations

import time

from bench.harness import Context, SubscriberPlan, measure, start_bridge, total_rate
from bench.opcua_server import FOLDER
from bench.procs import Processes

NAME = "opcua_ingest"
TARGET = ">= 0.8 x raw asyncua client"
VARIABLES, RATE_HZ, PUBLISHING, SAMPLING = 1000, 10.0, 0.1, 0.01


async def baseline(procs: Processes, endpoint: str, warmup: float, duration: float) -> dict:
    start_at = time.time() + 5.0 + warmup  # connect, browse 1,000 children, create 1,000 monitored items
    child = await procs.start(
        "opcua-raw-client",
        "-m",
        "bench.opcua_baseline",
        "--endpoint",
        endpoint,
        "--start-at",
        f"{start_at:.6f}",
        "--duration",
        f"{duration:g}",
        "--publishing-interval",
        f"{PUBLISHING:g}",
        "--sampling-interval",
        f"{SAMPLING:g}",
        ready=False,
    )
    return await procs.result(child, timeout=start_at - time.time() + duration + 60)


async def run(ctx: Context) -> dict:
    warmup, duration = ctx.seconds(3, 2), ctx.seconds(15, 4)
    async with Processes() as procs:
        server = await procs.start(
            "opcua-server",
            "-m",
            "bench.opcua_server",
            "--variables",
            str(VARIABLES),
            "--rate-hz",
            f"{RATE_HZ:g}",
        )
        base = await baseline(procs, server.endpoint, warmup, duration)
        device = {
            "id": "opcua-1",
            "driver": "opcua",
            "endpoint": server.endpoint,
            "sampling_interval": SAMPLING,
            "options": {"browse_root": FOLDER, "publishing_interval": PUBLISHING},
        }
        connect_started = time.monotonic()
        bridge = await start_bridge(procs, "opcua-bridge", [device])
        online_s = time.monotonic() - connect_started
        win = await measure(
            procs, [SubscriberPlan(bridge.endpoint, ["opcua-1/*"])], warmup, duration, ctx, bridge, "opcua-"
        )
        offered = await procs.finish(server)
    sub = win.results["subscriber"][0]
    value = total_rate([sub])[0]
    ratio = value / base["rate"] if base["rate"] else 0.0
    notes = (
        []
        if base["total_received"] > base["samples"]
        else ["baseline client was not streaming before its window"]
    )
    return {
        "value": value,
        "unit": "samples/s",
        "baseline": base["rate"],
        "ratio": ratio,
        "target": TARGET,
        "met": ratio >= 0.8,
        "offered_per_s": offered["writes_per_s"],
        "server_late_ticks": offered["late_ticks"],
        "variables": VARIABLES,
        "change_rate_hz": RATE_HZ,
        "baseline_variables": base["variables"],
        "bridge_start_to_online_s": online_s,
        "dropped": sub["subs"][0]["dropped"],
        "bridge_cpu_pct": win.bridge.get("cpu_pct"),
        "machine_cpu_pct": win.bridge.get("machine_cpu_pct"),
        "subscriber_cpu_pct": sub.get("window_cpu_pct"),
        "baseline_client_cpu_pct": base.get("window_cpu_pct"),
        "notes": notes,
    }
