"""The Modbus driver against the real simulated cell PLC over loopback TCP (and a scripted raw server)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymodbus.client import AsyncModbusTcpClient

from linebridge.drivers.base import (
    CommandKind,
    CommandRequest,
    DeviceError,
    DeviceKind,
    InvalidArgument,
    MdnsService,
    NotFound,
    StreamHints,
    Unavailable,
    ValueType,
)
from linebridge.drivers.modbus.driver import ModbusDriver, parse_endpoint
from linebridge.drivers.modbus.simulator import CellPlcSimulator
from linebridge.drivers.modbus.transport import POOL
from tests.modbus_helpers import (
    SMALL_MAP,
    CollectingSink,
    RawModbusServer,
    Request,
    frame,
    good_pdu,
    make_driver,
    stop_task,
    with_aliases,
)

CELL_PLC_YAML = Path(__file__).parents[1] / "drivers" / "modbus" / "maps" / "cell-plc.yaml"


def cell_plc_map(**changes: Any) -> dict[str, Any]:
    """The shipped cell-plc map as a dict, to derive variants inline."""
    data = yaml.safe_load(CELL_PLC_YAML.read_text())
    data.update(changes)
    return data


@pytest.fixture
async def sim() -> AsyncIterator[CellPlcSimulator]:
    simulator = CellPlcSimulator(units=(1, 2), seed=11)
    await simulator.start()
    yield simulator
    await simulator.stop()


Connect = Callable[..., Awaitable[ModbusDriver]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Connect drivers; every one is closed after the test."""
    opened: list[ModbusDriver] = []

    async def _connect(endpoint: str, device_id: str = "plc", **options: Any) -> ModbusDriver:
        driver = make_driver(endpoint, device_id, **options)
        opened.append(driver)
        driver.description = await driver.connect()  # type: ignore[attr-defined]
        with_aliases(driver.description.signals)  # type: ignore[attr-defined]
        return driver

    yield _connect
    for driver in opened:
        await driver.close()


def signals_of(driver: ModbusDriver) -> dict[str, Any]:
    return {s.path: s for s in driver.description.signals}  # type: ignore[attr-defined]


async def test_connect_describes_the_plc(sim: CellPlcSimulator, connect: Connect) -> None:
    driver = await connect(sim.endpoint)
    description = driver.description  # type: ignore[attr-defined]
    assert description.kind is DeviceKind.PLC
    assert (description.vendor, description.model) == ("Linebridge", "Cell PLC (simulated)")
    assert description.identity == f"modbus:127.0.0.1:{sim.port}/1"
    assert description.commands == frozenset({CommandKind.WRITE})
    by_path = signals_of(driver)
    assert len(by_path) == 18
    speed = by_path["conveyor/speed"]
    assert (speed.value_type, speed.unit, speed.source_type, speed.address) == (
        ValueType.DOUBLE,
        "m/s",
        "float32",
        "HR 0",
    )
    assert all(s.change_detection == "polled-compare" for s in by_path.values())
    assert by_path["conveyor/jam"].access.writable is False


async def test_read_matches_the_plc(sim: CellPlcSimulator, connect: Connect) -> None:
    driver = await connect(sim.endpoint)
    signals = driver.description.signals  # type: ignore[attr-defined]
    batch = await driver.read(signals)
    values = dict(zip((s.path for s in signals), batch.values, strict=True))
    assert values["conveyor/speed"] == 0.5
    assert values["cell/recipe"] == "PART-A"
    assert values["cell/mode"] == 0
    assert isinstance(values["conveyor/part_count"], int) and isinstance(values["conveyor/jam"], bool)
    assert batch.aliases == [s.alias for s in signals] and batch.qualities is None


async def test_values_agree_with_a_bare_pymodbus_client(sim: CellPlcSimulator, connect: Connect) -> None:
    driver = await connect(sim.endpoint)
    by_path = signals_of(driver)
    await driver.write([(by_path["conveyor/speed"], 1.375), (by_path["cell/recipe"], "WELD-7")])
    client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=2, retries=0)
    await client.connect()
    try:
        registers = (await client.read_holding_registers(0, count=12, device_id=1)).registers
    finally:
        client.close()
    assert client.convert_from_registers(registers[0:2], client.DATATYPE.FLOAT32) == 1.375
    assert client.convert_from_registers(registers[4:12], client.DATATYPE.STRING) == "WELD-7"


