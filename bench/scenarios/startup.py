"""startup: seconds from process start of a demo-like bridge to gRPC health SERVING; idle RSS with the demo cell.

The demo cell is 3 OPC UA robot simulators (drivers/opcua/simulator.py) in their own processes,
announced over mDNS on 127.0.0.1. The bridge is the real command, `python -m linebridge.cli run -c FILE`,
with discovery on 127.0.0.1 and metrics on, as `linebridge demo` runs it; `discovery.auto_approve`
names this run's robots, so other people's simulators on 127.0.0.1 wait for approval instead. Time counts from just before
the spawn to the first SERVING answer of grpc.health.v1 (polled every 5 ms); idle RSS is read once all
3 robots are ONLINE and have streamed for a few seconds with no client attached. Baseline: the same
measure for a bare grpc.aio server process with only the health service (bench.raw_server).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
from importlib.metadata import entry_points
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.common import free_port, say
from bench.harness import Context, wait_online
from bench.procs import Child, ChildFailed, Processes
from linebridge.api import pb
from linebridge.config import DiscoveryConfig

NAME = "startup"
TARGET = "<= 1.5 s to SERVING and idle RSS <= 120 MB"
ROBOTS = 3


def simulator_args(name: str) -> list[str]:
    """`linebridge sim opcua-robot` when the entry point is installed, else the simulator module itself."""
    if any(ep.name == "opcua-robot" for ep in entry_points(group="linebridge.simulators")):
        return ["-m", "linebridge.cli", "sim", "opcua-robot", "--name", name, "--port", "0"]
    return ["-m", "linebridge.drivers.opcua.simulator", "--name", name, "--port", "0"]


async def time_to_serving(child: Child, address: str, timeout: float = 30.0) -> float:
    """Seconds from the spawn of `child` to its first SERVING health answer."""
    loop = asyncio.get_running_loop()
    host, _, port = address.rpartition(":")
    while loop.time() - child.started_at < timeout:
        if child.process.returncode is not None:
            raise ChildFailed(f"{child.name} exited with {child.process.returncode}:\n{child.log_tail()}")
        try:
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
            async with grpc.aio.insecure_channel(address) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return loop.time() - child.started_at
        except (OSError, grpc.aio.AioRpcError):
            pass
        await asyncio.sleep(0.005)
    raise ChildFailed(f"{child.name}: not SERVING within {timeout:g} s:\n{child.log_tail()}")


def bridge_config(directory: Path, grpc_port: int) -> Path:
    """The demo-like config; discovered devices are approved automatically only if they are our robots."""
    path = directory / "bridge.yaml"
    discovery: dict[str, object] = {"enabled": True, "interfaces": ["127.0.0.1"], "advertise": True}
    if "auto_approve" in DiscoveryConfig.model_fields:
        discovery["auto_approve"] = [{"name": f"bench{os.getpid()}-robot-*"}]
    path.write_text(
        yaml.safe_dump(
            {
                "bridge": {"id": f"bench-startup-{os.getpid()}", "log_level": "WARNING"},
                "grpc": {"address": f"127.0.0.1:{grpc_port}", "grace_seconds": 0.5},
                "metrics": {"enabled": True, "address": f"127.0.0.1:{free_port()}"},
                "discovery": discovery,
            }
        )
    )
    return path


async def one_bridge(procs: Processes, directory: Path, robots: list[str], settle: float, index: int) -> dict:
    port = free_port()
    config = bridge_config(directory, port)
    child = await procs.start(
        f"startup-bridge-{index}", "-m", "linebridge.cli", "run", "-c", str(config), ready=False
    )
    serving = await time_to_serving(child, f"127.0.0.1:{port}")
    loop = asyncio.get_running_loop()
    await wait_online(f"127.0.0.1:{port}", robots, timeout=60)
    online = loop.time() - child.started_at
    cpu0 = child.cpu_seconds()
    await asyncio.sleep(settle)
    result = {
        "serving_s": serving,
        "online_s": online,
        "idle_rss_mb": child.rss_mb(),
        "idle_cpu_pct": 100.0 * (child.cpu_seconds() - cpu0) / settle,
        "devices_seen": await devices_seen(f"127.0.0.1:{port}"),
    }
    await procs.stop(child)
    return result


async def devices_seen(target: str) -> int:
    """Devices the bridge has: more than ROBOTS means it also found someone else's simulators on 127.0.0.1."""
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await pb.device_grpc.DeviceServiceStub(channel).ListDevices(
            pb.device.ListDevicesRequest(omit_signals=True)
        )
    return len(reply.devices)


async def one_raw(procs: Processes, index: int) -> float:
    port = free_port()
    child = await procs.start(
        f"startup-raw-{index}", "-m", "bench.raw_server", "--port", str(port), ready=False
    )
    seconds = await time_to_serving(child, f"127.0.0.1:{port}")
    await procs.stop(child)
    return seconds


async def run(ctx: Context) -> dict:
    runs, settle = int(ctx.seconds(3, 1)), ctx.seconds(5, 2)
    names = [f"bench{os.getpid()}-robot-{i}" for i in range(1, ROBOTS + 1)]
    async with Processes() as procs:
        await asyncio.gather(*(procs.start(f"startup-sim-{n}", *simulator_args(n)) for n in names))
        say(f"  {ROBOTS} robot simulators ready")
        raw = [await one_raw(procs, i) for i in range(runs)]
        with tempfile.TemporaryDirectory(prefix="linebridge-bench-") as tmp:
            bridges = [await one_bridge(procs, Path(tmp), names, settle, i) for i in range(runs)]
    value = statistics.median(b["serving_s"] for b in bridges)
    baseline = statistics.median(raw)
    idle = max(b["idle_rss_mb"] for b in bridges)
    seen = max(b["devices_seen"] for b in bridges)
    if seen > ROBOTS:
        ctx.notes.append(f"the bridge also discovered {seen - ROBOTS} other device(s) announced on 127.0.0.1")
    return {
        "value": value,
        "unit": "s",
        "baseline": baseline,
        "ratio": value / baseline if baseline else None,
        "target": TARGET,
        "met": value <= 1.5 and idle <= 120.0,
        "idle_rss_mb": idle,
        "runs": runs,
        "serving_s_each": [b["serving_s"] for b in bridges],
        "all_online_s": statistics.median(b["online_s"] for b in bridges),
        "idle_cpu_pct": statistics.median(b["idle_cpu_pct"] for b in bridges),
        "robots": ROBOTS,
        "devices_seen": seen,
        "simulator_command": " ".join(simulator_args("NAME")[:4]),
    }
