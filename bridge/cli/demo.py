"""`linebridge demo`: simulators in their own processes, a bridge that discovers them, a live table."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from linebridge.app import BridgeApp
from linebridge.cli import demo_logistics
from linebridge.cli.demo_broker import DemoBroker, find_mosquitto, start_broker
from linebridge.cli.runner import run_bridge, setup_logging
from linebridge.config import Config, parse_config
from linebridge.devices.catalog import DriverCatalog
from linebridge.uplink import UplinkState


@dataclass
class SimProcess:
    """One simulator child process, the endpoint it reported, and the task relaying its stderr."""

    name: str
    process: asyncio.subprocess.Process
    endpoint: str = ""
    relay: asyncio.Task[None] | None = None


class Shutdown:
    """Set once the demo starts stopping: from then on the simulators' complaints are not news."""

    def __init__(self) -> None:
        self.started = False

    async def relay(self, stream: asyncio.StreamReader) -> None:
        """Copy a simulator's stderr to ours until it closes, dropping it while the cell shuts down."""
        while line := await stream.readline():
            if not self.started:
                sys.stderr.write(line.decode(errors="replace"))
                sys.stderr.flush()


async def start_simulator(
    kind: str, name: str, *args: str, shutdown: Shutdown, ready_timeout: float = 60.0
) -> SimProcess:
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
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        # Its own process group: a terminal's Ctrl-C reaches the bridge only, which stops first; then the
        # demo stops the simulators (so the bridge never sees its devices die and report them offline).
        process_group=0,
    )
    assert process.stdout is not None and process.stderr is not None
    sim = SimProcess(name, process, relay=asyncio.create_task(shutdown.relay(process.stderr)))
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
        if sim.relay is not None:  # ends at EOF, once the process and anything it started are gone
            try:
                await asyncio.wait_for(sim.relay, 5)
            except TimeoutError:
                pass  # wait_for cancelled it


def render(app: BridgeApp, rates: dict[str, float], sims: list[SimProcess], uplink: Uplink) -> str:
    """The live table: devices, the uplink, the children, and what to try next."""
    lines = [
        f"Linebridge demo - bridge '{app.config.bridge.id}', gRPC {app.api_address}, "
        f"metrics http://127.0.0.1:{app.metrics_port}/metrics",
        "",
    ]
    width = max([len(r.id) for r in app.registry] + [10]) + 2
    lines.append(
        f"{'DEVICE':<{width}}{'STATE':<11}{'DRIVER':<8}{'MACHINE':<11}{'OEE':>5}{'SIGNALS':>8}{'SAMPLES/S':>12}  ENDPOINT"
    )
    for record in sorted(app.registry, key=lambda r: r.id):
        machine, oee = machine_of(app, record.id)
        lines.append(
            f"{record.id:<{width}}{record.state.name:<11}{record.driver:<8}{machine:<11}{oee:>5}"
            f"{len(record.signals):>8}{rates.get(record.id, 0.0):>12.0f}  {record.endpoint}"
        )
    if not len(app.registry):
        lines.append("(waiting for mDNS announcements ...)")
    lines += ["", *alarm_lines(app)]
    robot = sims[0].name if sims else "robot-1"
    lines += [
        "",
        uplink_line(app, uplink),
        f"subscribers {len(app.bus.subscriptions)}   simulators {len(sims)} (pids "
        f"{', '.join(str(s.process.pid) for s in sims)})",
        "",
        "Try, in another terminal:",
        f"  .venv/bin/linebridge devices --target {app.api_address}",
        f"  .venv/bin/linebridge watch --target {app.api_address} '{robot}/axes/*/actual_position'",
        f"  .venv/bin/linebridge call --target {app.api_address} {robot} StartProgram demo",
        f"  .venv/bin/linebridge uplink status --target {app.api_address}",
        f"  .venv/bin/linebridge fleet --target {app.api_address}",
        f"  .venv/bin/linebridge where BODY-001-1 --target {app.api_address}",
        f"  .venv/bin/linebridge alarms --watch --target {app.api_address}",
        f"  .venv/bin/linebridge ack {robot}/motor_3_drift --comment 'fan checked' --target {app.api_address}",
        f"  .venv/bin/linebridge oee --target {app.api_address}",
        f"  grpcurl -plaintext {app.api_address} list",
        "Ctrl-C stops the bridge and the simulators.",
    ]
    return "\n".join(lines)


def machine_of(app: BridgeApp, device_id: str) -> tuple[str, str]:
    """The device's machine state and its OEE this shift ('-' when it has no analytics)."""
    rt = app.analytics.devices.get(device_id)
    if rt is None:
        return "-", "-"
    if rt.config.oee is None:
        return rt.clock.state.name, "-"
    eff = app.analytics.efficiency_of(rt, "shift", time.time_ns())
    return rt.clock.state.name, f"{eff.oee:.0%}"


def alarm_lines(app: BridgeApp) -> list[str]:
    """Alarms of interest, highest severity first; drift detectors are marked as early warnings."""
    alarms = app.alarms.current()
    if not alarms:
        return ["alarms: none"]
    out = [f"alarms ({len(alarms)}):"]
    for a in alarms[:8]:
        state = ("ACKED" if a.acked else "ACTIVE") if a.active else "RTN-UNACK"
        early = "EARLY WARNING  " if a.name.endswith("_drift") else ""
        out.append(f"  {a.severity:>4}  {state:<9} {a.id:<28} {early}{a.message}")
    return out