async def test_stream_sends_everything_first_then_only_changes(
    sim: CellPlcSimulator, connect: Connect
) -> None:
    driver = await connect(sim.endpoint)
    signals = driver.description.signals  # type: ignore[attr-defined]
    by_path = signals_of(driver)
    sim.models[1].jam_probability = 0.0
    await driver.write([(by_path["conveyor/speed"], 2.0)])  # a part every 0.2 s
    sink = CollectingSink()
    task = asyncio.create_task(driver.stream(signals, sink, StreamHints()))
    count_alias = by_path["conveyor/part_count"].alias
    try:
        await sink.wait_for(lambda: len(set(sink.good_values(count_alias))) >= 3)
    finally:
        assert await stop_task(task) is None
    first_fast, first_slow = sink.batches[0], sink.batches[1]
    groups = {len(first_fast), len(first_slow)}
    assert groups == {11, 7}, "the first batch of each group carries all of its signals"
    assert sorted(first_fast.aliases + first_slow.aliases) == sorted(s.alias for s in signals)
    last: dict[int, Any] = {}
    for batch in sink.batches:
        assert len(batch.timestamps) == len(batch.aliases) == len(batch.values)
        for alias, value in zip(batch.aliases, batch.values, strict=True):
            assert last.get(alias, object()) != value, "an unchanged value was published again"
            last[alias] = value
    counts = sink.good_values(count_alias)
    assert counts == sorted(counts) and counts[-1] > counts[0]


async def test_write_and_read_back_every_kind(sim: CellPlcSimulator, connect: Connect) -> None:
    driver = await connect(sim.endpoint, verify_writes=True)
    by_path = signals_of(driver)
    writes = [
        (by_path["conveyor/speed"], 1.25),
        (by_path["cell/mode"], 1),
        (by_path["cell/beacon"], True),
        (by_path["cell/recipe"], "WELD-7"),
        (by_path["conveyor/running"], False),
    ]
    result = await driver.execute(CommandRequest(CommandKind.WRITE, writes=writes), lambda *_: None)
    assert result.message == "wrote 5 signal(s)"
    model = sim.models[1]
    assert (model.speed, model.mode, model.beacon, model.recipe, model.running) == (
        1.25,
        1,
        True,
        "WELD-7",
        False,
    )
    batch = await driver.read([s for s, _ in writes])
    assert batch.values == [1.25, 1, True, "WELD-7", False]
    await driver.write([(by_path["cell/beacon"], False)])
    assert model.beacon is False


async def test_out_of_range_and_read_only_writes_are_refused_before_sending(
    sim: CellPlcSimulator, connect: Connect
) -> None:
    driver = await connect(sim.endpoint)
    by_path = signals_of(driver)
    connection = POOL.connections()[0]
    sent = connection.stats.requests
    with pytest.raises(InvalidArgument, match="above the maximum 2.0 m/s"):
        await driver.write([(by_path["cell/mode"], 2), (by_path["conveyor/speed"], 2.5)])
    with pytest.raises(InvalidArgument, match="below the minimum"):
        await driver.write([(by_path["conveyor/speed"], -1.0)])
    with pytest.raises(InvalidArgument, match="read-only"):
        await driver.write([(by_path["conveyor/part_count"], 5)])
    with pytest.raises(InvalidArgument, match="longer than 16 bytes"):
        await driver.write([(by_path["cell/recipe"], "X" * 17)])
    assert connection.stats.requests == sent, "nothing reaches the device when any value is bad"
    assert (sim.models[1].mode, sim.models[1].speed) == (0, 0.5)


async def test_device_refusal_becomes_a_device_error(sim: CellPlcSimulator, connect: Connect) -> None:
    regmap = cell_plc_map()
    for point in regmap["points"]:
        if point["path"] == "cell/mode":
            point.pop("min"), point.pop("max")  # let the PLC itself refuse the value
    driver = await connect(sim.endpoint, map=regmap)
    with pytest.raises(DeviceError, match="illegal data value") as caught:
        await driver.write([(signals_of(driver)["cell/mode"], 7)])
    assert caught.value.code == 3  # type: ignore[attr-defined]
    assert sim.models[1].mode == 0


async def test_unknown_signal_is_not_found(sim: CellPlcSimulator, connect: Connect) -> None:
    driver = await connect(sim.endpoint)
    other = make_driver(sim.endpoint, map=SMALL_MAP)
    stranger = with_aliases([other.plan.groups[0].blocks[0].points[0].signal()])[0]
    with pytest.raises(NotFound):
        await driver.read([stranger])
    with pytest.raises(NotFound):
        await driver.stream([stranger], CollectingSink(), StreamHints())


