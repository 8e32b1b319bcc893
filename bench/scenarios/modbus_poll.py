"""modbus_poll: 20 simulated PLCs x 100 changing registers polled at 10 Hz -> modbus driver -> bridge -> subscriber.

One process (bench.modbus_sims) runs 20 cell PLC simulators on 20 loopback ports, each with a block
of 100 uint16 input registers that changes every 50 ms scan. The bridge has 20 static `modbus`
devices (unit 1, the simulator's benchmark map `bench_map(100, 100)` written to a map file: 100
registers in one 100 ms poll group), so
every cycle changes every value: 20,000 samples/s offered. Its request rate comes from the driver's
connection counters (bench.probe) at the window's edges. Baseline: bare pymodbus clients
(bench.modbus_baseline) sending the reads of the driver's own poll plan on the same schedule against
the same simulators, before the bridge starts. `ratio` is the driver's request rate over the
baseline's; `requests_per_cycle` and `naive_requests_per_cycle` are per device.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import yaml

from bench.harness import Context, SubscriberPlan, Window, measure, start_bridge, total_rate
from bench.procs import Child, Processes
from linebridge.drivers.modbus.planner import Limits, plan_polls
from linebridge.drivers.modbus.regmap import load_map
from linebridge.drivers.modbus.simulator import bench_map

NAME = "modbus_poll"
TARGET = "request rate >= 0.9 x bare pymodbus"
DEVICES, REGISTERS, INTERVAL_MS = 20, 100, 100


def read_blocks(mapping: dict) -> list[list[int]]:
    """[start, count] of every read the driver's planner makes per cycle for this map."""
    regmap = load_map(mapping)
    intervals = {name: regmap.group_interval(name) for name in regmap.poll_groups}
    plan = plan_polls(regmap.compiled, intervals, Limits())
    return [[block.start, block.count] for group in plan.groups for block in group.blocks]


async def baseline(
    procs: Processes, sims: Child, blocks: list[list[int]], warmup: float, duration: float
) -> dict:
    start_at = time.time() + 2.0 + warmup  # interpreter start, pymodbus import, 20 connects
    child = await procs.start(
        "modbus-raw-client",
        "-m",
        "bench.modbus_baseline",
        "--endpoints",
        sims.endpoint,
        "--blocks",
        json.dumps(blocks),
        "--interval",
        f"{INTERVAL_MS / 1000:g}",
        "--start-at",
        f"{start_at:.6f}",
        "--duration",
        f"{duration:g}",
        ready=False,
    )
    return await procs.result(child, timeout=start_at - time.time() + duration + 60)


def in_window(window_bridge: dict, key: str) -> int:
    """A counter of every device's connection (one each here), summed, over the window."""
    before, after = window_bridge["probe"]
    return sum(
        stats.get(key, 0) - before["devices"].get(device, {}).get(key, 0)
        for device, stats in after["devices"].items()
    )


async def measure_both(
    ctx: Context, map_file: str, blocks: list[list[int]], warmup: float, duration: float
) -> tuple[dict, Window, float]:
    """The baseline, then the bridge, against one set of simulators; also the simulators' CPU seconds."""
    async with Processes() as procs:
        sims = await procs.start(
            "modbus-sims", "-m", "bench.modbus_sims", "--count", str(DEVICES), "--registers", str(REGISTERS)
        )
        base = await baseline(procs, sims, blocks, warmup, duration)
        devices = [
            {
                "id": f"plc-{i}",
                "driver": "modbus",
                "endpoint": endpoint,
                "options": {"unit": 1, "map": map_file},
            }
            for i, endpoint in enumerate(json.loads(sims.endpoint), 1)
        ]
        bridge = await start_bridge(procs, "modbus-bridge", devices)
        win = await measure(
            procs, [SubscriberPlan(bridge.endpoint, ["*"])], warmup, duration, ctx, bridge, "modbus-"
        )
        return base, win, sims.cpu_seconds()


async def run(ctx: Context) -> dict:
    warmup, duration = ctx.seconds(3, 1), ctx.seconds(15, 4)
    mapping = bench_map(REGISTERS, INTERVAL_MS)
    blocks = read_blocks(mapping)
    with tempfile.TemporaryDirectory(prefix="linebridge-bench-") as tmp:
        map_file = Path(tmp) / "bench-map.yaml"
        map_file.write_text(yaml.safe_dump(mapping))
        base, win, sims_cpu = await measure_both(ctx, str(map_file), blocks, warmup, duration)
    sub = win.results["subscriber"][0]
    stats = next(iter(win.bridge["probe"][1]["devices"].values()))
    request_rate = in_window(win.bridge, "requests") / duration
    ratio = request_rate / base["request_rate"] if base["request_rate"] else 0.0
    notes = [] if not base["errors"] else [f"baseline: {base['errors']} reads answered with an exception"]
    return {
        "value": total_rate([sub])[0],
        "unit": "samples/s",
        "baseline": base["rate"],
        "ratio": ratio,
        "target": TARGET,
        "met": ratio >= 0.9,
        "request_rate": request_rate,
        "baseline_request_rate": base["request_rate"],
        "nominal_request_rate": DEVICES * len(blocks) * 1000 / INTERVAL_MS,
        "requests_per_cycle": stats.get("requests_per_cycle"),
        "naive_requests_per_cycle": stats.get("naive_requests_per_cycle"),
        "offered_per_s": DEVICES * REGISTERS * 1000 / INTERVAL_MS,
        "devices": DEVICES,
        "registers": REGISTERS,
        "interval_ms": INTERVAL_MS,
        "timeouts": in_window(win.bridge, "timeouts"),
        "baseline_overruns": base["overruns"],
        "dropped": sub["subs"][0]["dropped"],
        "bridge_cpu_pct": win.bridge.get("cpu_pct"),
        "machine_cpu_pct": win.bridge.get("machine_cpu_pct"),
        "subscriber_cpu_pct": sub.get("window_cpu_pct"),
        "baseline_client_cpu_pct": base.get("window_cpu_pct"),
        "simulators_cpu_seconds": sims_cpu,
        "notes": notes,
    }