def uplink_line(app: BridgeApp, uplink: Uplink | None = None) -> str:
    """The uplink at a glance: state, broker, backlog, losses."""
    s = app.uplink_status()
    if s.state is UplinkState.DISABLED:
        return "uplink disabled"
    lost = s.dropped_samples + s.expired_samples
    if uplink is not None and uplink.buffering:
        where = "no broker, buffering to disk"
    elif uplink is not None and uplink.own is not None:
        where = f"Sparkplug B to {s.broker}, the demo's own mosquitto pid {uplink.own.process.pid}"
    else:
        where = f"Sparkplug B to {s.broker}"
    return (
        f"uplink {s.state.name.lower()} ({where})   backlog {s.backlog_messages} payloads, "
        f"{s.backlog_bytes / 1e6:.1f} MB, {s.backlog_samples} samples, oldest {s.oldest_age_seconds:.0f} s   "
        f"published {s.published_samples} samples   lost {lost}"
    )


async def live_table(app: BridgeApp, sims: list[SimProcess], uplink: Uplink, duration: float) -> None:
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
        text = render(app, rates, sims, uplink)
        print(("\x1b[H\x1b[2J" if tty else "\n") + text, flush=True)


def demo_cell(args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """(simulator, name, arguments) of every device in the demo cell."""
    seed = ["--seed", str(getattr(args, "seed", 1))]
    faults = getattr(args, "faults", True)
    suffix = f"-{args.suffix}" if getattr(args, "suffix", "") else ""
    cell = [
        ("opcua-robot", f"robot-{i}{suffix}", ["--port", "0", "--rate", f"{args.rate:g}", *seed])
        for i in range(1, args.robots + 1)
    ]
    if faults and cell:  # an early warning in the first minute: robot-1's axis 3 motor heats up
        cell[0][2].extend(["--fault", "motor-drift"])
    if args.ur:
        cell.append(("ur", f"ur-1{suffix}", []))
    if args.plc:
        plc_faults = ["--fault", "starve"] if faults else []
        cell.append(("modbus-plc", f"plc-1{suffix}", ["--port", "0", *seed, *plc_faults]))
    return cell


def _refusing_port() -> socket.socket:
    """A loopback port held but never listened on: connecting to it is refused, deterministically."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Uplink:
    """Where the demo's uplink publishes: a given broker, the demo's own mosquitto, or nowhere."""

    url: str
    own: DemoBroker | None = None
    buffering: bool = False  # no broker at all: the outbox keeps everything on disk


async def _choose_uplink(args: argparse.Namespace, workdir: Path, stack: contextlib.AsyncExitStack) -> Uplink:
    if args.mqtt:
        return Uplink(args.mqtt)
    binary = find_mosquitto()
    reason = "no mosquitto binary found (apt-get install mosquitto, or pass --mqtt mqtt://host:port)"
    if binary is not None:
        try:
            own = await start_broker(binary, workdir)
        except OSError as exc:
            reason = f"{binary} would not start ({exc})"
        else:
            stack.push_async_callback(own.stop)
            print(
                f"started the demo's own MQTT broker: {binary} on {own.url} (pid {own.process.pid})",
                flush=True,
            )
            return Uplink(own.url, own)
    nobody = stack.enter_context(_refusing_port())
    # The uplink's connection attempts to this port fail by design: not news, so not logged.
    logging.getLogger("linebridge.uplink").setLevel(logging.ERROR)
    print(f"no MQTT broker: {reason}; the Sparkplug uplink buffers everything to disk instead", flush=True)
    return Uplink(f"mqtt://127.0.0.1:{nobody.getsockname()[1]}", buffering=True)


async def _demo(args: argparse.Namespace) -> None:
    sims: list[SimProcess] = []
    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="linebridge-demo-")))
        uplink = await _choose_uplink(args, workdir, stack)
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
                    "broker": uplink.url,
                    "group_id": "linebridge-demo",
                    "outbox": {"path": f"{workdir}/outbox.sqlite", "budget_bytes": 256 << 20},
                },
                "audit": {"path": f"{workdir}/audit"},  # the demo's commands are audited like any bridge's
                # VDA 5050 AGVs on the demo's broker (issue #15), with zones round the stations.
                "devices": [demo_logistics.fleet_config(uplink.url)] if _agvs(args, uplink) else [],
                "transport": demo_logistics.zones_config(),
            }
        )
        await _run_cell(args, config, sims, uplink)


async def _run_cell(args: argparse.Namespace, config: Config, sims: list[SimProcess], uplink: Uplink) -> None:
    shutdown = Shutdown()

    async def watch(app: BridgeApp) -> None:
        try:  # the logistics loop sends the AGVs orders while the table runs
            await demo_logistics.alongside(
                app, live_table(app, sims, uplink, args.duration), _agvs(args, uplink)
            )
        finally:  # Ctrl-C or --duration: the bridge stops next, then the simulators
            shutdown.started = True

    try:
        starts = [
            start_simulator(kind, name, *sim_args, shutdown=shutdown)
            for kind, name, sim_args in demo_cell(args)
        ]
        if _agvs(args, uplink):
            fleet = ("--agvs", str(args.agvs), "--broker", uplink.url)
            starts.append(start_simulator("agv-fleet", "agv-fleet", *fleet, shutdown=shutdown))
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
            while_running=watch,
        )
    finally:
        await stop_simulators(sims)


def _agvs(args: argparse.Namespace, uplink: Uplink) -> int:
    """How many simulated AGVs run: they need a broker, so none while the uplink only buffers."""
    return 0 if uplink.buffering else args.agvs


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo until Ctrl-C; the exit code."""
    setup_logging("WARNING")
    asyncio.run(_demo(args))
    print("demo stopped: bridge and simulators are gone")
    return 0
