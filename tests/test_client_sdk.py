"""The client SDK against a real bridge on loopback: devices, telemetry, commands, jog, sync wrapper."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from linebridge.client import (
    AsyncClient,
    Batch,
    Client,
    CommandCancelled,
    CommandFailed,
    CommandState,
    CommandTimedOut,
    DeviceEventType,
    DeviceKind,
    DeviceNotFound,
    DeviceState,
    NoticeKind,
    Sample,
    ValueType,
)
from linebridge.devices.catalog import DriverCatalog
from linebridge.drivers.sim.driver import SimDriver
from linebridge.model import DeviceState as CoreState
from tests.conftest import sim_device, wait_for_state
from tests.gates_helpers import ArmDriver, arm_device, eventually

ARM_POLICY = {
    "motion_enabled": True,
    "require": {"safety/protective_stop": False},
    "joint_limits": [[-1.0, 1.0]] * 6,
}


@pytest.fixture
def catalog() -> DriverCatalog:
    return DriverCatalog({"arm": ArmDriver, "sim": SimDriver})


@pytest.fixture
async def bridge(start_bridge):
    app = await start_bridge(
        [sim_device("sdk-1", signals=3, rate_hz=100), sim_device("sdk-2", signals=2, rate_hz=100)]
    )
    await wait_for_state(app, "sdk-1", CoreState.ONLINE)
    await wait_for_state(app, "sdk-2", CoreState.ONLINE)
    return app


@pytest.fixture
async def client(bridge):
    async with AsyncClient(bridge.api_address) as c:
        yield c


async def test_devices_are_dataclasses_with_enums(client):
    devices = {d.id: d for d in await client.devices()}
    assert set(devices) == {"sdk-1", "sdk-2"}
    sdk1 = devices["sdk-1"]
    assert sdk1.state is DeviceState.ONLINE and sdk1.online and isinstance(sdk1.kind, DeviceKind)
    assert sdk1.signals["setpoint"].value_type is ValueType.DOUBLE and sdk1.signals["setpoint"].writable
    assert sdk1.signals["counter"].full_path == "sdk-1/counter" and not sdk1.signals["counter"].writable
    assert [a.value_type for a in sdk1.methods["Echo"].inputs] == [ValueType.STRING]
    assert set(sdk1.commands) == {"write", "invoke", "stop"}
    assert (await client.device("sdk-2")).signals.keys() == devices["sdk-2"].signals.keys()
    assert [d.id for d in await client.devices("sdk-2", signals=False)] == ["sdk-2"]
    assert (await client.devices("sdk-2", signals=False))[0].signals == {}
    with pytest.raises(DeviceNotFound, match="ghost"):
        await client.device("ghost")
    info = await client.info()
    assert info.bridge_id == "test-bridge" and info.devices == 2 and "sim" in info.drivers
    assert (await client.uplink_status()).state == 1  # UPLINK_STATE_DISABLED: no uplink configured
    assert (await client.approve("sdk-1")).id == "sdk-1"  # already allowed: returned unchanged


async def test_watch_devices_reports_existing_devices(client):
    seen = {}
    async for event in client.watch_devices(include_existing=True):
        seen[event.device.id] = event.type
        if {"sdk-1", "sdk-2"} <= seen.keys():
            break
    assert seen["sdk-1"] is seen["sdk-2"] is DeviceEventType.ADDED


async def test_subscribe_yields_columnar_batches_and_notices(client):
    notices = []
    subscription = client.subscribe(["sdk-1/values/*"], on_notice=notices.append, latency=0.005)
    batches: list[Batch] = []
    async for batch in subscription:
        batches.append(batch)
        if sum(len(b) for b in batches) >= 30:
            break
    assert [n.kind for n in notices[:2]] == [NoticeKind.CATALOG, NoticeKind.SYNC]
    assert set(notices[0].added) == {f"sdk-1/values/{i}" for i in range(3)}
    batch = batches[-1]
    assert (
        batch.timestamps.dtype == np.int64
        and batch.doubles.dtype == np.float64
        and len(batch.doubles) == len(batch)
    )
    assert set(batch.paths.tolist()) <= {f"sdk-1/values/{i}" for i in range(3)}
    assert batch.ints.size == batch.bools.size == batch.strings.size == 0
    assert (batch.qualities == 1).all()
    ts, values = batch.series("sdk-1/values/0")
    assert ts.size == values.size > 0 and np.all(np.abs(values) <= 1.0)  # sine waves
    first = next(iter(batch))
    assert (
        isinstance(first, Sample)
        and first.path.startswith("sdk-1/values/")
        and isinstance(first.value, float)
    )
    kept = subscription.history(["sdk-1/values/1"])
    assert len(kept) > 0 and set(kept.paths.tolist()) == {"sdk-1/values/1"}


async def test_per_sample_iteration_on_change_and_interval(client):
    got = []
    async for sample in client.subscribe(["sdk-2/values/0"], on_change=True, deadband=0.0).samples():
        got.append(sample)
        if len(got) == 5:
            break
    assert {s.path for s in got} == {"sdk-2/values/0"} and all(isinstance(s.value, float) for s in got)
    paced = client.subscribe(["sdk-2/*"], interval=0.05)
    async for batch in paced:
        if len(batch):
            assert set(batch.paths.tolist()) <= {
                f"sdk-2/{p}" for p in ("values/0", "values/1", "setpoint", "enabled", "label", "counter")
            }
            break


async def test_read_and_client_history(client):
    read = await client.read(["sdk-1/setpoint", "sdk-1/enabled"], from_device=True)
    assert read.latest()["sdk-1/setpoint"].value == 0.0
    subscription = client.subscribe(["sdk-2/values/*"])
    async for _ in subscription:
        if len(subscription.history()) >= 10:
            break
    table = client.history(["sdk-2/values/0"], seconds=60)
    assert len(table) > 0 and set(table.paths.tolist()) == {"sdk-2/values/0"}
    subscription.close()


async def test_execute_write_invoke_and_events(client):
    write = await client.execute("sdk-1", write={"setpoint": 42.5, "label": "hello"})
    assert write.id and write.idempotency_key
    assert await write.wait(timeout=10) == ()  # the sim device reads nothing back
    read = await client.read(["sdk-1/setpoint"], from_device=True)
    assert read.latest()["sdk-1/setpoint"].value == 42.5
    echo = await client.execute("sdk-1", invoke="Echo", args=["hi"], idempotency_key="echo-1")
    states = [e.state async for e in echo.events()]
    assert states[0] is CommandState.QUEUED and states[-1] is CommandState.SUCCEEDED
    assert echo.history[-1].result == ("hi",)
    again = await client.execute("sdk-1", invoke="Echo", args=["hi"], idempotency_key="echo-1")
    assert again.id == echo.id
    assert (await client.command(echo.id)).state is CommandState.SUCCEEDED
    assert echo.id in [c.command_id for c in await client.commands("sdk-1")]
    stop = await client.execute("sdk-1", stop=True)
    assert await stop.wait(timeout=10) == ()


async def test_failed_cancelled_and_timed_out_commands_raise(client):
    failed = await client.execute("sdk-1", invoke="Fail")
    with pytest.raises(CommandFailed, match="failed on purpose") as info:
        await failed.wait(timeout=10)
    assert info.value.reason == "DEVICE_ERROR" and info.value.state == "FAILED"
    slow = await client.execute("sdk-2", invoke="Slow", args=[5.0])
    async for event in slow.events():
        if event.state is CommandState.RUNNING:
            break
    assert await slow.cancel() in (CommandState.CANCELLED, CommandState.RUNNING)
    with pytest.raises(CommandCancelled):
        await slow.wait(timeout=10)
    late = await client.execute("sdk-2", invoke="Slow", args=[5.0], timeout=0.2)
    with pytest.raises(CommandTimedOut):
        await late.wait(timeout=10)


async def test_jog_keeps_the_deadman_armed_and_stops_on_exit(start_bridge):
    app = await start_bridge([arm_device("arm-1", move_seconds=5.0)], policies={"arm-*": ARM_POLICY})
    await wait_for_state(app, "arm-1", CoreState.ONLINE)
    arm = app.driver_of("arm-1")
    alias = app.registry.get("arm-1").signals["safety/protective_stop"].alias
    await eventually(lambda: app.bus.value_of(alias), "the arm's safety state")
    async with AsyncClient(app.api_address) as client:
        async with client.jog("arm-1", deadman_interval=0.3) as jog:
            event = await jog.move_joints([0.1] * 6)
            assert event.state is CommandState.QUEUED and event.command_id
            await eventually(lambda: len(arm.executed) == 1, "the target on the arm")
            await asyncio.sleep(0.6)  # twice the deadman interval: only the heartbeat keeps it armed
            assert arm.stopped == 0
        await eventually(lambda: arm.stopped == 1, "the stop when the jog block ends")
    await asyncio.to_thread(_sync_jog, app.api_address)
    await eventually(lambda: arm.stopped == 2, "the stop when the sync jog block ends")


def _sync_jog(address: str) -> None:
    with Client(address) as bridge, bridge.jog("arm-1", deadman_interval=0.5) as jog:
        assert jog.move_joints([0.2] * 6).state is CommandState.QUEUED


def _sync_session(address: str) -> dict:
    """Everything a script does, on a thread that is not the test's loop."""
    with Client(address) as bridge:
        out = {"devices": sorted(d.id for d in bridge.devices())}
        with bridge.subscribe(["sdk-1/values/0"]) as subscription:
            for batch in subscription:
                if len(batch):
                    out["batch"] = len(batch)
                    break
        out["history"] = len(subscription.history())
        command = bridge.execute("sdk-1", write={"setpoint": 7.0})
        out["states"] = [e.state for e in command.events()]
        out["read"] = bridge.read(["sdk-1/setpoint"], from_device=True).latest()["sdk-1/setpoint"].value
        out["echo"] = bridge.execute("sdk-1", invoke="Echo", args=["x"]).wait(timeout=10)
        out["events"] = next(iter(bridge.watch_devices())).type
        out["info"] = bridge.info().bridge_id
        out["commands"] = [c.command_id for c in bridge.commands("sdk-1")]
        out["command"] = bridge.command(command.id).state
        slow = bridge.execute("sdk-2", invoke="Slow", args=[5.0])
        out["cancel"] = slow.cancel()
        out["slow"] = [e.state for e in slow.events()][-1]
    return out


