"""Simulated robot cell PLC: the cell-plc register map served over Modbus TCP (pymodbus server).

Run alone with `linebridge sim modbus-plc` (or `python -m linebridge.drivers.modbus.simulator`); tests use
CellPlcSimulator in-process. One TCP port can serve several unit ids, like a gateway; requests for
any other unit get exception 11 (gateway target failed to respond).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
from collections.abc import Sequence

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from linebridge.drivers.mdns import Advertiser
from linebridge.drivers.modbus.codec import DataType, bytes_to_registers, registers_to_bytes
from linebridge.drivers.modbus.plc_model import CellPlcModel
from linebridge.drivers.modbus.points import MapPoint, Table
from linebridge.drivers.modbus.regmap import load_map
from linebridge.drivers.simkit import serve_until_signalled

MAP_NAME = "cell-plc"
SERVICE_TYPE = "_modbus._tcp.local."
TICK = 0.05  # s per PLC scan
BENCH_BASE = 100  # first input register of the optional benchmark block
_TABLE_OF_FUNCTION = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE_INPUT,
    3: Table.HOLDING_REGISTER,
    6: Table.HOLDING_REGISTER,
    16: Table.HOLDING_REGISTER,
    22: Table.HOLDING_REGISTER,
    23: Table.HOLDING_REGISTER,
    4: Table.INPUT_REGISTER,
}
# pymodbus SimDevice takes the non-shared tables in this order.
_SIM_ORDER = (Table.COIL, Table.DISCRETE_INPUT, Table.HOLDING_REGISTER, Table.INPUT_REGISTER)


def _raw(point: MapPoint, value: object) -> object:
    """Engineering value -> raw register value (the inverse of the map's scale and offset)."""
    if not point.scaled or isinstance(value, bool | str):
        return value
    raw = (float(value) - point.offset) / point.scale  # type: ignore[arg-type]
    return raw if point.data_type in (DataType.FLOAT32, DataType.FLOAT64) else int(round(raw))


def _set_bit(registers: list[int], index: int, bit: int, on: object) -> None:
    registers[index] = (registers[index] | (1 << bit)) if on else (registers[index] & ~(1 << bit))


def bench_map(count: int, interval_ms: int = 100) -> dict[str, object]:
    """An inline map of the benchmark block (`count` uint16 input registers that change every scan)."""
    points = [
        {"path": f"bench/r{i}", "table": "input_register", "address": BENCH_BASE + i, "type": "uint16"}
        for i in range(count)
    ]
    return {
        "device": {"kind": "plc", "vendor": "Linebridge", "model": "Cell PLC (simulated)"},
        "poll_groups": {"default": interval_ms},
        "points": points,
    }


class UnitImage:
    """One unit id: its PLC model and the register image pymodbus serves, synced by the action hook."""

    def __init__(
        self,
        model: CellPlcModel,
        points: Sequence[MapPoint],
        responding: asyncio.Event,
        bench_registers: int = 0,
    ) -> None:
        self.model = model
        self._responding = responding
        self._points = {table: [p for p in points if p.table is table] for table in Table}
        self._bench = bench_registers

    def sim_device(self, unit: int) -> SimDevice:
        """The pymodbus device: one block per table, just large enough for the map."""
        blocks = []
        for table in _SIM_ORDER:
            size = max((p.end for p in self._points[table]), default=1)
            if table is Table.INPUT_REGISTER and self._bench:
                size = max(size, BENCH_BASE + self._bench)
            if table.is_bits:
                blocks.append([SimData(0, values=[False] * (-(-size // 16) * 16), datatype=SimType.BITS)])
            else:
                blocks.append([SimData(0, count=size, values=0, datatype=SimType.REGISTERS)])
        return SimDevice(unit, simdata=tuple(blocks), action=self.action)  # type: ignore[arg-type]

    async def action(
        self,
        function_code: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus hook before every access: render the model on reads, check and apply writes."""
        await self._responding.wait()  # a muted PLC never answers
        table = _TABLE_OF_FUNCTION.get(function_code)
        if table is None:
            return None
        if set_values is None:
            self._render(table, start, registers)
            return None
        return self._apply(table, start, address, registers, list(set_values))

    def _render(self, table: Table, start: int, registers: list[int]) -> None:
        if table is Table.INPUT_REGISTER and self._bench:
            scan = round(self.model.uptime / TICK)
            offset = BENCH_BASE - start
            registers[offset : offset + self._bench] = [(scan + i) & 0xFFFF for i in range(self._bench)]
        values = self.model.values()
        for point in self._points[table]:
            value = values[point.path]
            if table.is_bits:
                _set_bit(registers, point.address // 16 - start, point.address % 16, value)
            elif point.data_type is DataType.BIT:
                assert point.codec is not None
                _set_bit(registers, point.address - start, point.codec.bit, value)
            else:
                assert point.codec is not None
                wire = point.codec.encode(_raw(point, value))  # type: ignore[arg-type]
                offset = point.address - start
                registers[offset : offset + point.count] = bytes_to_registers(wire)

    def _apply(
        self, table: Table, start: int, address: int, registers: list[int], written: list
    ) -> ExcCodes | None:
        image = list(registers)
        if table.is_bits:
            bits = [bool((r >> i) & 1) for r in image for i in range(16)]
            bits[address - start * 16 : address - start * 16 + len(written)] = written
            changed = [(p, bits[p.address - start * 16]) for p in self._touched(table, address, len(written))]
        else:
            image[address - start : address - start + len(written)] = written
            changed = [
                (p, self._decode(p, image, start)) for p in self._touched(table, address, len(written))
            ]
        for point, value in changed:
            if (code := self.model.check(point.path, value)) is not None:
                return ExcCodes(code)
        for point, value in changed:
            self.model.write(point.path, value)
        return None

    def _touched(self, table: Table, address: int, count: int) -> list[MapPoint]:
        return [
            p
            for p in self._points[table]
            if p.access.writable and p.address < address + count and address < p.end
        ]

    @staticmethod
    def _decode(point: MapPoint, image: list[int], start: int) -> object:
        assert point.codec is not None
        offset = point.address - start
        if point.data_type is DataType.BIT:
            return bool((image[offset] >> point.codec.bit) & 1)
        value = point.codec.decode_wire(registers_to_bytes(image[offset : offset + point.count]))
        return point.engineering(value)


class CellPlcSimulator:
    """A cell PLC on a TCP port (127.0.0.1, port 0 picks a free one): `await start()`, `await stop()`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        units: Sequence[int] = (1,),
        name: str = "plc-1",
        seed: int = 0,
        mdns: bool = False,
        tick: float = TICK,
        bench_registers: int = 0,
        faults: Sequence[str] = (),
    ) -> None:
        self.host, self.name, self.tick = host, name, tick
        self.faults = FaultPlan(faults, seed)
        self.bench_registers = bench_registers
        self.units = tuple(units)
        self.models = {unit: CellPlcModel(seed=seed + unit) for unit in self.units}
        self._requested_port = port
        self._port = 0
        self._mdns = mdns
        self._responding = asyncio.Event()
        self._responding.set()
        self._server: ModbusTcpServer | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._flaky_task: asyncio.Task[None] | None = None
        self._advertiser: Advertiser | None = None

    @property
    def port(self) -> int:
        """The bound TCP port (valid after start())."""
        return self._port

    @property
    def endpoint(self) -> str:
        """The driver endpoint URL of this PLC."""
        return f"modbus+tcp://{self.host}:{self._port}"

    def set_responding(self, responding: bool) -> None:
        """Mute the PLC (requests are accepted but never answered) or let it answer again."""
        if responding:
            self._responding.set()
        else:
            self._responding.clear()

    async def start(self) -> None:
        """Listen, start the PLC scan and (optionally) advertise over mDNS."""
        points = load_map(MAP_NAME).compiled
        devices = [
            UnitImage(self.models[u], points, self._responding, self.bench_registers).sim_device(u)
            for u in self.units
        ]
        if 0 not in self.units:  # pymodbus routes unknown unit ids to device 0
            devices.append(
                SimDevice(
                    0, simdata=[SimData(0, count=1, datatype=SimType.REGISTERS)], action=_gateway_no_response
                )
            )
        self._server = ModbusTcpServer(devices, address=(self.host, self._requested_port))
        await self._server.serve_forever(background=True)
        self._port = self._server.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._tick_task = asyncio.create_task(self._scan(), name=f"plc-scan {self.name}")
        if "intermittent" in self.faults.names:
            self._flaky_task = asyncio.create_task(self._flaky(), name=f"plc-flaky {self.name}")
        if self._mdns:
            self._advertiser = Advertiser(
                SERVICE_TYPE,
                self.name,
                self._port,
                {"unit": str(self.units[0]), "map": MAP_NAME},
                host=self.host,
            )
            await self._advertiser.start()

    async def _scan(self) -> None:
        elapsed = 0.0
        while True:
            await asyncio.sleep(self.tick)
            elapsed += self.tick
            for model in self.models.values():
                model.upstream_period = self.faults.upstream_period(elapsed)
                model.step(self.tick)

    async def _flaky(self) -> None:
        """Fault "intermittent": answer for a while, fall silent for a while, on a seeded schedule."""
        for up, down in self.faults.outages():
            await asyncio.sleep(up)
            self.set_responding(False)
            await asyncio.sleep(down)
            self.set_responding(True)

    async def stop(self) -> None:
        """Stop advertising, serving and scanning; idempotent."""
        advertiser, self._advertiser = self._advertiser, None
        if advertiser is not None:
            await advertiser.stop()
        for task in (self._tick_task, self._flaky_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tick_task = self._flaky_task = None
        self._responding.set()  # release requests parked by a mute
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()
            await asyncio.sleep(0)  # let released request handlers finish


FAULTS = {
    "starve": "after 20 s the upstream station delivers one part per 4 s (the conveyor is starved)",
    "intermittent": "the PLC stops answering for 2-5 s every 10-20 s (seeded)",
}


class FaultPlan:
    """Reproducible simulated trouble: which faults, and their seeded timing."""

    STARVE_AFTER, STARVE_PERIOD = 20.0, 4.0

    def __init__(self, names: Sequence[str], seed: int) -> None:
        unknown = set(names) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(sorted(unknown))}; known: {', '.join(FAULTS)}")
        self.names = frozenset(names)
        self.seed = seed

    def upstream_period(self, elapsed: float) -> float:
        """Seconds between parts the upstream station can deliver at this time (0 = no limit)."""
        starving = "starve" in self.names and elapsed >= self.STARVE_AFTER
        return self.STARVE_PERIOD if starving else 0.0

    def outages(self):  # noqa: ANN201 - an endless iterator of (up seconds, down seconds)
        """Seeded (up, down) durations of the intermittent fault."""
        rng = random.Random(self.seed)
        while True:
            yield rng.uniform(10.0, 20.0), rng.uniform(2.0, 5.0)


async def _gateway_no_response(*_args: object) -> ExcCodes:
    """Unit ids this port does not serve: what a gateway answers for a silent unit (§7, code 11)."""
    return ExcCodes.GATEWAY_NO_RESPONSE


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="linebridge sim modbus-plc", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="plc-1", help="mDNS instance name")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="TCP port, 0 picks a free one")
    parser.add_argument("--unit", type=int, action="append", help="unit id to serve (repeatable; default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated randomness")
    parser.add_argument("--no-mdns", action="store_true", help="do not advertise over mDNS")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=sorted(FAULTS),
        help="simulated trouble (repeatable): " + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()),
    )
    parser.add_argument(
        "--bench-registers",
        type=int,
        default=0,
        help=f"extra input registers from {BENCH_BASE} that change every scan (benchmarks)",
    )
    args = parser.parse_args(argv)
    args.unit = args.unit or [1]
    if any(not 0 <= u <= 255 for u in args.unit):
        parser.error("--unit must be 0..255")
    if not 0 <= args.bench_registers <= 65535 - BENCH_BASE:
        parser.error(f"--bench-registers must be 0..{65535 - BENCH_BASE}")
    return args


async def _serve(args: argparse.Namespace) -> int:
    sim = CellPlcSimulator(
        host=args.host,
        port=args.port,
        units=args.unit,
        name=args.name,
        seed=args.seed,
        mdns=not args.no_mdns,
        bench_registers=args.bench_registers,
        faults=args.fault,
    )
    return await serve_until_signalled(sim, "modbus-plc")


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM; prints `READY <endpoint>` once listening."""
    args = _parse(argv)
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
