"""What a scenario's steps act on: each device's link (fault proxies), its process, its mDNS
announcement, and the uplink's Mosquitto broker."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from linebridge.drivers.mdns import Advertiser
from linebridge.errors import ConfigError
from linebridge.hil.proxy import Fault, FaultProxy
from linebridge.hil.scenario import Step, StepKind
from linebridge.hil.sim_process import SimProcess

ANNOUNCEABLE = ("opcua", "modbus", "ur")  # drivers whose simulator's announcement the runner can make


def mdns_instance(device: str) -> str:
    """The instance name the runner announces a device under: unique to this run (other processes on the
    machine announce `robot-1` too), and a valid bridge device id."""
    return f"{device}-hil{os.getpid()}"


def announcement(driver: str, link: Link, options: dict[str, object]) -> tuple[int, dict[str, str]]:
    """The SRV port and TXT records the device's simulator announces, with every port its proxy's
    (what each driver's `from_mdns` reads: OPC UA path/caps, Modbus unit/map, UR dashboard/secondary)."""
    ports = {key: proxy.port for key, proxy in link.proxies.items()}
    if driver == "opcua":
        from linebridge.drivers.opcua.simulator import CAPABILITIES  # noqa: PLC0415

        return ports[""], {"path": urlsplit(link.target).path or "/", "caps": CAPABILITIES}
    if driver == "modbus":
        from linebridge.drivers.modbus.simulator import MAP_NAME  # noqa: PLC0415

        txt = {"unit": str(options.get("unit", 1)), "map": str(options.get("map", MAP_NAME))}
        return ports[""], txt
    if driver == "ur":
        return ports["rtde"], {"dashboard": str(ports["dashboard"]), "secondary": str(ports["secondary"])}
    raise ConfigError(f"the runner cannot announce a {driver!r} device over mDNS ({', '.join(ANNOUNCEABLE)})")


@dataclass
class Announced:
    """A device the runner announces over mDNS at its link's proxy."""

    driver: str
    service_type: str
    options: dict[str, object]
    advertiser: Advertiser | None = None

    def advertise(self, device: str, link: Link) -> Advertiser:
        """The advertiser for the link's current proxies (not started)."""
        port, txt = announcement(self.driver, link, self.options)
        self.advertiser = Advertiser(self.service_type, mdns_instance(device), port, txt)
        return self.advertiser


def endpoint_ports(endpoint: str) -> list[tuple[str, int]]:
    """The TCP ports an endpoint names: ('', port) for host:port, (key, port) for each `key=port` query."""
    parts = urlsplit(endpoint)
    query = [(k, int(v)) for k, v in parse_qsl(parts.query) if v.isdigit()]
    return query or [("", parts.port or 0)]


def rewrite(endpoint: str, ports: dict[str, int]) -> str:
    """The endpoint with each port replaced by its proxy's (same keys as `endpoint_ports`)."""
    parts = urlsplit(endpoint)
    if "" in ports:
        return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{ports['']}"))
    query = [(k, str(ports.get(k, v))) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (0 is always free)."""
    if port == 0:
        return True
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class Link:
    """One device's path from the bridge: a FaultProxy per port of its endpoint."""

    device: str
    target: str  # the device's own endpoint
    proxies: dict[str, FaultProxy] = field(default_factory=dict)
    handles: dict[int, list[object]] = field(default_factory=dict)  # step index -> proxy handles

    async def start(self, first_port: int = 0) -> None:
        """Listen in front of every port of the target (OSError when a fixed port is taken)."""
        host = urlsplit(self.target).hostname or "127.0.0.1"
        for n, (key, port) in enumerate(endpoint_ports(self.target)):
            proxy = FaultProxy(host, port, port=first_port if n == 0 else 0)
            await proxy.start()
            self.proxies[key] = proxy

    @property
    def endpoint(self) -> str:
        """The endpoint the bridge is given: the target's, with every port the proxy's."""
        return rewrite(self.target, {k: p.port for k, p in self.proxies.items()})

    async def stop(self) -> None:
        for proxy in self.proxies.values():
            await proxy.stop()

    def inject(self, index: int, step: Step) -> None:
        """Start a proxy fault on every port of the link."""
        assert step.fault.proxy is not None
        fault = Fault(
            step.fault.proxy,
            step.direction,
            ms=step.ms,
            jitter_ms=step.jitter_ms,
            bytes_per_second=step.bytes_per_second,
            count=step.count,
            keep=step.keep,
        )
        self.handles[index] = [p.inject(fault) for p in self.proxies.values()]

    def release(self, index: int) -> None:
        for proxy, handle in zip(self.proxies.values(), self.handles.pop(index, []), strict=False):
            proxy.release(handle)  # type: ignore[arg-type]


class Broker:
    """A Mosquitto on a free loopback port for the uplink; killed, paused and restarted by pid."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(binary):
            raise ConfigError(
                "the HIL runner needs Mosquitto for the uplink checks: apt-get install mosquitto"
            )
        self.binary = binary
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.config = workdir / "mosquitto.conf"
        # As root mosquitto would switch to the "mosquitto" user and lose access to the run's files.
        stay = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_inflight_messages 0\nmax_queued_messages 0\n" + stay
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        """Start the process (`start` also waits for the port)."""
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    async def start(self, timeout: float = 10.0) -> None:
        """Start and wait until the port accepts connections."""
        self.spawn()
        async with asyncio.timeout(timeout):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.close()
                    return
                except OSError:
                    await asyncio.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Cell:
    """Everything the steps of a scenario can act on."""

    links: dict[str, Link]
    simulators: dict[str, SimProcess]
    broker: Broker
    announced: dict[str, Announced] = field(default_factory=dict)  # devices the runner announces
    moved: dict[str, Link] = field(default_factory=dict)  # mdns_move: the second proxy

    async def announce(self) -> None:
        """Start announcing every device in `announced` at its link's proxy."""
        for device, item in self.announced.items():
            await item.advertise(device, self.links[device]).start()

    async def begin(self, index: int, step: Step) -> None:
        """Start a step's fault."""
        kind = step.fault
        if kind.proxy is not None:
            self.links[step.device].inject(index, step)
        elif kind is StepKind.BROKER_KILL:
            self.broker.kill()
        elif kind is StepKind.BROKER_PAUSE:
            self.broker.pause()
        elif kind is StepKind.DEVICE_KILL:
            await asyncio.to_thread(self._sim(step).kill)
        elif kind is StepKind.DEVICE_RESTART:
            sim = self._sim(step)
            await asyncio.to_thread(sim.stop)
            await asyncio.to_thread(sim.start)
        elif kind is StepKind.MDNS_DISAPPEAR:
            await self._advertiser(step.device).stop()
        elif kind is StepKind.MDNS_MOVE:
            await self._move(step.device)

    async def end(self, index: int, step: Step) -> None:
        """Release a step's fault (nothing for an instant one)."""
        kind = step.fault
        if kind.proxy is not None:
            self.links[step.device].release(index)
        elif kind is StepKind.BROKER_KILL:
            await self.broker.start()
        elif kind is StepKind.BROKER_PAUSE:
            self.broker.resume()
        elif kind is StepKind.DEVICE_KILL:
            await asyncio.to_thread(self._sim(step).start)
        elif kind is StepKind.MDNS_DISAPPEAR:
            await self._advertiser(step.device).start()

    def _sim(self, step: Step) -> SimProcess:
        sim = self.simulators.get(step.device)
        if sim is None:
            raise ConfigError(f"{step.fault}: {step.device} is not a simulator the runner started")
        return sim

    def _advertiser(self, device: str) -> Advertiser:
        found = self.announced.get(device)
        if found is None or found.advertiser is None:
            raise ConfigError(f"mDNS fault: {device} is not announced by the runner (scenario `discovered`)")
        return found.advertiser

    async def _move(self, device: str) -> None:
        """A second proxy to the same device, announced in place of the first (same instance name and
        service type, new port): the device moved."""
        link = Link(device, self.links[device].target)
        await link.start()
        self.moved[device] = link
        port, txt = announcement(self.announced[device].driver, link, self.announced[device].options)
        await self._advertiser(device).move(port, txt)

    async def close(self) -> None:
        for item in self.announced.values():
            if item.advertiser is not None:
                await item.advertiser.stop()
        for link in [*self.links.values(), *self.moved.values()]:
            await link.stop()
        for sim in self.simulators.values():
            await asyncio.to_thread(sim.stop)
        self.broker.stop()
