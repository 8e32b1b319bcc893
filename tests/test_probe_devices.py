"""Regressions from the fault probe (issue #12) with real device simulators: reasons, paths, watch losses."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import grpc
import pytest

from linebridge.api import pb, services
from linebridge.client.raw import value_message
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, sim_device, wait_for_state
from tests.gates_helpers import events_of, eventually, refusal, write
from tests.opcua_helpers import ThreadedSimulator

FAILED = pb.command.COMMAND_STATE_FAILED
SUCCEEDED = pb.command.COMMAND_STATE_SUCCEEDED
NO_METADATA: tuple[tuple[str, str], ...] = ()
EMPTY_REASON = re.compile(r":\s*$")


@pytest.fixture(scope="module")
def robot() -> Iterator[ThreadedSimulator]:
    host = ThreadedSimulator(name="probe-kr210", rate_hz=50)
    host.start()
    yield host
    host.stop()


def opcua_device(device_id: str, endpoint: str, **options: object) -> dict[str, object]:
    return {"id": device_id, "driver": "opcua", "endpoint": endpoint, "options": options}


async def test_a_hung_opcua_server_gives_reasons_that_say_what_happened(
    start_bridge: BridgeFactory, robot: ThreadedSimulator
):
    await robot.fresh()
    app = await start_bridge([opcua_device("robot-1", robot.sim.endpoint, request_timeout=1.0)])
    await wait_for_state(app, "robot-1", DeviceState.ONLINE)
    robot.freeze(4.0)  # as SIGSTOP: the socket stays open, nothing answers
    events = await events_of(app, write("robot-1", "speed_override", 50.0), NO_METADATA)
    failure = events[-1]
    assert failure.state == FAILED and failure.error.reason == "DEVICE_OFFLINE"
    assert "no response within 1 s" in failure.error.message, failure.error.message
    await wait_for_state(app, "robot-1", DeviceState.OFFLINE, DeviceState.CONNECTING, timeout=15)
    await eventually(lambda: app.registry.get("robot-1").state_reason, "an offline reason", timeout=15)
    reason = app.registry.get("robot-1").state_reason
    assert reason and not EMPTY_REASON.search(reason), reason


def _write(device: str, path: str, value: object) -> pb.command.ExecuteRequest:
    return pb.command.ExecuteRequest(
        device_id=device,
        write=pb.command.WriteAction(writes=[pb.command.SignalWrite(path=path, value=value_message(value))]),
    )


async def test_a_signal_path_that_begins_with_the_device_id_is_taken_as_given(
    start_bridge: BridgeFactory, robot: ThreadedSimulator
):
    await robot.fresh()
    # The robot's signal paths begin with "motion_device_system/": a device of that id has paths
    # "motion_device_system/motion_device_system/...", and SignalWrite.path is the part after the id.
    device = "motion_device_system"
    app = await start_bridge([opcua_device(device, robot.sim.endpoint)])
    await wait_for_state(app, device, DeviceState.ONLINE)
    register = "motion_device_system/controllers/controller_1/io/register_1"
    events = await events_of(app, _write(device, register, 77), NO_METADATA)
    assert events[-1].state == SUCCEEDED, events[-1].error.message
    batch = await app.driver_of(device).read([app.registry.get(device).signal(register)])  # type: ignore[union-attr]
    assert batch.values == [77]
    # The full path is not guessed into the relative one.
    error = await refusal(app, _write(device, f"{device}/{register}", 78), NO_METADATA)
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert f"SignalWrite.path is relative to the device: write {register!r}" in error.details()


async def test_watch_devices_tells_a_stalled_watcher_how_many_events_it_lost(
    start_bridge: BridgeFactory, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(services, "WATCH_QUEUE_EVENTS", 20)
    app = await start_bridge([sim_device("sim-1", signals=1, rate_hz=5)])
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    listeners = len(app.registry._listeners)
    async with grpc.aio.insecure_channel(app.api_address) as channel:
        stream = pb.device_grpc.DeviceServiceStub(channel).WatchDevices(pb.device.WatchDevicesRequest())
        await eventually(lambda: len(app.registry._listeners) > listeners, "the watcher to listen")
        for n in range(100):  # 100 changes at once: more than the watcher's queue holds
            app.registry.set_state("sim-1", DeviceState.DEGRADED, f"probe change {n}")
        app.registry.set_state("sim-1", DeviceState.ONLINE)
        seen: list[pb.device.WatchDevicesResponse] = []
        while not any(r.type == pb.device.DEVICE_EVENT_TYPE_DROPPED for r in seen):
            seen.append(await asyncio.wait_for(stream.read(), 5))
        stream.cancel()
    changes = [r for r in seen if r.type == pb.device.DEVICE_EVENT_TYPE_CHANGED]
    notice = seen[-1]
    assert len(changes) == 20 and changes[0].device.state_reason == "probe change 0"
    assert notice.dropped_events == 81 and notice.total_dropped_events == 81  # 80 changes and the ONLINE