async def test_two_units_share_one_connection(sim: CellPlcSimulator, connect: Connect) -> None:
    first = await connect(sim.endpoint, "plc-a", unit=1)
    second = await connect(sim.endpoint, "plc-b", unit=2)
    connections = [c for c in POOL.connections() if c.port == sim.port]
    assert len(connections) == 1 and connections[0].refs == 2
    await second.write([(signals_of(second)["conveyor/speed"], 1.75)])
    assert (sim.models[1].speed, sim.models[2].speed) == (0.5, 1.75)
    sinks = [CollectingSink(), CollectingSink()]
    tasks = [
        asyncio.create_task(d.stream(d.description.signals, s, StreamHints()))  # type: ignore[attr-defined]
        for d, s in zip((first, second), sinks, strict=True)
    ]
    try:
        for sink in sinks:
            await sink.wait_for(lambda sink=sink: len(sink.batches) >= 4)
    finally:
        for task in tasks:
            assert await stop_task(task) is None
    speed_alias = signals_of(first)["conveyor/speed"].alias
    assert sinks[0].good_values(speed_alias)[0] == 0.5 and sinks[1].good_values(speed_alias)[0] == 1.75
    await second.close()
    assert not connections[0].closed and connections[0].refs == 1
    assert (await first.read([signals_of(first)["cell/mode"]])).values == [0]
    await first.close()
    assert connections[0].closed and not [c for c in POOL.connections() if c.port == sim.port]


async def test_unit_missing_behind_the_gateway_is_unavailable(
    sim: CellPlcSimulator, connect: Connect
) -> None:
    with pytest.raises(Unavailable, match="gateway target device failed to respond"):
        await connect(sim.endpoint, unit=9)


async def test_nothing_listening_is_unavailable(connect: Connect) -> None:
    server = RawModbusServer()
    await server.start()
    endpoint = server.endpoint
    await server.stop()
    with pytest.raises(Unavailable, match="cannot connect"):
        await connect(endpoint)


async def test_silent_device_goes_offline_and_never_stalls_another(connect: Connect) -> None:
    quiet, healthy = CellPlcSimulator(name="quiet"), CellPlcSimulator(name="healthy")
    await quiet.start()
    await healthy.start()
    regmap = cell_plc_map(poll_groups={"fast": 100, "slow": 300})
    try:
        drivers = [
            await connect(quiet.endpoint, "quiet", map=regmap),
            await connect(healthy.endpoint, "healthy", map=regmap),
        ]
        sinks = [CollectingSink(), CollectingSink()]
        tasks = [
            asyncio.create_task(d.stream(d.description.signals, s, StreamHints()))  # type: ignore[attr-defined]
            for d, s in zip(drivers, sinks, strict=True)
        ]
        await sinks[0].wait_for(lambda: len(sinks[0].batches) >= 2)
        quiet.set_responding(False)
        async with asyncio.timeout(10):
            with pytest.raises(Unavailable, match="did not answer"):
                await tasks[0]
        seen = len(sinks[1].batches)
        await sinks[1].wait_for(lambda: len(sinks[1].batches) >= seen + 3)
        assert not tasks[1].done()
        assert await stop_task(tasks[1]) is None
        assert any(reason and "did not answer" in reason for reason in sinks[0].reasons)
        assert sinks[0].bad_batches(), "the last values of the silent device are marked BAD"
        assert not sinks[1].bad_batches() and sinks[1].reasons == []
    finally:
        await quiet.stop()
        await healthy.stop()


async def test_diagnostics_show_the_poll_plan(sim: CellPlcSimulator, connect: Connect) -> None:
    driver = await connect(sim.endpoint)
    lines = driver.diagnostics()
    assert lines["poll_plan"].startswith(
        "fast 250 ms: coil 0-1, DI 0-3, IR 0-4, HR 0-1 (4 requests for 11 signals)"
    )
    assert lines["requests_per_cycle"] == "6 (one per signal would be 18)"
    assert "shared by 1 device(s)" in lines["connection"]
    assert driver.plan.requests_per_cycle == 6 and driver.plan.naive_requests_per_cycle == 18


# --- write function codes, seen from a raw server --------------------------------------------------


async def _raw_driver(connect: Connect, respond: Any = None) -> tuple[RawModbusServer, ModbusDriver]:
    server = RawModbusServer(respond) if respond else RawModbusServer()
    await server.start()
    return server, await connect(server.endpoint, map=SMALL_MAP, timeout=2)


