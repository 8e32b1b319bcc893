"""uplink_replay: seconds to drain a backlog of 1,000,000 samples from the outbox after the broker returns.

The bridge starts with the uplink pointed at a free loopback port where no broker listens yet; one
bench device (1,000 double signals x 10 rows per batch, 100 batches/s) publishes exactly 1,000,000
samples and stops, so they all go to the SQLite outbox as historical DDATA bodies. Once the outbox
holds all of them, Mosquitto starts on that port; the value is the time from the broker accepting
connections to the uplink's backlog reaching zero with every sample acknowledged (probe polled every
20 ms). The uplink reconnects with backoff capped at 1 s here (`reconnect_max_seconds`; the default
is 30 s, which alone could exceed the target after a long outage), so the time includes up to ~1 s of
reconnect wait; `drain_after_connect_s` leaves it out. Defaults otherwise: 128 KB payloads and 100
publishes/s, which alone need backlog messages / 100 s (`rate_limit_floor_s`). Baseline: an
independent paho-mqtt client (bench.mqtt_baseline --messages) publishing as many full payloads of the
same data at the same QoS (0) under the same limits, timed from the start of its connect to its last
publish. Full runs repeat 3 times and report the median.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import free_port
from bench.harness import Context, bench_device, snapshot, start_bridge, until
from bench.mqtt_broker import Broker
from bench.procs import Processes

NAME = "uplink_replay"
TARGET = "<= 10 s to drain 1,000,000 samples after the broker returns"
BACKLOG, SIGNALS, ROWS, RATE_HZ, RATE_LIMIT = 1_000_000, 1000, 10, 100.0, 100.0


async def drain(procs: Processes, workdir: Path, index: int) -> dict:
    """One outage: fill the outbox with the broker away, bring the broker back, time the drain."""
    broker = Broker(workdir, free_port())
    device = bench_device(
        "bench-1", signals=SIGNALS, rows_per_batch=ROWS, rate_hz=RATE_HZ, total_samples=BACKLOG
    )
    section = {
        "enabled": True,
        "broker": broker.url,
        "edge_node_id": f"bench-replay-{index}",
        "reconnect_initial_seconds": 0.2,
        "reconnect_max_seconds": 1.0,
        "outbox": {"path": str(workdir / f"outbox-{index}.sqlite")},
    }
    bridge = await start_bridge(procs, f"replay-bridge-{index}", [device], uplink=section)
    filling = time.time()
    full = await until(
        bridge, lambda s: s["uplink"]["backlog_samples"] >= BACKLOG, "holding the backlog", every=0.1
    )
    filled_s = time.time() - filling
    try:
        returned = await broker.start()
        connected = None
        while True:
            snap = await snapshot(bridge)
            if connected is None and snap["uplink"]["connects"]:
                connected = snap["time"]
            if snap["uplink"]["backlog_samples"] == 0 and snap["uplink"]["published_samples"] >= BACKLOG:
                break
            if time.time() - returned > 120:
                raise RuntimeError(f"backlog not drained 120 s after the broker returned: {snap['uplink']}")
            await asyncio.sleep(0.02)
        cpu = bridge.cpu_seconds()
        await procs.stop(bridge)
    finally:
        await broker.stop()
    up = full["uplink"]
    return {
        "drain_s": snap["time"] - returned,
        "drain_after_connect_s": snap["time"] - (connected or returned),
        "reconnect_s": (connected or returned) - returned,
        "messages": up["backlog_messages"],
        "backlog_bytes": up["backlog_bytes"],
        "published_samples": snap["uplink"]["published_samples"],
        "resent_samples": snap["uplink"]["resent_samples"],
        "dropped": up["dropped_samples"],
        "fill_s": filled_s,
        "bridge_cpu_seconds": cpu,
    }


async def baseline(procs: Processes, workdir: Path, messages: int) -> dict:
    broker = Broker(workdir, free_port())
    await broker.start()
    try:
        child = await procs.start(
            "replay-mqtt-raw-client",
            "-m",
            "bench.mqtt_baseline",
            "--port",
            str(broker.port),
            "--signals",
            str(SIGNALS),
            "--rows",
            str(ROWS),
            "--rate",
            f"{RATE_LIMIT:g}",
            "--messages",
            str(messages),
            "--historical",
            ready=False,
        )
        return await procs.result(child, timeout=120)
    finally:
        await broker.stop()


async def run(ctx: Context) -> dict:
    runs = int(ctx.seconds(3, 1))
    with tempfile.TemporaryDirectory(prefix="linebridge-bench-") as tmp:
        async with Processes() as procs:
            drains = [await drain(procs, Path(tmp), i) for i in range(runs)]
            base = await baseline(procs, Path(tmp), drains[0]["messages"])
    value = statistics.median(d["drain_s"] for d in drains)
    notes = (
        []
        if all(d["published_samples"] == BACKLOG for d in drains)
        else [f"published {[d['published_samples'] for d in drains]} samples, expected {BACKLOG} each"]
    )
    return {
        "value": value,
        "unit": "s",
        "baseline": base["seconds"],
        "ratio": value / base["seconds"],
        "target": TARGET,
        "met": value <= 10.0,
        "drain_after_connect_s": statistics.median(d["drain_after_connect_s"] for d in drains),
        "reconnect_s": statistics.median(d["reconnect_s"] for d in drains),
        "drain_s_each": [d["drain_s"] for d in drains],
        "runs": runs,
        "backlog_samples": BACKLOG,
        "backlog_messages": drains[0]["messages"],
        "backlog_mb": drains[0]["backlog_bytes"] / 2**20,
        "rate_limit_floor_s": drains[0]["messages"] / RATE_LIMIT,
        "baseline_messages": base["messages"],
        "baseline_samples": base["samples"],
        "samples_per_s": BACKLOG / statistics.median(d["drain_after_connect_s"] for d in drains),
        "dropped": sum(d["dropped"] for d in drains),
        "resent_samples": sum(d["resent_samples"] for d in drains),
        "fill_s": statistics.median(d["fill_s"] for d in drains),
        "notes": notes,
    }
