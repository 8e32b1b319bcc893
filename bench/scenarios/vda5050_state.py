"""vda5050_state: 200 AGVs at 10 Hz visualization + 1 Hz state through one Mosquitto, decoded into batches.

A publisher process (bench.vda5050_fleet) plays 200 AGVs. The bridge side (bench.vda5050_receiver
--mode bridge) is a BridgeApp with one `vda5050` fleet device: every message is decoded with the
typed msgspec models and handed to the bus as a columnar batch. Baseline: a raw aiomqtt client that
receives the same way and only JSON-decodes (--mode raw), subscribed at the same time to the same
messages, so both see the same machine load (the machine is shared).
Value: samples/s into the bus; ratio: the bridge's messages/s over the raw client's (the offered load
is fixed, so a ratio below 1 means messages were lost or fell behind); `lost` counts messages the
publisher sent that a receiver never saw (target 0; each receiver drains until 2 s pass without a
message), `late` those that arrived more than 3 s after the window (the receiver fell behind). CPU
shares are each receiver's process.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.harness import Context
from bench.mqtt_broker import Broker
from bench.procs import Processes

NAME = "vda5050_state"
TARGET = "ratio >= 0.7 and no message lost"
AGVS = 200


async def one_run(procs: Processes, broker: Broker, duration: float) -> dict[str, dict]:
    """One publisher, both receivers subscribed at once: the same messages under the same machine load."""
    start_at = time.time() + 15.0  # the bridge needs a few seconds to attach 200 AGVs
    until = start_at + duration + 3.0
    common = [
        "--port",
        str(broker.port),
        "--agvs",
        str(AGVS),
        "--start-at",
        f"{start_at:.6f}",
        "--duration",
        f"{duration:g}",
    ]
    fleet = await procs.start("vda-fleet", "-m", "bench.vda5050_fleet", *common)
    receivers = {
        mode: await procs.start(
            f"vda-{mode}",
            "-m",
            "bench.vda5050_receiver",
            "--mode",
            mode,
            *common,
            "--until",
            f"{until:.6f}",
            timeout=60,
        )
        for mode in ("raw", "bridge")
    }
    if time.time() > start_at:
        raise RuntimeError("the receivers were not ready before the window opened")
    sent = await procs.result(fleet, timeout=until - time.time() + 30)
    results = {}
    for mode, child in receivers.items():
        got = await procs.result(child, timeout=until - time.time() + 60)
        results[mode] = {
            "received": got["messages"],
            "lost": sent["messages"] - got["messages"],
            "late": got["messages"] - got["messages_at_until"],  # arrived > 3 s after the window
            "messages_per_s": got["window_messages"] / duration,
            "samples_per_s": got["window_samples"] / duration,
            "cpu_pct": got["cpu_pct"],
            "bad": got["bad"],
        }
    results["publisher"] = {
        "sent": sent["messages"],
        "late_s": round(sent["finished_at"] - 0.5 - (start_at + duration), 2),
    }
    return results


async def run(ctx: Context) -> dict:
    duration = ctx.seconds(20, 5)
    with tempfile.TemporaryDirectory(prefix="linebridge-bench-") as tmp:
        async with Processes() as procs:
            broker = Broker(Path(tmp))
            await broker.start()
            try:
                results = await one_run(procs, broker, duration)
            finally:
                await broker.stop()
    raw, bridge = results["raw"], results["bridge"]
    ratio = bridge["messages_per_s"] / raw["messages_per_s"] if raw["messages_per_s"] else 0.0
    return {
        "value": round(bridge["samples_per_s"]),
        "unit": "samples/s",
        "baseline": round(raw["messages_per_s"]),
        "baseline_unit": "messages/s JSON-decoded",
        "ratio": round(ratio, 3),
        "target": TARGET,
        "met": ratio >= 0.7 and bridge["lost"] == 0,
        "bridge_messages_per_s": round(bridge["messages_per_s"]),
        "sent": results["publisher"]["sent"],
        "publisher_late_s": results["publisher"]["late_s"],
        "bridge_lost": bridge["lost"],
        "raw_lost": raw["lost"],
        "bridge_late": bridge["late"],
        "raw_late": raw["late"],
        "bridge_cpu_pct": round(bridge["cpu_pct"], 1),
        "raw_cpu_pct": round(raw["cpu_pct"], 1),
        "bridge_bad_messages": bridge["bad"],
        "agvs": AGVS,
    }