async def test_write_function_codes(connect: Connect) -> None:
    server, driver = await _raw_driver(connect)
    try:
        by_path = signals_of(driver)
        cases = [
            ([(by_path["a/coil0"], True)], [5]),
            ([(by_path["a/coil0"], True), (by_path["a/coil1"], False)], [15]),
            ([(by_path["a/word"], 7)], [6]),
            ([(by_path["a/float"], 1.5)], [16]),
            ([(by_path["a/word"], 7), (by_path["a/float"], 1.5)], [16]),  # neighbours merge
            ([(by_path["a/float"], 1.5), (by_path["a/word"], 7)], [16, 6]),  # order is kept
            ([(by_path["a/flag"], True)], [22]),
        ]
        for writes, functions in cases:
            server.requests.clear()
            await driver.write(writes)
            assert [r.function for r in server.requests] == functions, writes
        server.requests.clear()
        await driver.write([(by_path["a/word"], 0x1234), (by_path["a/float"], 1.0)])
        assert server.requests[0].pdu == bytes.fromhex("10 0000 0003 06 1234 3f800000".replace(" ", ""))
        server.requests.clear()
        await driver.write([(by_path["a/flag"], True)])
        assert server.requests[0].pdu == struct.pack(">BHHH", 22, 3, 0xFFFB, 0x0004)
    finally:
        await server.stop()


async def test_bit_write_falls_back_to_read_modify_write_without_fc22(connect: Connect) -> None:
    def respond(request: Request) -> bytes:
        if request.function == 22:
            return frame(request.transaction, request.unit, bytes([0x80 | 22, 1]))
        return frame(request.transaction, request.unit, good_pdu(request, {3: 0x00F0}))

    server, driver = await _raw_driver(connect, respond)
    try:
        server.requests.clear()
        await driver.write([(signals_of(driver)["a/flag"], True)])
        assert [r.function for r in server.requests] == [22, 3, 6]
        assert server.requests[-1].pdu == struct.pack(">BHH", 6, 3, 0x00F4)
    finally:
        await server.stop()


async def test_deadband_suppresses_small_changes(connect: Connect) -> None:
    counter = {"value": 0}

    def respond(request: Request) -> bytes:
        if request.function == 3:
            counter["value"] += 1
        return frame(request.transaction, request.unit, good_pdu(request, {0: counter["value"]}))

    server, driver = await _raw_driver(connect, respond)
    sink = CollectingSink()
    alias = signals_of(driver)["a/word"].alias
    task = asyncio.create_task(driver.stream(driver.description.signals, sink, StreamHints(deadband=4)))  # type: ignore[attr-defined]
    try:
        await sink.wait_for(lambda: len(sink.good_values(alias)) >= 3)
    finally:
        assert await stop_task(task) is None
        await server.stop()
    values = sink.good_values(alias)
    assert all(b - a > 4 for a, b in zip(values, values[1:], strict=False)), values


# --- discovery and endpoints -----------------------------------------------------------------------


def _service(**properties: str) -> MdnsService:
    return MdnsService("_modbus._tcp.local.", "plc-7", "127.0.0.1", 5020, properties)


def test_from_mdns() -> None:
    found = ModbusDriver.from_mdns(_service(unit="3", map="cell-plc"))
    assert (found.device_id, found.endpoint, found.name) == ("plc-7", "modbus+tcp://127.0.0.1:5020", "plc-7")
    assert dict(found.options) == {"unit": 3, "map": "cell-plc"}
    assert ModbusDriver.from_mdns(_service(map="vfd")).options["unit"] == 1
    assert ModbusDriver.discovery[0].service_type == "_modbus._tcp.local."


@pytest.mark.parametrize(
    "properties",
    [
        {"unit": "x", "map": "cell-plc"},
        {"unit": "300", "map": "cell-plc"},
        {"unit": "-1", "map": "cell-plc"},
        {"unit": "1"},
        {"unit": "1", "map": "nope"},
        {"unit": "1", "map": "../../etc/passwd"},
        {"unit": "1", "map": "/tmp/x.yaml"},
    ],
)
def test_from_mdns_rejects_junk(properties: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        ModbusDriver.from_mdns(_service(**properties))


def test_parse_endpoint() -> None:
    assert parse_endpoint("modbus+tcp://127.0.0.1:5020") == ("127.0.0.1", 5020)
    assert parse_endpoint("modbus://plc.local") == ("plc.local", 502)
    assert parse_endpoint("modbus+tcp://[::1]:1502/") == ("::1", 1502)
    for bad in (
        "opc.tcp://127.0.0.1:4840",
        "modbus+tcp://:502",
        "modbus+tcp://h:99999",
        "modbus+tcp://h:1/x",
        "h:502",
    ):
        with pytest.raises(InvalidArgument):
            parse_endpoint(bad)
