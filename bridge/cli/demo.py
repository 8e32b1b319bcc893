"""`linebridge demo`: simulators in their own processes, a bridge that discovers them, a live table."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass

from linebridge.app import BridgeApp
from linebridge.cli import demo_logistics
from linebridge.cli.runner import run_bridge, setup_logging
from linebridge.config import Config, parse_config
from linebridge.devices.catalog import DriverCatalog
from linebridge.uplink import UplinkState


@dataclass
class SimProcess:
    """One simulator child process and the endpoint it reported."""

    name: str
    process: asyncio.subprocess.Process
    endpoint: str = ""


async def start_simulator(kind: str, name: str, *args: str, ready_timeout: float = 30.0) -> SimProcess:
    """Start `linebridge sim KIND --name NAME ...` (free ports) and wait for its READY line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "linebridge.cli",
        "sim",
        kind,
        "--name",
        name,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    sim = SimProcess(name, process)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(ready_timeout):
            while not sim.endpoint:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise RuntimeError(
                        f"simulator {name} exited with {await process.wait()} before it was ready"
                    )
                if line.startswith("READY "):
                    sim.endpoint = line.split(None, 1)[1].strip()
    except BaseException:
        await stop_simulators([sim])
        raise
    return sim


async def stop_simulators(sims: list[SimProcess]) -> None:
    """SIGTERM each simulator by its pid, wait, and kill any that does not leave in time."""
    for sim in sims:
        if sim.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                sim.process.send_signal(signal.SIGTERM)
    for sim in sims:
        try:
            await asyncio.wait_for(sim.process.wait(), 10)
        except TimeoutError:
            sim.process.kill()
            await sim.process.wait()


def render(app: BridgeApp, rates: dict[str, float], sims: list[SimProcess]) -> str:
    lines = [
        f"Linebridge demo - bridge '{app.config.bridge.id}', gRPC {app.api_address}, "
        f"metrics http://127.0.0.1:{app.metrics_port}/metrics",
        "",
    ]
    width = max([len(r.id) for r in app.registry] + [10]) + 2
    lines.append(f"{'DEVICE':<{width}}{'STATE':<11}{'DRIVER':<8}{'SIGNALS':>8}{'SAMPLES/S':>12}  ENDPOINT")
    for record in sorted(app.registry, key=lambda r: r.id):
        lines.append(
            f"{record.id:<{width}}{record.state.name:<11}{record.driver:<8}{len(record.signals):>8}"
            f"{rates.get(record.id, 0.0):>12.0f}  {record.endpoint}"
        )
    if not len(app.registry):
        lines.append("(waiting for mDNS announcements ...)")
    lines += [
        "",
        uplink_line(app),
        f"subscribers {len(app.bus.subscriptions)}   simulators {len(sims)} (pids "
        f"{', '.join(str(s.process.pid) for s in sims)})",
        "",
        "Try, in another terminal:",
        f"  .venv/bin/linebridge devices --target {app.api_address}",
        f"  .venv/bin/linebridge watch --target {app.api_address} 'robot-1/axes/*/actual_position'",
        f"  .venv/bin/linebridge call --target {app.api_address} robot-1 StartProgram demo",
        f"  .venv/bin/linebridge uplink status --target {app.api_address}",
        f"  .venv/bin/linebridge fleet --target {app.api_address}   (AGVs, with --mqtt)",
        f"  .venv/bin/linebridge where BODY-001-1 --target {app.api_address}",
        f"  grpcurl -plaintext {app.api_address} list",
        "Ctrl-C stops the bridge and the simulators.",
    ]
    return "\n".join(lines)


def uplink_line(app: BridgeApp) -> str:
    """The uplink at a glance: state, broker, backlog, losses."""
    s = app.uplink_status()
    if s.state is UplinkState.DISABLED:
        return "uplink disabled"
    lost = s.dropped_samples + s.expired_samples
    return (
        f"uplink {s.state.name.lower()} ({s.broker})   backlog {s.backlog_messages} payloads, "
        f"{s.backlog_bytes / 1e6:.1f} MB, {s.backlog_samples} samples, oldest {s.oldest_age_seconds:.0f} s   "
        f"published {s.published_samples} samples   lost {lost}"
    )


