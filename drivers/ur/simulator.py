"""A simulated Universal Robots controller: RTDE v2, Dashboard and secondary interface on TCP,
advertised over mDNS as `_ur-rtde._tcp.local.`.

In-process: `sim = UrSimulator(SimConfig(...)); await sim.start(); sim.endpoint; await sim.stop()`.
CLI: `linebridge sim ur --name ur-1 --rtde-port 0 ...` prints `READY ur://127.0.0.1?rtde=..&...`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import zlib
from dataclasses import dataclass, field

from linebridge.drivers.mdns import Advertiser
from linebridge.drivers.simkit import serve_until_signalled
from linebridge.drivers.ur.driver import SERVICE_TYPE
from linebridge.drivers.ur.options import UrAddress
from linebridge.drivers.ur.sim_robot import SimRobot
from linebridge.drivers.ur.sim_servers import (
    ControllerInfo,
    DashboardSession,
    RtdeSession,
    ScriptRecord,
    SecondarySession,
)

log = logging.getLogger(__name__)
MAX_BURST = 250  # cycles sent late in one go when the loop fell behind; older ones are skipped


@dataclass(slots=True)
class SimConfig:
    """Simulator settings; ports 0 pick free ones."""

    name: str = "ur-1"
    host: str = "127.0.0.1"
    rtde_port: int = 0
    dashboard_port: int = 0
    secondary_port: int = 0
    mdns: bool = True
    rate: float = 500.0  # control cycle: 500 Hz e-Series, 125 Hz CB-series
    model: str = "UR5"
    serial: str = ""
    unlock_delay: float = 5.0  # the controller refuses to unlock a protective stop sooner
    transition_delay: float = 0.1  # power on -> idle, play -> playing ...
    remote_control: bool = True
    programs: tuple[str, ...] = field(default=("/programs/pick.urp", "/programs/place.urp"))


class UrSimulator:
    """The simulated controller: one robot, three TCP servers, one control-cycle task."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        serial = self.config.serial or f"2023550{zlib.crc32(self.config.name.encode()) % 10000:04d}"
        self.info = ControllerInfo(model=self.config.model, serial=serial)
        self.robot = SimRobot(
            self.config.rate, self.config.unlock_delay, self.config.transition_delay, self.config.programs
        )
        self.robot.remote_control = self.config.remote_control
        self.scripts: list[ScriptRecord] = []
        self.cycles_skipped = 0
        self._servers: dict[str, asyncio.Server] = {}
        self._rtde_sessions: set[RtdeSession] = set()
        self._clients: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ticker: asyncio.Task | None = None
        self._advertiser: Advertiser | None = None

    @property
    def rtde_port(self) -> int:
        """The bound RTDE port."""
        return self._port("rtde")

    @property
    def dashboard_port(self) -> int:
        """The bound Dashboard port."""
        return self._port("dashboard")

    @property
    def secondary_port(self) -> int:
        """The bound secondary interface port."""
        return self._port("secondary")

    @property
    def address(self) -> UrAddress:
        """Where the servers listen."""
        return UrAddress(self.config.host, self.rtde_port, self.dashboard_port, self.secondary_port)

    @property
    def endpoint(self) -> str:
        """ur://host?rtde=..&dashboard=..&secondary=.. for the driver."""
        return self.address.endpoint()

    def _port(self, name: str) -> int:
        return self._servers[name].sockets[0].getsockname()[1]

    def set_remote_control(self, remote: bool) -> None:
        """Flip the pendant's Local/Remote switch."""
        self.robot.remote_control = remote

    def protective_stop(self) -> None:
        """Trigger a protective stop, as a collision or a safety input would."""
        self.robot.protective_stop()

    def drop_rtde(self) -> int:
        """Cut every RTDE connection (as a controller whose RTDE server fails); programs run on. How many."""
        sessions = list(self._rtde_sessions)
        for session in sessions:
            session.writer.transport.abort()
        return len(sessions)

    async def start(self) -> None:
        """Bind the three servers, start the control cycle, advertise over mDNS."""
        cfg = self.config
        try:
            for name, port, handler in (
                ("rtde", cfg.rtde_port, self._serve_rtde),
                ("dashboard", cfg.dashboard_port, self._serve_dashboard),
                ("secondary", cfg.secondary_port, self._serve_secondary),
            ):
                self._servers[name] = await asyncio.start_server(handler, cfg.host, port)
            self._ticker = asyncio.create_task(self._cycle(), name=f"ur-sim-{cfg.name}-cycle")
            if cfg.mdns:
                self._advertiser = Advertiser(
                    SERVICE_TYPE,
                    cfg.name,
                    self.rtde_port,
                    {
                        "dashboard": str(self.dashboard_port),
                        "secondary": str(self.secondary_port),
                        "model": cfg.model,
                        "serial": self.info.serial,
                    },
                    host=cfg.host,
                )
                await self._advertiser.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop advertising, close servers and clients, end every task; idempotent."""
        if self._advertiser is not None:
            advertiser, self._advertiser = self._advertiser, None
            await advertiser.stop()
        for server in self._servers.values():
            server.close()
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        # Client handlers belong to asyncio's servers: end them by cutting their connections
        # (cancelling them makes asyncio log the cancellation as an error on Python 3.11).
        for writer in list(self._writers):
            writer.transport.abort()
        clients = list(self._clients)
        if clients:
            _, stuck = await asyncio.wait(clients, timeout=2.0)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        for server in self._servers.values():
            await server.wait_closed()
        self._ticker = None

    async def _cycle(self) -> None:
        """The control loop: step the robot every cycle, send due RTDE packages, catch up when late."""
        loop = asyncio.get_running_loop()
        period = self.robot.period
        next_time = loop.time()
        while True:
            due = int((loop.time() - next_time) / period) + 1
            if due > MAX_BURST:  # like the controller, skip packages it had no time to send
                self.robot.skip(due - MAX_BURST)
                self.cycles_skipped += due - MAX_BURST
            for _ in range(min(due, MAX_BURST)):
                self.robot.step()
                for session in list(self._rtde_sessions):
                    session.tick()
            next_time += due * period
            await asyncio.sleep(max(0.0, next_time - loop.time()))

    async def _client(self, writer: asyncio.StreamWriter, serve) -> None:
        task = asyncio.current_task()
        self._clients.add(task)
        self._writers.add(writer)
        try:
            await serve
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            self._clients.discard(task)
            writer.close()

    async def _serve_rtde(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = RtdeSession(self.robot, self.info, writer)
        self._rtde_sessions.add(session)
        try:
            await self._client(writer, session.serve(reader))
        finally:
            self._rtde_sessions.discard(session)

    async def _serve_dashboard(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._client(writer, DashboardSession(self.robot, self.info).serve(reader, writer))

    async def _serve_secondary(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._client(writer, SecondarySession(self.robot, self.scripts).serve(reader))


def _parse_args(argv: list[str] | None) -> SimConfig:
    parser = argparse.ArgumentParser(
        prog="linebridge sim ur", description="Simulated Universal Robots controller"
    )
    parser.add_argument("--name", default="ur-1", help="mDNS instance name / device id")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (keep it on loopback in tests)")
    parser.add_argument(
        "--rtde-port", type=int, default=0, help="RTDE port (0 = free port; the robot uses 30004)"
    )
    parser.add_argument("--dashboard-port", type=int, default=0, help="Dashboard port (robot: 29999)")
    parser.add_argument(
        "--secondary-port", type=int, default=0, help="secondary interface port (robot: 30002)"
    )
    parser.add_argument("--no-mdns", action="store_true", help="do not advertise over mDNS")
    parser.add_argument("--rate", type=float, default=500.0, help="control cycle in Hz (CB-series: 125)")
    parser.add_argument("--model", default="UR5")
    parser.add_argument("--serial", default="")
    parser.add_argument(
        "--local", action="store_true", help="start in local control (network commands refused)"
    )
    parser.add_argument(
        "--unlock-delay", type=float, default=5.0, help="seconds before a protective stop unlocks"
    )
    args = parser.parse_args(argv)
    return SimConfig(
        name=args.name,
        host=args.host,
        rtde_port=args.rtde_port,
        dashboard_port=args.dashboard_port,
        secondary_port=args.secondary_port,
        mdns=not args.no_mdns,
        rate=args.rate,
        model=args.model,
        serial=args.serial,
        unlock_delay=args.unlock_delay,
        remote_control=not args.local,
    )


async def _serve(config: SimConfig) -> int:
    return await serve_until_signalled(UrSimulator(config), "ur")


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM; exit code 0."""
    config = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main())
