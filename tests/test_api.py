"""The gRPC API end to end: a real channel on loopback to a bridge with synthetic devices."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from linebridge.api import pb
from linebridge.client import Sample
from linebridge.client.raw import value_message, value_of
from linebridge.model import DeviceState
from tests.conftest import sim_device, wait_for_state
from tests.gates_helpers import eventually

Code = grpc.StatusCode


@pytest.fixture
async def bridge(start_bridge):
    app = await start_bridge(
        [sim_device("sim-1", signals=4, rate_hz=50), sim_device("sim-2", signals=2, rate_hz=50)]
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    await wait_for_state(app, "sim-2", DeviceState.ONLINE)
    return app


async def _rest(stream) -> list:
    """Remaining messages of a stream already read with read() (the two styles cannot mix)."""
    out = []
    while (item := await stream.read()) is not grpc.aio.EOF:
        out.append(item)
    return out


async def _code(awaitable) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return info.value.code()


async def test_list_and_get_devices(bridge, client_for):
    client = client_for(bridge)
    devices = {d.id: d for d in await client.list_devices()}
    assert set(devices) == {"sim-1", "sim-2"}
    sim1 = devices["sim-1"]
    assert sim1.state == pb.device.DEVICE_STATE_ONLINE
    assert sim1.driver == "sim" and sim1.endpoint == "sim://sim-1" and sim1.vendor == "Linebridge"
    assert {"values/0", "setpoint", "enabled"} <= {s.path for s in sim1.signals}
    assert set(sim1.capabilities.commands) == {"write", "invoke", "stop"}
    assert "Echo" in {m.name for m in sim1.capabilities.methods}
    got = await client.devices.GetDevice(pb.device.GetDeviceRequest(id="sim-2"))
    assert got.device.id == "sim-2" and len(got.device.signals) == 6


async def test_unknown_device_is_not_found(bridge, client_for):
    client = client_for(bridge)
    assert await _code(client.devices.GetDevice(pb.device.GetDeviceRequest(id="nope"))) is Code.NOT_FOUND


async def test_subscribe_catalog_batches_and_globs(bridge, client_for):
    client = client_for(bridge)
    request = pb.telemetry.SubscribeRequest(paths=["sim-1/values/*"])
    kinds, paths = [], set()
    catalog: dict[int, str] = {}
    async for update in client.telemetry.Subscribe(request):
        kind = update.WhichOneof("update")
        kinds.append(kind)
        if kind == "catalog":
            catalog.update({e.alias: e.path for e in update.catalog.entries})
        if kind == "batch":
            batch = update.batch
            assert len(batch.aliases) == len(batch.timestamps) == len(batch.double_values)
            paths |= {catalog[a] for a in batch.aliases}
            if kinds.count("batch") >= 3:
                break
    assert kinds[0] == "catalog" and "sync" in kinds
    assert set(catalog.values()) == {f"sim-1/values/{i}" for i in range(4)}
    assert paths == set(catalog.values())


async def test_subscribe_multi_device_glob_decodes(bridge, client_for):
    client = client_for(bridge)
    seen: set[str] = set()
    async for item in client.samples(["*/values/0"]):
        if isinstance(item, Sample):
            assert isinstance(item.value, float)
            seen.add(item.path)
            if seen == {"sim-1/values/0", "sim-2/values/0"}:
                break
    assert seen == {"sim-1/values/0", "sim-2/values/0"}


@pytest.mark.parametrize("glob", ["", "sim-1//values", "/sim-1", "sim-1/val ues", "sim-1/a**b", "sim-1/[0]"])
async def test_malformed_glob_is_invalid_argument(bridge, client_for, glob):
    client = client_for(bridge)
    stream = client.telemetry.Subscribe(pb.telemetry.SubscribeRequest(paths=[glob]))
    assert await _code(stream.read()) is Code.INVALID_ARGUMENT
    assert bridge.bus.subscriptions == set()


async def test_unknown_exact_path_is_not_found(bridge, client_for):
    client = client_for(bridge)
    stream = client.telemetry.Subscribe(pb.telemetry.SubscribeRequest(paths=["sim-1/no/such/signal"]))
    assert await _code(stream.read()) is Code.NOT_FOUND
    assert await _code(client.telemetry.Read(pb.telemetry.ReadRequest(paths=["ghost/x"]))) is Code.NOT_FOUND


async def test_subscribe_once_ends_after_sync(bridge, client_for):
    client = client_for(bridge)
    signals = bridge.registry.get("sim-2").signals
    aliases = [s.alias for path, s in signals.items() if path.startswith("values/")]
    await eventually(lambda: all(bridge.bus.value_of(a) for a in aliases), "a cached value of sim-2's values")
    updates = [
        u.WhichOneof("update")
        async for u in client.telemetry.Subscribe(
            pb.telemetry.SubscribeRequest(paths=["sim-2/*"], mode=pb.telemetry.SUBSCRIBE_MODE_ONCE)
        )
    ]
    assert updates == ["catalog", "batch", "sync"]


async def test_write_read_back_and_bad_values(bridge, client_for):
    client = client_for(bridge)
    write = pb.command.ExecuteRequest(
        device_id="sim-1",
        write=pb.command.WriteAction(
            writes=[
                pb.command.SignalWrite(path="setpoint", value=value_message(12.5)),
                pb.command.SignalWrite(path="enabled", value=value_message(True)),
            ]
        ),
    )
    events = await client.execute(write)
    states = [e.state for e in events]
    assert states[0] == pb.command.COMMAND_STATE_QUEUED and states[-1] == pb.command.COMMAND_STATE_SUCCEEDED
    read = await client.telemetry.Read(
        pb.telemetry.ReadRequest(paths=["sim-1/setpoint", "sim-1/enabled"], from_device=True)
    )
    assert [value_of(v.value) for v in read.values] == [12.5, True]

    def write_of(path, value):
        return pb.command.ExecuteRequest(
            device_id="sim-1",
            write=pb.command.WriteAction(
                writes=[pb.command.SignalWrite(path=path, value=value_message(value))]
            ),
        )

    assert await _code(client.execute(write_of("setpoint", "fast"))) is Code.INVALID_ARGUMENT
    assert await _code(client.execute(write_of("enabled", 1.5))) is Code.INVALID_ARGUMENT
    assert await _code(client.execute(write_of("counter", 3))) is Code.INVALID_ARGUMENT  # read-only
    assert await _code(client.execute(write_of("nope", 3.0))) is Code.NOT_FOUND
    read = await client.telemetry.Read(pb.telemetry.ReadRequest(paths=["sim-1/setpoint"], from_device=True))
    assert value_of(read.values[0].value) == 12.5  # nothing else changed
    failed = await client.execute(write_of("setpoint", 5000.0))  # device refuses: FAILED, not an RPC error
    assert failed[-1].state == pb.command.COMMAND_STATE_FAILED and "out of range" in failed[-1].error.message


async def test_read_from_a_hung_device_ends_at_the_rpc_deadline(bridge, client_for):
    client = client_for(bridge)
    driver = bridge.driver_of("sim-1")

    async def hung(signals):
        await asyncio.Event().wait()  # a device that never answers

    driver.read = hung
    request = pb.telemetry.ReadRequest(paths=["sim-1/setpoint"], from_device=True)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.telemetry.Read(request, timeout=2.0)
    assert info.value.code() is Code.DEADLINE_EXCEEDED
    assert "device 'sim-1' did not answer a read within" in info.value.details()
    assert info.value.details().endswith(" s")  # names the time it waited
    other = await client.telemetry.Read(pb.telemetry.ReadRequest(paths=["sim-2/setpoint"], from_device=True))
    assert other.values[0].path == "sim-2/setpoint"  # the bridge and the other device are unaffected


async def test_invoke_with_typed_arguments(bridge, client_for):
    client = client_for(bridge)
    events = await client.execute(
        pb.command.ExecuteRequest(
            device_id="sim-1", invoke=pb.command.InvokeAction(method="Echo", args=[value_message("hi")])
        )
    )
    assert events[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    assert [value_of(v) for v in events[-1].result] == ["hi"]
    bad = pb.command.ExecuteRequest(device_id="sim-1", invoke=pb.command.InvokeAction(method="Echo", args=[]))
    assert await _code(client.execute(bad)) is Code.INVALID_ARGUMENT
    unknown = pb.command.ExecuteRequest(device_id="sim-1", invoke=pb.command.InvokeAction(method="Fly"))
    assert await _code(client.execute(unknown)) is Code.NOT_FOUND


async def test_unsupported_command_kind_and_missing_action(bridge, client_for):
    client = client_for(bridge)
    move = pb.command.ExecuteRequest(
        device_id="sim-1", move_joints=pb.command.MoveJointsAction(positions=[0.1] * 6)
    )
    assert await _code(client.execute(move)) is Code.FAILED_PRECONDITION
    assert await _code(client.execute(pb.command.ExecuteRequest(device_id="sim-1"))) is Code.INVALID_ARGUMENT
    listed = await client.commands.ListCommands(pb.command.ListCommandsRequest(device_id="sim-1"))
    assert listed.commands[0].state == pb.command.COMMAND_STATE_REJECTED
    assert listed.commands[0].error.reason == "UNSUPPORTED_COMMAND"


async def test_idempotency_key_runs_once(bridge, client_for):
    client = client_for(bridge)
    driver = bridge.driver_of("sim-1")
    request = pb.command.ExecuteRequest(
        device_id="sim-1", idempotency_key="stop-42", stop=pb.command.StopAction()
    )
    first = await client.execute(request)
    second = await client.execute(request)
    assert first[-1].command_id == second[-1].command_id
    assert second[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    assert driver.stopped == 1


async def test_stop_preempts_queued_and_running(bridge, client_for):
    client = client_for(bridge)

    def slow(seconds):
        return pb.command.ExecuteRequest(
            device_id="sim-1", invoke=pb.command.InvokeAction(method="Slow", args=[value_message(seconds)])
        )

    running = client.commands.Execute(slow(5.0))
    assert (await running.read()).state == pb.command.COMMAND_STATE_QUEUED
    queued = client.commands.Execute(slow(1.0))
    first_event = await queued.read()
    event = await running.read()
    while event.state != pb.command.COMMAND_STATE_RUNNING:  # wait until the slow call is on the device
        event = await running.read()
    stop = await client.execute(pb.command.ExecuteRequest(device_id="sim-1", stop=pb.command.StopAction()))
    assert stop[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    running_final = (await _rest(running))[-1]
    queued_final = (await _rest(queued))[-1]
    assert running_final.state == queued_final.state == pb.command.COMMAND_STATE_CANCELLED
    assert running_final.error.reason == "PREEMPTED" and "stop" in queued_final.error.message
    got = await client.commands.GetCommand(pb.command.GetCommandRequest(command_id=first_event.command_id))
    assert got.command.state == pb.command.COMMAND_STATE_CANCELLED


async def test_cancel_and_timeout(bridge, client_for):
    client = client_for(bridge)
    slow = pb.command.ExecuteRequest(
        device_id="sim-2", invoke=pb.command.InvokeAction(method="Slow", args=[value_message(5.0)])
    )
    stream = client.commands.Execute(slow)
    event = await stream.read()
    command_id = event.command_id
    # the device's progress reaches the caller while it runs (a 5 s call: no race with its end)
    while not (event.state == pb.command.COMMAND_STATE_RUNNING and event.progress_message):
        event = await stream.read()
    await client.commands.Cancel(pb.command.CancelRequest(command_id=command_id))
    assert (await _rest(stream))[-1].state == pb.command.COMMAND_STATE_CANCELLED
    # a 200 ms deadline ends it TIMED_OUT, whether it was still queued or already running when it passed
    # (asserting it had reported progress first was a race on a loaded machine)
    slow.timeout.FromMilliseconds(200)
    events = await client.execute(slow)
    assert events[-1].state == pb.command.COMMAND_STATE_TIMED_OUT
    assert (
        await _code(client.commands.GetCommand(pb.command.GetCommandRequest(command_id="x")))
        is Code.NOT_FOUND
    )


async def test_command_to_offline_device_is_unavailable(start_bridge, client_for):
    app = await start_bridge([sim_device("dead-1", fail_connect=True)])
    await wait_for_state(app, "dead-1", DeviceState.OFFLINE)
    client = client_for(app)
    request = pb.command.ExecuteRequest(device_id="dead-1", stop=pb.command.StopAction())
    assert await _code(client.execute(request)) is Code.UNAVAILABLE
    unknown = pb.command.ExecuteRequest(device_id="ghost", stop=pb.command.StopAction())
    assert await _code(client.execute(unknown)) is Code.NOT_FOUND


async def test_health_reflection_and_info(bridge, client_for):
    client = client_for(bridge)
    health = health_pb2_grpc.HealthStub(client.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    replies = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name async for r in replies for s in r.list_services_response.service}
    assert {
        "linebridge.v1.DeviceService",
        "linebridge.v1.TelemetryService",
        "linebridge.v1.CommandService",
        "linebridge.v1.BridgeService",
        "grpc.health.v1.Health",
    } <= names
    info = await client.bridge.GetInfo(pb.bridge.GetInfoRequest())
    assert info.bridge_id == "test-bridge" and info.devices == 2 and info.devices_online == 2
    assert "sim" in info.drivers and info.samples_in > 0 and not info.warnings


async def test_watch_devices_sees_state_changes(bridge, client_for):
    from linebridge.drivers.sim.driver import LINKS_DOWN

    client = client_for(bridge)
    stream = client.devices.WatchDevices(pb.device.WatchDevicesRequest(include_existing=True))
    first = [await stream.read(), await stream.read()]
    assert {e.device.id for e in first} == {"sim-1", "sim-2"}
    LINKS_DOWN.add("sim-2")
    try:
        while True:
            event = await stream.read()
            if event.device.id == "sim-2" and event.device.state == pb.device.DEVICE_STATE_OFFLINE:
                break
        assert event.type == pb.device.DEVICE_EVENT_TYPE_CHANGED and "link cut" in event.device.state_reason
    finally:
        LINKS_DOWN.discard("sim-2")
        stream.cancel()
