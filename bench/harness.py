"""What scenarios share: the run context, the bridge process, subscriber processes, counters, profiling."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil

from bench import probe
from bench.common import say
from bench.probe import PROBE_PREFIX
from bench.procs import Child, ChildFailed, Processes
from linebridge.api import pb

ONLINE = 3  # DEVICE_STATE_ONLINE


@dataclass
class Context:
    """How a scenario should run: briefly (--quick) or fully, and whether to profile the bridge."""

    quick: bool
    profile_dir: Path | None = None
    profile_native: bool = False  # py-spy --native: C frames too, but it pauses the process per sample
    notes: list[str] = field(default_factory=list)

    def seconds(self, full: float, quick: float) -> float:
        return quick if self.quick else full


def bench_device(device_id: str = "bench-1", **options: object) -> dict:
    return {"id": device_id, "driver": "bench", "endpoint": f"bench://{device_id}", "options": options}


async def start_bridge(
    procs: Processes,
    name: str,
    devices: list[dict],
    queue_samples: int = 200_000,
    uplink: dict | None = None,
    receipt_stamps: bool = False,
    online_timeout: float = 60.0,
    extra: dict | None = None,
) -> Child:
    """A bridge process (bench.bridge_proc) with `devices`, once all of them are ONLINE.

    `extra` holds more config sections (e.g. `analytics`), merged into the bench config.
    """
    sections = extra
    extra = ["--uplink", json.dumps(uplink)] if uplink else []
    extra += ["--sections", json.dumps(sections)] if sections else []
    extra += ["--receipt-stamps"] if receipt_stamps else []
    child = await procs.start(
        name,
        "-m",
        "bench.bridge_proc",
        "--devices",
        json.dumps(devices),
        "--queue-samples",
        str(queue_samples),
        *extra,
    )
    await wait_online(child.endpoint, [d["id"] for d in devices], online_timeout)
    return child


def bridge_notes(bridge: Child) -> list[str]:
    """The `NOTE ...` lines a bench bridge printed before READY (instruments it could not set up)."""
    return [line.removeprefix("NOTE ").strip() for line in bridge.extra if line.startswith("NOTE ")]


def probe_address(bridge: Child) -> str:
    """The host:port of the bench bridge's probe (bench.probe), from the line it printed before READY."""
    for line in bridge.extra:
        if line.startswith(PROBE_PREFIX):
            return line.removeprefix(PROBE_PREFIX).strip()
    raise RuntimeError(f"{bridge.name} printed no {PROBE_PREFIX.strip()} line")


async def snapshot(bridge: Child) -> dict:
    """Driver counters and uplink status of a bench bridge, now."""
    return await probe.read(probe_address(bridge))


async def until(
    bridge: Child, condition: Callable[[dict], object], what: str, timeout: float = 60.0, every: float = 0.05
) -> dict:
    """Poll the bridge's probe until `condition(snapshot)` holds; returns that snapshot."""
    end = time.monotonic() + timeout
    while True:
        snap = await snapshot(bridge)
        if condition(snap):
            return snap
        if bridge.process.returncode is not None:
            raise ChildFailed(f"{bridge.name} exited with {bridge.process.returncode}:\n{bridge.log_tail()}")
        if time.monotonic() > end:
            raise RuntimeError(f"{bridge.name}: not {what} after {timeout:g} s (uplink: {snap['uplink']})")
        await asyncio.sleep(every)


