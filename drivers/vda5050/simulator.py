"""`linebridge sim agv-fleet --agvs N --broker mqtt://...`: N protocol-true VDA 5050 AGVs on one broker.

The AGVs start at the stations of the demo plant (stations.py) and drive the orders they are sent.
With --advertise the fleet's broker is announced over mDNS as `_mqtt._tcp` with TXT
`vda5050=<interface>/<manufacturer>` (loopback only), which is how the driver finds it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from linebridge.drivers.mdns import Advertiser
from linebridge.drivers.simkit import serve_until_signalled
from linebridge.drivers.tasks import bounded
from linebridge.drivers.vda5050.link import parse_endpoint
from linebridge.drivers.vda5050.sim_agv import SimAgv
from linebridge.drivers.vda5050.sim_model import AgvConfig
from linebridge.drivers.vda5050.stations import LOOP, MAP_ID, STATIONS

MDNS_TYPE = "_mqtt._tcp.local."


def serial(i: int) -> str:
    """The serial number of the i-th simulated AGV (§6.3 characters only)."""
    return f"agv-{i + 1:03d}"


class AgvFleet:
    """N simulated AGVs, each with its own MQTT connection, run as owned tasks."""

    def __init__(
        self,
        broker: str,
        count: int,
        manufacturer: str = "linebridge-sim",
        interface: str = "uagv",
        viz_hz: float = 5.0,
        state_interval: float = 30.0,
        advertise: str = "",
        first: int = 0,
        **overrides: float,
    ) -> None:
        self.address = parse_endpoint(broker)
        self.endpoint = f"vda5050+{broker.removeprefix('vda5050+').split('?')[0]}?interface={interface}&manufacturer={manufacturer}"
        self.agvs = [
            SimAgv(
                self._config(first + i, manufacturer, interface, viz_hz, state_interval, overrides),
                self.address,
            )
            for i in range(count)
        ]
        self._advertise = advertise
        self._advertiser: Advertiser | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @staticmethod
    def _config(
        i: int,
        manufacturer: str,
        interface: str,
        viz_hz: float,
        state_interval: float,
        overrides: dict[str, float],
    ) -> AgvConfig:
        station = LOOP[i % len(LOOP)]
        x, y = STATIONS[station]
        return AgvConfig(
            serial=serial(i),
            manufacturer=manufacturer,
            interface=interface,
            x=x,
            y=y,
            map_id=MAP_ID,
            node_id=station,
            viz_hz=viz_hz,
            state_interval=state_interval,
            **overrides,  # type: ignore[arg-type]
        )

    def by_serial(self, serial_number: str) -> SimAgv:
        """The simulated AGV with this serial number."""
        return next(a for a in self.agvs if a.cfg.serial == serial_number)

    async def start(self) -> None:
        """Connect every AGV of the fleet to the broker."""
        self._tasks = [asyncio.create_task(a.run(), name=f"agv:{a.cfg.serial}") for a in self.agvs]
        await self.wait_connected()
        if self._advertise:
            a = self.address
            self._advertiser = Advertiser(
                MDNS_TYPE,
                self._advertise,
                a.port,
                {
                    "vda5050": f"{self.agvs[0].cfg.interface}/{self.agvs[0].cfg.manufacturer}"
                    if self.agvs
                    else "uagv"
                },
                host=a.host,
            )
            await self._advertiser.start()

    async def wait_connected(self, timeout: float = 20.0) -> None:
        """Wait until every AGV has connected once (raises RuntimeError on timeout)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while any(a.connections == 0 for a in self.agvs):
            if loop.time() > end or any(t.done() for t in self._tasks):
                raise RuntimeError(f"AGVs could not connect to {self.address.host}:{self.address.port}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Each AGV says OFFLINE (retained) and disconnects; tasks are cancelled and awaited."""
        if self._advertiser is not None:
            await self._advertiser.stop()
        # OFFLINE is best effort: a connection that is down or wedged must not hold the stop up.
        await asyncio.gather(*(bounded(a.stop(), 2.0) for a in self.agvs), return_exceptions=True)
        tasks, self._tasks = self._tasks, []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while any(not t.done() for t in tasks) and loop.time() < deadline:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=0.5)
        for task in tasks:
            if task.done() and not task.cancelled():
                with contextlib.suppress(Exception):
                    task.result()


def main(argv: list[str] | None = None) -> int:
    """Command line entry: run a fleet until SIGINT/SIGTERM."""
    p = argparse.ArgumentParser(prog="linebridge sim agv-fleet", description=__doc__)
    p.add_argument("--agvs", type=int, default=3, help="number of AGVs (default 3)")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="MQTT broker URL (mqtt:// or mqtts://)")
    p.add_argument("--manufacturer", default="linebridge-sim")
    p.add_argument("--interface", default="uagv")
    p.add_argument("--viz-hz", type=float, default=5.0, help="visualization rate per AGV (default 5)")
    p.add_argument("--state-interval", type=float, default=30.0, help="max seconds between states (<= 30)")
    p.add_argument(
        "--name", default="agv-fleet", help="the fleet's name (its mDNS instance with --advertise)"
    )
    p.add_argument("--advertise", action="store_true", help="announce the broker over mDNS (loopback only)")
    args = p.parse_args(argv)
    if not 0 < args.state_interval <= 30:
        p.error("--state-interval must be in (0, 30]: VDA 5050 §6.10 asks for a state at least every 30 s")
    logging.basicConfig(level=logging.WARNING)
    fleet = AgvFleet(
        args.broker,
        args.agvs,
        args.manufacturer,
        args.interface,
        args.viz_hz,
        args.state_interval,
        args.name if args.advertise else "",
    )
    return asyncio.run(serve_until_signalled(fleet, "agv-fleet"))
