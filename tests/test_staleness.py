"""Stale values and hung peers (issue 12 defect 6 and risk 2, issue 14 "Data quality").

Real simulators run as child processes and are hung with SIGSTOP (sockets stay open), so only the
bridge's liveness bound can notice; Read, Subscribe's initial values and the live stream must then
say STALE, the CLI shows quality and age, and a safety `require` on a stale value is not met.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from linebridge.api import pb
from linebridge.commands.policy import DevicePolicy
from linebridge.commands.safety import SafetyGate
from linebridge.errors import FailedPrecondition
from linebridge.hil.sim_process import SimProcess
from linebridge.model import (
    DeviceDescription,
    DeviceKind,
    DeviceState,
    Quality,
    SampleBatch,
    Signal,
    ValueType,
)
from linebridge.registry import DeviceRecord, DeviceRegistry
from linebridge.telemetry.bus import SubscriptionOptions, TelemetryBus
from tests.conftest import wait_for_state
from tests.test_cli import cli

STALE = pb.common.QUALITY_STALE


@pytest.fixture
async def ur_process() -> AsyncIterator[SimProcess]:
    process = SimProcess("ur", "stale-ur", ["--no-mdns"])
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)


@pytest.fixture
async def opcua_process() -> AsyncIterator[SimProcess]:
    process = SimProcess("opcua-robot", "stale-robot", ["--no-mdns", "--port", "0", "--rate", "20"])
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)


async def _left_online(app, device_id: str, timeout: float = 20.0) -> str:
    """Wait until the device is no longer ONLINE; its state reason."""
    await wait_for_state(app, device_id, DeviceState.OFFLINE, DeviceState.CONNECTING, timeout=timeout)
    return app.registry.get(device_id).state_reason


async def _initial_qualities(client, paths: list[str]) -> list[int]:
    qualities: list[int] = []
    async for update in client.telemetry.Subscribe(pb.telemetry.SubscribeRequest(paths=paths)):
        if update.HasField("batch"):
            batch = update.batch
            qualities += list(batch.qualities) or [pb.common.QUALITY_GOOD] * len(batch.aliases)
        if update.HasField("sync"):
            return qualities
    raise AssertionError("no sync")


async def _stream_until_stale(client, paths: list[str], hung: asyncio.Event) -> list[int]:
    """Subscribe, let the test hang the device once initial values are in, return the STALE batch's qualities."""
    async for update in client.telemetry.Subscribe(pb.telemetry.SubscribeRequest(paths=paths)):
        if update.HasField("sync"):
            hung.set()
        elif hung.is_set() and update.HasField("batch") and STALE in update.batch.qualities:
            return list(update.batch.qualities)
    raise AssertionError("stream ended")


async def test_a_hung_ur_leaves_online_by_its_liveness_bound_and_its_values_turn_stale(
    start_bridge, client_for, ur_process
):
    """Before: a SIGSTOPped UR stayed ONLINE for 5.5 s and its cached values read GOOD (q=1 age=19.2s)."""
    app = await start_bridge([{"id": "ur-1", "driver": "ur", "endpoint": ur_process.endpoint}])
    await wait_for_state(app, "ur-1", DeviceState.ONLINE, timeout=30)
    client = client_for(app)
    hung = asyncio.Event()
    stream = asyncio.create_task(_stream_until_stale(client, ["ur-1/joints/*"], hung))
    await asyncio.wait_for(hung.wait(), 15)
    ur_process.pause()
    try:
        reason = await _left_online(app, "ur-1")
        qualities = await asyncio.wait_for(stream, 15)
        read = await client.telemetry.Read(pb.telemetry.ReadRequest(paths=["ur-1/joints/*"]))
        initial = await _initial_qualities(client, ["ur-1/joints/*"])
        code, out, _ = await cli(app, "read", "ur-1/robot/mode")
    finally:
        ur_process.resume()
    assert "liveness bound 1 s" in reason, reason
    assert qualities and set(qualities) == {STALE}
    assert read.values and {v.quality for v in read.values} == {STALE}
    assert all(v.age.seconds or v.age.nanos for v in read.values)
    assert initial and set(initial) == {STALE}
    assert code == 0 and "ur-1/robot/mode" in out and "STALE" in out and "age " in out
    # back: the device reconnects and fresh samples are GOOD again
    await wait_for_state(app, "ur-1", DeviceState.ONLINE, timeout=30)
    alias = app.registry.get("ur-1").signals["robot/mode"].alias
    for _ in range(300):
        found = app.bus.value_of(alias)
        if found is not None and found[2] == Quality.GOOD:
            break
        await asyncio.sleep(0.05)
    assert app.bus.value_of(alias)[2] == Quality.GOOD


