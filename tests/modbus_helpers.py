"""Test helpers for the Modbus driver: a scriptable raw Modbus TCP server, a sink, small maps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from linebridge.drivers.base import DriverContext, Quality, SampleBatch, Signal
from linebridge.drivers.modbus.driver import ModbusDriver, ModbusOptions

HEADER = struct.Struct(">HHHB")


@dataclass(frozen=True)
class Request:
    """A request the raw server received."""

    transaction: int
    unit: int
    pdu: bytes

    @property
    def function(self) -> int:
        return self.pdu[0]


def frame(transaction: int, unit: int, pdu: bytes, protocol: int = 0, length: int | None = None) -> bytes:
    """An MBAP frame built independently of the driver's framer."""
    return HEADER.pack(transaction, protocol, len(pdu) + 1 if length is None else length, unit) + pdu


def good_pdu(request: Request, registers: dict[int, int] | None = None) -> bytes:
    """A correct response PDU: reads return registers (default 0) / cleared bits, writes echo."""
    function, address, count = struct.unpack(">BHH", request.pdu[:5])
    if function in (1, 2):
        nbytes = (count + 7) // 8
        return bytes([function, nbytes]) + bytes(nbytes)
    if function in (3, 4):
        values = [(registers or {}).get(address + i, 0) for i in range(count)]
        return bytes([function, 2 * count]) + struct.pack(f">{count}H", *values)
    if function in (15, 16):
        return request.pdu[:5]
    return request.pdu  # FC5, FC6, FC22 echo the request


Responder = Callable[[Request], Awaitable[bytes | None] | bytes | None]


class Waitable:
    """Something a test can wait on until a condition about it holds."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds (checked after every change)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def good_reply(request: Request) -> bytes:
    """The well-behaved device's whole frame."""
    return frame(request.transaction, request.unit, good_pdu(request))


@dataclass
class RawModbusServer:
    """A Modbus TCP server on 127.0.0.1 whose replies the test writes byte for byte.

    `respond(request)` returns the bytes to send (possibly malformed), or None to stay silent.
    """

    respond: Responder = good_reply
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    disconnects: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)
    events: Waitable = field(default_factory=Waitable)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    @property
    def endpoint(self) -> str:
        return f"modbus+tcp://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                transaction, _, length, unit = HEADER.unpack(header)
                request = Request(transaction, unit, await reader.readexactly(length - 1))
                self.requests.append(request)
                self.events.notify()
                reply = self.respond(request)
                if asyncio.iscoroutine(reply):
                    reply = await reply
                if reply:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.disconnects += 1
            self.events.notify()
        finally:
            writer.close()
            self._handlers.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            for task in list(self._handlers):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._server.wait_closed()
            self._server = None


class CollectingSink(Waitable):
    """A BatchSink that keeps everything it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[SampleBatch] = []
        self.reasons: list[str | None] = []

    def publish(self, batch: SampleBatch) -> None:
        self.batches.append(batch)
        self.notify()

    def degraded(self, reason: str | None) -> None:
        self.reasons.append(reason)
        self.notify()

    def alive(self) -> None:
        self.keepalives = getattr(self, "keepalives", 0) + 1

    def good_values(self, alias: int) -> list[Any]:
        """Every GOOD value published for an alias, in order."""
        out = []
        for batch in self.batches:
            for i, a in enumerate(batch.aliases):
                if a == alias and (batch.qualities is None or batch.qualities[i] == Quality.GOOD):
                    out.append(batch.values[i])
        return out

    def bad_batches(self) -> list[SampleBatch]:
        return [b for b in self.batches if b.qualities and all(q == Quality.BAD for q in b.qualities)]


# A small map for raw-server tests: every table and the write paths.
SMALL_MAP: dict[str, Any] = {
    "poll_groups": {"fast": 100},
    "points": [
        {
            "path": "a/word",
            "table": "holding_register",
            "address": 0,
            "type": "uint16",
            "access": "read_write",
            "poll": "fast",
        },
        {
            "path": "a/float",
            "table": "holding_register",
            "address": 1,
            "type": "float32",
            "access": "read_write",
            "poll": "fast",
        },
        {
            "path": "a/flag",
            "table": "holding_register",
            "address": 3,
            "type": "bit",
            "bit": 2,
            "access": "read_write",
            "poll": "fast",
        },
        {
            "path": "a/coil0",
            "table": "coil",
            "address": 0,
            "type": "bool",
            "access": "read_write",
            "poll": "fast",
        },
        {
            "path": "a/coil1",
            "table": "coil",
            "address": 1,
            "type": "bool",
            "access": "read_write",
            "poll": "fast",
        },
    ],
}


def make_driver(endpoint: str, device_id: str = "dev", **options: Any) -> ModbusDriver:
    """A driver with validated options (map defaults to the shipped cell-plc map)."""
    options.setdefault("map", "cell-plc")
    validated = ModbusOptions.model_validate(options)
    return ModbusDriver(DriverContext(device_id, endpoint, validated, logging.getLogger(f"test.{device_id}")))


def with_aliases(signals: Sequence[Signal]) -> list[Signal]:
    """Assign aliases 1..n like the registry does."""
    for index, signal in enumerate(signals, start=1):
        signal.alias = index
    return list(signals)


async def stop_task(task: asyncio.Task[Any]) -> BaseException | None:
    """Cancel a task, wait for it, and return the exception it ended with (None if cancelled)."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return None
    except BaseException as exc:  # noqa: BLE001 - returned to the test to assert on
        return exc
    return None