async def wait_online(target: str, device_ids: list[str], timeout: float = 60.0) -> None:
    """Poll ListDevices until every device in `device_ids` is ONLINE."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb.device_grpc.DeviceServiceStub(channel)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        states: dict[str, int] = {}
        while loop.time() < end:
            reply = await stub.ListDevices(pb.device.ListDevicesRequest(omit_signals=True))
            states = {d.id: d.state for d in reply.devices}
            if all(states.get(d) == ONLINE for d in device_ids):
                return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"devices not ONLINE after {timeout:g} s: {states}")


async def bridge_info(target: str) -> pb.bridge.GetInfoResponse:
    async with grpc.aio.insecure_channel(target) as channel:
        return await pb.bridge_grpc.BridgeServiceStub(channel).GetInfo(pb.bridge.GetInfoRequest())


@dataclass
class SubscriberPlan:
    """Subscriber processes to start against one target, and what they ask for."""

    target: str
    paths: list[str]
    processes: int = 1
    subs_per_process: int = 1
    max_latency_ms: float = 10.0
    max_size: int = 10_000
    latency: bool = False
    stall: bool = False
    track_period: float = 0.0  # check clock signals for missing steps (bench.subscriber --track-period)
    name: str = "subscriber"

    def args(self, start_at: float, duration: float) -> list[str]:
        out = [
            "-m",
            "bench.subscriber",
            "--target",
            self.target,
            "--paths",
            *self.paths,
            "--subs",
            str(self.subs_per_process),
            "--start-at",
            f"{start_at:.6f}",
            "--duration",
            f"{duration:g}",
            "--max-latency-ms",
            f"{self.max_latency_ms:g}",
            "--max-size",
            str(self.max_size),
        ]
        out += ["--track-period", f"{self.track_period!r}"] if self.track_period else []
        return out + (["--latency"] if self.latency else []) + (["--stall"] if self.stall else [])


@dataclass
class Window:
    """A measurement window: when it starts and ends (epoch seconds) and what was seen during it."""

    start_at: float
    duration: float
    results: dict[str, list[dict]] = field(default_factory=dict)  # plan name -> one result per process
    bridge: dict = field(default_factory=dict)


async def measure(
    procs: Processes,
    plans: list[SubscriberPlan],
    warmup: float,
    duration: float,
    ctx: Context,
    bridge: Child | None = None,
    label: str = "",
) -> Window:
    """Start every plan's processes, let them warm up, measure `duration` s, collect their RESULT lines."""
    count = sum(p.processes for p in plans)
    start_at = time.time() + 1.0 + 0.35 * count + warmup  # process start-up, then warm-up
    window = Window(start_at, duration)
    children: list[tuple[str, Child]] = []
    for plan in plans:
        for i in range(plan.processes):
            child = await procs.start(f"{label}{plan.name}-{i}", *plan.args(start_at, duration), ready=False)
            children.append((plan.name, child))
    watch = asyncio.create_task(watch_bridge(bridge, window, ctx, label)) if bridge is not None else None
    for name, child in children:
        result = await procs.result(child, timeout=start_at - time.time() + duration + 60)
        window.results.setdefault(name, []).append(result)
        if time.time() < start_at:
            raise RuntimeError(f"{child.name} finished before its window opened")
        if any(s["samples"] and s["total_received"] <= s["samples"] for s in result["subs"]):
            ctx.notes.append(f"{label}{name}: a subscription was not streaming before the window opened")
    if watch is not None:
        window.bridge = await watch
    return window


async def watch_bridge(bridge: Child, window: Window, ctx: Context, label: str) -> dict:
    """The bridge's CPU share, RSS, GetInfo counters and probe snapshots over the window (and a profile when asked)."""
    await asyncio.sleep(max(0.0, window.start_at - time.time()))
    proc = psutil.Process(bridge.pid)
    probed = any(line.startswith(PROBE_PREFIX) for line in bridge.extra)
    snap0 = await snapshot(bridge) if probed else None
    info0, cpu0, sys0 = await bridge_info(bridge.endpoint), bridge.cpu_seconds(), psutil.cpu_times()
    rss = [bridge.rss_mb()]
    profiler = await start_profile(bridge, window.duration, ctx, label) if ctx.profile_dir else None
    end = window.start_at + window.duration
    while time.time() < end - 0.05:
        await asyncio.sleep(min(1.0, max(0.0, end - time.time())))
        rss.append(proc.memory_info().rss / 2**20)
    info1, cpu1, sys1 = await bridge_info(bridge.endpoint), bridge.cpu_seconds(), psutil.cpu_times()
    snap1 = await snapshot(bridge) if probed else None
    if profiler is not None:
        await profiler.wait()
    busy = (sum(sys1) - sys1.idle) - (sum(sys0) - sys0.idle)
    seconds = window.duration
    return {
        "cpu_pct": 100.0 * (cpu1 - cpu0) / seconds,
        "machine_cpu_pct": 100.0 * busy / seconds,  # all processes, all cores (200 % = both cores busy)
        "rss_mb_start": rss[0],
        "rss_mb_end": rss[-1],
        "rss_mb_max": max(rss),
        "samples_in_per_s": (info1.samples_in - info0.samples_in) / seconds,
        "samples_out_per_s": (info1.samples_out - info0.samples_out) / seconds,
        "dropped_in_window": info1.samples_dropped - info0.samples_dropped,
        "probe": [snap0, snap1],  # bench.probe snapshots at the window's edges (None without a probe)
    }


async def start_profile(
    bridge: Child, duration: float, ctx: Context, label: str
) -> asyncio.subprocess.Process | None:
    """py-spy record of the bridge process for the window, as collapsed stacks (see bench.profile)."""
    spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if spy is None or ctx.profile_dir is None:
        say("  py-spy not found: no profile")
        return None
    ctx.profile_dir.mkdir(parents=True, exist_ok=True)
    out = ctx.profile_dir / f"{label.rstrip('-') or 'bridge'}{'-native' if ctx.profile_native else ''}.txt"
    say(f"  profiling bridge pid {bridge.pid} -> {out}")
    mode = ["--native"] if ctx.profile_native else ["--nonblocking"]
    return await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(bridge.pid),
        "--duration",
        str(max(1, int(duration))),
        "--rate",
        "250",
        "--format",
        "raw",
        *mode,
        "-o",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def total_rate(results: list[dict]) -> list[float]:
    """Per-subscription rates over every process of a plan."""
    return [r for result in results for r in result["rates"]]


def client_cpu(results: list[dict]) -> float:
    """Summed CPU use of a plan's client processes inside the window, percent of one core."""
    return sum(r.get("window_cpu_pct", 0.0) for r in results)