async def live_table(app: BridgeApp, sims: list[SimProcess], duration: float) -> None:
    """Redraw the device table once a second (plain lines when stdout is not a terminal)."""
    tty = sys.stdout.isatty()
    last: dict[str, float] = {}
    last_time = time.monotonic()
    started = last_time
    while not duration or time.monotonic() - started < duration:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        counts = dict(app.metrics.device_samples)
        rates = {d: (n - last.get(d, 0)) / (now - last_time) for d, n in counts.items()}
        last, last_time = counts, now
        text = render(app, rates, sims)
        print(("\x1b[H\x1b[2J" if tty else "\n") + text, flush=True)


def demo_cell(args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """(simulator, name, arguments) of every device in the demo cell."""
    cell = [
        ("opcua-robot", f"robot-{i}", ["--port", "0", "--rate", f"{args.rate:g}"])
        for i in range(1, args.robots + 1)
    ]
    if args.ur:
        cell.append(("ur", "ur-1", []))
    if args.plc:
        cell.append(("modbus-plc", "plc-1", ["--port", "0"]))
    return cell


def _refusing_port() -> socket.socket:
    """A loopback port held but never listened on: connecting to it is refused, deterministically."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


async def _demo(args: argparse.Namespace) -> None:
    sims: list[SimProcess] = []
    with tempfile.TemporaryDirectory(prefix="linebridge-demo-") as workdir, _refusing_port() as nobody:
        # Without --mqtt the uplink still runs, against a port that refuses: it buffers to the outbox.
        broker = args.mqtt or f"mqtt://127.0.0.1:{nobody.getsockname()[1]}"
        if not args.mqtt:
            print(
                "no --mqtt given: the Sparkplug uplink has no broker and buffers everything to its outbox",
                flush=True,
            )
        config = parse_config(
            {
                "bridge": {"id": "demo-cell"},
                "grpc": {"address": args.grpc},
                "metrics": {"address": args.metrics},
                # The demo approves exactly the simulators it started; anything else announced waits for an admin.
                "discovery": {
                    "enabled": True,
                    "interfaces": ["127.0.0.1"],
                    "auto_approve": [{"name": name} for _, name, _ in demo_cell(args)],
                },
                "uplink": {
                    "enabled": True,
                    "broker": broker,
                    "group_id": "linebridge-demo",
                    "outbox": {"path": f"{workdir}/outbox.sqlite", "budget_bytes": 256 << 20},
                },
                "audit": {"path": f"{workdir}/audit"},  # the demo's commands are audited like any bridge's
                # AGVs (VDA 5050) need a broker: they run on the uplink's broker when there is one.
                "devices": [demo_logistics.fleet_config(args.mqtt)] if args.mqtt and args.agvs else [],
                "transport": demo_logistics.zones_config(),
            }
        )
        await _run_cell(args, config, sims)


async def _run_cell(args: argparse.Namespace, config: Config, sims: list[SimProcess]) -> None:
    try:
        starts = [start_simulator(kind, name, *sim_args) for kind, name, sim_args in demo_cell(args)]
        if args.mqtt and args.agvs:
            starts.append(
                start_simulator("agv-fleet", "agv-fleet", "--agvs", str(args.agvs), "--broker", args.mqtt)
            )
        results = await asyncio.gather(*starts, return_exceptions=True)
        sims += [r for r in results if isinstance(r, SimProcess)]
        for result in results:
            if isinstance(result, BaseException):
                raise result
        print(
            f"started {len(sims)} simulator(s); the bridge discovers them over mDNS on 127.0.0.1", flush=True
        )
        await run_bridge(
            config,
            DriverCatalog.from_entry_points(),
            while_running=lambda app: demo_logistics.alongside(
                app, live_table(app, sims, args.duration), args.agvs
            ),
        )
    finally:
        await stop_simulators(sims)


def run_demo(args: argparse.Namespace) -> int:
    setup_logging("WARNING")
    asyncio.run(_demo(args))
    print("demo stopped: bridge and simulators are gone")
    return 0