async def test_a_hung_opcua_server_leaves_online_within_two_publishes_and_a_keepalive(
    start_bridge, client_for, opcua_process
):
    """Before: 7.6 s (3 x keep-alive + request timeout). Now 2 x 0.1 s + 1 s."""
    device = {"id": "rob-1", "driver": "opcua", "endpoint": opcua_process.endpoint}
    app = await start_bridge([device])
    await wait_for_state(app, "rob-1", DeviceState.ONLINE, timeout=30)
    assert app.driver_of("rob-1").liveness(None) == pytest.approx(1.2)
    alias = app.registry.get("rob-1").signals["axes/1/actual_position"].alias
    for _ in range(300):
        if app.bus.value_of(alias) is not None:
            break
        await asyncio.sleep(0.05)
    opcua_process.pause()
    try:
        reason = await _left_online(app, "rob-1")
        read = await client_for(app).telemetry.Read(pb.telemetry.ReadRequest(paths=["rob-1/axes/*"]))
    finally:
        opcua_process.resume()
    assert "liveness bound 1.2 s" in reason, reason
    assert read.values[0].path == "rob-1/axes/1/actual_position" and read.values[0].quality == STALE


# -- one piece: the bus and the safety gate ---------------------------------------------------------


def _bus_with_device() -> tuple[DeviceRegistry, TelemetryBus, Signal]:
    registry = DeviceRegistry()
    bus = TelemetryBus(registry)
    registry.add(DeviceRecord(id="arm-1", driver="arm", endpoint="arm://1"))
    signal = Signal("safety/protective_stop", ValueType.BOOL)
    registry.set_description("arm-1", DeviceDescription(DeviceKind.ROBOT, signals=[signal]))
    registry.set_state("arm-1", DeviceState.CONNECTING)
    registry.set_state("arm-1", DeviceState.ONLINE)
    bus.publish(SampleBatch("arm-1", [signal.alias], [False], [1], None, ValueType.BOOL))
    return registry, bus, signal


def test_a_value_from_before_an_outage_stays_stale_until_it_is_sent_again() -> None:
    registry, bus, signal = _bus_with_device()
    assert bus.value_of(signal.alias)[2] == Quality.GOOD
    registry.set_state("arm-1", DeviceState.OFFLINE, "gone")
    assert bus.value_of(signal.alias)[2] == Quality.STALE
    registry.set_state("arm-1", DeviceState.CONNECTING)
    registry.set_state("arm-1", DeviceState.ONLINE)
    assert bus.value_of(signal.alias)[2] == Quality.STALE  # not sent since the device came back
    assert bus.staleness.is_stale(signal.alias)
    bus.publish(SampleBatch("arm-1", [signal.alias], [False], [2], None, ValueType.BOOL))
    assert bus.value_of(signal.alias)[2] == Quality.GOOD and not bus.staleness.is_stale(signal.alias)


async def test_a_stream_gets_one_batch_marking_the_values_stale() -> None:
    registry, bus, signal = _bus_with_device()
    sub = bus.subscribe(["arm-1/*"], SubscriptionOptions(max_latency=0.001))
    updates = sub.updates()
    kinds = [type(await anext(updates)).__name__ for _ in range(3)]  # catalog, initial values, sync
    registry.set_state("arm-1", DeviceState.OFFLINE, "gone")
    update = await asyncio.wait_for(anext(updates), 5)
    await updates.aclose()
    sub.close()
    assert kinds == ["CatalogUpdate", "BatchUpdate", "SyncUpdate"]
    assert [b.qualities for b in update.batches] == [[Quality.STALE]]


def test_a_safety_require_on_a_stale_value_is_not_met() -> None:
    """Risk 2: `require` conditions read stale values as if current while a hung device looked ONLINE."""
    registry, bus, _ = _bus_with_device()
    gate = SafetyGate(bus.value_of)
    policy = DevicePolicy(motion_enabled=True, require={"safety/protective_stop": False})
    gate.check("motion", registry.get("arm-1"), None, policy, "test")  # fresh: met
    registry.set_state("arm-1", DeviceState.OFFLINE, "no data or keep-alive")
    with pytest.raises(FailedPrecondition, match="has quality STALE"):
        gate.check("motion", registry.get("arm-1"), None, policy, "test")
