"""The OPC UA driver against the real robot simulator over loopback TCP."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from asyncua import ua
from pydantic import ValidationError

from linebridge.drivers.base import (
    Access,
    CommandKind,
    DeviceError,
    DeviceKind,
    InvalidArgument,
    MdnsService,
    Quality,
    Signal,
    StreamHints,
    Unavailable,
    ValueType,
)
from linebridge.drivers.opcua.conversion import quality_of
from linebridge.drivers.opcua.driver import OpcUaDriver, OpcUaOptions, opc_tcp_url
from linebridge.drivers.opcua.mapping import generic_path, signal_path
from linebridge.drivers.opcua.simulator import SERVICE_TYPE, RobotSimulator
from tests.conftest import free_port
from tests.opcua_helpers import (
    RecordingSink,
    ThreadedSimulator,
    assign_aliases,
    by_path,
    make_driver,
    wait_until,
)

PATH_SYNTAX = re.compile(r"^[a-z0-9_.-]+(/[a-z0-9_.-]+)*$")
AXIS_POSITIONS = [f"axes/{n}/actual_position" for n in range(1, 7)]


@pytest.fixture(scope="module")
def shared() -> Iterator[ThreadedSimulator]:
    """One simulator per module (asyncua takes ~1 s to build a server); each test resets it."""
    host = ThreadedSimulator(name="robot-1", rate_hz=100)
    host.start()
    yield host
    host.stop()


@pytest.fixture
async def host(shared: ThreadedSimulator) -> ThreadedSimulator:
    """The shared simulator, serving and back in its power-on state."""
    return await shared.fresh()


@pytest.fixture
async def driver(host: ThreadedSimulator) -> AsyncIterator[OpcUaDriver]:
    opcua = make_driver(host.sim.endpoint)
    yield opcua
    await opcua.close()


async def stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def service(**changes: object) -> MdnsService:
    fields: dict[str, object] = {
        "service_type": SERVICE_TYPE,
        "instance": "Robot 1 (Cell A)",
        "host": "127.0.0.1",
        "port": 4840,
        "properties": {"path": "/", "caps": "DA,DI"},
    }
    fields.update(changes)
    return MdnsService(**fields)  # type: ignore[arg-type]


# -- discovery, options, mapping (no server) ---------------------------------------------------------


def test_from_mdns_builds_device_from_srv_and_txt() -> None:
    device = OpcUaDriver.from_mdns(service())
    assert (device.device_id, device.endpoint, device.name) == (
        "robot-1-cell-a",
        "opc.tcp://127.0.0.1:4840/",
        "Robot 1 (Cell A)",
    )
    assert (
        OpcUaDriver.from_mdns(service(properties={"path": "/ua/robot"})).endpoint
        == "opc.tcp://127.0.0.1:4840/ua/robot"
    )
    assert OpcUaDriver.from_mdns(service(host="::1", properties={})).endpoint == "opc.tcp://[::1]:4840/"
    assert OpcUaDriver.from_mdns(service(host="robot-1.local.")).endpoint == "opc.tcp://robot-1.local:4840/"


@pytest.mark.parametrize(
    "changes",
    [
        {"port": 0},
        {"port": 70000},
        {"properties": {"path": "ua/robot"}},
        {"properties": {"path": "/ua robot"}},
        {"instance": "robot\x00one"},
        {"instance": "r" * 300},
        {"properties": {"path": "/" + "x" * 400}},
        {"properties": {"path": "/", "note": "bell\x07"}},
        {"properties": {"caps": "DA,NOT-A-CAP"}},
        {"host": "bad host!"},
        {"host": ""},
        {"instance": "   "},
        {"instance": "***"},
    ],
    ids=lambda c: next(iter(c)) + "=" + repr(next(iter(c.values())))[:20],
)
def test_from_mdns_rejects_junk(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        OpcUaDriver.from_mdns(service(**changes))


def test_options_defaults_and_validation() -> None:
    assert OpcUaOptions().browse_root == "i=85"
    assert OpcUaOptions(browse_root="Objects").browse_root == "i=85"
    assert OpcUaOptions(browse_root="ns=2;s=Robot").browse_root == "ns=2;s=Robot"
    with pytest.raises(ValidationError, match="browse_root"):
        OpcUaOptions(browse_root="not a node id;;")
    with pytest.raises(ValidationError, match="publishing_intervall"):
        OpcUaOptions(publishing_intervall=0.1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="request_timeout"):
        OpcUaOptions(request_timeout=0)


def test_mapping_table_and_generic_fallback() -> None:
    md = ["MotionDeviceSystem", "MotionDevices", "KR10"]
    assert signal_path([*md, "Axes", "A3", "ParameterSet", "ActualPosition"]) == "axes/3/actual_position"
    assert (
        signal_path([*md, "PowerTrains", "PowerTrain_03", "M3", "ParameterSet", "MotorTemperature"])
        == "axes/3/motor_temperature"
    )
    assert (
        signal_path(["Cell", "MotionDeviceSystem", "SafetyStates", "S1", "ParameterSet", "EmergencyStop"])
        == "safety/emergency_stop"
    )
    assert signal_path(["Line", "PLC 1", "ParameterSet", "CycleTime"]) == "line/plc_1/cycle_time"
    assert generic_path(["IOModule", "DigitalInputs", "DI#7"]) == "io_module/digital_inputs/di_7"
    assert [
        quality_of(c) for c in (0, ua.StatusCodes.UncertainLastUsableValue, ua.StatusCodes.BadOutOfRange)
    ] == [Quality.GOOD, Quality.UNCERTAIN, Quality.BAD]


# -- against the simulator ------------------------------------------------------------------------------


async def test_connect_describes_the_robot(driver: OpcUaDriver) -> None:
    description = await driver.connect()
    assert description.kind is DeviceKind.ROBOT
    assert (description.identity, description.name) == ("urn:linebridge:sim:opcua-robot:robot-1", "robot-1")
    assert (description.vendor, description.model, description.serial_number) == (
        "Linebridge",
        "SimArm 6",
        "SIM-robot-1",
    )
    signals = by_path(description)
    assert len(signals) == len(description.signals), "paths are unique"
    assert all(PATH_SYNTAX.match(path) for path in signals), sorted(signals)
    for path in AXIS_POSITIONS:
        signal = signals[path]
        assert (signal.value_type, signal.unit, signal.access, signal.source_type) == (
            ValueType.DOUBLE,
            "deg",
            Access.READ,
            "Double",
        )
        assert signal.address.startswith("ns=")
    assert signals["axes/2/actual_speed"].unit == "deg/s"
    assert signals["axes/6/motor_temperature"].unit == "degC"
    assert signals["safety/emergency_stop"].value_type is ValueType.BOOL
    assert (signals["speed_override"].access, signals["speed_override"].unit) == (Access.READ_WRITE, "%")
    assert signals["program/name"].value_type is ValueType.STRING
    register = signals["motion_device_system/controllers/controller_1/io/register_1"]  # generic fallback
    assert (register.value_type, register.source_type, register.access) == (
        ValueType.INT,
        "Int32",
        Access.READ_WRITE,
    )
    assert not any("start_up_time" in path for path in signals), "DateTime has no column and is skipped"
    methods = {m.name: m for m in description.methods}
    assert set(methods) == {"StartProgram", "StopProgram", "MoveToHome", "ResetProtectiveStop"}
    start = methods["StartProgram"]
    assert [(a.name, a.value_type) for a in start.inputs] == [("ProgramName", ValueType.STRING)]
    assert [(a.name, a.value_type) for a in start.outputs] == [("Started", ValueType.BOOL)]
    assert description.commands == frozenset({CommandKind.WRITE, CommandKind.INVOKE, CommandKind.STOP})


async def test_stream_delivers_batches_with_assigned_aliases(driver: OpcUaDriver) -> None:
    description = await driver.connect()
    signals = by_path(description)
    chosen = [signals[p] for p in AXIS_POSITIONS] + [signals["safety/emergency_stop"]]
    assign_aliases(chosen, first=101)
    sink = RecordingSink()
    task = asyncio.create_task(driver.stream(chosen, sink, StreamHints(sampling_interval=0.01)))
    try:
        await wait_until(lambda: len(sink.batches) >= 5, what="5 batches")
    finally:
        await stop_task(task)
    assert {a for b in sink.batches for a in b.aliases} <= set(range(101, 108))
    positions = sink.values_of(101)
    assert len(set(positions)) > 3, "axis 1 moves"
    now_ns = time.time_ns()
    for batch in sink.batches:
        assert batch.device_id == "robot-1" and batch.qualities is None
        assert len(batch.values) == len(batch.timestamps) == len(batch.aliases)
        assert all(abs(now_ns - t) < 60e9 for t in batch.timestamps), "source timestamps, in ns"
        doubles_only = 107 not in batch.aliases
        assert batch.value_type == (ValueType.DOUBLE if doubles_only else None)
    assert sink.degraded_calls == []


async def test_deadband_hint_reduces_traffic(driver: OpcUaDriver) -> None:
    description = await driver.connect()
    positions = [by_path(description)[p] for p in AXIS_POSITIONS]
    assign_aliases(positions)
    every, banded = RecordingSink(), RecordingSink()
    tasks = [
        asyncio.create_task(driver.stream(positions, every, StreamHints(0.01, 0.0))),
        asyncio.create_task(driver.stream(positions, banded, StreamHints(0.01, 5.0))),
    ]
    try:
        await wait_until(lambda: every.sample_count() >= 300, what="300 samples without deadband")
    finally:
        for task in tasks:
            await stop_task(task)
    assert banded.sample_count() >= len(positions), "initial values still arrive"
    assert banded.sample_count() < every.sample_count() / 2


async def test_read_returns_one_batch(driver: OpcUaDriver) -> None:
    description = await driver.connect()
    signals = by_path(description)
    chosen = [signals["axes/1/actual_position"], signals["program/name"], signals["safety/protective_stop"]]
    assign_aliases(chosen, first=7)
    batch = await driver.read(chosen)
    assert batch.aliases == [7, 8, 9] and batch.qualities is None and batch.value_type is None
    assert isinstance(batch.values[0], float) and batch.values[1:] == ["demo", False]
    missing = Signal("ghost", ValueType.DOUBLE, address="ns=4;s=DoesNotExist", alias=10)
    bad = await driver.read([missing])
    assert bad.qualities == [Quality.BAD] and bad.value_type is ValueType.DOUBLE


async def test_write_out_of_range_is_a_device_error(driver: OpcUaDriver) -> None:
    override = by_path(await driver.connect())["speed_override"]
    with pytest.raises(DeviceError, match=r"speed_override: BadOutOfRange"):
        await driver.write([(override, 150.0)])


async def test_write_to_the_wrong_node_type(driver: OpcUaDriver) -> None:
    signals = by_path(await driver.connect())
    with pytest.raises(DeviceError, match="axes/1/actual_position: Bad"):  # read-only node
        await driver.write([(signals["axes/1/actual_position"], 1.0)])
    register = signals["motion_device_system/controllers/controller_1/io/register_1"]
    as_double = Signal(
        "register-as-double",
        ValueType.DOUBLE,
        access=Access.READ_WRITE,
        source_type="Double",
        address=register.address,
    )
    with pytest.raises(DeviceError, match="BadTypeMismatch"):
        await driver.write([(as_double, 1.5)])
    with pytest.raises(InvalidArgument, match="Int32"):
        await driver.write([(register, 2**40)])


async def test_cancelled_stream_deletes_its_subscription(
    host: ThreadedSimulator, driver: OpcUaDriver
) -> None:
    description = await driver.connect()
    sink = RecordingSink()
    assign_aliases(description.signals)
    task = asyncio.create_task(driver.stream(description.signals, sink, StreamHints()))
    await wait_until(lambda: len(sink.batches) >= 2, what="2 batches")
    info = next(v for k, v in driver.diagnostics().items() if k.startswith("subscription_"))
    subscription_id = int(re.match(r"id=(\d+)", info).group(1))  # type: ignore[union-attr]
    assert subscription_id in await host.run(_subscription_ids(host.sim))
    await stop_task(task)
    assert subscription_id not in await host.run(_subscription_ids(host.sim))
    assert not any(key.startswith("subscription_") for key in driver.diagnostics())


async def _subscription_ids(sim: RobotSimulator) -> set[int]:
    assert sim._server is not None
    return set(sim._server.iserver.subscription_service.subscriptions)


async def test_write_then_read_back(driver: OpcUaDriver) -> None:
    signals = by_path(await driver.connect())
    io = "motion_device_system/controllers/controller_1/io/"
    writes = [
        (signals["speed_override"], 42.5),
        (signals[io + "register_1"], -1234),
        (signals[io + "digital_output_1"], True),
        (signals["program/name"], "weld-7"),
    ]
    await driver.write(writes)
    batch = await driver.read([s for s, _ in writes])
    assert batch.values == [42.5, -1234, True, "weld-7"]


async def test_call_start_program_and_read_program_state(
    host: ThreadedSimulator, driver: OpcUaDriver
) -> None:
    description = await driver.connect()
    methods = {m.name: m for m in description.methods}
    state = by_path(description)["program/state"]
    progress: list[tuple[float, str]] = []
    assert await driver.call(methods["StopProgram"], [], lambda f, m: progress.append((f, m))) == []
    assert (await driver.read([state])).values == ["Stopped"]
    assert await driver.call(methods["StartProgram"], ["weld-7"], lambda f, m: None) == [True]
    batch = await driver.read([state, by_path(description)["program/name"]])
    assert batch.values == ["Running", "weld-7"]
    assert progress and progress[-1][0] == 1.0

    await host.run(host.sim.trigger_protective_stop())
    assert await driver.call(methods["StartProgram"], ["weld-7"], lambda f, m: None) == [False]
    with pytest.raises(DeviceError, match="BadInvalidState"):
        await driver.call(methods["MoveToHome"], [], lambda f, m: None)
    with pytest.raises(InvalidArgument, match="takes 1 argument"):
        await driver.call(methods["StartProgram"], [], lambda f, m: None)
    with pytest.raises(InvalidArgument, match="ProgramName"):
        await driver.call(methods["StartProgram"], [3], lambda f, m: None)


async def test_stop_calls_stop_program(host: ThreadedSimulator, driver: OpcUaDriver) -> None:
    await driver.connect()
    assert host.sim.read_value("program_state") == "Running"
    await driver.stop()
    assert host.sim.read_value("program_state") == "Stopped"


async def test_bad_status_degrades_once_and_recovers(host: ThreadedSimulator, driver: OpcUaDriver) -> None:
    signals = by_path(await driver.connect())
    chosen = [
        signals["motion_device_system/controllers/controller_1/io/register_1"],
        signals["axes/1/actual_position"],
    ]
    assign_aliases(chosen)
    sink = RecordingSink()
    task = asyncio.create_task(driver.stream(chosen, sink, StreamHints()))
    try:
        await wait_until(lambda: len(sink.batches) >= 2, what="first batches")
        await host.run(host.sim.set_value("register", 0, status=ua.StatusCodes.BadSensorFailure))
        await wait_until(lambda: any(b.qualities for b in sink.batches), what="a batch with a bad sample")
        seen = len(sink.batches)
        await wait_until(lambda: len(sink.batches) >= seen + 3, what="more batches while bad")
        assert len(sink.degraded_calls) == 1 and "BadSensorFailure" in (sink.degraded_calls[0] or "")
        flagged = next(b for b in sink.batches if b.qualities)
        assert flagged.qualities[flagged.aliases.index(1)] == Quality.BAD
        await host.run(host.sim.set_value("register", 5))
        await wait_until(lambda: len(sink.degraded_calls) == 2, what="recovery report")
        assert sink.degraded_calls[1] is None
    finally:
        await stop_task(task)


async def test_server_stopped_mid_stream_raises_unavailable(
    host: ThreadedSimulator, driver: OpcUaDriver
) -> None:
    description = await driver.connect()
    assign_aliases(description.signals)
    sink = RecordingSink()
    task = asyncio.create_task(driver.stream(description.signals, sink, StreamHints()))
    await wait_until(lambda: len(sink.batches) >= 2, what="first batches")
    await host.run(host.sim.stop())
    with pytest.raises(Unavailable):
        await asyncio.wait_for(task, timeout=10)
    with pytest.raises(Unavailable):
        await driver.read(description.signals[:1])
    await driver.close()
    await host.run(host.sim.start())  # same port: the session supervisor's reconnect finds it again
    again = await driver.connect()
    assert again.identity == description.identity
    assert len((await driver.read(again.signals[:3])).values) == 3


async def test_connect_rejects_a_malformed_endpoint() -> None:
    driver = make_driver("http://127.0.0.1:4840/")
    with pytest.raises(InvalidArgument, match="opc.tcp://"):
        await driver.connect()
    assert opc_tcp_url("opc.tcp://robot-1.local") == "opc.tcp://robot-1.local:4840/"


async def test_connect_to_a_closed_port_is_unavailable() -> None:
    driver = make_driver(f"opc.tcp://127.0.0.1:{free_port()}/")
    with pytest.raises(Unavailable, match="cannot connect"):
        await asyncio.wait_for(driver.connect(), timeout=10)
    await driver.close()
    await driver.close()
