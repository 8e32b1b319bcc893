"""Malformed input from the "robot" closes only that connection with a clear error.

A raw TCP server plays a broken RTDE controller (correct handshake, then one fault); the
Dashboard and secondary interfaces come from the real simulator, which must stay usable.
"""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest

from linebridge.drivers.base import DriverContext, StreamHints, Unavailable
from linebridge.drivers.ur import rtde
from linebridge.drivers.ur.catalog import OUTPUT_TYPES
from linebridge.drivers.ur.driver import UrDriver
from linebridge.drivers.ur.options import UrOptions
from linebridge.drivers.ur.rtde import PackageType, ProtocolError
from linebridge.drivers.ur.rtde_client import RecipeError, RtdeClient
from linebridge.drivers.ur.simulator import SimConfig, UrSimulator


class BrokenRtde:
    """An RTDE server that handshakes correctly, then commits `fault` on stream connections.

    The driver's first connection (connect()'s probe of every variable) is answered honestly,
    except for the fault "wrong_type_at_probe".
    """

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.connections = 0
        self.closed_by_client = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        probe = self.connections == 1
        framer, recipe = rtde.RtdeFramer(), None
        try:
            while data := await reader.read(65536):
                for kind, payload in framer.feed(data):
                    recipe = self.answer(kind, payload, writer, probe, recipe)
            self.closed_by_client.set()
        except (ConnectionError, ProtocolError):
            self.closed_by_client.set()
        finally:
            writer.close()

    def answer(self, kind: int, payload: bytes, writer: asyncio.StreamWriter, probe: bool, recipe):
        if kind == PackageType.REQUEST_PROTOCOL_VERSION:
            writer.write(rtde.accepted(kind, True))
        elif kind == PackageType.GET_URCONTROL_VERSION:
            writer.write(rtde.urcontrol_version(5, 15, 0, 1))
        elif kind == PackageType.CONTROL_PACKAGE_SETUP_OUTPUTS:
            _, names = rtde.decode_setup_outputs_request(payload)
            types = [OUTPUT_TYPES[n].name for n in names]
            if self.fault == "wrong_type_at_probe" or (self.fault == "wrong_type" and not probe):
                types[names.index("actual_q")] = "DOUBLE"
            writer.write(rtde.setup_outputs_reply(1, types))
            return rtde.Recipe(1, tuple(names), tuple(OUTPUT_TYPES[n] for n in names))
        elif kind == PackageType.CONTROL_PACKAGE_START:
            writer.write(rtde.accepted(kind, True))
            self.misbehave(writer, recipe)
        return recipe

    def misbehave(self, writer: asyncio.StreamWriter, recipe: rtde.Recipe) -> None:
        good = recipe.encode_package([0] * sum(t.count for t in recipe.types))
        writer.write(good * 3)
        if self.fault == "truncated":
            writer.write(good[: len(good) // 2])
            writer.close()
        elif self.fault == "size_below_header":
            writer.write(b"\x00\x02U")
        elif self.fault == "size_mismatch":
            writer.write(struct.pack(">HB", 3 + 9, ord("U")) + b"\x01" + b"\x00" * 8)
        elif self.fault == "unknown_type":
            writer.write(b"\x00\x04Z\x00")


class RecordingSink:
    """Collects batches and degraded reports."""

    def __init__(self) -> None:
        self.batches, self.reasons = [], []

    def publish(self, batch) -> None:
        self.batches.append(batch)

    def degraded(self, reason) -> None:
        self.reasons.append(reason)

    def alive(self) -> None:
        self.keepalives = getattr(self, "keepalives", 0) + 1


@pytest.fixture
async def sim():
    simulator = UrSimulator(SimConfig(mdns=False))
    await simulator.start()
    yield simulator
    await simulator.stop()


async def driver_for(sim, rtde_port: int) -> UrDriver:
    endpoint = (
        f"ur://127.0.0.1?rtde={rtde_port}&dashboard={sim.dashboard_port}&secondary={sim.secondary_port}"
    )
    return UrDriver(DriverContext("ur-bad", endpoint, UrOptions(timeout=2.0), logging.getLogger("test.ur")))


@pytest.mark.parametrize(
    "fault,message",
    [
        ("truncated", "connection closed inside a package"),
        ("size_below_header", "size field 2 is smaller than the 3-byte header"),
        ("size_mismatch", "data package of 9 bytes"),
        ("unknown_type", "unknown package type 90"),
        ("wrong_type", "recipe answer types actual_q as DOUBLE"),
    ],
)
async def test_malformed_stream_closes_that_connection_only(sim, fault, message):
    robot = BrokenRtde(fault)
    port = await robot.start()
    driver = await driver_for(sim, port)
    try:
        description = await driver.connect()
        signals = [s for s in description.signals if s.path.startswith("joints/1/")]
        for alias, signal in enumerate(signals, start=1):
            signal.alias = alias
        sink = RecordingSink()
        with pytest.raises(Unavailable, match=f"malformed RTDE data: {message}") as caught:
            await asyncio.wait_for(driver.stream(signals, sink, StreamHints()), 5)
        assert isinstance(caught.value, ProtocolError)
        assert sink.reasons and message in sink.reasons[-1]
        await asyncio.wait_for(robot.closed_by_client.wait(), 5)  # the driver hung up on the bad link
        spec = next(m for m in description.methods if m.name == "robot_mode")
        assert await driver.call(spec, [], lambda p, m: None) == ["POWER_OFF"]  # Dashboard unaffected
    finally:
        await driver.close()
        await robot.stop()


async def test_wrong_type_in_probe_fails_connect_clearly(sim):
    robot = BrokenRtde("wrong_type_at_probe")
    port = await robot.start()
    driver = await driver_for(sim, port)
    try:
        with pytest.raises(
            ProtocolError, match="recipe answer types actual_q as DOUBLE, documented as VECTOR6D"
        ):
            await driver.connect()
        await driver.close()  # safe after a failed connect
    finally:
        await robot.stop()


async def test_client_reports_not_found_variables(sim):
    client = RtdeClient("127.0.0.1", sim.rtde_port, timeout=2.0)
    await client.connect()
    try:
        await client.negotiate()
        with pytest.raises(
            RecipeError, match="does not know RTDE variable\\(s\\) bogus_a, bogus_b"
        ) as caught:
            await client.recipe(["timestamp", "bogus_a", "bogus_b"], 125.0)
        assert caught.value.not_found == ("bogus_a", "bogus_b")
        with pytest.raises(RecipeError, match="refused the output recipe at 900 Hz"):
            await client.recipe(["timestamp"], 900.0)
    finally:
        await client.close()


async def test_silent_controller_times_out_as_unavailable():
    async def mute(reader, writer):
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    client = RtdeClient("127.0.0.1", server.sockets[0].getsockname()[1], timeout=0.2)
    try:
        await client.connect()
        with pytest.raises(Unavailable, match="did not answer REQUEST_PROTOCOL_VERSION"):
            await client.negotiate()
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
