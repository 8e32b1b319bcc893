"""The OPC UA robot simulator, through a plain asyncua client over loopback TCP."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from asyncua import Client, ua
from zeroconf import ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from linebridge.drivers.opcua.robot_model import AXIS_PROFILES, HOMING_SECONDS, ProgramState, RobotModel
from linebridge.drivers.opcua.sim_nodes import UNECE_NS
from linebridge.drivers.opcua.simulator import SERVICE_TYPE, RobotSimulator
from tests.opcua_helpers import ThreadedSimulator, wait_until

REPO = Path(__file__).resolve().parents[1]
MD = ["0:Objects", "MotionDeviceSystem", "MotionDevices", "MotionDevice_1"]


@pytest.fixture(scope="module")
def shared() -> Iterator[ThreadedSimulator]:
    """One advertised simulator per module (asyncua takes ~1 s to build a server); tests reset it."""
    host = ThreadedSimulator(name="sim-test", rate_hz=100, advertise=True)
    host.start()
    yield host
    host.stop()


@pytest.fixture
async def host(shared: ThreadedSimulator) -> ThreadedSimulator:
    return await shared.fresh()


@pytest.fixture
def sim(host: ThreadedSimulator) -> RobotSimulator:
    return host.sim


@pytest.fixture
async def client(sim: RobotSimulator) -> AsyncIterator[Client]:
    ua_client = Client(sim.endpoint, timeout=5)
    await ua_client.connect()
    yield ua_client
    await ua_client.disconnect()


async def node_at(client: Client, *names: str) -> ua.NodeId:
    """Resolve a browse path (names without namespace match any namespace of that name)."""
    node = client.nodes.objects
    for name in names:
        children = await node.get_children()
        names_of = [(await child.read_browse_name()).Name for child in children]
        assert name in names_of, f"{name} not under {node}: {names_of}"
        node = children[names_of.index(name)]
    return node.nodeid


async def test_starts_on_free_port_with_robotics_structure(sim: RobotSimulator, client: Client) -> None:
    assert sim.port > 0 and sim.endpoint == f"opc.tcp://127.0.0.1:{sim.port}/"
    server = (await client.get_endpoints())[0].Server
    assert server.ApplicationUri == "urn:linebridge:sim:opcua-robot:sim-test"
    for axis in range(1, 7):
        position = await node_at(
            client,
            "MotionDeviceSystem",
            "MotionDevices",
            "MotionDevice_1",
            "Axes",
            f"Axis_{axis}",
            "ParameterSet",
            "ActualPosition",
        )
        units = await client.get_node(position).get_child(["0:EngineeringUnits"])
        eu = await units.read_value()
        assert (eu.NamespaceUri, eu.UnitId, eu.DisplayName.Text) == (UNECE_NS, 0x4444, "deg")  # UNECE "DD"
    temperature = await node_at(
        client,
        "MotionDeviceSystem",
        "MotionDevices",
        "MotionDevice_1",
        "PowerTrains",
        "PowerTrain_6",
        "Motor_6",
        "ParameterSet",
        "MotorTemperature",
    )
    assert isinstance(await client.get_node(temperature).read_value(), float)
    e_stop = await node_at(
        client, "MotionDeviceSystem", "SafetyStates", "SafetyState", "ParameterSet", "EmergencyStop"
    )
    assert await client.get_node(e_stop).read_value() is False
    manufacturer = await node_at(
        client, "MotionDeviceSystem", "MotionDevices", "MotionDevice_1", "Manufacturer"
    )
    assert (await client.get_node(manufacturer).read_value()).Text == "Linebridge"


async def test_joints_move_every_tick(sim: RobotSimulator, client: Client) -> None:
    nodes = [client.get_node(sim.node_id(f"position_{n}")) for n in range(1, 7)]
    first = await client.read_values(nodes)
    latest = list(first)

    async def all_moved() -> bool:
        latest[:] = await client.read_values(nodes)
        return all(a != b for a, b in zip(first, latest, strict=True))

    for _ in range(200):
        if await all_moved():
            break
        await asyncio.sleep(0.05)
    assert all(a != b for a, b in zip(first, latest, strict=True)), (first, latest)
    speeds = await client.read_values([client.get_node(sim.node_id(f"speed_{n}")) for n in range(1, 7)])
    assert any(abs(s) > 0.1 for s in speeds)


async def test_program_methods_and_protective_stop(
    host: ThreadedSimulator, sim: RobotSimulator, client: Client
) -> None:
    task = client.get_node(sim.node_id("start_program.object"))
    state = client.get_node(sim.node_id("program_state"))
    await task.call_method(sim.node_id("stop_program"))
    assert await state.read_value() == "Stopped"
    assert (
        await task.call_method(sim.node_id("start_program"), ua.Variant("weld", ua.VariantType.String))
        is True
    )
    assert (await state.read_value(), sim.read_value("program_name")) == ("Running", "weld")

    await host.run(sim.trigger_protective_stop())
    assert sim.read_value("protective_stop") is True and await state.read_value() == "Stopped"
    assert (
        await task.call_method(sim.node_id("start_program"), ua.Variant("weld", ua.VariantType.String))
        is False
    )
    safety = client.get_node(sim.node_id("reset_protective_stop.object"))
    await safety.call_method(sim.node_id("reset_protective_stop"))
    assert sim.read_value("protective_stop") is False
    with pytest.raises(ua.UaStatusCodeError):  # wrong argument type
        await task.call_method(sim.node_id("start_program"), ua.Variant(7, ua.VariantType.Int32))


async def test_move_to_home_reaches_home_pose(sim: RobotSimulator, client: Client) -> None:
    robot = client.get_node(sim.node_id("move_to_home.object"))
    await robot.call_method(sim.node_id("move_to_home"))  # returns once motion started
    assert sim.model.homing
    homes = [p.home for p in AXIS_PROFILES]
    await wait_until(lambda: not sim.model.homing, timeout=HOMING_SECONDS + 5, what="homing to finish")
    positions = await client.read_values([client.get_node(sim.node_id(f"position_{n}")) for n in range(1, 7)])
    assert positions == pytest.approx(homes, abs=1e-6)


async def test_speed_override_is_range_checked(sim: RobotSimulator, client: Client) -> None:
    override = client.get_node(sim.node_id("speed_override"))
    with pytest.raises(ua.UaStatusCodeError) as refused:
        await override.write_value(ua.Variant(150.0, ua.VariantType.Double))
    assert refused.value.code == ua.StatusCodes.BadOutOfRange
    with pytest.raises(ua.UaStatusCodeError) as mismatch:
        await override.write_value(ua.Variant(50, ua.VariantType.Int32))
    assert mismatch.value.code == ua.StatusCodes.BadTypeMismatch
    await override.write_value(ua.Variant(25.0, ua.VariantType.Double))
    assert await override.read_value() == 25.0
    with pytest.raises(ua.UaStatusCodeError):  # read-only for clients
        await client.get_node(sim.node_id("position_1")).write_value(ua.Variant(1.0, ua.VariantType.Double))


async def test_restarts_on_the_same_port(host: ThreadedSimulator, sim: RobotSimulator) -> None:
    port = sim.port
    await host.run(sim.stop())
    await host.run(sim.start())
    assert sim.port == port
    async with Client(sim.endpoint, timeout=5) as ua_client:
        assert isinstance(await ua_client.get_node(sim.node_id("position_1")).read_value(), float)


def test_model_homing_is_smooth_and_ends_at_home() -> None:
    model = RobotModel()
    for _ in range(50):
        model.step(0.01, 100.0)
    assert model.move_to_home() and model.program_state is ProgramState.STOPPED
    previous = list(model.positions)
    for _ in range(int(HOMING_SECONDS / 0.01) + 2):
        model.step(0.01, 100.0)
        # cosine blend: no joint jumps by more than its peak homing speed allows in one tick
        assert all(abs(a - b) < 5.0 for a, b in zip(model.positions, previous, strict=True))
        previous = list(model.positions)
    assert model.positions == pytest.approx([p.home for p in AXIS_PROFILES])
    assert model.speeds == [0.0] * 6 and not model.homing


async def test_advertises_over_mdns_on_loopback(sim: RobotSimulator) -> None:
    zc = AsyncZeroconf(interfaces=["127.0.0.1"])
    found: asyncio.Queue[str] = asyncio.Queue()

    def on_change(zeroconf: object, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added:
            found.put_nowait(name)

    browser = AsyncServiceBrowser(zc.zeroconf, [SERVICE_TYPE], handlers=[on_change])
    try:
        name = await asyncio.wait_for(_first_matching(found, "sim-test"), timeout=15)
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        assert await info.async_request(zc.zeroconf, 3000)
        assert info.port == sim.port
        assert info.decoded_properties["path"] == "/"
        assert "DA" in (info.decoded_properties["caps"] or "").split(",")
    finally:
        await browser.async_cancel()
        await zc.async_close()


async def _first_matching(queue: asyncio.Queue[str], instance: str) -> str:
    while True:
        name = await queue.get()
        if name.startswith(instance):
            return name


async def test_cli_prints_ready_and_exits_cleanly_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "linebridge.drivers.opcua.simulator",
        "--name",
        "cli-robot",
        "--port",
        "0",
        "--rate",
        "20",
        "--no-mdns",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        assert line.startswith("READY opc.tcp://127.0.0.1:"), line
        async with Client(line.split()[1], timeout=5) as ua_client:
            assert (await ua_client.get_endpoints())[0].Server.ApplicationUri.endswith(":cli-robot")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
