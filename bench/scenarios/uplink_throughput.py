"""uplink_throughput: samples/s from the telemetry bus to a real Mosquitto broker, Sparkplug B DDATA at QoS 0.

The bridge has one bench device (1,000 double signals x 10 rows per batch) and the uplink on, with its
defaults (report by exception, 128 KB payloads, 100 publishes/s, 64 in flight, SQLite outbox) and no
gRPC subscriber. The bench driver publishes while the uplink holds fewer than `high_water` samples
the broker has not acknowledged (pace: uplink), below the uplink's live queue limit, so data takes
the live path. The value is the uplink's `published_samples` (samples proven read by the broker: a
checkpoint PUBACK came back after them) over the window. Baseline: an independent client (paho-mqtt,
bench.mqtt_baseline) publishing full payloads of the same data, made by the same encoder, at the same
QoS (0) to the same broker under the same rate limit and in-flight cap; it counts a payload when paho
has written it. `ratio` is the bridge over the baseline with the publish-rate cap (AWS IoT's 100/s).
A second pair repeats both with the publish rate limit lifted (`unlimited_*`): that is where the
bridge's own pipeline, not AWS's limit, decides.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.harness import Context, Window, bench_device, start_bridge, until, watch_bridge
from bench.mqtt_broker import Broker
from bench.procs import Processes

NAME = "uplink_throughput"
TARGET = ">= 0.9 x paho baseline with the publish-rate cap, >= 0.5 x without it (unlimited_ratio)"
SIGNALS, ROWS = 1000, 10
ONLINE = 4  # UplinkState.ONLINE
UNLIMITED_RATE = 1e6  # publishes/s: the token bucket never waits
# Samples the bench driver lets the uplink hold unproven (~6,280 per 128 KB payload). Data is QoS 0
# and proven by a checkpoint PUBACK at most every 0.25 s while it flows (linebridge.uplink.link), so at
# the 100/s limit about 25 payloads wait for proof: the limit keeps ~64 payloads ahead (0.64 s, inside
# the live queue of max_publish_rate payloads); unlimited, the 64-payload window plus ~30 queued.
# Whatever is unproven when the outbox commits (every 1 s) is written to SQLite, so a deeper queue
# costs the bridge disk writes.
HIGH_WATER = {"limited": 400_000, "unlimited": 600_000}


async def baseline(
    procs: Processes, broker: Broker, rate: float, warmup: float, duration: float, label: str
) -> dict:
    start_at = time.time() + 2.0 + warmup  # interpreter start, encoding the payloads, connect
    child = await procs.start(
        f"{label}mqtt-raw-client",
        "-m",
        "bench.mqtt_baseline",
        "--port",
        str(broker.port),
        "--signals",
        str(SIGNALS),
        "--rows",
        str(ROWS),
        "--rate",
        f"{rate:g}",
        "--qos",
        "0",
        "--start-at",
        f"{start_at:.6f}",
        "--duration",
        f"{duration:g}",
        ready=False,
    )
    return await procs.result(child, timeout=start_at - time.time() + duration + 60)


async def bridge_run(
    procs: Processes,
    broker: Broker,
    outbox: Path,
    ctx: Context,
    warmup: float,
    duration: float,
    label: str,
    uplink: dict,
) -> dict:
    """One bridge with the uplink: published samples/s over the window, and what it cost."""
    high_water = HIGH_WATER["unlimited" if uplink else "limited"]
    device = bench_device(
        "bench-1", signals=SIGNALS, rows_per_batch=ROWS, pace="uplink", high_water=high_water
    )
    section = {
        "enabled": True,
        "broker": broker.url,
        "edge_node_id": f"bench-{label.rstrip('-')}",
        "outbox": {"path": str(outbox)},
        **uplink,
    }
    bridge = await start_bridge(procs, f"{label}bridge", [device], uplink=section)
    await until(
        bridge, lambda s: s["uplink"]["state"] == ONLINE and s["uplink"]["published_samples"], "publishing"
    )
    window = Window(time.time() + warmup, duration)
    broker_cpu0 = broker.cpu_seconds()
    stats = await watch_bridge(bridge, window, ctx, label)
    broker_cpu = 100.0 * (broker.cpu_seconds() - broker_cpu0) / (time.time() - window.start_at + warmup)
    await procs.stop(bridge)
    before, after = (s["uplink"] for s in stats["probe"])
    messages = after["published_messages"] - before["published_messages"]
    samples = after["published_samples"] - before["published_samples"]
    return {
        "rate": samples / duration,
        "messages_per_s": messages / duration,
        "samples_per_payload": samples / messages if messages else 0.0,
        "backlog_samples_end": after["backlog_samples"],
        "dropped_samples": after["dropped_samples"],
        "replayed_messages": after["replayed_messages"] - before["replayed_messages"],
        "cpu_pct": stats["cpu_pct"],
        "machine_cpu_pct": stats["machine_cpu_pct"],
        "broker_cpu_pct": broker_cpu,
    }


async def run(ctx: Context) -> dict:
    warmup, duration = ctx.seconds(3, 1), ctx.seconds(12, 3)
    short = ctx.seconds(8, 2)
    with tempfile.TemporaryDirectory(prefix="linebridge-bench-") as tmp:
        async with Processes() as procs:
            broker = Broker(Path(tmp))
            await broker.start()
            try:
                base = await baseline(procs, broker, 100.0, warmup, duration, "uplink-")
                bridge = await bridge_run(
                    procs, broker, Path(tmp) / "a.sqlite", ctx, warmup, duration, "uplink-", {}
                )
                free_base = await baseline(procs, broker, 0, warmup, short, "uplink-unlimited-")
                free = await bridge_run(
                    procs,
                    broker,
                    Path(tmp) / "b.sqlite",
                    ctx,
                    warmup,
                    short,
                    "uplink-unlimited-",
                    {"max_publish_rate": UNLIMITED_RATE},
                )
            finally:
                await broker.stop()
    value = bridge["rate"]
    ratio = value / base["rate"] if base["rate"] else 0.0
    unlimited_ratio = free["rate"] / free_base["rate"] if free_base["rate"] else 0.0
    notes = []
    if bridge["replayed_messages"] or free["replayed_messages"]:
        notes.append("some payloads went through the outbox replay (the live queue was full)")
    return {
        "value": value,
        "unit": "samples/s",
        "baseline": base["rate"],
        "ratio": ratio,
        "target": TARGET,
        "met": ratio >= 0.9 and unlimited_ratio >= 0.5,
        "messages_per_s": bridge["messages_per_s"],
        "samples_per_payload": bridge["samples_per_payload"],
        "baseline_messages_per_s": base["messages_per_s"],
        "baseline_samples_per_payload": base["samples_per_payload"],
        "payload_bytes": base["payload_bytes"],
        "max_publish_rate": 100.0,
        "unlimited_samples_per_s": free["rate"],
        "unlimited_baseline_samples_per_s": free_base["rate"],
        "unlimited_ratio": unlimited_ratio,
        "unlimited_messages_per_s": free["messages_per_s"],
        "unlimited_bridge_cpu_pct": free["cpu_pct"],
        "unlimited_baseline_client_cpu_pct": free_base.get("window_cpu_pct"),
        "dropped": bridge["dropped_samples"] + free["dropped_samples"],
        "bridge_cpu_pct": bridge["cpu_pct"],
        "machine_cpu_pct": bridge["machine_cpu_pct"],
        "broker_cpu_pct": bridge["broker_cpu_pct"],
        "baseline_client_cpu_pct": base.get("window_cpu_pct"),
        "notes": notes,
    }
