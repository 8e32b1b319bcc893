"""order_rtt: a VDA 5050 order accepted by the bridge -> the AGV's first state showing it (p50, p99).

One simulated AGV (`linebridge sim agv-fleet --agvs 1`, its own process) on Mosquitto. The bridge side
(bench.vda5050_rtt --mode bridge) submits one-node orders through CommandManager and stops the clock
when the driver decodes the first state with the new orderId. Baseline: a raw aiomqtt client publishing
the same order and JSON-decoding states (--mode raw). The simulator publishes a state on the next of its
50 ms ticks after an order, so both sides include up to 50 ms of simulator latency.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.harness import Context
from bench.mqtt_broker import Broker
from bench.procs import Processes

NAME = "order_rtt"
TARGET = "bridge p50 <= 1.5 x raw p50"


async def run(ctx: Context) -> dict:
    count = int(ctx.seconds(200, 40))
    with tempfile.TemporaryDirectory(prefix="linebridge-bench-") as tmp:
        async with Processes() as procs:
            broker = Broker(Path(tmp))
            await broker.start()
            try:
                await procs.start(
                    "agv-sim", "-m", "linebridge.cli", "sim", "agv-fleet", "--agvs", "1", "--broker", broker.url,
                    "--viz-hz", "0",
                )  # fmt: skip
                results = {}
                for mode in ("raw", "bridge"):
                    child = await procs.start(
                        f"rtt-{mode}", "-m", "bench.vda5050_rtt", "--mode", mode, "--port", str(broker.port),
                        "--count", str(count), ready=False,
                    )  # fmt: skip
                    results[mode] = await procs.result(child, timeout=120)
            finally:
                await broker.stop()
    bridge, raw = results["bridge"], results["raw"]
    ratio = raw["p50_ms"] / bridge["p50_ms"] if bridge["p50_ms"] else 0.0
    return {
        "value": round(bridge["p50_ms"], 2),
        "unit": "ms",
        "baseline": round(raw["p50_ms"], 2),
        "ratio": round(ratio, 3),
        "target": TARGET,
        "met": ratio >= 1 / 1.5,
        "p50_ms": round(bridge["p50_ms"], 2),
        "p99_ms": round(bridge["p99_ms"], 2),
        "raw_p99_ms": round(raw["p99_ms"], 2),
        "orders": count,
    }