async def test_sync_client_from_a_thread(bridge):
    out = await asyncio.to_thread(_sync_session, bridge.api_address)
    assert out["devices"] == ["sdk-1", "sdk-2"] and out["batch"] > 0 and out["history"] >= out["batch"]
    assert out["states"][-1] is CommandState.SUCCEEDED and out["read"] == 7.0 and out["echo"] == ("x",)
    assert out["events"] is DeviceEventType.ADDED and out["info"] == "test-bridge"
    assert out["command"] is CommandState.SUCCEEDED and len(out["commands"]) == 2
    assert out["cancel"] in (CommandState.CANCELLED, CommandState.QUEUED, CommandState.RUNNING)
    assert out["slow"] is CommandState.CANCELLED


async def test_a_subscriber_that_falls_behind_gets_a_dropped_notice(start_bridge):
    app = await start_bridge(
        [sim_device("fast-1", signals=50, rate_hz=1000, rows_per_batch=10)],
        telemetry={"subscriber_queue_samples": 2_000},
    )
    await wait_for_state(app, "fast-1", CoreState.ONLINE)
    async with AsyncClient(app.api_address) as client:
        subscription = client.subscribe(["fast-1/*"])
        stream = aiter(subscription)
        while not subscription.synced.is_set():
            await anext(stream)
        # Read nothing while gRPC flow control fills up and the bridge's queue overflows.
        await eventually(lambda: app.bus.samples_dropped > 0, "samples dropped for the silent reader", 30)
        async with asyncio.timeout(30):
            while not subscription.dropped_total:
                await anext(stream)
        (notice,) = [n for n in subscription.notices if n.kind is NoticeKind.DROPPED][:1]
        assert notice.samples == subscription.dropped_total > 0 and "dropped" in notice.message
        await stream.aclose()
